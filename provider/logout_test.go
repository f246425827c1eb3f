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
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/templates"
	"github.com/keyport/keyport/web"
)

const (
	logoutIssuer = "https://id.example.com"
	logoutBack   = "https://app.example.com/signed-out"
)

// logoutFixture is a provider on a real bolt store (counting its client
// reads) whose browser has u1 signed in, and u1 holds an access token of
// app.
type logoutFixture struct {
	t          *testing.T
	p          *Provider
	db         *bolt.DB
	store      *countingStore
	keys       *KeyManager
	signedOut  int
	prompts    []string
	hintIssued time.Time
}

func newLogoutFixture(t *testing.T) *logoutFixture {
	t.Helper()
	return newLogoutFixtureSigning(t, "RS256")
}

// newLogoutFixtureSigning is newLogoutFixture with keys of alg.
func newLogoutFixtureSigning(t *testing.T, alg string) *logoutFixture {
	t.Helper()
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
	if err := db.CreateClient(ctx, storage.Client{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"},
		PostLogoutRedirectURIs: []string{logoutBack}, CreatedAt: now}); err != nil {
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
	f := &logoutFixture{t: t, db: db, store: &countingStore{DB: db}, hintIssued: now}
	f.keys = NewKeyManager(db, sealer, 30*24*time.Hour, 2*time.Hour, time.Now, nil)
	if err := f.keys.SetAlgorithm(alg); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f.p, err = New(Options{Subjects: testSubjects(t), Issuer: logoutIssuer, Store: f.store, Keys: f.keys, Logger: slog.New(slog.DiscardHandler),
		Web:          logoutWeb(t),
		SignOut:      logoutSignOut{f},
		LoggedOutURL: logoutIssuer + "/logged-out"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// logoutWeb is the real browser binding and pages: the error pages the
// fixture's requests get are Keyport's own.
func logoutWeb(t *testing.T) *web.Web {
	t.Helper()
	w, err := web.New(web.Options{Issuer: logoutIssuer, Templates: templates.FS, CookieKey: make([]byte, 32), CookieName: "k"})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// logoutSignOut is the fixture's sign-in side: u1 is signed in, and
// signing out and confirmations are counted.
type logoutSignOut struct{ f *logoutFixture }

func (logoutSignOut) SignedInUserID(*http.Request) string { return "u1" }
func (b logoutSignOut) EndBrowserSession(http.ResponseWriter, *http.Request, string) bool {
	b.f.signedOut++
	return false
}
func (b logoutSignOut) LogoutPrompt(w http.ResponseWriter, r *http.Request, continueURL string) {
	b.f.prompts = append(b.f.prompts, continueURL)
	w.WriteHeader(http.StatusOK)
}
func (logoutSignOut) RetryWithCookie(http.ResponseWriter, *http.Request, string) bool { return false }

// hint is an ID token of u1 for app, signed by the provider's key.
func (f *logoutFixture) hint() string {
	f.t.Helper()
	st, err := f.keys.current()
	if err != nil {
		f.t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: st.signing.alg, Key: jose.JSONWebKey{Key: st.signing.key, KeyID: st.signing.id}}, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	claims, _ := json.Marshal(map[string]any{"iss": logoutIssuer, "sub": "u1", "aud": []string{"app"}, "azp": "app",
		"iat": f.hintIssued.Unix(), "exp": f.hintIssued.Add(time.Hour).Unix()})
	jws, err := signer.Sign(claims)
	if err != nil {
		f.t.Fatal(err)
	}
	hint, err := jws.CompactSerialize()
	if err != nil {
		f.t.Fatal(err)
	}
	return hint
}

func (f *logoutFixture) endSession(q url.Values) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, logoutIssuer+"/end_session?"+q.Encode(), nil))
	return rec
}

// tokenKept tells whether u1's access token of app is still there.
func (f *logoutFixture) tokenKept() bool {
	_, err := f.db.GetAccessToken(context.Background(), "at1")
	return err == nil
}

// An app's logout for the person signed in (its ID token as the hint) is
// validated once: the hint verified and the client read by the provider
// before it decides whether to ask, not again by zitadel after; and it
// still signs out, revokes the app's tokens and goes back to the app.
func TestEndSessionValidatesOnce(t *testing.T) {
	f := newLogoutFixture(t)
	rec := f.endSession(url.Values{"id_token_hint": {f.hint()}, "post_logout_redirect_uri": {logoutBack}, "state": {"s1"}})
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != logoutBack+"?state=s1" {
		t.Fatalf("status %d, Location %q, want 302 to %s?state=s1; body %s", rec.Code, rec.Header().Get("Location"), logoutBack, rec.Body)
	}
	if f.signedOut != 1 || len(f.prompts) != 0 {
		t.Errorf("the browser's session was ended %d times (want 1), %d confirmations asked (want 0)", f.signedOut, len(f.prompts))
	}
	if f.tokenKept() {
		t.Error("the app's access token survived its logout")
	}
	if n := f.store.clients.Load(); n != 1 {
		t.Errorf("the client was read %d times, want 1 (the request validated once)", n)
	}
}

// An ID token signed with an ES256 or EdDSA key is a valid id_token_hint:
// zitadel accepts only RS256, ES256 and PS256 unless told.
func TestEndSessionHintOfEveryAlgorithm(t *testing.T) {
	for _, alg := range Algorithms {
		t.Run(alg, func(t *testing.T) {
			f := newLogoutFixtureSigning(t, alg)
			rec := f.endSession(url.Values{"id_token_hint": {f.hint()}, "post_logout_redirect_uri": {logoutBack}, "state": {"s1"}})
			if rec.Code != http.StatusFound || rec.Header().Get("Location") != logoutBack+"?state=s1" || f.tokenKept() {
				t.Fatalf("status %d, Location %q, token kept %v; want 302 to %s?state=s1 and the logout done; body %.300s",
					rec.Code, rec.Header().Get("Location"), f.tokenKept(), logoutBack, rec.Body)
			}
		})
	}
}

// An end_session request too long to be carried through the confirmation
// and back to the app (its state, or the whole of it) is refused with a
// 400 that says so, and signs nobody out; one at the bounds runs.
func TestEndSessionLengthCapped(t *testing.T) {
	for _, tc := range []struct {
		name   string
		params func(hint string) url.Values
		ok     bool
	}{
		{"state at the bound", func(hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {logoutBack}, "state": {strings.Repeat("s", maxEndSessionState)}}
		}, true},
		{"state too long", func(hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {logoutBack}, "state": {strings.Repeat("s", maxEndSessionState+1)}}
		}, false},
		{"request too long", func(hint string) url.Values {
			return url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {logoutBack}, "logout_hint": {strings.Repeat("h", maxEndSessionContinue)}}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newLogoutFixture(t)
			rec := f.endSession(tc.params(f.hint()))
			if tc.ok {
				if rec.Code != http.StatusFound || f.tokenKept() {
					t.Errorf("status %d, token kept %v; want 302 and the logout done", rec.Code, f.tokenKept())
				}
				return
			}
			if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "more than") {
				t.Errorf("status %d, body %.300s; want 400 saying the request is too long", rec.Code, rec.Body)
			}
			if !f.tokenKept() || f.signedOut != 0 || len(f.prompts) != 0 {
				t.Errorf("refused, yet token kept %v, signed out %d times, asked %d times", f.tokenKept(), f.signedOut, len(f.prompts))
			}
		})
	}
}
