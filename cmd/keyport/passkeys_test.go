package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// jsonPost posts JSON from the browser b, with the page's CSRF token in
// X-CSRF-Token when csrf is not empty.
func jsonPost(t *testing.T, b *browser, u, csrf, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	p := b.do(req)
	var out map[string]any
	if err := json.Unmarshal([]byte(p.Body), &out); err != nil {
		t.Fatalf("POST %s: not JSON (%d): %s", u, p.Status, truncateBody(p.Body))
	}
	return p.Status, out
}

func TestPasskeyCeremonyEndpoints(t *testing.T) {
	// WebAuthn needs a domain as relying party ID: the issuer is localhost.
	srv, _ := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	b := newBrowser(t)
	p := b.get(srv.URL + "/login")
	csrf := formFields(p.Body).Get("csrf_token")

	if status, body := jsonPost(t, b, srv.URL+"/login/passkey/begin", "", `{}`); status != http.StatusForbidden || body["message"] == nil {
		t.Errorf("begin without CSRF header: %d %v", status, body)
	}
	status, body := jsonPost(t, b, srv.URL+"/login/passkey/begin", csrf, `{}`)
	opts, _ := body["options"].(map[string]any)
	pk, _ := opts["publicKey"].(map[string]any)
	if status != http.StatusOK || pk["challenge"] == nil || pk["rpId"] != "localhost" {
		t.Fatalf("begin: %d %v", status, body)
	}
	if _, ok := pk["allowCredentials"]; ok {
		t.Error("a username-less sign-in lists credentials")
	}
	// A forged answer is refused, and the challenge cannot be tried again.
	forged := `{"credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AAAA","signature":"AAAA","userHandle":"dXNlcg"}}}`
	if status, body := jsonPost(t, b, srv.URL+"/login/passkey/finish", csrf, forged); status != http.StatusUnauthorized {
		t.Errorf("forged assertion: %d %v", status, body)
	}
	if status, body := jsonPost(t, b, srv.URL+"/login/passkey/finish", csrf, forged); status != http.StatusBadRequest || !strings.Contains(body["message"].(string), "expired") {
		t.Errorf("second answer to a used challenge: %d %v", status, body)
	}
	if r := b.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Error("a forged passkey answer signed the browser in")
	}
	// The second-factor endpoints need a pending password step.
	if status, _ := jsonPost(t, b, srv.URL+"/login/2fa/passkey/begin", csrf, `{}`); status != http.StatusUnauthorized {
		t.Errorf("2FA begin without a password step: %d", status)
	}

	// Registration needs a session, and a recent one or the password.
	if status, _ := jsonPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, `{}`); status != http.StatusUnauthorized {
		t.Errorf("register signed out: %d", status)
	}
	signInPortal(t, srv, b, "alice")
	pp := b.get(srv.URL + "/security/passkeys")
	csrf = formFields(pp.Body).Get("csrf_token")
	status, body = jsonPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, `{}`)
	opts, _ = body["options"].(map[string]any)
	pk, _ = opts["publicKey"].(map[string]any)
	sel, _ := pk["authenticatorSelection"].(map[string]any)
	if status != http.StatusOK || sel["residentKey"] != "required" || sel["userVerification"] != "preferred" {
		t.Fatalf("register begin: %d %v", status, body)
	}
	if user, _ := pk["user"].(map[string]any); user["name"] != "alice" {
		t.Errorf("user entity: %v", pk["user"])
	}
	if status, _ := jsonPost(t, b, srv.URL+"/security/passkeys/register/finish", csrf, `{"name":"x","credential":{"id":"AAAA"}}`); status != http.StatusBadRequest {
		t.Errorf("garbage registration: %d", status)
	}
	if keys, _ := srv.Main.Accounts.Passkeys(t.Context(), userIDOf(t, srv, "alice")); len(keys) != 0 {
		t.Errorf("garbage registration stored %d passkeys", len(keys))
	}
}
