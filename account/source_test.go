package account_test

import (
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// What a directory sets for its users, the verified flag and the groups
// among it, is named after the directory, not Keyport.
func TestSourceOfDirectoryFields(t *testing.T) {
	svc, _, _ := newProfileService(t, account.Policy{})
	fromLDAP := storage.User{ID: "u2", Username: "carol", Source: "corp-ldap"}
	local := storage.User{ID: "u1", Username: "alice"}
	for _, key := range []string{"email", "email_verified", "groups"} {
		if got := svc.Users.Source(fromLDAP, key); got != "corp-ldap" {
			t.Errorf("source of %s for a directory user: %q", key, got)
		}
		if locked, reason := svc.Users.FieldLock(fromLDAP, key); !locked || reason != "Managed by corp-ldap." {
			t.Errorf("lock of %s for a directory user: %v %q", key, locked, reason)
		}
	}
	for _, key := range []string{"email_verified", "groups", "phone_number_verified", "last_login"} {
		if got := svc.Users.Source(local, key); got != "Keyport" {
			t.Errorf("source of %s for a local user: %q", key, got)
		}
	}
	for _, key := range []string{"phone_number_verified", "last_login", "roles"} {
		if got := svc.Users.Source(fromLDAP, key); got != "Keyport" {
			t.Errorf("source of %s, which no directory sets: %q", key, got)
		}
	}
}
