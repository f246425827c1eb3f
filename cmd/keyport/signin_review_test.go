package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// sessionRefusals counts the refusals of an existing session at the
// account's IP allowlist in u's history.
func sessionRefusals(t *testing.T, srv *testServer, userID string) int {
	t.Helper()
	attempts, err := srv.Main.Store.ListLoginAttempts(context.Background(), userID, 50)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range attempts {
		if !a.Success && strings.Contains(a.Reason, "existing session") {
			n++
		}
	}
	return n
}

// TestAllowlistRefusalOfSessionIsInHistory: a browser whose session comes
// from outside the account's allowlist gets the sign-in page instead of a
// code, and the refusal is in the user's history once, as for
// prompt=none (and as before the sign-in record moved to account.Flow).
func TestAllowlistRefusalOfSessionIsInHistory(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	home := newBrowser(t)
	signInPortal(t, srv, home, "alice")
	if _, err := srv.Main.Store.UpdateUser(context.Background(), alice.ID, func(u storage.User) (storage.User, error) {
		u.AllowedNetworks = []string{"127.0.0.1"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	away := browserFrom(t, "127.0.0.5")
	away.client.Jar = home.client.Jar
	p := app.authorize(away, "st-away")
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Sign-in from this network is not allowed") {
		t.Fatalf("session outside the allowlist: %d %s", p.Status, truncateBody(p.Body))
	}
	if n := sessionRefusals(t, srv, alice.ID); n != 1 {
		t.Errorf("refusals of the session in the history: %d, want 1", n)
	}
}
