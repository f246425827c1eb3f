package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/smtptest"
)

var emailLinkPattern = regexp.MustCompile(`https?://\S+/verify-email\?token=\S+`)

// Email verification and change by mail, end to end: the profile sends a
// confirmation link; opening it changes nothing until the page's button
// is pressed (mail scanners open links); a new address waits for its link
// while the old one is told; the API's profile change waits the same way.
func TestEmailVerificationAndChange(t *testing.T) {
	smtp := smtptest.Start(t)
	srv := startServer(t, "", withTestMail(smtp))
	ctx := context.Background()
	first, second, third := smtptest.NewAddress("first"), smtptest.NewAddress("second"), smtptest.NewAddress("third")
	alice, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: "alice", Email: first, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	verified := func() (string, bool) {
		u, err := srv.Main.Store.GetUser(ctx, alice.ID)
		if err != nil {
			t.Fatal(err)
		}
		return u.Email, u.EmailVerified
	}
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	profile := b.get(srv.URL + "/profile")
	sent := submitForm(t, b, profile, "/profile/verify-email", nil)
	if sent.Status != http.StatusOK || !strings.Contains(sent.Body, "We sent a confirmation link") {
		t.Fatalf("ask for a link: %d", sent.Status)
	}
	link := emailLinkPattern.FindString(smtp.WaitFor(t, first).Text)
	if link == "" {
		t.Fatal("no link in the verification mail")
	}
	// A scanner (another browser, no session) opens the link: nothing changes.
	scanner := newBrowser(t)
	if p := scanner.get(link); p.Status != http.StatusOK || !strings.Contains(p.Body, first) {
		t.Fatalf("the link's page: %d", p.Status)
	}
	if _, ok := verified(); ok {
		t.Fatal("opening the link verified the address")
	}
	done := submitForm(t, b, b.get(link), "/verify-email", nil)
	if addr, ok := verified(); done.Status != http.StatusOK || !ok || addr != first {
		t.Fatalf("confirm: %d, %s verified %v", done.Status, addr, ok)
	}
	if again := b.get(link); again.Status != http.StatusNotFound {
		t.Errorf("the used link: %d", again.Status)
	}

	// A new address waits for its link; the old one is told.
	saved := submitForm(t, b, b.get(srv.URL+"/profile"), "/profile", url.Values{"email": {second}})
	if saved.Status != http.StatusOK || !strings.Contains(saved.Body, "We sent a link to your new email address") {
		t.Fatalf("change: %d %s", saved.Status, truncateBody(saved.Body))
	}
	if addr, ok := verified(); addr != first || !ok {
		t.Fatalf("the address changed before its link: %s %v", addr, ok)
	}
	if notice := smtp.WaitForNth(t, first, 2); !strings.Contains(notice.Text, second) || emailLinkPattern.MatchString(notice.Text) {
		t.Errorf("the old address's notice:\n%s", notice.Text)
	}
	change := emailLinkPattern.FindString(smtp.WaitFor(t, second).Text)
	confirm := b.get(change)
	if !strings.Contains(confirm.Body, "from now on") {
		t.Errorf("the change's page:\n%s", truncateBody(confirm.Body))
	}
	submitForm(t, b, confirm, "/verify-email", nil)
	if addr, ok := verified(); addr != second || !ok {
		t.Fatalf("after the change's link: %s %v", addr, ok)
	}

	// Through the API the same.
	tok, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, alice, account.NewAPIToken{Name: "script", Scope: account.ScopeReadWrite})
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", tok, "application/json", `{"email":"`+third+`"}`)
	if status != http.StatusOK || body["email"] != second {
		t.Errorf("PATCH /me with a new email: %d %v", status, body)
	}
	if !emailLinkPattern.MatchString(smtp.WaitFor(t, third).Text) {
		t.Error("no link to the API's new address")
	}

	// A recovery address (where reset links go) waits for its link too,
	// and the email is told.
	backup := smtptest.NewAddress("backup")
	saved = submitForm(t, b, b.get(srv.URL+"/profile"), "/profile", url.Values{"recovery_email": {backup}})
	if saved.Status != http.StatusOK || !strings.Contains(saved.Body, "We sent a link to your new recovery email address") {
		t.Fatalf("recovery change: %d %s", saved.Status, truncateBody(saved.Body))
	}
	if u, _ := srv.Main.Store.GetUser(ctx, alice.ID); u.RecoveryEmail != "" {
		t.Fatalf("the recovery address changed before its link: %q", u.RecoveryEmail)
	}
	smtp.WaitForNth(t, second, 4) // its link, the API token's and the API change's notices, and this
	if !slices.ContainsFunc(smtp.Received(t, second), func(d smtptest.Delivered) bool {
		return strings.Contains(d.Subject, "recovery") && strings.Contains(d.Text, backup)
	}) {
		t.Error("the email was not told of the recovery change")
	}
	recovery := b.get(emailLinkPattern.FindString(smtp.WaitFor(t, backup).Text))
	if !strings.Contains(recovery.Body, "recovery email address") {
		t.Errorf("the recovery link's page:\n%s", truncateBody(recovery.Body))
	}
	if done := submitForm(t, b, recovery, "/verify-email", nil); done.Status != http.StatusOK || !strings.Contains(done.Body, "password reset links go there") {
		t.Errorf("confirm the recovery address: %d %s", done.Status, truncateBody(done.Body))
	}
	if u, _ := srv.Main.Store.GetUser(ctx, alice.ID); u.RecoveryEmail != backup || u.Email != second {
		t.Errorf("after the recovery link: recovery %q, email %q", u.RecoveryEmail, u.Email)
	}
}

// An invitation goes by mail too when mail is on; setting the password
// through the mailed link proves the address.
func TestInvitationByMail(t *testing.T) {
	smtp := smtptest.Start(t)
	srv := startServer(t, "", withTestMail(smtp))
	rw, _, _ := adminTokens(t, srv)
	addr := smtptest.NewAddress("invitee")
	status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json", `{"username":"ines","email":"`+addr+`","invite":true}`)
	inv, _ := body["invitation"].(map[string]any)
	if status != http.StatusCreated || inv["mailed_to"] != addr {
		t.Fatalf("create by invitation: %d %v", status, body)
	}
	got := smtp.WaitFor(t, addr)
	link := regexp.MustCompile(`https?://\S+/invite\?token=\S+`).FindString(got.Text)
	if link == "" || link != inv["url"] || !strings.Contains(got.Subject, "invited") {
		t.Fatalf("invitation mail: %q\n%s", got.Subject, got.Text)
	}
	b := newBrowser(t)
	const pw = "my very own passphrase 7"
	if p := submitForm(t, b, b.get(link), account.InvitationPath, url.Values{"password": {pw}, "password_confirm": {pw}}); p.Status != http.StatusOK {
		t.Fatalf("accept: %d", p.Status)
	}
	u, err := srv.Main.Store.GetUserByLogin(context.Background(), "ines")
	if err != nil || !u.EmailVerified || cliAuth(srv.Main, "ines", pw) != nil {
		t.Errorf("after accepting: %v, verified %v", err, u.EmailVerified)
	}
}
