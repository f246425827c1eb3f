package storagetest

import (
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// tokenExchangeTests check that what token exchange (RFC 8693) adds to the
// records comes back as it was stored: an app's exchange audiences, and an
// exchanged token's actors, app-password mark and the app password it was
// issued for (CredentialID, which ends it when the app password goes).
var tokenExchangeTests = []test{
	{"ClientAudiences", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		app := newClient("app")
		app.GrantTypes = append(app.GrantTypes, "urn:ietf:params:oauth:grant-type:token-exchange")
		app.TokenExchangeAudiences = []string{"api", "https://api.example.com/"}
		ok(t, s.CreateClient(ctx, app), "create app")
		got, err := s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, got.TokenExchangeAudiences, app.TokenExchangeAudiences, "audiences")
	}},
	{"ExchangedAccessToken", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create user")
		ok(t, s.CreateClient(ctx, newClient("app")), "create app")
		a := newAccess("a1", "", "u1", "app", now, time.Hour)
		a.Audience, a.Actors = []string{"api"}, []string{"app", "front"}
		p := newAccess("a2", "", "u1", "app", now, time.Hour)
		p.AppPassword, p.CredentialID = true, "cred-1"
		ok(t, s.CreateTokens(ctx, a, nil), "create a1")
		ok(t, s.CreateTokens(ctx, p, nil), "create a2")
		got, err := s.GetAccessToken(ctx, "a1")
		ok(t, err, "get a1")
		equal(t, got, a, "a1")
		got, u, err := s.GetAccessTokenAndUser(ctx, "a2")
		ok(t, err, "get a2 and its user")
		equal(t, got, p, "a2")
		equal(t, u.ID, "u1", "a2's user")
	}},
}
