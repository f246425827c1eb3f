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
		got, u, _, err := s.GetAccessTokenAndUser(ctx, "a2")
		ok(t, err, "get a2 and its user")
		equal(t, got, p, "a2")
		equal(t, u.ID, "u1", "a2's user")
	}},
	// The app password an access token was issued for comes with it, in
	// the same read, as it is now: live, or zero once it is gone or has
	// expired. The provider checks it on every use of the token.
	{"AccessTokenCredential", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		for _, u := range []storage.User{newUser("u1", "alice", "alice@example.com"), newUser("u2", "bob", "bob@example.com")} {
			ok(t, s.CreateUser(ctx, u), "create %s", u.ID)
		}
		ok(t, s.CreateClient(ctx, newClient("app")), "create app")
		// Another user's credential of the same ID is not the token's.
		ok(t, s.CreateCredential(ctx, newCredential("pw", "u2", storage.KindAppPassword, "h-bob", nil, now)), "create bob's pw")
		p := newAccess("a1", "", "u1", "app", now, time.Hour)
		p.AppPassword, p.CredentialID = true, "pw"
		plain := newAccess("a2", "", "u1", "app", now, time.Hour)
		for _, a := range []storage.AccessToken{p, plain} {
			ok(t, s.CreateTokens(ctx, a, nil), "create %s", a.ID)
		}
		credentialOf := func(id string) storage.Credential {
			t.Helper()
			_, _, cred, err := s.GetAccessTokenAndUser(ctx, id)
			ok(t, err, "get %s", id)
			return cred
		}
		equal(t, credentialOf("a1"), storage.Credential{}, "a1's credential before alice has one of that ID")
		pw := newCredential("pw", "u1", storage.KindAppPassword, "h-alice", nil, now)
		ok(t, s.CreateCredential(ctx, pw), "create alice's pw")
		stored := func() storage.Credential {
			t.Helper()
			got, err := s.GetCredential(ctx, "u1", "pw")
			ok(t, err, "get alice's pw")
			return got
		}
		equal(t, credentialOf("a1"), stored(), "a1's credential")
		equal(t, credentialOf("a2"), storage.Credential{}, "the credential of a token issued for none")
		// As it is now, not as it was.
		_, err := s.UpdateCredential(ctx, "u1", "pw", func(c storage.Credential) (storage.Credential, error) { c.Name = "renamed"; return c, nil })
		ok(t, err, "rename alice's pw")
		equal(t, credentialOf("a1"), stored(), "a1's credential after a rename")
		ok(t, s.DeleteCredential(ctx, "u1", "pw"), "delete alice's pw")
		equal(t, credentialOf("a1"), storage.Credential{}, "a1's credential once it is deleted")
		pw.ExpiresAt = now.Add(10 * time.Minute)
		ok(t, s.CreateCredential(ctx, pw), "create alice's pw again, expiring")
		equal(t, credentialOf("a1"), stored(), "a1's expiring credential")
		c.Add(10 * time.Minute)
		equal(t, credentialOf("a1"), storage.Credential{}, "a1's credential once it expired")
	}},
}
