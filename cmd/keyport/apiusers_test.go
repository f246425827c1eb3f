package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The users routes of the management API, one server: create (password,
// invitation, bad input), read, edit under If-Match, block with the
// effect on issued tokens, reset second factors, links, sessions,
// delete; every answer checked against the OpenAPI document (apiCall),
// and every change in the audit log.
func TestAdminAPIUsers(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, ro, _ := adminTokens(t, srv)
	ctx := context.Background()
	h := func(kv ...string) http.Header {
		out := http.Header{}
		for i := 0; i < len(kv); i += 2 {
			out.Set(kv[i], kv[i+1])
		}
		return out
	}

	// Create with a password, then with an invitation.
	status, hdr, body := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json", `{"username":"dora","email":"dora@example.com","name":"Dora","password":"`+testPassword+`"}`)
	user, _ := body["user"].(map[string]any)
	if status != http.StatusCreated || user["username"] != "dora" || hdr.Get("ETag") == "" || !strings.HasPrefix(hdr.Get("Location"), "/api/v1/users/") || body["invitation"] != nil {
		t.Fatalf("create dora: %d %v %v", status, hdr, body)
	}
	dora := user["id"].(string)
	status, _, body = apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json", `{"username":"eve","email":"eve@example.com","invite":true}`)
	inv, _ := body["invitation"].(map[string]any)
	if status != http.StatusCreated || inv == nil || !strings.Contains(inv["url"].(string), "/invite?token=") {
		t.Errorf("create by invitation: %d %v", status, body)
	}
	for _, c := range []struct{ body, field string }{
		{`{"username":"dora","email":"other@example.com","password":"` + testPassword + `"}`, "username"},
		{`{"username":"fred","email":"not-an-email","password":"` + testPassword + `"}`, "email"},
		{`{"username":"fred","email":"fred@example.com","password":"short"}`, "password"},
		{`{"username":"fred","email":"fred@example.com","password":"` + testPassword + `","shoe_size":44}`, "shoe_size"},
		{`{"username":"fred","email":"fred@example.com","admin":"yes","password":"` + testPassword + `"}`, "admin"},
	} {
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json", c.body); status < 400 || status > 499 || body["field"] != c.field {
			t.Errorf("create %s: %d %v, want the field %q named", c.body, status, body, c.field)
		}
	}
	if _, err := srv.Main.Store.GetUserByLogin(ctx, "fred"); err == nil {
		t.Error("a refused create stored fred")
	}

	// Read: everything but secrets.
	status, hdr, body = apiCall(t, srv, http.MethodGet, "/api/v1/users/"+dora, ro, "", "")
	etag := hdr.Get("ETag")
	if status != http.StatusOK || etag == "" || body["has_password"] != true {
		t.Fatalf("get dora: %d %v", status, body)
	}
	raw := mustFetch(t, http.DefaultClient, authed(srv, http.MethodGet, "/api/v1/users/"+dora, ro)).Body
	if strings.Contains(raw, "argon2") || strings.Contains(raw, "password_hash") {
		t.Errorf("the detail leaks the password hash:\n%s", raw)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/users/nobody", ro, "", ""); status != http.StatusNotFound {
		t.Errorf("unknown user: %d", status)
	}

	// Edit under If-Match: a stale ETag changes nothing.
	status, hdr, body = apiCallWith(t, srv, http.MethodPatch, "/api/v1/users/"+dora, rw, "application/json", `{"name":"Dora D.","roles":["ops"],"app_metadata":{"plan":"gold"}}`, h("If-Match", etag))
	if status != http.StatusOK || body["name"] != "Dora D." || hdr.Get("ETag") == etag {
		t.Fatalf("patch: %d %v", status, body)
	}
	if status, _, body := apiCallWith(t, srv, http.MethodPatch, "/api/v1/users/"+dora, rw, "application/json", `{"name":"Lost Update"}`, h("If-Match", etag)); status != http.StatusPreconditionFailed || body["error"] == nil {
		t.Errorf("stale If-Match: %d %v", status, body)
	}
	if u, _ := srv.Main.Store.GetUser(ctx, dora); u.Name != "Dora D." || len(u.Roles) != 1 || u.AppMetadata["plan"] != "gold" {
		t.Errorf("stored after the edits: %+v", u)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/users/"+dora, rw, "application/json", `{"email":"bad"}`); status != http.StatusBadRequest || body["field"] != "email" {
		t.Errorf("bad email: %d %v", status, body)
	}
	if status, _, _ := apiCall(t, srv, http.MethodPatch, "/api/v1/users/"+dora, ro, "application/json", `{"name":"X"}`); status != http.StatusForbidden {
		t.Errorf("read-only token patched: %d", status)
	}

	// Block: issued tokens stop working at once; unblock.
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	tok := app.tokens("dora")
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+dora+"/block", rw, "", ""); status != http.StatusOK || body["tokens_revoked"].(float64) < 1 {
		t.Errorf("block: %d %v", status, body)
	}
	if access, refresh := app.works(tok); access || refresh {
		t.Errorf("after the block: access token works %v, refresh works %v", access, refresh)
	}
	if status, _, _ := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+dora+"/unblock", rw, "", ""); status != http.StatusNoContent {
		t.Errorf("unblock: %d", status)
	}
	if u, _ := srv.Main.Store.GetUser(ctx, dora); u.Blocked {
		t.Error("still blocked")
	}

	// Second factors (none here, so the answer says none went and the log
	// records nothing), links, sessions.
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+dora+"/reset-2fa", rw, "", ""); status != http.StatusOK || body["totp"] != false {
		t.Errorf("reset-2fa: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+dora+"/password-reset-link", rw, "", ""); status != http.StatusCreated || !strings.Contains(body["url"].(string), "/reset-password?token=") {
		t.Errorf("reset link: %d %v", status, body)
	}
	app.tokens("dora")
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/"+dora+"/sessions", ro, "", ""); status != http.StatusOK || len(body["items"].([]any)) == 0 {
		t.Errorf("sessions: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodDelete, "/api/v1/users/"+dora+"/sessions", rw, "", ""); status != http.StatusOK || body["sessions_ended"].(float64) < 1 {
		t.Errorf("end sessions: %d %v", status, body)
	}

	// Delete.
	if status, _, _ := apiCall(t, srv, http.MethodDelete, "/api/v1/users/"+dora, rw, "", ""); status != http.StatusNoContent {
		t.Errorf("delete: %d", status)
	}
	if _, err := srv.Main.Store.GetUser(ctx, dora); err == nil {
		t.Error("dora is still stored")
	}

	// Each change is in the audit log, by the admin's token.
	events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{TargetUserID: dora, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range events {
		seen[e.Type] = true
		if strings.HasPrefix(e.Type, "user.") && (e.ActorKind != account.ActorUser || e.ActorID == "") {
			t.Errorf("%s by %s %q", e.Type, e.ActorKind, e.ActorID)
		}
	}
	for _, want := range []string{"user.created", "user.updated", "user.blocked", "user.unblocked", "user.password_reset_link_created", "user.sessions_ended", "user.deleted"} {
		if !seen[want] {
			t.Errorf("no %s event (have %v)", want, seen)
		}
	}
}

// authed is a request with a bearer token.
func authed(srv *testServer, method, path, token string) *http.Request {
	req, _ := http.NewRequest(method, srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	return req
}

// Searching users through the API and the console: text (any case),
// filters, sort, pages without gaps, bad parameters named; a deleted
// user's names stay taken.
func TestAdminUserSearch(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, ro, _ := adminTokens(t, srv) // root (admin), alice
	for _, n := range []string{"jurgen2", "maria", "mario", "marianne"} {
		srv.createUser(n, false)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json", `{"username":"juergen","email":"j@example.com","name":"Jürgen Groß","invite":true}`); status != http.StatusCreated {
		t.Fatalf("create juergen: %d %v", status, body)
	}
	ctx := context.Background()
	jurgen, _ := srv.Main.Store.GetUserByLogin(ctx, "juergen")
	if _, err := srv.Main.Store.UpdateUser(ctx, jurgen.ID, func(u storage.User) (storage.User, error) { u.Blocked = true; return u, nil }); err != nil {
		t.Fatal(err)
	}
	names := func(body map[string]any) []string {
		var out []string
		for _, it := range body["items"].([]any) {
			out = append(out, it.(map[string]any)["username"].(string))
		}
		return out
	}
	for q, want := range map[string]string{
		"q=MARI":                            "marianne mario maria",
		"q=JÜRGEN":                          "juergen",
		"q=mari&limit=2":                    "marianne mario",
		"blocked=true":                      "juergen",
		"admin=true":                        "root",
		"q=alice&admin=false&blocked=false": "alice",
	} {
		status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users?"+q, ro, "", "")
		if got := strings.Join(names(body), " "); status != http.StatusOK || got != want {
			t.Errorf("%s: %d %q, want %q", q, status, got, want)
		}
	}
	// Pages: every user once.
	seen := map[string]bool{}
	next := ""
	for i := 0; i < 10; i++ {
		status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users?limit=3&sort=last_sign_in&cursor="+url.QueryEscape(next), ro, "", "")
		if status != http.StatusOK {
			t.Fatalf("page %d: %d %v", i, status, body)
		}
		for _, n := range names(body) {
			if seen[n] {
				t.Errorf("%s twice", n)
			}
			seen[n] = true
		}
		if next = body["next_cursor"].(string); next == "" {
			break
		}
	}
	if len(seen) != 7 {
		t.Errorf("paged through %d users, want 7: %v", len(seen), seen)
	}
	for q, field := range map[string]string{"sort=name": "sort", "blocked=maybe": "blocked", "limit=0": "limit", "cursor=xyz": "cursor"} {
		if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users?"+q, ro, "", ""); status != http.StatusBadRequest || body["field"] != field {
			t.Errorf("%s: %d %v, want 400 naming %s", q, status, body, field)
		}
	}
	// A deleted user's username and email cannot be taken again at once.
	maria, _ := srv.Main.Store.GetUserByLogin(ctx, "maria")
	if status, _, _ := apiCall(t, srv, http.MethodDelete, "/api/v1/users/"+maria.ID, rw, "", ""); status != http.StatusNoContent {
		t.Fatalf("delete maria: %d", status)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json", `{"username":"maria","email":"new@example.com","invite":true}`); status != http.StatusConflict || body["field"] != "username" {
		t.Errorf("maria again: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json", `{"username":"maria2","email":"maria@example.com","invite":true}`); status != http.StatusConflict || body["field"] != "email" {
		t.Errorf("maria's email again: %d %v", status, body)
	}

	// The console's list: the same search, as a page.
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	p := b.get(srv.URL + "/admin/users?q=MARI")
	table, ok := parsePage(t, p.Body).byID("users")
	if p.Status != http.StatusOK || !ok || len(table.all("a")) != 2 {
		t.Fatalf("console search: %d\n%s", p.Status, truncateBody(p.Body))
	}
	if _, ok := table.first("a", "href", "/admin/users/"+jurgen.ID); ok {
		t.Error("jürgen listed for MARI")
	}
	if bad := b.get(srv.URL + "/admin/users?sort=name"); bad.Status != http.StatusBadRequest {
		t.Errorf("console bad sort: %d", bad.Status)
	}
}
