package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
)

// The runtime settings through the management API: locking profiles
// refuses the next profile change at once, with no restart; stale ETags,
// bad values and read-only tokens change nothing.
func TestSettingsAPILocksProfilesAtOnce(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, ro, user := adminTokens(t, srv)

	if status, _, _ := apiCall(t, srv, http.MethodPatch, "/api/v1/me", user, "application/json", `{"given_name":"Ally"}`); status != http.StatusOK {
		t.Fatalf("profile change before the lock: %d", status)
	}
	status, h, view := apiCall(t, srv, http.MethodGet, "/api/v1/settings", rw, "", "")
	etag := h.Get("ETag")
	if status != http.StatusOK || etag == "" || view["defaults"].(map[string]any)["profiles_locked"] != false {
		t.Fatalf("GET: %d %q %v", status, etag, view)
	}
	if status, _, _ := apiCallWith(t, srv, http.MethodPatch, "/api/v1/settings", ro, "application/json", `{"profiles_locked":true}`, http.Header{"If-Match": {etag}}); status != http.StatusForbidden {
		t.Errorf("read-only token: %d", status)
	}
	if status, _, body := apiCallWith(t, srv, http.MethodPatch, "/api/v1/settings", rw, "application/json", `{"password_min_length":3}`, http.Header{"If-Match": {etag}}); status != http.StatusBadRequest || body["field"] != "password_min_length" {
		t.Errorf("bad value: %d %v", status, body)
	}
	status, h, view = apiCallWith(t, srv, http.MethodPatch, "/api/v1/settings", rw, "application/json", `{"profiles_locked":true,"login_window":"10m"}`, http.Header{"If-Match": {etag}})
	if status != http.StatusOK || h.Get("ETag") == etag || view["effective"].(map[string]any)["profiles_locked"] != true || view["stored"].(map[string]any)["login_window"] != "10m0s" {
		t.Fatalf("PATCH: %d %v", status, view)
	}
	if status, _, _ := apiCallWith(t, srv, http.MethodPatch, "/api/v1/settings", rw, "application/json", `{"profiles_locked":false}`, http.Header{"If-Match": {etag}}); status != http.StatusPreconditionFailed {
		t.Errorf("stale ETag: %d", status)
	}

	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", user, "application/json", `{"given_name":"Al"}`); status != http.StatusForbidden {
		t.Errorf("profile change while locked: %d %v", status, body)
	}
	// null: back to config.toml's default, and profiles open again.
	if status, _, view := apiCall(t, srv, http.MethodPatch, "/api/v1/settings", rw, "application/json", `{"profiles_locked":null}`); status != http.StatusOK || view["stored"].(map[string]any)["profiles_locked"] != nil {
		t.Errorf("reset: %d %v", status, view)
	}
	if status, _, _ := apiCall(t, srv, http.MethodPatch, "/api/v1/me", user, "application/json", `{"given_name":"Al"}`); status != http.StatusOK {
		t.Errorf("profile change after the reset: %d", status)
	}
}

// The console's settings form: each setting with config.toml's default,
// saved values in force at once, a bad value named on the form, and an
// empty field back to the default.
func TestAdminConsoleSettings(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("root", true)
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")

	p := b.get(srv.URL + "/admin/settings")
	doc := parsePage(t, p.Body)
	hint, ok := doc.byID("d-password_min_length")
	if p.Status != http.StatusOK || !ok || !strings.Contains(hint.text(), "config.toml") {
		t.Fatalf("settings page: %d\n%s", p.Status, truncateBody(p.Body))
	}
	bad := submitForm(t, b, p, "/admin/settings", url.Values{"password_min_length": {"3"}})
	if in, ok := parsePage(t, bad.Body).byID("s-password_min_length"); bad.Status != http.StatusBadRequest || !ok || in.attr("aria-invalid") != "true" {
		t.Fatalf("bad value: %d\n%s", bad.Status, truncateBody(bad.Body))
	}
	if srv.Main.Accounts.Policy().MinPasswordLength == 3 {
		t.Fatal("a refused value took effect")
	}
	saved := submitForm(t, b, b.get(srv.URL+"/admin/settings"), "/admin/settings", url.Values{"password_min_length": {"20"}})
	if _, ok := parsePage(t, saved.Body).byID("notice"); saved.Status != http.StatusOK || !ok {
		t.Fatalf("save: %d\n%s", saved.Status, truncateBody(saved.Body))
	}
	if pol := srv.Main.Accounts.Policy(); pol.MinPasswordLength != 20 {
		t.Fatalf("policy after saving: min %d", pol.MinPasswordLength)
	}
	in, _ := parsePage(t, saved.Body).byID("s-password_min_length")
	if in.attr("value") != "20" {
		t.Errorf("stored value shown: %q", in.attr("value"))
	}
	// Emptied: back to config.toml's default.
	submitForm(t, b, saved, "/admin/settings", url.Values{"password_min_length": {""}})
	if pol := srv.Main.Accounts.Policy(); pol.MinPasswordLength == 20 {
		t.Errorf("policy after emptying: %+v", pol)
	}
	// 2FA for admins: root, an admin without a second factor, is sent to
	// enrol on the next page, with no restart.
	after := submitForm(t, b, b.get(srv.URL+"/admin/settings"), "/admin/settings", url.Values{"require_2fa": {"admins"}})
	if pol := srv.Main.Accounts.Policy(); !pol.Require2FAForAdmins || pol.Require2FA {
		t.Fatalf("policy after requiring 2FA of admins: %+v", pol)
	}
	if after.URL.Path != "/security" {
		t.Errorf("admin without 2FA landed on %s, not the enrolment page", after.URL)
	}
}

// require_2fa set to "admins" through the API while the server runs: an
// admin without a second factor signing in to an app is sent to enrol
// (the flow's next step) and the app gets no code; a non-admin gets one.
func TestSettingsRequire2FAForAdmins(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, _, _ := adminTokens(t, srv) // root (admin) and alice (not)
	rp := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, GrantTypes: []string{"authorization_code"}})
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/settings", rw, "application/json", `{"require_2fa":"admins"}`); status != http.StatusOK {
		t.Fatalf("PATCH: %d %v", status, body)
	}

	admin := newBrowser(t)
	p := admin.submit(rp.authorize(admin, "st"), "/login", url.Values{"login": {"root"}, "password": {testPassword}})
	if p.URL.Path != "/security" || !strings.Contains(p.Body, "requires two-factor") {
		t.Fatalf("an admin without a second factor was not sent to enrol: %s", p.URL)
	}
	if strings.Contains(strings.Join(admin.visited, " "), "code=") {
		t.Fatal("the app got a code before the admin enrolled")
	}
	if code, _ := rp.signIn(newBrowser(t), "alice", oauthScope("openid")); code == "" {
		t.Fatal("a non-admin got no code")
	}
}

// The session and token lifetimes set through the API apply without a
// restart: the next token's exp and expires_in, the next refresh token's
// end, the next sign-in's cookie Max-Age and session record; an app with
// lifetimes of its own keeps them.
func TestSettingsLifetimesTakeEffectAtOnce(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, _, _ := adminTokens(t, srv) // root (admin) and alice
	app := srv.createClient(account.NewClient{ID: "crm", SkipConsent: true, AccessTokenJWT: true})
	app.oauth.Scopes = []string{"openid", "offline_access"}
	own := srv.createClient(account.NewClient{ID: "own", SkipConsent: true, AccessTokenJWT: true})
	srv.editClient("own", account.ClientPatch{AccessTokenLifetime: ptr(7 * time.Minute)})

	if got := sessionCookieMaxAge(t, srv, "alice"); got != int((720 * time.Hour).Seconds()) {
		t.Fatalf("session cookie Max-Age before the change: %d, want config.toml's 720h", got)
	}
	status, _, view := apiCall(t, srv, http.MethodPatch, "/api/v1/settings", rw, "application/json",
		`{"access_token_lifetime":"2m","id_token_lifetime":"3m","refresh_token_lifetime":"90m","session_lifetime":"2h"}`)
	if status != http.StatusOK {
		t.Fatalf("PATCH: %d %v", status, view)
	}
	if eff, def := view["effective"].(map[string]any), view["defaults"].(map[string]any); eff["access_token_lifetime"] != "2m0s" || def["access_token_lifetime"] != "15m0s" || def["session_lifetime"] != "720h0m0s" {
		t.Errorf("settings after the change: %v", view)
	}

	tok := app.tokens("alice")
	if in, _ := tok.Extra("expires_in").(float64); in < 115 || in > 120 {
		t.Errorf("expires_in = %v, want the new 2 minutes", tok.Extra("expires_in"))
	}
	var at struct{ Exp, Iat int64 }
	if err := json.Unmarshal(jwtPayload(t, tok.AccessToken), &at); err != nil || at.Exp-at.Iat < 119 || at.Exp-at.Iat > 121 {
		t.Errorf("JWT access token exp-iat = %d (%v), want 120", at.Exp-at.Iat, err)
	}
	if id := idTokenClaims(t, app, tok); id["exp"].(float64)-id["iat"].(float64) != 180 {
		t.Errorf("ID token exp-iat = %v, want the new 3 minutes", id["exp"].(float64)-id["iat"].(float64))
	}
	status, _, intro := srv.postForm("/oauth/introspect", url.Values{"token": {tok.RefreshToken}}, app.ID, app.Secret)
	if left := time.Until(time.Unix(int64(intro["exp"].(float64)), 0)); status != http.StatusOK || left < 89*time.Minute || left > 90*time.Minute {
		t.Errorf("refresh token ends in %s (%d %v), want the new 90 minutes", left, status, intro)
	}
	if in, _ := own.tokens("alice").Extra("expires_in").(float64); in < 415 || in > 420 {
		t.Errorf("expires_in of the app with its own lifetime = %v, want its 7 minutes", in)
	}

	if got := sessionCookieMaxAge(t, srv, "alice"); got != 7200 {
		t.Errorf("session cookie Max-Age after the change: %d, want 7200", got)
	}
	alice, err := srv.Main.Store.GetUserByLogin(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	sessions, err := srv.Main.Store.ListUserSessions(context.Background(), alice.ID)
	if err != nil || len(sessions) == 0 {
		t.Fatalf("sessions: %v %v", sessions, err)
	}
	newest := sessions[0]
	for _, s := range sessions {
		if s.CreatedAt.After(newest.CreatedAt) {
			newest = s
		}
	}
	if d := newest.ExpiresAt.Sub(newest.CreatedAt); d != 2*time.Hour {
		t.Errorf("the newest session lasts %s, want the new 2h", d)
	}
}

// sessionCookieMaxAge signs login in on the portal and returns the Max-Age
// of the cookie the sign-in sets.
func sessionCookieMaxAge(t *testing.T, srv *testServer, login string) int {
	t.Helper()
	b := newBrowser(t)
	p := b.get(srv.URL + "/login")
	form := formFields(p.Body)
	form.Set("login", login)
	form.Set("password", testPassword)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	stay := *b.client // its cookies, but the sign-in's own answer
	stay.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp := mustFetch(t, &stay, req)
	for _, c := range (&http.Response{Header: resp.Header}).Cookies() {
		if c.Name == srv.Main.Config.Session.CookieName {
			return c.MaxAge
		}
	}
	t.Fatalf("the sign-in set no session cookie: %v", resp)
	return 0
}
