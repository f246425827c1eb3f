package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/slapdtest"
	"github.com/keyport/keyport/storage"
)

// Directories through the management API, against a real slapd: create
// (bad input named and not stored), test, sync, sign in; edit under
// If-Match (stale: 412, nothing changed); an upstream provider; secrets
// never answered and kept when left out; read-only tokens refused; a
// directory from config.toml read-only; every change audited. Every
// answer is checked against the OpenAPI document (apiCall).
func TestAdminAPIDirectories(t *testing.T) {
	ldapSrv := slapdtest.Start(t, directoryFixtures)
	srv := startServer(t, "", func(c *config.Config) {
		hq := corpDirectory(ldapSrv.URL)
		hq.ID, hq.Name, hq.UserFilter = "hq", "Head office", "(uid=nobody-here)"
		c.Directories = []config.Directory{hq}
	})
	rw, ro, _ := adminTokens(t, srv) // local users root and alice
	ctx := context.Background()
	const bindSecret, clientSecret = "service-secret", "upstream-client-secret"
	var answers []string
	call := func(method, path, token, body string, ifMatch ...string) (int, http.Header, map[string]any) {
		t.Helper()
		h := http.Header{}
		if len(ifMatch) > 0 {
			h.Set("If-Match", ifMatch[0])
		}
		ct := ""
		if body != "" {
			ct = "application/json"
		}
		status, hdr, out := apiCallWith(t, srv, method, path, token, ct, body, h)
		raw, _ := json.Marshal(out)
		answers = append(answers, string(raw))
		return status, hdr, out
	}
	settingsOf := func(body map[string]any) map[string]any {
		s, _ := body["settings"].(map[string]any)
		return s
	}
	stored := func() []storage.Directory {
		ds, err := srv.Main.Store.ListDirectories(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ds
	}

	// Bad input: 400 naming the field, nothing stored.
	base := `"url":"` + ldapSrv.URL + `","bind_dn":"cn=keyport,ou=people,dc=example,dc=org","bind_password":"` + bindSecret + `","user_base_dn":"ou=people,dc=example,dc=org"`
	for _, c := range []struct{ body, field string }{
		{`{"id":"branch","provider":"ldap","settings":{"user_base_dn":"ou=people,dc=example,dc=org"}}`, "settings.url"},
		{`{"id":"branch","provider":"ldap","settings":{` + strings.Replace(base, `"url":"ldap://`, `"url":"http://`, 1) + `}}`, "settings.url"},
		{`{"id":"branch","provider":"ldap","settings":{` + base + `,"user_filter":"(uid=dave"}}`, "settings.user_filter"},
		{`{"id":"branch","provider":"ldap","settings":{` + base + `,"start_tls":"yes"}}`, "settings.start_tls"},
		{`{"id":"branch","provider":"ldap","settings":{` + base + `,"page_size":10}}`, "settings.page_size"},
		{`{"id":"branch","provider":"activedirectory","settings":{` + base + `}}`, "provider"},
		{`{"id":"no spaces","provider":"ldap","settings":{` + base + `}}`, "id"},
		{`{"id":"branch","provider":"ldap","settings":{` + base + `},"disabled":true}`, "disabled"},
	} {
		if status, _, body := call(http.MethodPost, "/api/v1/directories", rw, c.body); status != http.StatusBadRequest || body["field"] != c.field {
			t.Errorf("create %s: %d %v, want 400 naming %q", c.body, status, body, c.field)
		}
	}
	if status, _, body := call(http.MethodPost, "/api/v1/directories", rw, `{"id":"hq","provider":"ldap","settings":{`+base+`}}`); status != http.StatusConflict || body["field"] != "id" {
		t.Errorf("create over the configured hq: %d %v", status, body)
	}
	// A read-only token may not write.
	if status, _, body := call(http.MethodPost, "/api/v1/directories", ro, `{"id":"branch","provider":"ldap","settings":{`+base+`}}`); status != http.StatusForbidden || body["error"] != "insufficient_scope" {
		t.Errorf("create with a read-only token: %d %v", status, body)
	}
	if ds := stored(); len(ds) != 0 {
		t.Fatalf("refused directories were stored: %+v", ds)
	}

	// Create: 201, the directory with its ETag, never the password.
	status, hdr, body := call(http.MethodPost, "/api/v1/directories", rw, `{"id":"branch","provider":"ldap","settings":{`+base+`,"name":"Branch office","user_filter":"(uid=dave)"}}`)
	if status != http.StatusCreated || hdr.Get("ETag") == "" || hdr.Get("Location") != "/api/v1/directories/branch" ||
		body["name"] != "Branch office" || body["stored"] != true || body["has_secret"] != true || settingsOf(body)["user_filter"] != "(uid=dave)" {
		t.Fatalf("create: %d %v %v", status, hdr, body)
	}
	if _, ok := settingsOf(body)["bind_password"]; ok {
		t.Errorf("the answer names the bind password: %v", body)
	}
	// It works at once, with the sealed password: test, sync, sign in.
	if status, _, body := call(http.MethodPost, "/api/v1/directories/branch/test", rw, ""); status != http.StatusOK || body["users"] != 1.0 {
		t.Fatalf("test: %d %v", status, body)
	}
	if status, _, body := call(http.MethodPost, "/api/v1/directories/branch/sync", rw, ""); status != http.StatusOK || body["created"] != 1.0 {
		t.Fatalf("sync: %d %v", status, body)
	}
	if u, err := srv.Main.Store.GetUserByLogin(ctx, "dave"); err != nil || u.Source != "branch" {
		t.Fatalf("dave after the sync: %+v %v", u.Source, err)
	}
	signInPortal(t, srv, newBrowser(t), "dave")

	// Edit under If-Match. A stale ETag: 412, nothing changed.
	etag := hdr.Get("ETag")
	filter := `{"settings":{"user_filter":"(&(objectClass=inetOrgPerson)(mail=*))"}}`
	if status, _, body := call(http.MethodPatch, "/api/v1/directories/branch", rw, filter, `"stale"`); status != http.StatusPreconditionFailed || body["error"] != "precondition_failed" {
		t.Errorf("stale If-Match: %d %v", status, body)
	}
	if _, h, body := call(http.MethodGet, "/api/v1/directories/branch", ro, ""); h.Get("ETag") != etag || settingsOf(body)["user_filter"] != "(uid=dave)" {
		t.Errorf("after the stale edit: %v %v", h, body)
	}
	// Bad settings: named, nothing changed.
	for patch, field := range map[string]string{
		`{"settings":{"user_filter":"(uid="}}`:    "settings.user_filter",
		`{"settings":{"url":"http://ldap.test"}}`: "settings.url",
		`{"settings":{"url":null}}`:               "settings.url",
		`{"settings":{"bind_password":null}}`:     "settings.bind_password",
		`{"settings":{"issuer":"https://x"}}`:     "settings.issuer",
		`{"id":"other"}`:                          "id",
	} {
		if status, _, body := call(http.MethodPatch, "/api/v1/directories/branch", rw, patch, etag); status != http.StatusBadRequest || body["field"] != field {
			t.Errorf("edit %s: %d %v, want 400 naming %q", patch, status, body, field)
		}
	}
	if _, h, _ := call(http.MethodGet, "/api/v1/directories/branch", ro, ""); h.Get("ETag") != etag {
		t.Errorf("a refused edit changed the directory")
	}
	if status, _, body := call(http.MethodPatch, "/api/v1/directories/branch", ro, filter, etag); status != http.StatusForbidden || body["error"] != "insufficient_scope" {
		t.Errorf("edit with a read-only token: %d %v", status, body)
	}
	// The edit, leaving the password out: it is kept.
	status, hdr, body = call(http.MethodPatch, "/api/v1/directories/branch", rw, filter, etag)
	if status != http.StatusOK || hdr.Get("ETag") == "" || hdr.Get("ETag") == etag || settingsOf(body)["user_filter"] != "(&(objectClass=inetOrgPerson)(mail=*))" || body["has_secret"] != true {
		t.Fatalf("edit: %d %v %v", status, hdr, body)
	}
	if status, _, body := call(http.MethodPost, "/api/v1/directories/branch/test", rw, ""); status != http.StatusOK || body["users"] != 3.0 {
		t.Errorf("test after the edit (the stored password kept, the new filter in force): %d %v", status, body)
	}
	if status, _, body := call(http.MethodPatch, "/api/v1/directories/branch", rw, filter, etag); status != http.StatusPreconditionFailed {
		t.Errorf("the ETag before the edit: %d %v", status, body)
	}
	// disabled still works, alone, under the new ETag.
	if status, _, body := call(http.MethodPatch, "/api/v1/directories/branch", rw, `{"disabled":true}`, hdr.Get("ETag")); status != http.StatusOK || body["disabled"] != true {
		t.Errorf("turn off: %d %v", status, body)
	}

	// An upstream OpenID Connect provider; its secret is write-only too.
	status, _, body = call(http.MethodPost, "/api/v1/directories", rw, `{"id":"partner","provider":"oidc","settings":{"issuer":"https://sso.example.com","client_id":"keyport","client_secret":"`+clientSecret+`","scopes":["openid","email"]}}`)
	if status != http.StatusCreated || body["provider"] != "oidc" || body["has_secret"] != true || settingsOf(body)["button_label"] != "" {
		t.Fatalf("create an upstream: %d %v", status, body)
	}
	before, _ := srv.Main.Store.GetDirectory(ctx, "partner")
	if status, _, body := call(http.MethodPatch, "/api/v1/directories/partner", rw, `{"settings":{"button_label":"Partner SSO"}}`); status != http.StatusOK || settingsOf(body)["button_label"] != "Partner SSO" {
		t.Errorf("edit the upstream: %d %v", status, body)
	}
	if after, _ := srv.Main.Store.GetDirectory(ctx, "partner"); string(after.SealedSecret) != string(before.SealedSecret) || len(after.SealedSecret) == 0 {
		t.Error("the client secret left out was not kept")
	}

	// The directory from config.toml: read-only but for its switch.
	if status, _, body := call(http.MethodPatch, "/api/v1/directories/hq", rw, `{"settings":{"name":"x"}}`); status != http.StatusConflict || !strings.Contains(body["message"].(string), "configuration file") {
		t.Errorf("edit hq: %d %v", status, body)
	}
	if status, _, body := call(http.MethodDelete, "/api/v1/directories/hq", rw, ""); status != http.StatusConflict {
		t.Errorf("delete hq: %d %v", status, body)
	}
	if status, _, body := call(http.MethodPatch, "/api/v1/directories/hq", rw, `{"disabled":true}`); status != http.StatusOK || body["disabled"] != true || body["stored"] != false || body["settings"] != nil {
		t.Errorf("turn hq off: %d %v", status, body)
	}
	if status, _, _ := call(http.MethodDelete, "/api/v1/directories/partner", ro, ""); status != http.StatusForbidden {
		t.Errorf("delete with a read-only token: %d", status)
	}

	// No answer held a secret; the audit log has every change, by the
	// admin's token, without them.
	for _, a := range answers {
		if strings.Contains(a, bindSecret) || strings.Contains(a, clientSecret) {
			t.Errorf("an answer holds a secret: %s", a)
		}
	}
	events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{account.EventDirectoryCreated, account.EventDirectoryUpdated, account.EventDirectoryDisabled}, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range events {
		count[e.Type+" "+e.TargetID]++
		if e.ActorKind != account.ActorUser || e.ActorID == "" {
			t.Errorf("%s by %s %q", e.Type, e.ActorKind, e.ActorID)
		}
	}
	want := map[string]int{"directory.created branch": 1, "directory.created partner": 1, "directory.updated branch": 1, "directory.updated partner": 1, "directory.disabled branch": 1, "directory.disabled hq": 1}
	if len(count) != len(want) {
		t.Errorf("audit events %v, want %v", count, want)
	}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("audit events %v, want %v", count, want)
			break
		}
	}
	raw, _ := json.Marshal(events)
	if strings.Contains(string(raw), bindSecret) || strings.Contains(string(raw), clientSecret) || !strings.Contains(string(raw), "(mail=*)") {
		t.Errorf("audit events (the changes, never a secret): %s", raw)
	}
}
