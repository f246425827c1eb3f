package main

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/smtptest"
	"github.com/keyport/keyport/storage"
)

// withTestMail points [mail] at the SMTP test server's plain listener.
func withTestMail(smtp *smtptest.Server) func(*config.Config) {
	return func(c *config.Config) {
		_, port, _ := strings.Cut(smtp.PlainAddr, ":")
		c.Mail.Host, c.Mail.TLS, c.Mail.From = "127.0.0.1", config.MailTLSNone, "Keyport <keyport@example.com>"
		c.Mail.Port, _ = strconv.Atoi(port)
		c.Mail.Timeout = config.Duration{Duration: 10 * time.Second}
	}
}

var resetLinkPattern = regexp.MustCompile(`https?://\S+/reset-password\?token=\S+`)

// The forgotten password end to end, through the outbox and a real SMTP
// server: the same answer for a known and an unknown login, the mailed
// link sets a new password once and signs the person out everywhere; a
// directory user is told where their password lives; system accounts get
// nothing; one account gets at most three mails an hour, and one address
// at most ten requests.
func TestForgotPassword(t *testing.T) {
	smtp := smtptest.Start(t)
	srv := startServer(t, "", withTestMail(smtp))
	ctx := context.Background()
	mk := func(name string, mutate func(*storage.User)) (storage.User, string) {
		addr := smtptest.NewAddress(name)
		u, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: name, Email: addr, Password: testPassword})
		if err != nil {
			t.Fatal(err)
		}
		if mutate != nil {
			if u, err = srv.Main.Store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) { mutate(&u); return u, nil }); err != nil {
				t.Fatal(err)
			}
		}
		return u, addr
	}
	alice, aliceAddr := mk("alice", nil)
	_, dirAddr := mk("dora", func(u *storage.User) { u.Source = "corp" })
	_, botAddr := mk("robot", func(u *storage.User) { u.System = true })
	mk("bob", nil)

	b := newBrowser(t)
	login := b.get(srv.URL + "/login")
	if !strings.Contains(login.Body, `href="/forgot-password"`) {
		t.Fatal("the sign-in page offers no forgotten-password link")
	}
	ask := func(who string) page {
		t.Helper()
		return submitForm(t, b, b.get(srv.URL+"/forgot-password"), "/forgot-password", url.Values{"login": {who}})
	}
	known, unknown := ask("alice"), ask("nobody-here")
	if known.Status != http.StatusOK || unknown.Status != http.StatusOK || notice(t, known) == "" || notice(t, known) != notice(t, unknown) {
		t.Fatalf("known and unknown logins answered differently: %d %q / %d %q", known.Status, notice(t, known), unknown.Status, notice(t, unknown))
	}

	// Alice has a session, which the reset will end.
	old := newBrowser(t)
	signInPortal(t, srv, old, "alice")
	got := smtp.WaitFor(t, aliceAddr)
	link := resetLinkPattern.FindString(got.Text)
	if link == "" || !strings.Contains(got.HTML, link) || !strings.Contains(got.Subject, "Reset your Keyport password") {
		t.Fatalf("reset mail: subject %q\n%s", got.Subject, got.Text)
	}
	page := b.get(link)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "alice") {
		t.Fatalf("the link's page: %d", page.Status)
	}
	const newPassword = "a brand new passphrase 42"
	done := submitForm(t, b, page, account.PasswordResetPath, url.Values{"password": {newPassword}, "password_confirm": {newPassword}})
	if done.Status != http.StatusOK || !strings.Contains(done.Body, "Your password is changed") {
		t.Fatalf("reset: %d\n%s", done.Status, truncateBody(done.Body))
	}
	if cliAuth(srv.Main, "alice", testPassword) == nil || cliAuth(srv.Main, "alice", newPassword) != nil {
		t.Error("the old password still works, or the new one does not")
	}
	if sessions, _ := srv.Main.Store.ListUserSessions(ctx, alice.ID); len(sessions) != 0 {
		t.Errorf("%d sessions survived the reset", len(sessions))
	}
	if again := b.get(link); again.Status != http.StatusNotFound {
		t.Errorf("the used link: %d", again.Status)
	}

	// A directory user is told where the password lives; a system account
	// gets nothing.
	ask("dora")
	ask("robot")
	if d := smtp.WaitFor(t, dirAddr); !strings.Contains(d.Subject, "kept by corp") || resetLinkPattern.MatchString(d.Text) {
		t.Errorf("directory user's mail: %q\n%s", d.Subject, d.Text)
	}
	// Six requests for bob: three mails at most.
	for range 6 {
		ask("bob")
	}
	// Ten requests from this address so far; the eleventh is refused.
	if p := ask("bob"); p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "Too many password reset requests") {
		t.Errorf("the eleventh request: %d", p.Status)
	}
	srv.Main.Accounts.Mail.Wait()
	// Every message is in the outbox: alice's link and the notice that her
	// password changed, dora's and bob's three.
	msgs, _, err := srv.Main.Store.ListOutbox(ctx, storage.OutboxQuery{Limit: 100})
	if err != nil || len(msgs) != 6 {
		t.Errorf("outbox: %d messages, want 6 (%v)", len(msgs), err)
	}
	if smtp.Received(t, botAddr) != nil {
		t.Error("the system account got mail")
	}
}
