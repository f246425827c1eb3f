package account_test

import (
	"context"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// A recovery email set before a directory took over the email is not in
// force once it has: reset mail goes to the directory's address, the
// profile and the API show no recovery email, and the person may remove
// the stored one (but not set another).
func TestRecoveryEmailFromBeforeTheDirectory(t *testing.T) {
	ctx := context.Background()
	svc, db, _ := newProfileService(t, account.Policy{})
	u := newProfileUser(t, svc, "carol")
	if _, err := svc.UpdateProfile(ctx, u.ID, map[string]string{"recovery_email": "carol@elsewhere.example"}); err != nil {
		t.Fatal(err)
	}
	if got := svc.RecoveryAddress(getUser(t, db, u.ID)); got != "carol@elsewhere.example" {
		t.Fatalf("recovery address of a local account: %q", got)
	}
	u, err := db.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) { u.Source = "corp-ldap"; return u, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.RecoveryAddress(u); got != u.Email {
		t.Errorf("reset mail of a directory user goes to %q, want the directory's %q", got, u.Email)
	}
	if got := svc.FieldValue(u, "recovery_email"); got != "" {
		t.Errorf("the profile shows the recovery email %q as in use", got)
	}
	if _, err := svc.UpdateProfile(ctx, u.ID, map[string]string{"recovery_email": "other@elsewhere.example"}); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("setting another recovery email: %v", err)
	}
	if _, err := svc.UpdateProfile(ctx, u.ID, map[string]string{"recovery_email": ""}); err != nil {
		t.Errorf("removing the stored recovery email: %v", err)
	}
	if got := getUser(t, db, u.ID).RecoveryEmail; got != "" {
		t.Errorf("the stored recovery email is still %q", got)
	}
}
