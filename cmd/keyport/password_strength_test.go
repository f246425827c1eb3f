package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/internal/testlog"
)

const (
	weakPasswordEN     = "This password is too easy to guess. Use a longer one, for example four or five unrelated words"
	weakPasswordDE     = "Dieses Passwort ist zu leicht zu erraten. Nehmen Sie ein längeres"
	personalPasswordEN = "This password is too easy to guess because it contains your name, username or email address."
)

// TestWeakPasswordsRefusedEverywhere: with the default min_score, a weak
// password is refused with a message that says what to do, on the setup
// page (in the browser's language), by the CLI and on the security page,
// where the person's own names count as easy guesses.
func TestWeakPasswordsRefusedEverywhere(t *testing.T) {
	dir := t.TempDir()
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{dir: dir, logs: logs})
	link := setupLink(t, logs)
	b := newBrowser(t)
	form := b.get(link)
	fields := func(pw string) url.Values {
		return url.Values{"username": {"root"}, "email": {"root@example.com"}, "name": {"Root Person"}, "password": {pw}, "password_confirm": {pw}}
	}
	p := b.submit(form, "/setup", fields("password1234"))
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, weakPasswordEN) {
		t.Errorf("setup with password1234: %d %s", p.Status, truncateBody(p.Body))
	}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/setup", strings.NewReader(formFields(form.Body).Encode()+"&"+fields("password1234").Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept-Language", "de")
	if de := b.do(req); de.Status != http.StatusBadRequest || !strings.Contains(de.Body, weakPasswordDE) {
		t.Errorf("setup in German: %d %s", de.Status, truncateBody(de.Body))
	}
	if n, _ := srv.Main.Store.CountUsers(t.Context()); n != 0 {
		t.Fatal("a weak password created the administrator")
	}
	if p := b.submit(form, "/setup", fields(testPassword)); p.Status != http.StatusOK {
		t.Fatalf("setup with a strong password: %d %s", p.Status, truncateBody(p.Body))
	}

	// The security page: "zorblax2024!" is strong, except for zorblax.
	srv.createUser("zorblax", false)
	zb := newBrowser(t)
	signInPortal(t, srv, zb, "zorblax")
	change := func(next string) page {
		return postPage(zb, zb.get(srv.URL+"/security"), "/security/password",
			url.Values{"current_password": {testPassword}, "new_password": {next}, "new_password_confirm": {next}})
	}
	if p := change("zorblax2024!"); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, personalPasswordEN) {
		t.Errorf("zorblax changes to zorblax2024!: %d %s", p.Status, truncateBody(p.Body))
	}
	if p := change("password1234"); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, weakPasswordEN) {
		t.Errorf("change to password1234: %d", p.Status)
	}
	srv.stop()

	// The CLI, for a new user and for a new password.
	env := cliEnv(dir)
	cliFail(t, env, "password1234\n", 1, weakPasswordEN, "user", "create", "--username", "admin", "--email", "admin@example.com", "--admin", "--password-stdin")
	cliFail(t, env, "zorblax2024!\n", 1, personalPasswordEN, "user", "set-password", "--username", "zorblax", "--password-stdin")
	cliMust(t, env, "zorblax2024!\n", "user", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin")
}
