package provider

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// refreshFixture is the provider's op.Storage on a real bolt store, with a
// user who holds a refresh token family.
type refreshFixture struct {
	t   *testing.T
	s   *opStorage
	now time.Time
}

func newRefreshFixture(t *testing.T) *refreshFixture {
	t.Helper()
	f := &refreshFixture{t: t, now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keyport.db"), bolt.Options{Now: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	tokens, err := newTokenCrypto([32]byte{1})
	if err != nil {
		t.Fatal(err)
	}
	f.s = &opStorage{store: db, tokens: tokens, now: func() time.Time { return f.now }, log: slog.New(slog.DiscardHandler),
		life: Lifetimes{Access: time.Hour, Refresh: 24 * time.Hour, RefreshIdle: 24 * time.Hour, RefreshReuseGrace: 5 * time.Second}}
	if err := db.CreateUser(context.Background(), storage.User{ID: "u1", Username: "gus", Email: "gus@example.com", CreatedAt: f.now}); err != nil {
		t.Fatal(err)
	}
	// Every refresh applies the app's rules, so the app must exist.
	if err := db.CreateClient(context.Background(), storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: f.now}); err != nil {
		t.Fatal(err)
	}
	return f
}

// signIn issues a new family from a code exchange and returns its refresh token.
func (f *refreshFixture) signIn() string {
	f.t.Helper()
	req := &authRequest{a: storage.AuthRequest{ID: "ar", ClientID: "app", UserID: "u1", Scopes: []string{"openid", "offline_access"}}}
	_, token, _, err := f.s.CreateAccessAndRefreshTokens(context.Background(), req, "")
	if err != nil {
		f.t.Fatal(err)
	}
	return token
}

// read is the first half of a refresh: zitadel loads the token's request.
func (f *refreshFixture) read(token string) (op.RefreshTokenRequest, error) {
	return f.s.TokenRequestByRefreshToken(context.Background(), token)
}

// issue is the second half: the new tokens for a request read before.
func (f *refreshFixture) issue(req op.RefreshTokenRequest, token string) (string, error) {
	_, next, _, err := f.s.CreateAccessAndRefreshTokens(context.Background(), req, token)
	return next, err
}

// refresh is a whole refresh.
func (f *refreshFixture) refresh(token string) (string, error) {
	req, err := f.read(token)
	if err != nil {
		return "", err
	}
	return f.issue(req, token)
}

func isInvalidGrant(err error) bool {
	var oe *oidc.Error
	return errors.As(err, &oe) && oe.ErrorType == oidc.InvalidGrant
}

// A retry is decided when its token is read and answered once its access
// token is stored. If the successor is used in between (the retry is a
// stolen token racing the app), the retry is reuse: it gets nothing, and
// the family is revoked, rather than handing out a successor that is
// itself a retry of the next link.
func TestRefreshRetryRacingTheSuccessor(t *testing.T) {
	f := newRefreshFixture(t)
	t1 := f.signIn()
	t2, err := f.refresh(t1)
	if err != nil {
		t.Fatal(err)
	}
	retry, err := f.read(t1)
	if err != nil {
		t.Fatalf("read t1 within the grace: %v", err)
	}
	t3, err := f.refresh(t2) // the app uses t2 meanwhile
	if err != nil {
		t.Fatal(err)
	}
	if got, err := f.issue(retry, t1); !isInvalidGrant(err) {
		t.Fatalf("the retry of t1 after t2 was used: %v (handed out t2: %v); want invalid_grant", err, got == t2)
	}
	if _, err := f.refresh(t3); !isInvalidGrant(err) {
		t.Errorf("t3 after t1 was reused: %v; want the family revoked", err)
	}
}

// A kept successor that no longer opens (sealed under another key, or
// damaged) cannot be handed out again: the retry gets invalid_grant, not a
// server error, and the successor stands.
func TestRefreshRetryWithUnopenableSeal(t *testing.T) {
	f := newRefreshFixture(t)
	t1 := f.signIn()
	t2, err := f.refresh(t1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := newTokenCrypto([32]byte{2})
	if err != nil {
		t.Fatal(err)
	}
	f.s.tokens = other
	if _, err := f.refresh(t1); !isInvalidGrant(err) {
		t.Errorf("a retry whose successor does not open: %v; want invalid_grant", err)
	}
	if _, err := f.refresh(t2); err != nil {
		t.Errorf("the successor after the refused retry: %v", err)
	}
}
