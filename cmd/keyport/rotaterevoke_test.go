package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// TestRotateSecretRevokesTokens: apps fetch real client_credentials
// tokens (x/oauth2/clientcredentials), opaque and JWT, and alice signs in
// to a JWT app with a real code flow. A rotation without revoke_tokens
// leaves every token working; with it (through the API, and through the
// CLI's --revoke-tokens), the app's tokens fail at once at introspection,
// the management API, userinfo and the refresh grant, even while the old
// secret is still within its grace; other apps' tokens keep working.
func TestRotateSecretRevokesTokens(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, _, _ := adminTokens(t, srv)
	ctx := context.Background()
	observer := srv.createClient(account.NewClient{ID: "observer", GrantTypes: []string{account.GrantClientCredentials}})
	mkBot := func(id string, jwt bool) string {
		body := `{"id":"` + id + `","grant_types":["client_credentials"],"allowed_scopes":["keyport:admin.read"],"access_token_jwt":` + map[bool]string{true: "true", false: "false"}[jwt] + `}`
		status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", body)
		if status != http.StatusCreated {
			t.Fatalf("create %s: %d %v", id, status, out)
		}
		return out["secret"].(string)
	}
	ccToken := func(id, secret string) string {
		cc := clientcredentials.Config{ClientID: id, ClientSecret: secret, TokenURL: srv.URL + "/oauth/token", Scopes: []string{account.ScopeAdminRead}}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("%s's client_credentials token: %v", id, err)
		}
		return tok.AccessToken
	}
	active := func(tok string) bool { return observer.introspect(t, tok)["active"] == true }
	apiStatus := func(tok string) int {
		status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients", tok, "", "")
		return status
	}
	works := func(what, tok string, want bool) {
		t.Helper()
		if got := active(tok); got != want {
			t.Errorf("%s: introspection active=%v, want %v", what, got, want)
		}
		if status, wantStatus := apiStatus(tok), map[bool]int{true: http.StatusOK, false: http.StatusUnauthorized}[want]; status != wantStatus {
			t.Errorf("%s at the management API: %d, want %d", what, status, wantStatus)
		}
	}
	rotate := func(id, body string) map[string]any {
		t.Helper()
		status, hdr, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/rotate-secret", rw, "application/json", body)
		if status != http.StatusOK || hdr.Get("ETag") == "" {
			t.Fatalf("rotate %s with %s: %d %v", id, body, status, out)
		}
		return out
	}

	opaqueSecret, jwtSecret := mkBot("opaque-bot", false), mkBot("jwt-bot", true)
	opaque, jwt := ccToken("opaque-bot", opaqueSecret), ccToken("jwt-bot", jwtSecret)
	if strings.Count(jwt, ".") != 2 || strings.Count(opaque, ".") == 2 {
		t.Fatalf("token shapes: opaque %q, jwt %q", opaque, jwt)
	}
	works("opaque-bot's token", opaque, true)
	works("jwt-bot's token", jwt, true)

	// Off by default: the tokens outlive the rotation.
	rotate("opaque-bot", `{"grace_seconds":3600}`)
	rotate("jwt-bot", `{"grace_seconds":0,"revoke_tokens":false}`)
	works("opaque-bot's token after a rotation without revoke_tokens", opaque, true)
	works("jwt-bot's token after a rotation without revoke_tokens", jwt, true)

	// Revoking with a grace is refused: the leaked secret would fetch new
	// tokens at once.
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients/opaque-bot/rotate-secret", rw, "application/json", `{"grace_seconds":3600,"revoke_tokens":true}`); status != http.StatusBadRequest || body["field"] != "grace_seconds" {
		t.Errorf("revoke_tokens with a grace: %d %v", status, body)
	}
	// With it, every token issued so far goes; the new secret gets new
	// ones.
	out := rotate("opaque-bot", `{"grace_seconds":0,"revoke_tokens":true}`)
	works("opaque-bot's token after revoke_tokens", opaque, false)
	works("jwt-bot's token after opaque-bot's revocation", jwt, true)
	works("opaque-bot's token from the newest secret", ccToken("opaque-bot", out["secret"].(string)), true)

	// A code-flow app with JWT access tokens: alice's access token at
	// userinfo and her refresh token.
	wiki := srv.createClient(account.NewClient{ID: "wiki", AccessTokenJWT: true})
	wiki.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	alice := wiki.tokens("alice")
	if status, _, info := srv.userinfo(alice.AccessToken); status != http.StatusOK {
		t.Fatalf("alice's wiki token at userinfo: %d %v", status, info)
	}

	// The CLI: --revoke-tokens, documented in its help.
	env := cliEnv(srv.dir)
	if r := cliRun(t, env, "", "client", "rotate-secret", "--help"); !strings.Contains(r.Stdout+r.Stderr, "-revoke-tokens") {
		t.Errorf("client rotate-secret --help does not document --revoke-tokens: %s", r)
	}
	r := cliMust(t, env, "", "client", "rotate-secret", "--id", "jwt-bot", "--revoke-tokens")
	if !strings.Contains(r.Stdout, "every token issued to the app so far was revoked") {
		t.Errorf("rotate-secret --revoke-tokens output: %s", r)
	}
	works("jwt-bot's token after rotate-secret --revoke-tokens", jwt, false)
	cliFail(t, env, "", 1, "no grace period", "client", "rotate-secret", "--id", "wiki", "--grace", "1h", "--revoke-tokens")
	r = cliMust(t, env, "", "client", "rotate-secret", "--id", "wiki", "--revoke-tokens")
	wiki.Secret = cliSecret(t, r.Stdout, "new client secret for wiki (shown once, store it now): ")
	if status, _, info := srv.userinfo(alice.AccessToken); status != http.StatusUnauthorized {
		t.Errorf("alice's revoked wiki token at userinfo: %d %v", status, info)
	}
	if active(alice.AccessToken) {
		t.Error("alice's revoked wiki access token is active at introspection")
	}
	status, _, body := wiki.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {alice.RefreshToken}}, true)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("alice's revoked wiki refresh token: %d %v", status, body)
	}
	// Her consent stays: revoking tokens is not revoking consent.
	if u, err := srv.Main.Store.GetUserByLogin(ctx, "alice"); err != nil {
		t.Fatal(err)
	} else if _, err := srv.Main.Store.GetGrant(ctx, u.ID, "wiki"); err != nil {
		t.Errorf("alice's consent to wiki after the revocation: %v", err)
	}

	// The audit log says so, and holds no secret.
	events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{account.AuditClientSecretRotated}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	revoked := map[string]int{}
	for _, e := range events {
		if strings.Contains(e.Reason, "every token issued to the app was revoked") {
			revoked[e.ClientID]++
		}
		for _, s := range []string{opaqueSecret, jwtSecret, out["secret"].(string), wiki.Secret} {
			if strings.Contains(e.Reason, s) || strings.Contains(e.Reason, account.HashSecret(s)) {
				t.Errorf("a rotation event holds a secret: %+v", e)
			}
		}
	}
	if revoked["opaque-bot"] != 1 || revoked["jwt-bot"] != 1 || revoked["wiki"] != 1 || len(events) != 5 {
		t.Errorf("rotation events with the revocation: %v of %d", revoked, len(events))
	}
}

// TestStatelessMachineTokens: a client_credentials JWT access token is not
// stored (its jti says so), yet everything that reads tokens treats it as
// one: it carries its scopes, introspection accepts it, RFC 7009
// revocation by its app ends it at once (by a tombstone, and a second
// revocation is no error), another app cannot revoke it, it is no user's
// token for token exchange, and an app deleted and registered again under
// its ID does not inherit it. A token with a management API scope is
// stored, and the management API takes it and no stateless one.
func TestStatelessMachineTokens(t *testing.T) {
	srv := startServer(t, "", nil)
	ctx := context.Background()
	observer := srv.createClient(account.NewClient{ID: "observer", GrantTypes: []string{account.GrantClientCredentials}})
	bot := srv.createClient(account.NewClient{ID: "bot", GrantTypes: []string{account.GrantClientCredentials}, AllowedScopes: []string{account.ScopeAdminRead}, AccessTokenJWT: true})
	tokenFor := func(c *testClient, scopes ...string) string {
		t.Helper()
		cc := clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: srv.URL + "/oauth/token", Scopes: scopes}
		tok, err := cc.Token(ctx)
		if err != nil {
			t.Fatalf("%s's client_credentials token: %v", c.ID, err)
		}
		return tok.AccessToken
	}
	token := func(c *testClient) string { t.Helper(); return tokenFor(c) }
	introspect := func(tok string) map[string]any { return observer.introspect(t, tok) }
	apiStatus := func(tok string) int {
		status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients", tok, "", "")
		return status
	}

	tok := token(bot)
	claims := jwtClaims(t, srv, tok)
	jti, _ := claims["jti"].(string)
	if !strings.HasPrefix(jti, "s.") || claims["scope"] != nil || claims["client_id"] != "bot" || claims["sub"] != "bot" {
		t.Fatalf("the machine token's claims: %v", claims)
	}
	if _, err := srv.Main.Store.GetAccessToken(ctx, jti); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the machine token was stored: %v", err)
	}
	if out := introspect(tok); out["active"] != true || out["scope"] != nil && out["scope"] != "" || out["client_id"] != "bot" || out["jti"] != jti || out["exp"] != claims["exp"] {
		t.Errorf("introspection of the machine token: %v (claims %v)", out, claims)
	}
	if status := apiStatus(tok); status != http.StatusUnauthorized {
		t.Errorf("a stateless machine token at the management API: %d, want 401", status)
	}
	// With the management API's scope: stored, and taken there.
	admin := tokenFor(bot, account.ScopeAdminRead)
	adminJTI, _ := jwtClaims(t, srv, admin)["jti"].(string)
	if strings.HasPrefix(adminJTI, "s.") {
		t.Errorf("a token with %s is stateless: jti %q", account.ScopeAdminRead, adminJTI)
	} else if _, err := srv.Main.Store.GetAccessToken(ctx, adminJTI); err != nil {
		t.Errorf("the token with %s was not stored: %v", account.ScopeAdminRead, err)
	}
	if status := apiStatus(admin); status != http.StatusOK {
		t.Errorf("the stored machine token at the management API: %d", status)
	}

	// Token exchange takes users' tokens only: an app allowed to exchange
	// gets the RFC 8693 refusal for a machine token.
	exchanger := srv.createClient(account.NewClient{ID: "exchanger", GrantTypes: []string{"urn:ietf:params:oauth:grant-type:token-exchange"}})
	status, _, out := srv.postForm("/oauth/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {tok},
		"subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}, exchanger.ID, exchanger.Secret)
	if desc, _ := out["error_description"].(string); status != http.StatusBadRequest || out["error"] != "invalid_request" || !strings.Contains(desc, "not a user's token") {
		t.Errorf("token exchange of the machine token: %d %v", status, out)
	}

	// Only its own app revokes it.
	status, _, out = srv.postForm("/revoke", url.Values{"token": {tok}}, observer.ID, observer.Secret)
	if status == http.StatusOK {
		t.Errorf("another app revoked the machine token: %d %v", status, out)
	}
	if introspect(tok)["active"] != true {
		t.Fatal("the machine token is inactive after another app's revocation attempt")
	}
	for i := range 2 {
		if status, _, out := srv.postForm("/revoke", url.Values{"token": {tok}, "token_type_hint": {"access_token"}}, bot.ID, bot.Secret); status != http.StatusOK {
			t.Fatalf("revocation %d by its app: %d %v", i+1, status, out)
		}
	}
	if out := introspect(tok); out["active"] != false {
		t.Errorf("introspection of the revoked machine token: %v", out)
	}
	if out := introspect(token(bot)); out["active"] != true {
		t.Errorf("a new machine token after the revocation: %v", out)
	}

	// Deleted and registered again: the new app is another one.
	old := token(bot)
	if err := srv.Main.Accounts.Clients.DeleteClient(ctx, account.SystemActor, "bot"); err != nil {
		t.Fatal(err)
	}
	if out := introspect(old); out["active"] != false {
		t.Errorf("introspection of the deleted app's token: %v", out)
	}
	again := srv.createClient(account.NewClient{ID: "bot", GrantTypes: []string{account.GrantClientCredentials}, AccessTokenJWT: true})
	if out := introspect(old); out["active"] != false {
		t.Errorf("introspection of the deleted app's token once its ID is registered again: %v", out)
	}
	if out := introspect(token(again)); out["active"] != true {
		t.Errorf("introspection of the new app's token: %v", out)
	}
}
