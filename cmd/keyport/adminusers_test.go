package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The console's user pages through a signed-in admin's browser: create by
// invitation (the link shown once), edit with the form's ETag (a stale form
// is refused and says so), bad input named, block and unblock, delete after
// confirming.
func TestAdminConsoleUserPages(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("root", true)
	ctx := context.Background()
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")

	created := submitForm(t, b, b.get(srv.URL+"/admin/users/new"), "/admin/users/new", url.Values{"username": {"gina"}, "email": {"gina@example.com"}, "name": {"Gina"}, "how": {"invite"}})
	link, ok := parsePage(t, created.Body).byID("one-time-link")
	if created.Status != http.StatusCreated || !ok || !strings.Contains(link.text(), "/invite?token=") {
		t.Fatalf("create by invitation: %d\n%s", created.Status, truncateBody(created.Body))
	}
	gina, err := srv.Main.Store.GetUserByLogin(ctx, "gina")
	if err != nil {
		t.Fatal(err)
	}
	page := srv.URL + "/admin/users/" + gina.ID
	if again := b.get(page); strings.Contains(again.Body, link.text()) {
		t.Error("the invitation link is shown again")
	}

	// A bad value is named and changes nothing.
	bad := submitForm(t, b, b.get(page), "/admin/users/"+gina.ID+"/edit", url.Values{"email": {"not-an-email"}})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, `aria-invalid="true"`) {
		t.Errorf("bad email: %d", bad.Status)
	}
	// Two admins load the page; the first saves, the second's form is stale.
	first, second := b.get(page), b.get(page)
	if p := submitForm(t, b, first, "/admin/users/"+gina.ID+"/edit", url.Values{"name": {"Gina G."}, "roles": {"ops, dev"}}); p.Status != http.StatusOK || notice(t, p) != "The changes were saved." {
		t.Fatalf("save: %d %s", p.Status, truncateBody(p.Body))
	}
	stale := submitForm(t, b, second, "/admin/users/"+gina.ID+"/edit", url.Values{"name": {"Lost"}})
	if stale.Status != http.StatusPreconditionFailed || !strings.Contains(stale.Body, "Someone else changed this user") {
		t.Errorf("stale form: %d", stale.Status)
	}
	if u, _ := srv.Main.Store.GetUser(ctx, gina.ID); u.Name != "Gina G." || strings.Join(u.Roles, ",") != "ops,dev" {
		t.Errorf("stored: name %q roles %v", u.Name, u.Roles)
	}

	// Block, unblock.
	p := submitForm(t, b, b.get(page), "/admin/users/"+gina.ID+"/block", nil)
	if u, _ := srv.Main.Store.GetUser(ctx, gina.ID); !u.Blocked || !strings.HasPrefix(notice(t, p), "The user is blocked") {
		t.Errorf("block: %d %q", p.Status, notice(t, p))
	}
	submitForm(t, b, b.get(page), "/admin/users/"+gina.ID+"/unblock", nil)
	if u, _ := srv.Main.Store.GetUser(ctx, gina.ID); u.Blocked {
		t.Error("unblock did not")
	}

	// Resetting the second factors asks first, and a form without the
	// version it showed (a crafted post) is refused like a stale one.
	hank := srv.createUser("hank", false)
	withTOTP(t, srv, "hank")
	hasTOTP := func() bool { u, _ := srv.Main.Store.GetUser(ctx, hank.ID); return len(u.TOTPSecret) > 0 }
	hankPage := srv.URL + "/admin/users/" + hank.ID
	reset := askFirst(t, b, b.get(hankPage), "/admin/users/"+hank.ID+"/reset-2fa", "/admin/users/"+hank.ID+"/reset-2fa", url.Values{}, hasTOTP)
	submitForm(t, b, reset, "/admin/users/"+hank.ID+"/reset-2fa", nil)
	if hasTOTP() {
		t.Error("the confirmed reset left the authenticator app")
	}
	crafted := b.post(page+"/edit", url.Values{"csrf_token": {csrfOf(t, b, page)}, "username": {"gina"}, "email": {"gina@example.com"}, "name": {"Crafted"}})
	if u, _ := srv.Main.Store.GetUser(ctx, gina.ID); crafted.Status != http.StatusPreconditionFailed || u.Name == "Crafted" {
		t.Errorf("an edit without the form's version: %d, name %q", crafted.Status, u.Name)
	}

	// Delete asks first.
	exists := func() bool { _, err := srv.Main.Store.GetUser(ctx, gina.ID); return err == nil }
	confirm := askFirst(t, b, b.get(page), "/admin/users/"+gina.ID+"/delete", "/admin/users/"+gina.ID+"/delete", url.Values{}, exists)
	submitForm(t, b, confirm, "/admin/users/"+gina.ID+"/delete", nil)
	if exists() {
		t.Error("gina still exists after the confirmed delete")
	}
	// The last admin cannot demote themselves: the page says why.
	root, _ := srv.Main.Store.GetUserByLogin(ctx, "root")
	rootPage := b.get(srv.URL + "/admin/users/" + root.ID)
	if p := submitForm(t, b, rootPage, "/admin/users/"+root.ID+"/edit", url.Values{"admin": {""}}); p.Status != http.StatusConflict || !strings.Contains(p.Body, "last administrator") {
		t.Errorf("demote the last admin: %d", p.Status)
	}
}
