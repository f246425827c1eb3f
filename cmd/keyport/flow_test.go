package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// hiddenFields are user fields that must never leave through tokens or userinfo.
var hiddenFields = []string{"blocked", "last_ip", "last_login", "logins_count", "password", "password_hash", "LastIP"}

func assertNoHiddenFields(t *testing.T, where string, raw []byte) {
	t.Helper()
	for _, f := range hiddenFields {
		if strings.Contains(string(raw), `"`+f+`"`) {
			t.Errorf("%s leaks %q: %s", where, f, raw)
		}
	}
}

func jwtPayload(t *testing.T, jwt string) []byte {
	t.Helper()
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", jwt)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCodeFlowEndToEnd(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	// Give alice internal data that must stay internal.
	if _, err := srv.Main.Accounts.SignIn.Authenticate(context.Background(), account.Credentials{Login: "alice", Password: testPassword, IP: "203.0.113.9"}); err != nil {
		t.Fatal(err)
	}
	app := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki"})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, "profile", "email", oidc.ScopeOfflineAccess}
	b := newBrowser(t)

	// First visit: login page, then consent listing the scopes.
	verifier, challenge := pkce()
	p := app.authorize(b, "state-1", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"), oidc.Nonce("n-1"))
	if !isLoginPage(p) || !strings.Contains(p.Body, "Team Wiki") {
		t.Fatalf("expected the login page naming the app, got %d\n%s", p.Status, truncateBody(p.Body))
	}
	wrong := b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {"wrong password!"}})
	if wrong.Status != http.StatusUnauthorized || !strings.Contains(wrong.Body, "Incorrect username or password") {
		t.Fatalf("wrong password: %d\n%s", wrong.Status, truncateBody(wrong.Body))
	}
	p = b.submit(wrong, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if !isConsentPage(p) {
		t.Fatalf("expected consent, got %d\n%s", p.Status, truncateBody(p.Body))
	}
	for _, want := range []string{"email", "profile", "offline_access", "Team Wiki"} {
		if !strings.Contains(p.Body, want) {
			t.Errorf("consent page does not mention %q", want)
		}
	}
	p = b.submit(p, "/consent", url.Values{"decision": {"allow"}})
	res := landed(t, p, app.RedirectURI)
	if res.State != "state-1" || res.Code == "" {
		t.Fatalf("callback: %+v", res)
	}
	if res.Iss != srv.URL {
		t.Errorf("RFC 9207 iss = %q, want %q", res.Iss, srv.URL)
	}

	tok, err := app.exchange(res.Code, verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := app.verifier.Verify(context.Background(), rawID)
	if err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
	if idt.Subject != alice.ID || idt.Subject == "alice" || idt.Nonce != "n-1" {
		t.Errorf("ID token sub=%q nonce=%q", idt.Subject, idt.Nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Errorf("at_hash: %v", err)
	}
	var claims struct {
		AMR      []string `json:"amr"`
		ACR      string   `json:"acr"`
		AuthTime int64    `json:"auth_time"`
		Email    string   `json:"email"`
		Name     string   `json:"name"`
		Username string   `json:"preferred_username"`
	}
	if err := idt.Claims(&claims); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(claims.AMR, []string{"pwd"}) || claims.ACR == "" || claims.AuthTime == 0 {
		t.Errorf("amr=%v acr=%q auth_time=%d", claims.AMR, claims.ACR, claims.AuthTime)
	}
	if claims.Email != "alice@example.com" || claims.Username != "alice" || claims.Name != "Alice Tester" {
		t.Errorf("ID token profile claims: %+v", claims)
	}
	assertNoHiddenFields(t, "ID token", jwtPayload(t, rawID))
	if tok.RefreshToken == "" {
		t.Fatal("no refresh token with offline_access")
	}

	// Userinfo through go-oidc: claims per scope, nothing internal.
	ui, err := app.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if ui.Subject != alice.ID || ui.Email != "alice@example.com" {
		t.Errorf("userinfo sub=%q email=%q", ui.Subject, ui.Email)
	}
	_, _, raw := srv.userinfo(tok.AccessToken)
	rawJSON, _ := json.Marshal(raw)
	assertNoHiddenFields(t, "userinfo", rawJSON)
	if _, ok := raw["phone_number"]; ok {
		t.Error("phone claim without phone scope")
	}

	// Single sign-on: the same browser goes straight back, with no login or
	// consent page (consent is remembered per user and client).
	p = app.authorize(b, "state-2", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	if r2 := landed(t, p, app.RedirectURI); r2.Code == "" {
		t.Fatalf("SSO: %+v", r2)
	}

	// A narrower scope set is covered by the earlier consent.
	p = app.authorize(b, "state-3", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"), oauth2.SetAuthURLParam("scope", "openid email"))
	landed(t, p, app.RedirectURI)

	// prompt=consent asks again; prompt=login asks for the password again.
	p = app.authorize(b, "s4", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"), oauth2.SetAuthURLParam("prompt", "consent"))
	if !isConsentPage(p) {
		t.Fatalf("prompt=consent did not show consent: %d", p.Status)
	}
	p = app.authorize(b, "s5", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"), oauth2.SetAuthURLParam("prompt", "login"))
	if !isLoginPage(p) {
		t.Fatalf("prompt=login did not show the login page: %d", p.Status)
	}
	p = app.finish(b, p, "alice")
	landed(t, p, app.RedirectURI)

	// max_age=0 forces a fresh sign-in too.
	p = app.authorize(b, "s6", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"), oauth2.SetAuthURLParam("max_age", "0"))
	if !isLoginPage(p) {
		t.Fatalf("max_age=0 did not show the login page: %d", p.Status)
	}
}

func TestRefreshRotationAndReuse(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("bob", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	code, verifier := app.signIn(newBrowser(t), "bob")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	first := tok.RefreshToken

	refresh := func(rt string) (int, map[string]any) {
		status, h, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true)
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("token response Cache-Control = %q", h.Get("Cache-Control"))
		}
		return status, body
	}
	status, body := refresh(first)
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, body)
	}
	second, _ := body["refresh_token"].(string)
	if second == "" || second == first {
		t.Fatalf("refresh token not rotated: %v", body)
	}
	if idt, _ := body["id_token"].(string); idt == "" {
		t.Error("refresh response has no ID token")
	} else if _, err := app.verifier.Verify(context.Background(), idt); err != nil {
		t.Errorf("refreshed ID token: %v", err)
	}
	status, body = refresh(second)
	third, _ := body["refresh_token"].(string)
	if status != 200 || third == "" || third == second {
		t.Fatalf("second refresh: %d %v", status, body)
	}
	access3, _ := body["access_token"].(string)

	// Reusing the first token once its successor has been used fails and
	// revokes the family, reuse grace or not: the third token and its
	// access token die with it.
	if status, body := refresh(first); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", status, body)
	}
	if status, body := refresh(third); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("family not revoked after reuse: %d %v", status, body)
	}
	if status, _, _ := srv.userinfo(access3); status != 401 {
		t.Errorf("access token of a revoked family still works at userinfo: %d", status)
	}
}

// Refresh tokens carry a time prefix so their storage keys grow with time
// (provider.refreshKey). Tokens issued before that, stored under the plain
// hash of a bare secret, must keep working and rotate into the new shape.
func TestRefreshTokenFromBeforeTheTimePrefix(t *testing.T) {
	srv := startServer(t, "", nil)
	u := srv.createUser("olga", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	ctx := context.Background()
	now := time.Now()
	legacy := account.NewSecret()
	family := account.NewID()
	rt := storage.RefreshToken{
		Hash: account.HashSecret(legacy), ID: account.NewID(), FamilyID: family, ClientID: app.ID, UserID: u.ID,
		Scopes: []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess, "email"}, AMR: []string{"pwd"}, AuthTime: now.Add(-time.Hour),
		CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(24 * time.Hour), IdleExpiresAt: now.Add(time.Hour),
	}
	access := storage.AccessToken{ID: account.NewID(), ClientID: app.ID, UserID: u.ID, Subject: u.ID, FamilyID: family,
		Scopes: rt.Scopes, CreatedAt: rt.CreatedAt, ExpiresAt: now.Add(time.Minute)}
	if err := srv.Main.Store.CreateTokens(ctx, access, &rt); err != nil {
		t.Fatal(err)
	}

	refresh := func(token string) (int, map[string]any) {
		status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}}, true)
		return status, body
	}
	status, body := refresh(legacy)
	if status != 200 {
		t.Fatalf("refresh with a token from before the prefix: %d %v", status, body)
	}
	next, _ := body["refresh_token"].(string)
	if len(next) != len(legacy)+10 || next[:10] > account.NewOrderedID()[:10] {
		t.Fatalf("rotated token %q: want a 10-character time prefix before a %d-character secret", next, len(legacy))
	}
	idt, _ := body["id_token"].(string)
	claims, err := app.verifier.Verify(ctx, idt)
	if err != nil || claims.Subject != u.ID {
		t.Fatalf("ID token from the old token's refresh: %v %v", claims, err)
	}
	// The new token works and rotates again, each time to a later prefix.
	status, body = refresh(next)
	third, _ := body["refresh_token"].(string)
	if status != 200 || third == "" || third[:10] < next[:10] {
		t.Fatalf("second refresh: %d %v", status, body)
	}
	// Reuse of the old-format token is still caught and ends the family.
	if status, body := refresh(legacy); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("reuse of the old-format token: %d %v", status, body)
	}
	if status, body := refresh(third); status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("family survived the reuse of its old-format token: %d %v", status, body)
	}
	// Tokens of other shapes find nothing and change nothing.
	for _, bad := range []string{next[:10], next + "x", next[:len(next)-1], strings.Repeat("0", len(next))} {
		if status, body := refresh(bad); status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("refresh with %q: %d %v", bad, status, body)
		}
	}
}

func TestRefreshSurvivesRestart(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("carol", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess, "email"}
	b := newBrowser(t)
	code, verifier := app.signIn(b, "carol")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	kid := srv.Main.Keys.SigningKeyID()
	jwks := string(srv.Main.Keys.JWKS())

	srv2 := srv.restart()
	if got := srv2.Main.Keys.SigningKeyID(); got != kid {
		t.Errorf("signing key changed across restart: %s -> %s", kid, got)
	}
	if got := string(srv2.Main.Keys.JWKS()); got != jwks {
		t.Error("JWKS changed across restart")
	}
	// The access token from before the restart still works, and so does the refresh token.
	if status, _, body := srv2.userinfo(tok.AccessToken); status != 200 || body["email"] != "carol@example.com" {
		t.Errorf("userinfo after restart: %d %v", status, body)
	}
	app2 := srv2.rp(app.ID, app.Secret, app.RedirectURI)
	// The browser's single sign-on session survived too.
	_, challenge := pkce()
	p := app2.authorize(b, "after-restart", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	if res := landed(t, p, app2.RedirectURI); res.Code == "" {
		t.Errorf("SSO after restart: %+v", res)
	}
	status, _, body := app2.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != 200 {
		t.Fatalf("refresh after restart: %d %v", status, body)
	}
	if idt, _ := body["id_token"].(string); idt != "" {
		if _, err := app2.verifier.Verify(context.Background(), idt); err != nil {
			t.Errorf("ID token after restart: %v", err)
		}
	}
}

func TestClientCredentialsIntrospectRevoke(t *testing.T) {
	srv := startServer(t, "", nil)
	m2m := srv.createClient(account.NewClient{ID: "worker", GrantTypes: []string{account.GrantClientCredentials}})
	rs := srv.createClient(account.NewClient{ID: "api", GrantTypes: []string{account.GrantClientCredentials}})

	status, h, body := m2m.tokenPost(url.Values{"grant_type": {"client_credentials"}, "scope": {"reports:read openid"}}, true)
	if status != 200 || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("client_credentials: %d %v %v", status, h, body)
	}
	at, _ := body["access_token"].(string)
	if at == "" || body["refresh_token"] != nil || body["id_token"] != nil {
		t.Fatalf("machine token response: %v", body)
	}
	if body["scope"] != "reports:read" {
		t.Errorf("scope = %v (user scopes must be dropped for machines)", body["scope"])
	}

	// A resource server introspects it (RFC 7662).
	status, h, intro := srv.postForm("/oauth/introspect", url.Values{"token": {at}}, rs.ID, rs.Secret)
	if status != 200 || intro["active"] != true || intro["client_id"] != "worker" || intro["sub"] != "worker" {
		t.Fatalf("introspect: %d %v", status, intro)
	}
	if h.Get("Cache-Control") != "no-store" {
		t.Errorf("introspection Cache-Control = %q", h.Get("Cache-Control"))
	}
	// Introspection needs client authentication.
	status, h, body = srv.postForm("/oauth/introspect", url.Values{"token": {at}}, rs.ID, "wrong-secret-xxxxxxxx")
	if status != 401 || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") || body["error"] != "invalid_client" {
		t.Errorf("introspect with a bad secret: %d %q %v", status, h.Get("WWW-Authenticate"), body)
	}
	status, _, _ = srv.postForm("/oauth/introspect", url.Values{"token": {at}}, "", "")
	if status != 401 {
		t.Errorf("introspect without credentials: %d", status)
	}
	// client_secret_post works as at the token endpoint, with the same checks.
	status, _, intro = srv.postForm("/oauth/introspect", url.Values{"token": {at}, "client_id": {rs.ID}, "client_secret": {rs.Secret}}, "", "")
	if status != 200 || intro["active"] != true || intro["client_id"] != "worker" {
		t.Errorf("introspect with client_secret_post: %d %v", status, intro)
	}
	status, _, body = srv.postForm("/oauth/introspect", url.Values{"token": {at}, "client_id": {rs.ID}, "client_secret": {"wrong-secret-xxxxxxxx"}}, "", "")
	if status != 401 || body["error"] != "invalid_client" {
		t.Errorf("introspect with a wrong posted secret: %d %v", status, body)
	}
	status, _, body = srv.postForm("/oauth/introspect", url.Values{"token": {at}, "client_id": {rs.ID}, "client_secret": {rs.Secret}}, rs.ID, rs.Secret)
	if status != 400 {
		t.Errorf("introspect with Basic and client_secret_post at once: %d %v", status, body)
	}
	status, _, body = srv.postForm("/oauth/introspect", url.Values{"token": {at}, "client_id": {rs.ID}}, "", "")
	if status != 401 || body["error"] != "invalid_client" {
		t.Errorf("introspect with a client_id and no secret: %d %v", status, body)
	}
	// A machine token is no key to userinfo.
	if status, h, _ := srv.userinfo(at); status != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Errorf("userinfo with a machine token: %d %q", status, h.Get("WWW-Authenticate"))
	}

	// Another client cannot revoke it; its owner can (RFC 7009).
	if status, _, body := srv.postForm("/revoke", url.Values{"token": {at}}, rs.ID, rs.Secret); status < 400 || status >= 500 {
		t.Errorf("revoke by another client: %d %v", status, body)
	}
	if _, _, intro := srv.postForm("/oauth/introspect", url.Values{"token": {at}}, rs.ID, rs.Secret); intro["active"] != true {
		t.Fatal("another client's revocation took effect")
	}
	if status, _, body := srv.postForm("/revoke", url.Values{"token": {at}}, m2m.ID, m2m.Secret); status != 200 {
		t.Fatalf("revoke: %d %v", status, body)
	}
	if _, _, intro := srv.postForm("/oauth/introspect", url.Values{"token": {at}}, rs.ID, rs.Secret); intro["active"] != false {
		t.Errorf("revoked token still active: %v", intro)
	}
	// Unknown tokens are not an error (RFC 7009 §2.2).
	if status, _, _ := srv.postForm("/revoke", url.Values{"token": {"nonsense"}}, m2m.ID, m2m.Secret); status != 200 {
		t.Errorf("revoke unknown token: %d", status)
	}
}

func TestEndSession(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("dave", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	b := newBrowser(t)
	code, verifier := app.signIn(b, "dave")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	idToken, _ := tok.Extra("id_token").(string)

	// An unregistered post_logout_redirect_uri is refused and changes nothing.
	q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"https://evil.example/"}}
	p := b.get(srv.URL + "/end_session?" + q.Encode())
	if p.Status != 400 || p.Location != "" {
		t.Fatalf("unregistered post-logout URI: %d %q", p.Status, p.Location)
	}

	q = url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye/app"}, "state": {"bye-1"}}
	p = b.get(srv.URL + "/end_session?" + q.Encode())
	if p.Status != 302 || p.Location != "http://127.0.0.1:9/bye/app?state=bye-1" {
		t.Fatalf("end_session: %d %q", p.Status, p.Location)
	}
	// The browser is signed out: the next authorization asks for a login.
	_, challenge := pkce()
	p = app.authorize(b, "again", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	if !isLoginPage(p) {
		t.Fatalf("still signed in after logout: %d %s", p.Status, p.Location)
	}
	// And the app's refresh token ended with the session.
	status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh after logout: %d %v", status, body)
	}
	// Without a redirect URI, logout lands on Keyport's own page.
	p = b.get(srv.URL + "/end_session")
	if p.Status != 200 || p.URL.Path != "/logged-out" || !strings.Contains(p.Body, "signed out") {
		t.Errorf("plain end_session: %d %s", p.Status, p.URL)
	}
}

func TestKeyRotation(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("erin", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	b := newBrowser(t)
	code, verifier := app.signIn(b, "erin")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	oldID, _ := tok.Extra("id_token").(string)
	oldKid := srv.Main.Keys.SigningKeyID()

	if err := srv.Main.Keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	newKid := srv.Main.Keys.SigningKeyID()
	if newKid == oldKid {
		t.Fatal("rotation kept the same key")
	}
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	resp, err := http.Get(srv.URL + "/keys")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&set)
	resp.Body.Close()
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	if !slices.Contains(kids, oldKid) || !slices.Contains(kids, newKid) {
		t.Fatalf("JWKS after rotation = %v, want both %s and %s", kids, oldKid, newKid)
	}
	// A fresh relying party (empty key cache) still verifies the old token.
	fresh := srv.rp(app.ID, app.Secret, app.RedirectURI)
	if _, err := fresh.verifier.Verify(context.Background(), oldID); err != nil {
		t.Errorf("old ID token after rotation: %v", err)
	}
	code, verifier = app.signIn(b, "erin")
	tok, err = fresh.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	newID, _ := tok.Extra("id_token").(string)
	var hdr struct {
		Kid string `json:"kid"`
	}
	h, _ := base64.RawURLEncoding.DecodeString(strings.Split(newID, ".")[0])
	json.Unmarshal(h, &hdr)
	if hdr.Kid != newKid {
		t.Errorf("new token signed with %q, want %q", hdr.Kid, newKid)
	}
	if _, err := fresh.verifier.Verify(context.Background(), newID); err != nil {
		t.Errorf("new ID token: %v", err)
	}
	// The rotation survives a restart.
	srv2 := srv.restart()
	if srv2.Main.Keys.SigningKeyID() != newKid {
		t.Error("rotated key not kept across restart")
	}
}

// The code goes only to the browser that signed in, and only once.
func TestCallbackBoundToBrowser(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("fay", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	victim := newBrowser(t)
	app.signIn(victim, "fay")
	var callback string
	for _, u := range victim.visited {
		if strings.Contains(u, "/authorize/callback") {
			callback = u
		}
	}
	if callback == "" {
		t.Fatalf("no callback among %v", victim.visited)
	}
	// Someone else replaying the callback URL gets an error page, no code.
	p := newBrowser(t).get(callback)
	if p.Status != http.StatusBadRequest || p.Location != "" || strings.Contains(p.Body, "code=") {
		t.Fatalf("foreign browser at the callback: %d %q", p.Status, p.Location)
	}
	// The victim's own browser replaying it gets no second code either.
	p = victim.get(callback)
	if p.Status == http.StatusFound && strings.Contains(p.Location, "code=") {
		t.Fatalf("second code issued: %q", p.Location)
	}
	if p.Status >= 500 {
		t.Fatalf("replayed callback: %d", p.Status)
	}
}

// RFC 6749 §4.1.2: a code used twice is refused, and what it produced is revoked.
func TestCodeReuseRevokesTokens(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	code, verifier := app.signIn(newBrowser(t), "gus")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := srv.userinfo(tok.AccessToken); status != 200 {
		t.Fatalf("userinfo before the replay: %d", status)
	}
	if _, err := app.exchange(code, verifier); oauthErr(err) != "invalid_grant" {
		t.Fatalf("second exchange: %v", err)
	}
	if status, _, _ := srv.userinfo(tok.AccessToken); status != 401 {
		t.Errorf("access token still works after the code was replayed: %d", status)
	}
	status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh token still works after the code was replayed: %d %v", status, body)
	}
}

// An authorization request belongs to the first browser that opens its
// sign-in page: someone who learns the request ID cannot finish it with their
// own account and hand the victim a code carrying the victim's state.
func TestAuthRequestBoundToFirstBrowser(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("victim", false)
	srv.createUser("mallory", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	victim, attacker := newBrowser(t), newBrowser(t)
	_, challenge := pkce()
	p := app.authorize(victim, "victim-state", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	if !isLoginPage(p) {
		t.Fatalf("victim: %d", p.Status)
	}
	stolen := p.URL.String() // /login?authRequestID=…
	q := attacker.get(stolen)
	if q.Status != http.StatusNotFound || isLoginPage(q) {
		t.Fatalf("attacker opened the victim's sign-in page: %d", q.Status)
	}
	// Even with their own page's CSRF token, the attacker cannot post for it.
	own := attacker.get(srv.URL + "/login")
	form := formFields(own.Body)
	form.Set("authRequestID", formFields(p.Body).Get("authRequestID"))
	form.Set("login", "mallory")
	form.Set("password", testPassword)
	if r := attacker.post(srv.URL+"/login", form); r.Status != http.StatusNotFound || strings.Contains(r.Location, "code=") {
		t.Fatalf("attacker posted the victim's request: %d %q", r.Status, r.Location)
	}
	// The victim is unaffected.
	p = app.finish(victim, p, "victim")
	if res := landed(t, p, app.RedirectURI); res.Code == "" || res.State != "victim-state" {
		t.Fatalf("victim's flow: %+v", res)
	}
}

// OpenID Connect Discovery 1.0 §3 and RFC 8414 fields a client relies on.
func TestDiscoveryDocument(t *testing.T) {
	srv := startServer(t, "", nil)
	resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var d map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
		t.Fatal(err)
	}
	if resp.Header.Get("Content-Type") != "application/json" || resp.Header.Get("ETag") == "" {
		t.Errorf("headers: %v", resp.Header)
	}
	if d["issuer"] != srv.URL {
		t.Errorf("issuer = %v", d["issuer"])
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri", "end_session_endpoint", "revocation_endpoint", "introspection_endpoint"} {
		if v, _ := d[k].(string); !strings.HasPrefix(v, srv.URL+"/") {
			t.Errorf("%s = %v", k, d[k])
		}
	}
	has := func(k, v string) bool {
		list, _ := d[k].([]any)
		return slices.Contains(list, any(v))
	}
	for k, v := range map[string]string{
		"response_types_supported": "code", "subject_types_supported": "public", "id_token_signing_alg_values_supported": "RS256",
		"code_challenge_methods_supported": "S256", "grant_types_supported": "client_credentials", "scopes_supported": "offline_access",
		"token_endpoint_auth_methods_supported": "client_secret_basic",
	} {
		if !has(k, v) {
			t.Errorf("%s lacks %q: %v", k, v, d[k])
		}
	}
	for _, k := range []string{"token_endpoint_auth_methods_supported", "introspection_endpoint_auth_methods_supported", "revocation_endpoint_auth_methods_supported"} {
		for _, v := range []string{"client_secret_basic", "client_secret_post"} {
			if !has(k, v) {
				t.Errorf("%s lacks %q: %v", k, v, d[k])
			}
		}
	}
	if has("code_challenge_methods_supported", "plain") {
		t.Error("advertises something it refuses")
	}
	if d["authorization_response_iss_parameter_supported"] != true {
		t.Error("RFC 9207 not advertised")
	}
	// Conditional requests are answered from the prepared document.
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/.well-known/openid-configuration", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	r2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r2.Body.Close()
	if r2.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d", r2.StatusCode)
	}
}

// A refresh token works only for the client it was issued to, and only for
// the scopes it was granted (RFC 6749 §6). A refusal changes nothing: the
// token still works for its owner afterwards.
func TestRefreshBoundToClientAndScope(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("rita", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	other := srv.createClient(account.NewClient{ID: "other", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeOfflineAccess}
	tok := app.tokens("rita")
	rt := tok.RefreshToken

	if status, _, body := other.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh with another client's token: %d %v", status, body)
	}
	if status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"openid email profile offline_access"}}, true); status != 400 || body["error"] != "invalid_scope" {
		t.Errorf("refresh asking for a scope never granted: %d %v", status, body)
	}

	// Still the owner's, and it may narrow the scope.
	status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "scope": {"openid offline_access"}}, true)
	if status != 200 {
		t.Fatalf("refresh by its owner after the refusals: %d %v", status, body)
	}
	if scope, _ := body["scope"].(string); strings.Contains(scope, "email") {
		t.Errorf("narrowed refresh still grants email: scope %q", scope)
	}
	at, _ := body["access_token"].(string)
	if status, _, claims := srv.userinfo(at); status != 200 || claims["email"] != nil || claims["sub"] == nil {
		t.Errorf("userinfo after narrowing: %d %v", status, claims)
	}
}

// Variants the OpenID conformance suite's basic plan exercises: the
// authorization request sent as a POST form (OIDC Core §3.1.2.1), userinfo
// asked by POST with the token in the header or the body (RFC 6750 §2.1,
// §2.2), and prompt=none with the id_token_hint of the signed-in user.
func TestConformanceVariants(t *testing.T) {
	srv := startServer(t, "", nil)
	gus := srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, "email"}
	b := newBrowser(t)

	verifier, challenge := pkce()
	form := url.Values{
		"client_id": {app.ID}, "redirect_uri": {app.RedirectURI}, "response_type": {"code"}, "scope": {"openid email"},
		"state": {"post-1"}, "nonce": {"n-post"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	p := app.finish(b, b.post(srv.URL+"/authorize", form), "gus")
	res := landed(t, p, app.RedirectURI)
	if res.Code == "" || res.State != "post-1" {
		t.Fatalf("authorization request by POST ended with %+v", res)
	}
	tok, err := app.exchange(res.Code, verifier)
	if err != nil {
		t.Fatal(err)
	}

	userinfo := func(req *http.Request) (int, map[string]any) {
		status, _, body := doJSON(t, nil, req)
		return status, body
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	if status, body := userinfo(req); status != 200 || body["sub"] != gus.ID || body["email"] == nil {
		t.Errorf("userinfo by POST with the header: %d %v", status, body)
	}
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/userinfo", strings.NewReader(url.Values{"access_token": {tok.AccessToken}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if status, body := userinfo(req); status != 200 || body["sub"] != gus.ID {
		t.Errorf("userinfo by POST with the token in the body: %d %v", status, body)
	}

	// Signed in already: prompt=none with the user's ID token as the hint
	// answers at once.
	rawID, _ := tok.Extra("id_token").(string)
	_, challenge = pkce()
	p = app.authorize(b, "hint-1", oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", rawID),
		oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	if res := landed(t, p, app.RedirectURI); res.Code == "" || res.Error != "" || res.State != "hint-1" {
		t.Errorf("prompt=none with the user's id_token_hint: %+v", res)
	}
	// Another user's hint does not sign in as them, nor as gus.
	other := srv.createUser("hal", false)
	halID, _ := app.tokens("hal").Extra("id_token").(string)
	p = app.authorize(b, "hint-2", oauth2.SetAuthURLParam("prompt", "none"), oauth2.SetAuthURLParam("id_token_hint", halID),
		oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	if res := landed(t, p, app.RedirectURI); res.Code != "" || res.Error == "" {
		t.Errorf("prompt=none with another user's (%s) hint: %+v", other.ID, res)
	}
}

// Browser apps (public clients) call the provider's endpoints from their
// own origin: the CORS preflight and the real request must both pass.
func TestCORSForBrowserApps(t *testing.T) {
	srv := startServer(t, "", nil)
	m2m := srv.createClient(account.NewClient{ID: "worker", GrantTypes: []string{account.GrantClientCredentials}})
	const origin = "https://spa.example"
	for _, c := range []struct{ path, method, headers string }{
		{"/oauth/token", "POST", "content-type"},
		{"/revoke", "POST", "content-type"},
		{"/oauth/introspect", "POST", "authorization, content-type"},
		{"/userinfo", "GET", "authorization"},
		{"/keys", "GET", ""},
	} {
		req, _ := http.NewRequest(http.MethodOptions, srv.URL+c.path, nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", c.method)
		if c.headers != "" {
			req.Header.Set("Access-Control-Request-Headers", c.headers)
		}
		r := mustFetch(t, bareClient, req)
		if allow := r.Header.Get("Access-Control-Allow-Origin"); r.Status < 200 || r.Status > 299 || allow != origin && allow != "*" ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), c.method) {
			t.Errorf("preflight of %s %s: %d %v", c.method, c.path, r.Status, r.Header)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	req.SetBasicAuth(m2m.ID, m2m.Secret)
	if r := mustFetch(t, bareClient, req); r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != origin {
		t.Errorf("token request from a browser app: %d %v", r.Status, r.Header)
	}
	// OPTIONS is no way around POST-only: without a preflight's headers it
	// is refused.
	req, _ = http.NewRequest(http.MethodOptions, srv.URL+"/oauth/token?grant_type=client_credentials", nil)
	req.SetBasicAuth(m2m.ID, m2m.Secret)
	if r := mustFetch(t, bareClient, req); r.Status < 400 || r.Status >= 500 || strings.Contains(string(r.Body), "access_token") {
		t.Errorf("plain OPTIONS at the token endpoint: %d %s", r.Status, r.Body)
	}
}

// RFC 7009's main case: an app revokes its refresh token when the user signs
// out of it. The token and the access tokens of its grant stop working;
// another client cannot revoke it.
func TestRevokeRefreshToken(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("ivy", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	other := srv.createClient(account.NewClient{ID: "other", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	tok := app.tokens("ivy")

	if status, _, body := srv.postForm("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, other.ID, other.Secret); status == 200 {
		t.Errorf("another client revoked the refresh token: %d %v", status, body)
	}
	if status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true); status != 200 {
		t.Fatalf("refresh after another client's revocation: %d %v", status, body)
	} else {
		tok.RefreshToken, _ = body["refresh_token"].(string)
		tok.AccessToken, _ = body["access_token"].(string)
	}

	if status, _, body := srv.postForm("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, app.ID, app.Secret); status != 200 {
		t.Fatalf("revoke the refresh token: %d %v", status, body)
	}
	if status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true); status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("refresh with a revoked token: %d %v", status, body)
	}
	if status, _, _ := srv.userinfo(tok.AccessToken); status != 401 {
		t.Errorf("access token of a revoked grant at userinfo: %d", status)
	}
	// Revoking it again, or with the wrong hint, is still a success (§2.2).
	if status, _, body := srv.postForm("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}, app.ID, app.Secret); status != 200 {
		t.Errorf("revoke again: %d %v", status, body)
	}
}

// Introspection of a refresh token (RFC 7662 §2.1): its client learns that
// it is active and whose it is; other clients learn nothing; looking at a
// rotated token is not a reuse.
func TestIntrospectRefreshToken(t *testing.T) {
	srv := startServer(t, "", nil)
	june := srv.createUser("june", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	other := srv.createClient(account.NewClient{ID: "other", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	tok := app.tokens("june")
	introspect := func(token, id, secret string) (int, http.Header, map[string]any) {
		return srv.postForm("/oauth/introspect", url.Values{"token": {token}, "token_type_hint": {"refresh_token"}}, id, secret)
	}

	status, h, got := introspect(tok.RefreshToken, app.ID, app.Secret)
	scope, _ := got["scope"].(string)
	if status != 200 || got["active"] != true || got["client_id"] != app.ID || got["sub"] != june.ID || got["username"] != "june" ||
		got["exp"] == nil || !strings.Contains(scope, "offline_access") || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("introspect the refresh token: %d %v %v", status, h, got)
	}
	if _, _, got := srv.postForm("/oauth/introspect", url.Values{"token": {tok.RefreshToken}, "client_id": {app.ID}, "client_secret": {app.Secret}}, "", ""); got["active"] != true {
		t.Errorf("introspect with client_secret_post: %v", got)
	}
	if _, _, got := introspect(tok.RefreshToken, other.ID, other.Secret); got["active"] != false || len(got) != 1 {
		t.Errorf("another client introspects it: %v", got)
	}
	if status, _, got := introspect(tok.RefreshToken, app.ID, "wrong-secret-xxxxxxxx"); status != 401 || got["error"] != "invalid_client" {
		t.Errorf("wrong secret: %d %v", status, got)
	}
	if status, _, got := introspect(tok.RefreshToken, "", ""); status != 401 || got["active"] != nil {
		t.Errorf("no credentials: %d %v", status, got)
	}

	// Rotate; the old token is inactive, and looking at it revoked nothing.
	status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, body)
	}
	next, _ := body["refresh_token"].(string)
	if _, _, got := introspect(tok.RefreshToken, app.ID, app.Secret); got["active"] != false {
		t.Errorf("a rotated token: %v", got)
	}
	if _, _, got := introspect(next, app.ID, app.Secret); got["active"] != true {
		t.Errorf("the next token after the old one was looked at: %v", got)
	}

	// A blocked user's token is inactive.
	if err := srv.Main.Accounts.Users.SetBlocked(context.Background(), "june", true); err != nil {
		t.Fatal(err)
	}
	if _, _, got := introspect(next, app.ID, app.Secret); got["active"] != false || len(got) != 1 {
		t.Errorf("a blocked user's refresh token: %v", got)
	}
}
