package account_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// A system account is made without a password or invitation, never signs
// in (even with a password hash that reached it by import), has no
// password to reset, and gets API tokens only from an administrator, each
// with an expiry.
func TestSystemAccounts(t *testing.T) {
	f := newAdminFixture(t)
	for name, n := range map[string]account.AdminNewUser{
		"with a password":     {Username: "bot1", Email: "bot1@example.com", System: true, Password: adminTestPassword},
		"with an invitation":  {Username: "bot1", Email: "bot1@example.com", System: true, Invite: true},
		"neither, not system": {Username: "bot1", Email: "bot1@example.com"},
	} {
		if _, _, err := f.svc.Admin.CreateUser(f.ctx, f.actor, n); account.ErrorField(err) != "password" {
			t.Errorf("create %s: got %v, want a refusal naming password", name, err)
		}
	}
	bot, link, err := f.svc.Admin.CreateUser(f.ctx, f.actor, account.AdminNewUser{Username: "bot", Email: "bot@example.com", System: true, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if !bot.System || !f.stored(bot.ID).System || bot.PasswordHash != "" || link.URL != "" {
		t.Fatalf("system account: %+v, link %q", bot, link.URL)
	}
	if e := f.lastEvent(bot.ID, "user.created"); e.Reason != "system" || e.ActorID != f.root.ID {
		t.Errorf("created event: %+v", e)
	}

	// No password to reset or set.
	if _, err := f.svc.Admin.PasswordResetLink(f.ctx, f.actor, bot.ID); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("reset link for a system account: %v", err)
	}
	if _, err := f.svc.Admin.SetPassword(f.ctx, f.actor, bot.ID, "a long enough new password 1"); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("set the password of a system account: %v", err)
	}

	// Even with a password hash (as an old export might carry), no sign-in.
	hash, err := account.HashPassword(adminTestPassword, account.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.db.UpdateUser(f.ctx, bot.ID, func(u storage.User) (storage.User, error) { u.PasswordHash = hash; return u, nil }); err != nil {
		t.Fatal(err)
	}
	_, err = f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "bot", Password: adminTestPassword, IP: "192.0.2.1"})
	if account.ErrorCode(err) != account.Forbidden {
		t.Fatalf("password sign-in as a system account: %v", err)
	}
	if as, _ := f.db.ListLoginAttempts(f.ctx, bot.ID, 1); len(as) != 1 || as[0].Success || as[0].Reason != "system account" {
		t.Errorf("sign-in history: %+v", as)
	}

	// Tokens: only for system accounts, with an expiry within bounds.
	now := f.clock.Now()
	person := f.user("carol", false)
	ok := account.NewAPIToken{Name: "backup job", Scope: account.ScopeReadOnly, ExpiresAt: now.Add(90 * 24 * time.Hour)}
	if _, _, err := f.svc.Admin.CreateAPIToken(f.ctx, f.actor, person.ID, ok); account.ErrorCode(err) != account.Conflict {
		t.Errorf("token for a person's account: %v", err)
	}
	for name, n := range map[string]account.NewAPIToken{
		"no expiry":          {Name: "x", Scope: account.ScopeReadOnly},
		"expiry too far":     {Name: "x", Scope: account.ScopeReadOnly, ExpiresAt: now.Add(account.MaxSystemTokenLifetime + time.Hour)},
		"expiry in the past": {Name: "x", Scope: account.ScopeReadOnly, ExpiresAt: now.Add(-time.Minute)},
	} {
		if _, _, err := f.svc.Admin.CreateAPIToken(f.ctx, f.actor, bot.ID, n); account.ErrorField(err) != "expires" {
			t.Errorf("%s: got %v, want a refusal naming expires", name, err)
		}
	}
	readOnly := f.actor
	readOnly.ReadOnly = true
	if _, _, err := f.svc.Admin.CreateAPIToken(f.ctx, readOnly, bot.ID, ok); err == nil {
		t.Error("a read-only actor issued a token")
	}
	token, cred, err := f.svc.Admin.CreateAPIToken(f.ctx, f.actor, bot.ID, ok)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(token, account.APITokenPrefix) || cred.Hash == token || !cred.ValidUntil.Equal(ok.ExpiresAt) {
		t.Errorf("token %q, credential %+v", token, cred)
	}
	if e := f.lastEvent(bot.ID, account.EventAPITokenCreated); e.ActorID != f.root.ID {
		t.Errorf("token event names actor %q, want the administrator", e.ActorID)
	}
	got, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, token, "192.0.2.1", "job")
	if err != nil || got.ID != bot.ID {
		t.Fatalf("the system account's token: %v (user %q)", err, got.ID)
	}
	if err := f.svc.Admin.RevokeAPIToken(f.ctx, f.actor, bot.ID, cred.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, token, "192.0.2.1", "job"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("a revoked token: %v", err)
	}
	if err := f.svc.Admin.RevokeAPIToken(f.ctx, f.actor, bot.ID, cred.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("revoke twice: %v", err)
	}
}

// An import may bring system accounts, but never one with a password.
func TestImportSystemAccountWithPasswordRefused(t *testing.T) {
	f := newAdminFixture(t)
	hash, err := account.HashPassword(adminTestPassword, account.Argon2Params{MemoryKiB: 64, Iterations: 1, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"username":"bot","email":"bot@example.com","system":true,"password_hash":"` + hash + `"}` + "\n"
	rep, err := f.svc.Users.ImportUsers(f.ctx, f.actor, strings.NewReader(in), account.ImportOptions{})
	if err == nil || len(rep.Problems) != 1 || rep.Problems[0].Field != "system" {
		t.Fatalf("import: %v, %+v", err, rep)
	}
	in = `{"username":"bot","email":"bot@example.com","system":true}` + "\n"
	if _, err := f.svc.Users.ImportUsers(f.ctx, f.actor, strings.NewReader(in), account.ImportOptions{}); err != nil {
		t.Fatal(err)
	}
	u, err := f.db.GetUserByLogin(f.ctx, "bot")
	if err != nil || !u.System {
		t.Fatalf("imported system account: %v, %+v", err, u)
	}
}

// A system account cannot enrol a second factor (it never signs in), so a
// policy requiring one must not shut its API tokens out: it applies to
// people.
func TestSystemAccountTokenUnderRequire2FA(t *testing.T) {
	f := newAccessFixture(t, true)
	cli := account.Actor{Kind: account.ActorCLI}
	bot, _, err := f.svc.Admin.CreateUser(f.ctx, cli, account.AdminNewUser{Username: "bot", Email: "bot@example.com", System: true, Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := f.svc.Admin.CreateAPIToken(f.ctx, cli, bot.ID, account.NewAPIToken{Name: "job", Scope: account.ScopeReadOnly, ExpiresAt: f.clock.Now().Add(24 * time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if got, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, token, "192.0.2.1", "job"); err != nil || got.ID != bot.ID {
		t.Fatalf("the system account's token under require_2fa: %v (user %q)", err, got.ID)
	}
	// A person without a second factor is still held to the policy.
	if err := f.svc.Credentials.CheckTwoFactorPolicy(f.ctx, f.user()); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("alice without a second factor under require_2fa: %v", err)
	}
}
