package main

import (
	"bytes"
	"context"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/directory/ldap"
	oidcsource "github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
)

// Pages users hit: destructive actions ask first (without JavaScript) and
// say what happened afterwards; refused uploads and reloads end on a page
// that helps. HTML is read with golang.org/x/net/html (html_test.go).

// askFirst checks a destructive action's confirmation: the page listing the
// thing links to a confirmation page instead of acting in one click; the
// confirmation page posts the action with a CSRF token; the old one-click
// post, and the confirmed post without the token, change nothing (still
// reports whether the thing is still there). It returns the confirmation
// page.
func askFirst(t *testing.T, b *browser, listPage page, confirmPath, action string, oneClick url.Values, still func() bool) page {
	t.Helper()
	doc := parsePage(t, listPage.Body)
	if f, ok := doc.formByAction(action); ok {
		t.Errorf("%s still posts %s in one click: %s", listPage.URL.Path, action, f.text())
	}
	if _, ok := doc.first("a", "href", confirmPath); !ok {
		t.Errorf("%s has no link to %s", listPage.URL.Path, confirmPath)
	}
	u, _ := listPage.URL.Parse(confirmPath)
	confirm := b.get(u.String())
	if confirm.Status != http.StatusOK {
		t.Fatalf("GET %s: %d %s", confirmPath, confirm.Status, truncateBody(confirm.Body))
	}
	form, ok := parsePage(t, confirm.Body).formByAction(action)
	if !ok {
		t.Fatalf("the confirmation page %s has no form posting to %s:\n%s", confirmPath, action, truncateBody(confirm.Body))
	}
	values := form.formValues()
	if values.Get("csrf_token") == "" || values.Get("confirm") != "yes" {
		t.Errorf("the confirmation form of %s sends %v", action, values)
	}
	if _, ok := form.first("a", "href", listPage.URL.Path); !ok {
		t.Errorf("the confirmation page of %s offers no way back to %s", action, listPage.URL.Path)
	}
	if !still() {
		t.Fatalf("opening the confirmation page of %s already did it", action)
	}
	// A post from an old page, without the confirmation: asked again.
	oneClick.Set("csrf_token", values.Get("csrf_token"))
	again := b.post(u.ResolveReference(&url.URL{Path: action}).String(), oneClick)
	if again.Status != http.StatusOK {
		t.Errorf("one-click post to %s: %d", action, again.Status)
	}
	if _, ok := parsePage(t, again.Body).formByAction(action); !ok || !still() {
		t.Errorf("a one-click post to %s did not ask first (still there: %v)", action, still())
	}
	// The confirmation without its CSRF token is refused.
	forged := url.Values{}
	for k, v := range values {
		if k != "csrf_token" {
			forged[k] = v
		}
	}
	if r := b.post(u.ResolveReference(&url.URL{Path: action}).String(), forged); r.Status != http.StatusForbidden || !still() {
		t.Errorf("confirmation without a CSRF token: %d (still there: %v)", r.Status, still())
	}
	return confirm
}

// totpSecretOn returns the secret of the authenticator app's set-up on p.
func totpSecretOn(t *testing.T, p page) string {
	t.Helper()
	el, ok := parsePage(t, p.Body).byID("totp-secret")
	if !ok || el.text() == "" {
		t.Fatalf("no authenticator secret on %s: %d %s", p.URL, p.Status, truncateBody(p.Body))
	}
	return el.text()
}

// recoveryCodesOn returns the recovery codes p lists (none when it lists
// none).
func recoveryCodesOn(t *testing.T, p page) []string {
	t.Helper()
	list, _ := parsePage(t, p.Body).byID("recovery-codes")
	var codes []string
	for _, li := range list.all("li") {
		codes = append(codes, li.text())
	}
	return codes
}

// recoveryCodeText is how a recovery code reads.
var recoveryCodeText = regexp.MustCompile(`^[a-z0-9]{5}-[a-z0-9]{5}$`)

// codeShaped returns the texts of the code elements on a page that read
// like recovery codes, wherever the page shows them.
func codeShaped(doc htmlNode) []string {
	var out []string
	for _, c := range doc.all("code") {
		if recoveryCodeText.MatchString(c.text()) {
			out = append(out, c.text())
		}
	}
	return out
}

// notice returns the text of the page's status notice.
func notice(t *testing.T, p page) string {
	t.Helper()
	n, ok := parsePage(t, p.Body).first("", "role", "status", "class", "notice")
	if !ok {
		return ""
	}
	return n.text()
}

func TestDestructiveActionsAskFirst(t *testing.T) {
	srv := startServerWith(t, serverOptions{localhost: true, mutate: func(c *config.Config) {
		// One directory from config.toml, which cannot be removed on the page.
		c.Directories = []config.Directory{{ID: "corp", Name: "Corporate LDAP", Type: "ldap", URL: "ldap://127.0.0.1:1", UserBaseDN: "dc=example,dc=org",
			SyncInterval: config.Duration{Duration: 24 * time.Hour}}}
	}})
	ctx := context.Background()
	alice := srv.createUser("alice", false)
	srv.createUser("root", true)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")

	t.Run("remove a passkey", func(t *testing.T) {
		registerPasskey(t, srv, b, newPasskeyDevice(t, srv.URL), "Laptop")
		id := srv.passkeys(alice.ID)[0].ID
		held := func() bool { return len(srv.passkeys(alice.ID)) == 1 }
		list := b.get(srv.URL + "/security/passkeys")
		confirm := askFirst(t, b, list, "/security/passkeys/remove?id="+url.QueryEscape(id), "/security/passkeys/remove", url.Values{"id": {id}}, held)
		if h1, _ := parsePage(t, confirm.Body).first("h1"); !strings.Contains(confirm.Body, "Laptop") || h1.text() != "Remove this passkey?" {
			t.Errorf("confirmation page: %q %s", h1.text(), truncateBody(confirm.Body))
		}
		if r := b.get(srv.URL + "/security/passkeys/remove?id=nope"); r.Status != http.StatusNotFound {
			t.Errorf("confirmation page of an unknown passkey: %d", r.Status)
		}
		done := submitForm(t, b, confirm, "/security/passkeys/remove", nil)
		if done.Status != http.StatusOK || done.URL.Path != "/security/passkeys" || notice(t, done) != "The passkey was removed." || held() {
			t.Errorf("confirmed removal: %d at %s, notice %q, still there: %v", done.Status, done.URL, notice(t, done), held())
		}
	})

	t.Run("sign out everywhere", func(t *testing.T) {
		other := newBrowser(t)
		signInPortal(t, srv, other, "alice")
		sessions := func() int {
			s, err := srv.Main.Store.ListUserSessions(ctx, alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			return len(s)
		}
		signedIn := func() bool { return sessions() == 2 }
		confirm := askFirst(t, b, b.get(srv.URL+"/security/activity"), "/security/activity/signout-everywhere", "/security/activity/signout-everywhere", url.Values{}, signedIn)
		if !strings.Contains(confirm.Body, "this one too") || !strings.Contains(confirm.Body, "App passwords and API tokens keep working") {
			t.Errorf("the confirmation does not say what happens: %s", truncateBody(confirm.Body))
		}
		done := submitForm(t, b, confirm, "/security/activity/signout-everywhere", nil)
		if !isLoginPage(done) || notice(t, done) != "You were signed out everywhere. Sign in again to continue." {
			t.Errorf("after signing out everywhere: %d at %s, notice %q", done.Status, done.URL, notice(t, done))
		}
		if n := sessions(); n != 0 || !isLoginPage(other.get(srv.URL+"/profile")) {
			t.Errorf("%d sessions left", n)
		}
		// The sign-in page says nothing of the kind otherwise.
		if n := notice(t, newBrowser(t).get(srv.URL+"/login")); n != "" {
			t.Errorf("a plain sign-in page has the notice %q", n)
		}
	})

	t.Run("new recovery codes", func(t *testing.T) {
		signInPortal(t, srv, b, "alice") // again, after signing out everywhere
		_, codes := enrolTOTP(t, srv, b)
		before := srv.user(alice.ID).RecoveryCodes
		same := func() bool { return slices.Equal(srv.user(alice.ID).RecoveryCodes, before) }
		confirm := askFirst(t, b, b.get(srv.URL+"/security"), "/security/recovery-codes", "/security/recovery-codes", url.Values{}, same)
		if !strings.Contains(confirm.Body, "You have 10 left.") {
			t.Errorf("the confirmation does not say how many codes are left: %s", truncateBody(confirm.Body))
		}
		fresh := submitForm(t, b, confirm, "/security/recovery-codes", nil)
		list, ok := parsePage(t, fresh.Body).byID("recovery-codes")
		if fresh.Status != http.StatusOK || !ok || len(list.all("li")) != account.RecoveryCodeCount || same() {
			t.Fatalf("confirmed new codes: %d, changed: %v\n%s", fresh.Status, !same(), truncateBody(fresh.Body))
		}
		if err := srv.Main.Accounts.Credentials.UseRecoveryCode(ctx, srv.user(alice.ID), codes[0], "", ""); err == nil {
			t.Error("an old recovery code still works")
		}
	})

	t.Run("remove a directory", func(t *testing.T) {
		if err := srv.Main.Accounts.Directories.SaveDirectory(ctx, ldap.Config{ID: "branch", Name: "Branch office", URL: "ldap://127.0.0.1:1", UserBaseDN: "dc=branch,dc=example,dc=org"}, true); err != nil {
			t.Fatal(err)
		}
		stored := func() bool { _, err := srv.Main.Store.GetDirectory(ctx, "branch"); return err == nil }
		ab := newBrowser(t)
		signInPortal(t, srv, ab, "root")
		confirm := askFirst(t, ab, ab.get(srv.URL+"/admin/directories"), "/admin/directories/branch/delete", "/admin/directories/branch/delete", url.Values{}, stored)
		if !strings.Contains(confirm.Body, "Branch office") {
			t.Errorf("the confirmation does not name the directory: %s", truncateBody(confirm.Body))
		}
		for _, id := range []string{"corp", "nope"} {
			if r := ab.get(srv.URL + "/admin/directories/" + id + "/delete"); r.Status != http.StatusNotFound {
				t.Errorf("confirmation page for %s: %d, want 404", id, r.Status)
			}
		}
		if r := b.get(srv.URL + "/admin/directories/branch/delete"); r.Status != http.StatusForbidden {
			t.Errorf("confirmation page for a non-admin: %d", r.Status)
		}
		done := submitForm(t, ab, confirm, "/admin/directories/branch/delete", nil)
		if done.Status != http.StatusOK || done.URL.Path != "/admin/directories" || stored() ||
			notice(t, done) != "The directory was removed. Its users keep their Keyport accounts but can no longer sign in through it." {
			t.Errorf("confirmed removal: %d at %s, notice %q, still stored: %v", done.Status, done.URL, notice(t, done), stored())
		}
	})

	t.Run("remove an upstream provider", func(t *testing.T) {
		if err := srv.Main.Accounts.Directories.SaveUpstream(ctx, oidcsource.Config{ID: "partner", Name: "Partner SSO", Issuer: "http://127.0.0.1:9",
			ClientID: "keyport", ClientSecret: "s3cret"}, true); err != nil {
			t.Fatal(err)
		}
		stored := func() bool { _, err := srv.Main.Store.GetDirectory(ctx, "partner"); return err == nil }
		ab := newBrowser(t)
		signInPortal(t, srv, ab, "root")
		saved := submitForm(t, ab, ab.get(srv.URL+"/admin/upstreams/partner/edit"), "/admin/upstreams/partner/edit", url.Values{"name": {"Partner Single Sign-On"}})
		if saved.URL.Path != "/admin/directories" || notice(t, saved) != "The upstream provider was saved." {
			t.Errorf("saved an upstream provider: %d at %s, notice %q", saved.Status, saved.URL, notice(t, saved))
		}
		confirm := askFirst(t, ab, ab.get(srv.URL+"/admin/directories"), "/admin/directories/partner/delete", "/admin/directories/partner/delete", url.Values{}, stored)
		doc := parsePage(t, confirm.Body)
		h1, _ := doc.first("h1")
		form, _ := doc.formByAction("/admin/directories/partner/delete")
		button, _ := form.first("button", "type", "submit")
		if h1.text() != "Remove this upstream provider?" || button.text() != "Remove upstream provider" || !strings.Contains(doc.text(), "Partner Single Sign-On") {
			t.Errorf("the confirmation calls it %q, its button %q: %s", h1.text(), button.text(), doc.text())
		}
		done := submitForm(t, ab, confirm, "/admin/directories/partner/delete", nil)
		if done.URL.Path != "/admin/directories" || stored() ||
			notice(t, done) != "The upstream provider was removed. Its users keep their Keyport accounts but can no longer sign in through it." {
			t.Errorf("confirmed removal: %d at %s, notice %q, still stored: %v", done.Status, done.URL, notice(t, done), stored())
		}
	})
}

// A reload of the page that showed the recovery codes (the browser sends
// the confirmation form again, or opens its address) ends on a page that
// says the app is on and the codes were shown once, and offers new ones.
func TestRecoveryCodesPageAfterReload(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	if r := b.get(srv.URL + "/security/recovery-codes"); r.URL.Path != "/security" {
		t.Errorf("recovery codes without an authenticator app: at %s", r.URL)
	}

	p := b.get(srv.URL + "/security")
	p = postPage(b, p, "/security/totp/begin", url.Values{})
	secret := totpSecretOn(t, p)
	form := url.Values{"code": {totpCode(t, secret, time.Now())}, "csrf_token": {formFields(p.Body).Get("csrf_token")}}
	shown := b.post(srv.URL+"/security/totp/confirm", form)
	if n := len(recoveryCodesOn(t, shown)); shown.Status != http.StatusOK || n != account.RecoveryCodeCount {
		t.Fatalf("codes after set-up: %d, %d codes", shown.Status, n)
	}

	for name, reload := range map[string]func() page{
		"the form again":      func() page { return b.post(srv.URL+"/security/totp/confirm", form) },
		"the address (GET)":   func() page { return b.get(srv.URL + "/security/totp/confirm") },
		"the page's own link": func() page { return b.get(srv.URL + "/security/recovery-codes?done=totp") },
	} {
		r := reload()
		doc := parsePage(t, r.Body)
		offer, ok := doc.formByAction("/security/recovery-codes")
		switch {
		case r.Status != http.StatusOK || r.URL.Path != "/security/recovery-codes":
			t.Errorf("%s: %d at %s", name, r.Status, r.URL)
		case strings.Contains(r.Body, "no authenticator app is waiting"):
			t.Errorf("%s: says no app is waiting, though it is on", name)
		case notice(t, r) != "Two-factor authentication with your authenticator app is on.":
			t.Errorf("%s: notice %q", name, notice(t, r))
		case !strings.Contains(doc.text(), "shown only once") || !strings.Contains(doc.text(), "You have 10 left."):
			t.Errorf("%s: does not say the codes were shown once: %s", name, doc.text())
		case !ok || offer.formValues().Get("confirm") != "yes":
			t.Errorf("%s: no offer of new codes", name)
		case len(recoveryCodesOn(t, r)) > 0 || len(codeShaped(doc)) > 0:
			t.Errorf("%s: shows codes again: %q", name, codeShaped(doc))
		}
	}
	// The set-up's address before the app is on leads back to the set-up.
	other := newBrowser(t)
	srv.createUser("bob", false)
	signInPortal(t, srv, other, "bob")
	if r := other.get(srv.URL + "/security/totp/confirm"); r.Status != http.StatusOK || r.URL.Path != "/security" {
		t.Errorf("GET the set-up's confirmation without an app: %d at %s", r.Status, r.URL)
	}
}

// An avatar over the limit is refused on the profile page, beside the
// upload field like any other refused image, and the server reads no more
// of the request than its limit.
func TestTooLargeAvatarShownOnProfile(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/profile")
	big := append(pngImage(t, 4, 4), make([]byte, 1300*1000)...) // 1.3 MB
	r := upload(b, p, "/profile/avatar", "avatar", "holiday.png", big)
	checkAvatarRefusedInline(t, r, "The image is too large: at most 1 MiB.")
	if !srv.user(alice.ID).AvatarAt.IsZero() {
		t.Fatal("the upload set an avatar")
	}

	// Straight into the portal's handler, counting what it reads: a 10 MB
	// picture, and a picture within its limit behind 150 KB of other
	// fields, which trips the request's limit (ServeHTTP's) instead.
	csrf := formFields(p.Body).Get("csrf_token")
	limit := int64(account.MaxAvatarBytes + 64<<10)
	for name, c := range map[string]struct{ fields, file int }{
		"10 MB picture":               {0, 10 << 20},
		"1 MiB picture behind 150 KB": {50, account.MaxAvatarBytes - 100},
	} {
		ctype, body := multipartBody(func(mw *multipart.Writer) {
			_ = mw.WriteField("csrf_token", csrf)
			for i := 0; i < c.fields; i++ {
				_ = mw.WriteField("note", strings.Repeat("x", 3000))
			}
			fw, _ := mw.CreateFormFile("avatar", "huge.png")
			_, _ = fw.Write(append(pngImage(t, 4, 4), make([]byte, c.file)...))
		})
		size := body.Len()
		r, read := postAvatar(t, srv, b, ctype, body)
		checkAvatarRefusedInline(t, r, "The image is too large: at most 1 MiB.")
		// http.MaxBytesReader reads one byte past its limit to know.
		if read > limit+1 {
			t.Errorf("%s: read %d bytes; the limit is %d", name, read, limit)
		}
		t.Logf("%s: read %d of %d bytes", name, read, size)
	}
	if !srv.user(alice.ID).AvatarAt.IsZero() {
		t.Fatal("an upload set an avatar")
	}
}

// postAvatar posts body (of type ctype) to the avatar upload as b, straight
// into the portal's handler (the server stops reading at its limit, which
// a client still sending would see as a reset connection), and reports how
// much of the body was read.
func postAvatar(t *testing.T, srv *testServer, b *browser, ctype string, body io.Reader) (page, int64) {
	t.Helper()
	counted := &countingReader{r: body}
	req := httptest.NewRequest(http.MethodPost, srv.URL+"/profile/avatar", counted)
	req.Header.Set("Content-Type", ctype)
	u, _ := url.Parse(srv.URL)
	for _, c := range b.client.Jar.Cookies(u) {
		req.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	srv.Main.Portal.ServeHTTP(rec, req)
	return page{Status: rec.Code, Header: rec.Header(), Body: rec.Body.String(), URL: req.URL}, counted.n
}

// multipartBody writes a multipart form with fill and returns its type and
// bytes.
func multipartBody(fill func(mw *multipart.Writer)) (string, *bytes.Buffer) {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fill(mw)
	_ = mw.Close()
	return mw.FormDataContentType(), &body
}

// Every refused upload ends on the profile page with its own message
// beside the upload, whatever the shape of the body: the request's limit
// hit inside a part's headers, a text field over its limit, a plain
// (urlencoded) form without a file.
func TestAvatarUploadShapesRefusedInline(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	csrf := formFields(b.get(srv.URL + "/profile").Body).Get("csrf_token")
	img := pngImage(t, 4, 4)
	limit := int64(account.MaxAvatarBytes + 64<<10)
	for _, c := range []struct {
		name, says string
		body       func() (string, io.Reader)
	}{
		{"30,000 small fields, then a picture", "The image is too large: at most 1 MiB.", func() (string, io.Reader) {
			return multipartBody(func(mw *multipart.Writer) {
				_ = mw.WriteField("csrf_token", csrf)
				for i := 0; i < 30000; i++ {
					_ = mw.WriteField("x", "y")
				}
				fw, _ := mw.CreateFormFile("avatar", "a.png")
				_, _ = fw.Write(img)
			})
		}},
		{"a part whose header runs past the limit", "The image is too large: at most 1 MiB.", func() (string, io.Reader) {
			return multipartBody(func(mw *multipart.Writer) {
				_ = mw.WriteField("csrf_token", csrf)
				_, _ = mw.CreatePart(map[string][]string{"Content-Disposition": {`form-data; name="x"`}, "X-Pad": {strings.Repeat("a", int(limit))}})
			})
		}},
		{"a 5,000-byte text field, then a small picture", "A field of the form is too long. Reload the page and try again.", func() (string, io.Reader) {
			return multipartBody(func(mw *multipart.Writer) {
				_ = mw.WriteField("csrf_token", csrf)
				_ = mw.WriteField("note", strings.Repeat("n", 5000))
				fw, _ := mw.CreateFormFile("avatar", "a.png")
				_, _ = fw.Write(img)
			})
		}},
		{"a plain form", "Choose an image file to upload.", func() (string, io.Reader) {
			return "application/x-www-form-urlencoded", strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode())
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctype, body := c.body()
			r, read := postAvatar(t, srv, b, ctype, body)
			checkAvatarRefusedInline(t, r, c.says)
			if read > limit+1 {
				t.Errorf("read %d bytes; the limit is %d", read, limit)
			}
			if !srv.user(alice.ID).AvatarAt.IsZero() {
				t.Fatal("an avatar was set")
			}
			t.Logf("%d: read %d bytes", r.Status, read)
		})
	}
}

// panicReader panics when read, as a broken body could.
type panicReader struct{}

func (panicReader) Read([]byte) (int, error) { panic("the body broke") }

// The upload is read inside the portal's one error adapter: a panic while
// reading it is an error page with a reference that the log shows, like
// any page's; and nobody's upload is read before the session is checked.
func TestAvatarUploadInsideTheSignedInHandler(t *testing.T) {
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{logs: logs})
	srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	ctype, _ := multipartBody(func(*multipart.Writer) {})

	var r page
	func() {
		defer func() {
			if p := recover(); p != nil {
				t.Errorf("the panic left the portal: %v", p)
			}
		}()
		r, _ = postAvatar(t, srv, b, ctype, panicReader{})
	}()
	ref, _ := parsePage(t, r.Body).first("code")
	if r.Status != http.StatusInternalServerError || ref.text() == "" || !strings.Contains(logs.String(), "ref="+ref.text()) {
		t.Errorf("a panic while reading the upload: %d, reference %q\n%s", r.Status, ref.text(), truncateBody(r.Body))
	}

	// Signed out: refused before a byte of the body is read.
	r, read := postAvatar(t, srv, newBrowser(t), ctype, panicReader{})
	if r.Status != http.StatusUnauthorized || read != 0 {
		t.Errorf("an upload without a session: %d, %d bytes read", r.Status, read)
	}
}

func checkAvatarRefusedInline(t *testing.T, r page, msg string) {
	t.Helper()
	doc := parsePage(t, r.Body)
	h1, _ := doc.first("h1")
	section, _ := doc.first("section", "aria-labelledby", "avatar-heading")
	fieldErr, ok := section.first("p", "class", "field-error")
	if r.Status != http.StatusBadRequest || h1.text() != "Your profile" || !ok || fieldErr.text() != msg {
		t.Errorf("too large an avatar: %d, heading %q, message beside the upload %q\n%s", r.Status, h1.text(), fieldErr.text(), truncateBody(r.Body))
	}
	if _, ok := section.formByAction("/profile/avatar"); !ok {
		t.Error("no upload form to try again")
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

const firefoxOnLinux = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// The device summaries ("Firefox on Linux") are in the page's language.
func TestDeviceNamesInGerman(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	ctx := context.Background()
	if _, err := srv.Main.Accounts.Credentials.TrustDevice(ctx, alice, "192.0.2.7", firefoxOnLinux); err != nil {
		t.Fatal(err)
	}
	_, _ = srv.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "wrong password", IP: "192.0.2.7", UserAgent: firefoxOnLinux})
	_, _ = srv.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "wrong password", IP: "192.0.2.8"})
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	// The cells of the page's tables, as text.
	cells := func(p page) []string {
		var out []string
		for _, td := range parsePage(t, p.Body).all("td") {
			out = append(out, td.text())
		}
		return out
	}
	for lang, want := range map[string][]string{
		"en": {"Firefox on Linux", "Unknown browser"},
		"de": {"Firefox unter Linux", "Unbekannter Browser"},
	} {
		if _, err := srv.Main.Store.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
			u.Locale = lang
			return u, nil
		}); err != nil {
			t.Fatal(err)
		}
		history := cells(b.get(srv.URL + "/security/activity"))
		devices := cells(b.get(srv.URL + "/security"))
		for _, w := range want {
			if !slices.Contains(history, w) {
				t.Errorf("%s: activity lists %q, want %q", lang, history, w)
			}
		}
		if !slices.Contains(devices, want[0]) {
			t.Errorf("%s: remembered devices %q, want %q", lang, devices, want[0])
		}
	}
}

// formError returns the text of the page's form-level error.
func formError(t *testing.T, p page) string {
	t.Helper()
	e, _ := parsePage(t, p.Body).byID("form-error")
	return e.text()
}

// New recovery codes and removing a passkey need a recent sign-in: past
// recent_auth the confirmation page asks for the password; none, or a
// wrong one, is refused with 400 and changes nothing; the right one works;
// and once the throttle refuses, the page says how long to wait, in
// Retry-After too, and still changes nothing.
func TestConfirmationsAskForThePassword(t *testing.T) {
	clock := testclock.At(time.Now())
	srv := startServerWith(t, serverOptions{localhost: true, now: clock.Now})
	ctx := context.Background()
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	enrolTOTP(t, srv, b)
	registerPasskey(t, srv, b, newPasskeyDevice(t, srv.URL), "Laptop")
	passkey := srv.passkeys(alice.ID)[0].ID
	clock.Add(srv.Main.Config.Accounts.RecentAuth.Duration + time.Minute)

	const action = "/security/recovery-codes"
	codes := func() []string { return srv.user(alice.ID).RecoveryCodes }
	confirm := b.get(srv.URL + action)
	form, ok := parsePage(t, confirm.Body).formByAction(action)
	if _, asks := form.first("input", "name", "confirm_password", "type", "password"); !ok || !asks {
		t.Fatalf("past recent_auth, the confirmation of new codes does not ask for the password:\n%s", truncateBody(confirm.Body))
	}
	before := codes()
	for _, c := range []struct{ password, says string }{
		{"", "For your security, enter your current password to make this change."},
		{"not the password 123", "The current password is not correct."},
	} {
		r := submitForm(t, b, confirm, action, url.Values{"confirm_password": {c.password}})
		if r.Status != http.StatusBadRequest || formError(t, r) != c.says || !slices.Equal(codes(), before) {
			t.Errorf("password %q: %d %q; codes changed: %v", c.password, r.Status, formError(t, r), !slices.Equal(codes(), before))
		}
	}
	fresh := submitForm(t, b, confirm, action, url.Values{"confirm_password": {testPassword}})
	shown := recoveryCodesOn(t, fresh)
	if fresh.Status != http.StatusOK || len(shown) != account.RecoveryCodeCount || slices.Equal(codes(), before) {
		t.Fatalf("the right password: %d, %d codes shown\n%s", fresh.Status, len(shown), truncateBody(fresh.Body))
	}

	// Wrong passwords until the throttle refuses, then the right one.
	confirm = b.get(srv.URL + action)
	before = codes()
	var refused page
	for i := 0; i < 40 && refused.Status != http.StatusTooManyRequests; i++ {
		refused = submitForm(t, b, confirm, action, url.Values{"confirm_password": {"not the password " + itoa(int64(i))}})
	}
	throttled := func(what string, r page) {
		t.Helper()
		if r.Status != http.StatusTooManyRequests || retryAfter(r.Header) <= 0 || !strings.Contains(formError(t, r), "Please try again in ") {
			t.Errorf("%s: %d, Retry-After %q, says %q", what, r.Status, r.Header.Get("Retry-After"), formError(t, r))
		}
		if _, ok := parsePage(t, r.Body).formByAction(r.URL.Path); !ok {
			t.Errorf("%s: no form to try again later", what)
		}
	}
	throttled("new codes, wrong passwords", refused)
	throttled("new codes, the right password while throttled", submitForm(t, b, confirm, action, url.Values{"confirm_password": {testPassword}}))
	if !slices.Equal(codes(), before) {
		t.Error("a throttled confirmation made new codes")
	}
	if err := srv.Main.Accounts.Credentials.UseRecoveryCode(ctx, srv.user(alice.ID), shown[0], "", ""); err != nil {
		t.Errorf("a code shown after the right password does not work: %v", err)
	}

	remove := b.get(srv.URL + "/security/passkeys/remove?id=" + url.QueryEscape(passkey))
	if f, _ := parsePage(t, remove.Body).formByAction("/security/passkeys/remove"); f.formValues().Get("id") != passkey {
		t.Fatalf("the confirmation of removing the passkey: %d\n%s", remove.Status, truncateBody(remove.Body))
	}
	throttled("remove a passkey while throttled", submitForm(t, b, remove, "/security/passkeys/remove", url.Values{"confirm_password": {testPassword}}))
	if len(srv.passkeys(alice.ID)) != 1 {
		t.Error("a throttled confirmation removed the passkey")
	}
}

// Reloading the page that showed new recovery codes sends its form again;
// that makes no more codes (which would cancel the ones just shown) and
// ends on the page that says codes are shown once, which makes new ones
// for the set it shows.
func TestNewRecoveryCodesSurviveAReload(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	ctx := context.Background()
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	enrolTOTP(t, srv, b)
	const action = "/security/recovery-codes"
	confirm := b.get(srv.URL + action)
	form, _ := parsePage(t, confirm.Body).formByAction(action)
	sent := form.formValues()
	first := b.post(srv.URL+action, sent)
	shown, stored := recoveryCodesOn(t, first), srv.user(alice.ID).RecoveryCodes
	if first.Status != http.StatusOK || len(shown) != account.RecoveryCodeCount {
		t.Fatalf("new codes: %d, %d shown", first.Status, len(shown))
	}

	for name, again := range map[string]url.Values{
		"a reload (the same form again)": sent,
		"a form without the code set":    {"csrf_token": {sent.Get("csrf_token")}, "confirm": {"yes"}},
	} {
		r := b.post(srv.URL+action, again)
		if r.Status != http.StatusOK || r.URL.Path != action || len(recoveryCodesOn(t, r)) > 0 || len(codeShaped(parsePage(t, r.Body))) > 0 {
			t.Errorf("%s: %d at %s, %d codes shown", name, r.Status, r.URL, len(recoveryCodesOn(t, r)))
		}
		if !strings.Contains(parsePage(t, r.Body).text(), "shown only once") {
			t.Errorf("%s: does not say codes are shown once", name)
		}
		if !slices.Equal(srv.user(alice.ID).RecoveryCodes, stored) {
			t.Fatalf("%s made new codes: the ones shown no longer work", name)
		}
		confirm = r
	}
	if err := srv.Main.Accounts.Credentials.UseRecoveryCode(ctx, srv.user(alice.ID), shown[0], "", ""); err != nil {
		t.Errorf("a code shown before the reload: %v", err)
	}
	// Using a code changed the set, so the page the reload ended on is out
	// of date too: it makes no codes and ends on a page that does.
	left := srv.user(alice.ID).RecoveryCodes
	stale := submitForm(t, b, confirm, action, nil)
	if len(recoveryCodesOn(t, stale)) > 0 || !slices.Equal(srv.user(alice.ID).RecoveryCodes, left) {
		t.Fatalf("a confirmation made before a code was used: %d at %s, %d codes shown", stale.Status, stale.URL, len(recoveryCodesOn(t, stale)))
	}
	next := submitForm(t, b, stale, action, nil)
	if len(recoveryCodesOn(t, next)) != account.RecoveryCodeCount || slices.Equal(srv.user(alice.ID).RecoveryCodes, left) {
		t.Errorf("new codes from an up-to-date page: %d, %d shown", next.Status, len(recoveryCodesOn(t, next)))
	}
}
