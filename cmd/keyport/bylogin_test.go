package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
)

// TestAdminAPIUserByLoginAnyLogin: GET /users/by-login?login= finds a user
// whatever their login holds (a "/", "%", "+", letters beyond ASCII), as
// the router cannot put a "/" in a path segment even sent as %2F; the
// command line asks that way, so `keyport user block --username a/b@…`
// works too. Answers are checked against the OpenAPI document.
func TestAdminAPIUserByLoginAnyLogin(t *testing.T) {
	srv := startServer(t, "", nil)
	_, ro, _ := adminTokens(t, srv)
	ctx := context.Background()
	ids := map[string]string{}
	for _, n := range []struct{ username, email string }{
		{"slash", "a/b@example.com"},
		{"pc", "p%c@example.com"},
		{"plus", "c+tag@example.com"},
		{"joerg", "jörg@exämple.com"},
	} {
		u, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: n.username, Email: n.email, Password: testPassword})
		if err != nil {
			t.Fatalf("create %s: %v", n.email, err)
		}
		ids[n.username], ids[n.email] = u.ID, u.ID
	}
	for login, id := range ids {
		status, hdr, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login?"+url.Values{"login": {login}}.Encode(), ro, "", "")
		if u, _ := body["user"].(map[string]any); status != http.StatusOK || u["id"] != id || hdr.Get("ETag") == "" {
			t.Errorf("by-login?login=%s: %d %v", login, status, body)
		}
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login?login="+url.QueryEscape("A/B@EXAMPLE.COM"), ro, "", ""); status != http.StatusOK || body["user"].(map[string]any)["id"] != ids["slash"] {
		t.Errorf("by-login in another case: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login?login=nobody%2Felse", ro, "", ""); status != http.StatusNotFound {
		t.Errorf("by-login of nobody: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login", ro, "", ""); status != http.StatusBadRequest || body["field"] != "login" {
		t.Errorf("by-login without a login: %d %v", status, body)
	}
	// The path form keeps working for the logins it can carry.
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users/by-login/"+url.PathEscape("c+tag@example.com"), ro, "", ""); status != http.StatusOK || body["user"].(map[string]any)["id"] != ids["plus"] {
		t.Errorf("by-login/c+tag@example.com: %d %v", status, body)
	}

	// The command line names the user by that login.
	env := cliEnv(srv.dir)
	r := cliMust(t, env, "", "user", "block", "--username", "a/b@example.com")
	u, err := srv.Main.Store.GetUser(ctx, ids["slash"])
	if err != nil || !u.Blocked || !strings.Contains(r.Stdout, "blocked a/b@example.com") {
		t.Errorf("user block --username a/b@example.com: blocked=%v %v %s", u.Blocked, err, r)
	}
}
