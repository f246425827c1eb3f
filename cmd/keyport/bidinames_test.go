package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/keyport/keyport/config"
)

// TestSpoofingAppNamesRefused: on a real server, an app name with a
// right-to-left override (or another bidi or zero-width character) is
// refused where it can be chosen: at dynamic registration (RFC 7591) with
// 400 invalid_client_metadata naming client_name, at an update (RFC 7592)
// and at a create or rename through the management API with the field
// named, and nothing is stored. A name with an emoji's zero width joiner
// is accepted.
func TestSpoofingAppNamesRefused(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DynamicRegistration = true })
	rw, _, _ := adminTokens(t, srv)
	ctx := context.Background()
	iat, _ := initialAccessToken(t, srv, rw, 0, false)

	for _, name := range []string{"Secure \u202eelgooG", "Google\u2066 (untrusted)\u2069", "Goo\u200bgle"} {
		m := webMetadata("spoof")
		m["client_name"] = name
		status, _, body := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
		if status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" || !strings.HasPrefix(fmt.Sprint(body["error_description"]), "client_name: ") {
			t.Errorf("register %q: %d %v", name, status, body)
		}
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", jsonOf(t, map[string]any{
			"id": "spoof", "name": name, "redirect_uris": []string{"https://app.example.com/cb"},
		})); status != http.StatusBadRequest || body["field"] != "name" {
			t.Errorf("API create %q: %d %v", name, status, body)
		}
	}
	if _, err := srv.Main.Store.GetClient(ctx, "spoof"); err == nil {
		t.Error("a refused create stored the app")
	}
	if list, err := srv.Main.Store.ListClients(ctx); err != nil || len(list) != 0 {
		t.Errorf("refused registrations stored apps: %v %v", list, err)
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
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", jsonOf(t, map[string]any{
		"id": "dev", "name": dev, "redirect_uris": []string{"https://app.example.com/cb"},
	})); status != http.StatusCreated {
		t.Fatalf("API create %q: %d %v", dev, status, body)
	}

	// An update may not bring the override in either.
	m["client_name"], m["client_id"] = "Secure \u202eelgooG", out["client_id"]
	if status, _, body := registrationCall(t, srv, http.MethodPut, regURI, regToken, m); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" ||
		!strings.HasPrefix(fmt.Sprint(body["error_description"]), "client_name: ") {
		t.Errorf("RFC 7592 update to a spoofing name: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/dev", rw, "application/json", jsonOf(t, map[string]any{"name": "Dev\u202e"})); status != http.StatusBadRequest || body["field"] != "name" {
		t.Errorf("API rename to a spoofing name: %d %v", status, body)
	}
	if c, err := srv.Main.Store.GetClient(ctx, "dev"); err != nil || c.Name != dev {
		t.Errorf("a refused rename changed the app: %q %v", c.Name, err)
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
