package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The routes the command line needs, through the API with tokens: a user
// by login, an administrator's password for a user, import and export
// of users as JSON Lines. Answers are checked against the OpenAPI
// document (apiCall); every change is in the audit log.
func TestAdminAPIUserByLoginPasswordImportExport(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, ro, plain := adminTokens(t, srv)
	ctx := context.Background()
	alice, err := srv.Main.Store.GetUserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}

	// By login: username or email, any case.
	for _, login := range []string{"alice", "ALICE%40example.com"} {
		status, hdr, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login/"+login, ro, "", "")
		if u, _ := body["user"].(map[string]any); status != http.StatusOK || u["id"] != alice.ID || hdr.Get("ETag") == "" {
			t.Errorf("by-login %s: %d %v", login, status, body)
		}
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login/nobody", ro, "", ""); status != http.StatusNotFound || body["message"] != `No user "nobody".` {
		t.Errorf("by-login nobody: %d %v", status, body)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login/alice", plain, "", ""); status != http.StatusForbidden {
		t.Errorf("by-login with a non-admin's token: %d", status)
	}
	// A user named like a route of /users/{id} is found by login.
	sessions := srv.createUser("sessions", false)
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login/sessions", ro, "", ""); status != http.StatusOK || body["user"].(map[string]any)["id"] != sessions.ID {
		t.Errorf("by-login sessions: %d %v", status, body)
	}

	// Set a password: the policy, on the password field; sessions end.
	if _, _, err := srv.Main.Accounts.SignIn.StartSession(ctx, alice, []string{"pwd"}, "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	path := "/api/v1/users/" + alice.ID + "/password"
	for body, field := range map[string]string{`{"password":"short"}`: "password", `{"password":"` + testPassword + `","x":1}`: "x", `{"password":7}`: "password"} {
		if status, _, out := apiCall(t, srv, http.MethodPost, path, rw, "application/json", body); status != http.StatusBadRequest || out["field"] != field {
			t.Errorf("password %s: %d %v", body, status, out)
		}
	}
	if status, _, _ := apiCall(t, srv, http.MethodPost, path, ro, "application/json", `{"password":"alices-new-password"}`); status != http.StatusForbidden {
		t.Errorf("password with a read-only token: %d", status)
	}
	if status, _, _ := apiCall(t, srv, http.MethodPost, "/api/v1/users/nope/password", rw, "application/json", `{"password":"alices-new-password"}`); status != http.StatusNotFound {
		t.Errorf("password of nobody: %d", status)
	}
	if u, _ := srv.Main.Store.GetUser(ctx, alice.ID); u.PasswordHash != alice.PasswordHash {
		t.Fatal("a refused password was stored")
	}
	status, _, out := apiCall(t, srv, http.MethodPost, path, rw, "application/json", `{"password":"alices-new-password"}`)
	if status != http.StatusOK || out["sessions_ended"] != 1.0 {
		t.Errorf("password: %d %v", status, out)
	}
	if _, err := srv.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "alices-new-password"}); err != nil {
		t.Errorf("the new password: %v", err)
	}
	evs, _, _ := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{TargetUserID: alice.ID, Types: []string{"user.password_set"}})
	if len(evs) != 1 || evs[0].ActorKind != account.ActorUser || strings.Contains(evs[0].Reason+evs[0].Changes[0].After, "alices-new") {
		t.Errorf("password events %+v", evs)
	}

	// Import: every bad line with its number and field (422), nothing
	// written; a dry run; the import; the audit event.
	bad := `{"username":"carl","email":"carl@example.com"}` + "\n" + `{"username":"dina","email":"dina@","colour":"red"}` + "\n"
	// (apiCall wants the error shape of every 4xx; this 422 is a report.)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/users/import", strings.NewReader(bad))
	req.Header.Set("Authorization", "Bearer "+rw)
	req.Header.Set("Content-Type", "application/x-ndjson")
	p := mustFetch(t, http.DefaultClient, req)
	schemasOf(t, srv).check(t, http.MethodPost, "/api/v1/users/import", p.Status, []byte(p.Body))
	status = p.Status
	out = nil
	if err := json.Unmarshal([]byte(p.Body), &out); err != nil {
		t.Fatal(err)
	}
	problems, _ := out["problems"].([]any)
	if status != http.StatusUnprocessableEntity || len(problems) == 0 || out["created"] != 0.0 || !strings.Contains(out["message"].(string), "1 of 2 lines") {
		t.Fatalf("bad import: %d %v", status, out)
	}
	for _, p := range problems {
		if p := p.(map[string]any); p["line"] != 2.0 || p["field"] == "" {
			t.Errorf("problem %v", p)
		}
	}
	good := `{"username":"carl","email":"carl@example.com"}`
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users/import?dry_run=true", rw, "application/x-ndjson", good); status != http.StatusOK || out["users"] != 1.0 || out["created"] != 0.0 || out["dry_run"] != true {
		t.Errorf("dry run: %d %v", status, out)
	}
	if _, err := srv.Main.Store.GetUserByLogin(ctx, "carl"); err == nil {
		t.Fatal("a dry run or a bad file stored carl")
	}
	for _, c := range []struct {
		path, token, ctype string
		status             int
	}{
		{"/api/v1/users/import?dry_run=maybe", rw, "application/x-ndjson", http.StatusBadRequest},
		{"/api/v1/users/import", rw, "application/json", http.StatusUnsupportedMediaType},
		{"/api/v1/users/import", ro, "application/x-ndjson", http.StatusForbidden},
		{"/api/v1/users/import", plain, "application/x-ndjson", http.StatusForbidden},
	} {
		if status, _, out := apiCall(t, srv, http.MethodPost, c.path, c.token, c.ctype, good); status != c.status {
			t.Errorf("%s (%s): %d %v, want %d", c.path, c.ctype, status, out, c.status)
		}
	}
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users/import", rw, "application/x-ndjson", good); status != http.StatusOK || out["created"] != 1.0 {
		t.Errorf("import: %d %v", status, out)
	}
	if evs, _, _ := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{"users.imported"}}); len(evs) != 1 || evs[0].ActorKind != account.ActorUser {
		t.Errorf("import events %+v", evs)
	}

	// Export: a stream of every user, never for a read-only token.
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/api/v1/users/export", nil)
	req.Header.Set("Authorization", "Bearer "+rw)
	p = mustFetch(t, http.DefaultClient, req)
	lines := strings.Split(strings.TrimSpace(p.Body), "\n")
	if p.Status != http.StatusOK || p.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 4 {
		t.Fatalf("export: %d %s\n%s", p.Status, p.Header.Get("Content-Type"), truncateBody(p.Body))
	}
	var first account.ExportedUser
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil || first.Username != "alice" || !strings.HasPrefix(first.PasswordHash, "$argon2id$") {
		t.Errorf("first line: %v %+v", err, first)
	}
	if status, _, out := apiCall(t, srv, http.MethodGet, "/api/v1/users/export", ro, "", ""); status != http.StatusForbidden {
		t.Errorf("export with a read-only token: %d %v", status, out)
	}
	if evs, _, _ := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{"users.exported"}}); len(evs) != 1 {
		t.Errorf("export events %+v", evs)
	}
}
