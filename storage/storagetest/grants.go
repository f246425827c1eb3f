package storagetest

import (
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// grantListTests cover what a user's connected-apps page needs: every
// grant of one user, the removal of one, and the last use that storing a
// token records on the grant.
var grantListTests = []test{
	{"ListOneUsersGrants", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		gs, err := s.ListGrants(ctx, "u1")
		ok(t, err, "list grants of a user with none")
		equal(t, len(gs), 0, "grants of a user with none")
		put := func(userID, clientID string, scopes ...string) storage.Grant {
			g := storage.Grant{UserID: userID, ClientID: clientID, Scopes: scopes, CreatedAt: now, UpdatedAt: now, LastUsedAt: now.Add(-time.Hour)}
			ok(t, s.PutGrant(ctx, g, nil), "put grant of %s to %s", userID, clientID)
			return g
		}
		// Stored out of order; "u10" starts with "u1" and is someone else.
		wiki := put("u1", "wiki", "openid", "email")
		chat := put("u1", "chat", "openid")
		put("u10", "chat", "openid")
		put("u2", "wiki", "openid")
		gs, err = s.ListGrants(ctx, "u1")
		ok(t, err, "list grants of u1")
		equal(t, gs, []storage.Grant{chat, wiki}, "u1's grants, by client ID, each as stored")
		gs, err = s.ListGrants(ctx, "u10")
		ok(t, err, "list grants of u10")
		equal(t, idsOf(gs, func(g storage.Grant) string { return g.UserID + "/" + g.ClientID }), []string{"u10/chat"}, "u10's grants")
	}},
	{"DeleteOneGrant", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		for _, k := range [][2]string{{"u1", "wiki"}, {"u1", "chat"}, {"u2", "wiki"}} {
			ok(t, s.PutGrant(ctx, storage.Grant{UserID: k[0], ClientID: k[1], Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}, nil), "put grant %v", k)
		}
		ok(t, s.DeleteGrant(ctx, "u1", "wiki"), "delete u1's grant to wiki")
		_, err := s.GetGrant(ctx, "u1", "wiki")
		isErr(t, err, storage.ErrNotFound, "the deleted grant")
		gs, err := s.ListGrants(ctx, "u1")
		ok(t, err, "list u1's grants")
		equal(t, idsOf(gs, func(g storage.Grant) string { return g.ClientID }), []string{"chat"}, "u1's grants left")
		_, err = s.GetGrant(ctx, "u2", "wiki")
		ok(t, err, "another user's grant to the same app stays")

		isErr(t, s.DeleteGrant(ctx, "u1", "wiki"), storage.ErrNotFound, "delete the grant again")
		isErr(t, s.DeleteGrant(ctx, "u3", "wiki"), storage.ErrNotFound, "delete a grant never given")
		ok(t, s.PutGrant(ctx, storage.Grant{UserID: "u1", ClientID: "wiki", Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}, nil), "consent again after the removal")
		_, err = s.GetGrant(ctx, "u1", "wiki")
		ok(t, err, "the new grant")
	}},
	{"TokensMoveLastUse", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, t0 := t.Context(), c.Now()
		for _, k := range [][2]string{{"u1", "wiki"}, {"u1", "chat"}, {"u2", "wiki"}} {
			ok(t, s.PutGrant(ctx, storage.Grant{UserID: k[0], ClientID: k[1], Scopes: []string{"openid"}, CreatedAt: t0, UpdatedAt: t0}, nil), "put grant %v", k)
		}
		lastUse := func(userID, clientID string) time.Time {
			t.Helper()
			g, err := s.GetGrant(ctx, userID, clientID)
			ok(t, err, "get grant of %s to %s", userID, clientID)
			return g.LastUsedAt
		}
		equal(t, lastUse("u1", "wiki"), time.Time{}, "last use before any token")

		// A sign-in: the first access and refresh token.
		t1 := advance(c, time.Minute)
		r1 := newRefresh("r1", "f1", "u1", "wiki", t1, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "", "u1", "wiki", t1, time.Hour), &r1), "tokens of a sign-in")
		equal(t, lastUse("u1", "wiki"), t1, "last use after the sign-in")
		equal(t, lastUse("u1", "chat"), time.Time{}, "the user's other app")
		equal(t, lastUse("u2", "wiki"), time.Time{}, "another user at the same app")

		// A refresh moves it on.
		t2 := advance(c, time.Minute)
		ok(t, s.RotateRefreshToken(ctx, "h-r1", newRefresh("r2", "f1", "u1", "wiki", t2, time.Hour), newAccess("a2", "f1", "u1", "wiki", t2, time.Hour)), "refresh")
		equal(t, lastUse("u1", "wiki"), t2, "last use after the refresh")

		// A token made earlier but stored later never moves it back.
		ok(t, s.CreateTokens(ctx, newAccess("a-old", "", "u1", "wiki", t1, time.Hour), nil), "an older token stored late")
		equal(t, lastUse("u1", "wiki"), t2, "last use after a late older token")

		// A consent given again keeps what it was given.
		g, err := s.GetGrant(ctx, "u1", "wiki")
		ok(t, err, "get grant")
		g.Scopes, g.UpdatedAt = []string{"openid", "email"}, advance(c, time.Minute)
		ok(t, s.PutGrant(ctx, g, nil), "consent to more scopes")
		equal(t, lastUse("u1", "wiki"), t2, "last use after the new consent")

		// Tokens where there is no grant create none: an app that skips
		// consent, or an app's own (machine) token.
		t3 := advance(c, time.Minute)
		ok(t, s.CreateTokens(ctx, newAccess("a3", "", "u1", "portal", t3, time.Hour), nil), "token for an app without consent")
		_, err = s.GetGrant(ctx, "u1", "portal")
		isErr(t, err, storage.ErrNotFound, "grant after a token for an app without consent")
		ok(t, s.CreateTokens(ctx, newAccess("a4", "", "", "wiki", t3, time.Hour), nil), "machine token of wiki")
		equal(t, lastUse("u1", "wiki"), t2, "u1's last use after wiki's machine token")
		equal(t, lastUse("u2", "wiki"), time.Time{}, "u2's last use after wiki's machine token")

		// An access token alone (no refresh token) moves it on too, and one
		// of a family that does not exist is refused and moves nothing.
		ok(t, s.CreateTokens(ctx, newAccess("a5", "", "u1", "wiki", t3, time.Hour), nil), "an access token alone")
		equal(t, lastUse("u1", "wiki"), t3, "last use after an access token alone")
		t4 := advance(c, time.Minute)
		isErr(t, s.CreateTokens(ctx, newAccess("a6", "no-such-family", "u1", "wiki", t4, time.Hour), nil), storage.ErrNotFound, "an access token of a missing family")
		equal(t, lastUse("u1", "wiki"), t3, "last use after a refused token")
		_, err = s.GetAccessToken(ctx, "a6")
		isErr(t, err, storage.ErrNotFound, "the refused token")
	}},
}

// advance moves the clock on by d and returns the new time.
func advance(c *testclock.Clock, d time.Duration) time.Time {
	c.Add(d)
	return c.Now()
}
