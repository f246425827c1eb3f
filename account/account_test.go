package account_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

var testArgon = account.TestArgon

// newService is account.NewTestService with the login limits most tests
// run under.
func newService(t *testing.T, now func() time.Time) (*account.Service, storage.Store) {
	t.Helper()
	return account.NewTestService(t, account.TestServiceOptions{Now: now, Policy: account.Policy{
		MaxLoginAttempts: 3, LoginWindow: time.Minute, SessionLifetime: time.Hour,
	}})
}

func TestPasswordHashing(t *testing.T) {
	h, err := account.HashPassword("s3cret-passphrase", testArgon)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=7168,t=5,p=1$") {
		t.Fatalf("not an argon2id PHC string: %s", h)
	}
	h2, _ := account.HashPassword("s3cret-passphrase", testArgon)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: salt missing")
	}
	ok, rehash, err := account.VerifyPassword("s3cret-passphrase", h, testArgon)
	if !ok || rehash || err != nil {
		t.Fatalf("verify = %v %v %v", ok, rehash, err)
	}
	if ok, _, _ := account.VerifyPassword("s3cret-passphrasE", h, testArgon); ok {
		t.Fatal("wrong password accepted")
	}
	// Stronger parameters in force: the old hash still verifies and asks for a rehash.
	ok, rehash, _ = account.VerifyPassword("s3cret-passphrase", h, account.Argon2Params{MemoryKiB: 19456, Iterations: 2, Parallelism: 1})
	if !ok || !rehash {
		t.Fatalf("parameter change: ok=%v rehash=%v", ok, rehash)
	}
	for _, bad := range []string{"", "$argon2id$v=19$m=1,t=1$x$y", "$argon2i$v=19$m=7168,t=5,p=1$c2FsdA$a2V5", "$argon2id$v=18$m=7168,t=5,p=1$c2FsdA$a2V5", "$argon2id$v=19$m=7168,t=5,p=1$!!$a2V5"} {
		if ok, _, err := account.VerifyPassword("x", bad, testArgon); ok || err == nil {
			t.Errorf("malformed hash %q: ok=%v err=%v", bad, ok, err)
		}
	}
}

func TestBcryptImportIsRehashed(t *testing.T) {
	svc, db := newService(t, nil)
	ctx := context.Background()
	u, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "imported", Email: "i@example.com", Password: "temporary-pass"})
	if err != nil {
		t.Fatal(err)
	}
	// A bcrypt hash, as an import from another system would bring it.
	legacy, err := bcrypt.GenerateFromPassword([]byte("legacy password 1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) { u.PasswordHash = string(legacy); return u, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "imported", Password: "wrong password"}); err == nil {
		t.Fatal("wrong password accepted against a bcrypt hash")
	}
	if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "imported", Password: "legacy password 1"}); err != nil {
		t.Fatalf("bcrypt sign-in: %v", err)
	}
	got, _ := db.GetUser(ctx, u.ID)
	if !strings.HasPrefix(got.PasswordHash, "$argon2id$") {
		t.Fatalf("bcrypt hash not replaced after sign-in: %s", got.PasswordHash)
	}
}

func TestAuthenticate(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	svc, db := newService(t, clock)
	ctx := context.Background()
	u, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "Alice", Email: "alice@example.com", Password: "long enough pw"})
	if err != nil {
		t.Fatal(err)
	}
	// Username or email, any case.
	for _, login := range []string{"alice", "ALICE", "alice@example.com", "Alice@Example.com"} {
		got, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: login, Password: "long enough pw", IP: "192.0.2.1"})
		if err != nil || got.ID != u.ID {
			t.Fatalf("login %q: %v", login, err)
		}
	}
	stored, _ := db.GetUser(ctx, u.ID)
	if stored.LoginsCount != 4 || stored.LastIP != "192.0.2.1" || !stored.LastLogin.Equal(now) {
		t.Errorf("sign-in not recorded: %+v", stored)
	}

	// Wrong password and unknown user: the same error.
	now = now.Add(time.Second)
	_, errWrong := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "wrong password", IP: "192.0.2.2"})
	_, errNobody := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "nobody", Password: "wrong password", IP: "192.0.2.3"})
	if errWrong == nil || errNobody == nil || errWrong.Error() != errNobody.Error() || account.ErrorCode(errWrong) != account.Unauthorized {
		t.Fatalf("errors differ: %v / %v", errWrong, errNobody)
	}
	attempts, _ := db.ListLoginAttempts(ctx, u.ID, 10)
	if len(attempts) != 5 || attempts[0].Success || attempts[0].Reason == "" {
		t.Errorf("attempts: %+v", attempts)
	}

	// Three failures for one account from one address refuse that address
	// for the window, right password or not; another address is not held
	// back by them.
	for i := 0; i < 2; i++ {
		svc.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "nope nope nope", IP: "192.0.2.2"})
	}
	if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "long enough pw", IP: "192.0.2.2"}); account.ErrorCode(err) != account.RateLimited || account.RetryAfter(err) != time.Minute {
		t.Fatalf("after 3 failures: %v (retry after %s)", err, account.RetryAfter(err))
	}
	if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "long enough pw", IP: "198.51.100.1"}); err != nil {
		t.Fatalf("from another address: %v", err)
	}
	now = now.Add(time.Minute)
	if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "long enough pw", IP: "192.0.2.2"}); err != nil {
		t.Fatalf("after the window: %v", err)
	}

	// Blocked users cannot sign in; their sessions are gone.
	secret, _, err := svc.SignIn.StartSession(ctx, stored, []string{"pwd"}, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Users.SetBlocked(ctx, "alice", true); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "long enough pw"}); account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("blocked user: %v", err)
	}
	if _, _, err := svc.SignIn.ResumeSession(ctx, secret); err == nil {
		t.Fatal("blocked user's session still works")
	}
}

func TestCreateUserValidation(t *testing.T) {
	svc, _ := newService(t, nil)
	ctx := context.Background()
	if _, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "bob", Email: "bob@example.com", Password: "a fine password"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		in   account.NewUser
		code account.Code
		msg  string
	}{
		{"short password", account.NewUser{Username: "x1", Email: "x1@example.com", Password: "short"}, account.Invalid, "at least 10"},
		{"password is username", account.NewUser{Username: "carol-long-name", Email: "c@example.com", Password: "Carol-Long-Name"}, account.Invalid, "same as the username"},
		{"password is email", account.NewUser{Username: "dan", Email: "dan@example.com", Password: "dan@example.com"}, account.Invalid, "same as the username or email"},
		{"bad username", account.NewUser{Username: "no spaces", Email: "n@example.com", Password: "a fine password"}, account.Invalid, "Username"},
		{"bad email", account.NewUser{Username: "eve", Email: "not-an-email", Password: "a fine password"}, account.Invalid, "not a valid email"},
		{"duplicate username", account.NewUser{Username: "BOB", Email: "other@example.com", Password: "a fine password"}, account.Conflict, "already exists"},
		{"duplicate email", account.NewUser{Username: "bobby", Email: "bob@example.com", Password: "a fine password"}, account.Conflict, "already exists"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svc.Users.CreateUser(ctx, tc.in)
			if account.ErrorCode(err) != tc.code || !strings.Contains(account.ErrorMessage(err), tc.msg) {
				t.Fatalf("got %v (%s), want %s containing %q", err, account.ErrorCode(err), tc.code, tc.msg)
			}
		})
	}
	users, _ := svc.Users.ListUsers(ctx)
	if len(users) != 1 {
		t.Fatalf("failed creations stored users: %d", len(users))
	}
}

func TestSetupToken(t *testing.T) {
	now := time.Now()
	svc, _ := newService(t, func() time.Time { return now })
	ctx := context.Background()
	tok, err := svc.Users.CreateSetupToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Users.CheckSetupToken(ctx, "wrong"); err == nil {
		t.Fatal("wrong token accepted")
	}
	// Bad input does not spend the link.
	if _, err := svc.Users.CompleteSetup(ctx, tok, account.NewUser{Username: "root", Email: "root@example.com", Password: "short"}); account.ErrorCode(err) != account.Invalid {
		t.Fatalf("short password: %v", err)
	}
	u, err := svc.Users.CompleteSetup(ctx, tok, account.NewUser{Username: "root", Email: "root@example.com", Password: "long enough pw"})
	if err != nil || !u.Admin {
		t.Fatalf("setup: %+v %v", u, err)
	}
	if _, err := svc.Users.CompleteSetup(ctx, tok, account.NewUser{Username: "root2", Email: "root2@example.com", Password: "long enough pw"}); err == nil {
		t.Fatal("setup link used twice")
	}
	// An unused link expires after an hour.
	svc2, _ := newService(t, func() time.Time { return now })
	tok2, _ := svc2.Users.CreateSetupToken(ctx)
	now = now.Add(61 * time.Minute)
	if err := svc2.Users.CheckSetupToken(ctx, tok2); err == nil {
		t.Fatal("expired setup link accepted")
	}
}

func TestBuildClient(t *testing.T) {
	c, secret, err := account.BuildClient(account.NewClient{ID: "web", RedirectURIs: []string{"https://app.example.com/cb"}})
	if err != nil || len(secret) < 32 || c.SecretHash == "" || strings.Contains(c.SecretHash, secret) {
		t.Fatalf("confidential client: %+v %q %v", c, secret, err)
	}
	if !account.SecretMatches(secret, c.SecretHash) || account.SecretMatches(secret+"x", c.SecretHash) || account.SecretMatches("", "") {
		t.Fatal("secret matching is wrong")
	}
	bad := []account.NewClient{
		{ID: "has space", RedirectURIs: []string{"https://a/cb"}},
		{ID: "nouri"},
		{ID: "frag", RedirectURIs: []string{"https://a/cb#x"}},
		{ID: "rel", RedirectURIs: []string{"/cb"}},
		{ID: "js", RedirectURIs: []string{"javascript:alert(1)"}},
		{ID: "jsupper", RedirectURIs: []string{"JavaScript:alert(1)"}},
		{ID: "vbs", RedirectURIs: []string{"vbscript:msgbox(1)"}},
		{ID: "blob", RedirectURIs: []string{"blob:https://a/1"}},
		{ID: "about", RedirectURIs: []string{"about:blank"}},
		{ID: "pubcc", Public: true, GrantTypes: []string{"client_credentials"}},
		{ID: "pubsecret", Public: true, Secret: "0123456789abcdef", RedirectURIs: []string{"https://a/cb"}},
		{ID: "shortsecret", Secret: "short", RedirectURIs: []string{"https://a/cb"}},
		{ID: "grant", GrantTypes: []string{"password"}, RedirectURIs: []string{"https://a/cb"}},
	}
	for _, n := range bad {
		if _, _, err := account.BuildClient(n); account.ErrorCode(err) != account.Invalid {
			t.Errorf("%s: accepted or wrong error: %v", n.ID, err)
		}
	}
	if c, secret, err := account.BuildClient(account.NewClient{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1:5173/cb"}}); err != nil || secret != "" || c.SecretHash != "" {
		t.Errorf("public client: %+v %q %v", c, secret, err)
	}
}

func TestDeleteClientErrors(t *testing.T) {
	svc, db := newService(t, nil)
	ctx := context.Background()
	if err := svc.Clients.DeleteClient(ctx, account.SystemActor, "nope"); account.ErrorCode(err) != account.NotFound {
		t.Fatalf("unknown client: %v", err)
	}
	static := storage.WithStaticClients(db, []storage.Client{{ID: "fixed"}})
	svc2, _ := account.NewTestService(t, account.TestServiceOptions{Store: static, Policy: svc.Policy(), NoSealer: true})
	if err := svc2.Clients.DeleteClient(ctx, account.SystemActor, "fixed"); account.ErrorCode(err) != account.Conflict {
		t.Fatalf("static client: %v", err)
	}
	if _, _, err := svc2.Clients.RegisterClient(ctx, account.SystemActor, account.NewClient{ID: "fixed", RedirectURIs: []string{"https://a/cb"}}); account.ErrorCode(err) != account.Conflict {
		t.Fatalf("shadowing a static client: %v", err)
	}
	var ae *account.Error
	if !errors.As(svc2.Clients.DeleteClient(ctx, account.SystemActor, "fixed"), &ae) {
		t.Fatal("not an *account.Error")
	}
}
