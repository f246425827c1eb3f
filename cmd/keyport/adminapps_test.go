package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
)

// The console's app pages through a signed-in admin's browser: the list
// with the static app marked, create through the form (bad input named
// first, then the secret shown once), edit with the form's ETag (a stale
// form refused with its message), rotate the secret with a grace (the new
// one shown once, both working), a static app read-only, delete after
// confirming.
func TestAdminConsoleAppPages(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "static-app", Name: "From the file", GrantTypes: []string{"authorization_code"},
			RedirectURIs: []string{"https://static.example.com/cb"}, Secret: "static-secret-0123456789"})
	})
	srv.createUser("root", true)
	ctx := context.Background()
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	ccToken := func(secret string) int {
		status, _, _ := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "crm", secret)
		return status
	}

	// Bad input names the field and stores nothing.
	form := url.Values{"id": {"crm"}, "name": {"CRM"}, "type": {"confidential"}, "redirect_uris": {"https://crm.example.com/cb\nhttp://crm.example.com/cb"},
		"grant_types": {"authorization_code", "refresh_token", "client_credentials"}, "skip_consent": {"1"}, "access_token_lifetime": {"10m"}}
	bad := submitForm(t, b, b.get(srv.URL+"/admin/apps/new"), "/admin/apps/new", form)
	if invalid, ok := parsePage(t, bad.Body).first("textarea", "aria-invalid", "true"); bad.Status != http.StatusBadRequest || !ok || invalid.attr("name") != "redirect_uris" {
		t.Errorf("an http:// redirect URI: %d\n%s", bad.Status, truncateBody(bad.Body))
	}
	if _, err := srv.Main.Store.GetClient(ctx, "crm"); err == nil {
		t.Fatal("a refused form stored the app")
	}
	// The same refusal to a German browser is German, with the URI in it:
	// the message has an arg, so it is translated by its format.
	inGerman := func(method, target string, form url.Values) page {
		req, _ := http.NewRequest(method, target, strings.NewReader(form.Encode()))
		if form != nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.Header.Set("Accept-Language", "de-DE,de;q=0.9")
		return b.do(req)
	}
	newApp, _ := parsePage(t, bad.Body).formByAction("/admin/apps/new")
	deForm := newApp.formValues()
	for k, vs := range form {
		deForm[k] = vs
	}
	de := inGerman(http.MethodPost, srv.URL+"/admin/apps/new", deForm)
	wantDE := `Die Weiterleitungs-URI "http://crm.example.com/cb" muss https:// verwenden (http:// nur auf 127.0.0.1, [::1] oder localhost).`
	if msg, _ := parsePage(t, de.Body).byID("form-error"); de.Status != http.StatusBadRequest || msg.text() != wantDE {
		t.Errorf("an http:// redirect URI in German: %d %q, want %q", de.Status, msg.text(), wantDE)
	}
	if p := inGerman(http.MethodGet, srv.URL+"/admin/apps/nope", nil); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "Es gibt keinen Client &#34;nope&#34;.") {
		t.Errorf("an unknown app in German: %d\n%s", p.Status, truncateBody(p.Body))
	}
	form.Set("redirect_uris", "https://crm.example.com/cb\n\nhttp://127.0.0.1:8080/cb\n")
	created := submitForm(t, b, bad, "/admin/apps/new", form)
	secretNode, ok := parsePage(t, created.Body).byID("new-secret")
	secret := secretNode.text()
	if created.Status != http.StatusCreated || !ok || len(secret) < 16 || created.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("create: %d %q\n%s", created.Status, created.Header.Get("Cache-Control"), truncateBody(created.Body))
	}
	// An ID taken is German too (it was English), at the ID field.
	deForm.Set("redirect_uris", "https://crm.example.com/cb")
	taken := inGerman(http.MethodPost, srv.URL+"/admin/apps/new", deForm)
	if msg, _ := parsePage(t, taken.Body).byID("form-error"); taken.Status != http.StatusConflict || msg.text() != `Es gibt schon einen Client mit der ID "crm".` ||
		!strings.Contains(taken.Body, `name="id" type="text" value="crm" required aria-invalid="true"`) {
		t.Errorf("an ID taken, in German: %d %q", taken.Status, msg.text())
	}
	c, err := srv.Main.Store.GetClient(ctx, "crm")
	if err != nil || len(c.RedirectURIs) != 2 || !c.SkipConsent || c.AccessTokenLifetime != 10*time.Minute || c.SecretHash != account.HashSecret(secret) {
		t.Fatalf("stored: %+v %v", c, err)
	}
	page := srv.URL + "/admin/apps/crm"
	if again := b.get(page); strings.Contains(again.Body, secret) || again.Status != http.StatusOK {
		t.Errorf("the secret is shown again (%d)", again.Status)
	}
	list := b.get(srv.URL + "/admin/apps")
	rows, _ := parsePage(t, list.Body).byID("apps")
	if list.Status != http.StatusOK || !strings.Contains(rows.text(), "CRM crm confidential authorization_code, client_credentials, refresh_token") || !strings.Contains(rows.text(), "config.toml (read-only)") {
		t.Errorf("list: %d %q", list.Status, rows.text())
	}

	// Two admins load the page; the first saves, the second's form is stale.
	first, second := b.get(page), b.get(page)
	saved := submitForm(t, b, first, "/admin/apps/crm/edit", url.Values{"name": {"CRM 2"}, "allowed_groups": {"sales, ops"}, "skip_consent": nil, "refresh_token_lifetime": {"30d"}})
	if saved.Status != http.StatusOK || notice(t, saved) != "The changes were saved." {
		e, _ := parsePage(t, saved.Body).byID("form-error")
		t.Fatalf("save: %d %s", saved.Status, e.text())
	}
	stale := submitForm(t, b, second, "/admin/apps/crm/edit", url.Values{"name": {"Lost"}})
	if stale.Status != http.StatusPreconditionFailed || !strings.Contains(stale.Body, "Someone else changed this app") {
		t.Errorf("stale form: %d", stale.Status)
	}
	if c, _ := srv.Main.Store.GetClient(ctx, "crm"); c.Name != "CRM 2" || strings.Join(c.AllowedGroups, ",") != "sales,ops" || c.SkipConsent || c.RefreshTokenLifetime != 30*24*time.Hour || len(c.RedirectURIs) != 2 {
		t.Errorf("stored after the edits: %+v", c)
	}
	if p := submitForm(t, b, b.get(page), "/admin/apps/crm/edit", url.Values{"id_token_lifetime": {"soon"}}); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `name="id_token_lifetime" type="text" value="soon" aria-invalid="true"`) {
		t.Errorf("a bad lifetime: %d", p.Status)
	}

	// Rotate with a day's grace: the new secret is shown once, both work.
	rotated := submitForm(t, b, b.get(page), "/admin/apps/crm/rotate-secret", url.Values{"grace": {"1"}, "grace_unit": {"days"}})
	freshNode, ok := parsePage(t, rotated.Body).byID("new-secret")
	fresh := freshNode.text()
	if rotated.Status != http.StatusOK || !ok || fresh == secret || rotated.Header.Get("Cache-Control") != "no-store" || !strings.Contains(rotated.Body, "The previous secret keeps working until") {
		t.Fatalf("rotate: %d\n%s", rotated.Status, truncateBody(rotated.Body))
	}
	if ccToken(secret) != http.StatusOK || ccToken(fresh) != http.StatusOK {
		t.Errorf("within the grace: old %d, new %d", ccToken(secret), ccToken(fresh))
	}
	// Without a grace the old secret would stop at once: it asks first,
	// and only the confirmed form replaces it.
	ask := submitForm(t, b, b.get(page), "/admin/apps/crm/rotate-secret", url.Values{"grace": {"0"}})
	if _, ok := parsePage(t, ask.Body).byID("new-secret"); ok || ccToken(fresh) != http.StatusOK || !strings.Contains(ask.Body, "Replace the secret now?") {
		t.Fatalf("grace 0 did not ask first: %d\n%s", ask.Status, truncateBody(ask.Body))
	}
	now := submitForm(t, b, ask, "/admin/apps/crm/rotate-secret", nil)
	newest, ok := parsePage(t, now.Body).byID("new-secret")
	if !ok || ccToken(newest.text()) != http.StatusOK || ccToken(fresh) == http.StatusOK {
		t.Errorf("confirmed rotation without grace: new %v, the one before still works %v", ok, ccToken(fresh) == http.StatusOK)
	}
	if p := submitForm(t, b, b.get(page), "/admin/apps/crm/rotate-secret", url.Values{"grace": {"31"}, "grace_unit": {"days"}}); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `name="grace" type="number" min="0" max="720" value="0" inputmode="numeric" aria-invalid="true"`) {
		t.Errorf("a grace beyond 30 days: %d", p.Status)
	}

	// A static app is read-only, with the reason, and refuses a crafted post.
	static := b.get(srv.URL + "/admin/apps/static-app")
	if reason, _ := parsePage(t, static.Body).byID("static-reason"); !strings.Contains(reason.text(), "configuration file") || strings.Contains(static.Body, "/admin/apps/static-app/delete") {
		t.Errorf("static app page: %q", reason.text())
	}
	if p := b.submit(static, "/admin/apps/static-app/edit", url.Values{"name": {"Mine"}, "grant_types": {"authorization_code"}, "redirect_uris": {"https://x.example.com/cb"}}); p.Status != http.StatusConflict {
		t.Errorf("edit a static app: %d", p.Status)
	}

	// Delete asks first.
	exists := func() bool { _, err := srv.Main.Store.GetClient(ctx, "crm"); return err == nil }
	confirm := askFirst(t, b, b.get(page), "/admin/apps/crm/delete", "/admin/apps/crm/delete", url.Values{}, exists)
	done := submitForm(t, b, confirm, "/admin/apps/crm/delete", nil)
	if exists() || !strings.HasPrefix(notice(t, done), "The app was deleted.") {
		t.Errorf("after the confirmed delete: exists %v, %q", exists(), notice(t, done))
	}
	if ccToken(fresh) != http.StatusUnauthorized {
		t.Error("a deleted app's secret still gets tokens")
	}
}
