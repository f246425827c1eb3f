package provider

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// flakyTokenStore fails reads of access tokens while failing is set, as a
// database that is briefly unreachable does.
type flakyTokenStore struct {
	*bolt.DB
	failing atomic.Bool
}

func (s *flakyTokenStore) GetAccessToken(ctx context.Context, id string) (storage.AccessToken, error) {
	if s.failing.Load() {
		return storage.AccessToken{}, errors.New("connection refused")
	}
	return s.DB.GetAccessToken(ctx, id)
}

// TestReviewStatelessRevocationStoreFailure: RFC 7009 revocation of a
// stateless client_credentials token while the store cannot be read. The
// stored-token path answers 500 (server_error), and the app knows to try
// again; the stateless path answered 200, stored no tombstone, and the
// token stayed active: withPresentedStateless leaves the context without
// the token on any error of statelessToken, and revokeStateless takes a
// missing token for an unknown one (RFC 7009 §2.2: "not an error").
func TestReviewStatelessRevocationStoreFailure(t *testing.T) {
	f := newAssertionFixture(t, nil)
	f.register(account.NewClient{ID: "bot", GrantTypes: []string{account.GrantClientCredentials}, AccessTokenJWT: true}, f.secret)
	f.register(account.NewClient{ID: "opaque-bot", GrantTypes: []string{account.GrantClientCredentials}}, f.secret)
	store := &flakyTokenStore{DB: f.db}
	p, err := New(Options{Subjects: testSubjects(t), Issuer: assertionIssuer, Store: store, Keys: f.p.opts.Keys, Logger: slog.New(slog.DiscardHandler), Now: f.clock.Now,
		Lifetimes: Lifetimes{Access: time.Hour, ID: time.Hour, Code: time.Minute, Refresh: time.Hour, RefreshIdle: time.Hour, AuthRequest: time.Minute},
		Web:       logoutWeb(t), SignOut: logoutSignOut{&logoutFixture{}}, LoggedOutURL: assertionIssuer + "/logged-out",
		ClientAssertions: ClientAssertionOptions{Sealer: f.sealer}})
	if err != nil {
		t.Fatal(err)
	}
	f.p = p
	tok := wantToken(t, "bot's grant", f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "bot", f.secret))
	if strings.Count(tok, ".") != 2 {
		t.Fatalf("not a JWT: %q", tok)
	}
	active := func() bool {
		t.Helper()
		w := f.post("/oauth/introspect", url.Values{"token": {tok}}, "sec", f.secret)
		if w.Code != http.StatusOK {
			t.Fatalf("introspect: %d %s", w.Code, w.Body)
		}
		return strings.Contains(w.Body.String(), `"active":true`)
	}
	if !active() {
		t.Fatal("bot's new token is inactive")
	}

	// The stored path, for comparison: a 5xx.
	opaque := wantToken(t, "opaque-bot's grant", f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "opaque-bot", f.secret))
	store.failing.Store(true)
	if w := f.post("/revoke", url.Values{"token": {opaque}}, "opaque-bot", f.secret); w.Code < 500 {
		t.Errorf("revocation of a stored token while the store failed: %d %s", w.Code, w.Body)
	}
	w := f.post("/revoke", url.Values{"token": {tok}}, "bot", f.secret)
	store.failing.Store(false)
	if w.Code == http.StatusOK && active() {
		t.Errorf("revocation while the store failed: 200, yet the token is still active")
	}
	if w.Code != http.StatusOK && w.Code < 500 {
		t.Errorf("revocation while the store failed: %d %s, want a 5xx the app retries", w.Code, w.Body)
	}
}
