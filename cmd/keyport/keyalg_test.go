package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/seal"
)

// jwtHeader is the protected header of a compact JWS.
func jwtHeader(t *testing.T, jwt string) (alg, kid string) {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[0])
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var h struct{ Alg, Kid string }
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatalf("JWT header %s: %v", raw, err)
	}
	return h.Alg, h.Kid
}

// discoveredAlgorithms is what the server's discovery document lists as
// id_token_signing_alg_values_supported.
func discoveredAlgorithms(t *testing.T, srv *testServer) []string {
	t.Helper()
	resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Algs []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatalf("discovery: %v", err)
	}
	return doc.Algs
}

// publishedKeys maps each kid in the server's JWKS to its "kty/crv/alg/use".
func publishedKeys(t *testing.T, srv *testServer) map[string]string {
	t.Helper()
	resp, err := http.Get(srv.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct{ Kid, Kty, Crv, Alg, Use string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	keys := map[string]string{}
	for _, k := range set.Keys {
		keys[k.Kid] = k.Kty + "/" + k.Crv + "/" + k.Alg + "/" + k.Use
	}
	return keys
}

// signedTokens runs the code flow for user with app (a JWT access token
// app) and checks, as a relying party told to accept only alg, that the ID
// token and the access token are signed with alg by the current signing
// key, that the ID token verifies against the server's JWKS, and that the
// access token works at userinfo. It returns the ID token and the access
// token.
func signedTokens(t *testing.T, srv *testServer, app *testClient, b *browser, user, alg string) (idToken, accessToken string) {
	t.Helper()
	ctx := context.Background()
	code, verifier := app.signIn(b, user)
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	idToken, _ = tok.Extra("id_token").(string)
	idt, err := app.provider.Verifier(&oidc.Config{ClientID: app.ID, SupportedSigningAlgs: []string{alg}}).Verify(ctx, idToken)
	if err != nil {
		t.Fatalf("verify the %s ID token with go-oidc: %v", alg, err)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash of the %s ID token: %v", alg, err)
	}
	kid := srv.Main.Keys.SigningKeyID()
	for what, jwt := range map[string]string{"ID token": idToken, "access token": tok.AccessToken} {
		if gotAlg, gotKid := jwtHeader(t, jwt); gotAlg != alg || gotKid != kid {
			t.Errorf("%s signed with %s by %q, want %s by %q", what, gotAlg, gotKid, alg, kid)
		}
	}
	if _, err := oidc.NewRemoteKeySet(ctx, srv.URL+"/keys").VerifySignature(ctx, tok.AccessToken); err != nil {
		t.Errorf("the %s access token does not verify against JWKS: %v", alg, err)
	}
	if status, _, body := srv.userinfo(tok.AccessToken); status != http.StatusOK || body["sub"] != idt.Subject {
		t.Errorf("userinfo with the %s access token: %d %v", alg, status, body)
	}
	return idToken, tok.AccessToken
}

func withKeyAlgorithm(alg string) func(*config.Config) {
	return func(c *config.Config) { c.Keys.Algorithm = alg }
}

// With [keys] algorithm = "EdDSA", a relying party gets Ed25519-signed ID
// and access tokens that verify against JWKS, which holds one OKP key, and
// discovery names EdDSA first, then RS256, which OpenID Connect Discovery
// 1.0 §3 requires in the list and which an app gets when it asks for it.
// (go-oidc v3.21 verifies EdDSA.)
func TestEdDSASigningEndToEnd(t *testing.T) {
	srv := startServer(t, "", withKeyAlgorithm("EdDSA"))
	srv.createUser("olga", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, AccessTokenJWT: true})
	if got := discoveredAlgorithms(t, srv); !slices.Equal(got, []string{"EdDSA", "RS256"}) {
		t.Errorf("discovery lists %v, want [EdDSA RS256]", got)
	}
	kid := srv.Main.Keys.SigningKeyID()
	if got := publishedKeys(t, srv); len(got) != 1 || got[kid] != "OKP/Ed25519/EdDSA/sig" {
		t.Errorf("JWKS %v, want only %s as OKP/Ed25519/EdDSA/sig", got, kid)
	}
	signedTokens(t, srv, app, newBrowser(t), "olga", "EdDSA")
}

// A server that signed with RS256 restarts with ES256 on the same data:
// the RS256 key stays in JWKS and discovery, so the ID token and the
// access token from before still verify, and new tokens are ES256.
func TestSigningAlgorithmSwitch(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("pia", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, AccessTokenJWT: true})
	b := newBrowser(t)
	oldID, oldAccess := signedTokens(t, srv, app, b, "pia", "RS256")
	oldKid := srv.Main.Keys.SigningKeyID()

	srv.opts.mutate = withKeyAlgorithm("ES256")
	srv2 := srv.restart()
	newKid := srv2.Main.Keys.SigningKeyID()
	if newKid == oldKid {
		t.Fatal("the RS256 key still signs after the switch to ES256")
	}
	keys := publishedKeys(t, srv2)
	if len(keys) != 2 || keys[oldKid] != "RSA//RS256/sig" || keys[newKid] != "EC/P-256/ES256/sig" {
		t.Fatalf("JWKS %v, want %s as RSA//RS256/sig and %s as EC/P-256/ES256/sig", keys, oldKid, newKid)
	}
	if got := discoveredAlgorithms(t, srv2); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Errorf("discovery lists %v, want [ES256 RS256]", got)
	}
	// A relying party that starts now, trusting discovery for the
	// algorithms, still verifies the old ID token; the old access token
	// still works.
	fresh := srv2.rp(app.ID, app.Secret, app.RedirectURI)
	if _, err := fresh.verifier.Verify(context.Background(), oldID); err != nil {
		t.Errorf("RS256 ID token after the switch: %v", err)
	}
	if status, _, body := srv2.userinfo(oldAccess); status != http.StatusOK {
		t.Errorf("RS256 access token after the switch: %d %v", status, body)
	}
	signedTokens(t, srv2, fresh, b, "pia", "ES256")
	// A relying party that accepts only ES256 now refuses the old token.
	if _, err := fresh.provider.Verifier(&oidc.Config{ClientID: app.ID, SupportedSigningAlgs: []string{"ES256"}}).Verify(context.Background(), oldID); err == nil {
		t.Error("an ES256-only verifier accepted the RS256 token")
	}
}

// A replica on PostgreSQL that starts with another [keys] algorithm than
// the signing key's makes a key of its algorithm, as a single server does,
// instead of taking the stored keys as they are; the old key stays
// published.
func TestPostgresReplicaSwitchesAlgorithm(t *testing.T) {
	dsn := pgtest.Database(t)
	key := filepath.Join(t.TempDir(), "secret.key")
	if _, _, err := seal.LoadOrCreateKey(key, true); err != nil {
		t.Fatal(err)
	}
	var lastActive map[string][]string // the active keys by algorithm after the last load
	loadWith := func(alg string, more func(*config.Config)) []jose.SignatureAlgorithm {
		o := serverOptions{mutate: func(c *config.Config) {
			c.Storage.Type, c.Storage.DSN, c.SecretKeyFile, c.Keys.Algorithm = config.StoragePostgres, dsn, key, alg
			if more != nil {
				more(c)
			}
		}}
		cfg, _ := testConfig(t, &o)
		o.ln.Close() // Load does not listen
		m, err := Load(cfg, slog.New(slog.DiscardHandler), nil)
		if err != nil {
			t.Fatalf("load with %s: %v", alg, err)
		}
		defer m.Close()
		keys, err := m.Store.ListSigningKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		lastActive = map[string][]string{}
		for _, k := range keys {
			if k.RetiredAt.IsZero() {
				lastActive[k.Algorithm] = append(lastActive[k.Algorithm], k.ID)
			}
		}
		return m.Keys.SignatureAlgorithms()
	}
	load := func(alg string) []jose.SignatureAlgorithm { return loadWith(alg, nil) }
	if got := load("RS256"); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256}) {
		t.Fatalf("first replica: algorithms %v, want [RS256]", got)
	}
	if got := load("EdDSA"); !slices.Equal(got, []jose.SignatureAlgorithm{jose.EdDSA, jose.RS256}) {
		t.Fatalf("replica with EdDSA: algorithms %v, want [EdDSA RS256]", got)
	}
	if got := load("EdDSA"); !slices.Equal(got, []jose.SignatureAlgorithm{jose.EdDSA, jose.RS256}) {
		t.Fatalf("another replica with EdDSA: algorithms %v, want [EdDSA RS256] (no second switch)", got)
	}

	// A replica whose config.toml has an app with id_token_signed_response_alg
	// = ES256 makes the ES256 key at start, without a switch of the
	// default; the next replica with the same file takes it as it is.
	esApp := func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "es-app", GrantTypes: []string{"client_credentials"}, Secret: "es-app-secret-0123456789", IDTokenSignedResponseAlg: "ES256"})
	}
	for i, want := range [][]jose.SignatureAlgorithm{{jose.EdDSA, jose.RS256, jose.ES256}, {jose.EdDSA, jose.RS256, jose.ES256}} {
		if got := loadWith("EdDSA", esApp); !slices.Equal(got, want) {
			t.Fatalf("replica %d with an ES256 app: algorithms %v, want %v", i+1, got, want)
		}
		if got := lastActive["ES256"]; len(got) != 1 {
			t.Fatalf("after replica %d with an ES256 app: active ES256 keys %v, want one", i+1, got)
		}
	}
}
