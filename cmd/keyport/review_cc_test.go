package main

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/provider"
	"github.com/keyport/keyport/seal"
)

// Review of the stateless client_credentials tokens (1ebd3f6) and
// Keyport's own client_credentials handler (3b0dad4).

// mustBeStateless fails the test unless tok is a stateless token (jti
// "s.…"): one with a management API scope is stored, and a test of the
// stateless path must not quietly test the stored one.
func mustBeStateless(t *testing.T, srv *testServer, tok string) {
	t.Helper()
	if jti, _ := jwtClaims(t, srv, tok)["jti"].(string); !strings.HasPrefix(jti, "s.") {
		t.Fatalf("not a stateless token: jti %q", jti)
	}
}

// ccForm is a client_credentials grant form.
func ccForm(scope string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}}
	if scope != "" {
		f.Set("scope", scope)
	}
	return f
}

// TestReviewStatelessTokenAssertionCallers: an app that authenticates
// with private_key_jwt gets a stateless token, introspects one, and
// revokes its own with an assertion.
func TestReviewStatelessTokenAssertionCallers(t *testing.T) {
	srv := startServer(t, "", nil)
	k := newRPKey(t, jose.ES256, "k1")
	srv.createClient(account.NewClient{ID: "pk-bot", GrantTypes: []string{account.GrantClientCredentials}, AccessTokenJWT: true,
		AllowedScopes: []string{account.ScopeAdminRead}, TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: k.jwks(t)})
	ok := newRPKey(t, jose.ES256, "k2")
	srv.createClient(account.NewClient{ID: "pk-observer", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: ok.jwks(t)})

	status, _, out := srv.postForm("/oauth/token", merge(ccForm(""), assertionParams(assertion(t, k.signing(), "pk-bot", srv.URL+"/oauth/token"))), "", "")
	tok, _ := out["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("pk-bot's grant: %d %v", status, out)
	}
	mustBeStateless(t, srv, tok)
	introspect := func() map[string]any {
		t.Helper()
		status, _, out := srv.postForm("/oauth/introspect", merge(url.Values{"token": {tok}}, assertionParams(assertion(t, ok.signing(), "pk-observer", srv.URL+"/oauth/introspect"))), "", "")
		if status != http.StatusOK {
			t.Fatalf("introspection by assertion: %d %v", status, out)
		}
		return out
	}
	if out := introspect(); out["active"] != true || out["client_id"] != "pk-bot" {
		t.Errorf("introspection of pk-bot's stateless token by an assertion-authenticated caller: %v", out)
	}
	// The other app's assertion does not revoke it.
	status, _, out = srv.postForm("/revoke", merge(url.Values{"token": {tok}}, assertionParams(assertion(t, ok.signing(), "pk-observer", srv.URL+"/revoke"))), "", "")
	if status == http.StatusOK {
		t.Errorf("pk-observer revoked pk-bot's token: %d %v", status, out)
	}
	status, _, out = srv.postForm("/revoke", merge(url.Values{"token": {tok}}, assertionParams(assertion(t, k.signing(), "pk-bot", srv.URL+"/revoke"))), "", "")
	if status != http.StatusOK {
		t.Fatalf("pk-bot's revocation by assertion: %d %v", status, out)
	}
	if out := introspect(); out["active"] != false {
		t.Errorf("introspection after pk-bot revoked its token by assertion: %v", out)
	}
}

// TestReviewStatelessTokensOnPostgres: revocation stores one tombstone
// however many revocations race, each answered 200; the sweep keeps a
// tombstone while its token lives.
func TestReviewStatelessTokensOnPostgres(t *testing.T) {
	dsn, key := pgtest.Database(t), filepath.Join(t.TempDir(), "secret.key")
	if _, _, err := seal.LoadOrCreateKey(key, true); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", func(c *config.Config) {
		c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, dsn, key
	})
	observer := srv.createClient(account.NewClient{ID: "observer", GrantTypes: []string{account.GrantClientCredentials}})
	bot := srv.createClient(account.NewClient{ID: "bot", GrantTypes: []string{account.GrantClientCredentials}, AllowedScopes: []string{account.ScopeAdminRead}, AccessTokenJWT: true})
	status, _, out := bot.tokenPost(ccForm(""), true)
	tok, _ := out["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("grant: %d %v", status, out)
	}
	mustBeStateless(t, srv, tok)
	active := func() bool { return observer.introspect(t, tok)["active"] == true }
	if !active() {
		t.Fatal("the new token is inactive")
	}
	var wg sync.WaitGroup
	statuses := make([]int, 8)
	for i := range statuses {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p, err := srv.sendForm("/revoke", url.Values{"token": {tok}}, bot.ID, bot.Secret)
			if err != nil {
				t.Error(err)
				return
			}
			statuses[i] = p.Status
		}()
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusOK {
			t.Errorf("concurrent revocation %d: %d", i, s)
		}
	}
	if status, _, out := srv.postForm("/revoke", url.Values{"token": {tok}}, bot.ID, bot.Secret); status != http.StatusOK {
		t.Errorf("a later revocation: %d %v", status, out)
	}
	if active() {
		t.Error("the revoked token is active")
	}
	if _, err := srv.Main.Store.Sweep(context.Background()); err != nil {
		t.Fatal(err)
	}
	if active() {
		t.Error("the revoked token is active after a sweep, before it expired")
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients", tok, "", ""); status != http.StatusUnauthorized {
		t.Errorf("the revoked token at the management API: %d", status)
	}
}

// TestReviewStatelessTokenClock: a server whose clock (Options.Now, the
// clock every other token time and the apps' CreatedAt and
// TokensRevokedAt come from) is not the wall clock. A stateless token
// dates itself by the wall clock (account.NewOrderedID), so it is
// judged against times from another clock: a server whose clock is
// behind never revokes its stateless tokens on rotate-secret
// --revoke-tokens, and one whose clock is ahead refuses every new one
// as issued to a deleted app. A stored (opaque) token works the same
// on both.
func TestReviewStatelessTokenClock(t *testing.T) {
	for _, skew := range []time.Duration{-30 * time.Second, 30 * time.Second} {
		t.Run(skew.String(), func(t *testing.T) {
			srv := startServerWith(t, serverOptions{now: func() time.Time { return time.Now().Add(skew) }})
			observer := srv.createClient(account.NewClient{ID: "observer", GrantTypes: []string{account.GrantClientCredentials}})
			for _, jwt := range []bool{false, true} {
				id := map[bool]string{false: "opaque-bot", true: "jwt-bot"}[jwt]
				bot := srv.createClient(account.NewClient{ID: id, GrantTypes: []string{account.GrantClientCredentials}, AllowedScopes: []string{account.ScopeAdminRead}, AccessTokenJWT: jwt})
				status, _, out := bot.tokenPost(ccForm(""), true)
				tok, _ := out["access_token"].(string)
				if status != http.StatusOK || tok == "" {
					t.Fatalf("%s's grant: %d %v", id, status, out)
				}
				if jwt {
					mustBeStateless(t, srv, tok)
				}
				active := func() bool { return observer.introspect(t, tok)["active"] == true }
				if !active() {
					t.Errorf("%s's new token is inactive", id)
				}
				if _, err := srv.Main.Accounts.Clients.RotateSecret(context.Background(), account.SystemActor, id, 0, true); err != nil {
					t.Fatal(err)
				}
				if active() {
					t.Errorf("%s's token is active after rotate-secret with revoke_tokens", id)
				}
			}
		})
	}
}

// TestReviewClientCredentialsHandler: what zitadel's handler did and
// Keyport's must still do: CORS for a browser caller, no-store, 401 with
// WWW-Authenticate for a bad secret, DPoP binding of a stateless token.
func TestReviewClientCredentialsHandler(t *testing.T) {
	srv := startServerWith(t, serverOptions{mutate: func(c *config.Config) { c.Metrics.Listen = "127.0.0.1:0" }})
	observer := srv.createClient(account.NewClient{ID: "observer", GrantTypes: []string{account.GrantClientCredentials}})
	bot := srv.createClient(account.NewClient{ID: "bot", GrantTypes: []string{account.GrantClientCredentials}, AccessTokenJWT: true})

	// An admin's secret with characters Basic must form-urlencode (RFC
	// 6749 §2.3.1), sent encoded by x/oauth2; expires_in and the counter.
	before := scrape(t, srv.Main.MetricsAddr())
	odd := srv.createClient(account.NewClient{ID: "odd.bot~1", Secret: "p+ss:w%rd with spaces&=", GrantTypes: []string{account.GrantClientCredentials}, AccessTokenJWT: true})
	cc := clientcredentials.Config{ClientID: odd.ID, ClientSecret: odd.Secret, TokenURL: srv.URL + "/oauth/token", AuthStyle: oauth2.AuthStyleInHeader}
	tk, err := cc.Token(context.Background())
	if err != nil {
		t.Fatalf("the odd secret by Basic: %v", err)
	}
	claims := jwtClaims(t, srv, tk.AccessToken)
	exp, _ := claims["exp"].(float64)
	if d := tk.Expiry.Sub(time.Unix(int64(exp), 0)); d < -2*time.Second || d > 2*time.Second || claims["client_id"] != odd.ID || claims["sub"] != odd.ID {
		t.Errorf("expires_in ends %v from the JWT's exp, claims %v", d, claims)
	}
	cc.AuthStyle = oauth2.AuthStyleInParams
	if _, err := cc.Token(context.Background()); err != nil {
		t.Fatalf("the odd secret in the form: %v", err)
	}
	if moved := scrape(t, srv.Main.MetricsAddr())[`keyport_tokens_issued_total{grant_type="client_credentials"}`] - before[`keyport_tokens_issued_total{grant_type="client_credentials"}`]; moved != 2 {
		t.Errorf("client_credentials tokens counted: %v, want 2", moved)
	}

	req := srv.formRequest("/oauth/token", ccForm(""), bot.ID, bot.Secret)
	req.Header.Set("Origin", "https://spa.example")
	status, hdr, out := doJSON(t, nil, req)
	if status != http.StatusOK || hdr.Get("Access-Control-Allow-Origin") != "https://spa.example" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("grant from a browser: %d %v %v", status, hdr, out)
	}
	req = srv.formRequest("/oauth/token", ccForm(""), bot.ID, "wrong")
	req.Header.Set("Origin", "https://spa.example")
	status, hdr, out = doJSON(t, nil, req)
	if status != http.StatusUnauthorized || out["error"] != "invalid_client" || hdr.Get("WWW-Authenticate") == "" || hdr.Get("Access-Control-Allow-Origin") == "" || hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("a wrong secret: %d %v %v", status, hdr, out)
	}

	key := newDPoPKey(t)
	status, _, out = dpopPost(bot, "/oauth/token", ccForm(""), key.proof(t, http.MethodPost, srv.URL+"/oauth/token", ""))
	tok, _ := out["access_token"].(string)
	if status != http.StatusOK || out["token_type"] != "DPoP" {
		t.Fatalf("DPoP grant: %d %v", status, out)
	}
	if cnf, _ := unverifiedJWTClaims(t, tok)["cnf"].(map[string]any); cnf["jkt"] != key.jkt {
		t.Errorf("the DPoP-bound stateless token's cnf: %v", cnf)
	}
	status, _, out = srv.postForm("/oauth/introspect", url.Values{"token": {tok}}, observer.ID, observer.Secret)
	if cnf, _ := out["cnf"].(map[string]any); status != http.StatusOK || out["active"] != true || out["token_type"] != "DPoP" || cnf["jkt"] != key.jkt {
		t.Errorf("introspection of a DPoP-bound stateless token: %d %v", status, out)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients", tok, "", ""); status != http.StatusUnauthorized {
		t.Errorf("a DPoP-bound stateless token as a Bearer token at the management API: %d", status)
	}
	// The proof's jti is spent.
	proof := key.proof(t, http.MethodPost, srv.URL+"/oauth/token", "")
	if status, _, out := dpopPost(bot, "/oauth/token", ccForm(""), proof); status != http.StatusOK {
		t.Fatalf("DPoP grant: %d %v", status, out)
	}
	if status, _, out := dpopPost(bot, "/oauth/token", ccForm(""), proof); status != http.StatusBadRequest || out["error"] != "invalid_dpop_proof" {
		t.Errorf("a replayed proof: %d %v", status, out)
	}
}

// TestReviewForgedStatelessTokenAtManagementAPI: before 1ebd3f6 every
// app token the management API took had to be a stored record, so
// Keyport's own admin API did not trust a signature alone: whoever held
// a signing key (a key unsealed from a backup with the secret key file,
// a memory dump) could forge tokens for relying parties, but not act as
// an app with keyport:admin. A stateless token is taken on its signature
// and claims alone, so a token forged with the signing key, for any app
// allowed keyport:admin, writes through the management API; and
// statelessToken does not even ask whether the app could ever have been
// issued one (its access tokens are opaque here). The same forgery with
// a stored token's jti is refused.
func TestReviewForgedStatelessTokenAtManagementAPI(t *testing.T) {
	srv := startServer(t, "", nil)
	ctx := context.Background()
	srv.createClient(account.NewClient{ID: "automation", GrantTypes: []string{account.GrantClientCredentials}, AllowedScopes: []string{account.ScopeAdmin}})
	keys, err := srv.Main.Store.ListSigningKeys(ctx)
	if err != nil || len(keys) == 0 {
		t.Fatalf("signing keys: %v %d", err, len(keys))
	}
	k := keys[len(keys)-1]
	der, err := srv.Main.sealer.Open(k.SealedKey, provider.SealPurposeSigningKey)
	if err != nil {
		t.Fatal(err)
	}
	priv, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		t.Fatal(err)
	}
	forge := func(jti string) string {
		now := time.Now()
		return signJWT(t, jose.SigningKey{Algorithm: jose.SignatureAlgorithm(k.Algorithm), Key: jose.JSONWebKey{Key: priv, KeyID: k.ID}}, "JWT", map[string]any{
			"iss": srv.URL, "sub": "automation", "client_id": "automation", "aud": []string{"automation"}, "scope": account.ScopeAdmin,
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(10 * time.Minute).Unix(), "jti": jti})
	}
	body := `{"id":"planted","grant_types":["client_credentials"],"allowed_scopes":["keyport:admin"]}`
	if status, _, _ := apiCall(t, srv, http.MethodPost, "/api/v1/clients", forge(account.NewOrderedID()), "application/json", body); status != http.StatusUnauthorized {
		t.Errorf("a forged token with a stored token's jti: %d, want 401", status)
	}
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients", forge("s."+account.NewOrderedID()), "application/json", body); status != http.StatusUnauthorized {
		t.Errorf("a token forged with the signing key, jti s.…, for an app with opaque tokens: %d %v; the management API took it", status, out)
	}
}

// TestStatelessTokenTampered: introspection and revocation read a stateless
// token's claims without checking its signature a second time, after
// zitadel checked it. A token whose claims were changed (a wider scope,
// the same jti) or whose signature is another's is inactive at
// introspection, and revoking it leaves the genuine token working.
func TestStatelessTokenTampered(t *testing.T) {
	srv := startServer(t, "", nil)
	observer := srv.createClient(account.NewClient{ID: "observer", GrantTypes: []string{account.GrantClientCredentials}})
	bot := srv.createClient(account.NewClient{ID: "bot", GrantTypes: []string{account.GrantClientCredentials}, AllowedScopes: []string{"profile", "email"}, AccessTokenJWT: true})
	status, _, out := bot.tokenPost(ccForm("profile"), true)
	tok, _ := out["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("grant: %d %v", status, out)
	}
	mustBeStateless(t, srv, tok)
	parts := strings.Split(tok, ".")
	claims := jwtClaims(t, srv, tok)
	claims["scope"] = "profile email"
	payload, _ := json.Marshal(claims)
	widened := parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
	for name, bad := range map[string]string{
		"claims changed":      widened,
		"another's signature": parts[0] + "." + parts[1] + "." + strings.Split(anotherToken(t, srv, bot), ".")[2],
	} {
		if got := observer.introspect(t, bad); got["active"] != false {
			t.Errorf("%s: introspection %v, want inactive", name, got)
		}
		if p, err := srv.sendForm("/revoke", url.Values{"token": {bad}}, bot.ID, bot.Secret); err != nil || p.Status != http.StatusOK {
			t.Errorf("%s: revocation %d %v, want 200 (RFC 7009 §2.2)", name, p.Status, err)
		}
	}
	if got := observer.introspect(t, tok); got["active"] != true || got["jti"] != claims["jti"] {
		t.Errorf("the genuine token after its tampered copies were revoked: %v", got)
	}
}

// anotherToken is another stateless token of bot, for its signature.
func anotherToken(t *testing.T, srv *testServer, bot *testClient) string {
	t.Helper()
	status, _, out := bot.tokenPost(ccForm("profile"), true)
	tok, _ := out["access_token"].(string)
	if status != http.StatusOK || tok == "" {
		t.Fatalf("grant: %d %v", status, out)
	}
	mustBeStateless(t, srv, tok)
	return tok
}
