package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

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
