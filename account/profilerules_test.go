package account_test

import (
	"context"
	"testing"
	"time"

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
	if _, err := svc.Users.UpdateProfile(ctx, u.ID, map[string]string{"recovery_email": "carol@elsewhere.example"}); err != nil {
		t.Fatal(err)
	}
	if got := svc.Users.RecoveryAddress(getUser(t, db, u.ID)); got != "carol@elsewhere.example" {
		t.Fatalf("recovery address of a local account: %q", got)
	}
	u, err := db.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) { u.Source = "corp-ldap"; return u, nil })
	if err != nil {
		t.Fatal(err)
	}
	if got := svc.Users.RecoveryAddress(u); got != u.Email {
		t.Errorf("reset mail of a directory user goes to %q, want the directory's %q", got, u.Email)
	}
	if got := svc.Users.FieldValue(u, "recovery_email"); got != "" {
		t.Errorf("the profile shows the recovery email %q as in use", got)
	}
	if _, err := svc.Users.UpdateProfile(ctx, u.ID, map[string]string{"recovery_email": "other@elsewhere.example"}); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("setting another recovery email: %v", err)
	}
	if _, err := svc.Users.UpdateProfile(ctx, u.ID, map[string]string{"recovery_email": ""}); err != nil {
		t.Errorf("removing the stored recovery email: %v", err)
	}
	if got := getUser(t, db, u.ID).RecoveryEmail; got != "" {
		t.Errorf("the stored recovery email is still %q", got)
	}
}

// A save that changes nothing writes nothing: the profile's last change,
// which apps read as updated_at, stays when the form is posted as it was.
func TestProfileSaveWithoutChanges(t *testing.T) {
	ctx := context.Background()
	svc, db, clock := newProfileService(t, account.Policy{})
	u := newProfileUser(t, svc, "alice")
	form := map[string]string{"given_name": "Alice", "family_name": "", "nickname": "", "email": "alice@example.com",
		"recovery_email": "", "phone_number": "", "locale": "", "zoneinfo": "Europe/Berlin", "theme": ""}
	clock.Add(time.Hour)
	saved, err := svc.Users.UpdateProfile(ctx, u.ID, form)
	if err != nil || !saved.UpdatedAt.Equal(clock.Now()) {
		t.Fatalf("first save: %v, updated %v", err, saved.UpdatedAt)
	}
	clock.Add(time.Hour)
	again, err := svc.Users.UpdateProfile(ctx, u.ID, form)
	if err != nil || again.GivenName != "Alice" {
		t.Fatalf("the same save again: %v %+v", err, again)
	}
	if stored := getUser(t, db, u.ID); !stored.UpdatedAt.Equal(saved.UpdatedAt) || !again.UpdatedAt.Equal(saved.UpdatedAt) {
		t.Errorf("a save that changed nothing moved the last change from %v to %v (returned %v)", saved.UpdatedAt, stored.UpdatedAt, again.UpdatedAt)
	}
}
