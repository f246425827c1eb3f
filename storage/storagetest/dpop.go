package storagetest

import (
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// dpopTests check that what DPoP (RFC 9449) adds to the records comes
// back as it was stored: an app's DPoP settings, the key an access token,
// a refresh-token family and an authorization request are bound to.
var dpopTests = []test{
	{"ClientSettings", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		app := newClient("app")
		app.DPoPBoundAccessTokens, app.RequireDPoPNonce = true, true
		ok(t, s.CreateClient(ctx, app), "create app")
		got, err := s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, got.DPoPBoundAccessTokens && got.RequireDPoPNonce, true, "DPoP settings")
	}},
	{"BoundTokens", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create user")
		ok(t, s.CreateClient(ctx, newClient("app")), "create app")
		a := newAccess("a1", "f1", "u1", "app", now, time.Hour)
		a.DPoPJKT = jkt
		r := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		r.DPoPJKT = jkt
		ok(t, s.CreateTokens(ctx, a, &r), "create bound tokens")
		got, u, _, err := s.GetAccessTokenAndUser(ctx, "a1")
		ok(t, err, "get a1 and its user")
		equal(t, got, a, "a1")
		equal(t, u.ID, "u1", "a1's user")
		rt, err := s.GetRefreshToken(ctx, "h-r1")
		ok(t, err, "get r1")
		equal(t, rt.DPoPJKT, jkt, "r1's key")
		// A rotation keeps what the caller put on the successor.
		r2 := newRefresh("r2", "f1", "u1", "app", now, time.Hour)
		r2.DPoPJKT = jkt
		ok(t, s.RotateRefreshToken(ctx, "h-r1", r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "rotate r1")
		rt, err = s.GetRefreshToken(ctx, "h-r2")
		ok(t, err, "get r2")
		equal(t, rt.DPoPJKT, jkt, "r2's key")
	}},
	{"BoundCode", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		const jkt = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
		ok(t, s.CreateClient(ctx, newClient("app")), "create app")
		a := newAuthRequest("ar1", now, 10*time.Minute)
		a.DPoPJKT, a.UserID = jkt, "u1"
		ok(t, createAuthRequest(ctx, s, a), "create auth request")
		ok(t, s.IssueCode(ctx, "ar1", "code1", now.Add(time.Minute)), "issue code")
		got, err := s.RedeemCode(ctx, "code1", "app", storage.IssuedTokens{AccessTokenID: "a1", FamilyID: "f1"})
		ok(t, err, "redeem code")
		equal(t, got.DPoPJKT, jkt, "the code's key")
	}},
}
