package main

import (
	"net/http"
	"testing"
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
