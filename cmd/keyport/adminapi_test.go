package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// adminTokens makes an admin's read-write and read-only API tokens and a
// non-admin's read-write token.
func adminTokens(t *testing.T, srv *testServer) (rw, ro, user string) {
	t.Helper()
	ctx := context.Background()
	admin := srv.createUser("root", true)
	alice := srv.createUser("alice", false)
	mk := func(u storage.User, scope string) string {
		tok, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, u, account.NewAPIToken{Name: "t-" + scope, Scope: scope})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	return mk(admin, account.ScopeReadWrite), mk(admin, account.ScopeReadOnly), mk(alice, account.ScopeReadWrite)
}

// Who may call the management API: an admin's token (read-only ones only
// read), never a non-admin's, a person's access token, or an app's token
// without the admin scope; and what every refusal looks like.
func TestAdminAPIAuthentication(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, ro, user := adminTokens(t, srv)

	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories", rw, "", ""); status != http.StatusOK || body["items"] == nil {
		t.Errorf("admin token: %d %v", status, body)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/directories", ro, "", ""); status != http.StatusOK {
		t.Errorf("read-only admin token, GET: %d", status)
	}
	if status, h, body := apiCall(t, srv, http.MethodPost, "/api/v1/keys/rotate", ro, "", ""); status != http.StatusForbidden || body["error"] != "insufficient_scope" || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("read-only admin token, POST: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories", user, "", ""); status != http.StatusForbidden || body["error"] != "forbidden" {
		t.Errorf("non-admin token: %d %v", status, body)
	}
	for name, tok := range map[string]string{"none": "", "garbage": "garbage", "unknown kp_": "kp_" + strings.Repeat("x", 40), "huge": strings.Repeat("a", 20000)} {
		status, h, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories", tok, "", "")
		if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || body["error"] == nil {
			t.Errorf("%s token: %d %v", name, status, body)
		}
	}

	// A person's access token, even an admin's, is not a management
	// credential: the app holding it would act with the person's rights.
	app := srv.createClient(account.NewClient{ID: "webapp", SkipConsent: true})
	tok := app.tokens("root")
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories", tok.AccessToken, "", ""); status != http.StatusUnauthorized || body["error"] != "invalid_token" {
		t.Errorf("an admin's access token: %d %v", status, body)
	}
	// An app cannot give itself the admin scope: asking for it gets a token
	// without it.
	_, secret, err := srv.Main.Accounts.Clients.RegisterClient(context.Background(), account.NewClient{ID: "robot", GrantTypes: []string{account.GrantClientCredentials}})
	if err != nil {
		t.Fatal(err)
	}
	status, _, body := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "scope": {account.ScopeAdmin + " " + account.ScopeAdminRead}}, "robot", secret)
	machine, _ := body["access_token"].(string)
	scope, _ := body["scope"].(string)
	if status != http.StatusOK || machine == "" || strings.Contains(scope, "keyport:admin") {
		t.Fatalf("client_credentials asking for the admin scope: %d %v", status, body)
	}
	if status, h, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories", machine, "", ""); status != http.StatusForbidden || body["error"] != "insufficient_scope" || !strings.Contains(h.Get("WWW-Authenticate"), account.ScopeAdmin) {
		t.Errorf("an app token without the admin scope: %d %v", status, body)
	}

	// Errors have one shape (apiCall checks it) and name what is wrong.
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories/nope", rw, "", ""); status != http.StatusNotFound || body["error"] != "not_found" {
		t.Errorf("unknown directory: %d %v", status, body)
	}
	if status, h, body := apiCall(t, srv, http.MethodPut, "/api/v1/directories", rw, "", ""); status != http.StatusMethodNotAllowed || h.Get("Allow") != "GET, HEAD" && h.Get("Allow") != "GET" || body["error"] != "method_not_allowed" {
		t.Errorf("PUT on a list: %d %q %v", status, h.Get("Allow"), body)
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/nothing/here", rw, "", ""); status != http.StatusNotFound || body["error"] != "not_found" {
		t.Errorf("unknown endpoint: %d %v", status, body)
	}

	// A write by an admin token does what it says.
	before := srv.Main.Keys.SigningKeyID()
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/keys/rotate", rw, "", ""); status != http.StatusOK || body["signing_key_id"] == before || body["signing_key_id"] != srv.Main.Keys.SigningKeyID() {
		t.Errorf("rotate: %d %v (was %s)", status, body, before)
	}
}
