package main

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
)

// dpopKey is a relying party's DPoP key (RFC 9449), with the nonce the
// server last handed it.
type dpopKey struct {
	key *ecdsa.PrivateKey
	jkt string

	mu    sync.Mutex
	nonce string
}

func newDPoPKey(t *testing.T) *dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	thumb, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{key: k, jkt: base64.RawURLEncoding.EncodeToString(thumb)}
}

// proof is a DPoP proof of a request with method to target, made as a
// client library makes one (RFC 9449 §4.2): the access token's hash when
// one is given, the last nonce the server sent; change edits the claims.
func (k *dpopKey) proof(t testing.TB, method, target, accessToken string, change ...func(map[string]any)) string {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	u.RawQuery, u.Fragment = "", ""
	claims := map[string]any{"jti": account.NewID(), "htm": method, "htu": u.String(), "iat": time.Now().Unix()}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		claims["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
	}
	k.mu.Lock()
	if k.nonce != "" {
		claims["nonce"] = k.nonce
	}
	k.mu.Unlock()
	for _, c := range change {
		c(claims)
	}
	return signJWTWith(t, jose.SigningKey{Algorithm: jose.ES256, Key: k.key}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"), claims)
}

// dpopTransport adds a DPoP proof to every request, as a DPoP-aware client
// library does: with ath when it carries a DPoP access token, and once more
// with the server's nonce when the server asks for one (RFC 9449 §8).
type dpopTransport struct {
	t   testing.TB
	key *dpopKey
}

func (d dpopTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := d.send(req)
	if err != nil || resp.Header.Get("DPoP-Nonce") == "" || (resp.StatusCode != http.StatusBadRequest && resp.StatusCode != http.StatusUnauthorized) {
		return resp, err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), "use_dpop_nonce") && !strings.Contains(resp.Header.Get("WWW-Authenticate"), "use_dpop_nonce") {
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		return resp, nil
	}
	retry := req.Clone(req.Context())
	if req.GetBody != nil {
		if retry.Body, err = req.GetBody(); err != nil {
			return nil, err
		}
	}
	return d.send(retry)
}

func (d dpopTransport) send(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	token := ""
	if scheme, v, ok := strings.Cut(req.Header.Get("Authorization"), " "); ok && scheme == "DPoP" {
		token = v
	}
	req.Header.Set("DPoP", d.key.proof(d.t, req.Method, req.URL.String(), token))
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		if n := resp.Header.Get("DPoP-Nonce"); n != "" {
			d.key.mu.Lock()
			d.key.nonce = n
			d.key.mu.Unlock()
		}
	}
	return resp, err
}

// dpopContext makes x/oauth2 and go-oidc send their requests with proofs
// of key.
func dpopContext(t testing.TB, key *dpopKey) context.Context {
	return context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: dpopTransport{t: t, key: key}, Timeout: 30 * time.Second})
}

// unverifiedJWTClaims reads the payload of a JWT the server signed (verified by the
// flows elsewhere), for the claims a DPoP binding adds.
func unverifiedJWTClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", truncateBody(raw))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// dpopPost posts form to path as c, with the DPoP header proof ("" for
// none), and decodes the answer.
func dpopPost(c *testClient, path string, form url.Values, proof string) (int, http.Header, map[string]any) {
	c.srv.t.Helper()
	var req *http.Request
	if c.Secret != "" {
		req = c.srv.formRequest(path, form, c.ID, c.Secret)
	} else {
		form.Set("client_id", c.ID)
		req = c.srv.formRequest(path, form, "", "")
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return doJSON(c.srv.t, nil, req)
}

// dpopUserinfo calls /userinfo with token under scheme and the proof ("" for none).
func dpopUserinfo(srv *testServer, method, scheme, token, proof string) (int, http.Header, map[string]any) {
	req := mustRequest(method, srv.URL+"/userinfo")
	req.Header.Set("Authorization", scheme+" "+token)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return doJSON(srv.t, nil, req)
}

// TestDPoP runs RFC 9449 against a real server, one for the whole test:
// go-oidc and x/oauth2 with a transport that adds proofs for the flows,
// and hand-built proofs for the refusals the RFC names.
func TestDPoP(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.OAuth.DeviceFlow = true
		c.OAuth.DevicePollInterval = config.Duration{Duration: time.Second}
	})
	srv.createUser("dora", false)
	web := srv.createClient(account.NewClient{ID: "dpop-web", GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken}, SkipConsent: true})
	jwtApp := srv.createClient(account.NewClient{ID: "dpop-jwt", AccessTokenJWT: true, SkipConsent: true})
	spa := srv.createClient(account.NewClient{ID: "dpop-spa", Public: true, SkipConsent: true})
	machine := srv.createClient(account.NewClient{ID: "dpop-machine", GrantTypes: []string{account.GrantClientCredentials}})
	strict := srv.createClient(account.NewClient{ID: "dpop-strict", GrantTypes: []string{account.GrantClientCredentials}, DPoPBoundAccessTokens: true})
	nonceApp := srv.createClient(account.NewClient{ID: "dpop-nonce", SkipConsent: true, RequireDPoPNonce: true,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials}})
	tokenURL := srv.URL + "/oauth/token"
	for _, c := range []*testClient{web, jwtApp, spa, nonceApp} {
		c.oauth.Scopes = append(c.oauth.Scopes, "offline_access")
	}

	t.Run("discovery", func(t *testing.T) {
		var doc struct {
			Algs []string `json:"dpop_signing_alg_values_supported"`
		}
		if err := web.provider.Claims(&doc); err != nil || !slices.Equal(doc.Algs, []string{"RS256", "PS256", "ES256", "EdDSA"}) {
			t.Errorf("dpop_signing_alg_values_supported = %v (%v)", doc.Algs, err)
		}
	})

	t.Run("code flow with go-oidc and x/oauth2", func(t *testing.T) {
		key := newDPoPKey(t)
		ctx := dpopContext(t, key)
		code, verifier := web.signIn(newBrowser(t), "dora")
		tok, err := web.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange with a proof: %v", err)
		}
		if tok.Type() != "DPoP" {
			t.Fatalf("token_type %q, want DPoP", tok.Type())
		}
		if _, err := web.verifier.Verify(ctx, tok.Extra("id_token").(string)); err != nil {
			t.Errorf("ID token: %v", err)
		}
		// go-oidc's userinfo call, through oauth2.Transport: Authorization: DPoP and a proof with ath.
		info, err := web.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil || info.Email != "dora@example.com" {
			t.Fatalf("userinfo with DPoP: %v %+v", err, info)
		}
		// Introspection names the binding (RFC 9449 §6.2).
		status, _, m := srv.postForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, web.ID, web.Secret)
		cnf, _ := m["cnf"].(map[string]any)
		if status != http.StatusOK || m["active"] != true || m["token_type"] != "DPoP" || cnf["jkt"] != key.jkt {
			t.Errorf("introspection of a bound token: %d %v", status, m)
		}
		// The bound token as a bearer token is refused (§7.1), with the DPoP challenge.
		status, h, m := srv.userinfo(tok.AccessToken)
		if status != http.StatusUnauthorized || m["error"] != "invalid_token" || !strings.HasPrefix(h.Get("WWW-Authenticate"), `DPoP algs="RS256 PS256 ES256 EdDSA"`) ||
			!strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("bound token as Bearer: %d %v %q", status, m, h.Get("WWW-Authenticate"))
		}
		// A confidential app's refresh token is not bound (§5): another key
		// refreshes it, and the new access token follows the new proof.
		other := newDPoPKey(t)
		fresh, err := web.oauth.TokenSource(dpopContext(t, other), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil || fresh.Type() != "DPoP" {
			t.Fatalf("refresh of a confidential app with another key: %v %v", err, fresh)
		}
		status, _, m = srv.postForm("/oauth/introspect", url.Values{"token": {fresh.AccessToken}}, web.ID, web.Secret)
		if cnf, _ := m["cnf"].(map[string]any); status != http.StatusOK || cnf["jkt"] != other.jkt {
			t.Errorf("the refreshed token is bound to %v, want the new key %s", m["cnf"], other.jkt)
		}
		// Without a proof the refresh gets a bearer token.
		plain, err := web.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: fresh.RefreshToken}).Token()
		if err != nil || plain.Type() != "Bearer" {
			t.Fatalf("refresh without a proof: %v %v", err, plain)
		}
		if status, _, _ := srv.userinfo(plain.AccessToken); status != http.StatusOK {
			t.Errorf("an unbound token from a refresh without proof: userinfo %d", status)
		}
	})

	t.Run("JWT access token carries cnf.jkt", func(t *testing.T) {
		key := newDPoPKey(t)
		ctx := dpopContext(t, key)
		code, verifier := jwtApp.signIn(newBrowser(t), "dora")
		tok, err := jwtApp.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		cnf, _ := unverifiedJWTClaims(t, tok.AccessToken)["cnf"].(map[string]any)
		if cnf["jkt"] != key.jkt {
			t.Errorf("JWT access token cnf = %v, want jkt %s", cnf, key.jkt)
		}
		if _, err := jwtApp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Errorf("userinfo with a DPoP-bound JWT access token: %v", err)
		}
		// A bearer JWT access token carries no cnf.
		bearer := jwtApp.tokens("dora")
		if _, ok := unverifiedJWTClaims(t, bearer.AccessToken)["cnf"]; ok || bearer.Type() != "Bearer" {
			t.Errorf("a bearer JWT access token: type %s, claims %v", bearer.Type(), unverifiedJWTClaims(t, bearer.AccessToken))
		}
	})

	t.Run("proofs refused at the token endpoint", func(t *testing.T) {
		key := newDPoPKey(t)
		cc := url.Values{"grant_type": {"client_credentials"}}
		status, _, m := dpopPost(machine, "/oauth/token", cc, key.proof(t, "POST", tokenURL, ""))
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Fatalf("client_credentials with a proof: %d %v", status, m)
		}
		privateJWK := func() string {
			// A proof whose jwk header carries the private key (RFC 9449 §4.3: refused).
			jwk := jose.JSONWebKey{Key: key.key}
			raw, _ := jwk.MarshalJSON()
			h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(raw)})
			c, _ := json.Marshal(map[string]any{"jti": account.NewID(), "htm": "POST", "htu": tokenURL, "iat": time.Now().Unix()})
			in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
			sum := sha256.Sum256([]byte(in))
			r, s, _ := ecdsa.Sign(rand.Reader, key.key, sum[:])
			sig := append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
			return in + "." + base64.RawURLEncoding.EncodeToString(sig)
		}()
		hs := signJWT(t, hs256(strings.Repeat("s", 32)), "dpop+jwt", map[string]any{"jti": "x", "htm": "POST", "htu": tokenURL, "iat": time.Now().Unix()})
		for name, proof := range map[string]string{
			"wrong htu":        key.proof(t, "POST", srv.URL+"/userinfo", ""),
			"wrong htm":        key.proof(t, "GET", tokenURL, ""),
			"iat too old":      key.proof(t, "POST", tokenURL, "", func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }),
			"iat in future":    key.proof(t, "POST", tokenURL, "", func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }),
			"symmetric alg":    hs,
			"private jwk":      privateJWK,
			"no typ":           signJWT(t, newRPKey(t, jose.ES256, "").signing(), "JWT", map[string]any{"jti": "x", "htm": "POST", "htu": tokenURL, "iat": time.Now().Unix()}),
			"garbage":          "not.a.proof",
			"oversized header": strings.Repeat("A", 9000),
		} {
			status, _, m := dpopPost(machine, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, proof)
			if status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
				t.Errorf("%s: %d %v, want 400 invalid_dpop_proof", name, status, m)
			}
		}
		// A proof used twice: its jti is refused the second time (§11.1).
		proof := key.proof(t, "POST", tokenURL, "")
		if status, _, m := dpopPost(machine, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, proof); status != http.StatusOK {
			t.Fatalf("first use: %d %v", status, m)
		}
		if status, _, m := dpopPost(machine, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, proof); status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("replayed proof: %d %v, want 400 invalid_dpop_proof", status, m)
		}
		// An app registered with dpop_bound_access_tokens must send one.
		if status, _, m := dpopPost(strict, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, ""); status != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Errorf("dpop_bound_access_tokens app without a proof: %d %v", status, m)
		}
		if status, _, m := dpopPost(strict, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, key.proof(t, "POST", tokenURL, "")); status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Errorf("dpop_bound_access_tokens app with a proof: %d %v", status, m)
		}
	})

	t.Run("proofs refused at userinfo", func(t *testing.T) {
		key := newDPoPKey(t)
		code, verifier := web.signIn(newBrowser(t), "dora")
		tok, err := web.oauth.Exchange(dpopContext(t, key), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatal(err)
		}
		at := tok.AccessToken
		ui := srv.URL + "/userinfo"
		if status, _, m := dpopUserinfo(srv, "GET", "DPoP", at, key.proof(t, "GET", ui, at)); status != http.StatusOK || m["sub"] == nil {
			t.Fatalf("userinfo with a good proof: %d %v", status, m)
		}
		for name, c := range map[string]struct {
			proof, code string
		}{
			"missing ath": {key.proof(t, "GET", ui, ""), "invalid_dpop_proof"},
			"wrong ath":   {key.proof(t, "GET", ui, "another token"), "invalid_dpop_proof"},
			"wrong htu":   {key.proof(t, "GET", tokenURL, at), "invalid_dpop_proof"},
			"wrong htm":   {key.proof(t, "POST", ui, at), "invalid_dpop_proof"},
			"no proof":    {"", "invalid_dpop_proof"},
			"another key": {newDPoPKey(t).proof(t, "GET", ui, at), "invalid_token"},
			"iat too old": {key.proof(t, "GET", ui, at, func(c map[string]any) { c["iat"] = time.Now().Add(-10 * time.Minute).Unix() }), "invalid_dpop_proof"},
		} {
			status, h, m := dpopUserinfo(srv, "GET", "DPoP", at, c.proof)
			if status != http.StatusUnauthorized || m["error"] != c.code || !strings.Contains(h.Get("WWW-Authenticate"), `error="`+c.code+`"`) ||
				!strings.HasPrefix(h.Get("WWW-Authenticate"), "DPoP ") {
				t.Errorf("%s: %d %v %q, want 401 %s with a DPoP challenge", name, status, m, h.Get("WWW-Authenticate"), c.code)
			}
		}
		proof := key.proof(t, "GET", ui, at)
		if status, _, _ := dpopUserinfo(srv, "GET", "DPoP", at, proof); status != http.StatusOK {
			t.Fatalf("first use of a proof: %d", status)
		}
		if status, h, m := dpopUserinfo(srv, "GET", "DPoP", at, proof); status != http.StatusUnauthorized || m["error"] != "invalid_dpop_proof" {
			t.Errorf("replayed proof at userinfo: %d %v %q", status, m, h.Get("WWW-Authenticate"))
		}
		// A bearer token under the DPoP scheme: it is bound to no key, so
		// no proof matches it (RFC 9449 §4.3 point 12, §7.1).
		bearer := web.tokens("dora").AccessToken
		if status, h, m := dpopUserinfo(srv, "GET", "DPoP", bearer, key.proof(t, "GET", ui, bearer)); status != http.StatusUnauthorized || m["error"] != "invalid_token" ||
			!strings.HasPrefix(h.Get("WWW-Authenticate"), "DPoP ") {
			t.Errorf("an unbound token with the DPoP scheme: %d %v %q, want 401 invalid_token", status, m, h.Get("WWW-Authenticate"))
		}
		// No token at all: the challenge names DPoP and no error (RFC 6750 §3.1).
		req := mustRequest("GET", ui)
		req.Header.Set("Authorization", "DPoP")
		if status, h, _ := doJSON(t, nil, req); status != http.StatusUnauthorized || strings.Contains(h.Get("WWW-Authenticate"), "error=") {
			t.Errorf("DPoP scheme without a token: %d %q", status, h.Get("WWW-Authenticate"))
		}
	})

	t.Run("public app refresh bound to its key", func(t *testing.T) {
		key := newDPoPKey(t)
		code, verifier := spa.signIn(newBrowser(t), "dora")
		tok, err := spa.oauth.Exchange(dpopContext(t, key), code, oauth2.VerifierOption(verifier))
		if err != nil || tok.Type() != "DPoP" {
			t.Fatalf("public app's exchange: %v %v", err, tok)
		}
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
		if status, _, m := dpopPost(spa, "/oauth/token", refresh, newDPoPKey(t).proof(t, "POST", tokenURL, "")); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("refresh with another key: %d %v, want invalid_grant", status, m)
		}
		if status, _, m := dpopPost(spa, "/oauth/token", refresh, ""); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("refresh without a proof: %d %v, want invalid_grant", status, m)
		}
		// The refusals spent nothing: the right key refreshes, and the
		// rotated token is bound too.
		next, err := spa.oauth.TokenSource(dpopContext(t, key), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil || next.Type() != "DPoP" {
			t.Fatalf("refresh with the key: %v %v", err, next)
		}
		refresh.Set("refresh_token", next.RefreshToken)
		if status, _, m := dpopPost(spa, "/oauth/token", refresh, newDPoPKey(t).proof(t, "POST", tokenURL, "")); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("the rotated refresh token with another key: %d %v", status, m)
		}
	})

	t.Run("public app's unbound refresh token is bound by its first proof", func(t *testing.T) {
		// RFC 9449 §5: a refresh token issued to a public client that
		// presents a valid proof MUST be bound to its key, also when the
		// sign-in had none (an app that started using DPoP since).
		code, verifier := spa.signIn(newBrowser(t), "dora")
		tok, err := spa.exchange(code, verifier)
		if err != nil || tok.Type() != "Bearer" {
			t.Fatalf("public app's exchange without a proof: %v %v", err, tok)
		}
		key := newDPoPKey(t)
		next, err := spa.oauth.TokenSource(dpopContext(t, key), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil || next.Type() != "DPoP" {
			t.Fatalf("refresh with a proof: %v %v", err, next)
		}
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}}
		if status, _, m := dpopPost(spa, "/oauth/token", refresh, ""); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("the refresh token issued with a proof, refreshed without one: %d %v, want invalid_grant", status, m)
		}
		if status, _, m := dpopPost(spa, "/oauth/token", refresh, newDPoPKey(t).proof(t, "POST", tokenURL, "")); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("the refresh token issued with a proof, refreshed with another key: %d %v, want invalid_grant", status, m)
		}
		if last, err := spa.oauth.TokenSource(dpopContext(t, key), &oauth2.Token{RefreshToken: next.RefreshToken}).Token(); err != nil || last.Type() != "DPoP" {
			t.Errorf("refresh with the key it is bound to: %v %v", err, last)
		}
	})

	t.Run("dpop_jkt binds the code", func(t *testing.T) {
		key, other := newDPoPKey(t), newDPoPKey(t)
		exchange := func(k *dpopKey) (*oauth2.Token, error) {
			code, verifier := web.signIn(newBrowser(t), "dora", oauth2.SetAuthURLParam("dpop_jkt", key.jkt))
			ctx := context.Background()
			if k != nil {
				ctx = dpopContext(t, k)
			}
			return web.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		}
		if _, err := exchange(other); oauthErr(err) != "invalid_grant" {
			t.Errorf("code bound by dpop_jkt, proof of another key: %v", err)
		}
		if _, err := exchange(nil); oauthErr(err) != "invalid_grant" {
			t.Errorf("code bound by dpop_jkt, no proof: %v", err)
		}
		if tok, err := exchange(key); err != nil || tok.Type() != "DPoP" {
			t.Errorf("code bound by dpop_jkt, proof of its key: %v %v", err, tok)
		}
		// A malformed dpop_jkt goes back to the app as invalid_request.
		p := web.authorize(newBrowser(t), "bad-jkt", oauth2.SetAuthURLParam("dpop_jkt", "short"))
		if res := landed(t, p, web.RedirectURI); res.Error != "invalid_request" {
			t.Errorf("dpop_jkt malformed: %+v", res)
		}
		// A pushed request with a proof binds the code to its key (§10.1).
		form, verifier := pushedParams(web)
		req := srv.formRequest("/oauth/par", form, web.ID, web.Secret)
		req.Header.Set("DPoP", key.proof(t, "POST", srv.URL+"/oauth/par", ""))
		status, _, pushed := doJSON(t, nil, req)
		if status != http.StatusCreated {
			t.Fatalf("push with a proof: %d %v", status, pushed)
		}
		// The same proof again is a replay (RFC 9449 §11.1).
		if status, _, m := doJSON(t, nil, withHeader(srv.formRequest("/oauth/par", form, web.ID, web.Secret), "DPoP", req.Header.Get("DPoP"))); status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("a pushed request's proof used twice: %d %v", status, m)
		}
		b := newBrowser(t)
		res := landed(t, web.finish(b, b.get(web.authorizeURI(pushed["request_uri"].(string), nil)), "dora"), web.RedirectURI)
		if _, err := web.oauth.Exchange(dpopContext(t, other), res.Code, oauth2.VerifierOption(verifier)); oauthErr(err) != "invalid_grant" {
			t.Errorf("pushed with a proof, exchanged with another key: %v", err)
		}
	})

	t.Run("dpop_jkt in a pushed request object", func(t *testing.T) {
		// RFC 9101 §5 and RFC 9126 §3: a pushed request's parameters are
		// the object's; dpop_jkt is one of them (RFC 9449 §10).
		key, other := newDPoPKey(t), newDPoPKey(t)
		jarKey := newRPKey(t, jose.ES256, "dpop-jar-1")
		n := newConfidentialClient("dpop-jar")
		n.JWKS = jarKey.jwks(t)
		jar := srv.createClient(n)
		push := func(proof string, params map[string]any) (int, map[string]any) {
			req := srv.formRequest("/oauth/par", url.Values{"request": {requestObject(t, jarKey.signing(), jar.ID, srv.URL, params)}}, jar.ID, jar.Secret)
			if proof != "" {
				req.Header.Set("DPoP", proof)
			}
			status, _, m := doJSON(t, nil, req)
			return status, m
		}
		params, verifier := objectParams(jar)
		params["dpop_jkt"] = key.jkt
		status, pushed := push("", params)
		if status != http.StatusCreated {
			t.Fatalf("push of an object with dpop_jkt: %d %v", status, pushed)
		}
		b := newBrowser(t)
		res := landed(t, jar.finish(b, b.get(jar.authorizeURI(pushed["request_uri"].(string), nil)), "dora"), jar.RedirectURI)
		if _, err := jar.oauth.Exchange(dpopContext(t, other), res.Code, oauth2.VerifierOption(verifier)); oauthErr(err) != "invalid_grant" {
			t.Errorf("the object's dpop_jkt, exchanged with another key: %v, want invalid_grant", err)
		}
		// The object's dpop_jkt and the push's proof must name one key.
		params, _ = objectParams(jar)
		params["dpop_jkt"] = key.jkt
		if status, m := push(other.proof(t, "POST", srv.URL+"/oauth/par", ""), params); status != http.StatusBadRequest || m["error"] != "invalid_dpop_proof" {
			t.Errorf("the object's dpop_jkt and a proof of another key: %d %v", status, m)
		}
		params, _ = objectParams(jar)
		params["dpop_jkt"] = "short"
		if status, m := push("", params); status != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Errorf("a malformed dpop_jkt in the object: %d %v", status, m)
		}
	})

	t.Run("device code and token exchange", func(t *testing.T) {
		key := newDPoPKey(t)
		tv := srv.createClient(account.NewClient{ID: "dpop-tv", Public: true, GrantTypes: []string{account.GrantDeviceCode, account.GrantRefreshToken}})
		tv.oauth.Scopes = []string{"openid", "offline_access"}
		da, err := tv.oauth.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		decide(t, b, openPage(t, &deviceServer{testServer: srv}, b, da.VerificationURIComplete, "dora"), da.UserCode, "approve")
		tok, err := tv.oauth.DeviceAccessToken(dpopContext(t, key), da)
		if err != nil || tok.Type() != "DPoP" {
			t.Fatalf("device code with a proof: %v %v", err, tok)
		}
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
		if status, _, m := dpopPost(tv, "/oauth/token", refresh, newDPoPKey(t).proof(t, "POST", tokenURL, "")); status != http.StatusBadRequest || m["error"] != "invalid_grant" {
			t.Errorf("the device's refresh token with another key: %d %v", status, m)
		}

		front := srv.createClient(account.NewClient{ID: "dpop-front", GrantTypes: []string{account.GrantAuthorizationCode, account.GrantTokenExchange},
			TokenExchangeAudiences: []string{"dpop-api"}, SkipConsent: true})
		srv.createClient(account.NewClient{ID: "dpop-api", GrantTypes: []string{account.GrantClientCredentials}})
		subject := front.tokens("dora")
		exchange := url.Values{"grant_type": {account.GrantTokenExchange}, "subject_token": {subject.AccessToken},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {"dpop-api"}}
		status, _, m := dpopPost(front, "/oauth/token", exchange, key.proof(t, "POST", tokenURL, ""))
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Fatalf("token exchange with a proof: %d %v", status, m)
		}
		status, _, in := srv.postForm("/oauth/introspect", url.Values{"token": {m["access_token"].(string)}}, front.ID, front.Secret)
		if cnf, _ := in["cnf"].(map[string]any); status != http.StatusOK || cnf["jkt"] != key.jkt {
			t.Errorf("the exchanged token: %d %v, want cnf.jkt %s", status, in, key.jkt)
		}
		// A DPoP-bound subject token is presented with a proof of its key,
		// as everywhere a bound token is accepted (RFC 9449 §7.1; Keycloak
		// refuses it otherwise too): else its binding would be stripped.
		code, verifier := front.signIn(newBrowser(t), "dora")
		bound, err := front.oauth.Exchange(dpopContext(t, key), code, oauth2.VerifierOption(verifier))
		if err != nil || bound.Type() != "DPoP" {
			t.Fatalf("a bound subject token: %v %v", err, bound)
		}
		exchange.Set("subject_token", bound.AccessToken)
		if status, _, m := dpopPost(front, "/oauth/token", exchange, ""); status != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Errorf("a bound subject token without a proof: %d %v, want 400 invalid_request", status, m)
		}
		if status, _, m := dpopPost(front, "/oauth/token", exchange, newDPoPKey(t).proof(t, "POST", tokenURL, "")); status != http.StatusBadRequest || m["error"] != "invalid_request" {
			t.Errorf("a bound subject token with another key's proof: %d %v, want 400 invalid_request", status, m)
		}
		status, _, m = dpopPost(front, "/oauth/token", exchange, key.proof(t, "POST", tokenURL, ""))
		if status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Fatalf("a bound subject token with its key's proof: %d %v", status, m)
		}
	})

	t.Run("browser apps", func(t *testing.T) {
		// A browser app (RFC 9449's main audience) sends the DPoP header
		// across origins: the preflight must allow it, and the answer must
		// let the app read DPoP-Nonce and the challenge.
		const origin = "https://spa.example"
		for _, c := range []struct{ path, method, headers string }{
			{"/oauth/token", "POST", "content-type, dpop"},
			{"/userinfo", "GET", "authorization, dpop"},
		} {
			req := mustRequest(http.MethodOptions, srv.URL+c.path)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", c.method)
			req.Header.Set("Access-Control-Request-Headers", c.headers)
			r := mustFetch(t, bareClient, req)
			if allow := r.Header.Get("Access-Control-Allow-Origin"); r.Status > 299 || allow != origin && allow != "*" ||
				!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")), "dpop") {
				t.Errorf("preflight of %s %s with a DPoP header: %d %v", c.method, c.path, r.Status, r.Header)
			}
		}
		key := newDPoPKey(t)
		req := nonceApp.srv.formRequest("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, nonceApp.ID, nonceApp.Secret)
		req.Header.Set("Origin", origin)
		req.Header.Set("DPoP", key.proof(t, "POST", tokenURL, ""))
		r := mustFetch(t, bareClient, req)
		if r.Status != http.StatusBadRequest || r.Header.Get("DPoP-Nonce") == "" || !strings.Contains(r.Header.Get("Access-Control-Expose-Headers"), "DPoP-Nonce") ||
			r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("use_dpop_nonce to a browser app: %d %v", r.Status, r.Header)
		}
		// A refused proof at /userinfo: without Access-Control-Allow-Origin
		// the browser hides the answer from the app, challenge and all.
		req = mustRequest("GET", srv.URL+"/userinfo")
		req.Header.Set("Origin", origin)
		req.Header.Set("Authorization", "DPoP some-token")
		req.Header.Set("DPoP", "not.a.proof")
		r = mustFetch(t, bareClient, req)
		if r.Status != http.StatusUnauthorized || r.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(strings.ToLower(r.Header.Get("Access-Control-Expose-Headers")), "www-authenticate") {
			t.Errorf("invalid_dpop_proof at userinfo to a browser app: %d %v", r.Status, r.Header)
		}
		// An answer zitadel gives keeps one set of CORS headers.
		req = nonceApp.srv.formRequest("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, nonceApp.ID, "wrong-secret")
		req.Header.Set("Origin", origin)
		r = mustFetch(t, bareClient, req)
		if len(r.Header.Values("Access-Control-Allow-Origin")) != 1 || r.Header.Get("Access-Control-Allow-Origin") != origin {
			t.Errorf("a refused client to a browser app: %d %v", r.Status, r.Header)
		}
	})

	t.Run("nonce required", func(t *testing.T) {
		key := newDPoPKey(t)
		cc := url.Values{"grant_type": {"client_credentials"}}
		status, h, m := dpopPost(nonceApp, "/oauth/token", cc, key.proof(t, "POST", tokenURL, ""))
		nonce := h.Get("DPoP-Nonce")
		if status != http.StatusBadRequest || m["error"] != "use_dpop_nonce" || nonce == "" {
			t.Fatalf("no nonce: %d %v nonce %q, want 400 use_dpop_nonce with DPoP-Nonce", status, m, nonce)
		}
		withNonce := func(c map[string]any) { c["nonce"] = nonce }
		if status, _, m := dpopPost(nonceApp, "/oauth/token", cc, key.proof(t, "POST", tokenURL, "", func(c map[string]any) { c["nonce"] = "made-up" })); status != http.StatusBadRequest || m["error"] != "use_dpop_nonce" {
			t.Errorf("a made-up nonce: %d %v", status, m)
		}
		if status, _, m := dpopPost(nonceApp, "/oauth/token", cc, key.proof(t, "POST", tokenURL, "", withNonce)); status != http.StatusOK || m["token_type"] != "DPoP" {
			t.Errorf("with the nonce: %d %v", status, m)
		}
		// The code flow through the transport, which retries with the nonce.
		ctx := dpopContext(t, key)
		code, verifier := nonceApp.signIn(newBrowser(t), "dora")
		tok, err := nonceApp.oauth.Exchange(ctx, code, oauth2.VerifierOption(verifier))
		if err != nil || tok.Type() != "DPoP" {
			t.Fatalf("code flow of a nonce app: %v %v", err, tok)
		}
		// A push's proof too (RFC 9449 §10.1 checks it as §4.3 does, nonce included).
		form, _ := pushedParams(nonceApp)
		parURL := srv.URL + "/oauth/par"
		push := func(proof string) (int, http.Header, map[string]any) {
			return doJSON(t, nil, withHeader(srv.formRequest("/oauth/par", form, nonceApp.ID, nonceApp.Secret), "DPoP", proof))
		}
		status, h, m = push(key.proof(t, "POST", parURL, "", func(c map[string]any) { delete(c, "nonce") }))
		if status != http.StatusBadRequest || m["error"] != "use_dpop_nonce" || h.Get("DPoP-Nonce") == "" {
			t.Errorf("push without the nonce: %d %v nonce %q, want 400 use_dpop_nonce with DPoP-Nonce", status, m, h.Get("DPoP-Nonce"))
		}
		if status, _, m := push(key.proof(t, "POST", parURL, "", withNonce)); status != http.StatusCreated {
			t.Errorf("push with the nonce: %d %v", status, m)
		}
		// userinfo: 401 use_dpop_nonce with a nonce, then success.
		ui := srv.URL + "/userinfo"
		status, h, m = dpopUserinfo(srv, "GET", "DPoP", tok.AccessToken, key.proof(t, "GET", ui, tok.AccessToken, func(c map[string]any) { delete(c, "nonce") }))
		if status != http.StatusUnauthorized || !strings.Contains(h.Get("WWW-Authenticate"), `error="use_dpop_nonce"`) || h.Get("DPoP-Nonce") == "" {
			t.Errorf("userinfo without the nonce: %d %v %q nonce %q", status, m, h.Get("WWW-Authenticate"), h.Get("DPoP-Nonce"))
		}
		fresh := h.Get("DPoP-Nonce")
		if status, _, m := dpopUserinfo(srv, "GET", "DPoP", tok.AccessToken, key.proof(t, "GET", ui, tok.AccessToken, func(c map[string]any) { c["nonce"] = fresh })); status != http.StatusOK {
			t.Errorf("userinfo with the nonce: %d %v", status, m)
		}
		if _, err := nonceApp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err != nil {
			t.Errorf("go-oidc userinfo of a nonce app: %v", err)
		}
	})
}

// TestDPoPSettings: the per-app settings through config.toml and the
// management API.
func TestDPoPSettings(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "static-dpop", RedirectURIs: []string{"https://static.example.com/cb"}, Secret: "static-secret-0123456789",
			GrantTypes: []string{"authorization_code"}, DPoPBoundAccessTokens: true, RequireDPoPNonce: true})
	})
	rw, _, _ := adminTokens(t, srv)
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/clients/static-dpop", rw, "", ""); status != http.StatusOK ||
		body["dpop_bound_access_tokens"] != true || body["require_dpop_nonce"] != true {
		t.Errorf("the static app from config.toml: %d %v", status, body)
	}
	status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", `{"id":"api-dpop","redirect_uris":["https://a.example/cb"],"dpop_bound_access_tokens":true}`)
	if status != http.StatusCreated {
		t.Fatalf("create: %d %v", status, body)
	}
	if c, _ := body["client"].(map[string]any); c["dpop_bound_access_tokens"] != true || c["require_dpop_nonce"] != false {
		t.Errorf("created: %v", body)
	}
	status, _, body = apiCall(t, srv, http.MethodPatch, "/api/v1/clients/api-dpop", rw, "application/json", `{"dpop_bound_access_tokens":false,"require_dpop_nonce":true}`)
	if status != http.StatusOK || body["dpop_bound_access_tokens"] != false || body["require_dpop_nonce"] != true {
		t.Errorf("patched: %d %v", status, body)
	}
}

func withHeader(req *http.Request, key, value string) *http.Request {
	req.Header.Set(key, value)
	return req
}
