package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
)

// registrationCall sends a dynamic client registration request (RFC 7591,
// RFC 7592) with a bearer token and decodes the JSON answer.
func registrationCall(t *testing.T, srv *testServer, method, target, token string, body any) (int, http.Header, map[string]any) {
	t.Helper()
	var raw string
	switch b := body.(type) {
	case nil:
	case string:
		raw = b
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		raw = string(enc)
	}
	if !strings.HasPrefix(target, "http") {
		target = srv.URL + target
	}
	req, _ := http.NewRequest(method, target, strings.NewReader(raw))
	if raw != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return doJSON(t, bareClient, req)
}

// initialAccessToken makes an initial access token through the management
// API and returns it with its ID.
func initialAccessToken(t *testing.T, srv *testServer, adminToken string, maxUses int, hold bool) (token, id string) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"name": "t", "expires_in": 3600, "max_uses": maxUses, "hold_for_approval": hold})
	status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/registration-tokens", adminToken, "application/json", string(body))
	if status != http.StatusCreated {
		t.Fatalf("create an initial access token: %d %v", status, out)
	}
	token, _ = out["token"].(string)
	id, _ = out["id"].(string)
	if !strings.HasPrefix(token, account.InitialAccessTokenPrefix) || id == "" {
		t.Fatalf("initial access token answer: %v", out)
	}
	return token, id
}

// webMetadata is the registration of a web app that signs people in.
func webMetadata(name string) map[string]any {
	return map[string]any{
		"client_name": name, "redirect_uris": []string{"http://127.0.0.1:9/callback/" + name},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"scope": "openid profile email offline_access", "post_logout_redirect_uris": []string{"https://app.example/bye"},
		"id_token_signed_response_alg": "ES256", "backchannel_logout_uri": "https://app.example/logout",
		"software_id": "ignored: metadata Keyport does not know", "logo_uri": "https://app.example/logo.png",
	}
}

// TestDynamicRegistration runs dynamic client registration (RFC 7591) and
// its management protocol (RFC 7592) against one real server, with
// go-oidc and x/oauth2 signing in with the credentials it hands out.
func TestDynamicRegistration(t *testing.T) {
	// Sector documents for pairwise registrations, on loopback https;
	// sectorFetches counts the fetches.
	var sectorFetches atomic.Int32
	sectors := sectorServer(t, map[string]string{
		"/pw.json":    `["http://127.0.0.1:9/callback/pw", "http://localhost:9/callback/pw"]`,
		"/other.json": `["https://elsewhere.example/cb"]`,
	}, func(string) { sectorFetches.Add(1) })
	// The log, for what a registering app is not told.
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{logs: logs, mutate: func(c *config.Config) {
		c.OAuth.DynamicRegistration, c.OAuth.DeviceFlow = true, true
		c.ClientAuth.JWKSAllowNetworks = []string{"127.0.0.0/8"}
		// Above registration's own 64 KiB, so the oversized body below
		// meets that bound and not the portal's.
		c.Limits.MaxBodyBytes = 1 << 20
	}})
	srv.createUser("rex", false)
	adminToken, readOnly, _ := adminTokens(t, srv)
	ctx := context.Background()

	t.Run("discovery advertises the endpoint", func(t *testing.T) {
		p, err := oidc.NewProvider(ctx, srv.URL)
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			RegistrationEndpoint string `json:"registration_endpoint"`
		}
		if err := p.Claims(&claims); err != nil || claims.RegistrationEndpoint != srv.URL+"/oauth/register" {
			t.Errorf("registration_endpoint %q (%v)", claims.RegistrationEndpoint, err)
		}
	})

	t.Run("register and sign in", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		status, header, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("web"))
		if status != http.StatusCreated {
			t.Fatalf("register: %d %v", status, out)
		}
		id, _ := out["client_id"].(string)
		secret, _ := out["client_secret"].(string)
		regToken, _ := out["registration_access_token"].(string)
		if id == "" || len(secret) < 32 || !strings.HasPrefix(regToken, account.RegistrationAccessTokenPrefix) {
			t.Fatalf("credentials: %v", out)
		}
		if out["registration_client_uri"] != srv.URL+"/oauth/register/"+id || header.Get("Location") != out["registration_client_uri"] {
			t.Errorf("registration_client_uri %v, Location %q", out["registration_client_uri"], header.Get("Location"))
		}
		if out["client_secret_expires_at"] != 0.0 || out["client_id_issued_at"] == nil || header.Get("Cache-Control") != "no-store" {
			t.Errorf("client_secret_expires_at %v, client_id_issued_at %v, Cache-Control %q", out["client_secret_expires_at"], out["client_id_issued_at"], header.Get("Cache-Control"))
		}
		// The metadata as stored: RFC 7591's default method, and nothing
		// Keyport does not know.
		if out["token_endpoint_auth_method"] != "client_secret_basic" || out["client_name"] != "web" || out["id_token_signed_response_alg"] != "ES256" ||
			out["scope"] != "openid profile email offline_access" || out["software_id"] != nil || out["logo_uri"] != nil {
			t.Errorf("metadata: %v", out)
		}
		// Only hashes are stored.
		c, err := srv.Main.Store.GetClient(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if c.SecretHash != account.HashSecret(secret) || c.RegistrationAccessTokenHash != account.HashSecret(regToken) || c.PendingApproval || c.SkipConsent {
			t.Errorf("stored: %+v", c)
		}
		raw, _ := json.Marshal(c)
		if strings.Contains(string(raw), secret) || strings.Contains(string(raw), regToken) {
			t.Error("a plain secret is stored")
		}

		rp := srv.rp(id, secret, "http://127.0.0.1:9/callback/web")
		rp.oauth.Scopes = append(rp.oauth.Scopes, "offline_access")
		tok := rp.tokens("rex")
		rawID, _ := tok.Extra("id_token").(string)
		idToken, err := rp.provider.Verifier(&oidc.Config{ClientID: id, SupportedSigningAlgs: []string{"ES256"}}).Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("ID token: %v", err)
		}
		if idToken.Audience[0] != id || tok.RefreshToken == "" {
			t.Errorf("aud %v, refresh token %q", idToken.Audience, tok.RefreshToken)
		}
	})

	// OpenID Connect Dynamic Client Registration 1.0 §2: an app that
	// registers without id_token_signed_response_alg gets RS256, "the
	// default, if omitted", which the answer and GET say and which its ID
	// tokens are signed with: a relying party that follows the spec
	// (openid-client, say) accepts nothing else.
	t.Run("id_token_signed_response_alg defaults to RS256", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		meta := webMetadata("rs-default")
		delete(meta, "id_token_signed_response_alg")
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta)
		if status != http.StatusCreated || out["id_token_signed_response_alg"] != "RS256" {
			t.Fatalf("register without id_token_signed_response_alg: %d %v", status, out)
		}
		id, _ := out["client_id"].(string)
		regToken, _ := out["registration_access_token"].(string)
		if status, _, got := registrationCall(t, srv, http.MethodGet, out["registration_client_uri"].(string), regToken, nil); status != http.StatusOK || got["id_token_signed_response_alg"] != "RS256" {
			t.Errorf("read: %d %v", status, got)
		}
		rp := srv.rp(id, out["client_secret"].(string), "http://127.0.0.1:9/callback/rs-default")
		rawID, _ := rp.tokens("rex").Extra("id_token").(string)
		if _, err := rp.provider.Verifier(&oidc.Config{ClientID: id, SupportedSigningAlgs: []string{"RS256"}}).Verify(ctx, rawID); err != nil {
			t.Errorf("the ID token, verified as RS256: %v", err)
		}
	})

	// OpenID Connect Dynamic Client Registration 1.0 §2: subject_type and
	// sector_identifier_uri, the document checked as for an
	// administrator's app, and the sub the app then gets.
	t.Run("pairwise subjects", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 2, false)
		meta := webMetadata("pw")
		meta["redirect_uris"] = []string{"http://127.0.0.1:9/callback/pw", "http://localhost:9/callback/pw"}
		meta["subject_type"] = "pairwise"

		// A document that does not list the redirect URIs, and one not
		// served at all: refused, and the token's uses are not spent.
		for _, doc := range []string{"/other.json", "/missing.json"} {
			meta["sector_identifier_uri"] = sectors.URL + doc
			status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta)
			if status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" || !strings.Contains(fmt.Sprint(out["error_description"]), "sector_identifier_uri") {
				t.Errorf("sector document %s: %d %v", doc, status, out)
			}
		}
		// Several redirect hosts and no sector: refused (OIDC Core §8.1).
		// (127.0.0.1 and localhost are not two: loopback is the app's own
		// sector, account.Sector.)
		delete(meta, "sector_identifier_uri")
		loopback := meta["redirect_uris"]
		meta["redirect_uris"] = []string{"https://a.example/cb", "https://b.example/cb"}
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta); status != http.StatusBadRequest {
			t.Errorf("two redirect hosts without a sector: %d %v", status, out)
		}
		meta["redirect_uris"] = loopback

		meta["sector_identifier_uri"] = sectors.URL + "/pw.json"
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta)
		if status != http.StatusCreated || out["subject_type"] != "pairwise" || out["sector_identifier_uri"] != sectors.URL+"/pw.json" {
			t.Fatalf("register a pairwise app: %d %v", status, out)
		}
		id, _ := out["client_id"].(string)
		secret, _ := out["client_secret"].(string)
		regToken, _ := out["registration_access_token"].(string)
		rp := srv.rp(id, secret, "http://127.0.0.1:9/callback/pw")
		rex, err := srv.Main.Store.GetUserByLogin(ctx, "rex")
		if err != nil {
			t.Fatal(err)
		}
		sub := idTokenSub(t, rp, rp.tokens("rex"))
		if sub == rex.ID || sub == "" {
			t.Errorf("a pairwise app got sub %q (the user ID is %q)", sub, rex.ID)
		}

		// An update to a document that does not list the redirect URIs is
		// refused and changes nothing; the second use was never spent, so
		// the same initial access token still registers a public app.
		meta["sector_identifier_uri"] = sectors.URL + "/other.json"
		meta["client_id"] = id
		if status, _, out := registrationCall(t, srv, http.MethodPut, "/oauth/register/"+id, regToken, meta); status != http.StatusBadRequest {
			t.Errorf("update to a sector document without the redirect URIs: %d %v", status, out)
		}
		if c, err := srv.Main.Store.GetClient(ctx, id); err != nil || c.SectorIdentifierURI != sectors.URL+"/pw.json" {
			t.Errorf("after a refused update: %q (%v)", c.SectorIdentifierURI, err)
		}
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("pub")); status != http.StatusCreated || out["subject_type"] != "public" {
			t.Errorf("a public registration with the same token: %d %v", status, out)
		}
	})

	// A sector document that cannot be fetched, at registration or in an
	// update: the app is told so, never what the SSRF guard, the resolver
	// or the network said, which would make registration a probe of the
	// server's network and its internal names and addresses; the log says
	// it. What is wrong with the document itself the app is told.
	t.Run("a sector document that cannot be fetched names no address", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 1, false)
		meta := webMetadata("pw-unfetched")
		meta["redirect_uris"] = []string{"http://127.0.0.1:9/callback/pw", "http://localhost:9/callback/pw"}
		meta["subject_type"] = "pairwise"
		// told is what the app was told about sector document uri, which
		// must say it could not be fetched and no more.
		told := func(what string, status int, out map[string]any) {
			t.Helper()
			desc := fmt.Sprint(out["error_description"])
			if status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" || !strings.Contains(desc, "sector_identifier_uri could not be fetched") {
				t.Errorf("%s: %d %v, want 400 invalid_client_metadata saying the sector_identifier_uri could not be fetched", what, status, out)
			}
			raw, _ := json.Marshal(out)
			if words := regexp.MustCompile(`\d+\.\d+\.\d+\.\d+|private|refused|lookup|no such host|dial|tcp|misbehaving|timeout|keyport-test\.invalid`).FindString(string(raw)); words != "" {
				t.Errorf("%s: the answer says %q: %s", what, words, raw)
			}
		}
		const private, unresolvable = "https://10.1.2.3/sector.json", "https://sector.keyport-test.invalid/sector.json"
		for _, uri := range []string{private, unresolvable} {
			meta["sector_identifier_uri"] = uri
			status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta)
			told("registration with "+uri, status, out)
		}
		if n := logs.Count("could not be fetched", "client_name=pw-unfetched", "uri="+private, "10.1.2.3 is a private address"); n != 1 {
			t.Errorf("%d log lines say why %s was not fetched, want 1", n, private)
		}
		if n := logs.Count("could not be fetched", "client_name=pw-unfetched", "uri="+unresolvable, "keyport-test.invalid"); n != 1 {
			t.Errorf("%d log lines say why %s was not fetched, want 1", n, unresolvable)
		}

		// A document that does not list a redirect URI says which.
		meta["sector_identifier_uri"] = sectors.URL + "/other.json"
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta); status != http.StatusBadRequest ||
			!strings.Contains(fmt.Sprint(out["error_description"]), "does not list the redirect URI http://127.0.0.1:9/callback/pw") {
			t.Errorf("a sector document without the redirect URIs: %d %v", status, out)
		}

		// The refusals spent no use of the token.
		meta["sector_identifier_uri"] = sectors.URL + "/pw.json"
		status, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta)
		if status != http.StatusCreated {
			t.Fatalf("register a pairwise app: %d %v", status, reg)
		}
		id, _ := reg["client_id"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		before, _ := srv.Main.Store.GetClient(ctx, id)
		meta["client_id"] = id
		for _, uri := range []string{private, unresolvable} {
			meta["sector_identifier_uri"] = uri
			status, _, out := registrationCall(t, srv, http.MethodPut, "/oauth/register/"+id, regToken, meta)
			told("update to "+uri, status, out)
		}
		if after, _ := srv.Main.Store.GetClient(ctx, id); !reflect.DeepEqual(before, after) {
			t.Errorf("refused updates changed the app: %q", after.SectorIdentifierURI)
		}
	})

	t.Run("private_key_jwt", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		key := newRPKey(t, jose.ES256, "k1")
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, map[string]any{
			"client_name": "signer", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks": json.RawMessage(key.jwks(t)),
		})
		if status != http.StatusCreated {
			t.Fatalf("register: %d %v", status, out)
		}
		id, _ := out["client_id"].(string)
		if out["client_secret"] != nil || out["client_secret_expires_at"] != nil || out["token_endpoint_auth_method"] != "private_key_jwt" || out["jwks"] == nil {
			t.Errorf("a private_key_jwt app's answer: %v", out)
		}
		form := assertionParams(assertion(t, key.signing(), id, srv.URL+"/oauth/token"))
		form.Set("grant_type", "client_credentials")
		status, _, tok := srv.postForm("/oauth/token", form, "", "")
		if status != http.StatusOK || tok["access_token"] == nil {
			t.Errorf("client_credentials with a signed assertion: %d %v", status, tok)
		}
	})

	t.Run("read, update and delete (RFC 7592)", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("managed"))
		id, _ := reg["client_id"].(string)
		secret, _ := reg["client_secret"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		uri, _ := reg["registration_client_uri"].(string)

		// RFC 7592 §3: registration_access_token and registration_client_uri
		// are REQUIRED in every client information response; the token is
		// the one presented (only its hash is kept), the secret is not shown.
		status, _, got := registrationCall(t, srv, http.MethodGet, uri, regToken, nil)
		if status != http.StatusOK || got["client_id"] != id || got["client_secret"] != nil || got["registration_access_token"] != regToken || got["registration_client_uri"] != uri ||
			!reflect.DeepEqual(got["redirect_uris"], reg["redirect_uris"]) || got["client_secret_expires_at"] != 0.0 {
			t.Fatalf("read: %d %v", status, got)
		}

		update := webMetadata("managed")
		update["client_id"], update["client_secret"] = id, secret
		update["client_name"] = "Managed Again"
		update["redirect_uris"] = []string{"https://app.example/cb"}
		status, _, got = registrationCall(t, srv, http.MethodPut, uri, regToken, update)
		if status != http.StatusOK || got["client_name"] != "Managed Again" || !reflect.DeepEqual(got["redirect_uris"], []any{"https://app.example/cb"}) ||
			got["registration_access_token"] != regToken || got["registration_client_uri"] != uri || got["client_secret"] != nil {
			t.Fatalf("update: %d %v", status, got)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.Name != "Managed Again" || c.SecretHash != account.HashSecret(secret) {
			t.Errorf("stored after the update: %+v", c)
		}

		// Refused updates change nothing.
		before, _ := srv.Main.Store.GetClient(ctx, id)
		for name, change := range map[string]func(m map[string]any){
			"another client's ID":       func(m map[string]any) { m["client_id"] = "someone-else" },
			"a wrong secret":            func(m map[string]any) { m["client_secret"] = "not-the-secret" },
			"a switch to public":        func(m map[string]any) { m["token_endpoint_auth_method"] = "none" },
			"an http redirect URI":      func(m map[string]any) { m["redirect_uris"] = []string{"http://app.example/cb"} },
			"the management API scope":  func(m map[string]any) { m["grant_types"], m["scope"] = []string{"client_credentials"}, "keyport:admin" },
			"a method without a secret": func(m map[string]any) { m["token_endpoint_auth_method"] = "client_secret_jwt" },
			"a wider scope":             func(m map[string]any) { m["scope"] = "openid profile email offline_access phone" },
		} {
			m := webMetadata("managed")
			m["client_id"] = id
			change(m)
			if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusBadRequest ||
				(out["error"] != "invalid_client_metadata" && out["error"] != "invalid_redirect_uri") {
				t.Errorf("update with %s: %d %v", name, status, out)
			}
		}
		if after, _ := srv.Main.Store.GetClient(ctx, id); !reflect.DeepEqual(before, after) {
			t.Errorf("refused updates changed the app:\n%+v\n%+v", before, after)
		}

		if status, _, out := registrationCall(t, srv, http.MethodDelete, uri, regToken, nil); status != http.StatusNoContent {
			t.Fatalf("delete: %d %v", status, out)
		}
		if _, err := srv.Main.Store.GetClient(ctx, id); err == nil {
			t.Error("the app is still there")
		}
		if status, _, out := registrationCall(t, srv, http.MethodGet, uri, regToken, nil); status != http.StatusUnauthorized || out["error"] != "invalid_token" {
			t.Errorf("read after delete: %d %v", status, out)
		}
	})

	// An app's jwks_uri must be https (http on loopback only), but an app
	// stored before that rule with an http one keeps it through RFC 7592
	// updates that repeat it, as through the management API's edits; a
	// changed http jwks_uri is refused and changes nothing.
	t.Run("an http jwks_uri stored before the https rule is kept by updates", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		meta := map[string]any{
			"client_name": "old-keys", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks_uri": "https://keys.example/old-keys.json",
		}
		status, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta)
		if status != http.StatusCreated {
			t.Fatalf("register: %d %v", status, reg)
		}
		id, _ := reg["client_id"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		uri, _ := reg["registration_client_uri"].(string)
		const legacy = "http://keys.example/old-keys.json"
		if _, err := srv.Main.Store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
			c.JWKSURI = legacy // as stored before the https rule
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}

		meta["client_id"], meta["jwks_uri"] = id, legacy
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, meta); status != http.StatusOK || out["jwks_uri"] != legacy {
			t.Errorf("update repeating the stored http jwks_uri: %d %v", status, out)
		}
		meta["client_name"] = "old-keys, renamed"
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, meta); status != http.StatusOK || out["client_name"] != "old-keys, renamed" || out["jwks_uri"] != legacy {
			t.Errorf("rename keeping the stored http jwks_uri: %d %v", status, out)
		}
		before, _ := srv.Main.Store.GetClient(ctx, id)
		meta["jwks_uri"] = "http://keys.example/new-keys.json"
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, meta); status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" {
			t.Errorf("update to another http jwks_uri: %d %v", status, out)
		}
		if after, _ := srv.Main.Store.GetClient(ctx, id); !reflect.DeepEqual(before, after) {
			t.Errorf("a refused update changed the app:\n%+v\n%+v", before, after)
		}
		// An app given an http jwks_uri is refused from the start.
		meta = map[string]any{"client_name": "new-keys", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt", "jwks_uri": legacy}
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, meta); status != http.StatusBadRequest || out["error"] != "invalid_client_metadata" {
			t.Errorf("register with an http jwks_uri: %d %v", status, out)
		}
	})

	// id_token_signed_response_alg on an RFC 7592 update: a member left out
	// is deleted (RFC 7592 §2.2), which for this one is its default, RS256
	// (OpenID Connect Dynamic Client Registration 1.0 §2), as at
	// registration. An app that gets no ID token (client_credentials alone)
	// has none stored, and when an update gives it the authorization_code
	// grant it gets the default as a registration of the same metadata
	// does.
	t.Run("id_token_signed_response_alg left out of an update", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("alg-update"))
		if reg["id_token_signed_response_alg"] != "ES256" {
			t.Fatalf("register with ES256: %v", reg)
		}
		m := webMetadata("alg-update")
		m["client_id"] = reg["client_id"]
		delete(m, "id_token_signed_response_alg")
		status, _, out := registrationCall(t, srv, http.MethodPut, reg["registration_client_uri"].(string), reg["registration_access_token"].(string), m)
		if status != http.StatusOK || out["id_token_signed_response_alg"] != "RS256" {
			t.Errorf("an ES256 app updated without id_token_signed_response_alg: %d %v", status, out)
		}

		machine := map[string]any{"client_name": "alg-machine", "grant_types": []string{"client_credentials"}}
		status, _, reg = registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, machine)
		if status != http.StatusCreated || reg["id_token_signed_response_alg"] != nil {
			t.Fatalf("register a client_credentials app: %d %v", status, reg)
		}
		signsIn := webMetadata("alg-machine")
		delete(signsIn, "id_token_signed_response_alg")
		signsIn["grant_types"] = []string{"authorization_code", "client_credentials"}
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, signsIn); status != http.StatusCreated || out["id_token_signed_response_alg"] != "RS256" {
			t.Errorf("register the same metadata: %d %v", status, out)
		}
		signsIn["client_id"] = reg["client_id"]
		status, _, out = registrationCall(t, srv, http.MethodPut, reg["registration_client_uri"].(string), reg["registration_access_token"].(string), signsIn)
		if status != http.StatusOK || out["id_token_signed_response_alg"] != "RS256" {
			t.Errorf("a client_credentials app given authorization_code by an update: %d %v", status, out)
		}
		rp := srv.rp(reg["client_id"].(string), reg["client_secret"].(string), "http://127.0.0.1:9/callback/alg-machine")
		rawID, _ := rp.tokens("rex").Extra("id_token").(string)
		if _, err := rp.provider.Verifier(&oidc.Config{ClientID: rp.ID, SupportedSigningAlgs: []string{"RS256"}}).Verify(ctx, rawID); err != nil {
			t.Errorf("its ID token, verified as RS256: %v", err)
		}
	})

	// OpenID Connect Dynamic Client Registration 1.0 §2: application_type,
	// web by default. A native app's redirect URIs are a custom scheme or
	// http on loopback; a web app's are never a custom scheme. The type is
	// kept, shown by GET (RFC 7592) and applied again by each update.
	t.Run("application_type", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		native := map[string]any{"client_name": "Native", "application_type": "native", "token_endpoint_auth_method": "none",
			"redirect_uris": []string{"com.example.app:/callback", "http://127.0.0.1:9/callback/native"}, "scope": "openid profile"}
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, native)
		if status != http.StatusCreated || out["application_type"] != "native" {
			t.Fatalf("register a native app: %d %v", status, out)
		}
		id, _ := out["client_id"].(string)
		regToken, _ := out["registration_access_token"].(string)
		uri, _ := out["registration_client_uri"].(string)
		if c, err := srv.Main.Store.GetClient(ctx, id); err != nil || c.ApplicationType != "native" {
			t.Errorf("stored application type %q (%v), want native", c.ApplicationType, err)
		}
		if status, _, got := registrationCall(t, srv, http.MethodGet, uri, regToken, nil); status != http.StatusOK || got["application_type"] != "native" {
			t.Errorf("read the native app: %d %v", status, got)
		}
		// It signs people in through its loopback redirect, with PKCE.
		rp := srv.rp(id, "", "http://127.0.0.1:9/callback/native")
		if tok := rp.tokens("rex"); tok.AccessToken == "" {
			t.Errorf("the native app's tokens: %+v", tok)
		}

		// Left out, it is web, and said so.
		status, _, web := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("typed-web"))
		if status != http.StatusCreated || web["application_type"] != "web" {
			t.Fatalf("register a web app without application_type: %d %v", status, web)
		}
		webURI, _ := web["registration_client_uri"].(string)
		webToken, _ := web["registration_access_token"].(string)
		if status, _, got := registrationCall(t, srv, http.MethodGet, webURI, webToken, nil); status != http.StatusOK || got["application_type"] != "web" {
			t.Errorf("read the web app: %d %v", status, got)
		}

		// Refused registrations make no app.
		clientsBefore, _ := srv.Main.Store.ListClients(ctx)
		with := func(change func(m map[string]any)) map[string]any {
			m := maps.Clone(native)
			change(m)
			return m
		}
		for _, c := range []struct {
			name string
			body any
			err  string
		}{
			{"a native app's https redirect URI", with(func(m map[string]any) { m["redirect_uris"] = []string{"https://app.example/cb"} }), "invalid_redirect_uri"},
			{"a native app's http redirect URI off loopback", with(func(m map[string]any) { m["redirect_uris"] = []string{"http://app.example/cb"} }), "invalid_redirect_uri"},
			{"a web app's custom scheme", with(func(m map[string]any) { m["application_type"] = "web" }), "invalid_redirect_uri"},
			{"a custom scheme without application_type (web)", with(func(m map[string]any) { delete(m, "application_type") }), "invalid_redirect_uri"},
			{"an unknown application_type", with(func(m map[string]any) { m["application_type"] = "desktop" }), "invalid_client_metadata"},
			{"application_type in capitals", with(func(m map[string]any) { m["application_type"] = "NATIVE" }), "invalid_client_metadata"},
			{"application_type of the wrong JSON type", with(func(m map[string]any) { m["application_type"] = []string{"native"} }), "invalid_client_metadata"},
		} {
			if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, c.body); status != http.StatusBadRequest || out["error"] != c.err {
				t.Errorf("%s: %d %v, want 400 %s", c.name, status, out, c.err)
			}
		}
		if clientsAfter, _ := srv.Main.Store.ListClients(ctx); len(clientsAfter) != len(clientsBefore) {
			t.Errorf("refused registrations made %d apps", len(clientsAfter)-len(clientsBefore))
		}

		// Updates (RFC 7592 §2.2) apply the type they send, web when they
		// send none: the native app cannot keep its custom scheme as web.
		before, _ := srv.Main.Store.GetClient(ctx, id)
		for name, change := range map[string]func(m map[string]any){
			"web with a custom scheme":      func(m map[string]any) { m["application_type"] = "web" },
			"no application_type":           func(m map[string]any) { delete(m, "application_type") },
			"native with an https redirect": func(m map[string]any) { m["redirect_uris"] = []string{"https://app.example/cb"} },
			"an unknown application_type":   func(m map[string]any) { m["application_type"] = "desktop" },
		} {
			m := with(change)
			m["client_id"] = id
			if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusBadRequest ||
				(out["error"] != "invalid_redirect_uri" && out["error"] != "invalid_client_metadata") {
				t.Errorf("update to %s: %d %v", name, status, out)
			}
		}
		if after, _ := srv.Main.Store.GetClient(ctx, id); !reflect.DeepEqual(before, after) {
			t.Errorf("refused updates changed the app:\n%+v\n%+v", before, after)
		}
		// Web with only its loopback URI: accepted, kept and shown.
		m := with(func(m map[string]any) {
			m["application_type"], m["redirect_uris"] = "web", []string{"http://127.0.0.1:9/callback/native"}
		})
		m["client_id"] = id
		if status, _, got := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK || got["application_type"] != "web" {
			t.Errorf("update to web: %d %v", status, got)
		}
		if status, _, got := registrationCall(t, srv, http.MethodGet, uri, regToken, nil); status != http.StatusOK || got["application_type"] != "web" {
			t.Errorf("read after the update to web: %d %v", status, got)
		}
	})

	t.Run("wrong registration access tokens", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		_, _, a := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("a"))
		_, _, b := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("b"))
		aURI, _ := a["registration_client_uri"].(string)
		bToken, _ := b["registration_access_token"].(string)
		admin := srv.createClient(account.NewClient{ID: "admins-app"})

		status, header, nobody := registrationCall(t, srv, http.MethodGet, "/oauth/register/no-such-app", bToken, nil)
		if status != http.StatusUnauthorized || nobody["error"] != "invalid_token" || !strings.Contains(header.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Fatalf("a client that does not exist: %d %v %q", status, nobody, header.Get("WWW-Authenticate"))
		}
		before, _ := srv.Main.Store.GetClient(ctx, a["client_id"].(string))
		for name, call := range map[string]struct{ method, uri, token string }{
			"another client's token":   {http.MethodGet, aURI, bToken},
			"another client's delete":  {http.MethodDelete, aURI, bToken},
			"another client's update":  {http.MethodPut, aURI, bToken},
			"a made-up token":          {http.MethodGet, aURI, account.RegistrationAccessTokenPrefix + strings.Repeat("x", 40)},
			"the initial access token": {http.MethodGet, aURI, iat},
			"an admin's app":           {http.MethodGet, "/oauth/register/" + admin.ID, bToken},
			"an admin's API token":     {http.MethodDelete, "/oauth/register/" + admin.ID, adminToken},
		} {
			var body any
			if call.method == http.MethodPut {
				m := webMetadata("stolen")
				m["client_id"] = a["client_id"]
				body = m
			}
			status, _, out := registrationCall(t, srv, call.method, call.uri, call.token, body)
			if status != http.StatusUnauthorized || !reflect.DeepEqual(out, nobody) {
				t.Errorf("%s: %d %v (a client that does not exist: %v)", name, status, out, nobody)
			}
		}
		if after, _ := srv.Main.Store.GetClient(ctx, a["client_id"].(string)); !reflect.DeepEqual(before, after) {
			t.Error("refused requests changed the app")
		}
		if _, err := srv.Main.Store.GetClient(ctx, admin.ID); err != nil {
			t.Errorf("the admin's app: %v", err)
		}
	})

	// Metadata names are case-sensitive: one Keyport knows in another case
	// is unknown metadata, ignored, not taken for the one it knows.
	t.Run("metadata names in another case", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		m := webMetadata("cased")
		m["Token_Endpoint_Auth_Method"], m["CLIENT_NAME"] = "none", "Shouted"
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
		if status != http.StatusCreated || out["token_endpoint_auth_method"] != "client_secret_basic" || out["client_secret"] == nil || out["client_name"] != "cased" {
			t.Fatalf("register with names in another case: %d %v", status, out)
		}
		id, _ := out["client_id"].(string)
		regToken, _ := out["registration_access_token"].(string)
		m["client_id"], m["Redirect_URIs"] = id, []string{"https://elsewhere.example/cb"}
		status, _, out = registrationCall(t, srv, http.MethodPut, "/oauth/register/"+id, regToken, m)
		if uris := toStrings(out["redirect_uris"]); status != http.StatusOK || len(uris) != 1 || uris[0] != "http://127.0.0.1:9/callback/cased" {
			t.Errorf("update with names in another case: %d %v", status, out)
		}
	})

	t.Run("refused registrations", func(t *testing.T) {
		// One use, which none of the refusals spends.
		iat, iatID := initialAccessToken(t, srv, adminToken, 1, false)
		clientsBefore, _ := srv.Main.Store.ListClients(ctx)
		withChange := func(change func(m map[string]any)) map[string]any {
			m := webMetadata("refused")
			change(m)
			return m
		}
		for _, c := range []struct {
			name   string
			token  string
			body   any
			status int
			err    string
		}{
			{"no token", "", webMetadata("x"), http.StatusUnauthorized, "invalid_token"},
			{"an unknown token", account.InitialAccessTokenPrefix + "nope", webMetadata("x"), http.StatusUnauthorized, "invalid_token"},
			{"an API token", adminToken, webMetadata("x"), http.StatusUnauthorized, "invalid_token"},
			{"http on another host", iat, withChange(func(m map[string]any) { m["redirect_uris"] = []string{"http://app.example/cb"} }), http.StatusBadRequest, "invalid_redirect_uri"},
			{"a fragment", iat, withChange(func(m map[string]any) { m["redirect_uris"] = []string{"https://app.example/cb#x"} }), http.StatusBadRequest, "invalid_redirect_uri"},
			{"a custom scheme on a confidential app", iat, withChange(func(m map[string]any) { m["redirect_uris"] = []string{"com.example:/cb"} }), http.StatusBadRequest, "invalid_redirect_uri"},
			{"a bad post-logout URI", iat, withChange(func(m map[string]any) { m["post_logout_redirect_uris"] = []string{"javascript:alert(1)"} }), http.StatusBadRequest, "invalid_redirect_uri"},
			{"no redirect URI", iat, withChange(func(m map[string]any) { delete(m, "redirect_uris") }), http.StatusBadRequest, "invalid_redirect_uri"},
			{"the implicit grant", iat, withChange(func(m map[string]any) { m["grant_types"] = []string{"implicit"} }), http.StatusBadRequest, "invalid_client_metadata"},
			{"response type token", iat, withChange(func(m map[string]any) { m["response_types"] = []string{"token"} }), http.StatusBadRequest, "invalid_client_metadata"},
			{"an unknown auth method", iat, withChange(func(m map[string]any) { m["token_endpoint_auth_method"] = "tls_client_auth" }), http.StatusBadRequest, "invalid_client_metadata"},
			{"private_key_jwt without keys", iat, withChange(func(m map[string]any) { m["token_endpoint_auth_method"] = "private_key_jwt" }), http.StatusBadRequest, "invalid_client_metadata"},
			{"an unknown algorithm", iat, withChange(func(m map[string]any) { m["id_token_signed_response_alg"] = "none" }), http.StatusBadRequest, "invalid_client_metadata"},
			{"the management scope", iat, map[string]any{"grant_types": []string{"client_credentials"}, "scope": "keyport:admin"}, http.StatusBadRequest, "invalid_client_metadata"},
			{"a wrong JSON type", iat, `{"redirect_uris":"https://app.example/cb"}`, http.StatusBadRequest, "invalid_client_metadata"},
			{"malformed JSON", iat, `{"redirect_uris":[`, http.StatusBadRequest, "invalid_client_metadata"},
			{"two objects", iat, `{}{}`, http.StatusBadRequest, "invalid_client_metadata"},
			{"an oversized body", iat, `{"client_name":"` + strings.Repeat("a", 70<<10) + `"}`, http.StatusRequestEntityTooLarge, "invalid_client_metadata"},
		} {
			status, header, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", c.token, c.body)
			if status != c.status || out["error"] != c.err {
				t.Errorf("%s: %d %v, want %d %s", c.name, status, out, c.status, c.err)
			}
			if status == http.StatusUnauthorized && !strings.HasPrefix(header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s: WWW-Authenticate %q", c.name, header.Get("WWW-Authenticate"))
			}
		}
		if clientsAfter, _ := srv.Main.Store.ListClients(ctx); len(clientsAfter) != len(clientsBefore) {
			t.Errorf("refused registrations made %d apps", len(clientsAfter)-len(clientsBefore))
		}

		// The use is still there; then it is spent.
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("first")); status != http.StatusCreated {
			t.Fatalf("the token's one registration: %d %v", status, out)
		}
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("second")); status != http.StatusUnauthorized || out["error"] != "invalid_token" {
			t.Errorf("a used-up token: %d %v", status, out)
		}
		_, _, list := apiCall(t, srv, http.MethodGet, "/api/v1/registration-tokens", readOnly, "", "")
		items, _ := list["items"].([]any)
		found := false
		for _, it := range items {
			if m, _ := it.(map[string]any); m["id"] == iatID {
				found = m["uses"] == 1.0 && m["max_uses"] == 1.0 && m["token"] == nil
			}
		}
		if !found {
			t.Errorf("token list: %v", list)
		}

		// An expired token.
		expired, expiredID := initialAccessToken(t, srv, adminToken, 0, false)
		if _, err := srv.Main.Store.UpdateCredential(ctx, storage.InitialAccessTokenOwner, expiredID, func(c storage.Credential) (storage.Credential, error) {
			c.ValidUntil = time.Now().Add(-time.Second)
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", expired, webMetadata("late")); status != http.StatusUnauthorized || out["error"] != "invalid_token" {
			t.Errorf("an expired token: %d %v", status, out)
		}
		// Checked before the metadata: an expired token fetches no sector
		// document (one that cannot be fetched would answer 400 if it did).
		late := webMetadata("late")
		late["subject_type"], late["sector_identifier_uri"] = "pairwise", sectors.URL+"/missing.json"
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", expired, late); status != http.StatusUnauthorized || out["error"] != "invalid_token" {
			t.Errorf("an expired token with a sector document to fetch: %d %v", status, out)
		}

		// A revoked token.
		revoked, revokedID := initialAccessToken(t, srv, adminToken, 0, false)
		if status, _, out := apiCall(t, srv, http.MethodDelete, "/api/v1/registration-tokens/"+revokedID, adminToken, "", ""); status != http.StatusNoContent {
			t.Fatalf("revoke: %d %v", status, out)
		}
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", revoked, webMetadata("revoked")); status != http.StatusUnauthorized {
			t.Errorf("a revoked token: %d %v", status, out)
		}
	})

	t.Run("held for approval", func(t *testing.T) {
		iat, iatID := initialAccessToken(t, srv, adminToken, 0, true)
		// A read-only credential neither makes nor revokes tokens.
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/registration-tokens", readOnly, "application/json", `{"name":"ro","expires_in":3600}`); status != http.StatusForbidden || out["token"] != nil {
			t.Errorf("a token made with a read-only credential: %d %v", status, out)
		}
		if status, _, out := apiCall(t, srv, http.MethodDelete, "/api/v1/registration-tokens/"+iatID, readOnly, "", ""); status != http.StatusForbidden {
			t.Errorf("a token revoked with a read-only credential: %d %v", status, out)
		}
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("held"))
		if status != http.StatusCreated {
			t.Fatalf("register: %d %v", status, out)
		}
		id, _ := out["client_id"].(string)
		secret, _ := out["client_secret"].(string)
		_, _, view := apiCall(t, srv, http.MethodGet, "/api/v1/clients/"+id, readOnly, "", "")
		if view["pending_approval"] != true || view["registered"] != true {
			t.Errorf("the app as admins see it: %v", view)
		}
		rp := srv.rp(id, secret, "http://127.0.0.1:9/callback/held")
		// No sign-in: the authorization request never reaches the app.
		p := rp.authorize(newBrowser(t), "s")
		if p.Status != http.StatusBadRequest || strings.Contains(p.Header.Get("Location"), "callback/held") {
			t.Errorf("authorization request of a held app: %d %s", p.Status, p.Header.Get("Location"))
		}
		// No token.
		if status, _, tok := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, id, secret); status != http.StatusUnauthorized || tok["error"] != "invalid_client" {
			t.Errorf("token for a held app: %d %v", status, tok)
		}
		// Nor is it among the apps a person may limit an app password to.
		person := newBrowser(t)
		signInPortal(t, srv, person, "rex")
		if p := person.get(srv.URL + "/security/access"); p.Status != http.StatusOK || strings.Contains(p.Body, `value="`+id+`"`) {
			t.Errorf("the app access page offers the held app: %d", p.Status)
		}
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", readOnly, "", ""); status != http.StatusForbidden {
			t.Errorf("approval with a read-only token: %d %v", status, out)
		}
		status, _, approved := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", "")
		if status != http.StatusOK || approved["pending_approval"] != false {
			t.Fatalf("approve: %d %v", status, approved)
		}
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", ""); status != http.StatusConflict {
			t.Errorf("approve twice: %d %v", status, out)
		}
		if tok := rp.tokens("rex"); tok.AccessToken == "" {
			t.Error("no access token after the approval")
		}
		if p := person.get(srv.URL + "/security/access"); !strings.Contains(p.Body, `value="`+id+`"`) {
			t.Errorf("the app access page does not offer the approved app: %d", p.Status)
		}
		events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{account.AuditClientRegistered, account.AuditClientApproved}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, e := range events {
			if e.ClientID == id {
				kinds = append(kinds, e.Type+"/"+e.ActorKind)
				if strings.Contains(e.Reason, secret) || strings.Contains(e.Reason, iat) {
					t.Errorf("a secret in the audit log: %+v", e)
				}
			}
		}
		slices.Sort(kinds)
		if !reflect.DeepEqual(kinds, []string{"client.approved/user", "client.registered/client"}) {
			t.Errorf("audit events: %v", kinds)
		}
	})

	// Random registration requests (bodies, methods, tokens, paths): none
	// gets a 5xx, every answer is JSON or a 404/405, and none registers an
	// app that holds a management scope. The seed is fixed.
	t.Run("random requests", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("target"))
		regToken, _ := reg["registration_access_token"].(string)
		id, _ := reg["client_id"].(string)
		key := newRPKey(t, jose.ES256, "k1")
		fields := []string{"redirect_uris", "token_endpoint_auth_method", "grant_types", "response_types", "client_name", "scope",
			"jwks", "jwks_uri", "post_logout_redirect_uris", "id_token_signed_response_alg", "userinfo_signed_response_alg",
			"backchannel_logout_uri", "backchannel_logout_session_required", "frontchannel_logout_uri",
			"require_pushed_authorization_requests", "require_signed_request_object", "client_id", "client_secret", "software_statement",
			"application_type"}
		values := []string{`""`, `"x"`, `0`, `-1`, `1e400`, `null`, `true`, `[]`, `{}`, `["https://app.example/cb"]`,
			`["http://127.0.0.1:9/cb"]`, `["http://evil.example/cb"]`, `["https://a.example/#f"]`, `["javascript:alert(1)"]`,
			`["authorization_code"]`, `["client_credentials"]`, `["refresh_token"]`, `["implicit"]`, `["code"]`, `["token"]`,
			`"none"`, `"private_key_jwt"`, `"client_secret_jwt"`, `"client_secret_post"`, `"openid keyport:admin"`, `"openid"`,
			`"ES256"`, `"EdDSA"`, `"HS256"`, `"https://app.example/jwks"`, string(key.jwks(t)), `{"keys":[{"kty":"EC"}]}`,
			`"` + strings.Repeat("z", 5000) + `"`, `"\u0000"`, `"\ud800"`, `"` + id + `"`, `[` + strings.Repeat(`"https://a.example/cb",`, 30) + `"x"]`,
			`"web"`, `"native"`, `["com.example.app:/cb"]`}
		broken := []string{"", "{", "}", "[", "null", "[]", `"x"`, "\x00", `{"a":1}{"b":2}`, strings.Repeat("[", 10000), `{"redirect_uris":}`}
		tokens := []string{iat, regToken, "", "x", account.InitialAccessTokenPrefix + "x", account.RegistrationAccessTokenPrefix + "x", adminToken, strings.Repeat("k", 300)}
		paths := []string{"/oauth/register", "/oauth/register/" + id, "/oauth/register/", "/oauth/register/nobody", "/oauth/register/%00", "/oauth/register/" + id + "/x"}
		rng := rand.New(rand.NewPCG(7, 3))
		pick := func(s []string) string { return s[rng.IntN(len(s))] }
		failures := 0
		for i := 0; i < 500 && failures < 10; i++ {
			body := pick(broken)
			if rng.IntN(4) != 0 {
				parts := []string{}
				for n := rng.IntN(7); n > 0; n-- {
					parts = append(parts, `"`+pick(fields)+`":`+pick(values))
				}
				body = "{" + strings.Join(parts, ",") + "}"
			}
			method := pick([]string{"POST", "POST", "GET", "PUT", "DELETE", "PATCH"})
			req, err := http.NewRequest(method, srv.URL+pick(paths), strings.NewReader(body))
			if err != nil {
				continue
			}
			req.Header.Set("Content-Type", pick([]string{"application/json", "application/json; charset=utf-8", "text/plain", ""}))
			if tok := pick(tokens); tok != "" {
				req.Header.Set("Authorization", pick([]string{"Bearer ", "bearer ", "Basic "})+tok)
			}
			r, err := fetch(bareClient, req)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status >= 500 || r.JSON() == nil && r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed && r.Status != http.StatusNoContent {
				t.Errorf("%s %s with %q: %d %s", method, req.URL.Path, truncateBody(body), r.Status, truncateBody(r.Body))
				failures++
			}
		}
		clients, _ := srv.Main.Store.ListClients(ctx)
		for _, c := range clients {
			if c.RegistrationAccessTokenHash != "" && (slices.Contains(c.AllowedScopes, account.ScopeAdmin) || slices.Contains(c.AllowedScopes, account.ScopeAdminRead) || c.SkipConsent) {
				t.Errorf("a registered app got what only an admin grants: %+v", c)
			}
		}
	})

	// A held app, with its right credentials, is an unknown client at
	// every endpoint an app calls, and no target of a token exchange.
	t.Run("held app everywhere", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, true)
		m := webMetadata("held-everywhere")
		m["grant_types"] = []string{"authorization_code", "refresh_token", "client_credentials", "urn:ietf:params:oauth:grant-type:device_code"}
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
		id, _ := reg["client_id"].(string)
		secret, _ := reg["client_secret"].(string)
		if id == "" {
			t.Fatalf("register: %v", reg)
		}
		for _, c := range []struct {
			path string
			form url.Values
		}{
			{"/oauth/par", url.Values{"response_type": {"code"}, "redirect_uri": {"http://127.0.0.1:9/callback/held-everywhere"}, "scope": {"openid"},
				"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}},
			{"/device_authorization", url.Values{"scope": {"openid"}}},
			{"/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}},
			{"/oauth/token", url.Values{"grant_type": {"client_credentials"}}},
			{"/oauth/introspect", url.Values{"token": {"x"}}},
			{"/revoke", url.Values{"token": {"x"}}},
		} {
			if status, _, out := srv.postForm(c.path, c.form, id, secret); status < 400 || status >= 500 || out["error"] != "invalid_client" {
				t.Errorf("%s %v as the held app: %d %v", c.path, c.form.Get("grant_type"), status, out)
			}
		}
		front := srv.createClient(account.NewClient{ID: "held-exchanger", Secret: "exchanger-secret-0123456789", SkipConsent: true,
			GrantTypes:             []string{account.GrantAuthorizationCode, account.GrantTokenExchange},
			TokenExchangeAudiences: []string{id}})
		tok := front.tokens("rex")
		form := url.Values{"grant_type": {account.GrantTokenExchange}, "subject_token": {tok.AccessToken},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}, "audience": {id}}
		if status, _, out := front.tokenPost(form, true); status != http.StatusBadRequest || out["error"] != "invalid_target" {
			t.Errorf("a token exchanged for the held app: %d %v", status, out)
		}
	})

	// The approval route honours If-Match, as its ETag promises: an app
	// that changed its registration after an administrator read it (new
	// redirect URIs) is not approved on the strength of the old version.
	t.Run("approval under If-Match", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, true)
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("reviewed"))
		id, _ := reg["client_id"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		uri, _ := reg["registration_client_uri"].(string)
		status, header, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients/"+id, adminToken, "", "")
		reviewed := header.Get("ETag")
		if status != http.StatusOK || reviewed == "" {
			t.Fatalf("read the held app: %d, ETag %q", status, reviewed)
		}
		m := webMetadata("reviewed")
		m["client_id"], m["redirect_uris"] = id, []string{"https://elsewhere.example/cb"}
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK {
			t.Fatalf("the app changes its registration: %d %v", status, out)
		}
		ifm := http.Header{"If-Match": {reviewed}}
		if status, _, out := apiCallWith(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", "", ifm); status != http.StatusPreconditionFailed {
			t.Errorf("approval of the version reviewed, since changed: %d %v", status, out)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); !c.PendingApproval {
			t.Fatal("a stale approval let the app in")
		}
		_, header, _ = apiCall(t, srv, http.MethodGet, "/api/v1/clients/"+id, adminToken, "", "")
		ifm = http.Header{"If-Match": {header.Get("ETag")}}
		if status, _, out := apiCallWith(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", "", ifm); status != http.StatusOK || out["pending_approval"] != false {
			t.Errorf("approval of the current version: %d %v", status, out)
		}
	})

	// An approved app that changes security-relevant metadata through
	// RFC 7592 (here its redirect URIs) is held again until an
	// administrator approves it again: no sign-in, no grant. Its refresh
	// token stays and works again after the new approval.
	t.Run("held again after a security-relevant update", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, true)
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("reheld"))
		id, _ := reg["client_id"].(string)
		secret, _ := reg["client_secret"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		uri, _ := reg["registration_client_uri"].(string)
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", ""); status != http.StatusOK || out["pending_approval"] != false {
			t.Fatalf("approve: %d %v", status, out)
		}
		rp := srv.rp(id, secret, "http://127.0.0.1:9/callback/reheld")
		rp.oauth.Scopes = append(rp.oauth.Scopes, "offline_access")
		tok := rp.tokens("rex")
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token after the approval")
		}

		const moved = "http://127.0.0.1:9/callback/reheld-moved"
		m := webMetadata("reheld")
		m["client_id"], m["redirect_uris"] = id, []string{moved}
		status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m)
		if status != http.StatusOK || !reflect.DeepEqual(out["redirect_uris"], []any{moved}) {
			t.Fatalf("update the redirect URIs: %d %v", status, out)
		}
		if _, _, view := apiCall(t, srv, http.MethodGet, "/api/v1/clients/"+id, readOnly, "", ""); view["pending_approval"] != true {
			t.Errorf("after the update, as admins see it: %v", view)
		}
		// Refused as a held app is: the authorization request never
		// reaches the app, and its refresh token gets nothing.
		moving := srv.rp(id, secret, moved)
		if p := moving.authorize(newBrowser(t), "s"); p.Status != http.StatusBadRequest || strings.Contains(p.Header.Get("Location"), "callback/reheld") {
			t.Errorf("authorization request of the app held again: %d %s", p.Status, p.Header.Get("Location"))
		}
		refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
		if status, _, out := srv.postForm("/oauth/token", refresh, id, secret); status != http.StatusUnauthorized || out["error"] != "invalid_client" {
			t.Errorf("refresh grant of the app held again: %d %v", status, out)
		}
		// The console lists it as waiting, and its page offers approval
		// again, saying why.
		b := newBrowser(t)
		signInPortal(t, srv, b, "root")
		list := b.get(srv.URL + "/admin/apps")
		row := ""
		for _, r := range parsePage(t, list.Body).all("tr", "role", "row") {
			if strings.Contains(r.text(), id) {
				row = r.text()
			}
		}
		if !strings.Contains(row, "waiting for approval") {
			t.Errorf("the app list's row of the app held again: %q", row)
		}
		page := b.get(srv.URL + "/admin/apps/" + id)
		if text, _ := textByID(t, page.Body, "approve-app"); !hasForm(page.Body, "/admin/apps/"+id+"/approve") || !strings.Contains(text, "since it was approved") {
			t.Errorf("the app's page: approval form %v, %q", hasForm(page.Body, "/admin/apps/"+id+"/approve"), text)
		}
		// The audit log says the app's update held it.
		events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{account.AuditClientUpdated}, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		held := false
		for _, e := range events {
			if e.ClientID == id && e.ActorKind == account.ActorClient &&
				slices.Contains(e.Changes, storage.AuditChange{Field: "pending_approval", Before: "false", After: "true"}) &&
				slices.ContainsFunc(e.Changes, func(c storage.AuditChange) bool { return c.Field == "redirect_uris" && c.After == moved }) {
				held = true
			}
		}
		if !held {
			t.Errorf("no client.updated event holds the app: %+v", events)
		}

		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", ""); status != http.StatusOK || out["pending_approval"] != false {
			t.Fatalf("approve again: %d %v", status, out)
		}
		if tok := moving.tokens("rex"); tok.AccessToken == "" {
			t.Error("no access token after the new approval")
		}
		if status, _, out := srv.postForm("/oauth/token", refresh, id, secret); status != http.StatusOK || out["access_token"] == nil {
			t.Errorf("the refresh token after the new approval: %d %v", status, out)
		}
	})

	// A change that only names the app to people keeps its approval:
	// client_name, and metadata Keyport does not store (logo_uri,
	// client_uri, contacts). An app never held stays unheld whatever it
	// changes.
	t.Run("an update of unstored metadata keeps the approval, a new name does not", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, true)
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("cosmetic"))
		id, _ := reg["client_id"].(string)
		secret, _ := reg["client_secret"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		uri, _ := reg["registration_client_uri"].(string)
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", ""); status != http.StatusOK {
			t.Fatalf("approve: %d %v", status, out)
		}
		m := webMetadata("cosmetic")
		m["client_id"] = id
		m["logo_uri"], m["client_uri"], m["contacts"] = "https://app.example/new-logo.png", "https://app.example/about", []string{"ops@app.example"}
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK {
			t.Fatalf("update of unstored metadata: %d %v", status, out)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval {
			t.Errorf("held after an update of unstored metadata")
		}
		if tok := srv.rp(id, secret, "http://127.0.0.1:9/callback/cosmetic").tokens("rex"); tok.AccessToken == "" {
			t.Error("no access token after an update of unstored metadata")
		}
		// A new name is what the consent page shows as approved.
		m["client_name"] = "Cosmetic, renamed"
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK || out["client_name"] != "Cosmetic, renamed" {
			t.Fatalf("rename: %d %v", status, out)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); !c.PendingApproval {
			t.Error("a renamed app kept its approval")
		}

		open, _ := initialAccessToken(t, srv, adminToken, 0, false)
		_, _, reg = registrationCall(t, srv, http.MethodPost, "/oauth/register", open, webMetadata("never-held"))
		id, _ = reg["client_id"].(string)
		regToken, _ = reg["registration_access_token"].(string)
		uri, _ = reg["registration_client_uri"].(string)
		m = webMetadata("never-held")
		m["client_id"], m["redirect_uris"] = id, []string{"https://app.example/elsewhere"}
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK {
			t.Fatalf("update an app never held: %d %v", status, out)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval {
			t.Error("an app registered without a hold was held by its update")
		}
	})

	// registerApproved registers an app with metadata m (a held one, with
	// a fresh initial access token) and approves it: its ID, registration
	// access token and URI, and the record as approved.
	registerApproved := func(t *testing.T, m map[string]any) (id, regToken, uri string, approved storage.Client) {
		t.Helper()
		iat, _ := initialAccessToken(t, srv, adminToken, 0, true)
		status, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
		if status != http.StatusCreated {
			t.Fatalf("register: %d %v", status, reg)
		}
		id, _ = reg["client_id"].(string)
		regToken, _ = reg["registration_access_token"].(string)
		uri, _ = reg["registration_client_uri"].(string)
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", ""); status != http.StatusOK {
			t.Fatalf("approve: %d %v", status, out)
		}
		approved, _ = srv.Main.Store.GetClient(ctx, id)
		return id, regToken, uri, approved
	}

	// RFC 7592 §2.2: an update sends back the metadata the app read. A
	// client that decoded the answer and encoded it again (here Go's
	// map, which sorts the members) sends its key set with the members in
	// another order: the same keys, so its approval stays and its
	// assertions still work.
	t.Run("an update sending back its key set in another member order keeps the approval", func(t *testing.T) {
		key := newRPKey(t, jose.ES256, "k1")
		id, regToken, uri, approved := registerApproved(t, map[string]any{
			"client_name": "reordered", "grant_types": []string{"client_credentials"}, "token_endpoint_auth_method": "private_key_jwt",
			"jwks": json.RawMessage(key.jwks(t)),
		})
		status, _, read := registrationCall(t, srv, http.MethodGet, uri, regToken, nil)
		if status != http.StatusOK {
			t.Fatalf("read: %d %v", status, read)
		}
		if sent, _ := json.Marshal(read["jwks"]); string(sent) == string(approved.JWKS) {
			t.Fatalf("the key set went back in its stored order (%s): this test tests nothing", sent)
		}
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, read); status != http.StatusOK {
			t.Fatalf("update with the metadata read: %d %v", status, out)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval || !reflect.DeepEqual(c, approved) {
			t.Errorf("the same key set in another member order changed the app (held again: %v)", c.PendingApproval)
		}
		form := assertionParams(assertion(t, key.signing(), id, srv.URL+"/oauth/token"))
		form.Set("grant_type", "client_credentials")
		if status, _, tok := srv.postForm("/oauth/token", form, "", ""); status != http.StatusOK || tok["access_token"] == nil {
			t.Errorf("client_credentials after the update: %d %v", status, tok)
		}
	})

	// RFC 7592 §2.2: an update sends back all the metadata the app read,
	// decoded and encoded again as most clients do. For apps of every
	// shape this changes nothing, and an approved app stays approved.
	t.Run("an update sending back what it read changes nothing", func(t *testing.T) {
		key := newRPKey(t, jose.ES256, "k1")
		for name, m := range map[string]map[string]any{
			"web app":            webMetadata("echo"),
			"minimal":            {"redirect_uris": []string{"https://app.example/cb"}},
			"native app":         {"application_type": "native", "token_endpoint_auth_method": "none", "redirect_uris": []string{"com.example.app:/cb"}},
			"device":             {"grant_types": []string{account.GrantDeviceCode}, "token_endpoint_auth_method": "none"},
			"client_credentials": {"grant_types": []string{"client_credentials"}},
			"private_key_jwt":    {"redirect_uris": []string{"https://app.example/cb"}, "token_endpoint_auth_method": "private_key_jwt", "jwks": json.RawMessage(key.jwks(t))},
			"client_secret_jwt":  {"redirect_uris": []string{"https://app.example/cb"}, "token_endpoint_auth_method": "client_secret_jwt"},
			"logout":             {"redirect_uris": []string{"https://app.example/cb"}, "frontchannel_logout_uri": "https://app.example/fc", "backchannel_logout_uri": "https://app.example/bc", "post_logout_redirect_uris": []string{"https://app.example/bye"}},
			"flags":              {"redirect_uris": []string{"https://app.example/cb"}, "require_pushed_authorization_requests": true, "dpop_bound_access_tokens": true, "userinfo_signed_response_alg": "RS256"},
		} {
			t.Run(name, func(t *testing.T) {
				id, regToken, uri, approved := registerApproved(t, m)
				_, _, read := registrationCall(t, srv, http.MethodGet, uri, regToken, nil)
				if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, read); status != http.StatusOK {
					t.Errorf("update with the metadata read: %d %v", status, out)
				}
				if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval || !reflect.DeepEqual(c, approved) {
					t.Errorf("sending back what it read changed the app (held again: %v)", c.PendingApproval)
				}
			})
		}
	})

	// RFC 6749 §3.3: the order of the scope's values does not matter; an
	// update naming the app's scopes in another order changes nothing.
	t.Run("an update naming the same scopes in another order keeps the approval", func(t *testing.T) {
		id, regToken, uri, approved := registerApproved(t, webMetadata("scope-order"))
		m := webMetadata("scope-order")
		m["client_id"], m["scope"] = id, "offline_access email profile openid"
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK || out["scope"] != "openid profile email offline_access" {
			t.Fatalf("update with the scopes reordered: %d %v", status, out)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval || !reflect.DeepEqual(c, approved) {
			t.Errorf("the same scopes in another order changed the app (held again: %v, scopes %v)", c.PendingApproval, c.AllowedScopes)
		}
		// Narrowing them is a change, and holds it again.
		m["scope"] = "openid profile"
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK {
			t.Fatalf("narrow the scopes: %d %v", status, out)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); !c.PendingApproval {
			t.Error("narrowed scopes kept the approval")
		}
	})

	// RFC 7591 §2 gives grant_types, redirect_uris and
	// post_logout_redirect_uris no order: an update naming the same ones
	// in another order changes nothing, and the stored order stays.
	t.Run("an update naming the same lists in another order keeps the approval", func(t *testing.T) {
		m := webMetadata("list-order")
		m["redirect_uris"] = []string{"http://127.0.0.1:9/callback/list-order", "http://127.0.0.1:9/callback/list-order-2", "https://app.example/list-order"}
		m["post_logout_redirect_uris"] = []string{"https://app.example/bye", "https://app.example/bye-2"}
		m["grant_types"] = []string{"authorization_code", "refresh_token", "client_credentials"}
		id, regToken, uri, approved := registerApproved(t, m)
		reversed := func(key string) []string {
			l := slices.Clone(m[key].([]string))
			slices.Reverse(l)
			return l
		}
		u := maps.Clone(m)
		u["client_id"] = id
		for _, key := range []string{"redirect_uris", "post_logout_redirect_uris", "grant_types"} {
			u[key] = reversed(key)
		}
		status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, u)
		if status != http.StatusOK {
			t.Fatalf("update with the lists reversed: %d %v", status, out)
		}
		if got, _ := json.Marshal(out["redirect_uris"]); string(got) != `["http://127.0.0.1:9/callback/list-order","http://127.0.0.1:9/callback/list-order-2","https://app.example/list-order"]` {
			t.Errorf("the answer's redirect_uris: %s, want the stored order", got)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval || !reflect.DeepEqual(c, approved) {
			t.Errorf("the same lists in another order changed the app (held again: %v, redirect URIs %v, post-logout %v, grants %v)",
				c.PendingApproval, c.RedirectURIs, c.PostLogoutRedirectURIs, c.GrantTypes)
		}
		// One redirect URI fewer is a change, and holds it again.
		u["redirect_uris"] = reversed("redirect_uris")[1:]
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, u); status != http.StatusOK {
			t.Fatalf("update with a redirect URI fewer: %d %v", status, out)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); !c.PendingApproval || !reflect.DeepEqual(c.RedirectURIs, reversed("redirect_uris")[1:]) {
			t.Errorf("a redirect URI fewer: held again %v, redirect URIs %v", c.PendingApproval, c.RedirectURIs)
		}

		// Nor does a pairwise app's sector document need fetching again
		// for them.
		pw := webMetadata("list-order-pw")
		pw["redirect_uris"] = []string{"http://127.0.0.1:9/callback/pw", "http://localhost:9/callback/pw"}
		pw["subject_type"], pw["sector_identifier_uri"] = "pairwise", sectors.URL+"/pw.json"
		id, regToken, uri, approved = registerApproved(t, pw)
		pw["client_id"], pw["redirect_uris"] = id, []string{"http://localhost:9/callback/pw", "http://127.0.0.1:9/callback/pw"}
		fetched := sectorFetches.Load()
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, pw); status != http.StatusOK {
			t.Fatalf("update of a pairwise app with its redirect URIs reversed: %d %v", status, out)
		}
		if n := sectorFetches.Load() - fetched; n != 0 {
			t.Errorf("the same redirect URIs in another order fetched the sector document %d times", n)
		}
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval || !reflect.DeepEqual(c, approved) {
			t.Errorf("the same redirect URIs in another order changed the pairwise app (held again: %v)", c.PendingApproval)
		}
	})

	// The consent page tells the person when an app registered itself,
	// and whether an administrator approved it; an administrator's app
	// gets no such line.
	t.Run("consent page names a self-registered app", func(t *testing.T) {
		b := newBrowser(t)
		consent := func(rp *testClient, lang string) page {
			t.Helper()
			_, challenge := pkce()
			p := rp.authorize(b, "s", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"),
				oauth2.SetAuthURLParam("ui_locales", lang))
			if isLoginPage(p) {
				p = b.submit(p, "/login", url.Values{"login": {"rex"}, "password": {testPassword}})
			}
			if !isConsentPage(p) {
				t.Fatalf("expected the consent page of %s, got %d\n%s", rp.ID, p.Status, truncateBody(p.Body))
			}
			return p
		}
		line := func(p page) string {
			text, _ := textByID(t, p.Body, "self-registered")
			return text
		}

		admins := srv.createClient(account.NewClient{ID: "admins-own", Name: "Admins Own"})
		if p := consent(admins, "en"); line(p) != "" || strings.Contains(p.Body, "registered itself") {
			t.Errorf("an administrator's app: %q", line(p))
		}

		register := func(hold bool, name string) *testClient {
			t.Helper()
			iat, _ := initialAccessToken(t, srv, adminToken, 0, hold)
			status, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata(name))
			id, _ := reg["client_id"].(string)
			secret, _ := reg["client_secret"].(string)
			if status != http.StatusCreated || id == "" {
				t.Fatalf("register %s: %d %v", name, status, reg)
			}
			return srv.rp(id, secret, "http://127.0.0.1:9/callback/"+name)
		}
		unreviewed := register(false, "unreviewed")
		if got := line(consent(unreviewed, "en")); got != "This app registered itself; your administrator has not reviewed it." {
			t.Errorf("an app never reviewed: %q", got)
		}
		if got := line(consent(unreviewed, "de")); got != "Diese App hat sich selbst registriert; Ihre Administration hat sie nicht geprüft." {
			t.Errorf("an app never reviewed, in German: %q", got)
		}

		approved := register(true, "reviewed-ok")
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+approved.ID+"/approve", adminToken, "", ""); status != http.StatusOK {
			t.Fatalf("approve: %d %v", status, out)
		}
		if got := line(consent(approved, "en")); got != "This app registered itself; your administrator approved it." {
			t.Errorf("an approved app: %q", got)
		}
		if got := line(consent(approved, "de")); got != "Diese App hat sich selbst registriert; Ihre Administration hat sie freigegeben." {
			t.Errorf("an approved app, in German: %q", got)
		}
	})

	// The device approval page (RFC 8628 §3.3) says what the consent page
	// says of a self-registered app, in the person's language; an
	// administrator's app gets no such line.
	t.Run("device page names a self-registered app", func(t *testing.T) {
		b := newBrowser(t)
		var entry page
		start := func(id, secret string) (userCode string) {
			t.Helper()
			status, _, da := srv.postForm("/device_authorization", url.Values{"scope": {"openid"}}, id, secret)
			if status != http.StatusOK {
				t.Fatalf("device authorization for %s: %d %v", id, status, da)
			}
			if entry.Body == "" {
				entry = b.get(da["verification_uri"].(string))
				if isLoginPage(entry) {
					entry = b.submit(entry, "/login", url.Values{"login": {"rex"}, "password": {testPassword}})
				}
			}
			return da["user_code"].(string)
		}
		post := func(userCode, decision, lang string) page {
			t.Helper()
			form := url.Values{"user_code": {userCode}, "csrf_token": {formFields(entry.Body).Get("csrf_token")}}
			if decision != "" {
				form.Set("decision", decision)
			}
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/device", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Accept-Language", lang)
			return b.do(req)
		}
		decision := func(id, secret, lang string) page {
			t.Helper()
			p := post(start(id, secret), "", lang)
			if p.Status != http.StatusOK || !strings.Contains(p.Body, `value="approve"`) {
				t.Fatalf("the decision page for %s: %d %s", id, p.Status, truncateBody(p.Body))
			}
			return p
		}
		line := func(p page) string {
			text, _ := textByID(t, p.Body, "self-registered")
			return text
		}
		register := func(hold bool, name string) (id, secret string) {
			t.Helper()
			iat, _ := initialAccessToken(t, srv, adminToken, 0, hold)
			m := webMetadata(name)
			m["grant_types"] = []string{"authorization_code", account.GrantDeviceCode}
			status, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
			id, _ = reg["client_id"].(string)
			secret, _ = reg["client_secret"].(string)
			if status != http.StatusCreated || id == "" {
				t.Fatalf("register %s: %d %v", name, status, reg)
			}
			return id, secret
		}

		admins := srv.createClient(account.NewClient{ID: "admins-device", Name: "Admins Device", GrantTypes: []string{account.GrantDeviceCode}})
		if p := decision(admins.ID, admins.Secret, "en"); line(p) != "" || strings.Contains(p.Body, "registered itself") {
			t.Errorf("an administrator's app: %q", line(p))
		}
		id, secret := register(false, "device-unreviewed")
		if got := line(decision(id, secret, "en")); got != "This app registered itself; your administrator has not reviewed it." {
			t.Errorf("an app never reviewed: %q", got)
		}
		if got := line(decision(id, secret, "de")); got != "Diese App hat sich selbst registriert; Ihre Administration hat sie nicht geprüft." {
			t.Errorf("an app never reviewed, in German: %q", got)
		}
		id, secret = register(true, "device-reviewed")
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", ""); status != http.StatusOK {
			t.Fatalf("approve: %d %v", status, out)
		}
		if got := line(decision(id, secret, "en")); got != "This app registered itself; your administrator approved it." {
			t.Errorf("an approved app: %q", got)
		}
		if got := line(decision(id, secret, "de")); got != "Diese App hat sich selbst registriert; Ihre Administration hat sie freigegeben." {
			t.Errorf("an approved app, in German: %q", got)
		}

		// Held for approval again after its code was issued: an approval
		// posted straight away is answered as for a code that is not
		// there, and changes nothing; approved again, the code is good.
		code := start(id, secret)
		hold := func(held bool) {
			t.Helper()
			if _, err := srv.Main.Store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
				c.PendingApproval = held
				return c, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		hold(true)
		if p := post(code, "approve", "en"); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "This code is wrong") || strings.Contains(p.Body, "The device is connected") {
			t.Errorf("approving a device of the held app: %d %s", p.Status, truncateBody(p.Body))
		}
		if a, err := srv.Main.Store.GetDeviceAuthorizationByUserCode(ctx, account.NormalizeUserCode(code)); err != nil || a.State != storage.DevicePending || a.UserID != "" {
			t.Errorf("the held app's device authorization after the refused approval: %+v %v", a, err)
		}
		hold(false)
		if p := post(code, "approve", "en"); p.Status != http.StatusOK || !strings.Contains(p.Body, "The device is connected") {
			t.Errorf("approving the device once the app is approved again: %d %s", p.Status, truncateBody(p.Body))
		}
	})

	// An administrator approves a held app on its console page.
	t.Run("console approval", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, true)
		_, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("console"))
		id, _ := out["client_id"].(string)
		b := newBrowser(t)
		signInPortal(t, srv, b, "root")
		p := b.get(srv.URL + "/admin/apps/" + id)
		action := "/admin/apps/" + id + "/approve"
		if p.Status != http.StatusOK || !hasForm(p.Body, action) {
			t.Fatalf("the held app's page: %d, approval form %v", p.Status, hasForm(p.Body, action))
		}
		p = submitForm(t, b, p, action, nil)
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval || p.Status != http.StatusOK || hasForm(p.Body, action) ||
			!strings.Contains(p.Body, "The app is approved") {
			t.Errorf("after approving: held %v, %d %s", c.PendingApproval, p.Status, truncateBody(p.Body))
		}
	})

	// The command line makes, lists and revokes initial access tokens and
	// approves held apps, through the running server's control socket.
	t.Run("command line", func(t *testing.T) {
		env := cliEnv(srv.dir)
		r := cliMust(t, env, "", "registration", "create-token", "--name", "partners", "--expires", "2h", "--max-uses", "2", "--hold-for-approval")
		m := regexp.MustCompile(`initial access token (kpi_\S+) \(id (\S+)\)`).FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("create-token output: %s", r)
		}
		iat, iatID := m[1], m[2]
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("cli"))
		if status != http.StatusCreated {
			t.Fatalf("register with the command line's token: %d %v", status, out)
		}
		id, _ := out["client_id"].(string)
		if c, _ := srv.Main.Store.GetClient(ctx, id); !c.PendingApproval {
			t.Error("the token's hold_for_approval did not hold the app")
		}
		if r := cliMust(t, env, "", "registration", "list-tokens"); !regexp.MustCompile(regexp.QuoteMeta(iatID)+`\s+partners\s+\S+\s+1 of 2\s+true`).MatchString(r.Stdout) || strings.Contains(r.Stdout, iat) {
			t.Errorf("list-tokens: %s", r)
		}
		cliMust(t, env, "", "client", "approve", "--id", id)
		if c, _ := srv.Main.Store.GetClient(ctx, id); c.PendingApproval {
			t.Error("client approve left the app held")
		}
		cliFail(t, env, "", 1, "not waiting for approval", "client", "approve", "--id", id)
		cliMust(t, env, "", "registration", "revoke-token", "--id", iatID)
		if status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("cli2")); status != http.StatusUnauthorized {
			t.Errorf("register with a revoked token: %d %v", status, out)
		}
		cliFail(t, env, "", 1, "No such initial access token", "registration", "revoke-token", "--id", iatID)
	})

	// An app name with a right-to-left override (or another bidi or
	// zero-width character) is refused where it can be chosen: at
	// registration (RFC 7591) with invalid_client_metadata naming
	// client_name, at an update (RFC 7592) and at a create or rename
	// through the management API with the field named; nothing is stored.
	// A name with an emoji's zero width joiner is accepted.
	t.Run("app names that read differently from their text are refused", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		spoofs := []string{"Secure \u202eelgooG", "Google\u2066 (untrusted)\u2069", "Goo\u200bgle"}
		for _, name := range spoofs {
			m := webMetadata("spoof")
			m["client_name"] = name
			status, _, body := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
			if status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" || !strings.HasPrefix(fmt.Sprint(body["error_description"]), "client_name: ") {
				t.Errorf("register %q: %d %v", name, status, body)
			}
			if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", adminToken, "application/json", jsonOf(t, map[string]any{
				"id": "spoof-name", "name": name, "redirect_uris": []string{"https://app.example.com/cb"},
			})); status != http.StatusBadRequest || body["field"] != "name" {
				t.Errorf("API create %q: %d %v", name, status, body)
			}
		}
		if _, err := srv.Main.Store.GetClient(ctx, "spoof-name"); err == nil {
			t.Error("a refused create stored the app")
		}
		list, err := srv.Main.Store.ListClients(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			if slices.Contains(spoofs, c.Name) {
				t.Errorf("a refused registration stored app %s (%q)", c.ID, c.Name)
			}
		}

		// The emoji with its zero width joiner is a name people use.
		dev := "👩\u200d💻 Dev"
		m := webMetadata("dev")
		m["client_name"] = dev
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
		if status != http.StatusCreated || out["client_name"] != dev {
			t.Fatalf("register %q: %d %v", dev, status, out)
		}
		regURI, _ := out["registration_client_uri"].(string)
		regToken, _ := out["registration_access_token"].(string)
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", adminToken, "application/json", jsonOf(t, map[string]any{
			"id": "dev-name", "name": dev, "redirect_uris": []string{"https://app.example.com/cb"},
		})); status != http.StatusCreated {
			t.Fatalf("API create %q: %d %v", dev, status, body)
		}

		// An update may not bring the override in either.
		m["client_name"], m["client_id"] = "Secure \u202eelgooG", out["client_id"]
		if status, _, body := registrationCall(t, srv, http.MethodPut, regURI, regToken, m); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" ||
			!strings.HasPrefix(fmt.Sprint(body["error_description"]), "client_name: ") {
			t.Errorf("RFC 7592 update to a spoofing name: %d %v", status, body)
		}
		if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/dev-name", adminToken, "application/json", jsonOf(t, map[string]any{"name": "Dev\u202e"})); status != http.StatusBadRequest || body["field"] != "name" {
			t.Errorf("API rename to a spoofing name: %d %v", status, body)
		}
		if c, err := srv.Main.Store.GetClient(ctx, "dev-name"); err != nil || c.Name != dev {
			t.Errorf("a refused rename changed the app: %q %v", c.Name, err)
		}
	})

	// Guessing tokens is throttled per client address ([limits]
	// max_login_attempts_per_address, 100 by default), as unknown API
	// tokens are; a holder of the right token is not held back.
	t.Run("throttled guesses", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("guessed"))
		uri, _ := reg["registration_client_uri"].(string)
		regToken, _ := reg["registration_access_token"].(string)
		guesser := browserFrom(t, "127.0.0.7")
		call := func(token string) (int, http.Header, map[string]any) {
			req, _ := http.NewRequest(http.MethodGet, uri, nil)
			req.Header.Set("Authorization", "Bearer "+token)
			return doJSON(t, guesser.client, req)
		}
		refusedAt := 0
		for i := 1; i <= 120 && refusedAt == 0; i++ {
			status, header, out := call(account.RegistrationAccessTokenPrefix + account.RandomString(20))
			switch status {
			case http.StatusUnauthorized:
			case http.StatusTooManyRequests:
				refusedAt = i
				if header.Get("Retry-After") == "" || out["error"] != "temporarily_unavailable" {
					t.Errorf("throttled answer: %v %v", header, out)
				}
			default:
				t.Fatalf("guess %d: %d %v", i, status, out)
			}
		}
		if refusedAt != 101 {
			t.Errorf("the guesses were throttled at %d, want 101", refusedAt)
		}
		if status, _, out := call(regToken); status != http.StatusOK {
			t.Errorf("the right token from the throttled address: %d %v", status, out)
		}
	})
}

// With [oauth] dynamic_registration off (the default), the endpoints are
// not found and discovery does not name them.
func TestDynamicRegistrationOff(t *testing.T) {
	srv := startServer(t, "", nil)
	adminToken, _, _ := adminTokens(t, srv)
	// An initial access token can be made ahead of switching it on, and
	// still registers nothing while it is off.
	iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
	// Every method on every path: a 405 would tell the endpoint is there.
	var calls []struct{ method, path string }
	for _, method := range []string{"POST", "GET", "PUT", "DELETE", "PATCH", "OPTIONS"} {
		for _, path := range []string{"/oauth/register", "/oauth/register/x"} {
			calls = append(calls, struct{ method, path string }{method, path})
		}
	}
	for _, c := range calls {
		if status, _, out := registrationCall(t, srv, c.method, c.path, iat, webMetadata("off")); status != http.StatusNotFound {
			t.Errorf("%s %s: %d %v", c.method, c.path, status, out)
		}
	}
	p := bareGet(t, srv.URL+"/.well-known/openid-configuration")
	if strings.Contains(p.Body, "registration_endpoint") {
		t.Errorf("discovery names the registration endpoint: %s", p.Body)
	}
	if clients, _ := srv.Main.Store.ListClients(context.Background()); len(clients) != 0 {
		t.Errorf("apps registered while off: %d", len(clients))
	}
}

// An app that registered itself names its own back-channel logout URI,
// which Keyport then posts to from the server: like its jwks_uri, that
// address goes through the SSRF guard (public addresses only unless an
// administrator allows a network), or a registrant could make Keyport
// post to services on its own machine or network. An administrator's app
// at the same loopback address still gets its logout token.
func TestRegisteredAppBackChannelLogoutGuarded(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DynamicRegistration = true })
	srv.createUser("lena", false)
	adminToken, _, _ := adminTokens(t, srv)
	ctx := context.Background()

	got := make(chan string, 16)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.URL.Path
		w.WriteHeader(http.StatusOK)
	}))
	defer recv.Close()
	admins := srv.createClient(account.NewClient{ID: "bc-admin", SkipConsent: true, BackchannelLogoutURI: recv.URL + "/admin"})

	iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
	m := webMetadata("bc")
	m["backchannel_logout_uri"] = recv.URL + "/registered"
	status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
	if status != http.StatusCreated {
		t.Fatalf("register: %d %v", status, out)
	}
	id, _ := out["client_id"].(string)
	secret, _ := out["client_secret"].(string)
	registered := srv.rp(id, secret, "http://127.0.0.1:9/callback/bc")

	b := newBrowser(t)
	for _, app := range []*testClient{admins, registered} {
		code, verifier := app.signIn(b, "lena")
		if _, err := app.exchange(code, verifier); err != nil {
			t.Fatalf("%s: %v", app.ID, err)
		}
	}
	b.submit(b.get(srv.URL+"/logout"), "/logout", nil)
	select {
	case p := <-got:
		if p != "/admin" {
			t.Fatalf("a logout token went to %s", p)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the administrator's app got no logout token")
	}
	// The registered app's message was attempted and refused by the guard.
	var refused storage.OutboxMessage
	for deadline := time.Now().Add(10 * time.Second); refused.ID == "" && time.Now().Before(deadline); {
		msgs, _, err := srv.Main.Store.ListOutbox(ctx, storage.OutboxQuery{Kind: account.OutboxBackChannelLogout})
		if err != nil {
			t.Fatal(err)
		}
		for _, msg := range msgs {
			if l, err := account.OpenBackChannelLogout(msg.Payload); err == nil && l.ClientID == id && msg.Attempts > 0 {
				refused = msg
			}
		}
		if refused.ID == "" {
			time.Sleep(20 * time.Millisecond)
		}
	}
	if refused.ID == "" || refused.State == storage.OutboxDelivered || !strings.Contains(refused.LastError, "loopback") {
		t.Errorf("the registered app's logout: %+v", refused)
	}
	select {
	case p := <-got:
		t.Errorf("a logout token went to %s", p)
	default:
	}
}

// Registrations that race for an initial access token's last use: on
// either backend exactly as many apps are registered as the token allows,
// and its use count says so.
func TestDynamicRegistrationUsesRace(t *testing.T) {
	for _, backend := range []string{"bolt", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			srv := startServer(t, "", func(c *config.Config) {
				c.OAuth.DynamicRegistration = true
				if backend == "postgres" {
					key := filepath.Join(t.TempDir(), "secret.key")
					if _, _, err := seal.LoadOrCreateKey(key, true); err != nil {
						t.Fatal(err)
					}
					c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, pgtest.Database(t), key
				}
			})
			adminToken, _, _ := adminTokens(t, srv)
			ctx := context.Background()
			for _, maxUses := range []int{1, 3} {
				iat, iatID := initialAccessToken(t, srv, adminToken, maxUses, false)
				const racers = 8
				statuses := make(chan int, racers)
				start := make(chan struct{})
				for i := range racers {
					go func() {
						body, _ := json.Marshal(webMetadata(fmt.Sprintf("race-%d-%d", maxUses, i)))
						req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth/register", strings.NewReader(string(body)))
						req.Header.Set("Content-Type", "application/json")
						req.Header.Set("Authorization", "Bearer "+iat)
						<-start
						resp, err := bareClient.Do(req)
						if err != nil {
							statuses <- 0
							return
						}
						resp.Body.Close()
						statuses <- resp.StatusCode
					}()
				}
				close(start)
				created := 0
				for range racers {
					switch s := <-statuses; s {
					case http.StatusCreated:
						created++
					case http.StatusUnauthorized:
					default:
						t.Errorf("max_uses %d: a racing registration got %d", maxUses, s)
					}
				}
				tok, err := srv.Main.Store.GetCredential(ctx, storage.InitialAccessTokenOwner, iatID)
				if err != nil {
					t.Fatal(err)
				}
				apps := 0
				clients, _ := srv.Main.Store.ListClients(ctx)
				for _, c := range clients {
					if strings.HasPrefix(c.Name, fmt.Sprintf("race-%d-", maxUses)) {
						apps++
					}
				}
				if created != maxUses || tok.Uses != maxUses || apps != maxUses {
					t.Errorf("max_uses %d: %d registered, %d uses counted, %d apps stored", maxUses, created, tok.Uses, apps)
				}
			}
		})
	}
}

// An issuer written with a trailing slash ("https://id.example/") still
// gets registration URLs without a double slash, which the router would
// answer with a redirect instead of the endpoint.
func TestDynamicRegistrationIssuerWithSlash(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.OAuth.DynamicRegistration = true
		c.Issuer += "/"
	})
	adminToken, _, _ := adminTokens(t, srv)
	var doc struct {
		RegistrationEndpoint string `json:"registration_endpoint"`
	}
	if err := json.Unmarshal([]byte(bareGet(t, srv.URL+"/.well-known/openid-configuration").Body), &doc); err != nil || doc.RegistrationEndpoint != srv.URL+"/oauth/register" {
		t.Errorf("registration_endpoint %q (%v)", doc.RegistrationEndpoint, err)
	}
	iat, _ := initialAccessToken(t, srv, adminToken, 0, false)
	status, header, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, webMetadata("slash"))
	id, _ := out["client_id"].(string)
	if status != http.StatusCreated || out["registration_client_uri"] != srv.URL+"/oauth/register/"+id || header.Get("Location") != out["registration_client_uri"] {
		t.Fatalf("register: %d %v", status, out)
	}
	regToken, _ := out["registration_access_token"].(string)
	if status, _, out := registrationCall(t, srv, http.MethodGet, out["registration_client_uri"].(string), regToken, nil); status != http.StatusOK {
		t.Errorf("read at registration_client_uri: %d %v", status, out)
	}
}

// jsonOf is v as JSON text.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
