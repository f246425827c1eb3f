package storagetest

import (
	"context"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// clientFixture stores, for app id, what users and the app itself are
// issued or bound to: u1's refresh-token family with its access token,
// u2's access token without a family, a machine token, both users'
// grants, an app password of u1's restricted to the app, a pending sign-in,
// one with its code issued and one whose code was redeemed.
func clientFixture(t *testing.T, s storage.Store, clock *testclock.Clock, id string) {
	t.Helper()
	ctx, now := t.Context(), clock.Now()
	ok(t, s.CreateClient(ctx, newClient(id)), "create %s", id)
	r := newRefresh("r-"+id, "f-"+id, "u1", id, now, 24*time.Hour)
	ok(t, s.CreateTokens(ctx, newAccess("a1-"+id, "", "u1", id, now, time.Hour), &r), "u1's tokens at %s", id)
	ok(t, s.CreateTokens(ctx, newAccess("a2-"+id, "", "u2", id, now, time.Hour), nil), "u2's token at %s", id)
	ok(t, s.CreateTokens(ctx, newAccess("m-"+id, "", "", id, now, time.Hour), nil), "machine token of %s", id)
	for _, uid := range []string{"u1", "u2"} {
		ok(t, s.PutGrant(ctx, storage.Grant{UserID: uid, ClientID: id, Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}, nil), "grant of %s to %s", uid, id)
	}
	pw := newCredential("pw-"+id, "u1", storage.KindAppPassword, "hpw-"+id, nil, now)
	pw.ClientID = id
	ok(t, s.CreateCredential(ctx, pw), "app password for %s", id)
	for _, ar := range []string{"pending-", "issued-", "redeemed-"} {
		a := newAuthRequest(ar+id, now, 10*time.Minute)
		a.ClientID, a.UserID = id, "u1"
		ok(t, createAuthRequest(ctx, s, a), "auth request %s%s", ar, id)
	}
	ok(t, s.IssueCode(ctx, "issued-"+id, "code-issued-"+id, now.Add(time.Minute)), "issue a code for %s", id)
	ok(t, s.IssueCode(ctx, "redeemed-"+id, "code-redeemed-"+id, now.Add(time.Minute)), "issue a code for %s", id)
	_, err := s.RedeemCode(ctx, "code-redeemed-"+id, id, storage.IssuedTokens{AccessTokenID: "a1-" + id, FamilyID: "f-" + id})
	ok(t, err, "redeem the code of %s", id)
}

// clientTokensGone tells, record by record, whether app id's tokens are
// gone (want true) or all still there (want false).
func clientTokens(t *testing.T, s storage.Store, id string, want bool) {
	t.Helper()
	ctx := t.Context()
	for _, a := range []string{"a1-", "a2-", "m-"} {
		_, err := s.GetAccessToken(ctx, a+id)
		checkGone(t, err, want, "access token %s%s", a, id)
	}
	_, err := s.GetRefreshTokenByID(ctx, "r-"+id)
	checkGone(t, err, want, "refresh token of %s", id)
	_, err = s.PeekRefreshToken(ctx, "h-r-"+id)
	checkGone(t, err, want, "refresh token of %s by its hash", id)
}

// clientBound does the same for the grants and the app password.
func clientBound(t *testing.T, s storage.Store, id string, want bool) {
	t.Helper()
	ctx := t.Context()
	for _, uid := range []string{"u1", "u2"} {
		_, err := s.GetGrant(ctx, uid, id)
		checkGone(t, err, want, "grant of %s to %s", uid, id)
	}
	_, err := s.GetCredentialByHash(ctx, "hpw-"+id)
	checkGone(t, err, want, "app password for %s", id)
	_, err = s.GetCredential(ctx, "u1", "pw-"+id)
	checkGone(t, err, want, "app password for %s by ID", id)
}

// clientFlows does the same for the sign-ins and codes.
func clientFlows(t *testing.T, s storage.Store, id string, want bool) {
	t.Helper()
	ctx := t.Context()
	for _, ar := range []string{"pending-", "issued-"} {
		_, err := s.GetAuthRequest(ctx, ar+id)
		checkGone(t, err, want, "auth request %s%s", ar, id)
	}
	// Redeeming its code took the request (RedeemCode).
	_, err := s.GetAuthRequest(ctx, "redeemed-"+id)
	isErr(t, err, storage.ErrNotFound, "auth request redeemed-%s", id)
	if want {
		// Redeeming would change the record; only a gone code is tried.
		_, err := s.RedeemCode(ctx, "code-issued-"+id, id, storage.IssuedTokens{})
		isErr(t, err, storage.ErrNotFound, "redeem the issued code of %s", id)
		_, err = s.MarkCodeReplayed(ctx, "code-redeemed-"+id, id)
		isErr(t, err, storage.ErrNotFound, "replay the redeemed code of %s", id)
	}
}

func checkGone(t *testing.T, err error, gone bool, format string, args ...any) {
	t.Helper()
	if gone {
		isErr(t, err, storage.ErrNotFound, format, args...)
	} else {
		ok(t, err, format, args...)
	}
}

func twoUsers(ctx context.Context, t *testing.T, s storage.Store) {
	t.Helper()
	ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
	ok(t, s.CreateUser(ctx, newUser("u2", "bob", "bob@example.com")), "create bob")
}

var clientRecordTests = []test{
	{"DeleteClientCascades", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		twoUsers(ctx, t, s)
		clientFixture(t, s, clock, "app")
		clientFixture(t, s, clock, "other")
		free := newCredential("pw-any", "u1", storage.KindAppPassword, "hpw-any", nil, clock.Now())
		ok(t, s.CreateCredential(ctx, free), "an app password for every app")

		ok(t, s.DeleteClient(ctx, "app"), "delete app")
		clientTokens(t, s, "app", true)
		clientBound(t, s, "app", true)
		clientFlows(t, s, "app", true)
		n, err := s.RevokeUserClient(ctx, "u1", "app")
		ok(t, err, "revoke u1's tokens at the deleted app")
		equal(t, n, 0, "u1's tokens left at the deleted app")

		// The other app, and what is bound to no app, stay.
		clientTokens(t, s, "other", false)
		clientBound(t, s, "other", false)
		clientFlows(t, s, "other", false)
		_, err = s.GetCredentialByHash(ctx, "hpw-any")
		ok(t, err, "an app password for every app stays")
		grants, err := s.ListGrants(ctx, "u1")
		ok(t, err, "u1's grants")
		equal(t, idsOf(grants, func(g storage.Grant) string { return g.ClientID }), []string{"other"}, "u1's grants")

		// An app registered again under the ID starts with nothing.
		ok(t, s.CreateClient(ctx, newClient("app")), "register app again")
		clientBound(t, s, "app", true)
		grants, err = s.ListGrants(ctx, "u2")
		ok(t, err, "u2's grants")
		equal(t, idsOf(grants, func(g storage.Grant) string { return g.ClientID }), []string{"other"}, "u2's grants after the app came back")

		// What went took its expiry with it: the sweep finds the other
		// app's records only.
		clock.Add(31 * 24 * time.Hour)
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, [3]int{rep.AccessTokens, rep.RefreshTokens, rep.AuthRequests}, [3]int{3, 1, 2}, "swept access tokens, refresh tokens, auth requests")

		// The users still delete cleanly.
		ok(t, s.DeleteUser(ctx, "u1", time.Time{}), "delete alice")
		_, err = s.GetGrant(ctx, "u1", "other")
		isErr(t, err, storage.ErrNotFound, "alice's grant to other")
		ok(t, s.DeleteClient(ctx, "other"), "delete other")
		_, err = s.GetGrant(ctx, "u2", "other")
		isErr(t, err, storage.ErrNotFound, "bob's grant to other")
	}},
	{"UpdateClientRevokingTokens", func(t *testing.T, s storage.Store, clock *testclock.Clock) {
		ctx := t.Context()
		twoUsers(ctx, t, s)
		clientFixture(t, s, clock, "app")
		clientFixture(t, s, clock, "other")

		// A refused update revokes nothing.
		_, _, err := s.UpdateClientRevokingTokens(ctx, "app", func(c storage.Client) (storage.Client, error) {
			c.SecretHash = "new"
			return c, errBoom
		})
		isErr(t, err, errBoom, "update whose fn fails")
		clientTokens(t, s, "app", false)
		c, err := s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, c.SecretHash, "ab12", "secret after a refused update")
		_, _, err = s.UpdateClientRevokingTokens(ctx, "nobody", func(c storage.Client) (storage.Client, error) { return c, nil })
		isErr(t, err, storage.ErrNotFound, "update a missing client")

		updated, n, err := s.UpdateClientRevokingTokens(ctx, "app", func(c storage.Client) (storage.Client, error) {
			c.SecretHash = "new"
			return c, nil
		})
		ok(t, err, "update app and revoke its tokens")
		equal(t, updated.SecretHash, "new", "returned client")
		c, err = s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, c, updated, "stored client")
		equal(t, n, 4, "revoked tokens (three access tokens, one refresh token)")
		clientTokens(t, s, "app", true)
		// Only tokens: consents, app passwords and sign-ins stay.
		clientBound(t, s, "app", false)
		clientFlows(t, s, "app", false)
		clientTokens(t, s, "other", false)

		// New tokens after the revocation are the app's like any other.
		ok(t, s.CreateTokens(ctx, newAccess("later", "", "", "app", clock.Now(), time.Hour), nil), "a token after the revocation")
		_, n, err = s.UpdateClientRevokingTokens(ctx, "app", func(c storage.Client) (storage.Client, error) { return c, nil })
		ok(t, err, "revoke again")
		equal(t, n, 1, "revoked the later token")
	}},
}
