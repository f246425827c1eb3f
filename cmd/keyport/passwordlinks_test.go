package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
)

// TestPasswordLinkPages drives the pages behind an administrator's
// one-time links over HTTP: an invitation (the new user sets their first
// password) and a password reset (which signs the user out everywhere).
// Mismatched, short, CSRF-less posts and garbage, used or expired links
// change nothing.
func TestPasswordLinkPages(t *testing.T) {
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{now: clock.Now})
	ctx := context.Background()
	root := srv.createUser("root", true)
	actor := account.Actor{Kind: account.ActorUser, UserID: root.ID}
	admin := srv.Main.Accounts.Admin

	// The invitation.
	ivy, invite, err := admin.CreateUser(ctx, actor, account.AdminNewUser{Username: "ivy", Email: "ivy@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(invite.URL, srv.URL+"/invite?token=") {
		t.Fatalf("invitation link %q is not on the issuer %s", invite.URL, srv.URL)
	}
	b := newBrowser(t)
	form := b.get(invite.URL)
	if form.Status != http.StatusOK || !hasForm(form.Body, "/invite") || !strings.Contains(form.Body, "ivy") || !strings.Contains(form.Body, "At least 10 characters") {
		t.Fatalf("invitation form: %s", form)
	}
	if form.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("the form is cacheable: %q", form.Header.Get("Cache-Control"))
	}
	req, _ := http.NewRequest(http.MethodGet, invite.URL, nil)
	req.Header.Set("Accept-Language", "de")
	if de := b.do(req); de.Status != http.StatusOK || !strings.Contains(de.Body, "Legen Sie Ihr Passwort fest") || !strings.Contains(de.Body, "Neues Passwort") {
		t.Errorf("German invitation form: %s", de)
	}
	fields := func(pw, confirm string) url.Values {
		return url.Values{"password": {pw}, "password_confirm": {confirm}}
	}
	if p := b.submit(form, "/invite", fields("long-enough-pass-1", "long-enough-pass-2")); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "The two passwords do not match.") || !hasForm(p.Body, "/invite") {
		t.Errorf("mismatched passwords: %s", p)
	}
	if p := b.submit(form, "/invite", fields("short", "short")); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "Password must be at least 10 characters long.") {
		t.Errorf("short password: %s", p)
	}
	noCSRF := fields(testPassword, testPassword)
	noCSRF.Set("token", invite.Secret)
	if p := b.post(srv.URL+"/invite", noCSRF); p.Status != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %s", p)
	}
	wrong := fields(testPassword, testPassword)
	wrong.Set("token", invite.Secret[:len(invite.Secret)-2]+"xx")
	if p := b.submit(form, "/invite", wrong); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "invalid, expired or already used") {
		t.Errorf("POST with a wrong token: %s", p)
	}
	for _, bad := range []string{srv.URL + "/invite", srv.URL + "/invite?token=garbage", invite.URL + "x", srv.URL + "/reset-password?token=" + invite.Secret} {
		if p := newBrowser(t).get(bad); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "invalid, expired or already used") {
			t.Errorf("GET %s: %s", bad, p)
		}
	}
	if got := srv.user(ivy.ID); got.PasswordHash != "" {
		t.Fatal("a refused post set a password")
	}
	done := b.submit(form, "/invite", fields(testPassword, testPassword))
	if done.Status != http.StatusOK || !strings.Contains(done.Body, "Your account is ready") || strings.Contains(done.Body, invite.Secret) {
		t.Fatalf("invitation accepted: %s", done)
	}
	signInPortal(t, srv, newBrowser(t), "ivy")
	if p := newBrowser(t).get(invite.URL); p.Status != http.StatusNotFound {
		t.Errorf("used invitation: %s", p)
	}
	hash := srv.user(ivy.ID).PasswordHash
	replay := fields("another password 1", "another password 1")
	replay.Set("token", invite.Secret)
	if p := b.submit(form, "/invite", replay); p.Status != http.StatusNotFound || srv.user(ivy.ID).PasswordHash != hash {
		t.Errorf("replayed invitation: %s", p)
	}

	// The reset link.
	rita := srv.createUser("rita", false)
	ritasBrowser := newBrowser(t)
	signInPortal(t, srv, ritasBrowser, "rita")
	reset, err := admin.PasswordResetLink(ctx, actor, rita.ID)
	if err != nil {
		t.Fatal(err)
	}
	b = newBrowser(t)
	form = b.get(reset.URL)
	if form.Status != http.StatusOK || !hasForm(form.Body, "/reset-password") || !strings.Contains(form.Body, "rita") {
		t.Fatalf("reset form: %s", form)
	}
	if p := b.submit(form, "/reset-password", fields("rita", "rita")); p.Status != http.StatusBadRequest {
		t.Errorf("short password: %s", p)
	}
	if !signedIn(srv, ritasBrowser) {
		t.Fatal("a refused reset signed rita out")
	}
	done = b.submit(form, "/reset-password", fields("rita's new password", "rita's new password"))
	if done.Status != http.StatusOK || !strings.Contains(done.Body, "Your password is changed") {
		t.Fatalf("reset: %s", done)
	}
	if signedIn(srv, ritasBrowser) {
		t.Error("the reset left rita's browser signed in")
	}
	if _, err := srv.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "rita", Password: "rita's new password"}); err != nil {
		t.Errorf("the new password: %v", err)
	}
	if p := newBrowser(t).get(reset.URL); p.Status != http.StatusNotFound {
		t.Errorf("used reset link: %s", p)
	}

	// An expired link: a clear page, and the password stays.
	late, err := admin.PasswordResetLink(ctx, actor, rita.ID)
	if err != nil {
		t.Fatal(err)
	}
	b = newBrowser(t)
	form = b.get(late.URL)
	if form.Status != http.StatusOK {
		t.Fatalf("fresh reset link: %s", form)
	}
	clock.Add(time.Hour + time.Minute)
	hash = srv.user(rita.ID).PasswordHash
	if p := b.submit(form, "/reset-password", fields("too late password", "too late password")); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "invalid, expired or already used") {
		t.Errorf("expired link POST: %s", p)
	}
	if p := newBrowser(t).get(late.URL); p.Status != http.StatusNotFound {
		t.Errorf("expired link GET: %s", p)
	}
	if srv.user(rita.ID).PasswordHash != hash {
		t.Error("an expired link changed the password")
	}
}
