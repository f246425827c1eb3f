package account_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/directory/ldap"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
)

func settingsOf(t *testing.T, js string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(js), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// The management API's directory edits follow the admin page's rules:
// refused settings name their field and store nothing, the secret is
// sealed and kept when left out, a stale ETag changes nothing, a directory
// from config.toml keeps its settings, and every change is audited
// without the secret.
func TestCreateAndPatchDirectory(t *testing.T) {
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) }
	svc, db := account.NewTestService(t, account.TestServiceOptions{Now: now, Policy: account.Policy{
		Issuer: "https://id.example.org", MaxLoginAttempts: 3, LoginWindow: time.Minute, SessionLifetime: time.Hour}})
	static, err := ldap.Config{ID: "hq", URL: "ldap://127.0.0.1:1", UserBaseDN: "dc=example,dc=org"}.Open()
	if err != nil {
		t.Fatal(err)
	}
	svc.Directories.UseDirectories(static)
	dirs := svc.Directories
	events := func(types ...string) []storage.AuditEvent {
		t.Helper()
		evs, _, err := db.ListAudit(ctx, storage.AuditQuery{Types: types})
		if err != nil {
			t.Fatal(err)
		}
		return evs
	}
	good := `{"name":"Branch","url":"ldap://127.0.0.1:1","bind_dn":"cn=svc","bind_password":"bind-secret","user_base_dn":"ou=people,dc=example,dc=org"}`
	for _, c := range []struct{ typ, id, settings, field string }{
		{"ldap", "branch", `{"url":"http://not-ldap","user_base_dn":"dc=x"}`, "settings.url"},
		{"ldap", "branch", `{"user_base_dn":"dc=x"}`, "settings.url"},
		{"ldap", "branch", `{"url":"ldap://x","user_base_dn":"dc=x","user_filter":"(uid=alice"}`, "settings.user_filter"},
		{"ldap", "branch", `{"url":"ldap://x"}`, "settings.user_base_dn"},
		{"ldap", "branch", `{"url":"ldap://x","user_base_dn":"dc=x","page_size":5}`, "settings.page_size"},
		{"oidc", "partner", `{"issuer":"ftp://sso","client_id":"k"}`, "settings.issuer"},
		{"ad", "branch", good, "provider"},
		{"ldap", "bad id!", good, "id"},
		{"ldap", "hq", good, "id"},
	} {
		err := dirs.CreateDirectory(ctx, c.typ, c.id, settingsOf(t, c.settings))
		if account.ErrorField(err) != c.field {
			t.Errorf("create %s %s %s: %v (field %q), want the field %q", c.typ, c.id, c.settings, err, account.ErrorField(err), c.field)
		}
	}
	if ds, _ := db.ListDirectories(ctx); len(ds) != 0 || len(events(account.EventDirectoryCreated)) != 0 {
		t.Fatalf("refused directories were stored or audited: %+v", ds)
	}

	if err := dirs.CreateDirectory(ctx, "ldap", "branch", settingsOf(t, good)); err != nil {
		t.Fatal(err)
	}
	if err := dirs.CreateDirectory(ctx, "ldap", "branch", settingsOf(t, good)); account.ErrorCode(err) != account.Conflict {
		t.Errorf("the same ID twice: %v", err)
	}
	d, err := dirs.DirectoryDetail(ctx, "branch")
	if err != nil || !d.Stored || !d.HasSecret || d.Name != "Branch" || d.Settings["url"] != "ldap://127.0.0.1:1" || d.ETag == "" {
		t.Fatalf("detail: %+v, %v", d, err)
	}
	// The new form's defaults apply to what the request leaves out.
	if d.Settings["user_filter"] != "(objectClass=inetOrgPerson)" || d.Settings["member_attribute"] != "member" {
		t.Errorf("defaults: %v", d.Settings)
	}
	if _, ok := d.Settings["bind_password"]; ok {
		t.Errorf("the detail shows the bind password: %v", d.Settings)
	}
	sealer, _ := seal.New(account.TestSealKey)
	rec, _ := db.GetDirectory(ctx, "branch")
	if secret, err := sealer.Open(rec.SealedSecret, account.BindSealPurpose("branch")); err != nil || string(secret) != "bind-secret" || strings.Contains(string(rec.Settings), "bind-secret") {
		t.Fatalf("sealed secret %q, %v; settings %s", secret, err, rec.Settings)
	}

	// A stale ETag changes nothing.
	err = dirs.PatchDirectory(ctx, "branch", `"stale"`, account.DirectoryPatch{Settings: settingsOf(t, `{"user_base_dn":"ou=other"}`)})
	if account.ErrorCode(err) != account.PreconditionFailed {
		t.Fatalf("stale If-Match: %v", err)
	}
	// Bad settings change nothing, the switch included.
	off := true
	err = dirs.PatchDirectory(ctx, "branch", d.ETag, account.DirectoryPatch{Disabled: &off, Settings: settingsOf(t, `{"user_filter":"(uid="}`)})
	if account.ErrorField(err) != "settings.user_filter" {
		t.Fatalf("bad filter: %v", err)
	}
	if again, _ := dirs.DirectoryDetail(ctx, "branch"); again.ETag != d.ETag || again.Disabled {
		t.Fatalf("a refused patch changed the directory: %+v", again)
	}
	// A good one, without the secret: kept.
	err = dirs.PatchDirectory(ctx, "branch", d.ETag, account.DirectoryPatch{Disabled: &off, Settings: settingsOf(t, `{"user_base_dn":"ou=other,dc=example,dc=org","bind_dn":null}`)})
	if err != nil {
		t.Fatal(err)
	}
	after, _ := dirs.DirectoryDetail(ctx, "branch")
	if after.ETag == d.ETag || !after.Disabled || after.Settings["user_base_dn"] != "ou=other,dc=example,dc=org" || after.Settings["bind_dn"] != "" || !after.HasSecret {
		t.Fatalf("after the patch: %+v", after)
	}
	rec, _ = db.GetDirectory(ctx, "branch")
	if secret, err := sealer.Open(rec.SealedSecret, account.BindSealPurpose("branch")); err != nil || string(secret) != "bind-secret" {
		t.Fatalf("the secret left out was not kept: %q %v", secret, err)
	}
	// The old ETag is stale now.
	if err := dirs.PatchDirectory(ctx, "branch", d.ETag, account.DirectoryPatch{Disabled: new(bool)}); account.ErrorCode(err) != account.PreconditionFailed {
		t.Errorf("the ETag before the patch: %v", err)
	}
	// Nothing changed: nothing audited.
	if err := dirs.PatchDirectory(ctx, "branch", after.ETag, account.DirectoryPatch{Settings: settingsOf(t, `{"name":"Branch"}`)}); err != nil {
		t.Fatal(err)
	}
	upd := events(account.EventDirectoryUpdated)
	if len(upd) != 1 || len(events(account.EventDirectoryDisabled)) != 1 {
		t.Fatalf("updated events %+v", upd)
	}
	raw, _ := json.Marshal(append(upd, events(account.EventDirectoryCreated)...))
	if strings.Contains(string(raw), "bind-secret") || !strings.Contains(string(raw), "ou=other,dc=example,dc=org") {
		t.Errorf("audit events (changes, never the secret): %s", raw)
	}

	// A directory from config.toml: its settings stay, its switch works.
	if err := dirs.PatchDirectory(ctx, "hq", "", account.DirectoryPatch{Settings: settingsOf(t, `{"name":"x"}`)}); account.ErrorCode(err) != account.Conflict {
		t.Errorf("edit a directory from config.toml: %v", err)
	}
	hq, err := dirs.DirectoryDetail(ctx, "hq")
	if err != nil || hq.Stored || hq.Settings != nil || hq.ETag == "" {
		t.Fatalf("hq: %+v %v", hq, err)
	}
	if err := dirs.PatchDirectory(ctx, "hq", hq.ETag, account.DirectoryPatch{Disabled: &off}); err != nil || !dirs.DirectoryDisabled("hq") {
		t.Errorf("turn hq off: %v", err)
	}
	if err := dirs.PatchDirectory(ctx, "nope", "", account.DirectoryPatch{Disabled: &off}); account.ErrorCode(err) != account.NotFound {
		t.Errorf("an unknown directory: %v", err)
	}
}

// The stored secret is write-only, so it must not be sent somewhere new
// without being entered again: an edit that points an LDAP directory at
// another server (or lets its TLS be intercepted), or an upstream provider
// at another issuer, and leaves the secret out would hand the kept bind
// password or client secret to whoever runs the new endpoint, at the next
// test, sync or sign-in. Such an edit is refused naming the secret and
// changes nothing; with the secret given again it goes through.
func TestDirectoryEndpointChangeNeedsTheSecret(t *testing.T) {
	ctx := context.Background()
	svc, db := account.NewTestService(t, account.TestServiceOptions{Policy: account.Policy{
		Issuer: "https://id.example.org", MaxLoginAttempts: 3, LoginWindow: time.Minute, SessionLifetime: time.Hour}})
	dirs := svc.Directories
	if err := dirs.CreateDirectory(ctx, "ldap", "branch", settingsOf(t, `{"url":"ldap://127.0.0.1:1","bind_dn":"cn=svc","bind_password":"bind-secret","user_base_dn":"dc=example,dc=org"}`)); err != nil {
		t.Fatal(err)
	}
	if err := dirs.CreateDirectory(ctx, "oidc", "partner", settingsOf(t, `{"issuer":"https://sso.example.com","client_id":"keyport","client_secret":"client-secret"}`)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ id, patch, field string }{
		{"branch", `{"url":"http://not-ldap"}`, "settings.url"}, // a bad setting is named first
		{"branch", `{"url":"ldap://attacker.example"}`, "settings.bind_password"},
		{"branch", `{"insecure_skip_verify":true}`, "settings.bind_password"},
		{"branch", `{"start_tls":true}`, "settings.bind_password"},
		{"branch", `{"user_filter":"(uid=*)","bind_dn":"cn=other"}`, ""},
		{"partner", `{"issuer":"https://attacker.example"}`, "settings.client_secret"},
		{"partner", `{"button_label":"Partner"}`, ""},
	} {
		before, _ := db.GetDirectory(ctx, c.id)
		err := dirs.PatchDirectory(ctx, c.id, "", account.DirectoryPatch{Settings: settingsOf(t, c.patch)})
		if account.ErrorField(err) != c.field || (c.field == "" && err != nil) {
			t.Errorf("patch %s with %s: %v (field %q), want field %q", c.id, c.patch, err, account.ErrorField(err), c.field)
		}
		if after, _ := db.GetDirectory(ctx, c.id); c.field != "" && string(after.Settings) != string(before.Settings) {
			t.Errorf("the refused patch %s changed %s: %s", c.patch, c.id, after.Settings)
		}
	}
	// Entered again, the secret may go to the new endpoint.
	if err := dirs.PatchDirectory(ctx, "branch", "", account.DirectoryPatch{Settings: settingsOf(t, `{"url":"ldap://127.0.0.2:1","bind_password":"bind-secret"}`)}); err != nil {
		t.Errorf("a new URL with the password: %v", err)
	}
	if d, _ := dirs.DirectoryDetail(ctx, "branch"); d.Settings["url"] != "ldap://127.0.0.2:1" {
		t.Errorf("after the edit with the password: %v", d.Settings)
	}
}
