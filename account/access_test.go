package account_test

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// accessFixture is a service on a real bbolt file with a movable clock and
// one user, alice, whose password is accessPassword.
type accessFixture struct {
	t     *testing.T
	ctx   context.Context
	clock *testclock.Clock
	svc   *account.Service
	db    storage.Store
	alice storage.User
}

const accessPassword = "alice's long password"

func newAccessFixture(t *testing.T, require2FA bool) *accessFixture {
	t.Helper()
	f := &accessFixture{t: t, ctx: context.Background(), clock: testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	f.svc, f.db = account.NewTestService(t, account.TestServiceOptions{Now: f.clock.Now, Policy: account.Policy{
		MaxLoginAttempts: 3, LoginWindow: time.Minute, SessionLifetime: time.Hour,
		RecentAuth: 5 * time.Minute, Require2FA: require2FA,
	}})
	var err error
	if f.alice, err = f.svc.Users.CreateUser(f.ctx, account.NewUser{Username: "alice", Email: "alice@example.com", Password: accessPassword}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *accessFixture) user() storage.User {
	f.t.Helper()
	u, err := f.db.GetUser(f.ctx, f.alice.ID)
	if err != nil {
		f.t.Fatal(err)
	}
	return u
}

func (f *accessFixture) update(fn func(*storage.User)) {
	f.t.Helper()
	if _, err := f.db.UpdateUser(f.ctx, f.alice.ID, func(u storage.User) (storage.User, error) {
		fn(&u)
		return u, nil
	}); err != nil {
		f.t.Fatal(err)
	}
}

// lastAttempt is alice's newest history entry.
func (f *accessFixture) lastAttempt() storage.LoginAttempt {
	f.t.Helper()
	as, err := f.db.ListLoginAttempts(f.ctx, f.alice.ID, 1)
	if err != nil || len(as) != 1 {
		f.t.Fatalf("history: %v %v", as, err)
	}
	return as[0]
}

func (f *accessFixture) credentials(kind string) []storage.Credential {
	f.t.Helper()
	cs, err := f.db.ListCredentials(f.ctx, f.alice.ID, kind)
	if err != nil {
		f.t.Fatal(err)
	}
	return cs
}

func TestCreateAppPassword(t *testing.T) {
	f := newAccessFixture(t, false)
	if err := f.db.CreateClient(f.ctx, storage.Client{ID: "wiki", Name: "Wiki", RedirectURIs: []string{"https://wiki.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	secret, c, err := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "  Mail  ", "")
	if err != nil || c.Name != "Mail" || c.Kind != storage.KindAppPassword || c.ClientID != "" {
		t.Fatalf("create: %+v %v", c, err)
	}
	if len(strings.ReplaceAll(secret, "-", "")) < 24 || c.Hash == "" || strings.Contains(c.Hash, strings.ReplaceAll(secret, "-", "")) {
		t.Fatalf("secret %q, hash %q", secret, c.Hash)
	}
	if _, c, err := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "Wiki sync", "wiki"); err != nil || c.ClientID != "wiki" {
		t.Fatalf("restricted: %+v %v", c, err)
	}
	for name, in := range map[string][2]string{
		"empty name":     {"  ", ""},
		"long name":      {strings.Repeat("é", 65), ""},
		"control char":   {"a\x00b", ""},
		"duplicate":      {"MAIL", ""},
		"unknown client": {"other", "nope"},
	} {
		_, _, err := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, in[0], in[1])
		want := account.Invalid
		if name == "duplicate" {
			want = account.Conflict
		}
		if account.ErrorCode(err) != want || account.ErrorField(err) == "" {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, _, err := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, strings.Repeat("é", 64), ""); err != nil {
		t.Errorf("64 characters: %v", err)
	}
	if n := len(f.credentials(storage.KindAppPassword)); n != 3 {
		t.Errorf("%d app passwords stored, want 3", n)
	}
	list, err := f.svc.Credentials.ListAppPasswords(f.ctx, f.alice.ID)
	if err != nil || len(list) != 3 {
		t.Fatalf("list: %d %v", len(list), err)
	}
	// Revoking needs the right kind and owner.
	bob, _ := f.svc.Users.CreateUser(f.ctx, account.NewUser{Username: "bob", Email: "bob@example.com", Password: "bob's long password"})
	if err := f.svc.Credentials.RevokeAppPassword(f.ctx, bob, c.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("someone else's app password: %v", err)
	}
	if err := f.svc.Credentials.RevokeAPIToken(f.ctx, f.alice, c.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("revoked as the wrong kind: %v", err)
	}
	if err := f.svc.Credentials.RevokeAppPassword(f.ctx, f.alice, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Credentials.RevokeAppPassword(f.ctx, f.alice, c.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("revoked twice: %v", err)
	}
}

// TestVerifyBasicAppGroups: right Basic credentials of a person outside
// the allowed groups of the app the proxy names are refused before
// anything is recorded as a success: a failed attempt with the reason, no
// use of the app password, and no wrong guess for the throttle.
func TestVerifyBasicAppGroups(t *testing.T) {
	f := newAccessFixture(t, false)
	if err := f.db.CreateClient(f.ctx, storage.Client{ID: "wiki", Name: "Wiki", RedirectURIs: []string{"https://wiki.example/cb"}, AllowedGroups: []string{"wiki-users"}}); err != nil {
		t.Fatal(err)
	}
	wikiOnly, wc, _ := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "wiki", "wiki")
	anyApp, ac, _ := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "proxy", "")
	verify := func(password, client string) (string, error) {
		f.clock.Add(time.Second)
		_, method, err := f.svc.SignIn.VerifyBasic(f.ctx, "alice", password, "192.0.2.1", "curl/8.0", client)
		return method, err
	}
	refused := func(what string, err error, method string) {
		t.Helper()
		if !errors.Is(err, account.ErrNotInAppGroups) || account.ErrorCode(err) != account.Forbidden {
			t.Errorf("%s: %v, want the app's groups' refusal", what, err)
		}
		if a := f.lastAttempt(); a.Success || a.Method != method || a.Reason != "not in the app's allowed groups" {
			t.Errorf("%s: attempt %+v", what, a)
		}
	}
	for _, c := range []struct {
		name, password, method string
	}{{"app password for the app", wikiOnly, "app_password"}, {"app password for every app", anyApp, "app_password"}, {"account password", accessPassword, "pwd"}} {
		// More often than MaxLoginAttempts: none of them is a wrong guess.
		for range 5 {
			_, err := verify(c.password, "wiki")
			refused(c.name, err, c.method)
		}
	}
	for _, id := range []string{wc.ID, ac.ID} {
		if c, _ := f.db.GetCredential(f.ctx, f.alice.ID, id); !c.LastUsedAt.IsZero() {
			t.Errorf("refused app password %s noted as used", id)
		}
	}
	// A wrong password says nothing about the groups, and is the first
	// failure the throttle sees.
	if _, err := verify("wrong password!", "wiki"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("wrong password for the app: %v", err)
	}
	// An app that is not registered has no rules; in the group, the app is open.
	if m, err := verify(anyApp, "unregistered"); err != nil || m != "app_password" {
		t.Errorf("unregistered app: %q %v", m, err)
	}
	if _, err := f.db.UpdateUser(f.ctx, f.alice.ID, func(u storage.User) (storage.User, error) {
		u.Groups = []string{"Wiki-Users"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, password := range []string{wikiOnly, anyApp, accessPassword} {
		if _, err := verify(password, "wiki"); err != nil {
			t.Errorf("in the group: %v", err)
		}
		if a := f.lastAttempt(); !a.Success {
			t.Errorf("in the group: attempt %+v", a)
		}
	}
}

func TestVerifyBasic(t *testing.T) {
	f := newAccessFixture(t, false)
	if err := f.db.CreateClient(f.ctx, storage.Client{ID: "wiki", Name: "Wiki", RedirectURIs: []string{"https://wiki.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	secret, c, _ := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "proxy", "")
	wikiOnly, _, _ := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "wiki", "wiki")
	verify := func(login, password, ip, client string) (string, error) {
		f.clock.Add(time.Second) // keeps the history in order
		u, method, err := f.svc.SignIn.VerifyBasic(f.ctx, login, password, ip, "curl/8.0", client)
		if err == nil && u.ID != f.alice.ID {
			t.Fatalf("verified as %q", u.ID)
		}
		return method, err
	}

	// The app password, by username or email, typed in any case or spacing.
	for _, typed := range []string{secret, strings.ToUpper(secret), strings.ReplaceAll(secret, "-", " ")} {
		if m, err := verify("alice@example.com", typed, "192.0.2.1", ""); err != nil || m != "app_password" {
			t.Fatalf("app password %q: %q %v", typed, m, err)
		}
	}
	f.clock.Add(time.Minute)
	if m, err := verify("alice", secret, "192.0.2.9", ""); err != nil || m != "app_password" {
		t.Fatalf("app password: %v", err)
	}
	if got, _ := f.db.GetCredential(f.ctx, f.alice.ID, c.ID); !got.LastUsedAt.Equal(f.clock.Now()) || got.LastIP != "192.0.2.9" {
		t.Errorf("last use not noted: %v %s", got.LastUsedAt, got.LastIP)
	}
	if a := f.lastAttempt(); !a.Success || a.Method != "app_password" || a.IP != "192.0.2.9" {
		t.Errorf("attempt: %+v", a)
	}
	// Restricted to one app: only there.
	if _, err := verify("alice", wikiOnly, "192.0.2.1", "wiki"); err != nil {
		t.Errorf("at its app: %v", err)
	}
	for _, client := range []string{"", "other"} {
		if _, err := verify("alice", wikiOnly, "192.0.2.1", client); err == nil {
			t.Errorf("restricted app password accepted for %q", client)
		}
	}
	if a := f.lastAttempt(); a.Success || a.Reason != "app password for another app" {
		t.Errorf("attempt: %+v", a)
	}
	// Someone else's app password with alice's name: no.
	bob, _ := f.svc.Users.CreateUser(f.ctx, account.NewUser{Username: "bob", Email: "bob@example.com", Password: "bob's long password"})
	bobs, _, _ := f.svc.Credentials.CreateAppPassword(f.ctx, bob, "proxy", "")
	if _, err := verify("alice", bobs, "192.0.2.2", ""); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("bob's app password for alice: %v", err)
	}

	// Without a second factor the account password works as well.
	if m, err := verify("alice", accessPassword, "192.0.2.1", ""); err != nil || m != "pwd" {
		t.Fatalf("account password: %q %v", m, err)
	}
	if a := f.lastAttempt(); !a.Success || a.Method != "pwd" {
		t.Errorf("attempt: %+v", a)
	}
	if _, err := verify("alice", "wrong password!", "192.0.2.3", ""); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("wrong password: %v", err)
	}
	if _, err := verify("nobody", accessPassword, "192.0.2.3", ""); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("unknown user: %v", err)
	}

	// With TOTP (or a passkey) the password alone is refused; app passwords still work.
	f.update(func(u *storage.User) { u.TOTPSecret = []byte("sealed") })
	if _, err := verify("alice", accessPassword, "192.0.2.4", ""); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("password with TOTP: %v", err)
	}
	if a := f.lastAttempt(); a.Success || a.Method != "pwd" || !strings.Contains(a.Reason, "app password") {
		t.Errorf("attempt: %+v", a)
	}
	if _, err := verify("alice", secret, "192.0.2.4", ""); err != nil {
		t.Errorf("app password with TOTP: %v", err)
	}
	f.update(func(u *storage.User) { u.TOTPSecret = nil })
	if err := f.db.CreateCredential(f.ctx, storage.Credential{ID: account.NewID(), UserID: f.alice.ID, Kind: storage.KindPasskey, Name: "key", WebAuthnID: []byte("kid"), CreatedAt: f.clock.Now()}); err != nil {
		t.Fatal(err)
	}
	if _, err := verify("alice", accessPassword, "192.0.2.4", ""); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("password with a passkey: %v", err)
	}

	// The allowlist and blocking apply.
	f.update(func(u *storage.User) { u.AllowedNetworks = []string{"10.0.0.0/8"} })
	if _, err := verify("alice", secret, "192.0.2.5", ""); err == nil {
		t.Error("app password from outside the allowlist")
	}
	if a := f.lastAttempt(); a.Reason != "network not allowed" {
		t.Errorf("attempt: %+v", a)
	}
	if _, err := verify("alice", secret, "10.1.2.3", ""); err != nil {
		t.Errorf("app password inside the allowlist: %v", err)
	}
	f.update(func(u *storage.User) { u.Blocked = true })
	if _, err := verify("alice", secret, "10.1.2.3", ""); err == nil {
		t.Error("blocked user")
	}
	f.update(func(u *storage.User) { u.Blocked = false })

	// Revoked: no longer works.
	if err := f.svc.Credentials.RevokeAppPassword(f.ctx, f.alice, c.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := verify("alice", secret, "10.1.2.3", ""); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("revoked: %v", err)
	}

	// Throttled like sign-in: after failures from an address, the next
	// guess from there waits, and so does the account password; an app
	// password is found, and nobody guesses one, so it gets in whatever
	// the throttle says.
	f.clock.Add(time.Hour)
	good, _, _ := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "another", "")
	for i := 0; i < 3; i++ {
		_, _ = verify("alice", "guess number "+string(rune('a'+i)), "10.9.9.9", "")
	}
	if _, err := verify("alice", "guess number d", "10.9.9.9", ""); account.ErrorCode(err) != account.RateLimited {
		t.Errorf("a 4th guess after 3 failures: %v", err)
	}
	if _, err := verify("alice", good, "10.9.9.9", ""); err != nil {
		t.Errorf("a good app password after 3 failures: %v", err)
	}
	if _, err := verify("alice", good, "10.9.9.8", ""); err != nil {
		t.Errorf("another address: %v", err)
	}
}

var tokenPattern = regexp.MustCompile(`^kp_[0-9A-Za-z]{40}$`)

func TestAPITokenRules(t *testing.T) {
	f := newAccessFixture(t, false)
	tok, c, err := f.svc.Credentials.CreateAPIToken(f.ctx, f.alice, account.NewAPIToken{Name: "ci", Scope: account.ScopeReadOnly})
	if err != nil || !tokenPattern.MatchString(tok) || c.Hash != account.HashSecret(tok) || !c.ValidUntil.IsZero() || !c.ExpiresAt.IsZero() {
		t.Fatalf("create: %q %+v %v", tok, c, err)
	}
	day := 24 * time.Hour
	expiring, ec, err := f.svc.Credentials.CreateAPIToken(f.ctx, f.alice, account.NewAPIToken{Name: "deploy", Scope: account.ScopeReadWrite, ExpiresAt: f.clock.Now().Add(day)})
	if err != nil || !ec.ValidUntil.Equal(f.clock.Now().Add(day)) || !ec.ExpiresAt.Equal(f.clock.Now().Add(31*day)) {
		t.Fatalf("expiring token: %+v %v", ec, err)
	}
	office, _, err := f.svc.Credentials.CreateAPIToken(f.ctx, f.alice, account.NewAPIToken{Name: "office", Scope: account.ScopeReadOnly, AllowedNetworks: "10.0.0.0/8, 2001:db8::/32"})
	if err != nil {
		t.Fatal(err)
	}

	// Bad input changes nothing.
	for name, n := range map[string]account.NewAPIToken{
		"duplicate":  {Name: "CI", Scope: account.ScopeReadOnly},
		"no name":    {Scope: account.ScopeReadOnly},
		"long name":  {Name: strings.Repeat("x", 65), Scope: account.ScopeReadOnly},
		"bad scope":  {Name: "x", Scope: "admin"},
		"past":       {Name: "x", Scope: account.ScopeReadOnly, ExpiresAt: f.clock.Now().Add(-time.Second)},
		"now":        {Name: "x", Scope: account.ScopeReadOnly, ExpiresAt: f.clock.Now()},
		"bad cidr":   {Name: "x", Scope: account.ScopeReadOnly, AllowedNetworks: "10.0.0.0/33"},
		"bad ip":     {Name: "x", Scope: account.ScopeReadOnly, AllowedNetworks: "10.0.0.1, nope"},
		"too many":   {Name: "x", Scope: account.ScopeReadOnly, AllowedNetworks: strings.Repeat("10.0.0.1 ", 51)},
		"empty name": {Name: "   ", Scope: account.ScopeReadOnly},
	} {
		if _, _, err := f.svc.Credentials.CreateAPIToken(f.ctx, f.alice, n); err == nil || account.ErrorField(err) == "" || account.ErrorCode(err) == account.Internal {
			t.Errorf("%s: %v", name, err)
		}
	}
	if list, _ := f.svc.Credentials.ListAPITokens(f.ctx, f.alice.ID); len(list) != 3 {
		t.Fatalf("%d tokens stored, want 3", len(list))
	}

	auth := func(token, ip string) error {
		f.clock.Add(time.Second) // keeps the history in order
		u, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, token, ip, "script/1.0")
		if err == nil && u.ID != f.alice.ID {
			t.Fatalf("token for %q", u.ID)
		}
		return err
	}
	f.clock.Add(time.Minute)
	u, got, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, tok, "192.0.2.1", "script/1.0")
	if err != nil || u.ID != f.alice.ID || got.Scope != account.ScopeReadOnly || !got.LastUsedAt.Equal(f.clock.Now()) || got.LastIP != "192.0.2.1" {
		t.Fatalf("authenticate: %+v %v", got, err)
	}
	if stored, _ := f.db.GetCredential(f.ctx, f.alice.ID, c.ID); !stored.LastUsedAt.Equal(f.clock.Now()) {
		t.Error("last use not stored")
	}
	// Unknown and garbled tokens: 401, nothing to record for alice.
	before, _ := f.db.ListLoginAttempts(f.ctx, f.alice.ID, 100)
	// (Each from its own address: failures count towards the throttle.)
	for i, bad := range []string{"", "kp_", "kp_" + strings.Repeat("A", 40), "nope", tok + "x", strings.TrimPrefix(tok, "kp_")} {
		if err := auth(bad, "198.51.100."+string(rune('1'+i))); account.ErrorCode(err) != account.Unauthorized {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	if after, _ := f.db.ListLoginAttempts(f.ctx, f.alice.ID, 100); len(after) != len(before) {
		t.Error("unknown tokens were recorded for alice")
	}

	// From outside its networks: 401 and recorded; inside: fine.
	if err := auth(office, "192.0.2.1"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("outside its networks: %v", err)
	}
	if a := f.lastAttempt(); a.Success || a.Method != "api_token" || a.IP != "192.0.2.1" || !strings.Contains(a.Reason, "network") {
		t.Errorf("attempt: %+v", a)
	}
	for _, ip := range []string{"10.2.3.4", "2001:db8::1"} {
		if err := auth(office, ip); err != nil {
			t.Errorf("from %s: %v", ip, err)
		}
	}

	// Expired: 401 and recorded, for as long as the record is kept.
	if err := auth(expiring, "192.0.2.1"); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(day)
	if err := auth(expiring, "192.0.2.1"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("expired: %v", err)
	}
	if a := f.lastAttempt(); a.Reason != "API token expired" || a.Method != "api_token" {
		t.Errorf("attempt: %+v", a)
	}

	// The owner's allowlist and block status apply too.
	f.update(func(u *storage.User) { u.AllowedNetworks = []string{"10.0.0.0/8"} })
	if err := auth(tok, "192.0.2.1"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("outside the user's allowlist: %v", err)
	}
	if a := f.lastAttempt(); a.Reason != "network not allowed" {
		t.Errorf("attempt: %+v", a)
	}
	if err := auth(tok, "10.0.0.1"); err != nil {
		t.Errorf("inside the user's allowlist: %v", err)
	}
	f.update(func(u *storage.User) { u.Blocked = true })
	if err := auth(tok, "10.0.0.1"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("blocked: %v", err)
	}
	f.update(func(u *storage.User) { u.Blocked = false })

	// Revoked.
	if err := f.svc.Credentials.RevokeAPIToken(f.ctx, f.alice, c.ID); err != nil {
		t.Fatal(err)
	}
	if err := auth(tok, "10.0.0.1"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("revoked: %v", err)
	}
}

func TestAllowlist(t *testing.T) {
	f := newAccessFixture(t, false)
	// Bad input changes nothing.
	if _, _, err := f.svc.SignIn.SetAllowedNetworks(f.ctx, f.alice, "10.0.0.0/8\nnope", "10.0.0.1", true); account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "allowed_networks" {
		t.Errorf("invalid: %v", err)
	}
	// A list without the current address: a warning, nothing saved.
	nets, warn, err := f.svc.SignIn.SetAllowedNetworks(f.ctx, f.alice, "10.0.0.0/8, 192.0.2.7", "203.0.113.5", false)
	if err != nil || !warn || len(nets) != 2 || len(f.user().AllowedNetworks) != 0 {
		t.Fatalf("lock-out warning: %v %v %v %v", nets, warn, err, f.user().AllowedNetworks)
	}
	// Confirmed: saved.
	if _, warn, err := f.svc.SignIn.SetAllowedNetworks(f.ctx, f.alice, "10.0.0.0/8, 192.0.2.7", "203.0.113.5", true); err != nil || warn {
		t.Fatalf("confirmed: %v %v", warn, err)
	}
	if got := f.user().AllowedNetworks; strings.Join(got, ",") != "10.0.0.0/8,192.0.2.7/32" {
		t.Fatalf("saved %v", got)
	}
	if err := f.svc.SignIn.CheckNetwork(f.user(), "203.0.113.5"); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("CheckNetwork outside: %v", err)
	}
	if err := f.svc.SignIn.CheckNetwork(f.user(), "192.0.2.7"); err != nil {
		t.Errorf("CheckNetwork inside: %v", err)
	}

	// Password sign-in from outside: refused after the password, recorded.
	_, err = f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: accessPassword, IP: "203.0.113.5", UserAgent: "test"})
	if account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("sign-in from outside: %v", err)
	}
	if a := f.lastAttempt(); a.Success || a.Reason != "network not allowed" || a.IP != "203.0.113.5" {
		t.Errorf("attempt: %+v", a)
	}
	// A wrong password from outside gets the usual answer: the list tells
	// nothing to someone without the password.
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: "wrong password", IP: "203.0.113.5"}); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("wrong password from outside: %v", err)
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: accessPassword, IP: "10.20.30.40"}); err != nil {
		t.Errorf("sign-in from inside: %v", err)
	}

	// A list with the current address needs no confirmation; empty clears.
	if _, warn, err := f.svc.SignIn.SetAllowedNetworks(f.ctx, f.alice, "10.0.0.0/8", "10.0.0.1", false); err != nil || warn {
		t.Errorf("list with the current address: %v %v", warn, err)
	}
	if _, warn, err := f.svc.SignIn.SetAllowedNetworks(f.ctx, f.alice, "", "203.0.113.5", false); err != nil || warn || len(f.user().AllowedNetworks) != 0 {
		t.Errorf("clearing: %v %v", warn, err)
	}
}

// TestRequire2FAForMachines: when the admin requires 2FA, an account
// without one reaches nothing through app passwords, its password or API
// tokens until it enrols.
func TestRequire2FAForMachines(t *testing.T) {
	f := newAccessFixture(t, true)
	secret, _, _ := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "proxy", "")
	tok, _, _ := f.svc.Credentials.CreateAPIToken(f.ctx, f.alice, account.NewAPIToken{Name: "ci", Scope: account.ScopeReadOnly})
	check := func(wantOK bool, ip string) {
		t.Helper()
		_, _, errApp := f.svc.SignIn.VerifyBasic(f.ctx, "alice", secret, ip, "", "")
		_, _, errPwd := f.svc.SignIn.VerifyBasic(f.ctx, "alice", accessPassword, ip, "", "")
		_, _, errTok := f.svc.Credentials.AuthenticateAPIToken(f.ctx, tok, ip, "")
		errCheck := f.svc.Credentials.CheckTwoFactorPolicy(f.ctx, f.user())
		if (errApp == nil) != wantOK || (errTok == nil) != wantOK || (errCheck == nil) != wantOK {
			t.Errorf("want ok=%v: app password %v, token %v, policy %v", wantOK, errApp, errTok, errCheck)
		}
		if errPwd == nil {
			t.Error("the password alone was accepted under require_2fa")
		}
	}
	check(false, "192.0.2.1")
	f.update(func(u *storage.User) { u.TOTPSecret = []byte("sealed") })
	check(true, "192.0.2.2")
}
