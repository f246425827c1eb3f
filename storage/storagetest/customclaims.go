package storagetest

import (
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// customClaimTests check that what custom claims per app add to the
// records comes back as it was stored: an app's mappings, and the scopes
// of custom claims a sign-in asked for by name.
var customClaimTests = []test{
	{"ClientMappings", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		app := newClient("app")
		app.CustomClaims = []storage.ClaimMapping{
			{Claim: "department", Source: "app_metadata.department", Scope: "org", In: []string{"id_token", "userinfo"}},
			{Claim: "app_roles", Source: "roles", Scope: "org", In: []string{"access_token"}},
		}
		ok(t, s.CreateClient(ctx, app), "create app")
		got, err := s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, got.CustomClaims, app.CustomClaims, "mappings")
		got, err = s.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) {
			c.CustomClaims = c.CustomClaims[:1]
			return c, nil
		})
		ok(t, err, "update app")
		again, err := s.GetClient(ctx, "app")
		ok(t, err, "get app again")
		equal(t, again.CustomClaims, app.CustomClaims[:1], "mappings after the update")
	}},
	{"AuthRequestScopes", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		a := newAuthRequest("r1", c.Now(), time.Minute)
		a.IDTokenClaims, a.CustomClaimScopes = []string{"department"}, []string{"org"}
		_, err := s.CreateAuthRequest(ctx, a, storage.PendingLimits{})
		ok(t, err, "create request")
		got, err := s.GetAuthRequest(ctx, "r1")
		ok(t, err, "get request")
		equal(t, got.CustomClaimScopes, a.CustomClaimScopes, "custom claim scopes")
	}},
}
