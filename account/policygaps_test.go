package account_test

import (
	"context"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

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

	if l, reason := svc.FieldLock(owned, "recovery_email"); !l || reason != "Managed by owns-email." {
		t.Errorf("recovery email of a user whose directory owns the email: %v %q", l, reason)
	}
	_, err := svc.UpdateProfile(ctx, owned.ID, map[string]string{"recovery_email": "mine@elsewhere.example"})
	if account.ErrorCode(err) != account.Forbidden || account.ErrorField(err) != "recovery_email" {
		t.Errorf("crafted change of a locked recovery email: %v", err)
	}
	if u := getUser(t, db, owned.ID); u.RecoveryEmail != "" {
		t.Errorf("a refused change was stored: %q", u.RecoveryEmail)
	}
	for _, u := range []storage.User{names, local} {
		if l, _ := svc.FieldLock(u, "recovery_email"); l {
			t.Errorf("%s: recovery email locked though the email is not owned by a directory", u.Username)
		}
		if got, err := svc.UpdateProfile(ctx, u.ID, map[string]string{"recovery_email": "backup@example.net"}); err != nil || got.RecoveryEmail != "backup@example.net" {
			t.Errorf("%s: recovery email change: %v", u.Username, err)
		}
	}
}
