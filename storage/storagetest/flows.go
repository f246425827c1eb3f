package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

var authRequestTests = []test{
	{"CRUD", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		a := newAuthRequest("ar1", c.Now(), 10*time.Minute)
		ok(t, createAuthRequest(ctx, s, a), "create")
		isErr(t, createAuthRequest(ctx, s, a), storage.ErrConflict, "create with a taken ID")
		got, err := s.GetAuthRequest(ctx, "ar1")
		ok(t, err, "get")
		equal(t, got, a, "get")
		_, err = s.GetAuthRequest(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "get missing request")

		updated, err := s.UpdateAuthRequest(ctx, "ar1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
			a.UserID, a.SessionID, a.AuthTime, a.AMR, a.Completed = "u1", "s1", c.Now(), []string{"pwd", "otp", "mfa"}, true
			return a, nil
		})
		ok(t, err, "update")
		equal(t, updated.UserID, "u1", "returned user")
		got, err = s.GetAuthRequest(ctx, "ar1")
		ok(t, err, "get updated")
		equal(t, got, updated, "stored request equals returned request")

		_, err = s.UpdateAuthRequest(ctx, "ar1", func(a storage.AuthRequest) (storage.AuthRequest, error) {
			a.UserID = "u2"
			return a, errBoom
		})
		isErr(t, err, errBoom, "update whose fn fails")
		got, err = s.GetAuthRequest(ctx, "ar1")
		ok(t, err, "get")
		equal(t, got, updated, "request after a failed update")
		_, err = s.UpdateAuthRequest(ctx, "nobody", func(a storage.AuthRequest) (storage.AuthRequest, error) { return a, nil })
		isErr(t, err, storage.ErrNotFound, "update missing request")

		ok(t, s.DeleteAuthRequest(ctx, "ar1"), "delete")
		_, err = s.GetAuthRequest(ctx, "ar1")
		isErr(t, err, storage.ErrNotFound, "get deleted request")
		isErr(t, s.DeleteAuthRequest(ctx, "ar1"), storage.ErrNotFound, "delete again")
	}},
	{"Expiry", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		ok(t, createAuthRequest(ctx, s, newAuthRequest("ar1", c.Now(), 10*time.Minute)), "create ar1")
		ok(t, createAuthRequest(ctx, s, newAuthRequest("ar2", c.Now(), 20*time.Minute)), "create ar2")
		ok(t, s.IssueCode(ctx, "ar1", "code1", c.Now().Add(time.Hour)), "issue code")
		c.Add(10 * time.Minute)
		_, err := s.GetAuthRequest(ctx, "ar1")
		isErr(t, err, storage.ErrNotFound, "get expired request")
		_, err = s.UpdateAuthRequest(ctx, "ar1", func(a storage.AuthRequest) (storage.AuthRequest, error) { return a, nil })
		isErr(t, err, storage.ErrNotFound, "update expired request")
		isErr(t, s.IssueCode(ctx, "ar1", "code2", c.Now().Add(time.Hour)), storage.ErrNotFound, "issue a code for an expired request")
		_, err = s.RedeemCode(ctx, "code1", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "redeem the code of an expired request")
		_, err = s.GetAuthRequest(ctx, "ar2")
		ok(t, err, "get live request")
	}},
	{"Codes", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		later := c.Now().Add(time.Hour)
		isErr(t, s.IssueCode(ctx, "nobody", "code0", later), storage.ErrNotFound, "issue a code for a missing request")
		a := newAuthRequest("ar1", c.Now(), 10*time.Minute)
		a.UserID, a.Completed = "u1", true
		ok(t, createAuthRequest(ctx, s, a), "create")
		ok(t, s.IssueCode(ctx, "ar1", "code1", later), "issue code1")
		a.CodeIssued = true
		got, err := s.RedeemCode(ctx, "code1", "app", storage.IssuedTokens{})
		ok(t, err, "redeem code1")
		equal(t, got, a, "request of code1")
		replay, err := s.RedeemCode(ctx, "code1", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrTokenReused, "redeem code1 twice")
		equal(t, replay, storage.AuthRequest{ID: "ar1", UserID: "u1", ClientID: a.ClientID, CodeChallenge: a.CodeChallenge, CodeChallengeMethod: a.CodeChallengeMethod},
			"what a replay reports")
		_, err = s.RedeemCode(ctx, "nobody", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "redeem an unknown code")
		_, err = s.GetAuthRequest(ctx, "ar1")
		isErr(t, err, storage.ErrNotFound, "the request of a redeemed code")
		isErr(t, s.DeleteAuthRequest(ctx, "ar1"), storage.ErrNotFound, "delete the request of a redeemed code")

		// One request, one code: a second is refused, while the request
		// waits for its first and after it was redeemed.
		ok(t, createAuthRequest(ctx, s, newAuthRequest("ar5", c.Now(), 10*time.Minute)), "create ar5")
		ok(t, s.IssueCode(ctx, "ar5", "code5", later), "issue code5")
		isErr(t, s.IssueCode(ctx, "ar5", "code6", later), storage.ErrConflict, "issue a second code for ar5")
		isErr(t, s.IssueCode(ctx, "ar1", "code2", later), storage.ErrNotFound, "issue a second code for ar1")
		_, err = s.RedeemCode(ctx, "code2", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "redeem the refused second code")

		// A code hash belongs to one request; a refused code changes nothing.
		for _, id := range []string{"ar2", "ar3", "ar4"} {
			ok(t, createAuthRequest(ctx, s, newAuthRequest(id, c.Now(), 10*time.Minute)), "create %s", id)
		}
		ok(t, s.IssueCode(ctx, "ar2", "code3", later), "issue code3 for ar2")
		isErr(t, s.IssueCode(ctx, "ar3", "code3", later), storage.ErrConflict, "issue ar2's code for ar3")
		got, err = s.GetAuthRequest(ctx, "ar3")
		ok(t, err, "get ar3")
		equal(t, got.CodeIssued, false, "ar3's code issued after a refused code")
		ok(t, s.IssueCode(ctx, "ar3", "code4", later), "issue code4 for ar3")

		// Deleting the request takes its code.
		ok(t, s.DeleteAuthRequest(ctx, "ar2"), "delete ar2")
		_, err = s.RedeemCode(ctx, "code3", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "redeem the code of a deleted request")
		ok(t, s.IssueCode(ctx, "ar4", "code3", later), "a deleted request's code hash is free again")

		// A redeemed code is remembered for a while, not forever.
		c.Add(time.Hour)
		_, err = s.RedeemCode(ctx, "code1", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "redeem code1 an hour later")
		_, err = s.MarkCodeReplayed(ctx, "code1", "app")
		isErr(t, err, storage.ErrNotFound, "mark code1 replayed an hour later")
	}},
	{"IssueCodeShortensTheRequest", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// A request lives no longer than its code: IssueCode brings its
		// expiry forward, never back, and the sweep follows.
		ctx := t.Context()
		ok(t, createAuthRequest(ctx, s, newAuthRequest("short", c.Now(), 10*time.Minute)), "create short")
		ok(t, createAuthRequest(ctx, s, newAuthRequest("long", c.Now(), 10*time.Minute)), "create long")
		ok(t, s.IssueCode(ctx, "short", "code-short", c.Now().Add(time.Minute)), "issue code-short")
		ok(t, s.IssueCode(ctx, "long", "code-long", c.Now().Add(time.Hour)), "issue code-long")
		got, err := s.GetAuthRequest(ctx, "short")
		ok(t, err, "get short")
		equal(t, got.CodeIssued, true, "short's code issued")
		equal(t, got.ExpiresAt.Equal(c.Now().Add(time.Minute)), true, "short's expiry brought forward to its code's")
		got, err = s.GetAuthRequest(ctx, "long")
		ok(t, err, "get long")
		equal(t, got.ExpiresAt.Equal(c.Now().Add(10*time.Minute)), true, "long's expiry not put back")
		c.Add(2 * time.Minute)
		_, err = s.GetAuthRequest(ctx, "short")
		isErr(t, err, storage.ErrNotFound, "short after its code's lifetime")
		_, err = s.RedeemCode(ctx, "code-short", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "redeem code-short after its lifetime")
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.AuthRequests, 1, "requests swept at their code's expiry")
		_, err = s.GetAuthRequest(ctx, "long")
		ok(t, err, "long lives on")
	}},
	{"CodeOfAnotherClient", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// A code exists only for its own client: another client presenting
		// it, before or after its redemption, finds nothing and changes
		// nothing.
		ctx := t.Context()
		a := newAuthRequest("ar1", c.Now(), 10*time.Minute)
		a.UserID, a.Completed = "u1", true
		ok(t, createAuthRequest(ctx, s, a), "create")
		ok(t, s.IssueCode(ctx, "ar1", "code1", c.Now().Add(time.Hour)), "issue code1")
		a.CodeIssued = true
		issue := storage.IssuedTokens{AccessTokenID: "a1", FamilyID: "f1"}
		_, err := s.RedeemCode(ctx, "code1", "other", issue)
		isErr(t, err, storage.ErrNotFound, "another client redeems code1")
		got, err := s.RedeemCode(ctx, "code1", "app", issue)
		ok(t, err, "its own client redeems code1 after that")
		equal(t, got, a, "request of code1")
		_, err = s.RedeemCode(ctx, "code1", "other", storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "another client replays code1")
		issued, err := s.MarkCodeReplayed(ctx, "code1", "other")
		isErr(t, err, storage.ErrNotFound, "another client marks code1 replayed")
		equal(t, issued, storage.IssuedTokens{}, "what another client's replay learns")
		r1 := newRefresh("r1", "f1", "u1", "app", c.Now(), time.Hour)
		ok(t, s.CreateCodeTokens(ctx, "code1", newAccess("a1", "f1", "u1", "app", c.Now(), time.Hour), &r1, ""), "another client's replay did not mark code1")
		_, err = s.GetAccessToken(ctx, "a1")
		ok(t, err, "code1's access token")
	}},
	{"CodeTokens", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		now := c.Now()
		for _, id := range []string{"ar1", "ar2", "ar3"} {
			a := newAuthRequest(id, now, 10*time.Minute)
			a.UserID, a.Completed = "u1", true
			ok(t, createAuthRequest(ctx, s, a), "create %s", id)
			ok(t, s.IssueCode(ctx, id, "code-"+id, now.Add(time.Minute)), "issue the code of %s", id)
		}
		_, err := s.MarkCodeReplayed(ctx, "code-ar1", "app")
		isErr(t, err, storage.ErrNotFound, "mark a code not yet redeemed replayed")
		// tokens are what exchange n issues: an access token and a family.
		tokens := func(n string) (storage.IssuedTokens, storage.AccessToken, *storage.RefreshToken) {
			r := newRefresh("r"+n, "f"+n, "u1", "app", now, time.Hour)
			return storage.IssuedTokens{AccessTokenID: "a" + n, FamilyID: "f" + n}, newAccess("a"+n, "f"+n, "u1", "app", now, time.Hour), &r
		}
		stored := func(n string) (access, refresh bool) {
			_, aerr := s.GetAccessToken(ctx, "a"+n)
			_, rerr := s.GetRefreshToken(ctx, "h-r"+n)
			return aerr == nil, rerr == nil
		}

		// A replay after the exchange names exactly what it issued, which
		// is still there for the caller to revoke.
		want, access, refresh := tokens("1")
		_, err = s.RedeemCode(ctx, "code-ar1", "app", want)
		ok(t, err, "redeem code-ar1")
		ok(t, s.CreateCodeTokens(ctx, "code-ar1", access, refresh, ""), "store code-ar1's tokens")
		a, r := stored("1")
		equal(t, a && r, true, "code-ar1's tokens stored")
		isErr(t, s.CreateCodeTokens(ctx, "code-ar1", access, refresh, ""), storage.ErrConflict, "store code-ar1's tokens twice")
		_, err = s.RedeemCode(ctx, "code-ar1", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrTokenReused, "replay code-ar1")
		issued, err := s.MarkCodeReplayed(ctx, "code-ar1", "app")
		ok(t, err, "mark code-ar1 replayed")
		equal(t, issued, want, "what code-ar1 issued")
		issued, err = s.MarkCodeReplayed(ctx, "code-ar1", "app")
		ok(t, err, "mark code-ar1 replayed again")
		equal(t, issued, want, "what code-ar1 issued, on the second replay")

		// A replay while the exchange is still under way names what it is
		// about to issue, and the exchange, seeing the mark after storing
		// its tokens, deletes them again.
		want2, access2, refresh2 := tokens("2")
		_, err = s.RedeemCode(ctx, "code-ar2", "app", want2)
		ok(t, err, "redeem code-ar2")
		issued, err = s.MarkCodeReplayed(ctx, "code-ar2", "app")
		ok(t, err, "mark code-ar2 replayed before its tokens are stored")
		equal(t, issued, want2, "what code-ar2's exchange issues")
		isErr(t, s.CreateCodeTokens(ctx, "code-ar2", access2, refresh2, ""), storage.ErrTokenReused, "store the tokens of a replayed code")
		a, r = stored("2")
		equal(t, a || r, false, "a replayed code's tokens are kept")

		// Without a family too.
		ok(t, createAuthRequest(ctx, s, newAuthRequest("ar4", now, 10*time.Minute)), "create ar4")
		ok(t, s.IssueCode(ctx, "ar4", "code-ar4", now.Add(time.Minute)), "issue the code of ar4")
		_, err = s.RedeemCode(ctx, "code-ar4", "app", storage.IssuedTokens{AccessTokenID: "a4"})
		ok(t, err, "redeem code-ar4")
		_, err = s.MarkCodeReplayed(ctx, "code-ar4", "app")
		ok(t, err, "mark code-ar4 replayed")
		isErr(t, s.CreateCodeTokens(ctx, "code-ar4", newAccess("a4", "", "u1", "app", now, time.Hour), nil, ""), storage.ErrTokenReused,
			"store the access token of a replayed code")
		_, err = s.GetAccessToken(ctx, "a4")
		isErr(t, err, storage.ErrNotFound, "a replayed code's access token")

		// A replay that is not marked (its client did not prove itself)
		// leaves the exchange alone.
		want3, access3, refresh3 := tokens("3")
		_, err = s.RedeemCode(ctx, "code-ar3", "app", want3)
		ok(t, err, "redeem code-ar3")
		_, err = s.RedeemCode(ctx, "code-ar3", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrTokenReused, "replay code-ar3")
		ok(t, s.CreateCodeTokens(ctx, "code-ar3", access3, refresh3, ""), "store the tokens of code-ar3 after an unmarked replay")
		a, r = stored("3")
		equal(t, a && r, true, "code-ar3's tokens stored")

		// A code no longer remembered (forgotten, or its record lost) does
		// not cost the exchange its tokens.
		_, access5, refresh5 := tokens("5")
		ok(t, s.CreateCodeTokens(ctx, "unknown-code", access5, refresh5, ""), "store the tokens of a code not remembered")
		a, r = stored("5")
		equal(t, a && r, true, "the tokens of a code not remembered")
		c.Add(time.Hour)
		_, err = s.MarkCodeReplayed(ctx, "code-ar1", "app")
		isErr(t, err, storage.ErrNotFound, "mark a forgotten code replayed")
	}},
	{"PendingLimits", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		limits := storage.PendingLimits{PerOrigin: 3, Total: 5}
		pl := newPendingLog(t, s, c, limits)
		// One origin keeps its newest PerOrigin requests; others are untouched.
		pl.create("other1", "198.51.100.9", 0)
		for i := 1; i <= 3; i++ {
			pl.create(fmt.Sprintf("a%d", i), "192.0.2.1", 0)
		}
		pl.create("a4", "192.0.2.1", 1)
		pl.gone("a1")
		pl.live("a2", "a3", "a4", "other1")
		// Requests of no known origin count towards the total only.
		pl.create("none1", "", 0)
		// The sixth request evicts from the group with the most requests,
		// not the oldest of all: other1 is older than a2, but its address
		// has one request pending.
		pl.create("none2", "", 1)
		pl.gone("a2")
		pl.live("a3", "a4", "none1", "none2", "other1")
		// A deleted request frees its place in both limits.
		ok(t, s.DeleteAuthRequest(ctx, "a3"), "delete a3")
		pl.create("a5", "192.0.2.1", 0)
		pl.live("a4", "a5", "none1", "none2", "other1")
		// So does one the sweep removed.
		c.Add(10 * time.Minute) // everything so far expires
		_, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		for i := 1; i <= 5; i++ {
			pl.create(fmt.Sprintf("b%d", i), fmt.Sprintf("203.0.113.%d", i), 0)
		}
		// Both limits at once: the origin's oldest goes, and that makes room.
		pl.create("b6", "203.0.113.1", 1)
		pl.gone("b1")
		pl.live("b2", "b3", "b4", "b5", "b6")
		// Without limits nothing is evicted.
		n, err := s.CreateAuthRequest(ctx, newAuthRequest("free", c.Now(), time.Minute), storage.PendingLimits{})
		ok(t, err, "create without limits")
		equal(t, n, 0, "evicted without limits")
		pl.live("b2", "b3", "b4", "b5", "b6", "free")
		// A refused duplicate evicts nothing.
		dup := newAuthRequest("b6", c.Now(), time.Minute)
		dup.Origin = "203.0.113.6"
		_, err = s.CreateAuthRequest(ctx, dup, storage.PendingLimits{Total: 1})
		isErr(t, err, storage.ErrConflict, "create a duplicate")
		pl.live("b2", "b3", "b4", "b5", "b6", "free")
		// A request whose code went out has its life shortened to the
		// code's, so it is the closest to expiry, and here the oldest too:
		// it stays, and the oldest of the others go (six pending, limit
		// five: two make room). More in PendingLimitsSpareIssuedCodes.
		pl.issue("b2", time.Minute)
		pl.create("b7", "203.0.113.7", 2)
		pl.gone("b3", "b4")
		pl.live("b2", "b5", "b6", "free", "b7")
	}},
	{"PendingLimitsSpareIssuedCodes", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// A request whose code went out has its life shortened to the
		// code's, so it is the closest to expiry of all; it is still never
		// evicted, or no sign-in could complete during a flood.
		ctx := t.Context()
		pl := newPendingLog(t, s, c, storage.PendingLimits{PerOrigin: 3, Total: 4})
		pl.create("mine", "192.0.2.1", 0)
		pl.open("mine")
		pl.issue("mine", time.Minute)
		pl.create("a1", "192.0.2.1", 0)
		pl.create("a2", "192.0.2.1", 0)
		// The origin is full: its oldest without a code goes.
		pl.create("a3", "192.0.2.1", 1)
		pl.gone("a1")
		pl.live("mine", "a2", "a3")
		// The total is full: the largest group's oldest without a code goes.
		pl.create("x1", "198.51.100.1", 0)
		pl.create("x2", "198.51.100.2", 1)
		pl.gone("a2")
		pl.live("mine", "a3", "x1", "x2")
		// Once every request of an origin has its code, that origin waits
		// for them to be exchanged or to expire; others are not held up.
		pl.issue("a3", time.Minute)
		pl.create("a4", "192.0.2.1", 1) // x1 goes: 192.0.2.1 has no request to evict from
		pl.gone("x1")
		pl.issue("a4", time.Minute)
		n, err := s.CreateAuthRequest(ctx, pl.request("a5", "192.0.2.1"), pl.limits)
		isErr(t, err, storage.ErrLimitReached, "create a request at an origin whose requests all have a code")
		equal(t, n, 0, "evicted by the refused request")
		pl.gone("a5")
		pl.live("mine", "a3", "a4", "x2")
		pl.create("x3", "198.51.100.3", 1)
		pl.gone("x2")
		// Every request has its code: the total waits too.
		pl.issue("x3", time.Minute)
		_, err = s.CreateAuthRequest(ctx, pl.request("y1", "203.0.113.1"), pl.limits)
		isErr(t, err, storage.ErrLimitReached, "create a request when every pending request has a code")
		pl.live("mine", "a3", "a4", "x3")
		// The code is exchanged: its request goes, and there is room again.
		ok(t, s.DeleteAuthRequest(ctx, "mine"), "delete mine")
		pl.create("y1", "203.0.113.1", 0)
		// Or its code expires unused, and the sweep takes it.
		c.Add(2 * time.Minute)
		_, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		pl.live("y1")
		pl.create("y2", "203.0.113.1", 0)
	}},
	{"PendingLimitsByGroup", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Evicting for the total takes from the group with the most
		// requests, an IPv6 block of many /64s (OriginGroup) counting as
		// one; within it, requests no browser has opened go first.
		pl := newPendingLog(t, s, c, storage.PendingLimits{PerOrigin: 3, Total: 6})
		pl.create("person", "198.51.100.7", 0)
		pl.open("person")
		v6 := func(id string, n int) {
			t.Helper()
			a := pl.request(id, fmt.Sprintf("2001:db8:0:%x::/64", n))
			a.OriginGroup = "2001:db8::/48"
			pl.createRequest(a, -1)
		}
		pl.create("v4a", "192.0.2.1", 0)
		pl.create("v4b", "192.0.2.1", 0)
		v6("v6a", 1)
		v6("v6b", 2)
		pl.open("v6a")
		v6("v6c", 3) // 6 pending: 2001:db8::/48 has 3, 192.0.2.1 2, the person 1
		v6("v6d", 4) // the block has the most: its oldest unopened one goes
		pl.gone("v6b")
		pl.live("person", "v4a", "v4b", "v6a", "v6c", "v6d")
		v6("v6e", 5)
		pl.gone("v6c")
		v6("v6f", 6)
		pl.gone("v6d")
		v6("v6g", 7)
		pl.gone("v6e")
		// The block still has the most (3): its oldest unopened goes.
		pl.create("p2", "203.0.113.9", 1)
		pl.gone("v6f")
		// A tie: 192.0.2.1 and the block hold two each, both led by an
		// unopened request; 192.0.2.1's is the older.
		pl.create("p3", "203.0.113.10", 1)
		pl.gone("v4a")
		// Within the block, its unopened request goes before the opened one.
		pl.create("p4", "203.0.113.11", 1)
		pl.gone("v6g")
		pl.live("person", "v4b", "v6a", "p2", "p3", "p4")
	}},
	{"PendingLimitsFlood", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// More addresses than Total/PerOrigin flood at their limit: a
		// person with one pending sign-in keeps it, whether or not they
		// have opened it yet.
		limits := storage.PendingLimits{PerOrigin: 5, Total: 50}
		pl := newPendingLog(t, s, c, limits)
		pl.create("person", "198.51.100.7", 0)
		pl.open("person")
		for round := range 8 {
			if round == 3 {
				// Someone starts signing in during the flood.
				pl.createRequest(pl.request("late", "198.51.100.8"), 1)
				pl.open("late")
			}
			for a := range 60 {
				pl.createRequest(pl.request(fmt.Sprintf("f%d-%d", a, round), fmt.Sprintf("192.0.2.%d", a)), -1)
			}
		}
		pl.live("person", "late")
		pl.issue("person", time.Minute)
		pl.live("person", "late")
	}},
	{"TooLarge", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// A request larger than MaxAuthRequestBytes is refused, whatever
		// field is large, and changes nothing: not even an eviction.
		ctx := t.Context()
		limits := storage.PendingLimits{PerOrigin: 1, Total: 1}
		small := newAuthRequest("small", c.Now(), 10*time.Minute)
		small.Origin = "192.0.2.1"
		_, err := s.CreateAuthRequest(ctx, small, limits)
		ok(t, err, "create small")
		for name, grow := range map[string]func(*storage.AuthRequest){
			"state":         func(a *storage.AuthRequest) { a.State = strings.Repeat("s", storage.MaxAuthRequestBytes) },
			"response_mode": func(a *storage.AuthRequest) { a.ResponseMode = strings.Repeat("m", storage.MaxAuthRequestBytes) },
			"redirect_uri":  func(a *storage.AuthRequest) { a.RedirectURI += strings.Repeat("r", storage.MaxAuthRequestBytes) },
			"scopes": func(a *storage.AuthRequest) {
				a.Scopes = slices.Repeat([]string{"offline_access"}, storage.MaxAuthRequestBytes/16)
			},
		} {
			big := newAuthRequest("big-"+name, c.Now(), 10*time.Minute)
			big.Origin = "192.0.2.1"
			grow(&big)
			n, err := s.CreateAuthRequest(ctx, big, limits)
			isErr(t, err, storage.ErrTooLarge, "create a request with a large %s", name)
			equal(t, n, 0, "evicted for a request with a large %s", name)
			_, err = s.GetAuthRequest(ctx, big.ID)
			isErr(t, err, storage.ErrNotFound, "get the refused request with a large %s", name)
		}
		got, err := s.GetAuthRequest(ctx, "small")
		ok(t, err, "small after the refusals")
		equal(t, got, small, "small after the refusals")
		// At the limit it is stored.
		_, err = s.UpdateAuthRequest(ctx, "small", func(a storage.AuthRequest) (storage.AuthRequest, error) {
			a.Nonce = strings.Repeat("n", storage.MaxAuthRequestBytes)
			return a, nil
		})
		isErr(t, err, storage.ErrTooLarge, "update to a large nonce")
		got, err = s.GetAuthRequest(ctx, "small")
		ok(t, err, "small after the refused update")
		equal(t, got, small, "small after the refused update")
		fits := newAuthRequest("fits", c.Now(), 10*time.Minute)
		fits.State = strings.Repeat("s", storage.MaxAuthRequestBytes/2)
		_, err = s.CreateAuthRequest(ctx, fits, storage.PendingLimits{})
		ok(t, err, "create a request of half the limit")
	}},
	{"ConcurrentRedeem", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		ok(t, createAuthRequest(ctx, s, newAuthRequest("ar1", c.Now(), 10*time.Minute)), "create")
		ok(t, s.IssueCode(ctx, "ar1", "code1", c.Now().Add(time.Minute)), "issue code")
		errs := concurrently(8, func(i int) error {
			a, err := s.RedeemCode(ctx, "code1", "app", storage.IssuedTokens{AccessTokenID: fmt.Sprintf("a%d", i)})
			if err == nil && a.ID != "ar1" {
				return fmt.Errorf("redeemed request %q", a.ID)
			}
			return err
		})
		wins := 0
		for i, err := range errs {
			if err == nil {
				wins++
				continue
			}
			isErr(t, err, storage.ErrTokenReused, "redeemer %d", i)
		}
		equal(t, wins, 1, "successful redemptions")
	}},
	{"PendingLimitsConcurrentCreates", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Creates at once (on several connections, as replicas make them)
		// keep both limits, and every request that is gone was counted
		// as evicted by exactly one of them. Each round's creates start
		// together, and the limits are checked after every round.
		ctx := t.Context()
		limits := storage.PendingLimits{PerOrigin: 2, Total: 3}
		const writers, rounds, origins = 8, 8, 4
		origin := func(w int) string { return fmt.Sprintf("192.0.2.%d", w%origins) }
		created, evicted := 0, 0
		for round := range rounds {
			counts := make([]int, writers)
			errs := concurrently(writers, func(w int) error {
				a := newAuthRequest(fmt.Sprintf("w%d-%d", w, round), c.Now(), 10*time.Minute)
				a.Origin = origin(w)
				n, err := s.CreateAuthRequest(ctx, a, limits)
				counts[w] = n
				return err
			})
			live, byOrigin := 0, map[string]int{}
			for w, err := range errs {
				ok(t, err, "round %d: writer %d", round, w)
				created++
				evicted += counts[w]
				for r := 0; r <= round; r++ {
					_, err := s.GetAuthRequest(ctx, fmt.Sprintf("w%d-%d", w, r))
					if err == nil {
						live++
						byOrigin[origin(w)]++
					} else {
						isErr(t, err, storage.ErrNotFound, "request w%d-%d", w, r)
					}
				}
			}
			if live > limits.Total {
				t.Fatalf("round %d: %d requests pending, the limit is %d", round, live, limits.Total)
			}
			for o, n := range byOrigin {
				if n > limits.PerOrigin {
					t.Fatalf("round %d: %d requests of %s pending, the limit is %d", round, n, o, limits.PerOrigin)
				}
			}
			equal(t, live+evicted, created, "round %d: pending plus evicted", round)
		}
	}},
	{"ReplayRacesTheExchange", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// A replay marked while the exchange stores its tokens, on another
		// connection (another replica): whichever comes first, once the
		// replay has revoked what the mark named, none of the code's
		// tokens is left. A store that checks the mark before its tokens
		// are visible to the revocation loses that race now and then.
		ctx, now := t.Context(), c.Now()
		const rounds = 40
		for i := range rounds {
			id, code, fid, aid := fmt.Sprintf("ar%d", i), fmt.Sprintf("code%d", i), fmt.Sprintf("f%d", i), fmt.Sprintf("a%d", i)
			ok(t, createAuthRequest(ctx, s, newAuthRequest(id, now, 10*time.Minute)), "create %s", id)
			ok(t, s.IssueCode(ctx, id, code, now.Add(time.Minute)), "issue %s", code)
			issue := storage.IssuedTokens{AccessTokenID: aid, FamilyID: fid}
			_, err := s.RedeemCode(ctx, code, "app", issue)
			ok(t, err, "redeem %s", code)
			r := newRefresh("r"+fid, fid, "u1", "app", now, time.Hour)
			errs := concurrently(2, func(j int) error {
				if j == 0 {
					err := s.CreateCodeTokens(ctx, code, newAccess(aid, fid, "u1", "app", now, time.Hour), &r, "")
					if errors.Is(err, storage.ErrTokenReused) {
						return nil // the mark came first
					}
					return err
				}
				issued, err := s.MarkCodeReplayed(ctx, code, "app")
				if err != nil {
					return err
				}
				if issued != issue {
					return fmt.Errorf("the mark named %+v, the redemption %+v", issued, issue)
				}
				// What the provider does with it (opStorage.revokeIssued).
				if err := s.RevokeFamily(ctx, issued.FamilyID); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				if err := s.DeleteAccessToken(ctx, issued.AccessTokenID); err != nil && !errors.Is(err, storage.ErrNotFound) {
					return err
				}
				return nil
			})
			ok(t, errs[0], "round %d: the exchange", i)
			ok(t, errs[1], "round %d: the replay", i)
			_, err = s.GetAccessToken(ctx, aid)
			isErr(t, err, storage.ErrNotFound, "round %d: the access token of a replayed code", i)
			_, err = s.GetRefreshTokenByID(ctx, r.ID)
			isErr(t, err, storage.ErrNotFound, "round %d: the refresh token of a replayed code", i)
		}
	}},
	{"ConcurrentWrites", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Many requests created, completed and redeemed at once must not
		// disturb one another.
		ctx := t.Context()
		errs := concurrently(16, func(i int) error {
			id, code := fmt.Sprintf("ar%d", i), fmt.Sprintf("code%d", i)
			if err := createAuthRequest(ctx, s, newAuthRequest(id, c.Now(), time.Minute)); err != nil {
				return err
			}
			if _, err := s.UpdateAuthRequest(ctx, id, func(a storage.AuthRequest) (storage.AuthRequest, error) {
				a.UserID, a.Completed = "u1", true
				return a, nil
			}); err != nil {
				return err
			}
			if err := s.IssueCode(ctx, id, code, c.Now().Add(time.Minute)); err != nil {
				return err
			}
			a, err := s.RedeemCode(ctx, code, "app", storage.IssuedTokens{})
			if err != nil {
				return err
			}
			if a.ID != id || !a.Completed || !a.CodeIssued {
				return fmt.Errorf("code %s redeemed %+v", code, a)
			}
			return nil
		})
		for i, err := range errs {
			ok(t, err, "flow %d", i)
		}
	}},
}

var tokenTests = []test{
	{"CreateGet", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		a1 := newAccess("a1", "f1", "u1", "app", now, time.Hour)
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, a1, &r1), "create a1 and r1")
		gotA, err := s.GetAccessToken(ctx, "a1")
		ok(t, err, "get a1")
		equal(t, gotA, a1, "a1")
		gotR, err := s.GetRefreshToken(ctx, r1.Hash)
		ok(t, err, "get r1")
		equal(t, gotR, r1, "r1 by hash")
		gotR, err = s.GetRefreshTokenByID(ctx, "r1")
		ok(t, err, "get r1 by ID")
		equal(t, gotR, r1, "r1 by ID")

		machine := newAccess("m1", "", "", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, machine, nil), "create a machine token")
		gotA, err = s.GetAccessToken(ctx, "m1")
		ok(t, err, "get m1")
		equal(t, gotA, machine, "m1")

		_, err = s.GetAccessToken(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "get missing access token")
		_, err = s.GetRefreshToken(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "get missing refresh token")
		_, err = s.GetRefreshTokenByID(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "get missing refresh token by ID")

		isErr(t, s.CreateTokens(ctx, newAccess("a1", "", "u1", "app", now, time.Hour), nil), storage.ErrConflict, "taken access token ID")
		dupHash := newRefresh("r2", "f2", "u1", "app", now, time.Hour)
		dupHash.Hash = r1.Hash
		isErr(t, s.CreateTokens(ctx, newAccess("a2", "f2", "u1", "app", now, time.Hour), &dupHash), storage.ErrConflict, "taken refresh token hash")
		dupID := newRefresh("r1", "f3", "u1", "app", now, time.Hour)
		dupID.Hash = "h-fresh"
		isErr(t, s.CreateTokens(ctx, newAccess("a3", "f3", "u1", "app", now, time.Hour), &dupID), storage.ErrConflict, "taken refresh token ID")
		dupFamily := newRefresh("r4", "f1", "u1", "app", now, time.Hour)
		isErr(t, s.CreateTokens(ctx, newAccess("a4", "f1", "u1", "app", now, time.Hour), &dupFamily), storage.ErrConflict, "taken family ID")
		for _, id := range []string{"a2", "a3", "a4"} {
			_, err = s.GetAccessToken(ctx, id)
			isErr(t, err, storage.ErrNotFound, "access token %s of a refused CreateTokens", id)
		}
		_, err = s.GetRefreshTokenByID(ctx, "r4")
		isErr(t, err, storage.ErrNotFound, "refresh token of a refused CreateTokens")
		gotR, err = s.GetRefreshToken(ctx, r1.Hash)
		ok(t, err, "r1 after refused duplicates")
		equal(t, gotR, r1, "r1 after refused duplicates")
	}},
	{"AccessTokenAndUser", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		alice := newUser("u1", "alice", "alice@example.com")
		ok(t, s.CreateUser(ctx, alice), "create alice")
		alice, err := s.GetUser(ctx, "u1")
		ok(t, err, "get alice")
		a1 := newAccess("a1", "", "u1", "app", now, time.Hour)
		machine := newAccess("m1", "", "", "app", now, time.Hour)
		orphan := newAccess("o1", "", "u-gone", "app", now, 2*time.Hour)
		for _, a := range []storage.AccessToken{a1, machine, orphan} {
			ok(t, s.CreateTokens(ctx, a, nil), "create %s", a.ID)
		}
		gotA, gotU, _, err := s.GetAccessTokenAndUser(ctx, "a1")
		ok(t, err, "a1 and its user")
		equal(t, gotA, a1, "a1")
		equal(t, gotU, alice, "a1's user")
		gotA, gotU, _, err = s.GetAccessTokenAndUser(ctx, "m1")
		ok(t, err, "a token of no user")
		equal(t, gotA, machine, "m1")
		equal(t, gotU, storage.User{}, "m1's user")
		gotA, gotU, _, err = s.GetAccessTokenAndUser(ctx, "o1")
		ok(t, err, "a token whose user is gone")
		equal(t, gotA, orphan, "o1")
		equal(t, gotU, storage.User{}, "o1's user")
		_, _, _, err = s.GetAccessTokenAndUser(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "missing token")
		// The user as it is now, not as it was when the token was made.
		_, err = s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) { u.Blocked = true; return u, nil })
		ok(t, err, "block alice")
		_, gotU, _, err = s.GetAccessTokenAndUser(ctx, "a1")
		ok(t, err, "a1 after blocking")
		if !gotU.Blocked {
			t.Fatalf("a1's user read before the block: %+v", gotU)
		}
		c.Add(time.Hour)
		_, _, _, err = s.GetAccessTokenAndUser(ctx, "a1")
		isErr(t, err, storage.ErrNotFound, "expired token")
		_, _, _, err = s.GetAccessTokenAndUser(ctx, "o1")
		ok(t, err, "live token")
	}},
	{"Expiry", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		idle := newRefresh("idle", "f1", "u1", "app", now, 24*time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &idle), "create family f1")
		absolute := newRefresh("abs", "f2", "u1", "app", now, 24*time.Hour)
		absolute.ExpiresAt = now.Add(2 * time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a2", "f2", "u1", "app", now, 3*time.Hour), &absolute), "create family f2")

		c.Add(time.Hour)
		_, err := s.GetAccessToken(ctx, "a1")
		isErr(t, err, storage.ErrNotFound, "expired access token")
		_, err = s.GetAccessToken(ctx, "a2")
		ok(t, err, "live access token")
		_, err = s.GetRefreshToken(ctx, absolute.Hash)
		ok(t, err, "refresh token before its absolute deadline")

		c.Add(time.Hour)
		_, err = s.GetRefreshToken(ctx, absolute.Hash)
		isErr(t, err, storage.ErrNotFound, "refresh token past its absolute deadline")
		_, err = s.GetRefreshTokenByID(ctx, "abs")
		isErr(t, err, storage.ErrNotFound, "refresh token by ID past its absolute deadline")
		isErr(t, s.RotateRefreshToken(ctx, absolute.Hash, newRefresh("abs2", "f2", "u1", "app", c.Now(), time.Hour), newAccess("a3", "f2", "u1", "app", c.Now(), time.Hour)),
			storage.ErrNotFound, "rotate a refresh token past its absolute deadline")
		_, err = s.GetRefreshToken(ctx, idle.Hash)
		ok(t, err, "refresh token before its idle deadline")

		c.Add(22 * time.Hour)
		_, err = s.GetRefreshToken(ctx, idle.Hash)
		isErr(t, err, storage.ErrNotFound, "refresh token past its idle deadline")
		_, err = s.GetRefreshTokenByID(ctx, "idle")
		isErr(t, err, storage.ErrNotFound, "refresh token by ID past its idle deadline")
		isErr(t, s.RotateRefreshToken(ctx, idle.Hash, newRefresh("idle2", "f1", "u1", "app", c.Now(), time.Hour), newAccess("a4", "f1", "u1", "app", c.Now(), time.Hour)),
			storage.ErrNotFound, "rotate a refresh token past its idle deadline")
		_, err = s.GetAccessToken(ctx, "a4")
		isErr(t, err, storage.ErrNotFound, "access token of a refused rotation")
	}},
	{"Rotate", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		c.Add(time.Minute)
		r2, a2 := newRefresh("r2", "f1", "u1", "app", c.Now(), time.Hour), newAccess("a2", "f1", "u1", "app", c.Now(), time.Hour)
		r2.ExpiresAt = r1.ExpiresAt // the family keeps its absolute deadline
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, a2), "rotate r1 to r2")
		got, err := s.GetRefreshToken(ctx, r2.Hash)
		ok(t, err, "get r2")
		equal(t, got, r2, "r2")
		got, err = s.GetRefreshTokenByID(ctx, "r2")
		ok(t, err, "get r2 by ID")
		equal(t, got, r2, "r2 by ID")
		gotA, err := s.GetAccessToken(ctx, "a2")
		ok(t, err, "get a2")
		equal(t, gotA, a2, "a2")
		_, err = s.GetRefreshTokenByID(ctx, "r1")
		isErr(t, err, storage.ErrNotFound, "a rotated token by ID")

		// The chain goes on, and an idle deadline moves with each link.
		c.Add(50 * time.Minute)
		r3 := newRefresh("r3", "f1", "u1", "app", c.Now(), time.Hour)
		ok(t, s.RotateRefreshToken(ctx, r2.Hash, r3, newAccess("a3", "f1", "u1", "app", c.Now(), time.Hour)), "rotate r2 to r3")
		c.Add(50 * time.Minute) // past r1's and r2's idle deadlines, not r3's
		_, err = s.GetRefreshToken(ctx, r3.Hash)
		ok(t, err, "get r3")
	}},
	{"Peek", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		got, err := s.PeekRefreshToken(ctx, r1.Hash)
		ok(t, err, "peek r1")
		equal(t, got, r1, "r1")
		r2 := newRefresh("r2", "f1", "u1", "app", now, time.Hour)
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "rotate r1 to r2")
		// Looking at a rotated token is not using it: no reuse, no revocation.
		_, err = s.PeekRefreshToken(ctx, r1.Hash)
		isErr(t, err, storage.ErrNotFound, "peek a rotated token")
		got, err = s.GetRefreshToken(ctx, r2.Hash)
		ok(t, err, "r2 after peeking at r1")
		equal(t, got, r2, "r2")
		_, err = s.PeekRefreshToken(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "peek an unknown token")
		c.Add(2 * time.Hour)
		_, err = s.PeekRefreshToken(ctx, r2.Hash)
		isErr(t, err, storage.ErrNotFound, "peek an idle-expired token")
	}},
	{"RotateLostRace", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		r2 := newRefresh("r2", "f1", "u1", "app", now, time.Hour)
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "first rotation")
		loser := newRefresh("r2b", "f1", "u1", "app", now, time.Hour)
		isErr(t, s.RotateRefreshToken(ctx, r1.Hash, loser, newAccess("a2b", "f1", "u1", "app", now, time.Hour)), storage.ErrNotFound, "second rotation of r1")
		_, err := s.GetRefreshTokenByID(ctx, "r2b")
		isErr(t, err, storage.ErrNotFound, "next token of a lost rotation")
		_, err = s.GetAccessToken(ctx, "a2b")
		isErr(t, err, storage.ErrNotFound, "access token of a lost rotation")
		// Losing a race is not reuse: the family lives on.
		got, err := s.GetRefreshToken(ctx, r2.Hash)
		ok(t, err, "winner's token after a lost rotation")
		equal(t, got, r2, "winner's token")
		_, err = s.GetAccessToken(ctx, "a1")
		ok(t, err, "family's first access token after a lost rotation")
		isErr(t, s.RotateRefreshToken(ctx, "nobody", newRefresh("r9", "f1", "u1", "app", now, time.Hour), newAccess("a9", "f1", "u1", "app", now, time.Hour)),
			storage.ErrNotFound, "rotate an unknown token")
	}},
	{"RotateConflict", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		isErr(t, s.RotateRefreshToken(ctx, r1.Hash, newRefresh("r2", "f1", "u1", "app", now, time.Hour), newAccess("a1", "f1", "u1", "app", now, time.Hour)),
			storage.ErrConflict, "rotation with a taken access token ID")
		got, err := s.GetRefreshToken(ctx, r1.Hash)
		ok(t, err, "r1 after a refused rotation")
		equal(t, got, r1, "r1 after a refused rotation")
		_, err = s.GetRefreshTokenByID(ctx, "r2")
		isErr(t, err, storage.ErrNotFound, "next token of a refused rotation")
	}},
	{"ConcurrentRotate", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		errs := concurrently(8, func(i int) error {
			return s.RotateRefreshToken(ctx, r1.Hash,
				newRefresh(fmt.Sprintf("next%d", i), "f1", "u1", "app", now, time.Hour),
				newAccess(fmt.Sprintf("access%d", i), "f1", "u1", "app", now, time.Hour))
		})
		winner := -1
		for i, err := range errs {
			if err == nil {
				if winner >= 0 {
					t.Fatalf("rotations %d and %d both succeeded", winner, i)
				}
				winner = i
				continue
			}
			isErr(t, err, storage.ErrNotFound, "rotation %d", i)
		}
		if winner < 0 {
			t.Fatal("no rotation succeeded")
		}
		for i := range errs {
			_, errR := s.GetRefreshTokenByID(ctx, fmt.Sprintf("next%d", i))
			_, errA := s.GetAccessToken(ctx, fmt.Sprintf("access%d", i))
			if i == winner {
				ok(t, errR, "winner's refresh token")
				ok(t, errA, "winner's access token")
			} else {
				isErr(t, errR, storage.ErrNotFound, "refresh token of loser %d", i)
				isErr(t, errA, storage.ErrNotFound, "access token of loser %d", i)
			}
		}
	}},
	{"ConcurrentRotateThenReuse", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Rotations of one link racing on several connections: one wins,
		// and presenting the link again afterwards is still reuse, which
		// takes the winner's tokens with the family.
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		errs := concurrently(8, func(i int) error {
			return s.RotateRefreshToken(ctx, r1.Hash,
				newRefresh(fmt.Sprintf("next%d", i), "f1", "u1", "app", now, time.Hour),
				newAccess(fmt.Sprintf("access%d", i), "f1", "u1", "app", now, time.Hour))
		})
		winner := -1
		for i, err := range errs {
			if err == nil {
				winner = i
			}
		}
		if winner < 0 {
			t.Fatal("no rotation succeeded")
		}
		_, err := s.GetRefreshToken(ctx, r1.Hash)
		isErr(t, err, storage.ErrTokenReused, "r1 presented after the race")
		_, err = s.GetRefreshToken(ctx, fmt.Sprintf("h-next%d", winner))
		isErr(t, err, storage.ErrNotFound, "the winner's link after the reuse")
		_, err = s.GetAccessToken(ctx, fmt.Sprintf("access%d", winner))
		isErr(t, err, storage.ErrNotFound, "the winner's access token after the reuse")
	}},
	{"ConcurrentFamilies", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Independent families rotating at the same time all succeed.
		ctx, now := t.Context(), c.Now()
		const families, rotations = 16, 10
		errs := concurrently(families, func(f int) error {
			fid := fmt.Sprintf("f%d", f)
			link := func(n int) storage.RefreshToken {
				return newRefresh(fmt.Sprintf("%s-r%d", fid, n), fid, "u1", "app", now, time.Hour)
			}
			access := func(n int) storage.AccessToken {
				return newAccess(fmt.Sprintf("%s-a%d", fid, n), fid, "u1", "app", now, time.Hour)
			}
			first := link(0)
			if err := s.CreateTokens(ctx, access(0), &first); err != nil {
				return err
			}
			for n := 1; n <= rotations; n++ {
				if err := s.RotateRefreshToken(ctx, link(n-1).Hash, link(n), access(n)); err != nil {
					return fmt.Errorf("rotation %d: %w", n, err)
				}
			}
			last, err := s.GetRefreshToken(ctx, link(rotations).Hash)
			if err != nil {
				return err
			}
			if last.ID != link(rotations).ID {
				return fmt.Errorf("live link is %s", last.ID)
			}
			return nil
		})
		for i, err := range errs {
			ok(t, err, "family %d", i)
		}
	}},
	{"ReuseRevokesFamily", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create f1")
		other := newRefresh("o1", "f2", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("o-a1", "f2", "u1", "app", now, time.Hour), &other), "create f2")
		r2 := newRefresh("r2", "f1", "u1", "app", now, time.Hour)
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "rotate r1 to r2")

		_, err := s.GetRefreshToken(ctx, r1.Hash)
		isErr(t, err, storage.ErrTokenReused, "reuse of r1")
		_, err = s.GetRefreshToken(ctx, r2.Hash)
		isErr(t, err, storage.ErrNotFound, "newer link after reuse")
		_, err = s.GetRefreshTokenByID(ctx, "r2")
		isErr(t, err, storage.ErrNotFound, "newer link by ID after reuse")
		for _, id := range []string{"a1", "a2"} {
			_, err = s.GetAccessToken(ctx, id)
			isErr(t, err, storage.ErrNotFound, "family's access token %s after reuse", id)
		}
		_, err = s.GetRefreshToken(ctx, r1.Hash)
		isErr(t, err, storage.ErrNotFound, "reused token once its family is gone")
		isErr(t, s.RotateRefreshToken(ctx, r2.Hash, newRefresh("r3", "f1", "u1", "app", now, time.Hour), newAccess("a3", "f1", "u1", "app", now, time.Hour)),
			storage.ErrNotFound, "rotate the newer link after reuse")

		_, err = s.GetRefreshToken(ctx, other.Hash)
		ok(t, err, "another family after reuse")
		_, err = s.GetAccessToken(ctx, "o-a1")
		ok(t, err, "another family's access token after reuse")
	}},
	{"ReuseGrace", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Within its grace, presenting the token a live one replaced gives
		// the live one (with its sealed value) and revokes nothing.
		ctx, now := t.Context(), c.Now()
		withGrace := func(id string, grace time.Duration) storage.RefreshToken {
			r := newRefresh(id, "f1", "u1", "app", c.Now(), time.Hour)
			r.SealedValue, r.GraceUntil = []byte("sealed "+id), c.Now().Add(grace)
			return r
		}
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		r2 := withGrace("r2", 5*time.Second)
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "rotate r1 to r2")
		for i := range 3 {
			got, err := s.GetRefreshToken(ctx, r1.Hash)
			ok(t, err, "retry %d of r1 within r2's grace", i)
			equal(t, got, r2, "what retry %d of r1 gives", i)
		}
		got, err := s.GetRefreshToken(ctx, r2.Hash)
		ok(t, err, "r2 after the retries")
		equal(t, got, r2, "r2 after the retries")
		// The losers of a rotation race see the same: RotateRefreshToken
		// refuses, and a second look finds the retry.
		isErr(t, s.RotateRefreshToken(ctx, r1.Hash, withGrace("r2b", 5*time.Second), newAccess("a2b", "f1", "u1", "app", now, time.Hour)),
			storage.ErrNotFound, "rotate r1 again")
		_, err = s.GetAccessToken(ctx, "a2b")
		isErr(t, err, storage.ErrNotFound, "access token of the refused rotation")

		// Once r2 is used, r1 is plain reuse, within a grace or not.
		c.Add(time.Second)
		r3 := withGrace("r3", 5*time.Second)
		ok(t, s.RotateRefreshToken(ctx, r2.Hash, r3, newAccess("a3", "f1", "u1", "app", c.Now(), time.Hour)), "rotate r2 to r3")
		got, err = s.GetRefreshToken(ctx, r2.Hash)
		ok(t, err, "retry of r2 within r3's grace")
		equal(t, got, r3, "what a retry of r2 gives")
		_, err = s.GetRefreshToken(ctx, r1.Hash)
		isErr(t, err, storage.ErrTokenReused, "r1 after its successor was used")
		for _, h := range []string{r2.Hash, r3.Hash} {
			_, err = s.GetRefreshToken(ctx, h)
			isErr(t, err, storage.ErrNotFound, "%s after the family was revoked", h)
		}
		_, err = s.GetAccessToken(ctx, "a3")
		isErr(t, err, storage.ErrNotFound, "access token of the revoked family")
	}},
	{"RetryAtomic", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// A retry is decided when the token is read and answered later,
		// when its access token is stored: RetryRefreshToken decides again
		// in that transaction. If the successor was used in between, the
		// retry is reuse: the family goes, and the retry gets nothing.
		ctx, now := t.Context(), c.Now()
		withGrace := func(id string) storage.RefreshToken {
			r := newRefresh(id, "f1", "u1", "app", c.Now(), time.Hour)
			r.SealedValue, r.GraceUntil = []byte("sealed "+id), c.Now().Add(5*time.Second)
			return r
		}
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		r2 := withGrace("r2")
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "rotate r1 to r2")

		// A retry answered at once.
		got, err := s.GetRefreshToken(ctx, r1.Hash)
		ok(t, err, "read r1 within r2's grace")
		equal(t, got, r2, "what reading r1 gives")
		got, err = s.RetryRefreshToken(ctx, r1.Hash, newAccess("ax", "", "u1", "app", now, time.Hour))
		ok(t, err, "retry r1")
		equal(t, got, r2, "what the retry of r1 gives")
		ax, err := s.GetAccessToken(ctx, "ax")
		ok(t, err, "the retry's access token")
		equal(t, ax.FamilyID, "f1", "the retry's access token's family")
		_, err = s.RetryRefreshToken(ctx, r2.Hash, newAccess("az", "", "u1", "app", now, time.Hour))
		isErr(t, err, storage.ErrNotFound, "retry a token that was not rotated")
		_, err = s.RetryRefreshToken(ctx, "nobody", newAccess("az", "", "u1", "app", now, time.Hour))
		isErr(t, err, storage.ErrNotFound, "retry an unknown token")

		// The interleaving: r1 is read as a retry, then r2 is used, then
		// the retry would store its access token and hand out r2.
		got, err = s.GetRefreshToken(ctx, r1.Hash)
		ok(t, err, "read r1 again")
		equal(t, got, r2, "what reading r1 again gives")
		r3 := withGrace("r3")
		ok(t, s.RotateRefreshToken(ctx, r2.Hash, r3, newAccess("a3", "f1", "u1", "app", now, time.Hour)), "rotate r2 to r3")
		_, err = s.RetryRefreshToken(ctx, r1.Hash, newAccess("ay", "", "u1", "app", now, time.Hour))
		isErr(t, err, storage.ErrTokenReused, "retry r1 after r2 was used")
		_, err = s.GetAccessToken(ctx, "ay")
		isErr(t, err, storage.ErrNotFound, "the access token of the refused retry")
		for _, h := range []string{r2.Hash, r3.Hash} {
			_, err = s.GetRefreshToken(ctx, h)
			isErr(t, err, storage.ErrNotFound, "%s after the family was revoked", h)
		}
		for _, id := range []string{"ax", "a3"} {
			_, err = s.GetAccessToken(ctx, id)
			isErr(t, err, storage.ErrNotFound, "access token %s after the family was revoked", id)
		}

		// A retry read within the grace but answered after it: reuse too.
		q1 := newRefresh("q1", "f2", "u1", "app", c.Now(), time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("b1", "f2", "u1", "app", c.Now(), time.Hour), &q1), "create f2")
		q2 := newRefresh("q2", "f2", "u1", "app", c.Now(), time.Hour)
		q2.SealedValue, q2.GraceUntil = []byte("sealed q2"), c.Now().Add(5*time.Second)
		ok(t, s.RotateRefreshToken(ctx, q1.Hash, q2, newAccess("b2", "f2", "u1", "app", c.Now(), time.Hour)), "rotate q1 to q2")
		_, err = s.GetRefreshToken(ctx, q1.Hash)
		ok(t, err, "read q1 within q2's grace")
		c.Add(5 * time.Second)
		_, err = s.RetryRefreshToken(ctx, q1.Hash, newAccess("bx", "", "u1", "app", c.Now(), time.Hour))
		isErr(t, err, storage.ErrTokenReused, "retry q1 after q2's grace")
		_, err = s.GetRefreshToken(ctx, q2.Hash)
		isErr(t, err, storage.ErrNotFound, "q2 after the late retry")
	}},
	{"ReuseAfterGrace", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		r2 := newRefresh("r2", "f1", "u1", "app", now, time.Hour)
		r2.SealedValue, r2.GraceUntil = []byte("sealed r2"), now.Add(5*time.Second)
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "rotate r1 to r2")
		c.Add(5 * time.Second)
		_, err := s.GetRefreshToken(ctx, r1.Hash)
		isErr(t, err, storage.ErrTokenReused, "r1 when r2's grace is over")
		_, err = s.GetRefreshToken(ctx, r2.Hash)
		isErr(t, err, storage.ErrNotFound, "r2 after the reuse")

		// A sweep after the grace drops the sealed value; the token itself
		// works on, and its predecessor is plain reuse.
		r3 := newRefresh("r3", "f2", "u1", "app", c.Now(), time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a3", "f2", "u1", "app", c.Now(), time.Hour), &r3), "create f2")
		r4 := newRefresh("r4", "f2", "u1", "app", c.Now(), time.Hour)
		r4.SealedValue, r4.GraceUntil = []byte("sealed r4"), c.Now().Add(5*time.Second)
		ok(t, s.RotateRefreshToken(ctx, r3.Hash, r4, newAccess("a4", "f2", "u1", "app", c.Now(), time.Hour)), "rotate r3 to r4")
		c.Add(10 * time.Second)
		_, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		got, err := s.GetRefreshToken(ctx, r4.Hash)
		ok(t, err, "r4 after the sweep")
		want := r4
		want.SealedValue, want.GraceUntil = nil, time.Time{}
		equal(t, got, want, "r4 after the sweep")

		// Without a grace (no sealed value), a retry is reuse at once.
		r5 := newRefresh("r5", "f2", "u1", "app", c.Now(), time.Hour)
		r5.GraceUntil = c.Now().Add(time.Minute) // no value to hand out: no grace
		ok(t, s.RotateRefreshToken(ctx, r4.Hash, r5, newAccess("a5", "f2", "u1", "app", c.Now(), time.Hour)), "rotate r4 to r5")
		_, err = s.GetRefreshToken(ctx, r4.Hash)
		isErr(t, err, storage.ErrTokenReused, "r4 without a grace")
	}},
	{"SealPastGrace", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Once the grace is over, no read hands out the sealed value.
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		r2 := newRefresh("r2", "f1", "u1", "app", now, time.Hour)
		r2.SealedValue, r2.GraceUntil = []byte("sealed r2"), now.Add(5*time.Second)
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "rotate r1 to r2")
		got, err := s.PeekRefreshToken(ctx, r2.Hash)
		ok(t, err, "peek r2 within its grace")
		equal(t, got, r2, "r2 within its grace")
		c.Add(5 * time.Second)
		want := r2
		want.SealedValue, want.GraceUntil = nil, time.Time{}
		got, err = s.GetRefreshToken(ctx, r2.Hash)
		ok(t, err, "get r2 after its grace")
		equal(t, got, want, "r2 from GetRefreshToken after its grace")
		got, err = s.PeekRefreshToken(ctx, r2.Hash)
		ok(t, err, "peek r2 after its grace")
		equal(t, got, want, "r2 from PeekRefreshToken after its grace")
		got, err = s.GetRefreshTokenByID(ctx, "r2")
		ok(t, err, "get r2 by ID after its grace")
		equal(t, got, want, "r2 from GetRefreshTokenByID after its grace")
		r3 := newRefresh("r3", "f1", "u1", "app", c.Now(), time.Hour)
		ok(t, s.RotateRefreshToken(ctx, r2.Hash, r3, newAccess("a3", "f1", "u1", "app", c.Now(), time.Hour)), "rotate r2 to r3")
	}},
	{"ReuseKeptUntilFamilyExpires", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		r2 := newRefresh("r2", "f1", "u1", "app", now, 3*time.Hour)
		r2.ExpiresAt = r1.ExpiresAt
		ok(t, s.RotateRefreshToken(ctx, r1.Hash, r2, newAccess("a2", "f1", "u1", "app", now, time.Hour)), "rotate")
		c.Add(2 * time.Hour) // past r1's own idle deadline, within the family's life
		_, err := s.GetRefreshToken(ctx, r1.Hash)
		isErr(t, err, storage.ErrTokenReused, "reuse of an old link after its idle deadline")
		_, err = s.GetRefreshToken(ctx, r2.Hash)
		isErr(t, err, storage.ErrNotFound, "newer link after reuse")
	}},
	{"DeleteAccessToken", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		r1 := newRefresh("r1", "f1", "u1", "app", now, time.Hour)
		ok(t, s.CreateTokens(ctx, newAccess("a1", "f1", "u1", "app", now, time.Hour), &r1), "create")
		ok(t, s.DeleteAccessToken(ctx, "a1"), "delete a1")
		_, err := s.GetAccessToken(ctx, "a1")
		isErr(t, err, storage.ErrNotFound, "deleted access token")
		isErr(t, s.DeleteAccessToken(ctx, "a1"), storage.ErrNotFound, "delete again")
		_, err = s.GetRefreshToken(ctx, r1.Hash)
		ok(t, err, "refresh token outlives its access token")
		ok(t, s.RevokeFamily(ctx, "f1"), "revoke the family")
	}},
	{"RevokeFamily", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		for _, fid := range []string{"f1", "f2"} {
			r := newRefresh(fid+"-r1", fid, "u1", "app", now, time.Hour)
			ok(t, s.CreateTokens(ctx, newAccess(fid+"-a1", fid, "u1", "app", now, time.Hour), &r), "create %s", fid)
			ok(t, s.RotateRefreshToken(ctx, r.Hash, newRefresh(fid+"-r2", fid, "u1", "app", now, time.Hour), newAccess(fid+"-a2", fid, "u1", "app", now, time.Hour)), "rotate %s", fid)
		}
		ok(t, s.RevokeFamily(ctx, "f1"), "revoke f1")
		_, err := s.GetRefreshToken(ctx, "h-f1-r2")
		isErr(t, err, storage.ErrNotFound, "live link of a revoked family")
		_, err = s.GetRefreshToken(ctx, "h-f1-r1")
		isErr(t, err, storage.ErrNotFound, "rotated link of a revoked family")
		for _, id := range []string{"f1-a1", "f1-a2"} {
			_, err = s.GetAccessToken(ctx, id)
			isErr(t, err, storage.ErrNotFound, "access token %s of a revoked family", id)
		}
		_, err = s.GetRefreshToken(ctx, "h-f2-r2")
		ok(t, err, "live link of another family")
		_, err = s.GetAccessToken(ctx, "f2-a2")
		ok(t, err, "access token of another family")
		isErr(t, s.RevokeFamily(ctx, "f1"), storage.ErrNotFound, "revoke f1 again")
	}},
	{"RevokeUserClient", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		family := func(fid, uid, cid string) {
			r := newRefresh(fid+"-r1", fid, uid, cid, now, time.Hour)
			ok(t, s.CreateTokens(ctx, newAccess(fid+"-a1", fid, uid, cid, now, time.Hour), &r), "create %s", fid)
		}
		family("f1", "u1", "app")   // revoked by (u1, app)
		family("f2", "u1", "other") // revoked by (u1, "")
		family("f3", "u2", "app")   // kept
		family("f4", "u10", "app")  // kept; shares a prefix with u1
		ok(t, s.RotateRefreshToken(ctx, "h-f2-r1", newRefresh("f2-r2", "f2", "u1", "other", now, time.Hour), newAccess("f2-a2", "f2", "u1", "other", now, time.Hour)), "rotate f2")
		ok(t, s.CreateTokens(ctx, newAccess("solo", "", "u1", "app", now, time.Hour), nil), "access token without a family")
		ok(t, s.CreateTokens(ctx, newAccess("machine", "", "", "app", now, time.Hour), nil), "machine token")

		n, err := s.RevokeUserClient(ctx, "u1", "app")
		ok(t, err, "revoke u1 at app")
		equal(t, n, 3, "tokens revoked for u1 at app (f1-a1, f1-r1, solo)")
		for _, id := range []string{"f1-a1", "solo"} {
			_, err = s.GetAccessToken(ctx, id)
			isErr(t, err, storage.ErrNotFound, "access token %s of u1 at app", id)
		}
		_, err = s.GetRefreshToken(ctx, "h-f1-r1")
		isErr(t, err, storage.ErrNotFound, "refresh token of u1 at app")
		for _, hash := range []string{"h-f2-r2", "h-f3-r1", "h-f4-r1"} {
			_, err = s.GetRefreshToken(ctx, hash)
			ok(t, err, "refresh token %s of another user or client", hash)
		}
		for _, id := range []string{"f2-a1", "f3-a1", "f4-a1", "machine"} {
			_, err = s.GetAccessToken(ctx, id)
			ok(t, err, "access token %s of another user or client", id)
		}

		// Rotated links go too, but only standing tokens are counted.
		n, err = s.RevokeUserClient(ctx, "u1", "")
		ok(t, err, "revoke u1 everywhere")
		equal(t, n, 3, "tokens revoked for u1 everywhere (f2-a1, f2-a2, f2-r2)")
		_, err = s.GetRefreshToken(ctx, "h-f2-r2")
		isErr(t, err, storage.ErrNotFound, "refresh token of u1 at other")
		_, err = s.GetRefreshToken(ctx, "h-f2-r1")
		isErr(t, err, storage.ErrNotFound, "rotated link of u1 at other")
		for _, hash := range []string{"h-f3-r1", "h-f4-r1"} {
			_, err = s.GetRefreshToken(ctx, hash)
			ok(t, err, "refresh token %s of another user", hash)
		}
		n, err = s.RevokeUserClient(ctx, "u1", "")
		ok(t, err, "revoke u1 again")
		equal(t, n, 0, "tokens revoked the second time")
	}},
}

var sweepTests = []test{
	{"RemovesExpiredKeepsLive", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		const soon, later = 30 * time.Minute, 2 * time.Hour

		// Auth requests: one expires, with a code; one lives.
		ok(t, createAuthRequest(ctx, s, newAuthRequest("ar-old", now, soon)), "ar-old")
		ok(t, s.IssueCode(ctx, "ar-old", "code-old", now.Add(later)), "code-old")
		ok(t, createAuthRequest(ctx, s, newAuthRequest("ar-live", now, later)), "ar-live")
		ok(t, s.IssueCode(ctx, "ar-live", "code-live", now.Add(later)), "code-live")

		// Access tokens without a family.
		ok(t, s.CreateTokens(ctx, newAccess("at-old", "", "u1", "app", now, soon), nil), "at-old")
		ok(t, s.CreateTokens(ctx, newAccess("at-live", "", "u1", "app", now, later), nil), "at-live")

		// Families: idle-expired (rotated once), absolutely expired, live.
		// Their access tokens live on their own but die with the family.
		idle := newRefresh("idle-r1", "f-idle", "u1", "app", now, soon)
		ok(t, s.CreateTokens(ctx, newAccess("idle-a1", "f-idle", "u1", "app", now, later), &idle), "f-idle")
		ok(t, s.RotateRefreshToken(ctx, idle.Hash, newRefresh("idle-r2", "f-idle", "u1", "app", now, soon), newAccess("idle-a2", "f-idle", "u1", "app", now, later)), "rotate f-idle")
		abs := newRefresh("abs-r1", "f-abs", "u1", "app", now, later)
		abs.ExpiresAt = now.Add(soon)
		ok(t, s.CreateTokens(ctx, newAccess("abs-a1", "f-abs", "u1", "app", now, later), &abs), "f-abs")
		live := newRefresh("live-r1", "f-live", "u1", "app", now, later)
		ok(t, s.CreateTokens(ctx, newAccess("live-a1", "f-live", "u1", "app", now, soon), &live), "f-live")
		ok(t, s.RotateRefreshToken(ctx, live.Hash, newRefresh("live-r2", "f-live", "u1", "app", now, later), newAccess("live-a2", "f-live", "u1", "app", now, later)), "rotate f-live")

		// Sessions and one-time tokens.
		ok(t, s.CreateSession(ctx, newSession("s-old", "u1", now, soon)), "s-old")
		ok(t, s.CreateSession(ctx, newSession("s-live", "u1", now, later)), "s-live")
		ok(t, s.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: "o-old", Purpose: "setup", CreatedAt: now, ExpiresAt: now.Add(soon)}), "o-old")
		ok(t, s.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: "o-live", Purpose: "setup", CreatedAt: now, ExpiresAt: now.Add(later)}), "o-live")

		// Login attempts: older and younger than 90 days at sweep time.
		ok(t, s.AddLoginAttempt(ctx, attempt("la-old", "u1", now.Add(-90*24*time.Hour))), "la-old")
		ok(t, s.AddLoginAttempt(ctx, attempt("la-live", "u1", now.Add(-89*24*time.Hour))), "la-live")

		// Things that never expire are never swept.
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "user")
		ok(t, s.PutSetting(ctx, "k", []byte("v")), "setting")

		c.Add(time.Hour)
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep, storage.SweepReport{
			AuthRequests:  1,
			AccessTokens:  5, // at-old, live-a1, idle-a1, idle-a2, abs-a1
			RefreshTokens: 3, // idle-r1 (rotated), idle-r2, abs-r1
			Sessions:      1,
			OneTimeTokens: 1,
			LoginAttempts: 1,
		}, "sweep report")

		_, err = s.GetAuthRequest(ctx, "ar-live")
		ok(t, err, "live auth request")
		_, err = s.RedeemCode(ctx, "code-live", "app", storage.IssuedTokens{})
		ok(t, err, "code of the live auth request")
		_, err = s.RedeemCode(ctx, "code-old", "app", storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "code of a swept auth request")
		for _, id := range []string{"at-live", "live-a2"} {
			_, err = s.GetAccessToken(ctx, id)
			ok(t, err, "live access token %s", id)
		}
		got, err := s.GetRefreshToken(ctx, "h-live-r2")
		ok(t, err, "live refresh token")
		equal(t, got.ID, "live-r2", "live refresh token")
		_, err = s.GetRefreshToken(ctx, "h-live-r1")
		isErr(t, err, storage.ErrTokenReused, "a live family's rotated link is kept to detect reuse")
		_, err = s.GetSession(ctx, "s-live")
		ok(t, err, "live session")
		_, err = s.PeekOneTimeToken(ctx, "o-live", "setup")
		ok(t, err, "live one-time token")
		attempts, err := s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "login attempts")
		equal(t, attemptIDs(attempts), []string{"la-live"}, "login attempts kept")
		_, err = s.GetUser(ctx, "u1")
		ok(t, err, "user")
		_, err = s.GetSetting(ctx, "k")
		ok(t, err, "setting")

		// Swept IDs are free again, and a second sweep finds nothing.
		ok(t, s.CreateSession(ctx, newSession("s-old", "u1", c.Now(), later)), "reuse a swept session ID")
		idle2 := newRefresh("idle-r1", "f-idle", "u1", "app", c.Now(), later)
		ok(t, s.CreateTokens(ctx, newAccess("idle-a1", "f-idle", "u1", "app", c.Now(), later), &idle2), "reuse swept token IDs")
		rep, err = s.Sweep(ctx)
		ok(t, err, "second sweep")
		equal(t, rep, storage.SweepReport{}, "second sweep report")
	}},
	{"ManyRecords", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		const n = 2500
		errs := concurrently(16, func(w int) error {
			for i := w; i < n; i += 16 {
				if err := s.CreateSession(ctx, newSession(fmt.Sprintf("s%04d", i), fmt.Sprintf("u%d", i%7), now, time.Duration(1+i%2)*time.Hour)); err != nil {
					return err
				}
			}
			return nil
		})
		for i, err := range errs {
			ok(t, err, "writer %d", i)
		}
		c.Add(time.Hour)
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.Sessions, n/2, "sessions swept")
		_, err = s.GetSession(ctx, "s0001")
		ok(t, err, "live session")
		left, err := s.DeleteUserSessions(ctx, "u1")
		ok(t, err, "delete u1's sessions")
		want := 0
		for i := 1; i < n; i += 2 {
			if i%7 == 1 {
				want++
			}
		}
		equal(t, left, want, "u1's sessions left after the sweep")
	}},
}

var backupTests = []test{
	{"NonEmpty", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create user")
		var buf bytes.Buffer
		ok(t, s.Backup(ctx, &buf), "backup")
		if buf.Len() == 0 {
			t.Fatal("backup wrote nothing")
		}
	}},
}

// pendingLog creates requests under limits with a clock that moves a second
// per request, and checks which are live.
type pendingLog struct {
	t      *testing.T
	s      storage.Store
	c      *testclock.Clock
	limits storage.PendingLimits
}

func newPendingLog(t *testing.T, s storage.Store, c *testclock.Clock, limits storage.PendingLimits) *pendingLog {
	return &pendingLog{t: t, s: s, c: c, limits: limits}
}

func (p *pendingLog) request(id, origin string) storage.AuthRequest {
	a := newAuthRequest(id, p.c.Now(), 10*time.Minute)
	a.Origin = origin
	return a
}

// create stores a request of origin and checks how many it evicted.
func (p *pendingLog) create(id, origin string, wantEvicted int) {
	p.t.Helper()
	p.createRequest(p.request(id, origin), wantEvicted)
}

// createRequest stores a; wantEvicted < 0 does not check the evictions.
func (p *pendingLog) createRequest(a storage.AuthRequest, wantEvicted int) {
	p.t.Helper()
	n, err := p.s.CreateAuthRequest(p.t.Context(), a, p.limits)
	ok(p.t, err, "create %s", a.ID)
	if wantEvicted >= 0 {
		equal(p.t, n, wantEvicted, "evicted by %s", a.ID)
	}
	p.c.Add(time.Second)
}

// open marks a request opened by a browser, as the portal does.
func (p *pendingLog) open(id string) {
	p.t.Helper()
	_, err := p.s.UpdateAuthRequest(p.t.Context(), id, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.BrowserID = "browser-of-" + id
		return a, nil
	})
	ok(p.t, err, "open %s", id)
}

// issue marks a request's code issued and shortens its life to the code's,
// as the provider does.
func (p *pendingLog) issue(id string, codeLife time.Duration) {
	p.t.Helper()
	_, err := p.s.UpdateAuthRequest(p.t.Context(), id, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.UserID, a.Completed, a.CodeIssued = "u1", true, true
		a.ExpiresAt = p.c.Now().Add(codeLife)
		return a, nil
	})
	ok(p.t, err, "issue the code of %s", id)
}

func (p *pendingLog) live(ids ...string) {
	p.t.Helper()
	for _, id := range ids {
		_, err := p.s.GetAuthRequest(p.t.Context(), id)
		ok(p.t, err, "request %s", id)
	}
}

func (p *pendingLog) gone(ids ...string) {
	p.t.Helper()
	for _, id := range ids {
		_, err := p.s.GetAuthRequest(p.t.Context(), id)
		isErr(p.t, err, storage.ErrNotFound, "evicted request %s", id)
	}
}
