package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
)

// requestObject builds a request object (RFC 9101 §4) of app id for aud
// as an app's library would: the authorization parameters in params, the
// JWT claims around them, typ oauth-authz-req+jwt, signed with key.
// change edits the claims before signing.
func requestObject(t *testing.T, key jose.SigningKey, id, aud string, params map[string]any, change ...func(map[string]any)) string {
	t.Helper()
	now := time.Now()
	claims := map[string]any{"iss": id, "aud": aud, "client_id": id, "jti": account.NewID(), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(5 * time.Minute).Unix()}
	for k, v := range params {
		claims[k] = v
	}
	for _, c := range change {
		c(claims)
	}
	return signJWT(t, key, "oauth-authz-req+jwt", claims)
}

// objectParams are the parameters of a code-flow request of c for a
// request object, with a fresh state, nonce and PKCE pair; the verifier is
// returned.
func objectParams(c *testClient) (map[string]any, string) {
	verifier, challenge := pkce()
	return map[string]any{
		"response_type": "code", "redirect_uri": c.RedirectURI, "scope": "openid",
		"state": "object-" + account.RandomString(8), "nonce": "object-" + account.RandomString(12),
		"code_challenge": challenge, "code_challenge_method": "S256",
	}, verifier
}

// objectURI is /authorize with the request object and the outer
// parameters of c (client_id, and extra).
func (c *testClient) objectURI(object string, extra url.Values) string {
	q := url.Values{"client_id": {c.ID}, "request": {object}}
	for k, v := range extra {
		q[k] = v
	}
	return c.srv.URL + "/authorize?" + q.Encode()
}

// TestRequestObjects runs signed request objects (RFC 9101, OIDC Core
// §6.1) by value at /authorize and pushed at /oauth/par, with go-oidc and
// x/oauth2 on the app's side and the objects built with go-jose, and the
// refusals: unsigned, wrongly signed, for another audience, issuer or app,
// expired, malformed, oversized or encrypted objects, and apps that must
// sign their requests sending plain ones.
func TestRequestObjects(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("rosa", false)

	webKey := newRPKey(t, jose.ES256, "web-1")
	n := newConfidentialClient("jar-web")
	n.JWKS = webKey.jwks(t)
	web := srv.createClient(n)
	otherKey := newRPKey(t, jose.EdDSA, "other-1")
	n = newConfidentialClient("jar-other")
	n.JWKS = otherKey.jwks(t)
	other := srv.createClient(n)
	hsSecret := account.NewSecret()
	n = newConfidentialClient("jar-hs")
	n.TokenEndpointAuthMethod, n.Secret = account.AuthClientSecretJWT, hsSecret
	hs := srv.createClient(n)
	plain := srv.createClient(newConfidentialClient("jar-plain"))
	strictKey := newRPKey(t, jose.RS256, "strict-1")
	n = newConfidentialClient("jar-strict")
	n.JWKS, n.RequireSignedRequestObject = strictKey.jwks(t), true
	strict := srv.createClient(n)

	t.Run("discovery", func(t *testing.T) {
		doc := srv.discovery()
		algs, _ := json.Marshal(doc["request_object_signing_alg_values_supported"])
		if doc["request_parameter_supported"] != true || doc["request_uri_parameter_supported"] != false || string(algs) != `["RS256","PS256","ES256","EdDSA","HS256"]` {
			t.Fatalf("discovery: request %v, request_uri %v, algorithms %s", doc["request_parameter_supported"], doc["request_uri_parameter_supported"], algs)
		}
		if _, ok := doc["require_signed_request_object"]; ok {
			t.Error("require_signed_request_object is client metadata, not discovery")
		}
	})

	t.Run("by value: the object's parameters win", func(t *testing.T) {
		params, verifier := objectParams(web)
		// A claims parameter as a JSON object and max_age as a number,
		// as RFC 9101 §4 has them.
		params["claims"] = map[string]any{"id_token": map[string]any{"email": nil}}
		params["max_age"] = 3600
		object := requestObject(t, webKey.signing(), web.ID, srv.URL, params)
		// Outer parameters other than client_id are ignored (RFC 9101
		// §5); OIDC Core §6.1 apps repeat response_type and scope.
		b := newBrowser(t)
		first := b.get(web.objectURI(object, url.Values{"response_type": {"code"}, "scope": {"openid profile email"},
			"state": {"outer-state"}, "nonce": {"outer-nonce"}, "redirect_uri": {web.RedirectURI}}))
		if !isLoginPage(first) {
			t.Fatalf("a signed request object: %s", first)
		}
		res := landed(t, web.finish(b, first, "rosa"), web.RedirectURI)
		if res.Code == "" || res.State != params["state"] || res.Iss != srv.URL {
			t.Fatalf("landed with %+v, want the object's state %s", res, params["state"])
		}
		tok, err := web.exchange(res.Code, verifier)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		claims := idTokenClaims(t, web, tok)
		if claims["nonce"] != params["nonce"] || claims["email"] == nil || claims["name"] != nil {
			t.Errorf("ID token claims %v: want the object's nonce, email from its claims parameter, no profile from the outer scope", claims)
		}
		if scope, _ := tok.Extra("scope").(string); strings.Contains(scope, "profile") {
			t.Errorf("granted scope %q: the outer scope was used", scope)
		}
	})

	t.Run("by value with client_id alone, HS256 for client_secret_jwt", func(t *testing.T) {
		params, _ := objectParams(hs)
		object := requestObject(t, hs256(hsSecret), hs.ID, srv.URL, params)
		b := newBrowser(t)
		res := landed(t, hs.finish(b, b.get(hs.objectURI(object, nil)), "rosa"), hs.RedirectURI)
		if res.Code == "" || res.State != params["state"] {
			t.Fatalf("landed with %+v", res)
		}
		// HS256 is the secret of client_secret_jwt apps only.
		params, _ = objectParams(plain)
		p := newBrowser(t).get(plain.objectURI(requestObject(t, hs256(plain.Secret), plain.ID, srv.URL, params), url.Values{"redirect_uri": {plain.RedirectURI}, "state": {"o"}}))
		if res := landed(t, p, plain.RedirectURI); res.Error != "invalid_request_object" || res.State != "o" {
			t.Fatalf("HS256 from an app without client_secret_jwt: %+v", res)
		}
	})

	t.Run("pushed with request", func(t *testing.T) {
		params, verifier := objectParams(web)
		object := requestObject(t, webKey.signing(), web.ID, srv.URL, params)
		status, _, body := web.push(url.Values{"client_id": {web.ID}, "request": {object}, "state": {"outer-state"}, "scope": {"openid profile"}})
		uri, _ := body["request_uri"].(string)
		if status != http.StatusCreated || uri == "" {
			t.Fatalf("push a request object: %d %v", status, body)
		}
		b := newBrowser(t)
		res := landed(t, web.finish(b, b.get(web.authorizeURI(uri, nil)), "rosa"), web.RedirectURI)
		if res.State != params["state"] {
			t.Fatalf("landed with %+v, want the object's state", res)
		}
		tok, err := web.exchange(res.Code, verifier)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if claims := idTokenClaims(t, web, tok); claims["nonce"] != params["nonce"] || claims["name"] != nil {
			t.Errorf("ID token claims %v", claims)
		}
	})

	t.Run("a request object is no client assertion", func(t *testing.T) {
		// A request object sent by value crosses the browser in the URL.
		// Signed with the key the app authenticates with, and carrying a
		// sub, a jti and an exp as some libraries add, it must not
		// authenticate the app to whoever saw it (RFC 9101 §10.8, RFC
		// 8725 §3.11 and §3.12), typed as a request object or not.
		introspect := func(a string) (int, map[string]any) {
			status, _, body := srv.postForm("/oauth/introspect", merge(url.Values{"token": {"x"}}, assertionParams(a)), "", "")
			return status, body
		}
		if status, body := introspect(assertion(t, hs256(hsSecret), hs.ID, srv.URL)); status != http.StatusOK {
			t.Fatalf("a client assertion of the app: %d %v", status, body)
		}
		params, _ := objectParams(hs)
		withSub := func(c map[string]any) { c["sub"] = hs.ID }
		typed := requestObject(t, hs256(hsSecret), hs.ID, srv.URL, params, withSub)
		untyped := func() string {
			claims := map[string]any{"iss": hs.ID, "sub": hs.ID, "aud": srv.URL, "client_id": hs.ID, "jti": account.NewID(), "exp": time.Now().Add(5 * time.Minute).Unix()}
			for k, v := range params {
				claims[k] = v
			}
			return signJWT(t, hs256(hsSecret), "JWT", claims)
		}()
		for name, object := range map[string]string{"oauth-authz-req+jwt": typed, "JWT": untyped} {
			if p := newBrowser(t).get(hs.objectURI(object, nil)); !isLoginPage(p) {
				t.Fatalf("typ %s: the request object was refused: %s", name, p)
			}
			if status, body := introspect(object); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
				t.Errorf("typ %s: the request object authenticated its app: %d %v", name, status, body)
			}
		}
	})

	// Refusals. At /authorize a bad object goes back to the outer
	// redirect_uri, with the outer state, as invalid_request_object once
	// the client and that redirect_uri are known good; at /oauth/par it
	// is a JSON 400.
	jwe := func() string {
		key := make([]byte, 16)
		_, _ = rand.Read(key)
		enc, err := jose.NewEncrypter(jose.A128GCM, jose.Recipient{Algorithm: jose.DIRECT, Key: key}, nil)
		if err != nil {
			t.Fatal(err)
		}
		params, _ := objectParams(web)
		payload, _ := json.Marshal(params)
		obj, err := enc.Encrypt(payload)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := obj.CompactSerialize()
		return s
	}
	unsigned := func() string {
		params, _ := objectParams(web)
		params["iss"], params["aud"], params["exp"] = web.ID, srv.URL, time.Now().Add(time.Minute).Unix()
		payload, _ := json.Marshal(params)
		enc := base64.RawURLEncoding.EncodeToString
		return enc([]byte(`{"alg":"none","typ":"oauth-authz-req+jwt"}`)) + "." + enc(payload) + "."
	}
	signed := func(change ...func(map[string]any)) string {
		params, _ := objectParams(web)
		return requestObject(t, webKey.signing(), web.ID, srv.URL, params, change...)
	}
	set := func(k string, v any) func(map[string]any) { return func(c map[string]any) { c[k] = v } }
	bad := []struct {
		name, object, why string
	}{
		{"alg none", unsigned(), "not a JWT signed with"},
		{"wrong key", requestObject(t, otherKey.signing(), web.ID, srv.URL, map[string]any{"response_type": "code", "redirect_uri": web.RedirectURI, "scope": "openid"}), "signature does not verify"},
		{"wrong aud", signed(set("aud", "https://elsewhere.example")), "aud must be the issuer"},
		{"wrong iss", signed(set("iss", other.ID)), "iss must be the client_id"},
		{"expired", signed(set("exp", time.Now().Add(-time.Hour).Unix())), "expired"},
		{"exp too far ahead", signed(set("exp", time.Now().Add(time.Hour).Unix())), "more than 10m0s ahead"},
		{"no exp", signed(func(c map[string]any) { delete(c, "exp") }), "exp is missing"},
		{"not yet valid", signed(set("nbf", time.Now().Add(time.Hour).Unix())), "not valid yet"},
		{"client_id mismatch", signed(set("client_id", other.ID)), "client_id is not"},
		{"object of another app", requestObject(t, otherKey.signing(), other.ID, srv.URL, map[string]any{"response_type": "code", "redirect_uri": other.RedirectURI, "scope": "openid"}), "iss must be the client_id"},
		{"malformed JWS", "eyJhbGciOiJFUzI1NiJ9.bm90IGpzb24.c2ln", "claims are not a JSON object"},
		{"not a JWT", "hello", "not a JWT"},
		{"oversize", signed(set("state", strings.Repeat("s", 17<<10))), "longer than 16384 bytes"},
		{"JWE", jwe(), "(JWE) are not supported"},
		{"request_uri inside", signed(set("request_uri", "urn:ietf:params:oauth:request_uri:x")), "must not hold request_uri"},
		{"another typ", func() string {
			signer, _ := jose.NewSigner(webKey.signing(), (&jose.SignerOptions{}).WithType("at+jwt"))
			payload, _ := json.Marshal(map[string]any{"iss": web.ID, "aud": srv.URL, "exp": time.Now().Add(time.Minute).Unix(), "response_type": "code", "redirect_uri": web.RedirectURI, "scope": "openid"})
			jws, _ := signer.Sign(payload)
			s, _ := jws.CompactSerialize()
			return s
		}(), "typ must be"},
	}
	for _, c := range bad {
		t.Run("refused at /authorize: "+c.name, func(t *testing.T) {
			p := newBrowser(t).get(web.objectURI(c.object, url.Values{"redirect_uri": {web.RedirectURI}, "state": {"outer-" + strings.ReplaceAll(c.name, " ", "-")}}))
			res := landed(t, p, web.RedirectURI)
			if res.Error != "invalid_request_object" || res.Code != "" || res.State != "outer-"+strings.ReplaceAll(c.name, " ", "-") || res.Iss != srv.URL {
				t.Fatalf("landed with %+v", res)
			}
			if d := res.Query.Get("error_description"); !strings.Contains(d, c.why) {
				t.Errorf("error_description %q, want it to say %q", d, c.why)
			}
		})
		t.Run("refused at /oauth/par: "+c.name, func(t *testing.T) {
			status, _, body := web.push(url.Values{"client_id": {web.ID}, "request": {c.object}})
			if d, _ := body["error_description"].(string); status != http.StatusBadRequest || body["error"] != "invalid_request_object" || !strings.Contains(d, c.why) {
				t.Fatalf("push: %d %v, want it to say %q", status, body, c.why)
			}
		})
	}

	t.Run("refused without a good redirect_uri: the error page", func(t *testing.T) {
		for _, extra := range []url.Values{nil, {"redirect_uri": {"https://evil.example/cb"}}} {
			p := newBrowser(t).get(web.objectURI(unsigned(), extra))
			if p.Status != http.StatusBadRequest || p.Location != "" {
				t.Errorf("outer %v: %d %s", extra, p.Status, p.Location)
			}
		}
		// A good object sent to an unknown app.
		params, _ := objectParams(web)
		q := url.Values{"client_id": {"no-such-app"}, "request": {requestObject(t, webKey.signing(), "no-such-app", srv.URL, params)}, "redirect_uri": {web.RedirectURI}}
		if p := newBrowser(t).get(srv.URL + "/authorize?" + q.Encode()); p.Status != http.StatusBadRequest || p.Location != "" {
			t.Errorf("unknown app: %d %s", p.Status, p.Location)
		}
		// request with request_uri (RFC 9101 §5).
		q = url.Values{"client_id": {web.ID}, "request": {signed()}, "request_uri": {"urn:ietf:params:oauth:request_uri:x"}}
		if p := newBrowser(t).get(srv.URL + "/authorize?" + q.Encode()); p.Status != http.StatusBadRequest || p.Location != "" {
			t.Errorf("request and request_uri: %d %s", p.Status, p.Location)
		}
	})

	t.Run("outer response_type must match", func(t *testing.T) {
		p := newBrowser(t).get(web.objectURI(signed(), url.Values{"response_type": {"token"}, "redirect_uri": {web.RedirectURI}}))
		if res := landed(t, p, web.RedirectURI); res.Error != "invalid_request_object" {
			t.Fatalf("response_type differing from the object's: %+v", res)
		}
	})

	t.Run("require_signed_request_object", func(t *testing.T) {
		_, challenge := pkce()
		p := strict.authorize(newBrowser(t), "plain", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		if res := landed(t, p, strict.RedirectURI); res.Error != "invalid_request" || res.State != "plain" {
			t.Fatalf("plain parameters of an app that must sign: %+v", res)
		}
		form, _ := pushedParams(strict)
		if status, _, body := strict.push(form); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Fatalf("plain push of an app that must sign: %d %v", status, body)
		}
		params, verifier := objectParams(strict)
		b := newBrowser(t)
		res := landed(t, strict.finish(b, b.get(strict.objectURI(requestObject(t, strictKey.signing(), strict.ID, srv.URL, params), nil)), "rosa"), strict.RedirectURI)
		if _, err := strict.exchange(res.Code, verifier); err != nil {
			t.Fatalf("exchange after a signed request: %v", err)
		}
		status, _, body := strict.push(url.Values{"request": {requestObject(t, strictKey.signing(), strict.ID, srv.URL, params)}})
		if status != http.StatusCreated {
			t.Fatalf("signed push of an app that must sign: %d %v", status, body)
		}

		// The management API: the setting needs keys, and then holds.
		rw, _, _ := adminTokens(t, srv)
		_, hdr, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients/"+plain.ID, rw, "", "")
		status, _, body = apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/"+plain.ID, rw, "application/json",
			`{"require_signed_request_object":true}`, http.Header{"If-Match": {hdr.Get("ETag")}})
		if status != http.StatusBadRequest {
			t.Fatalf("PATCH require_signed_request_object for an app without keys: %d %v", status, body)
		}
		_, hdr, _ = apiCall(t, srv, http.MethodGet, "/api/v1/clients/"+other.ID, rw, "", "")
		status, _, body = apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/"+other.ID, rw, "application/json",
			`{"require_signed_request_object":true}`, http.Header{"If-Match": {hdr.Get("ETag")}})
		if status != http.StatusOK || body["require_signed_request_object"] != true {
			t.Fatalf("PATCH require_signed_request_object: %d %v", status, body)
		}
		if res := landed(t, other.authorize(newBrowser(t), "plain-other", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")), other.RedirectURI); res.Error != "invalid_request" {
			t.Fatalf("plain request after the API required signing: %+v", res)
		}
	})
}
