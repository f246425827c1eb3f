package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/smtptest"
	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/storage"
)

// userAgent makes browser b send ua, as another browser would.
type userAgent struct {
	ua   string
	next http.RoundTripper
}

func (u userAgent) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("User-Agent", u.ua)
	next := u.next
	if next == nil {
		next = http.DefaultTransport
	}
	return next.RoundTrip(r)
}

// outboxMailsTo opens every mail in the outbox addressed to to, oldest
// first: what was committed, delivered or not.
func outboxMailsTo(t *testing.T, srv *testServer, to string) []mail.Message {
	t.Helper()
	msgs, _, err := srv.Main.Store.ListOutbox(context.Background(), storage.OutboxQuery{Kind: account.OutboxMail, Limit: storage.MaxOutboxLimit})
	if err != nil {
		t.Fatal(err)
	}
	var out []mail.Message
	for i := len(msgs) - 1; i >= 0; i-- {
		m, err := account.OpenMail(srv.Main.sealer, msgs[i].Payload)
		if err != nil {
			t.Fatal(err)
		}
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// subjects lists the subjects of ms.
func subjects(ms []mail.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Subject)
	}
	return out
}

// countSubject counts the mails of ms whose subject holds s.
func countSubject(ms []mail.Message, s string) int {
	n := 0
	for _, m := range ms {
		if strings.Contains(m.Subject, s) {
			n++
		}
	}
	return n
}

// The security notifications through a real server and SMTP server: a
// sign-in from a new device is mailed once (not the first sign-in, not a
// known device), and so are a password change, an authenticator app, a
// new API token and a block; a kind turned off on the settings sends
// nothing.
func TestSecurityNotifications(t *testing.T) {
	smtp := smtptest.Start(t)
	srv := startServer(t, "", withTestMail(smtp))
	ctx := context.Background()
	addr := smtptest.NewAddress("alice")
	alice, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: "alice", Email: addr, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	mails := func() []mail.Message { return outboxMailsTo(t, srv, addr) }

	// The first sign-in has nothing to be new against; the same browser
	// on the same network again is known.
	home := newBrowser(t)
	signInPortal(t, srv, home, "alice")
	signInPortal(t, srv, newBrowser(t), "alice")
	if got := mails(); len(got) != 0 {
		t.Fatalf("known sign-ins mailed: %q", subjects(got))
	}
	// Another browser from another network is new, once.
	away := browserFrom(t, "127.0.1.7")
	away.client.Transport = userAgent{ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", next: away.client.Transport}
	signInPortal(t, srv, away, "alice")
	got := smtp.WaitFor(t, addr)
	if !strings.Contains(got.Subject, "New sign-in to your Keyport account") || !strings.Contains(got.Text, "127.0.1.7") ||
		!strings.Contains(got.Text, "Firefox/128.0") || !strings.Contains(got.HTML, "127.0.1.7") || !strings.Contains(got.Text, srv.URL+"/security") {
		t.Errorf("new-device mail: %q\n%s", got.Subject, got.Text)
	}
	away2 := browserFrom(t, "127.0.1.9") // the same /24, the same browser
	away2.client.Transport = userAgent{ua: "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", next: away2.client.Transport}
	signInPortal(t, srv, away2, "alice")
	if n := countSubject(mails(), "New sign-in"); n != 1 {
		t.Errorf("%d new-device mails, want 1: %q", n, subjects(mails()))
	}

	// An authenticator app (through the pages), a password change (which
	// ends the sessions), an API token.
	enrolTOTP(t, srv, home)
	u, _ := srv.Main.Store.GetUser(ctx, alice.ID)
	const newPassword = "another long passphrase 7"
	if err := srv.Main.Accounts.Credentials.ChangePassword(ctx, u, "", testPassword, newPassword, "192.0.2.44", "test-agent"); err != nil {
		t.Fatal(err)
	}
	u, _ = srv.Main.Store.GetUser(ctx, alice.ID)
	if err := srv.Main.Accounts.Credentials.ChangePassword(ctx, u, "", newPassword, testPassword, "192.0.2.44", "test-agent"); err != nil {
		t.Fatal(err)
	}
	u, _ = srv.Main.Store.GetUser(ctx, alice.ID)
	if _, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, u, account.NewAPIToken{Name: "backup job", Scope: account.ScopeReadOnly}); err != nil {
		t.Fatal(err)
	}
	all := mails()
	for subject, want := range map[string]int{
		"The password of your Keyport account was changed":  2,
		"A second factor was added to your Keyport account": 1,
		"A new API token for your Keyport account":          1,
	} {
		if n := countSubject(all, subject); n != want {
			t.Errorf("%d mails %q, want %d: %q", n, subject, want, subjects(all))
		}
	}
	for _, m := range all {
		if strings.Contains(m.Subject, "API token") && !strings.Contains(m.Text, `"backup job"`) {
			t.Errorf("the token mail does not name the token:\n%s", m.Text)
		}
		if strings.Contains(m.Subject, "password") && !strings.Contains(m.Text, "192.0.2.44") {
			t.Errorf("the password mail does not say where from:\n%s", m.Text)
		}
	}

	// Turned off on the settings, a kind sends nothing; the others still do.
	admin := account.Actor{Kind: account.ActorCLI}
	if _, _, err := srv.Main.Accounts.Admin.UpdateSettings(ctx, admin, "", account.SettingsPatch{"notify_credentials": json.RawMessage("false")}); err != nil {
		t.Fatal(err)
	}
	before := len(mails())
	if _, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, u, account.NewAPIToken{Name: "quiet", Scope: account.ScopeReadOnly}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, u, "mail client", ""); err != nil {
		t.Fatal(err)
	}
	if after := mails(); len(after) != before {
		t.Errorf("notify_credentials off, yet mailed: %q", subjects(after[before:]))
	}

	// Blocked: mailed, and no word of where the administrator was.
	if _, err := srv.Main.Accounts.Admin.BlockUser(ctx, account.Actor{Kind: account.ActorCLI, IP: "198.51.100.9"}, alice.ID); err != nil {
		t.Fatal(err)
	}
	blocked := mails()
	if n := countSubject(blocked, "Your Keyport account was blocked"); n != 1 {
		t.Errorf("%d block mails, want 1: %q", n, subjects(blocked))
	}
	if last := blocked[len(blocked)-1]; strings.Contains(last.Text, "198.51.100.9") {
		t.Errorf("the block mail shows the administrator's address:\n%s", last.Text)
	}
	// Every committed mail is delivered.
	smtp.WaitForNth(t, addr, len(blocked))
}

// A German user's notification is in German, at the recovery email.
func TestSecurityNotificationLanguageAndAddress(t *testing.T) {
	smtp := smtptest.Start(t)
	srv := startServer(t, "", withTestMail(smtp))
	ctx := context.Background()
	addr, recovery := smtptest.NewAddress("jorg"), smtptest.NewAddress("jorg-recovery")
	u, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: "jorg", Email: addr, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if u, err = srv.Main.Store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.Locale, u.RecoveryEmail = "de-DE", recovery
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, u, "Thunderbird", ""); err != nil {
		t.Fatal(err)
	}
	got := smtp.WaitFor(t, recovery)
	if got.Subject != "Ein neues App-Passwort für Ihr Keyport-Konto" || !strings.Contains(got.Text, "Thunderbird") || !strings.Contains(got.HTML, "Thunderbird") {
		t.Errorf("German mail: %q\n%s", got.Subject, got.Text)
	}
	if len(outboxMailsTo(t, srv, addr)) != 0 {
		t.Error("the mail went to the email, not the recovery email")
	}
}

// The daily expiry job warns of a token expiring within 7 days once, even
// when it runs twice, and not of one expiring in 30 days; turned off, it
// warns of none.
func TestTokenExpiryWarning(t *testing.T) {
	smtp := smtptest.Start(t)
	srv := startServer(t, "", withTestMail(smtp))
	ctx := context.Background()
	addr := smtptest.NewAddress("tess")
	u, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: "tess", Email: addr, Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	day := 24 * time.Hour
	for name, in := range map[string]time.Duration{"nightly sync": 3 * day, "yearly report": 30 * day} {
		if _, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, u, account.NewAPIToken{Name: name, Scope: account.ScopeReadOnly, ExpiresAt: time.Now().Add(in)}); err != nil {
			t.Fatal(err)
		}
	}
	expiring := func() []mail.Message {
		var out []mail.Message
		for _, m := range outboxMailsTo(t, srv, addr) {
			if strings.Contains(m.Subject, "expires soon") {
				out = append(out, m)
			}
		}
		return out
	}
	srv.Main.warnExpiringTokens(ctx)
	srv.Main.warnExpiringTokens(ctx)
	got := expiring()
	if len(got) != 1 || !strings.Contains(got[0].Subject, `"nightly sync"`) {
		t.Fatalf("expiry warnings: %q, want one for nightly sync", subjects(got))
	}
	if d := smtp.WaitForNth(t, addr, len(outboxMailsTo(t, srv, addr))); d.Subject == "" {
		t.Error("the warning was not delivered")
	}

	// Turned off: a new token about to expire is not warned of.
	if _, _, err := srv.Main.Accounts.Admin.UpdateSettings(ctx, account.Actor{Kind: account.ActorCLI}, "", account.SettingsPatch{"notify_token_expiry": json.RawMessage("false")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, u, account.NewAPIToken{Name: "short lived", Scope: account.ScopeReadOnly, ExpiresAt: time.Now().Add(day)}); err != nil {
		t.Fatal(err)
	}
	srv.Main.warnExpiringTokens(ctx)
	if got := expiring(); len(got) != 1 {
		t.Errorf("notify_token_expiry off, yet warned: %q", subjects(got))
	}
}
