package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// The rules an admin sets on an app, as a real relying party meets them.

// setGroups replaces the groups of user id, as a directory sync or an
// admin would.
func (s *testServer) setGroups(id string, groups ...string) {
	s.t.Helper()
	if _, err := s.Main.Store.UpdateUser(context.Background(), id, func(u storage.User) (storage.User, error) {
		u.Groups = groups
		return u, nil
	}); err != nil {
		s.t.Fatal(err)
	}
}

// editClient applies an admin's edit to app id.
func (s *testServer) editClient(id string, p account.ClientPatch) {
	s.t.Helper()
	if _, _, err := s.Main.Accounts.Clients.UpdateClient(context.Background(), account.Actor{Kind: account.ActorCLI}, id, "", p); err != nil {
		s.t.Fatalf("edit client %s: %v", id, err)
	}
}

// TestAppAllowedGroups: only members of an app's groups sign in to it. A
// non-member, signing in or already signed in, sees a page naming the app
// (in their language) and, going on, lands at the app with
// error=access_denied; a member gets tokens, until they leave the group,
// after which their refresh token is refused.
func TestAppAllowedGroups(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	srv.createUser("bob", false)
	srv.setGroups(alice.ID, "Staff")
	app := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki", SkipConsent: true})
	app.oauth.Scopes = append(app.oauth.Scopes, "offline_access")
	srv.editClient("wiki", account.ClientPatch{AllowedGroups: &[]string{"staff"}})

	// Bob signs in and is refused by name.
	b := newBrowser(t)
	p := app.finish(b, app.authorize(b, "st-bob"), "bob")
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Your account is not allowed to use Team Wiki. Ask an administrator.") {
		t.Fatalf("non-member after sign-in: %s", p)
	}
	back, ok := parsePage(t, p.Body).first("a", "class", "button button-secondary")
	if !ok || !strings.Contains(back.text(), "Team Wiki") {
		t.Fatalf("no way back to the app on the page: %s", p)
	}
	to, _ := p.URL.Parse(back.attr("href"))
	res := landed(t, b.get(to.String()), app.RedirectURI)
	if res.Error != "access_denied" || res.Code != "" || res.State != "st-bob" {
		t.Fatalf("the app got %+v, want access_denied", res)
	}

	// Signed in already (single sign-on), he is refused without a
	// sign-in page, here in German; prompt=none sends the error at once.
	req, _ := http.NewRequest(http.MethodGet, app.oauth.AuthCodeURL("st-sso"), nil)
	req.Header.Set("Accept-Language", "de")
	p = b.do(req)
	if p.Status != http.StatusForbidden || isLoginPage(p) || !strings.Contains(p.Body, "Ihr Konto darf Team Wiki nicht verwenden.") {
		t.Fatalf("non-member with a session: %s", p)
	}
	res = landed(t, app.authorize(b, "st-none", oauth2.SetAuthURLParam("prompt", "none")), app.RedirectURI)
	if res.Error != "access_denied" || res.State != "st-none" {
		t.Fatalf("non-member, prompt=none: %+v", res)
	}

	// Alice, a member (the name's case aside), gets tokens and refreshes.
	tok := app.tokens("alice")
	if claims := idTokenClaims(t, app, tok); claims["sub"] != alice.ID {
		t.Fatalf("member's ID token: %v", claims)
	}
	status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != http.StatusOK {
		t.Fatalf("member's refresh: %d %v", status, body)
	}
	next, _ := body["refresh_token"].(string)

	// Taken out of the group, she can no longer refresh, nor sign in, and
	// introspection says her refresh token is not active.
	srv.setGroups(alice.ID, "guests")
	status, _, body = app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}}, true)
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("refresh after leaving the group: %d %v", status, body)
	}
	if status, _, intro := srv.postForm("/oauth/introspect", url.Values{"token": {next}}, app.ID, app.Secret); status != http.StatusOK || intro["active"] != false {
		t.Fatalf("introspection of the refresh token after leaving the group: %d %v", status, intro)
	}
	b = newBrowser(t)
	if p := app.finish(b, app.authorize(b, "st-alice"), "alice"); p.Status != http.StatusForbidden {
		t.Fatalf("sign-in after leaving the group: %s", p)
	}
	// Back in the group, the same refresh token works again: the refusal
	// revoked nothing.
	srv.setGroups(alice.ID, "STAFF")
	if status, _, intro := srv.postForm("/oauth/introspect", url.Values{"token": {next}}, app.ID, app.Secret); status != http.StatusOK || intro["active"] != true {
		t.Fatalf("introspection of the refresh token back in the group: %d %v", status, intro)
	}
	if status, _, body = app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}}, true); status != http.StatusOK {
		t.Fatalf("refresh back in the group: %d %v", status, body)
	}
}

// TestAppLifetimesScopesAndSecretRotation: an app's own token lifetimes
// show in expires_in and in the tokens' exp; scopes outside its allowed
// ones are dropped; after a rotation both secrets authenticate it at the
// token, introspection and revocation endpoints until the grace ends, and
// then only the new one.
func TestAppLifetimesScopesAndSecretRotation(t *testing.T) {
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{now: clock.Now})
	srv.createUser("carol", false)
	app := srv.createClient(account.NewClient{ID: "crm", Name: "CRM", SkipConsent: true, AccessTokenJWT: true})
	app.oauth.Scopes = []string{"openid", "profile", "email", "offline_access"}
	srv.editClient("crm", account.ClientPatch{
		AccessTokenLifetime: ptr(7 * time.Minute), IDTokenLifetime: ptr(3 * time.Minute),
		AllowedScopes: &[]string{"email", "offline_access"},
	})

	tok := app.tokens("carol")
	if in, _ := tok.Extra("expires_in").(float64); in < 415 || in > 420 {
		t.Errorf("expires_in = %v, want the app's 7 minutes", tok.Extra("expires_in"))
	}
	var at struct{ Exp, Iat int64 }
	if err := json.Unmarshal(jwtPayload(t, tok.AccessToken), &at); err != nil || at.Exp-at.Iat < 419 || at.Exp-at.Iat > 421 {
		t.Errorf("JWT access token exp-iat = %d (%v), want 420", at.Exp-at.Iat, err)
	}
	id := idTokenClaims(t, app, tok)
	if exp, iat := id["exp"].(float64), id["iat"].(float64); exp-iat != 180 {
		t.Errorf("ID token exp-iat = %v, want the app's 3 minutes", exp-iat)
	}
	// profile was asked for and dropped: the scope granted says so, and no
	// profile claim is released.
	if tok.Extra("scope") != "openid email offline_access" || id["email"] != "carol@example.com" || id["name"] != nil || id["preferred_username"] != nil {
		t.Errorf("scope %v, claims %v", tok.Extra("scope"), id)
	}
	status, _, info := srv.userinfo(tok.AccessToken)
	if status != http.StatusOK || info["email"] == nil || info["name"] != nil {
		t.Errorf("userinfo with the narrowed scope: %d %v", status, info)
	}

	// Rotate with a day's grace: both secrets work everywhere.
	old := app.Secret
	fresh, err := srv.Main.Accounts.Clients.RotateSecret(context.Background(), account.Actor{Kind: account.ActorCLI}, "crm", 24*time.Hour, false)
	if err != nil {
		t.Fatal(err)
	}
	refresh := tok.RefreshToken
	for _, secret := range []string{old, fresh} {
		app.Secret = secret
		status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, true)
		if status != http.StatusOK {
			t.Fatalf("refresh with the %s secret within the grace: %d %v", which(secret, old), status, body)
		}
		refresh, _ = body["refresh_token"].(string)
		access, _ := body["access_token"].(string)
		status, _, intro := srv.postForm("/oauth/introspect", url.Values{"token": {access}}, "crm", secret)
		if status != http.StatusOK || intro["active"] != true {
			t.Fatalf("introspection with the %s secret within the grace: %d %v", which(secret, old), status, intro)
		}
		status, _, body = srv.postForm("/revoke", url.Values{"token": {access}}, "crm", secret)
		if status != http.StatusOK {
			t.Fatalf("revocation with the %s secret within the grace: %d %v", which(secret, old), status, body)
		}
	}

	// A day later the old secret is refused at every endpoint, and the
	// new one still works.
	clock.Add(24*time.Hour + time.Minute)
	for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke"} {
		form := url.Values{"token": {refresh}}
		if path == "/oauth/token" {
			form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}
		}
		status, _, body := srv.postForm(path, form, "crm", old)
		if status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("%s with the old secret after the grace: %d %v", path, status, body)
		}
	}
	app.Secret = fresh
	if status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, true); status != http.StatusOK {
		t.Fatalf("refresh with the new secret after the grace: %d %v", status, body)
	}
}

func which(secret, old string) string {
	if secret == old {
		return "old"
	}
	return "new"
}

func ptr[T any](v T) *T { return &v }
