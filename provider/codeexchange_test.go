package provider

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/storage"
)

// codeFixture is a refresh fixture with a completed authorization request
// of app for u1 whose code is issued.
func newCodeFixture(t *testing.T) (*refreshFixture, context.Context, string) {
	t.Helper()
	f := newRefreshFixture(t)
	f.s.life.Code, f.s.life.AuthRequest = time.Minute, time.Hour
	ctx := withCodeClient(context.Background(), codeClient{id: "app"})
	a := storage.AuthRequest{ID: "ar1", ClientID: "app", UserID: "u1", Scopes: []string{"openid", "offline_access"},
		ResponseType: "code", Completed: true, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour)}
	if _, err := f.s.store.CreateAuthRequest(ctx, a, storage.PendingLimits{}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.SaveAuthCode(ctx, "ar1", "the-code"); err != nil {
		t.Fatal(err)
	}
	return f, ctx, "the-code"
}

// tokensOf reports what the store holds of the tokens an exchange issued.
func tokensOf(t *testing.T, f *refreshFixture, accessID, refresh string) (access, family bool) {
	t.Helper()
	_, aerr := f.s.store.GetAccessToken(context.Background(), accessID)
	_, rerr := f.s.store.GetRefreshToken(context.Background(), refreshKey(refresh))
	return aerr == nil, rerr == nil
}

// SaveAuthCode gives a request one code in one storage call: the request
// is marked and shortened to the code's life, and a second code is
// refused.
func TestSaveAuthCodeOnce(t *testing.T) {
	f, ctx, _ := newCodeFixture(t)
	a, err := f.s.store.GetAuthRequest(ctx, "ar1")
	if err != nil {
		t.Fatal(err)
	}
	if !a.CodeIssued || !a.ExpiresAt.Equal(f.now.Add(time.Minute)) {
		t.Errorf("after SaveAuthCode: code issued %v, expires %v; want true and %v", a.CodeIssued, a.ExpiresAt, f.now.Add(time.Minute))
	}
	if err := f.s.SaveAuthCode(ctx, "ar1", "another-code"); !isInvalidRequest(err) {
		t.Errorf("a second code: %v, want invalid_request", err)
	}
	if _, err := f.s.AuthRequestByCode(ctx, "another-code"); !isInvalidGrant(err) {
		t.Errorf("the refused second code redeemed: %v", err)
	}
}

// The exchange stores its tokens under the IDs its redemption recorded:
// a replay afterwards revokes exactly them.
func TestCodeReplayAfterExchangeRevokesItsTokens(t *testing.T) {
	f, ctx, code := newCodeFixture(t)
	req, err := f.s.AuthRequestByCode(ctx, code)
	if err != nil {
		t.Fatal(err)
	}
	accessID, refresh, _, err := f.s.CreateAccessAndRefreshTokens(ctx, req, "")
	if err != nil {
		t.Fatal(err)
	}
	if a, r := tokensOf(t, f, accessID, refresh); !a || !r {
		t.Fatalf("after the exchange: access token %v, refresh token %v", a, r)
	}
	if _, err := f.s.AuthRequestByCode(ctx, code); !isInvalidGrant(err) {
		t.Fatalf("replay: %v, want invalid_grant", err)
	}
	if a, r := tokensOf(t, f, accessID, refresh); a || r {
		t.Errorf("after the replay: access token %v, refresh token %v; want both revoked", a, r)
	}
}

// A replay while the exchange runs (after the redemption, before the
// tokens are stored) fails the exchange and leaves none of its tokens.
func TestCodeReplayDuringExchangeLeavesNoTokens(t *testing.T) {
	for _, withRefresh := range []bool{true, false} {
		f, ctx, code := newCodeFixture(t)
		req, err := f.s.AuthRequestByCode(ctx, code)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.s.AuthRequestByCode(ctx, code); !isInvalidGrant(err) {
			t.Fatalf("replay: %v, want invalid_grant", err)
		}
		issue := req.(*authRequest).issue
		if withRefresh {
			_, _, _, err = f.s.CreateAccessAndRefreshTokens(ctx, req, "")
		} else {
			_, _, err = f.s.CreateAccessToken(ctx, req)
		}
		if !isInvalidGrant(err) {
			t.Errorf("refresh %v: the exchange after a replay: %v, want invalid_grant", withRefresh, err)
		}
		if _, err := f.s.store.GetAccessToken(ctx, issue.AccessTokenID); err == nil {
			t.Errorf("refresh %v: the access token of a replayed code was kept", withRefresh)
		}
		if err := f.s.store.RevokeFamily(ctx, issue.FamilyID); err == nil {
			t.Errorf("refresh %v: the family of a replayed code was kept", withRefresh)
		}
	}
}

func isInvalidRequest(err error) bool {
	var oe *oidc.Error
	return errors.As(err, &oe) && oe.ErrorType == oidc.InvalidRequest
}
