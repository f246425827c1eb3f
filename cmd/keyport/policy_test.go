package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/slapdtest"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
)

// ageSessions moves every session of userID past the recent-sign-in window.
func ageSessions(t *testing.T, srv *testServer, userID string) {
	t.Helper()
	ctx := context.Background()
	sess, err := srv.Main.Store.ListUserSessions(ctx, userID)
	if err != nil || len(sess) == 0 {
		t.Fatalf("sessions of %s: %v (%d)", userID, err, len(sess))
	}
	for _, s := range sess {
		s.AuthTime = s.AuthTime.Add(-time.Hour)
		if err := srv.Main.Store.DeleteSession(ctx, s.ID); err != nil {
			t.Fatal(err)
		}
		if err := srv.Main.Store.CreateSession(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

// TestTOTPEnrolmentNeedsRecentSignIn: adding an authenticator app is a
// security change like adding a passkey. A session that signed in long ago
// (a browser left open, a stolen cookie) must give the password again, both
// to begin and to turn on the enrolment.
func TestTOTPEnrolmentNeedsRecentSignIn(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	ageSessions(t, srv, alice.ID)

	p := b.get(srv.URL + "/security")
	if !strings.Contains(p.Body, `id="confirm_password_totp"`) {
		t.Errorf("the set-up form of an old session has no password field: %s", truncateBody(p.Body))
	}
	r := postPage(b, p, "/security/totp/begin", url.Values{})
	if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "current password") {
		t.Errorf("begin without the password: %d %s", r.Status, truncateBody(r.Body))
	}
	if u := srv.user(alice.ID); len(u.TOTPPending) != 0 {
		t.Fatal("begin without the password stored a pending secret")
	}
	if r := postPage(b, p, "/security/totp/begin", url.Values{"confirm_password": {"not the password"}}); r.Status != http.StatusBadRequest || len(srv.user(alice.ID).TOTPPending) != 0 {
		t.Errorf("begin with a wrong password: %d", r.Status)
	}
	r = postPage(b, p, "/security/totp/begin", url.Values{"confirm_password": {testPassword}})
	secret := totpSecret(t, r.Body)
	if r.Status != http.StatusOK || secret == "" {
		t.Fatalf("begin with the password: %d %s", r.Status, truncateBody(r.Body))
	}
	if !strings.Contains(r.Body, `id="confirm_password_totp_on"`) {
		t.Error("the confirmation form of an old session has no password field")
	}
	code := url.Values{"code": {totpCode(t, secret, time.Now())}}
	if r := postPage(b, r, "/security/totp/confirm", code); r.Status != http.StatusBadRequest || account.HasTOTP(srv.user(alice.ID)) {
		t.Errorf("confirm without the password: %d, TOTP on: %v", r.Status, account.HasTOTP(srv.user(alice.ID)))
	}
	code.Set("confirm_password", testPassword)
	if done := postPage(b, r, "/security/totp/confirm", code); done.Status != http.StatusOK || !account.HasTOTP(srv.user(alice.ID)) {
		t.Errorf("confirm with the password: %d %s", done.Status, truncateBody(done.Body))
	}

	// A fresh sign-in needs no password: the window of passkeys applies.
	bob := srv.createUser("bob", false)
	fb := newBrowser(t)
	signInPortal(t, srv, fb, "bob")
	enrolTOTP(t, srv, fb)
	if !account.HasTOTP(srv.user(bob.ID)) {
		t.Error("a recent sign-in could not set up TOTP")
	}
}

// TestRequire2FAExemptsDirectoryWithOwnSecondFactor: with require_2fa, the
// users of a directory that handles second factors itself pass everywhere
// (browser, forward auth by session, by app password and by the directory
// password, API tokens), while a local user without a second factor is still
// refused everywhere.
func TestRequire2FAExemptsDirectoryWithOwnSecondFactor(t *testing.T) {
	ldapSrv := slapdtest.Start(t, directoryFixtures)
	srv := startServer(t, "", func(c *config.Config) {
		c.Accounts.Require2FA = true
		d := corpDirectory(ldapSrv.URL)
		d.HandlesSecondFactor = true
		c.Directories = []config.Directory{d}
	})
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	if status, h := verify(srv, "", "", "", b); status != http.StatusOK || h.Get("Remote-User") != "alice" {
		t.Errorf("forward auth by the session of a directory-2FA user: %d", status)
	}
	if status, _ := verify(srv, "alice", testPassword, "", nil); status != http.StatusOK {
		t.Errorf("forward auth by the directory password: %d", status)
	}
	appPassword := createOnPage(t, srv, b, "/security/app-passwords", url.Values{"ap_name": {"mail"}})
	if status, _ := verify(srv, "alice", appPassword, "", nil); status != http.StatusOK {
		t.Errorf("forward auth by an app password: %d", status)
	}
	token := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"ro"}, "scope": {"read-only"}})
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/me", token, "", ""); status != http.StatusOK || body["username"] != "alice" {
		t.Errorf("API token of a directory-2FA user: %d %v", status, body)
	}

	// A local user without a second factor owes one on every path.
	local := srv.createUser("local", false)
	lb := newBrowser(t)
	lb.submit(lb.get(srv.URL+"/login"), "/login", url.Values{"login": {"local"}, "password": {testPassword}})
	if status, _ := verify(srv, "", "", "", lb); status != http.StatusUnauthorized {
		t.Errorf("forward auth by the session of a local user without 2FA: %d", status)
	}
	if status, _ := verify(srv, "local", testPassword, "", nil); status != http.StatusUnauthorized {
		t.Errorf("forward auth by the password of a local user without 2FA: %d", status)
	}
	localApp, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(context.Background(), local, "old one", "")
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := verify(srv, "local", localApp, "", nil); status != http.StatusUnauthorized {
		t.Errorf("app password of a local user without 2FA: %d", status)
	}
	localToken, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(context.Background(), local, account.NewAPIToken{Name: "t", Scope: account.ScopeReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/me", localToken, "", ""); status != http.StatusUnauthorized {
		t.Errorf("API token of a local user without 2FA: %d", status)
	}
}

// TestRecoveryEmailLockedForDirectoryUsers: when a directory owns a user's
// email, the recovery email is locked too, on the page and in the API.
func TestRecoveryEmailLockedForDirectoryUsers(t *testing.T) {
	srv := startServer(t, "", nil)
	carol := srv.createUser("carol", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "carol")
	token := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"rw"}, "scope": {"read-write"}})
	if _, err := srv.Main.Store.UpdateUser(context.Background(), carol.ID, func(u storage.User) (storage.User, error) {
		u.Source = "corp-ldap"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	p := b.get(srv.URL + "/profile")
	if strings.Contains(p.Body, `name="recovery_email"`) {
		t.Errorf("the recovery email of a directory user is editable on the page")
	}
	if r := postPage(b, p, "/profile", url.Values{"recovery_email": {"carol@elsewhere.example"}}); r.Status != http.StatusForbidden || !strings.Contains(r.Body, "Managed by corp-ldap") {
		t.Errorf("crafted post of the recovery email: %d", r.Status)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", token, "application/json", `{"recovery_email":"carol@elsewhere.example"}`); status != http.StatusForbidden || body["field"] != "recovery_email" {
		t.Errorf("PATCH of the recovery email: %d %v", status, body)
	}
	if u := srv.user(carol.ID); u.RecoveryEmail != "" {
		t.Errorf("the recovery email changed: %q", u.RecoveryEmail)
	}
}

// TestProfileSaveLogsChangedFieldsOnly: the profile form posts every field;
// the log line names only those that changed.
func TestProfileSaveLogsChangedFieldsOnly(t *testing.T) {
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{logs: logs})
	srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/profile")
	form := url.Values{"given_name": {""}, "family_name": {""}, "nickname": {""}, "name": {"Alice Tester"}, "email": {"alice@example.com"},
		"recovery_email": {""}, "phone_number": {""}, "locale": {""}, "zoneinfo": {"Europe/Berlin"}, "theme": {""}}
	if r := postPage(b, p, "/profile", form); r.Status != http.StatusOK {
		t.Fatalf("save: %d %s", r.Status, truncateBody(r.Body))
	}
	var line string
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "profile updated") {
			line = l
		}
	}
	if !strings.Contains(line, "fields=[zoneinfo]") {
		t.Errorf("the log line of a save that changed the time zone: %q", line)
	}
}

// TestEmailVerifiedFollowsTheAddress: the admin sets the flag from the CLI;
// a user who changes the email on the profile page and back keeps it
// verified, while the other address is not; apps see it in userinfo.
func TestEmailVerifiedFollowsTheAddress(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	cliMust(t, env, testPassword+"\n", "user", "create", "--username", "nico", "--email", "nico@example.com", "--password-stdin")
	r := cliMust(t, env, "", "user", "set-email-verified", "--username", "nico")
	if !strings.Contains(r.Stdout, "nico@example.com of nico is now verified") {
		t.Errorf("set-email-verified: %s", r)
	}
	cliFail(t, env, "", 1, `No user "nobody".`, "user", "set-email-verified", "--username", "nobody")
	cliFail(t, env, "", 2, "needs --username", "user", "set-email-verified")

	srv := startServer(t, dir, nil)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{"openid", "email"}
	verified := func(want bool) {
		t.Helper()
		tok := app.tokens("nico")
		if status, _, claims := srv.userinfo(tok.AccessToken); status != http.StatusOK || claims["email_verified"] != want {
			t.Errorf("userinfo %d %v, want email_verified %v", status, claims, want)
		}
	}
	verified(true)
	b := newBrowser(t)
	signInPortal(t, srv, b, "nico")
	save := func(addr string) {
		t.Helper()
		if r := postPage(b, b.get(srv.URL+"/profile"), "/profile", url.Values{"email": {addr}}); r.Status != http.StatusOK {
			t.Fatalf("change the email to %s: %d %s", addr, r.Status, truncateBody(r.Body))
		}
	}
	save("nico@private.example")
	verified(false)
	save("nico@example.com")
	verified(true)

	// The admin withdraws the flag: the server is stopped for the CLI.
	srv.stop()
	r = cliMust(t, env, "", "user", "set-email-verified", "--username", "nico", "--false")
	if !strings.Contains(r.Stdout, "is now not verified") {
		t.Errorf("set-email-verified --false: %s", r)
	}
	m := cliOpen(t, dir)
	defer m.Close()
	if u, err := m.Store.GetUserByLogin(context.Background(), "nico"); err != nil || u.EmailVerified || slices.Contains(u.VerifiedEmails, "nico@example.com") {
		t.Errorf("after --false: %v %+v", err, u)
	}
}

// refreshVia uses a refresh token with HTTP client hc, optionally sending
// X-Forwarded-For as a proxy in front of Keyport would.
func refreshVia(t *testing.T, c *testClient, hc *http.Client, rt, forwardedFor string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {c.ID}}
	if c.Secret != "" {
		form.Set("client_secret", c.Secret)
	}
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

// TestAllowlistAtEveryAuthorizationAndRefresh: the IP allowlist holds when
// a session answers a new app (no code for a browser that moved outside the
// list) and when an app on the person's device refreshes its tokens, from
// the client address Keyport resolves behind its proxy.
func TestAllowlistAtEveryAuthorizationAndRefresh(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	alice := srv.createUser("alice", false)
	web := srv.createClient(account.NewClient{ID: "web", SkipConsent: true})
	web.oauth.Scopes = append(web.oauth.Scopes, "offline_access")
	other := srv.createClient(account.NewClient{ID: "other", SkipConsent: true})
	cli := srv.createClient(account.NewClient{ID: "cli", Public: true, SkipConsent: true})
	cli.oauth.Scopes = append(cli.oauth.Scopes, "offline_access")

	// Alice signs in at home (127.0.0.1) with both apps, then limits her
	// account to that address.
	b := newBrowser(t)
	code, verifier := web.signIn(b, "alice")
	webTok, err := web.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	code, verifier = cli.signIn(b, "alice")
	cliTok, err := cli.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Main.Accounts.SignIn.SetAllowedNetworks(context.Background(), alice, "127.0.0.1", "127.0.0.1", false); err != nil {
		t.Fatal(err)
	}

	// The same browser, now on another network, asks for a code for a new
	// app: its session may not answer.
	away := browserFrom(t, "127.0.0.5")
	away.client.Jar = b.client.Jar
	p := other.authorize(away, "st-away")
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Sign-in from this network is not allowed") || strings.Contains(p.Location, "code=") {
		t.Errorf("session reused outside the allowlist: %d %s %s", p.Status, p.Location, truncateBody(p.Body))
	}
	if res := landed(t, other.authorize(away, "st-none", oauth2.SetAuthURLParam("prompt", "none")), other.RedirectURI); res.Error != "access_denied" || res.Code != "" {
		t.Errorf("prompt=none outside the allowlist: %+v", res)
	}
	attempts, _ := srv.Main.Store.ListLoginAttempts(context.Background(), alice.ID, 10)
	if len(attempts) == 0 || attempts[0].Success || attempts[0].IP != "127.0.0.5" || !strings.Contains(attempts[0].Reason, "network not allowed") {
		t.Errorf("the refusal is not in alice's history: %+v", attempts)
	}
	// Back home, the session still answers.
	if res := landed(t, other.authorize(b, "st-home"), other.RedirectURI); res.Code == "" {
		t.Errorf("session inside the allowlist: %+v", res)
	}

	// The command-line app refreshes from where the person is. Behind the
	// trusted proxy, the address is the one the proxy reports.
	status, body := refreshVia(t, cli, http.DefaultClient, cliTok.RefreshToken, "203.0.113.9")
	if status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("public client refreshing from outside the allowlist: %d %v", status, body)
	}
	if status, body := refreshVia(t, cli, away.client, cliTok.RefreshToken, ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("public client refreshing from another address: %d %v", status, body)
	}
	// The refusal revoked nothing: back inside the list, the same token works.
	status, body = refreshVia(t, cli, http.DefaultClient, cliTok.RefreshToken, "")
	if status != http.StatusOK || body["refresh_token"] == nil {
		t.Errorf("public client refreshing from inside the allowlist: %d %v", status, body)
	}
	// A confidential app refreshes from its own server, wherever the
	// person is.
	if status, body := refreshVia(t, web, away.client, webTok.RefreshToken, ""); status != http.StatusOK {
		t.Errorf("confidential client refreshing from its server: %d %v", status, body)
	}
}
