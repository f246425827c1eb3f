package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
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
	_, secret, err := srv.Main.Accounts.Clients.RegisterClient(context.Background(), account.SystemActor, account.NewClient{ID: "robot", GrantTypes: []string{account.GrantClientCredentials}})
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
	if status, h, body := apiCall(t, srv, http.MethodPut, "/api/v1/directories", rw, "", ""); status != http.StatusMethodNotAllowed || h.Get("Allow") != "GET, POST" || body["error"] != "method_not_allowed" {
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

// Every admin route refuses a signed-in non-admin with 403, and every
// management API route a non-admin's API token, changing nothing. The
// routes come from the portal's own table, so a new one is covered the
// day it is registered, and cannot forget its guard.
func TestNonAdminsRefusedOnEveryAdminRoute(t *testing.T) {
	srv := startServer(t, "", nil)
	_, _, userToken := adminTokens(t, srv)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	csrf := csrfOf(t, b, srv.URL+"/security")
	fill := strings.NewReplacer("{id}", "x", "{", "", "}", "")
	console, api := srv.Main.Portal.AdminRoutes()
	if len(console) < 10 || len(api) < 5 {
		t.Fatalf("only %d console and %d API routes", len(console), len(api))
	}
	usersBefore, _ := srv.Main.Store.ListUsers(context.Background())
	for _, r := range console {
		path := srv.URL + fill.Replace(strings.TrimSuffix(r.Path, "*"))
		var p page
		switch r.Method {
		case http.MethodGet, http.MethodHead:
			req, _ := http.NewRequest(r.Method, path, nil)
			p = b.do(req)
		default:
			req, _ := http.NewRequest(r.Method, path, strings.NewReader(url.Values{"csrf_token": {csrf}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			p = b.do(req)
		}
		if p.Status != http.StatusForbidden {
			t.Errorf("%s %s as a non-admin: %d", r.Method, r.Path, p.Status)
		}
	}
	for _, r := range api {
		path := fill.Replace(r.Path)
		body, ct := "", ""
		if r.Method != http.MethodGet && r.Method != http.MethodHead && r.Method != http.MethodDelete {
			body, ct = "{}", "application/json"
		}
		if r.Method == http.MethodHead {
			continue // apiCall reads a body
		}
		if status, _, out := apiCall(t, srv, r.Method, path, userToken, ct, body); status != http.StatusForbidden || out["error"] != "forbidden" {
			t.Errorf("%s %s with a non-admin's token: %d %v", r.Method, r.Path, status, out)
		}
	}
	usersAfter, _ := srv.Main.Store.ListUsers(context.Background())
	if !reflect.DeepEqual(usersBefore, usersAfter) {
		t.Error("refused requests changed the users")
	}
}

// The console's front page counts what there is and shows the console's
// menu with itself as the current section.
func TestAdminOverview(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("root", true)
	srv.createUser("alice", false)
	srv.createClient(account.NewClient{ID: "webapp"})
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	p := b.get(srv.URL + "/admin")
	if p.Status != http.StatusOK {
		t.Fatalf("/admin: %d", p.Status)
	}
	doc := parsePage(t, p.Body)
	stats, ok := doc.byID("overview")
	if !ok {
		t.Fatalf("no overview:\n%s", truncateBody(p.Body))
	}
	if got := strings.Join(strings.Fields(stats.text()), " "); got != "Users 2 Apps 1 Directories 0" {
		t.Errorf("overview says %q", got)
	}
	nav, ok := doc.first("nav", "class", "admin-nav")
	if !ok {
		t.Fatal("no admin menu")
	}
	if current, ok := nav.first("a", "aria-current", "page"); !ok || current.attr("href") != "/admin" {
		t.Errorf("current section: %v", current.attr("href"))
	}
}

// The audit log through the API: filters, pages, bad filters named, and the
// JSON Lines export of the same query.
func TestAdminAPIAudit(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, ro, _ := adminTokens(t, srv)
	for _, name := range []string{"a1", "a2", "a3"} {
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json", `{"username":"`+name+`","email":"`+name+`@example.com","invite":true}`); status != http.StatusCreated {
			t.Fatalf("create %s: %d %v", name, status, body)
		}
	}
	status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/audit?type=user.created&limit=2", ro, "", "")
	items, _ := body["items"].([]any)
	if status != http.StatusOK || len(items) != 2 || body["next_cursor"] == "" {
		t.Fatalf("first page: %d %v", status, body)
	}
	next := body["next_cursor"].(string)
	status, _, body = apiCall(t, srv, http.MethodGet, "/api/v1/audit?type=user.created&limit=2&cursor="+url.QueryEscape(next), ro, "", "")
	rest, _ := body["items"].([]any)
	if status != http.StatusOK || len(rest) != 1 || body["next_cursor"] != "" {
		t.Fatalf("second page: %d %v", status, body)
	}
	for _, e := range append(items, rest...) {
		if ev := e.(map[string]any); ev["type"] != "user.created" || ev["actor_kind"] != "user" {
			t.Errorf("event %v", ev)
		}
	}
	for q, field := range map[string]string{"type=Not%20A%20Type": "type", "from=yesterday": "from", "limit=501": "limit", "cursor=garbage": "cursor", "from=2026-12-02&to=2026-12-01": "from"} {
		if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/audit?"+q, ro, "", ""); status != http.StatusBadRequest || body["field"] != field {
			t.Errorf("%s: %d %v, want 400 naming %s", q, status, body, field)
		}
	}
	p := mustFetch(t, http.DefaultClient, authed(srv, http.MethodGet, "/api/v1/audit/export?type=user.created", ro))
	lines := strings.Split(strings.TrimSpace(p.Body), "\n")
	if p.Status != http.StatusOK || p.Header.Get("Content-Type") != "application/x-ndjson" || len(lines) != 3 {
		t.Fatalf("export: %d %s, %d lines\n%s", p.Status, p.Header.Get("Content-Type"), len(lines), truncateBody(p.Body))
	}
	for _, l := range lines {
		var e map[string]any
		if err := json.Unmarshal([]byte(l), &e); err != nil || e["type"] != "user.created" {
			t.Errorf("export line %q: %v", l, err)
		}
	}
	if p := mustFetch(t, http.DefaultClient, authed(srv, http.MethodGet, "/api/v1/audit/export?type=BAD", ro)); p.Status != http.StatusBadRequest {
		t.Errorf("export with a bad filter: %d", p.Status)
	}
}

// The console's audit page: filtered events with links to the users, bad
// filters named on the form, and the export of the same query.
func TestAdminConsoleAudit(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("root", true)
	bob := srv.createUser("bob", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	submitForm(t, b, b.get(srv.URL+"/admin/users/"+bob.ID), "/admin/users/"+bob.ID+"/block", nil)

	p := b.get(srv.URL + "/admin/audit?type=user.blocked")
	doc := parsePage(t, p.Body)
	table, ok := doc.byID("audit-events")
	if p.Status != http.StatusOK || !ok {
		t.Fatalf("audit page: %d\n%s", p.Status, truncateBody(p.Body))
	}
	rows := table.all("tr", "role", "row")
	if len(rows) != 2 || !strings.Contains(rows[1].text(), "user.blocked") {
		t.Errorf("rows: %d", len(rows))
	}
	if _, ok := table.first("a", "href", "/admin/users/"+bob.ID); !ok {
		t.Error("no link to the blocked user")
	}
	bad := b.get(srv.URL + "/admin/audit?type=NOT+A+TYPE")
	if in, ok := parsePage(t, bad.Body).byID("f-type"); bad.Status != http.StatusBadRequest || !ok || in.attr("aria-invalid") != "true" {
		t.Errorf("bad filter: %d", bad.Status)
	}
	export, _ := doc.byID("audit-export")
	u, _ := p.URL.Parse(export.attr("href"))
	e := b.get(u.String())
	if e.Status != http.StatusOK || strings.Count(strings.TrimSpace(e.Body), "\n") != 0 || !strings.Contains(e.Body, `"type":"user.blocked"`) {
		t.Errorf("export: %d\n%s", e.Status, truncateBody(e.Body))
	}
}
