package main

import (
	"context"
	"strings"
	"testing"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// profileFieldText is the text of the profile page's row for field key:
// the .profile-field element that holds the field's label.
func profileFieldText(t *testing.T, body, key string) string {
	t.Helper()
	for _, row := range parsePage(t, body).all("div", "class", "profile-field") {
		if _, ok := row.first("label", "for", "f-"+key); ok {
			return row.text()
		}
	}
	t.Fatalf("the profile page has no field %s", key)
	return ""
}

// The profile page names the upstream provider (by its display name) as
// the source of what it sets: the email's verified flag and the groups,
// not "Set by Keyport · Source: Keyport".
func TestProfileNamesTheRealSource(t *testing.T) {
	up, down := upstreamPair(t, func(d *config.Directory) {
		d.GroupsClaim = "groups"
		d.Scopes = []string{"openid", "profile", "email", "groups"}
	})
	ursula, err := up.Main.Store.GetUserByLogin(context.Background(), "ursula")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := up.Main.Store.UpdateUser(context.Background(), ursula.ID, func(u storage.User) (storage.User, error) {
		u.Groups, u.EmailVerified = []string{"staff"}, true
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}

	b := newBrowser(t)
	signInUpstream(t, down, b, b.get(down.URL+"/login"))
	p := b.get(down.URL + "/profile")
	for _, key := range []string{"email_verified", "groups", "email"} {
		row := profileFieldText(t, p.Body, key)
		if !strings.Contains(row, "Managed by Upstream Keyport.") || !strings.Contains(row, "Source: Upstream Keyport") ||
			strings.Contains(row, "Set by Keyport") || strings.Contains(row, "Source: Keyport") {
			t.Errorf("%s row: %q", key, strings.Join(strings.Fields(row), " "))
		}
	}
	if row := profileFieldText(t, p.Body, "groups"); !strings.Contains(row, "staff") {
		t.Errorf("the groups from upstream are missing: %q", strings.Join(strings.Fields(row), " "))
	}
	// What Keyport itself keeps still says so.
	if row := profileFieldText(t, p.Body, "last_login"); !strings.Contains(row, "Source: Keyport") {
		t.Errorf("last sign-in row: %q", strings.Join(strings.Fields(row), " "))
	}
}
