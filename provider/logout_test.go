package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// An app's logout for the person signed in (its ID token as the hint) is
// validated once: the hint verified and the client read by the provider
// before it decides whether to ask, not again by zitadel after; and it
// still signs out, revokes the app's tokens and goes back to the app.
func TestEndSessionValidatesOnce(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "k.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	if err := db.CreateUser(ctx, storage.User{ID: "u1", Username: "gus", Email: "gus@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	const back = "https://app.example.com/signed-out"
	if err := db.CreateClient(ctx, storage.Client{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"},
		PostLogoutRedirectURIs: []string{back}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	access := storage.AccessToken{ID: "at1", ClientID: "app", UserID: "u1", Subject: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := db.CreateTokens(ctx, access, nil); err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	keys := NewKeyManager(db, sealer, 30*24*time.Hour, 2*time.Hour, time.Now, nil)
	if err := keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{DB: db}
	const issuer = "https://id.example.com"
	var signedOut int
	p, err := New(Options{Issuer: issuer, Store: cs, Keys: keys, Logger: slog.New(slog.DiscardHandler),
		OnLogout:     func(http.ResponseWriter, *http.Request) { signedOut++ },
		SignedInUser: func(*http.Request) string { return "u1" },
		LogoutPrompt: func(w http.ResponseWriter, r *http.Request, continueURL string) { t.Errorf("asked to confirm %s", continueURL) },
		LoggedOutURL: issuer + "/logged-out"})
	if err != nil {
		t.Fatal(err)
	}

	st, err := keys.current()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: st.signing.alg, Key: jose.JSONWebKey{Key: st.signing.key, KeyID: st.signing.id}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"iss": issuer, "sub": "u1", "aud": []string{"app"}, "azp": "app",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()})
	jws, err := signer.Sign(claims)
	if err != nil {
		t.Fatal(err)
	}
	hint, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}

	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {back}, "state": {"s1"}}
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, issuer+"/end_session?"+q.Encode(), nil))
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != back+"?state=s1" {
		t.Fatalf("status %d, Location %q, want 302 to %s?state=s1; body %s", rec.Code, rec.Header().Get("Location"), back, rec.Body)
	}
	if signedOut != 1 {
		t.Errorf("the browser's session was ended %d times, want 1", signedOut)
	}
	if _, err := db.GetAccessToken(ctx, "at1"); err == nil {
		t.Error("the app's access token survived its logout")
	}
	if n := cs.clients.Load(); n != 1 {
		t.Errorf("the client was read %d times, want 1 (the request validated once)", n)
	}
}
