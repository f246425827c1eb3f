package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// Resource indicators (RFC 8707) with a real relying party: go-oidc and
// x/oauth2 send resource at /authorize and at the token endpoint
// (oauth2.SetAuthURLParam, clientcredentials' EndpointParams); the
// refresh grant, which x/oauth2's token source sends without extra
// parameters, is posted by hand.
const (
	resOrders  = "https://orders.example.com/"
	resFiles   = "https://files.example.com/api"
	resReports = "urn:example:reports"
)

// authURL is c's authorization URL with the resources: the first through
// oauth2.SetAuthURLParam, which sets one value, the others appended, since
// x/oauth2 has no option that repeats a parameter.
func authURL(c *testClient, state string, resources []string, opts ...oauth2.AuthCodeOption) string {
	if len(resources) > 0 {
		opts = append(opts, oauth2.SetAuthURLParam("resource", resources[0]))
	}
	u := c.oauth.AuthCodeURL(state, opts...)
	for _, r := range resources[min(1, len(resources)):] {
		u += "&resource=" + url.QueryEscape(r)
	}
	return u
}

// signInFor signs alice in to c asking for resources, and returns the
// code and the PKCE verifier.
func signInFor(t *testing.T, c *testClient, resources ...string) (code, verifier string) {
	t.Helper()
	verifier = oauth2.GenerateVerifier()
	b := newBrowser(t)
	p := b.get(authURL(c, "st-res", resources, oauth2.S256ChallengeOption(verifier)))
	res := landed(t, c.finish(b, p, "alice"), c.RedirectURI)
	if res.Error != "" || res.Code == "" || res.State != "st-res" {
		t.Fatalf("flow ended with %+v", res)
	}
	return res.Code, verifier
}

// jwtClaims verifies token's signature with the server's JWKS (as a
// resource server does) and returns its claims.
func jwtClaims(t *testing.T, srv *testServer, token string) map[string]any {
	t.Helper()
	ctx := context.Background()
	payload, err := oidc.NewRemoteKeySet(ctx, srv.URL+"/keys").VerifySignature(ctx, token)
	if err != nil {
		t.Fatalf("the access token is no JWT signed by the server's keys: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(payload, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// idTokenAudience is the aud of the ID token of tok, verified for c.
func idTokenAudience(t *testing.T, c *testClient, tok *oauth2.Token) []string {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	id, err := c.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	return id.Audience
}

func TestResourceIndicators(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "static-app", RedirectURIs: []string{"https://static.example.com/cb"},
			Secret: "static-secret-0123456789", GrantTypes: []string{"authorization_code"}, Resources: []string{resOrders, "urn:example:static"}})
		c.OAuth.DeviceFlow = true
	})
	rw, _, _ := adminTokens(t, srv)                // and the users root and alice
	jwtKey := newRPKey(t, jose.ES256, "jwt-app-1") // for its request objects
	jwtApp := srv.createClient(account.NewClient{ID: "jwt-app", Secret: tokenExchangeSecret, SkipConsent: true, AccessTokenJWT: true,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials},
		Resources:  []string{resOrders, resFiles, resReports}, JWKS: jwtKey.jwks(t)})
	jwtApp.oauth.Scopes = append(jwtApp.oauth.Scopes, oidc.ScopeOfflineAccess)
	opaqueApp := srv.createClient(account.NewClient{ID: "opaque-app", Secret: tokenExchangeSecret, SkipConsent: true,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials},
		Resources:  []string{resOrders, resFiles}})
	opaqueApp.oauth.Scopes = append(opaqueApp.oauth.Scopes, oidc.ScopeOfflineAccess)
	// An app with no resources: every resource is refused, and without one
	// nothing changes.
	plainApp := srv.createClient(account.NewClient{ID: "plain-app", Secret: tokenExchangeSecret, SkipConsent: true, AccessTokenJWT: true,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials}})

	flow := func(c *testClient, authorize []string, exchange ...string) *oauth2.Token {
		t.Helper()
		code, verifier := signInFor(t, c, authorize...)
		opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(verifier)}
		for _, r := range exchange {
			opts = append(opts, oauth2.SetAuthURLParam("resource", r))
		}
		tok, err := c.oauth.Exchange(context.Background(), code, opts...)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		return tok
	}
	introspect := func(c *testClient, token string) map[string]any {
		t.Helper()
		status, _, m := srv.postForm("/oauth/introspect", url.Values{"token": {token}}, c.ID, c.Secret)
		if status != http.StatusOK || m["active"] != true {
			t.Fatalf("introspect: %d %v", status, m)
		}
		return m
	}
	refresh := func(c *testClient, tok *oauth2.Token, resources ...string) (int, map[string]any) {
		t.Helper()
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
		for _, r := range resources {
			form.Add("resource", r)
		}
		status, _, m := c.tokenPost(form, true)
		return status, m
	}

	t.Run("code flow with one resource: the JWT is for it, the ID token for the app", func(t *testing.T) {
		tok := flow(jwtApp, []string{resOrders})
		claims := jwtClaims(t, srv, tok.AccessToken)
		if got := audiences(claims["aud"]); !slices.Equal(got, []string{resOrders}) {
			t.Errorf("access token aud %v, want [%s]", got, resOrders)
		}
		if claims["client_id"] != jwtApp.ID {
			t.Errorf("access token client_id %v, want %s", claims["client_id"], jwtApp.ID)
		}
		if got := idTokenAudience(t, jwtApp, tok); !slices.Equal(got, []string{jwtApp.ID}) {
			t.Errorf("ID token aud %v, want [%s]", got, jwtApp.ID)
		}
		// Introspection says the same of the JWT.
		if got := audiences(introspect(jwtApp, tok.AccessToken)["aud"]); !slices.Equal(got, []string{resOrders}) {
			t.Errorf("introspected aud %v", got)
		}
	})

	t.Run("code flow with two resources, refresh narrows to one and may not widen", func(t *testing.T) {
		tok := flow(jwtApp, []string{resOrders, resFiles})
		if got := audiences(jwtClaims(t, srv, tok.AccessToken)["aud"]); !slices.Equal(got, []string{resOrders, resFiles}) {
			t.Errorf("access token aud %v, want both resources", got)
		}
		if got := idTokenAudience(t, jwtApp, tok); !slices.Equal(got, []string{jwtApp.ID}) {
			t.Errorf("ID token aud %v, want [%s]", got, jwtApp.ID)
		}
		status, m := refresh(jwtApp, tok, resFiles)
		if status != http.StatusOK {
			t.Fatalf("refresh for one resource: %d %v", status, m)
		}
		if got := audiences(jwtClaims(t, srv, m["access_token"].(string))["aud"]); !slices.Equal(got, []string{resFiles}) {
			t.Errorf("narrowed access token aud %v, want [%s]", got, resFiles)
		}
		// The refreshed ID token is still the app's.
		if id, err := jwtApp.verifier.Verify(context.Background(), m["id_token"].(string)); err != nil || !slices.Equal(id.Audience, []string{jwtApp.ID}) {
			t.Errorf("refreshed ID token: %v (aud %v)", err, id)
		}
		// The family keeps both: the next refresh, naming none, gets both.
		next := &oauth2.Token{RefreshToken: m["refresh_token"].(string)}
		status, m = refresh(jwtApp, next)
		if status != http.StatusOK {
			t.Fatalf("refresh for all: %d %v", status, m)
		}
		if got := audiences(jwtClaims(t, srv, m["access_token"].(string))["aud"]); !slices.Equal(got, []string{resOrders, resFiles}) {
			t.Errorf("access token aud after a refresh naming none: %v, want both", got)
		}
		// Registered for the app, but not granted at the sign-in: refused,
		// and the refresh token still works.
		next = &oauth2.Token{RefreshToken: m["refresh_token"].(string)}
		status, m = refresh(jwtApp, next, resReports)
		if status != http.StatusBadRequest || m["error"] != "invalid_target" || m["access_token"] != nil {
			t.Errorf("widening refresh: %d %v, want 400 invalid_target", status, m)
		}
		if status, m = refresh(jwtApp, next, resOrders); status != http.StatusOK {
			t.Errorf("refresh after a refused one: %d %v", status, m)
		}
	})

	t.Run("the code exchange may narrow, not widen", func(t *testing.T) {
		tok := flow(jwtApp, []string{resOrders, resFiles}, resOrders)
		if got := audiences(jwtClaims(t, srv, tok.AccessToken)["aud"]); !slices.Equal(got, []string{resOrders}) {
			t.Errorf("access token aud %v, want [%s]", got, resOrders)
		}
		code, verifier := signInFor(t, jwtApp, resOrders)
		_, err := jwtApp.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", resFiles))
		if oauthErr(err) != "invalid_target" {
			t.Errorf("exchange for a resource the sign-in did not ask for: %v, want invalid_target", err)
		}
	})

	t.Run("opaque token: introspection's aud is the resources", func(t *testing.T) {
		tok := flow(opaqueApp, []string{resOrders, resFiles})
		if strings.Count(tok.AccessToken, ".") == 2 {
			t.Fatalf("opaque-app got a JWT")
		}
		m := introspect(opaqueApp, tok.AccessToken)
		if got := audiences(m["aud"]); !slices.Equal(got, []string{resOrders, resFiles}) {
			t.Errorf("introspected aud %v, want both resources", got)
		}
		if m["client_id"] != opaqueApp.ID {
			t.Errorf("introspected client_id %v", m["client_id"])
		}
		if got := idTokenAudience(t, opaqueApp, tok); !slices.Equal(got, []string{opaqueApp.ID}) {
			t.Errorf("ID token aud %v", got)
		}
		status, r := refresh(opaqueApp, tok, resFiles)
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, r)
		}
		if got := audiences(introspect(opaqueApp, r["access_token"].(string))["aud"]); !slices.Equal(got, []string{resFiles}) {
			t.Errorf("introspected aud after narrowing %v", got)
		}
		// Without resources, the token is the app's, as before.
		plain := flow(opaqueApp, nil)
		if got := audiences(introspect(opaqueApp, plain.AccessToken)["aud"]); !slices.Equal(got, []string{opaqueApp.ID}) {
			t.Errorf("introspected aud without resources %v, want [%s]", got, opaqueApp.ID)
		}
	})

	t.Run("no resource: nothing changes", func(t *testing.T) {
		tok := flow(plainApp, nil)
		if got := audiences(jwtClaims(t, srv, tok.AccessToken)["aud"]); !slices.Equal(got, []string{plainApp.ID}) {
			t.Errorf("access token aud %v, want [%s]", got, plainApp.ID)
		}
	})

	t.Run("client_credentials with a resource", func(t *testing.T) {
		cc := clientcredentials.Config{ClientID: jwtApp.ID, ClientSecret: jwtApp.Secret, TokenURL: srv.URL + "/oauth/token",
			EndpointParams: url.Values{"resource": {resReports}}}
		tok, err := cc.Token(context.Background())
		if err != nil {
			t.Fatalf("client_credentials: %v", err)
		}
		claims := jwtClaims(t, srv, tok.AccessToken)
		if got := audiences(claims["aud"]); !slices.Equal(got, []string{resReports}) || claims["sub"] != jwtApp.ID {
			t.Errorf("aud %v sub %v, want [%s] and the app", got, claims["sub"], resReports)
		}
		opaque := clientcredentials.Config{ClientID: opaqueApp.ID, ClientSecret: opaqueApp.Secret, TokenURL: srv.URL + "/oauth/token",
			EndpointParams: url.Values{"resource": {resOrders}}}
		tok, err = opaque.Token(context.Background())
		if err != nil {
			t.Fatalf("client_credentials (opaque): %v", err)
		}
		if got := audiences(introspect(opaqueApp, tok.AccessToken)["aud"]); !slices.Equal(got, []string{resOrders}) {
			t.Errorf("introspected aud %v", got)
		}
		opaque.EndpointParams = url.Values{"resource": {resReports}} // not registered for opaque-app
		if _, err := opaque.Token(context.Background()); oauthErr(err) != "invalid_target" {
			t.Errorf("client_credentials for an unregistered resource: %v, want invalid_target", err)
		}
	})

	// Refusals: at /authorize back to the app's redirect URI with its state
	// (RFC 8707 §2, RFC 6749 §4.1.2.1), at the token endpoint 400.
	tooMany := make([]string, 9)
	for i := range tooMany {
		tooMany[i] = resOrders + strings.Repeat("x", i)
	}
	for _, tc := range []struct {
		name      string
		c         *testClient
		resources []string
	}{
		{"unregistered", jwtApp, []string{"https://elsewhere.example.com/"}},
		{"unregistered for this app", opaqueApp, []string{resReports}},
		{"any for an app with none", plainApp, []string{resOrders}},
		{"fragment", jwtApp, []string{resOrders + "#frag"}},
		{"empty fragment", jwtApp, []string{resOrders + "#"}},
		{"relative", jwtApp, []string{"/orders"}},
		{"not a URI", jwtApp, []string{"orders api"}},
		{"too many", jwtApp, tooMany},
		{"too long", jwtApp, []string{resOrders + strings.Repeat("a", 600)}},
	} {
		t.Run("refused at /authorize: "+tc.name, func(t *testing.T) {
			p := newBrowser(t).get(authURL(tc.c, "st-refused", tc.resources))
			res := landed(t, p, tc.c.RedirectURI)
			if res.Error != "invalid_target" || res.State != "st-refused" || res.Code != "" || res.Iss != srv.URL {
				t.Errorf("landed with %+v, want invalid_target with the state and iss", res)
			}
		})
		t.Run("refused at the token endpoint: "+tc.name, func(t *testing.T) {
			form := url.Values{"grant_type": {"client_credentials"}, "resource": tc.resources}
			status, h, m := tc.c.tokenPost(form, true)
			if status != http.StatusBadRequest || m["error"] != "invalid_target" || m["access_token"] != nil {
				t.Errorf("client_credentials: %d %v, want 400 invalid_target", status, m)
			}
			if h.Get("Cache-Control") != "no-store" {
				t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
			}
		})
	}
	// A refused resource goes back to the app only once its redirect_uri
	// is known good (RFC 6749 §4.1.2.1): with another one, the person gets
	// the error page, never a redirect, however the resource is refused.
	t.Run("refused with a bad redirect_uri: the error page", func(t *testing.T) {
		for _, resource := range []string{"https://elsewhere.example.com/", resOrders + "#frag", "/orders", resOrders} {
			u := strings.Replace(authURL(jwtApp, "st-bad", []string{resource}), url.QueryEscape(jwtApp.RedirectURI), url.QueryEscape("https://evil.example.com/cb"), 1)
			if !strings.Contains(u, "evil.example.com") {
				t.Fatalf("no redirect_uri replaced in %s", u)
			}
			p := newBrowser(t).get(u)
			if p.Location != "" || p.Status < 400 {
				t.Errorf("resource %q with a bad redirect_uri: %d, Location %q", resource, p.Status, p.Location)
			}
		}
	})
	t.Run("refused at the code exchange: malformed", func(t *testing.T) {
		code, verifier := signInFor(t, jwtApp, resOrders)
		_, err := jwtApp.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(verifier), oauth2.SetAuthURLParam("resource", "/orders"))
		if oauthErr(err) != "invalid_target" {
			t.Errorf("exchange with a relative resource: %v, want invalid_target", err)
		}
	})

	// Seeded random resource lists at the token endpoint: never a 5xx; a
	// token exactly when every value is granted (client_credentials: every
	// registered one) within the bounds, otherwise 400 invalid_target.
	t.Run("random resource lists at the token endpoint", func(t *testing.T) {
		pool := []string{resOrders, resFiles, resReports, "https://elsewhere.example/", resOrders + "#", "/orders", "", "%zz",
			"urn:", "https://bücher.example/", "\x00", resOrders + strings.Repeat("r", 300)}
		tok := flow(jwtApp, []string{resOrders, resFiles})
		granted := []string{resOrders, resFiles}
		rng := rand.New(rand.NewPCG(8, 707))
		seen := map[string]int{}
		for i := 0; i < 200 && !t.Failed(); i++ {
			var picked []string
			for k := rng.IntN(11); k > 0; k-- {
				picked = append(picked, pool[rng.IntN(len(pool))])
			}
			form := url.Values{"grant_type": {"client_credentials"}}
			allowed := []string{resOrders, resFiles, resReports}
			if i%2 == 0 {
				form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
				allowed = granted
			}
			form["resource"] = picked
			total := 0
			for _, p := range picked {
				total += len(p)
			}
			good := len(picked) <= 8 && total <= 512 && !slices.ContainsFunc(picked, func(p string) bool { return !slices.Contains(allowed, p) })
			status, _, m := jwtApp.tokenPost(form, true)
			switch {
			case status >= 500:
				t.Fatalf("%v: %d %v", form, status, m)
			case good && status != http.StatusOK:
				t.Fatalf("%v: %d %v, want a token", picked, status, m)
			case !good && (status != http.StatusBadRequest || m["error"] != "invalid_target"):
				t.Fatalf("%v: %d %v, want 400 invalid_target", picked, status, m)
			}
			if status == http.StatusOK {
				want := picked
				if len(picked) == 0 {
					want = granted
					if form.Get("grant_type") == "client_credentials" {
						want = []string{jwtApp.ID}
					}
				}
				if got := audiences(jwtClaims(t, srv, m["access_token"].(string))["aud"]); !slices.Equal(got, distinctOf(want)) {
					t.Fatalf("%v: aud %v", picked, got)
				}
				if rt, ok := m["refresh_token"].(string); ok {
					tok.RefreshToken = rt
				}
			}
			seen[fmt.Sprint(status)]++
		}
		if seen["200"] == 0 || seen["400"] == 0 {
			t.Errorf("the seed reached %v; want both tokens and refusals", seen)
		}
	})

	// config.toml, the management API and the console set an app's
	// resources under the same rules.
	t.Run("settings", func(t *testing.T) {
		if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/clients/static-app", rw, "", ""); status != http.StatusOK ||
			!slices.Equal(toStrings(body["resources"]), []string{resOrders, "urn:example:static"}) {
			t.Errorf("the static app from config.toml: %d %v", status, body)
		}
		for _, bad := range []string{`["/relative"]`, `["https://a.example/#f"]`, `["not a uri"]`, `[""]`, `["https://a.example/` + strings.Repeat("a", 600) + `"]`} {
			body := `{"id":"r","redirect_uris":["https://r.example/cb"],"resources":` + bad + `}`
			if status, _, m := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", body); status != http.StatusBadRequest || m["field"] != "resources" {
				t.Errorf("create with resources %s: %d %v, want the field named", bad, status, m)
			}
		}
		status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
			`{"id":"r","redirect_uris":["https://r.example/cb"],"resources":["`+resOrders+`","`+resOrders+`"," `+resFiles+` "]}`)
		client, _ := body["client"].(map[string]any)
		if status != http.StatusCreated || !slices.Equal(toStrings(client["resources"]), []string{resOrders, resFiles}) {
			t.Fatalf("create with resources: %d %v", status, body)
		}
		status, _, body = apiCall(t, srv, http.MethodPatch, "/api/v1/clients/r", rw, "application/json", `{"resources":[]}`)
		if status != http.StatusOK || len(toStrings(body["resources"])) != 0 {
			t.Errorf("patch clearing the resources: %d %v", status, body)
		}
		if c, err := srv.Main.Store.GetClient(context.Background(), "r"); err != nil || len(c.Resources) != 0 {
			t.Errorf("the app after the patch: %v %v", c.Resources, err)
		}
		b := newBrowser(t)
		signInPortal(t, srv, b, "root")
		form := url.Values{"id": {"console-app"}, "name": {"Console"}, "type": {"confidential"}, "grant_types": {"authorization_code"},
			"redirect_uris": {"https://console.example/cb"}, "resources": {resOrders + "\r\n" + resReports + "\r\n"}}
		if p := submitForm(t, b, b.get(srv.URL+"/admin/apps/new"), "/admin/apps/new", form); p.Status >= 400 {
			t.Fatalf("create in the console: %d %s", p.Status, truncateBody(p.Body))
		}
		c, err := srv.Main.Store.GetClient(context.Background(), "console-app")
		if err != nil || !slices.Equal(c.Resources, []string{resOrders, resReports}) {
			t.Errorf("the console's app: %v, %v", c.Resources, err)
		}
		if p := b.get(srv.URL + "/admin/apps/console-app"); !strings.Contains(p.Body, resOrders+"\n"+resReports+"</textarea>") {
			t.Errorf("the app page does not show the resources")
		}
	})

	t.Run("signed request objects carry resources", func(t *testing.T) {
		params, verifier := objectParams(jwtApp)
		params["resource"] = []string{resOrders, resFiles}
		object := requestObject(t, jwtKey.signing(), jwtApp.ID, srv.URL, params)
		// A resource beside the object is ignored (RFC 9101 §5).
		b := newBrowser(t)
		p := b.get(jwtApp.objectURI(object, url.Values{"resource": {resReports}}))
		res := landed(t, jwtApp.finish(b, p, "alice"), jwtApp.RedirectURI)
		tok, err := jwtApp.oauth.Exchange(context.Background(), res.Code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if got := audiences(jwtClaims(t, srv, tok.AccessToken)["aud"]); !slices.Equal(got, []string{resOrders, resFiles}) {
			t.Errorf("access token aud %v, want the object's resources", got)
		}
		params, _ = objectParams(jwtApp)
		params["resource"] = "https://elsewhere.example.com/"
		object = requestObject(t, jwtKey.signing(), jwtApp.ID, srv.URL, params)
		res = landed(t, newBrowser(t).get(jwtApp.objectURI(object, nil)), jwtApp.RedirectURI)
		if res.Error != "invalid_target" || res.State != params["state"] {
			t.Errorf("an object with an unregistered resource: %+v, want invalid_target with its state", res)
		}
	})

	t.Run("device code grant with a resource", func(t *testing.T) {
		// The device asks at the device authorization endpoint (RFC 8628
		// §3.1), as an app does at /authorize; its polls may narrow that,
		// never widen it (device_test.go has the rest).
		tv := srv.createClient(account.NewClient{ID: "tv-res", Name: "TV", AccessTokenJWT: true,
			GrantTypes: []string{account.GrantDeviceCode, account.GrantRefreshToken}, Resources: []string{resOrders, resFiles}})
		tv.oauth.Scopes = []string{"openid", "offline_access"}
		da, err := tv.oauth.DeviceAuth(context.Background(), oauth2.SetAuthURLParam("client_secret", tv.Secret), oauth2.SetAuthURLParam("resource", resFiles))
		if err != nil {
			t.Fatalf("device authorization: %v", err)
		}
		b := newBrowser(t)
		p := b.get(da.VerificationURIComplete)
		if isLoginPage(p) {
			p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
		}
		if p = postPage(b, p, "/device", url.Values{"user_code": {da.UserCode}}); !strings.Contains(p.Body, `value="approve"`) {
			t.Fatalf("decision page: %d %s", p.Status, truncateBody(p.Body))
		}
		postPage(b, p, "/device", url.Values{"user_code": {formFields(p.Body).Get("user_code")}, "decision": {"approve"}})
		poll := url.Values{"grant_type": {account.GrantDeviceCode}, "device_code": {da.DeviceCode}}
		for _, r := range []string{resReports, resOrders} { // not registered; registered but not asked for
			poll["resource"] = []string{r}
			if status, _, m := tv.tokenPost(poll, true); status != http.StatusBadRequest || m["error"] != "invalid_target" {
				t.Fatalf("poll for %s: %d %v, want 400 invalid_target", r, status, m)
			}
		}
		// The refusals did not spend the code.
		delete(poll, "resource")
		status, _, m := tv.tokenPost(poll, true)
		if status != http.StatusOK {
			t.Fatalf("poll for the request's resource: %d %v", status, m)
		}
		if got := audiences(jwtClaims(t, srv, m["access_token"].(string))["aud"]); !slices.Equal(got, []string{resFiles}) {
			t.Errorf("device access token aud %v, want [%s]", got, resFiles)
		}
		if id, err := tv.verifier.Verify(context.Background(), m["id_token"].(string)); err != nil || !slices.Equal(id.Audience, []string{tv.ID}) {
			t.Errorf("device ID token: %v %v, want aud [%s]", err, id, tv.ID)
		}
		status, refreshed := refresh(tv, &oauth2.Token{RefreshToken: m["refresh_token"].(string)}, resOrders)
		if status != http.StatusBadRequest || refreshed["error"] != "invalid_target" {
			t.Errorf("refresh widening a device family: %d %v, want 400 invalid_target", status, refreshed)
		}
		status, refreshed = refresh(tv, &oauth2.Token{RefreshToken: m["refresh_token"].(string)})
		if status != http.StatusOK || !slices.Equal(audiences(jwtClaims(t, srv, refreshed["access_token"].(string))["aud"]), []string{resFiles}) {
			t.Errorf("refresh of a device family: %d %v", status, refreshed)
		}
	})

	// An app's token for other resources does not open the management
	// API, even with the admin scope: those resource servers hold it.
	t.Run("management API refuses tokens for other resources", func(t *testing.T) {
		admin := srv.createClient(account.NewClient{ID: "admin-job", GrantTypes: []string{account.GrantClientCredentials},
			AllowedScopes: []string{account.ScopeAdmin}, Resources: []string{resOrders}})
		cc := clientcredentials.Config{ClientID: admin.ID, ClientSecret: admin.Secret, TokenURL: srv.URL + "/oauth/token", Scopes: []string{account.ScopeAdmin}}
		own, err := cc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if status, _, m := apiCall(t, srv, http.MethodGet, "/api/v1/clients/admin-job", own.AccessToken, "", ""); status != http.StatusOK {
			t.Fatalf("the app's own token: %d %v", status, m)
		}
		cc.EndpointParams = url.Values{"resource": {resOrders}}
		forOrders, err := cc.Token(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if status, _, m := apiCall(t, srv, http.MethodGet, "/api/v1/clients/admin-job", forOrders.AccessToken, "", ""); status != http.StatusUnauthorized {
			t.Errorf("a token for %s at the management API: %d %v, want 401", resOrders, status, m)
		}
	})

	// The JWT's audience is handed to zitadel per request (jwtAudience):
	// concurrent code exchanges and refreshes, and a refresh token shown
	// twice at once (the second a retry within the reuse grace, answered
	// from the successor), each get the resources they asked for, and
	// every ID token stays the app's.
	t.Run("concurrent grants each get their own audience", func(t *testing.T) {
		want := [][]string{{resOrders}, {resFiles}, {resOrders, resFiles}, {resReports}}
		type grant struct {
			code, verifier string
			tok            *oauth2.Token
		}
		grants := make([]grant, len(want))
		for i, w := range want {
			grants[i].code, grants[i].verifier = signInFor(t, jwtApp, w...)
		}
		check := func(what string, status int, m map[string]any, aud []string) {
			if status != http.StatusOK {
				t.Errorf("%s: %d %v", what, status, m)
				return
			}
			if got := audiences(jwtClaims(t, srv, m["access_token"].(string))["aud"]); !slices.Equal(got, aud) {
				t.Errorf("%s: access token aud %v, want %v", what, got, aud)
			}
			if id, err := jwtApp.verifier.Verify(context.Background(), m["id_token"].(string)); err != nil || !slices.Equal(id.Audience, []string{jwtApp.ID}) {
				t.Errorf("%s: ID token %v %v, want aud [%s]", what, err, id, jwtApp.ID)
			}
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		for i := range grants {
			wg.Add(1)
			go func() {
				defer wg.Done()
				form := url.Values{"grant_type": {"authorization_code"}, "code": {grants[i].code}, "code_verifier": {grants[i].verifier},
					"redirect_uri": {jwtApp.RedirectURI}}
				status, _, m := jwtApp.tokenPost(form, true)
				mu.Lock()
				defer mu.Unlock()
				check(fmt.Sprintf("code exchange %d", i), status, m, want[i])
				if rt, _ := m["refresh_token"].(string); rt != "" {
					grants[i].tok = &oauth2.Token{RefreshToken: rt}
				}
			}()
		}
		wg.Wait()
		for i, g := range grants {
			if g.tok == nil {
				t.Fatalf("grant %d has no refresh token", i)
			}
			// Twice at once, narrowed differently where there is a choice.
			for j, narrow := range [][]string{want[i][:1], want[i][len(want[i])-1:]} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					status, m := refresh(jwtApp, g.tok, narrow...)
					mu.Lock()
					defer mu.Unlock()
					check(fmt.Sprintf("refresh %d.%d", i, j), status, m, narrow)
				}()
			}
		}
		wg.Wait()
	})

	// Where the features meet: a DPoP proof at the token endpoint and an
	// app's custom access-token claims beside the resources. The JWT keeps
	// its cnf and custom claim with the resources as aud, the ID token is
	// the app's, and an opaque token's introspection says the same.
	t.Run("with DPoP and custom claims", func(t *testing.T) {
		mapping := []storage.ClaimMapping{{Claim: "login", Source: "username", Scope: "profile", In: []string{"id_token", "access_token"}}}
		jwtDPoP := srv.createClient(account.NewClient{ID: "dpop-res-jwt", Secret: tokenExchangeSecret, SkipConsent: true, AccessTokenJWT: true,
			GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken}, Resources: []string{resOrders, resFiles}, CustomClaims: mapping})
		opaqueDPoP := srv.createClient(account.NewClient{ID: "dpop-res-opaque", Secret: tokenExchangeSecret, SkipConsent: true,
			GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken}, Resources: []string{resOrders, resFiles}, CustomClaims: mapping})
		for _, c := range []*testClient{jwtDPoP, opaqueDPoP} {
			c.oauth.Scopes = append(c.oauth.Scopes, oidc.ScopeOfflineAccess)
			key := newDPoPKey(t)
			post := func(form url.Values) map[string]any {
				t.Helper()
				status, _, m := dpopPost(c, "/oauth/token", form, key.proof(t, http.MethodPost, srv.URL+"/oauth/token", ""))
				if status != http.StatusOK {
					t.Fatalf("%s: token request: %d %v", c.ID, status, m)
				}
				return m
			}
			checkTokens := func(what string, m map[string]any, aud []string) {
				t.Helper()
				access := m["access_token"].(string)
				claims := introspect(c, access)
				if c.ID == jwtDPoP.ID {
					claims = jwtClaims(t, srv, access)
				}
				cnf, _ := claims["cnf"].(map[string]any)
				if got := audiences(claims["aud"]); !slices.Equal(got, aud) || cnf["jkt"] != key.jkt || claims["login"] != "alice" {
					t.Errorf("%s %s: access token aud %v cnf %v login %v, want %v, the key's jkt, alice", c.ID, what, got, cnf, claims["login"], aud)
				}
				id, err := c.verifier.Verify(context.Background(), m["id_token"].(string))
				var idClaims map[string]any
				if err == nil {
					err = id.Claims(&idClaims)
				}
				if err != nil || !slices.Equal(id.Audience, []string{c.ID}) || idClaims["login"] != "alice" {
					t.Errorf("%s %s: ID token %v %v, want aud [%s] and login", c.ID, what, err, idClaims, c.ID)
				}
			}
			code, verifier := signInFor(t, c, resOrders, resFiles)
			m := post(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {c.RedirectURI}})
			checkTokens("code", m, []string{resOrders, resFiles})
			m = post(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {m["refresh_token"].(string)}, "resource": {resFiles}})
			checkTokens("refresh", m, []string{resFiles})
			access := m["access_token"].(string)
			if status, _, info := dpopUserinfo(srv, http.MethodGet, "DPoP", access, key.proof(t, http.MethodGet, srv.URL+"/userinfo", access)); status != http.StatusUnauthorized {
				t.Errorf("%s: userinfo with a DPoP token for %s: %d %v, want 401", c.ID, resFiles, status, info)
			}
		}
	})

	// An admin who takes a resource from an app stops its grants from
	// reaching it: a sign-in's code and a refresh family keep what was
	// granted, but get tokens only for what the app may still ask for, as
	// refreshes apply the app's scopes as they are now. Given back, it
	// works again: nothing was revoked.
	t.Run("a resource taken from the app is no longer issued", func(t *testing.T) {
		app := srv.createClient(account.NewClient{ID: "shrinking-app", Secret: tokenExchangeSecret, SkipConsent: true, AccessTokenJWT: true,
			GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken}, Resources: []string{resOrders, resFiles}})
		app.oauth.Scopes = append(app.oauth.Scopes, oidc.ScopeOfflineAccess)
		setResources := func(resources ...string) {
			t.Helper()
			body, _ := json.Marshal(map[string]any{"resources": append([]string{}, resources...)})
			if status, _, m := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/"+app.ID, rw, "application/json", string(body)); status != http.StatusOK {
				t.Fatalf("patch resources: %d %v", status, m)
			}
		}
		tok := flow(app, []string{resOrders, resFiles})
		code, verifier := signInFor(t, app, resOrders, resFiles)

		setResources(resFiles)
		status, m := refresh(app, tok)
		if status != http.StatusOK {
			t.Fatalf("refresh: %d %v", status, m)
		}
		if got := audiences(jwtClaims(t, srv, m["access_token"].(string))["aud"]); !slices.Equal(got, []string{resFiles}) {
			t.Errorf("refreshed access token aud %v, want [%s] only: %s was taken from the app", got, resFiles, resOrders)
		}
		next := &oauth2.Token{RefreshToken: m["refresh_token"].(string)}
		if status, m = refresh(app, next, resOrders); status != http.StatusBadRequest || m["error"] != "invalid_target" {
			t.Errorf("refresh naming the taken resource: %d %v, want 400 invalid_target", status, m)
		}
		tok2, err := app.oauth.Exchange(context.Background(), code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if got := audiences(jwtClaims(t, srv, tok2.AccessToken)["aud"]); !slices.Equal(got, []string{resFiles}) {
			t.Errorf("code exchange access token aud %v, want [%s] only", got, resFiles)
		}

		// None of the family's resources left: no token, and never one
		// for the app itself, which the family was not granted.
		setResources()
		if status, m = refresh(app, next); status != http.StatusBadRequest || m["error"] != "invalid_target" || m["access_token"] != nil {
			t.Errorf("refresh with every resource taken: %d %v, want 400 invalid_target", status, m)
		}
		setResources(resOrders, resFiles)
		status, m = refresh(app, next)
		if status != http.StatusOK || !slices.Equal(audiences(jwtClaims(t, srv, m["access_token"].(string))["aud"]), []string{resOrders, resFiles}) {
			t.Errorf("refresh with the resources given back: %d %v, want both", status, m)
		}
	})

	// /userinfo is the provider's own protected resource (OpenID Connect
	// Core §5.3): a token for other resources is theirs, and one of them
	// must not read the person's claims with it (RFC 8707 §3).
	t.Run("userinfo refuses tokens for other resources", func(t *testing.T) {
		for _, c := range []*testClient{jwtApp, opaqueApp} {
			tok := flow(c, []string{resOrders})
			if status, _, m := srv.userinfo(tok.AccessToken); status != http.StatusUnauthorized {
				t.Errorf("%s: userinfo with a token for %s: %d %v, want 401", c.ID, resOrders, status, m)
			}
			own := flow(c, nil)
			if status, _, m := srv.userinfo(own.AccessToken); status != http.StatusOK || m["sub"] == nil {
				t.Errorf("%s: userinfo with the app's own token: %d %v", c.ID, status, m)
			}
		}
		// Exchanged (RFC 8693): for an app, which is an OpenID Connect
		// client too, it reads userinfo; for a resource only, it does not.
		broker := srv.createClient(account.NewClient{ID: "broker-app", Secret: tokenExchangeSecret, SkipConsent: true,
			GrantTypes:             []string{account.GrantAuthorizationCode, account.GrantTokenExchange},
			TokenExchangeAudiences: []string{resOrders, opaqueApp.ID}})
		subject := flow(broker, nil)
		for target, want := range map[string]int{resOrders: http.StatusUnauthorized, opaqueApp.ID: http.StatusOK} {
			status, _, m := broker.tokenPost(exchangeForm(subject.AccessToken, typeAccessToken, "audience", target), true)
			if status != http.StatusOK {
				t.Fatalf("exchange for %s: %d %v", target, status, m)
			}
			if status, _, info := srv.userinfo(m["access_token"].(string)); status != want {
				t.Errorf("userinfo with a token exchanged for %s: %d %v, want %d", target, status, info, want)
			}
		}
	})

	t.Run("token exchange checks resources the same way", func(t *testing.T) {
		status, _, m := jwtApp.tokenPost(exchangeForm("x", typeAccessToken, "resource", resOrders+"#f"), true)
		if status != http.StatusBadRequest || m["error"] != "invalid_target" {
			t.Errorf("exchange for a resource with a fragment: %d %v, want 400 invalid_target", status, m)
		}
	})

	t.Run("pushed requests carry resources", func(t *testing.T) {
		verifier, challenge := pkce()
		pushed := url.Values{"response_type": {"code"}, "redirect_uri": {jwtApp.RedirectURI}, "scope": {"openid"}, "state": {"st-par"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {resOrders, resFiles}}
		status, _, m := jwtApp.push(pushed)
		if status != http.StatusCreated {
			t.Fatalf("push: %d %v", status, m)
		}
		b := newBrowser(t)
		res := landed(t, jwtApp.finish(b, b.get(jwtApp.authorizeURI(m["request_uri"].(string), nil)), "alice"), jwtApp.RedirectURI)
		tok, err := jwtApp.oauth.Exchange(context.Background(), res.Code, oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if got := audiences(jwtClaims(t, srv, tok.AccessToken)["aud"]); !slices.Equal(got, []string{resOrders, resFiles}) {
			t.Errorf("access token aud %v, want both pushed resources", got)
		}
		pushed["resource"] = []string{"https://elsewhere.example.com/"}
		status, _, m = jwtApp.push(pushed)
		if status != http.StatusBadRequest || m["error"] != "invalid_target" {
			t.Errorf("push of an unregistered resource: %d %v, want 400 invalid_target", status, m)
		}
		pushed["resource"] = []string{resOrders + "#frag"}
		status, _, m = jwtApp.push(pushed)
		if status != http.StatusBadRequest || m["error"] != "invalid_target" {
			t.Errorf("push of a resource with a fragment: %d %v, want 400 invalid_target", status, m)
		}
	})
}

// distinctOf is list without repeats.
func distinctOf(list []string) []string {
	var out []string
	for _, v := range list {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
