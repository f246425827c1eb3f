package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// groupsClaim is the groups claim of a fresh ID token of username at app.
func groupsClaim(t *testing.T, app *testClient, username string) []string {
	t.Helper()
	var out []string
	claims := idTokenClaims(t, app, app.tokens(username))
	list, _ := claims["groups"].([]any)
	for _, g := range list {
		s, _ := g.(string)
		out = append(out, s)
	}
	return out
}

// Local groups through the management API and the command line (against
// the running server, through its control socket): create, read, rename
// under If-Match, members, delete; bad input named; read-only tokens only
// read; and what a member's ID token says at each step.
func TestAdminAPIGroups(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, ro, user := adminTokens(t, srv)
	ctx := context.Background()
	dora := srv.createUser("dora", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, "groups"}

	status, hdr, body := apiCall(t, srv, http.MethodPost, "/api/v1/groups", rw, "application/json", `{"name":"Developers","description":"People who ship"}`)
	if status != http.StatusCreated || body["name"] != "Developers" || hdr.Get("ETag") == "" || !strings.HasPrefix(hdr.Get("Location"), "/api/v1/groups/") {
		t.Fatalf("create: %d %v %v", status, hdr, body)
	}
	id := body["id"].(string)
	for _, c := range []struct {
		body, field string
		status      int
	}{
		{`{"name":"DEVELOPERS"}`, "name", http.StatusConflict},
		{`{"name":""}`, "name", http.StatusBadRequest},
		{`{"name":"a,b"}`, "name", http.StatusBadRequest},
		{`{"name":"` + strings.Repeat("g", 129) + `"}`, "name", http.StatusBadRequest},
		{`{"name":"x","colour":"red"}`, "colour", http.StatusBadRequest},
	} {
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/groups", rw, "application/json", c.body); status != c.status || body["field"] != c.field {
			t.Errorf("create %.40s: %d %v, want %d naming %q", c.body, status, body, c.status, c.field)
		}
	}
	if status, _, _ := apiCall(t, srv, http.MethodPost, "/api/v1/groups", ro, "application/json", `{"name":"ro"}`); status != http.StatusForbidden {
		t.Errorf("read-only token created a group: %d", status)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/groups", user, "", ""); status != http.StatusForbidden {
		t.Errorf("non-admin listed groups: %d", status)
	}
	if groups, _ := srv.Main.Store.ListGroups(ctx); len(groups) != 1 {
		t.Fatalf("refused creates stored groups: %+v", groups)
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/groups", ro, "", ""); status != http.StatusOK || len(body["items"].([]any)) != 1 {
		t.Errorf("list: %d %v", status, body)
	}

	// Join: the groups claim carries it.
	if slices.Contains(groupsClaim(t, app, "dora"), "Developers") {
		t.Fatal("dora's token has the group before she joined")
	}
	if status, _, _ := apiCall(t, srv, http.MethodPut, "/api/v1/groups/"+id+"/members/"+dora.ID, rw, "", ""); status != http.StatusNoContent {
		t.Fatalf("add member: %d", status)
	}
	if status, _, _ := apiCall(t, srv, http.MethodPut, "/api/v1/groups/"+id+"/members/nobody", rw, "", ""); status != http.StatusNotFound {
		t.Errorf("add an unknown user: %d", status)
	}
	if got := groupsClaim(t, app, "dora"); !slices.Equal(got, []string{"Developers"}) {
		t.Errorf("groups claim after joining: %q", got)
	}
	status, _, body = apiCall(t, srv, http.MethodGet, "/api/v1/groups/"+id+"/members?limit=1", ro, "", "")
	if items, _ := body["items"].([]any); status != http.StatusOK || len(items) != 1 || items[0].(map[string]any)["username"] != "dora" {
		t.Errorf("members: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/groups/"+id+"/members?limit=0", ro, "", ""); status != http.StatusBadRequest || body["field"] != "limit" {
		t.Errorf("limit 0: %d %v", status, body)
	}

	// Rename under If-Match: the claim carries the new name.
	status, hdr, _ = apiCall(t, srv, http.MethodGet, "/api/v1/groups/"+id, ro, "", "")
	etag := hdr.Get("ETag")
	if status != http.StatusOK || etag == "" {
		t.Fatalf("get: %d %v", status, hdr)
	}
	status, hdr, body = apiCallWith(t, srv, http.MethodPatch, "/api/v1/groups/"+id, rw, "application/json", `{"name":"Engineers"}`, http.Header{"If-Match": {etag}})
	if status != http.StatusOK || body["name"] != "Engineers" || hdr.Get("ETag") == etag {
		t.Fatalf("rename: %d %v", status, body)
	}
	if status, _, _ := apiCallWith(t, srv, http.MethodPatch, "/api/v1/groups/"+id, rw, "application/json", `{"name":"Lost"}`, http.Header{"If-Match": {etag}}); status != http.StatusPreconditionFailed {
		t.Errorf("stale If-Match: %d", status)
	}
	if got := groupsClaim(t, app, "dora"); !slices.Equal(got, []string{"Engineers"}) {
		t.Errorf("groups claim after the rename: %q", got)
	}

	// Leave: gone from the claim.
	if status, _, _ := apiCall(t, srv, http.MethodDelete, "/api/v1/groups/"+id+"/members/"+dora.ID, rw, "", ""); status != http.StatusNoContent {
		t.Fatalf("remove member: %d", status)
	}
	if got := groupsClaim(t, app, "dora"); len(got) != 0 {
		t.Errorf("groups claim after leaving: %q", got)
	}

	// The command line, through the running server's control socket.
	env := cliEnv(srv.dir)
	cliMust(t, env, "", "group", "create", "--name", "ops", "--description", "On call")
	cliFail(t, env, "", 1, "Another group already has this name", "group", "create", "--name", "OPS")
	cliMust(t, env, "", "group", "add-member", "--name", "ops", "--username", "dora@example.com")
	if got := groupsClaim(t, app, "dora"); !slices.Equal(got, []string{"ops"}) {
		t.Errorf("groups claim after the CLI's add-member: %q", got)
	}
	cliMust(t, env, "", "group", "rename", "--name", "OPS", "--to", "oncall")
	if r := cliMust(t, env, "", "group", "list"); !strings.Contains(r.Stdout, "oncall") || !strings.Contains(r.Stdout, "Engineers") || strings.Contains(r.Stdout, "ops ") {
		t.Errorf("group list: %s", r)
	}
	if u, _ := srv.Main.Store.GetUser(ctx, dora.ID); !slices.Equal(u.Groups, []string{"oncall"}) {
		t.Errorf("dora's groups after the CLI's rename: %q", u.Groups)
	}
	cliMust(t, env, "", "group", "remove-member", "--name", "oncall", "--username", "dora")
	cliFail(t, env, "", 1, "not a member", "group", "remove-member", "--name", "oncall", "--username", "dora")
	cliFail(t, env, "", 1, `no group "nope"`, "group", "delete", "--name", "nope")
	cliFail(t, env, "", 2, "needs --name", "group", "create")
	cliMust(t, env, "", "group", "delete", "--name", "oncall")

	// Delete through the API.
	if status, _, _ := apiCall(t, srv, http.MethodDelete, "/api/v1/groups/"+id, rw, "", ""); status != http.StatusNoContent {
		t.Errorf("delete: %d", status)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/groups/"+id, ro, "", ""); status != http.StatusNotFound {
		t.Errorf("deleted group: %d", status)
	}
	if groups, _ := srv.Main.Store.ListGroups(ctx); len(groups) != 0 {
		t.Errorf("groups left: %+v", groups)
	}

	// Each change is in the audit log, by whoever made it.
	events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range events {
		if strings.HasPrefix(e.Type, "group.") {
			count[e.Type+" by "+e.ActorKind]++
		}
	}
	want := map[string]int{
		"group.created by user": 1, "group.member_added by user": 1, "group.renamed by user": 1, "group.member_removed by user": 1, "group.deleted by user": 1,
		"group.created by cli": 1, "group.member_added by cli": 1, "group.renamed by cli": 1, "group.member_removed by cli": 1, "group.deleted by cli": 1,
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%d %s events, want %d (have %v)", count[k], k, n, count)
		}
	}
}

// The console's group pages through a signed-in admin's browser: create
// (a taken name named on the form), rename, add a member by username and
// by email, remove, delete after confirming.
func TestAdminConsoleGroupPages(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("root", true)
	dora := srv.createUser("dora", false)
	eve := srv.createUser("eve", false)
	ctx := context.Background()
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")

	list := b.get(srv.URL + "/admin/groups")
	if list.Status != http.StatusOK {
		t.Fatalf("list: %d", list.Status)
	}
	if _, ok := parsePage(t, list.Body).first("a", "href", "/admin/groups"); !ok {
		t.Error("the console menu has no link to the groups")
	}
	p := submitForm(t, b, list, "/admin/groups", url.Values{"name": {"Staff"}, "description": {"Everyone"}})
	if p.Status != http.StatusOK || notice(t, p) != "The group was created." {
		t.Fatalf("create: %d %s", p.Status, truncateBody(p.Body))
	}
	page := p.URL.String()
	groups, _ := srv.Main.Store.ListGroups(ctx)
	if len(groups) != 1 || groups[0].Name != "Staff" || !strings.HasSuffix(p.URL.Path, "/admin/groups/"+groups[0].ID) {
		t.Fatalf("stored %+v, page %s", groups, p.URL)
	}
	id := groups[0].ID
	taken := submitForm(t, b, b.get(srv.URL+"/admin/groups"), "/admin/groups", url.Values{"name": {"staff"}})
	if taken.Status != http.StatusConflict || !strings.Contains(taken.Body, "Another group already has this name.") || !strings.Contains(taken.Body, `aria-invalid="true"`) {
		t.Errorf("taken name: %d", taken.Status)
	}

	// Rename; a stale form is refused.
	first, second := b.get(page), b.get(page)
	if p := submitForm(t, b, first, "/admin/groups/"+id+"/edit", url.Values{"name": {"Team"}}); notice(t, p) != "The changes were saved." {
		t.Errorf("rename: %d %s", p.Status, truncateBody(p.Body))
	}
	if p := submitForm(t, b, second, "/admin/groups/"+id+"/edit", url.Values{"name": {"Lost"}}); p.Status != http.StatusPreconditionFailed {
		t.Errorf("stale rename: %d", p.Status)
	}

	// Members by username and by email; an unknown one named.
	submitForm(t, b, b.get(page), "/admin/groups/"+id+"/members", url.Values{"login": {"dora"}})
	if p := submitForm(t, b, b.get(page), "/admin/groups/"+id+"/members", url.Values{"login": {"eve@example.com"}}); notice(t, p) != "The member was added." {
		t.Errorf("add by email: %d", p.Status)
	}
	if p := submitForm(t, b, b.get(page), "/admin/groups/"+id+"/members", url.Values{"login": {"nobody"}}); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "There is no user with this username or email address.") {
		t.Errorf("unknown member: %d", p.Status)
	}
	for _, u := range []storage.User{dora, eve} {
		if got, _ := srv.Main.Store.GetUser(ctx, u.ID); !slices.Equal(got.Groups, []string{"Team"}) {
			t.Errorf("%s's groups: %q", u.Username, got.Groups)
		}
	}
	members := b.get(page)
	if _, ok := parsePage(t, members.Body).first("a", "href", "/admin/users/"+dora.ID); !ok {
		t.Error("the members table does not link to dora's page")
	}
	if p := submitForm(t, b, members, "/admin/groups/"+id+"/members/"+dora.ID+"/remove", nil); notice(t, p) != "The member was removed." {
		t.Errorf("remove: %d", p.Status)
	}
	if got, _ := srv.Main.Store.GetUser(ctx, dora.ID); len(got.Groups) != 0 {
		t.Errorf("dora's groups after removing: %q", got.Groups)
	}

	// Delete asks first.
	exists := func() bool { _, err := srv.Main.Store.GetGroup(ctx, id); return err == nil }
	confirm := askFirst(t, b, b.get(page), "/admin/groups/"+id+"/delete", "/admin/groups/"+id+"/delete", url.Values{}, exists)
	if p := submitForm(t, b, confirm, "/admin/groups/"+id+"/delete", nil); notice(t, p) != "The group was deleted." {
		t.Errorf("delete: %d", p.Status)
	}
	if exists() {
		t.Error("the group still exists after the confirmed delete")
	}
	if got, _ := srv.Main.Store.GetUser(ctx, eve.ID); len(got.Groups) != 0 {
		t.Errorf("eve's groups after the delete: %q", got.Groups)
	}
}
