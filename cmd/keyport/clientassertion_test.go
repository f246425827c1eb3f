package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/provider"
	"github.com/keyport/keyport/seal"
)

// rpKey is a relying party's signing key for private_key_jwt.
type rpKey struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
	kid string
}

func newRPKey(t *testing.T, alg jose.SignatureAlgorithm, kid string) rpKey {
	t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	default:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return rpKey{alg: alg, key: k, kid: kid}
}

// jwks is the public JWK Set of k.
func (k rpKey) jwks(t *testing.T) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: k.key.Public(), KeyID: k.kid, Use: "sig", Algorithm: string(k.alg)}}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// assertion builds a client assertion of client id for aud as a relying
// party library would (RFC 7523 §3), signed with key.
func assertion(t *testing.T, key jose.SigningKey, id, aud string, change ...func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"iss": id, "sub": id, "aud": aud, "jti": account.NewID(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	for _, c := range change {
		c(claims)
	}
	return signJWT(t, key, "JWT", claims)
}

// signJWT signs claims with key as a compact JWS of type typ, as a relying
// party's library does (assertions, request objects).
func signJWT(t testing.TB, key jose.SigningKey, typ string, claims map[string]any) string {
	t.Helper()
	return signJWTWith(t, key, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)), claims)
}

// signJWTWith signs claims with key and the signer options opts (a DPoP
// proof embeds its public key) as a compact JWS.
func signJWTWith(t testing.TB, key jose.SigningKey, opts *jose.SignerOptions, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (k rpKey) signing() jose.SigningKey {
	return jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}}
}

func hs256(secret string) jose.SigningKey {
	return jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}
}

// assertionParams are the form parameters of a client assertion.
func assertionParams(a string) url.Values {
	return url.Values{"client_assertion_type": {provider.ClientAssertionType}, "client_assertion": {a}}
}

// TestClientAssertionProtocol runs private_key_jwt and client_secret_jwt
// against a real server with go-oidc and x/oauth2 on the other side: a
// code flow, client_credentials (keys inline and at a jwks_uri),
// introspection and revocation, and the refusals, on one server.
func TestClientAssertionProtocol(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		// The apps' jwks_uri are on loopback here.
		c.ClientAuth.JWKSAllowNetworks = []string{"127.0.0.0/8"}
	})
	srv.createUser("alice", false)
	tokenURL := srv.URL + "/oauth/token"

	webKey := newRPKey(t, jose.PS256, "web-1")
	web := srv.createClient(account.NewClient{ID: "pkweb", TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: webKey.jwks(t)})
	web.oauth.Scopes = append(web.oauth.Scopes, oidc.ScopeOfflineAccess)
	jobKey := newRPKey(t, jose.EdDSA, "job-1")
	var jwksCalls atomic.Int32
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		jwksCalls.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(jobKey.jwks(t))
	}))
	defer jwksSrv.Close()
	job := srv.createClient(account.NewClient{ID: "pkjob", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: jwksSrv.URL + "/jwks.json"})
	hsSecret := account.NewSecret()
	srv.createClient(account.NewClient{ID: "hsjob", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthClientSecretJWT, Secret: hsSecret})
	rsKey := newRPKey(t, jose.ES256, "rs-1")
	srv.createClient(account.NewClient{ID: "rs", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: rsKey.jwks(t)})

	t.Run("discovery", func(t *testing.T) {
		var d struct {
			Methods []string `json:"token_endpoint_auth_methods_supported"`
			Algs    []string `json:"token_endpoint_auth_signing_alg_values_supported"`
		}
		if err := web.provider.Claims(&d); err != nil {
			t.Fatal(err)
		}
		for _, m := range []string{"private_key_jwt", "client_secret_jwt"} {
			if !strings.Contains(strings.Join(d.Methods, " "), m) {
				t.Errorf("token_endpoint_auth_methods_supported lacks %s: %v", m, d.Methods)
			}
		}
		if strings.Join(d.Algs, " ") != "RS256 PS256 ES256 EdDSA HS256" {
			t.Errorf("token_endpoint_auth_signing_alg_values_supported = %v", d.Algs)
		}
	})

	t.Run("code flow with private_key_jwt", func(t *testing.T) {
		code, verifier := web.signIn(newBrowser(t), "alice")
		// The relying party sends no secret: x/oauth2 puts client_id in
		// the form, and the assertion goes with it.
		rp := web.oauth
		rp.ClientSecret = ""
		rp.Endpoint.AuthStyle = oauth2.AuthStyleInParams
		a := assertion(t, webKey.signing(), web.ID, tokenURL)
		tok, err := rp.Exchange(context.Background(), code, oauth2.VerifierOption(verifier),
			oauth2.SetAuthURLParam("client_assertion_type", provider.ClientAssertionType), oauth2.SetAuthURLParam("client_assertion", a))
		if err != nil {
			t.Fatalf("exchange with private_key_jwt: %v", err)
		}
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := web.verifier.Verify(context.Background(), rawID)
		if err != nil || idt.Subject == "" {
			t.Fatalf("ID token: %v", err)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token")
		}
		// A refresh authenticates the same way; the assertion of the
		// exchange cannot be used again.
		status, _, body := srv.postForm("/oauth/token", merge(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, assertionParams(a)), "", "")
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("refresh with the exchange's assertion: %d %v", status, body)
		}
		status, _, body = srv.postForm("/oauth/token", merge(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}},
			assertionParams(assertion(t, webKey.signing(), web.ID, srv.URL))), "", "")
		if status != http.StatusOK || body["access_token"] == nil {
			t.Fatalf("refresh with a new assertion (aud the issuer): %d %v", status, body)
		}
		// The app's secret (generated, never used) does not stand in.
		code, verifier = web.signIn(newBrowser(t), "alice")
		if _, err := web.exchange(code, verifier); err == nil {
			t.Fatal("a private_key_jwt app exchanged a code with its secret")
		}
	})

	t.Run("pushed authorization request with private_key_jwt", func(t *testing.T) {
		verifier, challenge := pkce()
		push := url.Values{"response_type": {"code"}, "client_id": {web.ID}, "redirect_uri": {web.RedirectURI}, "scope": {"openid"},
			"state": {"par-1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		a := assertion(t, webKey.signing(), web.ID, srv.URL+"/oauth/par")
		status, _, body := srv.postForm("/oauth/par", merge(push, assertionParams(a)), "", "")
		requestURI, _ := body["request_uri"].(string)
		if status != http.StatusCreated || requestURI == "" {
			t.Fatalf("push with private_key_jwt: %d %v", status, body)
		}
		if status, _, body := srv.postForm("/oauth/par", merge(push, assertionParams(a)), "", ""); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("push with a replayed assertion: %d %v", status, body)
		}
		if status, _, body := srv.postForm("/oauth/par", push, web.ID, web.Secret); status != http.StatusUnauthorized {
			t.Fatalf("push with the secret of a private_key_jwt app: %d %v", status, body)
		}
		b := newBrowser(t)
		p := web.finish(b, b.get(srv.URL+"/authorize?"+url.Values{"client_id": {web.ID}, "request_uri": {requestURI}}.Encode()), "alice")
		res := landed(t, p, web.RedirectURI)
		if res.Code == "" || res.State != "par-1" {
			t.Fatalf("after the pushed request: %+v", res)
		}
		status, _, body = srv.postForm("/oauth/token", merge(url.Values{"grant_type": {"authorization_code"}, "code": {res.Code},
			"redirect_uri": {web.RedirectURI}, "code_verifier": {verifier}}, assertionParams(assertion(t, webKey.signing(), web.ID, tokenURL))), "", "")
		if status != http.StatusOK || body["id_token"] == nil {
			t.Fatalf("exchange of the pushed request's code: %d %v", status, body)
		}
	})

	t.Run("client_credentials with keys at a jwks_uri", func(t *testing.T) {
		for i := range 2 {
			cc := clientcredentials.Config{ClientID: job.ID, TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams,
				EndpointParams: assertionParams(assertion(t, jobKey.signing(), job.ID, tokenURL))}
			tok, err := cc.Token(context.Background())
			if err != nil || tok.AccessToken == "" {
				t.Fatalf("client_credentials %d: %v", i, err)
			}
		}
		if n := jwksCalls.Load(); n != 1 {
			t.Errorf("the jwks_uri was fetched %d times for two assertions, want 1", n)
		}
	})

	t.Run("client_secret_jwt", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: "hsjob", TokenURL: tokenURL, AuthStyle: oauth2.AuthStyleInParams,
			EndpointParams: assertionParams(assertion(t, hs256(hsSecret), "hsjob", tokenURL))}
		if _, err := cc.Token(context.Background()); err != nil {
			t.Fatalf("client_secret_jwt: %v", err)
		}
		// Sending the secret itself is not this app's method.
		cc = clientcredentials.Config{ClientID: "hsjob", ClientSecret: hsSecret, TokenURL: tokenURL}
		if _, err := cc.Token(context.Background()); err == nil {
			t.Fatal("a client_secret_jwt app authenticated with client_secret_basic")
		}
	})

	t.Run("introspection and revocation", func(t *testing.T) {
		status, _, body := srv.postForm("/oauth/token", merge(url.Values{"grant_type": {"client_credentials"}},
			assertionParams(assertion(t, jobKey.signing(), job.ID, tokenURL))), "", "")
		at, _ := body["access_token"].(string)
		if status != http.StatusOK || at == "" {
			t.Fatalf("token: %d %v", status, body)
		}
		introspectURL := srv.URL + "/oauth/introspect"
		status, _, intro := srv.postForm("/oauth/introspect", merge(url.Values{"token": {at}},
			assertionParams(assertion(t, rsKey.signing(), "rs", introspectURL))), "", "")
		if status != http.StatusOK || intro["active"] != true || intro["client_id"] != job.ID {
			t.Fatalf("introspection with an assertion: %d %v", status, intro)
		}
		status, _, _ = srv.postForm("/revoke", merge(url.Values{"token": {at}},
			assertionParams(assertion(t, jobKey.signing(), job.ID, srv.URL+"/revoke"))), "", "")
		if status != http.StatusOK {
			t.Fatalf("revocation with an assertion: %d", status)
		}
		_, _, intro = srv.postForm("/oauth/introspect", merge(url.Values{"token": {at}},
			assertionParams(assertion(t, rsKey.signing(), "rs", srv.URL))), "", "")
		if intro["active"] != false {
			t.Fatalf("revoked token: %v", intro)
		}
	})

	t.Run("refusals", func(t *testing.T) {
		other := newRPKey(t, jose.PS256, "web-1")
		replayed := assertion(t, rsKey.signing(), "rs", tokenURL)
		cases := []struct {
			name      string
			assertion string
		}{
			{"wrong key", assertion(t, other.signing(), web.ID, tokenURL)},
			{"wrong aud", assertion(t, webKey.signing(), web.ID, "https://elsewhere.example/token")},
			{"wrong iss", assertion(t, webKey.signing(), "rs", tokenURL)},
			{"wrong sub", assertion(t, webKey.signing(), web.ID, tokenURL, func(c map[string]any) { c["sub"] = "alice" })},
			{"expired", assertion(t, webKey.signing(), web.ID, tokenURL, func(c map[string]any) { c["exp"] = time.Now().Add(-time.Minute).Unix() })},
			{"no jti", assertion(t, webKey.signing(), web.ID, tokenURL, func(c map[string]any) { delete(c, "jti") })},
			{"first use", replayed},
			{"replayed", replayed},
			{"oversized", assertion(t, webKey.signing(), web.ID, tokenURL, func(c map[string]any) { c["pad"] = strings.Repeat("p", 9000) })},
		}
		for _, tc := range cases {
			status, h, body := srv.postForm("/oauth/token", merge(url.Values{"grant_type": {"client_credentials"}}, assertionParams(tc.assertion)), "", "")
			if tc.name == "first use" {
				if status != http.StatusOK {
					t.Fatalf("first use: %d %v", status, body)
				}
				continue
			}
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" || h.Get("Cache-Control") != "no-store" {
				t.Errorf("%s: %d %v", tc.name, status, body)
			}
		}
		// A private_key_jwt app sending its secret.
		if status, _, body := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, job.ID, job.Secret); status != http.StatusUnauthorized {
			t.Errorf("secret of a private_key_jwt app: %d %v", status, body)
		}
	})

	t.Run("jwks_uri unreachable or refused", func(t *testing.T) {
		down := httptest.NewServer(http.NotFoundHandler())
		downURL := down.URL
		down.Close()
		key := newRPKey(t, jose.ES256, "k")
		for id, uri := range map[string]string{
			"down": downURL + "/jwks",
			// A private address, outside the allowed 127.0.0.0/8.
			"private": "https://10.255.255.1/jwks",
			// The cloud metadata address.
			"metadata": "https://169.254.169.254/jwks",
		} {
			srv.createClient(account.NewClient{ID: id, GrantTypes: []string{account.GrantClientCredentials},
				TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: uri})
			status, _, body := srv.postForm("/oauth/token", merge(url.Values{"grant_type": {"client_credentials"}},
				assertionParams(assertion(t, key.signing(), id, tokenURL))), "", "")
			if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("%s jwks_uri: %d %v", id, status, body)
			}
		}
	})
}

// merge returns a with b's parameters added.
func merge(a, b url.Values) url.Values {
	out := url.Values{}
	for _, v := range []url.Values{a, b} {
		for k, vs := range v {
			out[k] = append(out[k], vs...)
		}
	}
	return out
}

// Failed assertions count against the app and address as wrong secrets
// do, in one budget: a guesser gains nothing by switching methods, the
// right assertion from the locked-out address is refused unchecked, and
// the app elsewhere is not locked out.
func TestClientAssertionThrottled(t *testing.T) {
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{localhost: true, logs: logs})
	key := newRPKey(t, jose.ES256, "k1")
	app := srv.createClient(account.NewClient{ID: "svc", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: key.jwks(t)})
	tokenURL := srv.URL + "/oauth/token"
	send := func(c *http.Client, form url.Values, basic bool) (int, http.Header, map[string]any) {
		form.Set("grant_type", "client_credentials")
		req := srv.formRequest("/oauth/token", form, "", "")
		if basic {
			req.SetBasicAuth(app.ID, app.Secret)
		}
		return doJSON(t, c, req)
	}
	attacker := browserFrom(t, "127.0.0.5").client
	wrong := newRPKey(t, jose.ES256, "k1")
	for i := range 10 {
		form, basic := assertionParams(assertion(t, wrong.signing(), app.ID, tokenURL)), false
		if i%2 == 0 {
			form, basic = url.Values{}, true // the app's secret: not its method
		}
		if status, _, body := send(attacker, form, basic); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("failure %d: %d %v", i+1, status, body)
		}
	}
	status, h, body := send(attacker, assertionParams(assertion(t, key.signing(), app.ID, tokenURL)), false)
	if status != http.StatusTooManyRequests || retryAfter(h) <= 0 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("the right assertion from the locked-out address: %d %v", status, body)
	}
	if status, _, body := send(browserFrom(t, "127.0.0.6").client, assertionParams(assertion(t, key.signing(), app.ID, tokenURL)), false); status != http.StatusOK {
		t.Fatalf("the app from its own address: %d %v", status, body)
	}
	if n := strings.Count(logs.String(), `msg="client authentication failed" client_ip=127.0.0.5 client_net=127.0.0.5 client_id=svc reason=`); n != 10 {
		t.Errorf("%d failure lines, want 10:\n%s", n, logs)
	}
}

// The methods and keys through the management API and config.toml: an
// app registered for private_key_jwt with its keys, edited to
// client_secret_jwt and given a secret, refused keys, and an app from the
// file that signs its assertions.
func TestClientAuthenticationSettings(t *testing.T) {
	fileKey := newRPKey(t, jose.RS256, "f1")
	srv := startServer(t, "", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "file-job", GrantTypes: []string{"client_credentials"},
			TokenEndpointAuthMethod: "private_key_jwt", JWKS: string(fileKey.jwks(t))})
	})
	rw, _, _ := adminTokens(t, srv)
	tokenURL := srv.URL + "/oauth/token"
	token := func(a string) (int, map[string]any) {
		status, _, body := srv.postForm("/oauth/token", merge(url.Values{"grant_type": {"client_credentials"}}, assertionParams(a)), "", "")
		return status, body
	}
	if status, body := token(assertion(t, fileKey.signing(), "file-job", tokenURL)); status != http.StatusOK {
		t.Fatalf("the file's private_key_jwt app: %d %v", status, body)
	}

	key := newRPKey(t, jose.ES256, "api-1")
	status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
		`{"id":"robot","grant_types":["client_credentials"],"token_endpoint_auth_method":"private_key_jwt","jwks":`+string(key.jwks(t))+`}`)
	client, _ := body["client"].(map[string]any)
	jwks, _ := client["jwks"].(map[string]any)
	if status != http.StatusCreated || client["token_endpoint_auth_method"] != "private_key_jwt" || jwks == nil || len(jwks["keys"].([]any)) != 1 {
		t.Fatalf("create robot: %d %v", status, body)
	}
	if status, body := token(assertion(t, key.signing(), "robot", tokenURL)); status != http.StatusOK {
		t.Fatalf("robot's assertion: %d %v", status, body)
	}
	for _, c := range []struct{ body, field string }{
		{`{"token_endpoint_auth_method":"tls_client_auth"}`, "token_endpoint_auth_method"},
		{`{"jwks_uri":"https://robot.example/jwks"}`, "jwks"}, // keys inline already
		{`{"jwks":{"keys":[]}}`, "jwks"},                      // private_key_jwt needs keys
		{`{"jwks":{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}}`, "jwks"},
	} {
		if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/robot", rw, "application/json", c.body); status != http.StatusBadRequest || body["field"] != c.field {
			t.Errorf("patch %s: %d %v", c.body, status, body)
		}
	}
	// To client_secret_jwt: no secret for it until it is rotated.
	status, _, body = apiCall(t, srv, http.MethodPatch, "/api/v1/clients/robot", rw, "application/json",
		`{"token_endpoint_auth_method":"client_secret_jwt","jwks":{"keys":[]}}`)
	if status != http.StatusOK || body["token_endpoint_auth_method"] != "client_secret_jwt" || body["jwks"] != nil {
		t.Fatalf("to client_secret_jwt: %d %v", status, body)
	}
	status, _, body = apiCall(t, srv, http.MethodPost, "/api/v1/clients/robot/rotate-secret", rw, "application/json", `{"grace_seconds":0}`)
	secret, _ := body["secret"].(string)
	if status != http.StatusOK || secret == "" {
		t.Fatalf("rotate: %d %v", status, body)
	}
	if status, body := token(assertion(t, hs256(secret), "robot", tokenURL)); status != http.StatusOK {
		t.Fatalf("robot's client_secret_jwt: %d %v", status, body)
	}
	if status, body := token(assertion(t, key.signing(), "robot", tokenURL)); status != http.StatusUnauthorized {
		t.Fatalf("robot's old key after the switch: %d %v", status, body)
	}
}

// The console's app form sets the method and keys, keeps them through
// other edits, and names the field at fault.
func TestConsoleAppClientAuthentication(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("root", true)
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	key := newRPKey(t, jose.EdDSA, "c1")
	form := url.Values{"id": {"batch"}, "name": {"Batch"}, "type": {"confidential"}, "grant_types": {"client_credentials"},
		"token_endpoint_auth_method": {"private_key_jwt"}, "jwks": {string(key.jwks(t))}}
	created := submitForm(t, b, b.get(srv.URL+"/admin/apps/new"), "/admin/apps/new", form)
	if created.Status != http.StatusCreated {
		e, _ := parsePage(t, created.Body).byID("form-error")
		t.Fatalf("create: %d %s", created.Status, e.text())
	}
	tokenURL := srv.URL + "/oauth/token"
	token := func() int {
		status, _, _ := srv.postForm("/oauth/token", merge(url.Values{"grant_type": {"client_credentials"}},
			assertionParams(assertion(t, key.signing(), "batch", tokenURL))), "", "")
		return status
	}
	if s := token(); s != http.StatusOK {
		t.Fatalf("the console's private_key_jwt app: %d", s)
	}
	page := srv.URL + "/admin/apps/batch"
	if saved := submitForm(t, b, b.get(page), "/admin/apps/batch/edit", url.Values{"name": {"Batch 2"}}); saved.Status != http.StatusOK {
		t.Fatalf("rename: %d", saved.Status)
	}
	c, err := srv.Main.Store.GetClient(context.Background(), "batch")
	if err != nil || c.Name != "Batch 2" || c.TokenEndpointAuthMethod != account.AuthPrivateKeyJWT || len(c.JWKS) == 0 {
		t.Fatalf("after a rename: %+v %v", c, err)
	}
	if s := token(); s != http.StatusOK {
		t.Fatalf("after a rename: %d", s)
	}
	bad := submitForm(t, b, b.get(page), "/admin/apps/batch/edit", url.Values{"jwks": {""}})
	if invalid, ok := parsePage(t, bad.Body).first("textarea", "aria-invalid", "true"); bad.Status != http.StatusBadRequest || !ok || invalid.attr("name") != "jwks" {
		t.Errorf("private_key_jwt without keys: %d\n%s", bad.Status, truncateBody(bad.Body))
	}
}

// On PostgreSQL a text with a NUL (or invalid UTF-8) cannot reach the
// store: an assertion's iss, read from its JSON, a client_id at the
// client-authenticated endpoints and the name before an app password are
// refused as naming nobody, never with a 5xx.
func TestClientAssertionAndNamesOnPostgres(t *testing.T) {
	dsn, key := pgtest.Database(t), filepath.Join(t.TempDir(), "secret.key")
	if _, _, err := seal.LoadOrCreateKey(key, true); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", func(c *config.Config) {
		c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, dsn, key
	})
	k := newRPKey(t, jose.ES256, "k1")
	srv.createClient(account.NewClient{ID: "pg-pk", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: k.jwks(t)})
	for _, id := range []string{"pg-pk", "a\x00b", "\xff\xfe"} {
		form := merge(url.Values{"grant_type": {"client_credentials"}}, assertionParams(assertion(t, k.signing(), id, srv.URL+"/oauth/token")))
		status, _, body := srv.postForm("/oauth/token", form, "", "")
		switch {
		case id == "pg-pk" && status != http.StatusOK:
			t.Errorf("the app's own assertion: %d %v", status, body)
		case id != "pg-pk" && (status != http.StatusUnauthorized || body["error"] != "invalid_client"):
			t.Errorf("assertion with iss %q: %d %v, want 401 invalid_client", id, status, body)
		}
	}
	for _, gt := range []string{"client_credentials", grantTokenExchange, "authorization_code", "refresh_token"} {
		form := exchangeForm("x", typeAccessToken, "client_id", "a\x00b", "client_secret", "s", "code", "c", "refresh_token", "r", "token", "t")
		form.Set("grant_type", gt)
		for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke"} {
			if status, _, body := srv.postForm(path, form, "", ""); status >= 500 {
				t.Errorf("%s %s with client_id a\\x00b: %d %v", path, gt, status, body)
			}
			if status, _, body := srv.postForm(path, form, "a\x00b", "s"); status >= 500 {
				t.Errorf("%s %s with a\\x00b by Basic: %d %v", path, gt, status, body)
			}
		}
	}
	// The name before an app password in a token exchange, likewise.
	mailer := srv.createClient(account.NewClient{ID: "pg-mailer", GrantTypes: []string{grantTokenExchange}})
	for _, login := range []string{"a\x00b", "\xff\xfe"} {
		status, _, body := mailer.tokenPost(exchangeForm(login+":some-app-password", typeAppPassword), true)
		if status >= 500 {
			t.Errorf("app password exchange for %q: %d %v", login, status, body)
		}
	}
}
