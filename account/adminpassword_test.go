package account_test

import (
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

func TestAdminSetPassword(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	f.signInEverywhere(u)
	before := f.stored(u.ID)

	// The policy applies, on the password field, and changes nothing.
	for _, pw := range []string{"short", "alice@example.com"} {
		if _, err := f.svc.Admin.SetPassword(f.ctx, f.actor, u.ID, pw); account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != "password" {
			t.Errorf("%q: %v (field %q)", pw, err, account.ErrorField(err))
		}
	}
	if _, err := f.svc.Admin.SetPassword(f.ctx, f.actor, "nobody", "a brand new password"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("unknown user: %v", err)
	}
	ro := f.actor
	ro.ReadOnly = true
	if _, err := f.svc.Admin.SetPassword(f.ctx, ro, u.ID, "a brand new password"); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("read-only actor: %v", err)
	}
	if got := f.stored(u.ID); got.PasswordHash != before.PasswordHash {
		t.Fatal("a refused password was stored")
	}

	f.clock.Add(1)
	out, err := f.svc.Admin.SetPassword(f.ctx, f.actor, u.ID, "a brand new password")
	if err != nil {
		t.Fatal(err)
	}
	if out.Sessions != 2 || out.Tokens == 0 {
		t.Errorf("signed out %+v", out)
	}
	f.signedOut(u)
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: adminTestPassword}); err == nil {
		t.Error("the old password still works")
	}
	if _, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: "a brand new password"}); err != nil {
		t.Errorf("new password: %v", err)
	}
	if got := f.stored(u.ID); !got.PasswordChangedAt.Equal(f.clock.Now()) {
		t.Errorf("password_changed_at %v", got.PasswordChangedAt)
	}
	e := f.lastEvent(u.ID, "user.password_set")
	if e.ActorID != f.root.ID || len(e.Changes) != 1 || e.Changes[0].Field != "password" || e.Changes[0].After != "" || !strings.Contains(e.Reason, "2 sessions ended") {
		t.Errorf("event %+v", e)
	}

	// A directory's account keeps its password there.
	if _, err := f.db.UpdateUser(f.ctx, u.ID, func(u storage.User) (storage.User, error) { u.Source = "corp-ldap"; return u, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Admin.SetPassword(f.ctx, f.actor, u.ID, "another good password"); account.ErrorCode(err) != account.Forbidden || !strings.Contains(account.ErrorMessage(err), "corp-ldap") {
		t.Errorf("directory user: %v", err)
	}
}

func TestAdminUserByLogin(t *testing.T) {
	f := newAdminFixture(t)
	u := f.user("alice", false)
	for _, login := range []string{"alice", "ALICE", " alice@example.com ", "Alice@Example.com"} {
		d, err := f.svc.Admin.UserByLogin(f.ctx, f.actor, login)
		if err != nil || d.User.ID != u.ID || d.ETag == "" || d.User.PasswordHash != "" {
			t.Errorf("%q: %v %+v", login, err, d.User)
		}
	}
	for _, login := range []string{"nobody", "", strings.Repeat("x", 1000)} {
		_, err := f.svc.Admin.UserByLogin(f.ctx, f.actor, login)
		if account.ErrorCode(err) != account.NotFound || !strings.HasPrefix(account.ErrorMessage(err), "No user ") || len(account.ErrorMessage(err)) > 120 {
			t.Errorf("%.20q: %v", login, err)
		}
	}
	// Only administrators may look.
	plain := f.user("bob", false)
	if _, err := f.svc.Admin.UserByLogin(f.ctx, account.Actor{Kind: account.ActorUser, UserID: plain.ID}, "alice"); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("non-admin: %v", err)
	}
}
