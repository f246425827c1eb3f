package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"html"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

func TestProfileEdit(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")

	p := b.get(srv.URL + "/profile")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, alice.ID) || !strings.Contains(p.Body, "alice@example.com") {
		t.Fatalf("profile page: %d %s", p.Status, truncateBody(p.Body))
	}
	for _, want := range []string{`name="given_name"`, `name="zoneinfo"`, `name="locale"`, `name="theme"`, `name="avatar"`, `name="ckey"`,
		"Only you and administrators", "Apps granted the email scope", "Apps granted the profile scope", "Every app you sign in to",
		`readonly`, "Registered on", "Last sign-in", "Roles", "Source: Keyport", `list="timezones"`, `<option value="de"`} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("profile page lacks %q", want)
		}
	}
	if strings.Contains(p.Body, `name="username"`) {
		t.Error("the username is editable on the page")
	}

	r := postPage(b, p, "/profile", url.Values{
		"given_name": {"Alice"}, "family_name": {"Liddell"}, "email": {"alice@wonder.example"},
		"phone_number": {"+49 151 23456789"}, "locale": {"de"}, "zoneinfo": {"Europe/Berlin"}, "theme": {"dark"},
	})
	if r.Status != http.StatusOK || !strings.Contains(r.URL.String(), "/profile?saved=1") {
		t.Fatalf("save: %d %s", r.Status, r.URL)
	}
	u := srv.user(alice.ID)
	if u.GivenName != "Alice" || u.FamilyName != "Liddell" || u.Email != "alice@wonder.example" || u.PhoneNumber != "+4915123456789" ||
		u.Locale != "de" || u.Zoneinfo != "Europe/Berlin" || u.Theme != "dark" {
		t.Fatalf("saved user: %+v", u)
	}
	if u.EmailVerified {
		t.Error("a changed email stayed verified")
	}
	// The page now speaks German, whatever the browser asks for, and uses the theme.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/profile", nil)
	req.Header.Set("Accept-Language", "en-US,en;q=0.9")
	de := b.do(req)
	if !strings.Contains(de.Body, "Ihr Profil") || !strings.Contains(de.Body, `lang="de"`) || !strings.Contains(de.Body, `data-theme="dark"`) {
		t.Errorf("profile in the user's language: %s", truncateBody(de.Body))
	}
}

func TestProfileRefusals(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	srv.createUser("bob", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/profile")
	before := srv.user(alice.ID)

	cases := []struct {
		name   string
		form   url.Values
		status int
		want   string
	}{
		{"username", url.Values{"username": {"mallory"}, "given_name": {"X"}}, http.StatusForbidden, "cannot be changed"},
		{"bad email", url.Values{"email": {"not-an-address"}, "given_name": {"Typed Name"}}, http.StatusBadRequest, "valid email"},
		{"taken email", url.Values{"email": {"BOB@example.com"}}, http.StatusConflict, "another account"},
		{"bad phone", url.Values{"phone_number": {"0151-123"}}, http.StatusBadRequest, "international format"},
		{"bad timezone", url.Values{"zoneinfo": {"Mars/Olympus"}}, http.StatusBadRequest, "Europe/Berlin"},
		{"locked and bad", url.Values{"username": {"mallory"}, "email": {"bad"}}, http.StatusForbidden, "cannot be changed"},
		{"bad language", url.Values{"locale": {"tlh"}}, http.StatusBadRequest, "languages offered"},
		{"bad theme", url.Values{"theme": {"neon"}}, http.StatusBadRequest, "light, dark or system"},
		{"long name", url.Values{"nickname": {strings.Repeat("n", 201)}}, http.StatusBadRequest, "at most 200"},
		{"verified flag", url.Values{"email_verified": {"true"}}, http.StatusForbidden, "cannot be edited"},
		{"picture", url.Values{"picture": {"https://evil.example/x.png"}}, http.StatusForbidden, "upload form"},
	}
	for _, c := range cases {
		r := postPage(b, p, "/profile", c.form)
		if r.Status != c.status || !strings.Contains(r.Body, c.want) {
			t.Errorf("%s: %d, want %d with %q: %s", c.name, r.Status, c.status, c.want, truncateBody(r.Body))
		}
		// The form comes back with what was typed, the message beside the field.
		for key, vals := range c.form {
			if key == "username" || key == "email_verified" || key == "picture" || key == "locale" || key == "theme" {
				continue // not inputs on the page (or a select without that option)
			}
			if want := `value="` + html.EscapeString(vals[0]) + `"`; !strings.Contains(r.Body, want) {
				t.Errorf("%s: the typed %s was not kept", c.name, key)
			}
		}
		if c.status == http.StatusBadRequest && !strings.Contains(r.Body, `class="field-error"`) {
			t.Errorf("%s: no message at the field", c.name)
		}
	}
	if after := srv.user(alice.ID); !after.UpdatedAt.Equal(before.UpdatedAt) || after.GivenName != before.GivenName ||
		after.Username != "alice" || after.Email != "alice@example.com" || after.Zoneinfo != "" || after.Locale != "" {
		t.Errorf("refused changes changed the user: %+v", after)
	}
	// A post naming something that is no profile field at all is not a
	// change request: the form's own fields are saved.
	if r := postPage(b, p, "/profile", url.Values{"shoe_size": {"44"}, "given_name": {"Shoe"}}); r.Status != http.StatusOK || srv.user(alice.ID).GivenName != "Shoe" {
		t.Errorf("post with an unknown field: %d", r.Status)
	}

	// No CSRF token: refused, nothing changes.
	r := b.post(srv.URL+"/profile", url.Values{"given_name": {"CSRF"}})
	if r.Status != http.StatusForbidden {
		t.Errorf("without CSRF token: %d", r.Status)
	}
	if srv.user(alice.ID).GivenName == "CSRF" {
		t.Error("a post without CSRF token changed the profile")
	}
	// Signed out: the page sends to sign-in and comes back.
	anon := newBrowser(t)
	r = anon.get(srv.URL + "/profile")
	if !isLoginPage(r) || !strings.Contains(r.Body, `name="return_to" value="/profile"`) {
		t.Errorf("signed-out /profile: %d %s", r.Status, r.URL)
	}
	r = anon.submit(r, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if r.URL.Path != "/profile" {
		t.Errorf("after sign-in landed on %s", r.URL)
	}
	// An absolute return_to is not followed.
	r = newBrowser(t).get(srv.URL + "/login?return_to=https://evil.example/")
	if strings.Contains(r.Body, "evil.example") {
		t.Error("login page carries a foreign return_to")
	}
}

func TestProfileLockedByAdmin(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.Accounts.ProfilesLocked = true })
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/profile")
	if strings.Contains(p.Body, `name="given_name"`) || !strings.Contains(p.Body, "locked profile changes") {
		t.Fatalf("locked profile page offers inputs: %s", truncateBody(p.Body))
	}
	if !strings.Contains(p.Body, `name="theme"`) {
		t.Error("the appearance is a portal preference and should stay editable")
	}
	r := postPage(b, p, "/profile", url.Values{"given_name": {"Crafted"}})
	if r.Status != http.StatusForbidden || !strings.Contains(r.Body, "locked profile changes") {
		t.Errorf("crafted post to a locked field: %d %s", r.Status, truncateBody(r.Body))
	}
	r = postPage(b, p, "/profile/custom-data", url.Values{"ckey": {"a"}, "cvalue": {"b"}})
	if r.Status != http.StatusForbidden {
		t.Errorf("custom data while locked: %d", r.Status)
	}
	r = upload(b, p, "/profile/avatar", "avatar", "a.png", pngImage(t, 10, 10))
	if r.Status != http.StatusForbidden {
		t.Errorf("avatar while locked: %d", r.Status)
	}
	if u := srv.user(alice.ID); u.GivenName != "" || u.CustomData != nil || !u.AvatarAt.IsZero() {
		t.Errorf("locked profile changed: %+v", u)
	}
}

func pngImage(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for x := range w {
		img.Set(x, x%h, color.RGBA{200, 10, 10, 255})
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestAvatar(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")

	// Before any upload: initials.
	r := newBrowser(t).get(srv.URL + "/avatar/" + alice.ID)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(r.Body, ">AT<") {
		t.Fatalf("initials avatar: %d %s %s", r.Status, r.Header.Get("Content-Type"), r.Body)
	}

	p := b.get(srv.URL + "/profile")
	for name, data := range map[string][]byte{
		"gif":         []byte("GIF89a\x01\x00\x01\x00\x00\x00\x00;"),
		"html as png": []byte("<html><script>alert(1)</script></html>"),
		"empty":       {},
	} {
		r := upload(b, p, "/profile/avatar", "avatar", "x.png", data)
		if r.Status != http.StatusBadRequest {
			t.Errorf("%s upload: %d", name, r.Status)
		}
	}
	big := append(pngImage(t, 4, 4), bytes.Repeat([]byte{0}, 10<<20)...)
	r = upload(b, p, "/profile/avatar", "avatar", "big.png", big)
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "too large") {
		t.Errorf("10 MB upload: %d %s", r.Status, truncateBody(r.Body))
	}
	if !srv.user(alice.ID).AvatarAt.IsZero() {
		t.Fatal("a refused upload set an avatar")
	}

	// Right at the limit (a PNG padded with bytes after its end, which
	// decoders ignore) the upload still fits through the body limit; one
	// byte more is refused by the avatar rules with their message.
	atLimit := pngImage(t, 4, 4)
	atLimit = append(atLimit, make([]byte, account.MaxAvatarBytes-len(atLimit))...)
	r = upload(b, p, "/profile/avatar", "avatar", "limit.png", append(atLimit, 0))
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "at most 1 MiB") || !strings.Contains(r.Body, "Your profile") {
		t.Errorf("1 MiB + 1 byte: %d %s", r.Status, truncateBody(r.Body))
	}
	r = upload(b, p, "/profile/avatar", "avatar", "limit.png", atLimit)
	if r.Status != http.StatusOK || srv.user(alice.ID).AvatarAt.IsZero() {
		t.Fatalf("1 MiB upload: %d %s", r.Status, truncateBody(r.Body))
	}
	// Other forms keep their small limit.
	if r := postPage(b, p, "/profile", url.Values{"nickname": {strings.Repeat("n", 100<<10)}}); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "too large") {
		t.Errorf("100 KiB profile form: %d", r.Status)
	}
	// A file that says it is a PNG but is text is refused on its content.
	if r := upload(b, p, "/profile/avatar", "avatar", "photo.png", []byte("just text pretending to be a picture")); r.Status != http.StatusBadRequest ||
		!strings.Contains(r.Body, "PNG, JPEG or WebP") {
		t.Errorf("text named .png: %d", r.Status)
	}

	r = upload(b, p, "/profile/avatar", "avatar", "me.png", pngImage(t, 600, 300))
	if r.Status != http.StatusOK || !strings.Contains(r.URL.String(), "saved=1") {
		t.Fatalf("upload: %d %s", r.Status, truncateBody(r.Body))
	}
	u := srv.user(alice.ID)
	if u.AvatarAt.IsZero() {
		t.Fatal("avatar time not set")
	}
	r = newBrowser(t).get(srv.URL + "/avatar/" + alice.ID)
	if r.Status != http.StatusOK || r.Header.Get("Content-Type") != "image/png" || r.Header.Get("ETag") == "" ||
		!strings.Contains(r.Header.Get("Cache-Control"), "max-age") || r.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Fatalf("avatar: %d %v", r.Status, r.Header)
	}
	img, err := png.Decode(strings.NewReader(r.Body))
	if err != nil || img.Bounds().Dx() != 256 || img.Bounds().Dy() != 128 {
		t.Fatalf("stored avatar is not a 256x128 PNG: %v %v", err, img)
	}
	if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("avatar CSP %q", csp)
	}
	if lm, err := http.ParseTime(r.Header.Get("Last-Modified")); err != nil || lm.Unix() != u.AvatarAt.Unix() {
		t.Errorf("Last-Modified %q, avatar changed at %v", r.Header.Get("Last-Modified"), u.AvatarAt)
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/avatar/"+alice.ID, nil)
	req.Header.Set("If-None-Match", r.Header.Get("ETag"))
	if nm := newBrowser(t).do(req); nm.Status != http.StatusNotModified || nm.Body != "" {
		t.Errorf("If-None-Match: %d", nm.Status)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/avatar/"+alice.ID, nil)
	req.Header.Set("If-Modified-Since", r.Header.Get("Last-Modified"))
	if nm := newBrowser(t).do(req); nm.Status != http.StatusNotModified {
		t.Errorf("If-Modified-Since: %d", nm.Status)
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/avatar/"+alice.ID, nil)
	req.Header.Set("If-None-Match", `"something-else"`)
	if nm := newBrowser(t).do(req); nm.Status != http.StatusOK || nm.Body != r.Body {
		t.Errorf("stale ETag: %d", nm.Status)
	}
	req, _ = http.NewRequest(http.MethodHead, srv.URL+"/avatar/"+alice.ID, nil)
	if hd := newBrowser(t).do(req); hd.Status != http.StatusOK || hd.Body != "" || hd.Header.Get("Content-Type") != "image/png" {
		t.Errorf("HEAD: %d %q", hd.Status, hd.Header.Get("Content-Type"))
	}
	if r := newBrowser(t).get(srv.URL + "/avatar/nobody"); r.Status != http.StatusNotFound {
		t.Errorf("unknown user's avatar: %d", r.Status)
	}

	// The picture claim points at it, with its version.
	rp := srv.createClient(newConfidentialClient("app"))
	code, verifier := rp.signIn(b, "alice")
	tok, err := rp.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	claims := idTokenClaims(t, rp, tok)
	if pic, _ := claims["picture"].(string); pic != srv.URL+"/avatar/"+alice.ID+"?v="+itoa(u.AvatarAt.Unix()) {
		t.Errorf("picture claim %q", claims["picture"])
	}

	p = b.get(srv.URL + "/profile")
	r = postPage(b, p, "/profile/avatar/remove", url.Values{})
	if r.Status != http.StatusOK || !srv.user(alice.ID).AvatarAt.IsZero() {
		t.Fatalf("remove avatar: %d", r.Status)
	}
	if r := newBrowser(t).get(srv.URL + "/avatar/" + alice.ID); r.Header.Get("Content-Type") != "image/svg+xml" {
		t.Errorf("after removal: %s", r.Header.Get("Content-Type"))
	}
}

func TestProfileClaimsFollowProfile(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	_, err := srv.Main.Accounts.Users.UpdateProfile(context.Background(), alice.ID, map[string]string{
		"given_name": "Alice", "family_name": "Liddell", "name": "", "locale": "de", "zoneinfo": "Europe/Vienna", "phone_number": "+43123456789",
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Main.Accounts.Users.SetCustomData(context.Background(), alice.ID, map[string]string{"team": "hidden-team"}); err != nil {
		t.Fatal(err)
	}
	rp := srv.createClient(newConfidentialClient("app"))
	b := newBrowser(t)
	code, verifier := rp.signIn(b, "alice", oauth2.SetAuthURLParam("scope", "openid profile email phone"))
	tok, err := rp.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	claims := idTokenClaims(t, rp, tok)
	status, _, info := srv.userinfo(tok.AccessToken)
	if status != http.StatusOK {
		t.Fatalf("userinfo: %d", status)
	}
	for name, got := range map[string]map[string]any{"id token": claims, "userinfo": info} {
		if got["locale"] != "de" || got["zoneinfo"] != "Europe/Vienna" || got["given_name"] != "Alice" ||
			got["name"] != "Alice Liddell" || got["phone_number"] != "+43123456789" || got["phone_number_verified"] != false {
			t.Errorf("%s claims: %v", name, got)
		}
		for _, hidden := range []string{"custom_data", "team", "recovery_email", "theme", "last_login", "blocked"} {
			if _, ok := got[hidden]; ok {
				t.Errorf("%s has %s", name, hidden)
			}
		}
	}
}

func TestPagesFollowAcceptLanguage(t *testing.T) {
	srv := startServer(t, "", nil)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/login", nil)
	req.Header.Set("Accept-Language", "de-CH,de;q=0.9,en;q=0.5")
	p := newBrowser(t).do(req)
	if !strings.Contains(p.Body, `lang="de"`) || !strings.Contains(p.Body, "Benutzername oder E-Mail") || strings.Contains(p.Body, "Username or email") {
		t.Errorf("German sign-in page: %s", truncateBody(p.Body))
	}
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/login", nil)
	req.Header.Set("Accept-Language", "fr")
	if p := newBrowser(t).do(req); !strings.Contains(p.Body, "Username or email") {
		t.Error("an unsupported language does not fall back to English")
	}
}

func TestDirectoryOwnedFieldsLocked(t *testing.T) {
	srv := startServer(t, "", nil)
	carol := srv.createUser("carol", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "carol")
	// The account now belongs to a directory (one that is not configured:
	// its fields are locked all the same, and its password would be refused).
	if _, err := srv.Main.Store.UpdateUser(context.Background(), carol.ID, func(u storage.User) (storage.User, error) {
		u.Source = "corp-ldap"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	p := b.get(srv.URL + "/profile")
	if strings.Contains(p.Body, `name="given_name"`) || !strings.Contains(p.Body, "Managed by corp-ldap") || !strings.Contains(p.Body, "Source: corp-ldap") {
		t.Fatalf("directory-owned fields on the page: %s", truncateBody(p.Body))
	}
	if !strings.Contains(p.Body, `name="zoneinfo"`) {
		t.Error("a field the directory does not own is locked")
	}
	if r := postPage(b, p, "/profile", url.Values{"email": {"carol@elsewhere.example"}}); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "Managed by corp-ldap") {
		t.Errorf("crafted post to a directory field: %d", r.Status)
	}
	token := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"rw"}, "scope": {"read-write"}})
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", token, "application/json", `{"family_name":"X"}`); status != http.StatusForbidden || body["field"] != "family_name" {
		t.Errorf("PATCH of a directory field: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/me", token, "", ""); status != http.StatusOK || body["locked"].(map[string]any)["email"] == nil {
		t.Errorf("GET /me does not report the lock: %v", body)
	}
	if u := srv.user(carol.ID); u.Email != "carol@example.com" || u.FamilyName != "" {
		t.Errorf("locked fields changed: %+v", u)
	}
}

func TestProfileCustomData(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/profile")

	// Add two entries (the page always offers one empty row for a new key).
	r := postPage(b, p, "/profile/custom-data", url.Values{"ckey": {"team", "shirt", ""}, "cvalue": {"blue", "M", ""}})
	if r.Status != http.StatusOK || !strings.Contains(r.URL.String(), "saved=1") {
		t.Fatalf("add: %d %s", r.Status, truncateBody(r.Body))
	}
	if got := srv.user(alice.ID).CustomData; len(got) != 2 || got["team"] != "blue" || got["shirt"] != "M" {
		t.Fatalf("stored: %v", got)
	}
	if !strings.Contains(r.Body, `value="team"`) || !strings.Contains(r.Body, `value="blue"`) {
		t.Error("the page does not list the entries")
	}
	// Update one, clear the other's key to remove it.
	r = postPage(b, r, "/profile/custom-data", url.Values{"ckey": {"team", "", ""}, "cvalue": {"green", "M", ""}})
	if got := srv.user(alice.ID).CustomData; r.Status != http.StatusOK || len(got) != 1 || got["team"] != "green" {
		t.Fatalf("update/remove: %d %v", r.Status, got)
	}

	// Bad input: 400, the message, what was typed, nothing stored.
	for name, form := range map[string]url.Values{
		"bad key":       {"ckey": {"team", "9lives"}, "cvalue": {"red", "typed value"}},
		"duplicate key": {"ckey": {"team", "team"}, "cvalue": {"red", "typed value"}},
		"long value":    {"ckey": {"team", "note"}, "cvalue": {"red", strings.Repeat("x", 501)}},
	} {
		r := postPage(b, p, "/profile/custom-data", form)
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `class="field-error"`) || !strings.Contains(r.Body, `value="`+form["cvalue"][1][:10]) {
			t.Errorf("%s: %d %s", name, r.Status, truncateBody(r.Body))
		}
	}
	if got := srv.user(alice.ID).CustomData; len(got) != 1 || got["team"] != "green" {
		t.Errorf("refused custom data stored: %v", got)
	}
	// CSRF: refused without the token.
	if r := b.post(srv.URL+"/profile/custom-data", url.Values{"ckey": {"x"}, "cvalue": {"y"}}); r.Status != http.StatusForbidden {
		t.Errorf("custom data without CSRF token: %d", r.Status)
	}
	if r := b.post(srv.URL+"/profile/avatar/remove", url.Values{}); r.Status != http.StatusForbidden {
		t.Errorf("avatar removal without CSRF token: %d", r.Status)
	}
	// Never in a token or userinfo.
	rp := srv.createClient(newConfidentialClient("app"))
	code, verifier := rp.signIn(b, "alice", oauthScope("openid profile email phone groups"))
	tok, err := rp.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	_, _, info := srv.userinfo(tok.AccessToken)
	for name, claims := range map[string]map[string]any{"id token": idTokenClaims(t, rp, tok), "userinfo": info} {
		for k, v := range claims {
			if strings.Contains(fmt.Sprint(v), "green") || k == "team" || k == "custom_data" {
				t.Errorf("%s carries custom data: %s=%v", name, k, v)
			}
		}
	}
}

// Each scope releases its own claims and nothing else; the discovery
// document advertises what the claims can hold.
func TestProfileClaimsByScope(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	if _, err := srv.Main.Accounts.Users.UpdateProfile(context.Background(), alice.ID, map[string]string{
		"given_name": "Alice", "phone_number": "+4915123456789", "recovery_email": "backup@example.net", "theme": "dark", "locale": "en",
	}); err != nil {
		t.Fatal(err)
	}
	rp := srv.createClient(newConfidentialClient("app"))
	b := newBrowser(t)
	code, verifier := rp.signIn(b, "alice", oauthScope("openid profile"))
	tok, err := rp.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	status, _, info := srv.userinfo(tok.AccessToken)
	if status != http.StatusOK {
		t.Fatalf("userinfo: %d", status)
	}
	for name, claims := range map[string]map[string]any{"id token": idTokenClaims(t, rp, tok), "userinfo": info} {
		if claims["sub"] != alice.ID || claims["preferred_username"] != "alice" || claims["given_name"] != "Alice" || claims["locale"] != "en" ||
			claims["picture"] != srv.URL+"/avatar/"+alice.ID {
			t.Errorf("%s: profile claims %v", name, claims)
		}
		for _, absent := range []string{"email", "email_verified", "phone_number", "phone_number_verified", "roles", "groups",
			"recovery_email", "theme", "last_login", "logins_count", "blocked", "last_ip", "app_metadata", "password_hash"} {
			if _, ok := claims[absent]; ok {
				t.Errorf("%s with scope profile has %s", name, absent)
			}
		}
		if _, ok := claims["zoneinfo"]; ok {
			t.Errorf("%s: an unset time zone is released", name)
		}
	}

	// The next sign-in sees today's profile.
	if _, err := srv.Main.Accounts.Users.UpdateProfile(context.Background(), alice.ID, map[string]string{"locale": "de", "zoneinfo": "America/New_York"}); err != nil {
		t.Fatal(err)
	}
	code, verifier = rp.signIn(b, "alice", oauthScope("openid profile"))
	if tok, err = rp.exchange(code, verifier); err != nil {
		t.Fatal(err)
	}
	if c := idTokenClaims(t, rp, tok); c["locale"] != "de" || c["zoneinfo"] != "America/New_York" {
		t.Errorf("claims after the change: %v", c)
	}

	resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var disco struct {
		Claims []string `json:"claims_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&disco); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"picture", "locale", "zoneinfo", "email_verified", "phone_number_verified", "roles", "groups", "preferred_username"} {
		if !slices.Contains(disco.Claims, want) {
			t.Errorf("claims_supported lacks %s: %v", want, disco.Claims)
		}
	}
	for _, hidden := range []string{"recovery_email", "theme", "custom_data"} {
		if slices.Contains(disco.Claims, hidden) {
			t.Errorf("claims_supported has %s", hidden)
		}
	}
}

// The profile language wins over the browser's, on every portal page, and
// each page of this area is German throughout.
func TestProfileLanguage(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	if _, err := srv.Main.Accounts.Users.UpdateProfile(context.Background(), alice.ID, map[string]string{"locale": "de"}); err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/profile", nil)
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	p := b.do(req)
	for _, want := range []string{`lang="de"`, "Ihr Profil", "Vorname", "Zeitzone", "Darstellung", "Ihre eigenen Daten", "Profil speichern", "Sichtbar für:"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("German profile lacks %q", want)
		}
	}
	for _, english := range []string{"Your profile", "First name", "Save profile", "Seen by:"} {
		if strings.Contains(p.Body, english) {
			t.Errorf("German profile still says %q", english)
		}
	}
	// Messages from the rules come in German too.
	r := postPage(b, p, "/profile", url.Values{"zoneinfo": {"Mars/Olympus"}})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "Wählen Sie eine Zeitzone") {
		t.Errorf("German error: %d %s", r.Status, truncateBody(r.Body))
	}
	// Back to English: the next page follows.
	r = postPage(b, p, "/profile", url.Values{"locale": {"en"}})
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "Your profile") || !strings.Contains(r.Body, `lang="en"`) {
		t.Errorf("after switching to English: %d %s", r.Status, truncateBody(r.Body))
	}
}
