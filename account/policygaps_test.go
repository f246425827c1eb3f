package account_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
)

// newLoggedService is a service on a real bbolt file whose log goes to the
// returned buffer.
func newLoggedService(t *testing.T, p account.Policy) (*account.Service, storage.Store, *testlog.Buffer) {
	t.Helper()
	p.Argon2, p.SessionLifetime = testArgon, time.Hour
	logs := &testlog.Buffer{}
	svc, db := account.NewTestService(t, account.TestServiceOptions{Policy: p, Log: slog.New(slog.NewTextHandler(logs, nil))})
	return svc, db, logs
}

// The recovery email is locked exactly when the user's directory owns the
// email: with the same reason, in FieldLock (the page, the API) and in
// UpdateProfile (crafted posts).
func TestRecoveryEmailLockedWithDirectoryEmail(t *testing.T) {
	ctx := context.Background()
	svc, db, _ := newProfileService(t, account.Policy{})
	saved := account.DirectoryOwnedFields
	t.Cleanup(func() { account.DirectoryOwnedFields = saved })
	account.DirectoryOwnedFields = func(source string) []string {
		switch source {
		case "owns-email":
			return []string{"email", "given_name"}
		case "names-only":
			return []string{"given_name"}
		}
		return nil
	}
	user := func(name, source string) storage.User {
		u := newProfileUser(t, svc, name)
		u, err := db.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) { u.Source = source; return u, nil })
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	owned, names, local := user("carol", "owns-email"), user("dora", "names-only"), user("erin", "")

	if l, reason := svc.Users.FieldLock(owned, "recovery_email"); !l || reason != "Managed by owns-email." {
		t.Errorf("recovery email of a user whose directory owns the email: %v %q", l, reason)
	}
	_, err := svc.Users.UpdateProfile(ctx, owned.ID, map[string]string{"recovery_email": "mine@elsewhere.example"})
	if account.ErrorCode(err) != account.Forbidden || account.ErrorField(err) != "recovery_email" {
		t.Errorf("crafted change of a locked recovery email: %v", err)
	}
	if u := getUser(t, db, owned.ID); u.RecoveryEmail != "" {
		t.Errorf("a refused change was stored: %q", u.RecoveryEmail)
	}
	for _, u := range []storage.User{names, local} {
		if l, _ := svc.Users.FieldLock(u, "recovery_email"); l {
			t.Errorf("%s: recovery email locked though the email is not owned by a directory", u.Username)
		}
		if got, err := svc.Users.UpdateProfile(ctx, u.ID, map[string]string{"recovery_email": "backup@example.net"}); err != nil || got.RecoveryEmail != "backup@example.net" {
			t.Errorf("%s: recovery email change: %v", u.Username, err)
		}
	}
}

// A profile form posts every field on each save; the log line names only
// the fields whose value changed, and a save that changed nothing logs
// nothing.
func TestProfileLogNamesChangedFields(t *testing.T) {
	ctx := context.Background()
	svc, _, logs := newLoggedService(t, account.Policy{})
	u := newProfileUser(t, svc, "alice")
	logs.Take()
	form := map[string]string{"given_name": "", "family_name": "", "nickname": "", "email": "alice@example.com",
		"recovery_email": "", "phone_number": "", "locale": "", "zoneinfo": "", "theme": ""}
	form["given_name"], form["zoneinfo"] = "Alice", "Europe/Berlin"
	if _, err := svc.Users.UpdateProfile(ctx, u.ID, form); err != nil {
		t.Fatal(err)
	}
	line := logs.Take()
	if !strings.Contains(line, "profile updated") || !strings.Contains(line, "fields=\"[given_name zoneinfo]\"") {
		t.Errorf("log of a save that changed two fields: %s", line)
	}
	if strings.Contains(line, "Europe/Berlin") {
		t.Errorf("the log carries a value: %s", line)
	}
	if _, err := svc.Users.UpdateProfile(ctx, u.ID, form); err != nil {
		t.Fatal(err)
	}
	if line := logs.Take(); strings.Contains(line, "profile updated") {
		t.Errorf("a save that changed nothing was logged: %s", line)
	}
}

// The verified flag follows the address: a new address is not verified,
// going back to a verified one is, and the list of verified addresses is
// bounded.
func TestEmailVerifiedPerAddress(t *testing.T) {
	ctx := context.Background()
	svc, db, _ := newLoggedService(t, account.Policy{})
	u, err := svc.Users.CreateUser(ctx, account.NewUser{Username: "alice", Email: "Alice@Example.com", EmailVerified: true, Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	set := func(addr string) storage.User {
		t.Helper()
		got, err := svc.Users.UpdateProfile(ctx, u.ID, map[string]string{"email": addr})
		if err != nil {
			t.Fatalf("change email to %s: %v", addr, err)
		}
		return got
	}
	if got := set("alice@private.example"); got.EmailVerified {
		t.Error("a new address is verified")
	}
	if got := set("alice@example.com"); !got.EmailVerified || got.Email != "alice@example.com" {
		t.Errorf("back to the verified address (in another case): %+v", got)
	}
	if got := set("alice@private.example"); got.EmailVerified {
		t.Error("an address never verified became verified")
	}

	// The administrator vouches for the current address; it then stays
	// verified across changes too.
	if got, err := svc.Users.SetEmailVerified(ctx, "alice", true); err != nil || !got.EmailVerified {
		t.Fatalf("set verified: %v %+v", err, got)
	}
	set("alice@example.com")
	if got := set("alice@private.example"); !got.EmailVerified {
		t.Error("an address the admin verified is not verified when chosen again")
	}
	// Withdrawing the flag forgets that address.
	if got, err := svc.Users.SetEmailVerified(ctx, "alice@private.example", false); err != nil || got.EmailVerified {
		t.Fatalf("set not verified: %v", err)
	}
	set("alice@example.com")
	if got := set("alice@private.example"); got.EmailVerified {
		t.Error("a withdrawn address is verified again")
	}

	// Only the last few addresses are remembered.
	for i := range 7 {
		set(fmt.Sprintf("a%d@example.org", i))
		if _, err := svc.Users.SetEmailVerified(ctx, "alice", true); err != nil {
			t.Fatal(err)
		}
	}
	stored := getUser(t, db, u.ID)
	if len(stored.VerifiedEmails) != 5 || stored.VerifiedEmails[4] != "a6@example.org" || slices.Contains(stored.VerifiedEmails, "alice@example.com") {
		t.Errorf("remembered addresses: %v", stored.VerifiedEmails)
	}
	if got := set("a2@example.org"); !got.EmailVerified {
		t.Error("a recent verified address was forgotten")
	}
	if got := set("a0@example.org"); got.EmailVerified {
		t.Error("the oldest address is still remembered")
	}

	if _, err := svc.Users.SetEmailVerified(ctx, "nobody", true); account.ErrorCode(err) != account.NotFound {
		t.Errorf("unknown user: %v", err)
	}
	// A directory's address is the directory's to verify.
	if _, err := db.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) { u.Source = "corp-ldap"; return u, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Users.SetEmailVerified(ctx, "alice", false); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("verified flag of a directory address: %v", err)
	}
}

// newBenchService is newLoggedService for benchmarks.
func newBenchService(b *testing.B) *account.Service {
	b.Helper()
	svc, _ := account.NewTestService(b, account.TestServiceOptions{Policy: account.Policy{MinPasswordScore: 3}, Log: slog.New(slog.DiscardHandler), NoSealer: true})
	return svc
}
