package oidc_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/testlog"
)

// fakeUpstream is an OpenID provider on loopback whose discovery and token
// endpoint the test turns on and off. Its token endpoint answers with an
// ID token signed by its own key for the last nonce the test set, or with
// the status in tokenStatus.
type fakeUpstream struct {
	*httptest.Server
	key         *rsa.PrivateKey
	discoveryUp atomic.Bool
	tokenStatus atomic.Int32 // 0 or 200: a token; anything else: that status
	nonce       atomic.Value // string
	discoveries atomic.Int32
	exchanges   atomic.Int32
}

func newFakeUpstream(t *testing.T) *fakeUpstream {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeUpstream{key: key}
	f.discoveryUp.Store(true)
	f.nonce.Store("")
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeUpstream) serve(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/.well-known/openid-configuration":
		f.discoveries.Add(1)
		if !f.discoveryUp.Load() {
			http.Error(w, "bad gateway", http.StatusBadGateway)
			return
		}
		writeJSON(w, map[string]any{
			"issuer": f.URL, "authorization_endpoint": f.URL + "/authorize", "token_endpoint": f.URL + "/token",
			"jwks_uri": f.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"},
		})
	case "/keys":
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: f.key.Public(), KeyID: "k1", Algorithm: "RS256", Use: "sig"}}})
	case "/token":
		f.exchanges.Add(1)
		switch st := int(f.tokenStatus.Load()); st {
		case 0, http.StatusOK:
		case http.StatusBadRequest:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(st)
			w.Write([]byte(`{"error":"invalid_grant"}`))
			return
		default:
			w.Header().Set("Retry-After", "30")
			http.Error(w, http.StatusText(st), st)
			return
		}
		writeJSON(w, map[string]any{"access_token": "at", "token_type": "Bearer", "expires_in": 60, "id_token": f.idToken()})
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeUpstream) idToken() string {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: f.key, KeyID: "k1"}}, nil)
	if err != nil {
		panic(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{
		"iss": f.URL, "sub": "sub-ursula", "aud": "keyport", "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(),
		"nonce": f.nonce.Load(), "preferred_username": "ursula", "email": "ursula@example.com", "email_verified": true,
	})
	jws, err := signer.Sign(payload)
	if err != nil {
		panic(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		panic(err)
	}
	return raw
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

type rig struct {
	up    *fakeUpstream
	src   *oidc.Source
	clock *testclock.Clock
	logs  *testlog.Buffer
}

func newRig(t *testing.T, client *http.Client) *rig {
	t.Helper()
	r := &rig{up: newFakeUpstream(t), clock: testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), logs: &testlog.Buffer{}}
	var err error
	r.src, err = oidc.Config{ID: "up", Name: "Upstream", Issuer: r.up.URL, ClientID: "keyport", ClientSecret: "secret",
		RedirectURL: "http://127.0.0.1/login/upstream/callback", HTTPClient: client,
		Logger: slog.New(slog.NewTextHandler(r.logs, nil)), Now: r.clock.Now}.Open()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

const (
	verifier    = "verifier-verifier-verifier-verifier-verifier-12"
	outageLine  = "upstream OpenID provider cannot be reached"
	backUpLine  = "upstream OpenID provider reachable again"
	testTimeout = 20 * time.Second
)

// press is a press of the sign-in button: it needs discovery.
func (r *rig) press(t *testing.T) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	r.up.nonce.Store("nonce-1")
	_, err := r.src.AuthURL(ctx, "state", "nonce-1", verifier)
	return err
}

// A browser that drops the connection during the callback (its request
// context is cancelled) says nothing about the upstream: the exchange still
// runs to the upstream's answer, and a refused code stays a refusal. Before,
// the cancellation itself was taken for an outage: every button showed the
// outage page, and repeated, the wait grew to minutes.
func TestCancelledCallbackLeavesUpstreamUp(t *testing.T) {
	r := newRig(t, nil)
	if err := r.press(t); err != nil {
		t.Fatal(err)
	}
	r.up.tokenStatus.Store(http.StatusBadRequest) // a forged or used code
	for range 8 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := r.src.Exchange(ctx, "junk", verifier, "nonce-1")
		if !errors.Is(err, directory.ErrInvalidCredentials) || errors.Is(err, directory.ErrUnavailable) {
			t.Fatalf("exchange of a refused code with a cancelled request: %v", err)
		}
	}
	if err := r.press(t); err != nil {
		t.Errorf("the next press after cancelled callbacks: %v", err)
	}
	if n := r.logs.Count(outageLine); n != 0 {
		t.Errorf("cancelled callbacks were logged as an outage:\n%s", r.logs)
	}

	// An honest code still signs in when the browser went away meanwhile:
	// the exchange is not cut short by the request.
	r.up.tokenStatus.Store(http.StatusOK)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if id, err := r.src.Exchange(ctx, "code", verifier, "nonce-1"); err != nil || id.ID != "sub-ursula" {
		t.Errorf("exchange with a cancelled request: %v %+v", err, id)
	}
}

// After a long outage the upstream's return is noticed within the retry cap
// (30 s), not after the five minutes the backoff used to reach; and while
// it was down, presses cost at most one discovery request per retry.
func TestRecoveryNoticedSoonAfterLongOutage(t *testing.T) {
	r := newRig(t, nil)
	r.up.discoveryUp.Store(false)
	// Down for ten minutes, a press every 5 seconds; it comes back just
	// after a failed check (the worst moment).
	for elapsed := time.Duration(0); ; elapsed += 5 * time.Second {
		before := r.up.discoveries.Load()
		if err := r.press(t); !errors.Is(err, directory.ErrUnavailable) {
			t.Fatalf("press with the upstream down: %v", err)
		}
		r.clock.Add(5 * time.Second)
		if elapsed >= 10*time.Minute && r.up.discoveries.Load() > before {
			break
		}
	}
	// At most one check per retry cap (30 s) once the backoff has grown to it,
	// and a few more while it grows (5 s, 10 s, 20 s, …).
	if n, most := r.up.discoveries.Load(), int32(10*time.Minute/(30*time.Second))+8; n > most {
		t.Errorf("%d discovery requests in ten minutes of presses every 5 s, want at most %d", n, most)
	}
	r.up.discoveryUp.Store(true)
	var failedFor time.Duration
	for ; r.press(t) != nil; failedFor += 5 * time.Second {
		if failedFor > 10*time.Minute {
			t.Fatal("the upstream's return was never noticed")
		}
		r.clock.Add(5 * time.Second)
	}
	t.Logf("upstream back; presses got the outage page for %v more", failedFor)
	if failedFor > 30*time.Second {
		t.Errorf("the upstream's return was noticed only after %v", failedFor)
	}
	if n := r.logs.Count("level=WARN", outageLine); n != 1 {
		t.Errorf("%d outage lines for one outage:\n%s", n, r.logs)
	}
	if n := r.logs.Count("level=INFO", backUpLine); n != 1 {
		t.Errorf("%d recovery lines:\n%s", n, r.logs)
	}
}

// A token endpoint that fails while discovery answers (a proxy in front of
// a dead token service) is one outage, logged once at WARN, that ends with
// the next exchange that works, not with each successful discovery.
func TestTokenEndpointOutageWarnsOnce(t *testing.T) {
	r := newRig(t, nil)
	r.up.tokenStatus.Store(http.StatusBadGateway)
	for i := range 5 {
		if err := r.press(t); err != nil {
			t.Fatalf("press %d: %v", i, err)
		}
		before := r.up.discoveries.Load()
		_, err := r.src.Exchange(context.Background(), "code", verifier, "nonce-1")
		if !errors.Is(err, directory.ErrUnavailable) {
			t.Fatalf("exchange %d with the token endpoint down: %v", i, err)
		}
		// The failed exchange has the next press look at discovery again
		// at once, not after checkEvery.
		r.clock.Add(time.Second)
		if err := r.press(t); err != nil {
			t.Fatalf("press after exchange %d: %v", i, err)
		}
		if r.up.discoveries.Load() == before {
			t.Errorf("exchange %d failed and the next press did not check discovery", i)
		}
		r.clock.Add(6 * time.Second)
	}
	if n := r.logs.Count("level=WARN", outageLine); n != 1 {
		t.Errorf("five failed exchanges logged %d WARN lines, want 1:\n%s", n, r.logs)
	}
	if n := r.logs.Count(backUpLine); n != 0 {
		t.Errorf("a working discovery ended an outage of the token endpoint:\n%s", r.logs)
	}
	r.up.tokenStatus.Store(http.StatusOK)
	if _, err := r.src.Exchange(context.Background(), "code", verifier, "nonce-1"); err != nil {
		t.Fatalf("exchange with the token endpoint back: %v", err)
	}
	if n := r.logs.Count("level=INFO", backUpLine); n != 1 {
		t.Errorf("the end of the token endpoint's outage was logged %d times:\n%s", n, r.logs)
	}
}

// 429 from the token endpoint is "try later" (like an outage), not a
// refused sign-in: the person is told the provider cannot be reached now.
func TestTokenEndpointTooManyRequests(t *testing.T) {
	r := newRig(t, nil)
	if err := r.press(t); err != nil {
		t.Fatal(err)
	}
	r.up.tokenStatus.Store(http.StatusTooManyRequests)
	_, err := r.src.Exchange(context.Background(), "code", verifier, "nonce-1")
	if !errors.Is(err, directory.ErrUnavailable) || errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("exchange answered 429: %v", err)
	}
}

// panicOnce is a transport whose first request panics (a bug anywhere under
// discovery); later requests go through.
type panicOnce struct{ done atomic.Bool }

func (p *panicOnce) RoundTrip(r *http.Request) (*http.Response, error) {
	if p.done.CompareAndSwap(false, true) {
		panic("discovery blew up")
	}
	return http.DefaultTransport.RoundTrip(r)
}

// A discovery that panics does not leave the source waiting forever for a
// discovery that will never end: the next press runs its own.
func TestDiscoveryPanicDoesNotWedge(t *testing.T) {
	r := newRig(t, &http.Client{Transport: &panicOnce{}, Timeout: 5 * time.Second})
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("the transport's panic did not reach the caller")
			}
		}()
		r.press(t)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if _, err := r.src.AuthURL(ctx, "state", "nonce", verifier); err != nil {
		t.Errorf("press after a panicking discovery: %v", err)
	}
}

func TestOpenNamesTheBadSetting(t *testing.T) {
	for key, c := range map[string]oidc.Config{
		"issuer":    {ID: "x", Issuer: "http://sso.example.com", ClientID: "k", RedirectURL: "https://id/cb"},
		"client_id": {ID: "x", Issuer: "https://sso.example.com", RedirectURL: "https://id/cb"},
	} {
		_, err := c.Open()
		var se *directory.SettingsError
		if !errors.As(err, &se) || se.Key() != key || !strings.Contains(err.Error(), key+": ") {
			t.Errorf("%s: %v, want a problem with %s", key, err, key)
		}
	}
}
