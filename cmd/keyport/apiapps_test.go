package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// The apps routes of the management API, one server: create (secret once,
// bad input naming the field), list with the static app from config.toml,
// read with an ETag, edit under If-Match, rotate the secret with and
// without a grace as the token endpoint sees it, delete; every answer
// checked against the OpenAPI document (apiCall), and every change in the
// audit log. Then the management API scopes an admin grants an app.
func TestAdminAPIClients(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "static-app", Name: "From the file", RedirectURIs: []string{"https://static.example.com/cb"}, GrantTypes: []string{"authorization_code"}, Secret: "static-secret-0123456789"})
	})
	rw, ro, _ := adminTokens(t, srv)
	ctx := context.Background()
	ifm := func(etag string) http.Header { return http.Header{"If-Match": {etag}} }
	ccToken := func(id, secret, scope string) (int, map[string]any) {
		form := url.Values{"grant_type": {"client_credentials"}}
		if scope != "" {
			form.Set("scope", scope)
		}
		status, _, body := srv.postForm("/oauth/token", form, id, secret)
		return status, body
	}

	// Create: the secret is in this answer only.
	status, hdr, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
		`{"id":"robot","name":"Nightly job","grant_types":["client_credentials"],"access_token_lifetime":600}`)
	client, _ := body["client"].(map[string]any)
	secret, _ := body["secret"].(string)
	if status != http.StatusCreated || len(secret) < 16 || client["has_secret"] != true || client["access_token_lifetime"] != float64(600) ||
		hdr.Get("ETag") == "" || hdr.Get("Location") != "/api/v1/clients/robot" {
		t.Fatalf("create robot: %d %v %v", status, hdr, body)
	}
	if status, body := ccToken("robot", secret, ""); status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("robot's secret at the token endpoint: %d %v", status, body)
	}
	for _, c := range []struct{ body, field string }{
		{`{"id":"robot","grant_types":["client_credentials"]}`, "id"},
		{`{"id":"web","redirect_uris":["http://app.example.com/cb"]}`, "redirect_uris"},
		{`{"id":"web","redirect_uris":["https://app.example.com/cb"],"grant_types":["implicit"]}`, "grant_types"},
		{`{"id":"web","redirect_uris":["https://app.example.com/cb"],"access_token_lifetime":5}`, "access_token_lifetime"},
		{`{"id":"web","redirect_uris":["https://app.example.com/cb"],"allowed_scopes":["keyport:admin"]}`, "allowed_scopes"},
		{`{"id":"web","redirect_uris":["https://app.example.com/cb"],"colour":"red"}`, "colour"},
		// JSON names are case-sensitive: another case is not the field
		// (encoding/json alone would take "ID" for id, the last winning).
		{`{"id":"web","redirect_uris":["https://app.example.com/cb"],"ID":"web2"}`, "ID"},
		{`{"id":"web","redirect_uris":["https://app.example.com/cb"],"Public":true}`, "Public"},
		{`{"id":"web","redirect_uris":["https://app.example.com/cb"],"custom_claims":[{"claim":"dept","Source":"app_metadata.dept","scope":"org"}]}`, "Source"},
	} {
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", c.body); status < 400 || status > 499 || body["field"] != c.field {
			t.Errorf("create %s: %d %v, want the field %q named", c.body, status, body, c.field)
		}
	}
	for _, id := range []string{"web", "web2"} {
		if _, err := srv.Main.Store.GetClient(ctx, id); err == nil {
			t.Errorf("a refused create stored %s", id)
		}
	}

	// List and read: never a secret's hash; the static app marked.
	status, _, body = apiCall(t, srv, http.MethodGet, "/api/v1/clients", ro, "", "")
	byID := map[string]map[string]any{}
	for _, it := range body["items"].([]any) {
		c := it.(map[string]any)
		byID[c["id"].(string)] = c
	}
	if status != http.StatusOK || byID["robot"] == nil || byID["static-app"]["static"] != true || byID["robot"]["static"] != false {
		t.Fatalf("list: %d %v", status, body)
	}
	raw := mustFetch(t, http.DefaultClient, authed(srv, http.MethodGet, "/api/v1/clients", ro)).Body
	stored, _ := srv.Main.Store.GetClient(ctx, "robot")
	if strings.Contains(raw, stored.SecretHash) || strings.Contains(raw, "secret_hash") {
		t.Errorf("the list leaks a secret's hash:\n%s", raw)
	}
	status, hdr, body = apiCall(t, srv, http.MethodGet, "/api/v1/clients/robot", ro, "", "")
	etag := hdr.Get("ETag")
	if status != http.StatusOK || etag == "" || body["name"] != "Nightly job" {
		t.Fatalf("get robot: %d %v", status, body)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients/nope", ro, "", ""); status != http.StatusNotFound {
		t.Errorf("unknown app: %d", status)
	}

	// Edit under If-Match: a stale ETag, a bad URI and a static app change
	// nothing.
	status, hdr, body = apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/robot", rw, "application/json", `{"name":"Nightly batch","allowed_groups":["ops"]}`, ifm(etag))
	if status != http.StatusOK || body["name"] != "Nightly batch" || hdr.Get("ETag") == etag || hdr.Get("ETag") == "" {
		t.Fatalf("patch: %d %v", status, body)
	}
	if status, _, body := apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/robot", rw, "application/json", `{"name":"Lost update"}`, ifm(etag)); status != http.StatusPreconditionFailed || body["error"] == nil {
		t.Errorf("stale If-Match: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/robot", rw, "application/json", `{"grant_types":["authorization_code"],"redirect_uris":["javascript:alert(1)"]}`); status != http.StatusBadRequest || body["field"] != "redirect_uris" {
		t.Errorf("bad redirect URI: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/robot", rw, "application/json", `{"Name":"Other case"}`); status != http.StatusBadRequest || body["field"] != "Name" {
		t.Errorf("a name in another case: %d %v", status, body)
	}
	// null is no value of an app's fields (nor left out, which would
	// answer 200 to a client that meant RFC 7396's removal).
	for _, field := range []string{"name", "jwks", "jwks_uri", "allowed_groups"} {
		if status, _, body := apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/robot", rw, "application/merge-patch+json", `{"`+field+`":null}`, nil); status != http.StatusBadRequest || body["field"] != field {
			t.Errorf("%s null: %d %v", field, status, body)
		}
	}
	if c, _ := srv.Main.Store.GetClient(ctx, "robot"); c.Name != "Nightly batch" || len(c.RedirectURIs) != 0 || len(c.AllowedGroups) != 1 {
		t.Errorf("stored after the edits: %+v", c)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/static-app", rw, "application/json", `{"name":"Mine now"}`); status != http.StatusConflict || !strings.Contains(body["message"].(string), "configuration file") {
		t.Errorf("patch a static app: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients/static-app/rotate-secret", rw, "application/json", `{"grace_seconds":0}`); status != http.StatusConflict || !strings.Contains(body["message"].(string), "configuration file") {
		t.Errorf("rotate a static app's secret: %d %v", status, body)
	}
	if status, _, _ := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/robot", ro, "application/json", `{"name":"X"}`); status != http.StatusForbidden {
		t.Errorf("read-only token patched: %d", status)
	}

	// Rotate with an hour's grace: both secrets work; then with none: only
	// the newest does.
	status, hdr, body = apiCall(t, srv, http.MethodPost, "/api/v1/clients/robot/rotate-secret", rw, "application/json", `{"grace_seconds":3600}`)
	fresh, _ := body["secret"].(string)
	if status != http.StatusOK || len(fresh) < 16 || fresh == secret || body["previous_secret_until"] == nil || hdr.Get("ETag") == "" {
		t.Fatalf("rotate with a grace: %d %v", status, body)
	}
	for _, s := range []string{secret, fresh} {
		if status, body := ccToken("robot", s, ""); status != http.StatusOK {
			t.Errorf("the %s secret within the grace: %d %v", which(s, secret), status, body)
		}
	}
	for _, b := range []string{`{"grace_seconds":99999999}`, `{"grace_seconds":-1}`, `{}`} {
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients/robot/rotate-secret", rw, "application/json", b); status != http.StatusBadRequest || body["field"] != "grace_seconds" {
			t.Errorf("rotate with %s: %d %v", b, status, body)
		}
	}
	status, _, body = apiCall(t, srv, http.MethodPost, "/api/v1/clients/robot/rotate-secret", rw, "application/json", `{"grace_seconds":0}`)
	newest, _ := body["secret"].(string)
	if status != http.StatusOK || newest == "" || body["previous_secret_until"] != nil {
		t.Fatalf("rotate without a grace: %d %v", status, body)
	}
	for _, s := range []string{secret, fresh} {
		if status, body := ccToken("robot", s, ""); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("a replaced secret after a rotation without grace: %d %v", status, body)
		}
	}
	if status, body := ccToken("robot", newest, ""); status != http.StatusOK {
		t.Errorf("the newest secret: %d %v", status, body)
	}

	// Delete: its secret no longer gets tokens; a static app stays.
	if status, _, _ := apiCall(t, srv, http.MethodDelete, "/api/v1/clients/robot", rw, "", ""); status != http.StatusNoContent {
		t.Errorf("delete: %d", status)
	}
	if status, _ := ccToken("robot", newest, ""); status != http.StatusUnauthorized {
		t.Errorf("a deleted app got a token: %d", status)
	}
	if status, _, _ := apiCall(t, srv, http.MethodDelete, "/api/v1/clients/static-app", rw, "", ""); status != http.StatusConflict {
		t.Errorf("delete a static app: %d", status)
	}

	events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Limit: 200})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range events {
		if e.ClientID == "robot" && strings.HasPrefix(e.Type, "client.") {
			seen[e.Type]++
			if e.ActorKind != account.ActorUser || e.ActorID == "" {
				t.Errorf("%s by %s %q", e.Type, e.ActorKind, e.ActorID)
			}
		}
	}
	if seen[account.AuditClientCreated] != 1 || seen[account.AuditClientUpdated] != 1 || seen[account.AuditClientSecretRotated] != 2 || seen[account.AuditClientDeleted] != 1 {
		t.Errorf("robot's audit events: %v", seen)
	}

	// The management API's scopes, granted by an admin: keyport:admin
	// reads and writes, keyport:admin.read only reads, and an app without
	// either is refused.
	mkApp := func(id, scopes string) string {
		b := `{"id":"` + id + `","grant_types":["client_credentials"]`
		if scopes != "" {
			b += `,"allowed_scopes":[` + scopes + `]`
		}
		status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", b+"}")
		if status != http.StatusCreated {
			t.Fatalf("create %s: %d %v", id, status, body)
		}
		return body["secret"].(string)
	}
	token := func(id, secret, scope string) string {
		status, body := ccToken(id, secret, scope)
		tok, _ := body["access_token"].(string)
		if status != http.StatusOK || tok == "" {
			t.Fatalf("%s's token: %d %v", id, status, body)
		}
		return tok
	}
	adminSecret := mkApp("ops-bot", `"keyport:admin"`)
	status, body = ccToken("ops-bot", adminSecret, account.ScopeAdmin)
	if status != http.StatusOK || !strings.Contains(body["scope"].(string), account.ScopeAdmin) {
		t.Fatalf("ops-bot's token: %d %v", status, body)
	}
	opsTok := body["access_token"].(string)
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories", opsTok, "", ""); status != http.StatusOK {
		t.Errorf("GET /directories with keyport:admin: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients/ops-bot/rotate-secret", opsTok, "application/json", `{"grace_seconds":60}`); status != http.StatusOK {
		t.Errorf("a write with keyport:admin: %d %v", status, body)
	}
	readTok := token("audit-bot", mkApp("audit-bot", `"keyport:admin.read"`), account.ScopeAdminRead)
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients", readTok, "", ""); status != http.StatusOK {
		t.Errorf("GET with keyport:admin.read: %d", status)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/keys/rotate", readTok, "", ""); status != http.StatusForbidden || body["error"] != "insufficient_scope" {
		t.Errorf("POST with keyport:admin.read: %d %v", status, body)
	}
	plainTok := token("plain-bot", mkApp("plain-bot", ""), account.ScopeAdmin)
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories", plainTok, "", ""); status != http.StatusForbidden || body["error"] != "insufficient_scope" {
		t.Errorf("an app without the admin scope: %d %v", status, body)
	}
	// An admin who takes the scope back ends the app's access at once, not
	// when the token it already holds expires (the token can live 24 hours).
	status, h, body := apiCall(t, srv, http.MethodGet, "/api/v1/clients/ops-bot", rw, "", "")
	if status != http.StatusOK {
		t.Fatalf("GET ops-bot: %d %v", status, body)
	}
	if status, _, body := apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/ops-bot", rw, "application/json", `{"allowed_scopes":[]}`, http.Header{"If-Match": {h.Get("ETag")}}); status != http.StatusOK {
		t.Fatalf("take keyport:admin from ops-bot: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/directories", opsTok, "", ""); status != http.StatusForbidden || body["error"] != "insufficient_scope" {
		t.Errorf("ops-bot's token after its admin scope was taken back: %d %v", status, body)
	}
	// An app deleted and registered again under the same ID is a new app:
	// the tokens the old one was given do not come back to life with it.
	doomed := mkApp("doomed-bot", `"keyport:admin"`)
	doomedTok := token("doomed-bot", doomed, account.ScopeAdmin)
	if status, _, body := apiCall(t, srv, http.MethodDelete, "/api/v1/clients/doomed-bot", rw, "", ""); status != http.StatusNoContent {
		t.Fatalf("delete doomed-bot: %d %v", status, body)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/directories", doomedTok, "", ""); status != http.StatusUnauthorized {
		t.Errorf("a deleted app's token: %d", status)
	}
	mkApp("doomed-bot", `"keyport:admin"`)
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/directories", doomedTok, "", ""); status != http.StatusUnauthorized {
		t.Errorf("the token of a deleted app, once an app of the same ID is registered again: %d", status)
	}
	// The rotation ops-bot made is in the log as the app's.
	events, _, _ = srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Limit: 200})
	found := false
	for _, e := range events {
		found = found || e.Type == account.AuditClientSecretRotated && e.ClientID == "ops-bot" && e.ActorKind == account.ActorClient && e.ActorID == "ops-bot"
	}
	if !found {
		t.Error("no client.secret_rotated event by ops-bot")
	}
}
