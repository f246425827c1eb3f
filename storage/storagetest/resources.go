package storagetest

import (
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// resourceTests check that what resource indicators (RFC 8707) add to the
// records comes back as it was stored: an app's resources, the resources
// of a sign-in through to its code's redemption, a device authorization's
// through its approval and redemption, and a refresh family's through a
// rotation.
var resourceTests = []test{
	{"ClientResources", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		app := newClient("app")
		app.Resources = []string{"https://api.example.com/", "urn:example:orders"}
		ok(t, s.CreateClient(ctx, app), "create app")
		got, err := s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, got.Resources, app.Resources, "resources")
	}},
	{"SignInResources", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		a := newAuthRequest("ar1", c.Now(), 10*time.Minute)
		a.UserID, a.Completed = "u1", true
		a.Resources = []string{"https://api.example.com/", "https://files.example.com/"}
		ok(t, createAuthRequest(ctx, s, a), "create")
		got, err := s.GetAuthRequest(ctx, "ar1")
		ok(t, err, "get")
		equal(t, got.Resources, a.Resources, "stored resources")
		ok(t, s.IssueCode(ctx, "ar1", "code1", c.Now().Add(time.Minute)), "issue code")
		got, err = s.RedeemCode(ctx, "code1", "app", storage.IssuedTokens{})
		ok(t, err, "redeem")
		equal(t, got.Resources, a.Resources, "resources of the redeemed request")
	}},
	{"DeviceResources", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		d := newDeviceAuth(c.Now(), "h1", "BCDFGHJK")
		d.Resources = []string{"https://api.example.com/", "urn:example:orders"}
		ok(t, s.CreateDeviceAuthorization(ctx, d, 0), "create")
		got, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
		ok(t, err, "get")
		equal(t, got.Resources, d.Resources, "stored resources")
		got, err = s.UpdateDeviceAuthorization(ctx, "h1", approve(c.Now()))
		ok(t, err, "approve")
		equal(t, got.Resources, d.Resources, "resources of the approved request")
		got, err = s.UpdateDeviceAuthorization(ctx, "h1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
			d.State = storage.DeviceRedeemed
			return d, nil
		})
		ok(t, err, "redeem")
		equal(t, got.Resources, d.Resources, "resources of the redeemed request")
		got, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
		ok(t, err, "get the redeemed request")
		equal(t, got.Resources, d.Resources, "resources read back after the updates")
	}},
	{"RefreshFamilyResources", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create user")
		ok(t, s.CreateClient(ctx, newClient("app")), "create app")
		r1 := newRefresh("r1", "f1", "u1", "app", c.Now(), time.Hour)
		r1.Resources = []string{"https://api.example.com/"}
		a1 := newAccess("a1", "f1", "u1", "app", c.Now(), time.Hour)
		a1.Audience = r1.Resources
		ok(t, s.CreateTokens(ctx, a1, &r1), "create")
		got, err := s.GetRefreshToken(ctx, "h-r1")
		ok(t, err, "get r1")
		equal(t, got.Resources, r1.Resources, "resources of r1")
		r2 := newRefresh("r2", "f1", "u1", "app", c.Now(), time.Hour)
		r2.Resources = r1.Resources
		a2 := newAccess("a2", "f1", "u1", "app", c.Now(), time.Hour)
		a2.Audience = r1.Resources
		ok(t, s.RotateRefreshToken(ctx, "h-r1", r2, a2), "rotate r1")
		got, err = s.GetRefreshToken(ctx, "h-r2")
		ok(t, err, "get r2")
		equal(t, got.Resources, r1.Resources, "resources of r2")
		at, err := s.GetAccessToken(ctx, "a2")
		ok(t, err, "get a2")
		equal(t, at.Audience, a2.Audience, "audience of a2")
	}},
}
