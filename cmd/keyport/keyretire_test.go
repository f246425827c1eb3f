package main

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// An app switched from ES256 to EdDSA through the API, the last one on
// ES256: its ES256 ID token, JWT access token and logout token verify
// through JWKS until they expire, after the scheduled reload retired the
// ES256 key too, and the key and ES256 (in the ID token and userinfo
// lists) leave JWKS and discovery only once the longest-lived of them
// has expired, across a restart as well.
func TestRetiredAlgorithmStaysUntilItsTokensExpire(t *testing.T) {
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{now: clock.Now})
	rw, _, _ := adminTokens(t, srv)
	ines := srv.createUser("ines", false)
	ctx := context.Background()
	app := srv.createClient(account.NewClient{ID: "es", SkipConsent: true, AccessTokenJWT: true,
		IDTokenSignedResponseAlg: "ES256", UserinfoSignedResponseAlg: "ES256",
		AccessTokenLifetime: account.MaxClientTokenLifetime, IDTokenLifetime: account.MaxClientTokenLifetime})
	esKid := kidsByAlgorithm(t, srv)["ES256"]
	if len(esKid) != 1 {
		t.Fatalf("ES256 kids %v, want one", esKid)
	}
	tok := app.tokens("ines")
	idToken, _ := tok.Extra("id_token").(string)
	checkSigned(t, app, "ID token", idToken, "ES256", esKid[0])
	logout, err := srv.Main.Provider.LogoutToken(ctx, app.ID, ines.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/es", rw, "application/json",
		`{"id_token_signed_response_alg":"EdDSA","userinfo_signed_response_alg":"EdDSA"}`); status != http.StatusOK {
		t.Fatalf("switch to EdDSA: %d %v", status, body)
	}

	algsOf := func(s *testServer) (idAlgs, userinfoAlgs []string) {
		t.Helper()
		var doc struct {
			ID       []string `json:"id_token_signing_alg_values_supported"`
			Userinfo []string `json:"userinfo_signing_alg_values_supported"`
		}
		p := bareGet(t, s.URL+"/.well-known/openid-configuration")
		if err := json.Unmarshal([]byte(p.Body), &doc); err != nil {
			t.Fatal(err)
		}
		return doc.ID, doc.Userinfo
	}
	published := func(s *testServer, what string, want bool) {
		t.Helper()
		kids := kidsByAlgorithm(t, s)
		idAlgs, uiAlgs := algsOf(s)
		if got := slices.Equal(kids["ES256"], esKid); got != want {
			t.Errorf("%s: ES256 key in JWKS %v, want %v (%v)", what, got, want, kids)
		}
		if got := slices.Contains(idAlgs, "ES256") && slices.Contains(uiAlgs, "ES256"); got != want {
			t.Errorf("%s: ES256 in discovery %v, want %v (%v, %v)", what, got, want, idAlgs, uiAlgs)
		}
	}
	verifies := func(what string) {
		t.Helper()
		keys := oidc.NewRemoteKeySet(ctx, srv.URL+"/keys")
		for name, jwt := range map[string]string{"ID token": idToken, "access token": tok.AccessToken, "logout token": logout} {
			if _, err := keys.VerifySignature(ctx, jwt); err != nil {
				t.Errorf("%s: the ES256 %s does not verify: %v", what, name, err)
			}
		}
		v := app.provider.Verifier(&oidc.Config{ClientID: app.ID, SupportedSigningAlgs: []string{"ES256"}, Now: clock.Now})
		if _, err := v.Verify(ctx, idToken); err != nil {
			t.Errorf("%s: go-oidc refuses the ES256 ID token: %v", what, err)
		}
		if status, _, body := srv.userinfo(tok.AccessToken); status != http.StatusOK {
			t.Errorf("%s: the ES256 access token at userinfo: %d %v", what, status, body)
		}
	}
	// The hourly reload (Run) retires the ES256 key: nobody uses it.
	clock.Add(time.Hour)
	if err := srv.Main.Keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	published(srv, "after the switch", true)
	verifies("after the switch")
	clock.Add(account.MaxClientTokenLifetime - 2*time.Hour) // the tokens expire in an hour
	if err := srv.Main.Keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	published(srv, "an hour before the tokens expire", true)
	verifies("an hour before the tokens expire")
	srv = srv.restart()
	published(srv, "restarted, an hour before the tokens expire", true)

	// Past exp, and past the key's VerifyTill: retired an hour after the
	// tokens were issued, kept as long as the longest token plus 5 minutes.
	clock.Add(2*time.Hour + 6*time.Minute)
	if err := srv.Main.Keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	published(srv, "after the tokens expired", false)
	srv = srv.restart()
	published(srv, "restarted after the tokens expired", false)
}

// An app may send an expired ID token as id_token_hint to end_session,
// for as long as the person's session lives (logout.go signs out at once
// with a hint for the person signed in). A rotation must not change that:
// once the old key left JWKS (its tokens expired), the hint it signed
// still signs the person out at once, rather than being refused as a token
// Keyport cannot verify with the person left signed in. After the
// longest session the key is deleted.
func TestIDTokenHintFromBeforeARotation(t *testing.T) {
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{now: clock.Now, mutate: func(c *config.Config) {
		c.Session.Lifetime = config.Duration{Duration: 72 * time.Hour}
	}})
	srv.createUser("lena", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp}})
	ctx := context.Background()
	b := newBrowser(t)
	code, verifier := app.signIn(b, "lena")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := tok.Extra("id_token").(string)
	_, oldKid := jwtHeader(t, hint)
	if err := srv.Main.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	clock.Add(account.MaxClientTokenLifetime + time.Hour)
	if err := srv.Main.Keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := publishedKeys(t, srv)[oldKid]; ok {
		t.Fatalf("the old key %s is still in JWKS after its tokens expired", oldKid)
	}
	if !signedIn(srv, b) {
		t.Fatal("the session ended early")
	}
	p := b.get(srv.URL + "/end_session?client_id=app&post_logout_redirect_uri=" + byeApp + "&id_token_hint=" + hint)
	if p.Status != http.StatusFound || p.Location != byeApp {
		t.Errorf("end_session with the hint from before the rotation: %d %q, want 302 to %s\n%s", p.Status, p.Location, byeApp, truncateBody(p.Body))
	}
	if signedIn(srv, b) {
		t.Error("the hint from before the rotation did not sign the person out")
	}

	clock.Add(72 * time.Hour) // the longest session is over
	if err := srv.Main.Keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	keys, err := srv.Main.Store.ListSigningKeys(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if slices.ContainsFunc(keys, func(k storage.SigningKey) bool { return k.ID == oldKid }) {
		t.Errorf("the old key %s is kept past the longest session", oldKid)
	}
}

// `keyport keys rotate` (through the running server's API) replaces the
// key of every algorithm in use and says so for each, not only for the
// default one; the old keys stay in JWKS.
func TestCLIKeysRotateEveryAlgorithm(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createClient(account.NewClient{ID: "es", IDTokenSignedResponseAlg: "ES256"})
	before := kidsByAlgorithm(t, srv)
	r := cliMust(t, cliEnv(srv.dir), "", "keys", "rotate")
	now := srv.Main.Keys.SigningKeyIDs()
	if len(now) != 2 || now["ES256"] == before["ES256"][0] || now["RS256"] == before["RS256"][0] {
		t.Fatalf("active keys after the rotation %v, before %v", now, before)
	}
	for _, want := range []string{"new signing key " + now["RS256"] + ";", "new ES256 signing key " + now["ES256"] + ";"} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("keys rotate output lacks %q: %s", want, r)
		}
	}
	after := kidsByAlgorithm(t, srv)
	for alg, kids := range before {
		if !slices.Contains(after[alg], kids[0]) || !slices.Contains(after[alg], now[alg]) {
			t.Errorf("%s keys in JWKS %v, want the old %s and the new %s", alg, after[alg], kids[0], now[alg])
		}
	}
}

// The check that a database's sealing key is the right one opens a sealed
// signing key: never a retired one, whose private half is gone.
func TestSealedDataSkipsRetiredKeys(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keyport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	now := time.Now()
	// IDs sorted so the retired key is listed first.
	if err := db.PutSigningKey(ctx, storage.SigningKey{ID: "a-retired", Algorithm: "RS256", SealedKey: []byte{}, PublicJWK: []byte(`{}`),
		CreatedAt: now.Add(-time.Hour), RetiredAt: now, VerifyTill: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSigningKey(ctx, storage.SigningKey{ID: "b-active", Algorithm: "RS256", SealedKey: []byte("sealed"), PublicJWK: []byte(`{}`), CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	kinds, sample, err := sealedData(ctx, db)
	if err != nil || kinds != "signing keys" || sample == nil || string(sample.sealed) != "sealed" {
		t.Fatalf("sealedData: %q %+v %v", kinds, sample, err)
	}
}
