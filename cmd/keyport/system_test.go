package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// A system account end to end through the management API: an admin makes
// one, issues it a token, and the program holding the token administers
// Keyport with it; the account has no password to reset, people's
// accounts get no tokens from an admin, and a revoked token stops at once.
func TestSystemAccountAPI(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, ro, _ := adminTokens(t, srv)
	body := func(v any) string { b, _ := json.Marshal(v); return string(b) }

	status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json",
		body(map[string]any{"username": "provisioner", "email": "provisioner@example.com", "system": true, "admin": true}))
	user, _ := out["user"].(map[string]any)
	if status != http.StatusCreated || user["system"] != true || out["invitation"] != nil {
		t.Fatalf("create system account: %d %v", status, out)
	}
	bot := user["id"].(string)
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json",
		body(map[string]any{"username": "bot2", "email": "bot2@example.com", "system": true, "password": "a long enough password 12"})); status != http.StatusBadRequest || out["field"] != "password" {
		t.Errorf("system account with a password: %d %v", status, out)
	}

	tokens := "/api/v1/users/" + bot + "/api-tokens"
	expires := time.Now().Add(30 * 24 * time.Hour).UTC().Format(time.RFC3339)
	if status, _, out := apiCall(t, srv, http.MethodPost, tokens, rw, "application/json", body(map[string]any{"name": "job", "scope": "read-write"})); status != http.StatusBadRequest || out["field"] != "expires" {
		t.Errorf("token without an expiry: %d %v", status, out)
	}
	if status, _, _ := apiCall(t, srv, http.MethodPost, tokens, ro, "application/json", body(map[string]any{"name": "job", "scope": "read-write", "expires_at": expires})); status != http.StatusForbidden {
		t.Errorf("read-only admin token issuing a token: %d", status)
	}
	status, h, out := apiCall(t, srv, http.MethodPost, tokens, rw, "application/json", body(map[string]any{"name": "job", "scope": "read-write", "expires_at": expires}))
	token, _ := out["token"].(string)
	cred, _ := out["credential"].(map[string]any)
	if status != http.StatusCreated || !strings.HasPrefix(token, "kp_") || cred["id"] == nil || h.Get("Cache-Control") != "no-store" {
		t.Fatalf("issue a token: %d %v %v", status, h, out)
	}

	// The program acts with it: it creates a person.
	status, _, out = apiCall(t, srv, http.MethodPost, "/api/v1/users", token, "application/json",
		body(map[string]any{"username": "dave", "email": "dave@example.com", "invite": true}))
	dave, _ := out["user"].(map[string]any)
	if status != http.StatusCreated || dave["system"] != false {
		t.Fatalf("the system account creates a user: %d %v", status, out)
	}
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+dave["id"].(string)+"/api-tokens", token, "application/json",
		body(map[string]any{"name": "x", "scope": "read-only", "expires_at": expires})); status != http.StatusConflict {
		t.Errorf("a token for a person's account: %d %v", status, out)
	}
	// A token never renews itself, even an administrator's system account's.
	if status, _, out := apiCall(t, srv, http.MethodPost, tokens, token, "application/json", body(map[string]any{"name": "renewal", "scope": "read-write", "expires_at": expires})); status != http.StatusForbidden {
		t.Errorf("the system account issuing its own token: %d %v", status, out)
	}
	// A PATCH may name its body as RFC 7396 does.
	if status, _, out := apiCall(t, srv, http.MethodPatch, "/api/v1/users/"+dave["id"].(string), token, "application/merge-patch+json", body(map[string]any{"name": "Dave"})); status != http.StatusOK || out["name"] != "Dave" {
		t.Errorf("a merge-patch+json PATCH: %d %v", status, out)
	}
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+bot+"/password-reset-link", rw, "", ""); status != http.StatusForbidden {
		t.Errorf("reset link for a system account: %d %v", status, out)
	}
	ctx := context.Background()
	if evs, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{TargetUserID: bot, Types: []string{"api_token.created"}}); err != nil || len(evs) != 1 {
		t.Errorf("audit of the token: %v %+v", err, evs)
	}

	if status, _, _ := apiCall(t, srv, http.MethodDelete, tokens+"/"+cred["id"].(string), rw, "", ""); status != http.StatusNoContent {
		t.Fatalf("revoke: %d", status)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/users", token, "", ""); status != http.StatusUnauthorized {
		t.Errorf("a revoked token: %d", status)
	}
}

// The same through the command line, with no server running.
func TestSystemAccountCLI(t *testing.T) {
	env := cliEnv(t.TempDir())
	r := cliMust(t, env, "", "user", "create", "--username", "backup", "--email", "backup@example.com", "--system")
	if !strings.Contains(r.Stdout, "created system user backup") {
		t.Errorf("create: %s", r)
	}
	cliFail(t, env, "", 2, "either --password-stdin or --invite (or --system", "user", "create", "--username", "b2", "--email", "b2@example.com", "--system", "--invite")
	cliFail(t, env, "", 2, "--expires", "user", "create-token", "--username", "backup", "--name", "nightly")
	cliFail(t, env, "", 2, "not a number of days", "user", "create-token", "--username", "backup", "--name", "nightly", "--expires", "xd")
	r = cliMust(t, env, "", "user", "create-token", "--username", "backup", "--name", "nightly", "--expires", "90d", "--scope", "read-only")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	token := lines[len(lines)-1]
	if !strings.HasPrefix(token, "kp_") || !strings.Contains(r.Stdout, "read-only") {
		t.Fatalf("create-token: %s", r)
	}
	m := cliOpen(t, env["KEYPORT_DATA_DIR"])
	u, c, err := m.Accounts.Credentials.AuthenticateAPIToken(context.Background(), token, "192.0.2.1", "test")
	if err != nil || !u.System || c.Scope != "read-only" || c.ValidUntil.Before(time.Now().Add(89*24*time.Hour)) {
		t.Errorf("the token: %v, user %+v, credential %+v", err, u, c)
	}
	m.Close()
	cliMust(t, env, "", "user", "revoke-token", "--username", "backup", "--id", c.ID)
	m = cliOpen(t, env["KEYPORT_DATA_DIR"])
	defer m.Close()
	if _, _, err := m.Accounts.Credentials.AuthenticateAPIToken(context.Background(), token, "192.0.2.1", "test"); err == nil {
		t.Error("the revoked token still works")
	}
}

// The console makes a system account, issues it a token shown once, and
// revokes it; a bad number of days is named.
func TestSystemAccountConsole(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("root", true)
	ctx := context.Background()
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")

	created := submitForm(t, b, b.get(srv.URL+"/admin/users/new"), "/admin/users/new", url.Values{"username": {"ci"}, "email": {"ci@example.com"}, "how": {"system"}})
	bot, err := srv.Main.Store.GetUserByLogin(ctx, "ci")
	if created.Status != http.StatusOK || err != nil || !bot.System || bot.PasswordHash != "" {
		t.Fatalf("create: %d %v %+v\n%s", created.Status, err, bot, truncateBody(created.Body))
	}
	page := srv.URL + "/admin/users/" + bot.ID
	bad := submitForm(t, b, b.get(page), "/admin/users/"+bot.ID+"/api-tokens", url.Values{"name": {"deploy"}, "scope": {"read-only"}, "days": {"401"}})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, `id="t-days" name="days" type="number" min="1" max="400" value="90" required aria-invalid="true"`) {
		t.Errorf("401 days: %d", bad.Status)
	}
	issued := submitForm(t, b, b.get(page), "/admin/users/"+bot.ID+"/api-tokens", url.Values{"name": {"deploy"}, "scope": {"read-only"}, "days": {"30"}})
	shown, ok := parsePage(t, issued.Body).byID("one-time-link")
	if issued.Status != http.StatusCreated || !ok || !strings.HasPrefix(shown.text(), "kp_") {
		t.Fatalf("issue: %d\n%s", issued.Status, truncateBody(issued.Body))
	}
	token := shown.text()
	if again := b.get(page); strings.Contains(again.Body, token) {
		t.Error("the token is shown again")
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/me", token, "", ""); status != http.StatusOK {
		t.Errorf("the issued token: %d", status)
	}
	creds, err := srv.Main.Store.ListCredentials(ctx, bot.ID, storage.KindAPIToken)
	if err != nil || len(creds) != 1 {
		t.Fatalf("credentials: %v %+v", err, creds)
	}
	revoked := submitForm(t, b, b.get(page), "/admin/users/"+bot.ID+"/api-tokens/"+creds[0].ID+"/revoke", nil)
	if notice(t, revoked) != "The API token was revoked." {
		t.Errorf("revoke: %d %q", revoked.Status, notice(t, revoked))
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/me", token, "", ""); status != http.StatusUnauthorized {
		t.Errorf("the revoked token: %d", status)
	}
}
