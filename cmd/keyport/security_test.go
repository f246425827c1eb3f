package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

var ()

func totpCode(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// enrolTOTP sets up an authenticator app through the pages and returns the
// secret and the recovery codes shown.
// withTOTP signs login in at the portal in a browser of its own and
// enrols an authenticator app: the secret and the recovery codes.
func withTOTP(t *testing.T, srv *testServer, login string) (string, []string) {
	t.Helper()
	b := newBrowser(t)
	signInPortal(t, srv, b, login)
	return enrolTOTP(t, srv, b)
}

func enrolTOTP(t *testing.T, srv *testServer, b *browser) (string, []string) {
	t.Helper()
	return enrolTOTPAt(t, srv, b, time.Now())
}

// enrolTOTPAt is enrolTOTP for a server whose clock says now.
func enrolTOTPAt(t *testing.T, srv *testServer, b *browser, now time.Time) (string, []string) {
	t.Helper()
	p := b.get(srv.URL + "/security")
	p = postPage(b, p, "/security/totp/begin", url.Values{})
	secret := totpSecret(t, p.Body)
	if p.Status != http.StatusOK || secret == "" {
		t.Fatalf("enrolment page: %d %s", p.Status, truncateBody(p.Body))
	}
	if !strings.Contains(p.Body, `src="data:image/png;base64,`) {
		t.Error("no server-rendered QR code")
	}
	bad := postPage(b, p, "/security/totp/confirm", url.Values{"code": {"000000"}})
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, "not correct") {
		t.Errorf("wrong confirmation code: %d", bad.Status)
	}
	done := postPage(b, p, "/security/totp/confirm", url.Values{"code": {totpCode(t, secret, now)}})
	codes := codeShaped(parsePage(t, done.Body))
	if done.Status != http.StatusOK || len(codes) != account.RecoveryCodeCount {
		t.Fatalf("confirmation: %d, %d codes: %s", done.Status, len(codes), truncateBody(done.Body))
	}
	return secret, codes
}

func TestTOTPSignIn(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	secret, recovery := enrolTOTP(t, srv, b)
	u := srv.user(alice.ID)
	if len(u.TOTPSecret) == 0 || strings.Contains(string(u.TOTPSecret), secret) || len(u.RecoveryCodes) != 10 {
		t.Fatalf("stored TOTP: secret sealed? %v, %d recovery hashes", !strings.Contains(string(u.TOTPSecret), secret), len(u.RecoveryCodes))
	}
	for _, h := range u.RecoveryCodes {
		if slices.Contains(recovery, h) {
			t.Fatal("a recovery code is stored in clear")
		}
	}

	rp := srv.createClient(newConfidentialClient("app"))
	signInWithSecondFactor := func(form url.Values) (page, *browser) {
		b := newBrowser(t)
		p := rp.authorize(b, "st")
		p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
		if p.URL.Path != "/login/2fa" || !strings.Contains(p.Body, `name="code"`) {
			t.Fatalf("password sign-in did not ask for the second factor: %s %s", p.URL, truncateBody(p.Body))
		}
		return b.submit(p, "/login/2fa", form), b
	}

	// A wrong code: refused, and no session exists.
	p, b2 := signInWithSecondFactor(url.Values{"code": {"123456"}})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "not correct") {
		t.Fatalf("wrong code: %d %s", p.Status, truncateBody(p.Body))
	}
	if r := b2.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Fatal("a wrong code left a session")
	}

	// The right code: the app gets a code; amr says otp and mfa.
	next := totpCode(t, secret, time.Now().Add(30*time.Second))
	p, _ = signInWithSecondFactor(url.Values{"code": {next}, "remember_device": {"1"}})
	res := landed(t, p, rp.RedirectURI)
	if res.Code == "" {
		t.Fatalf("no code after the second factor: %+v", res)
	}
	tok, err := rp.exchange(res.Code, "")
	if err != nil {
		t.Fatal(err)
	}
	claims := idTokenClaims(t, rp, tok)
	amr, _ := claims["amr"].([]any)
	if !slices.Contains(amr, any("pwd")) || !slices.Contains(amr, any("otp")) || !slices.Contains(amr, any("mfa")) {
		t.Errorf("amr = %v", claims["amr"])
	}

	// The same code again is refused: each step is accepted once.
	if p, _ := signInWithSecondFactor(url.Values{"code": {next}}); p.Status != http.StatusBadRequest {
		t.Errorf("replayed code: %d", p.Status)
	}

	// A recovery code works once.
	p, _ = signInWithSecondFactor(url.Values{"recovery_code": {strings.ToUpper(recovery[0])}})
	if res := landed(t, p, rp.RedirectURI); res.Code == "" {
		t.Fatalf("recovery code: %d %s", p.Status, truncateBody(p.Body))
	}
	if p, _ := signInWithSecondFactor(url.Values{"recovery_code": {recovery[0]}}); p.Status != http.StatusBadRequest {
		t.Errorf("reused recovery code: %d", p.Status)
	}
	if n := len(srv.user(alice.ID).RecoveryCodes); n != 9 {
		t.Errorf("%d recovery codes left, want 9", n)
	}
	hist, _ := srv.Main.Accounts.SignIn.History(context.Background(), alice.ID, 20)
	failures := 0
	for _, a := range hist {
		if !a.Success && (a.Method == "otp" || a.Method == "recovery_code") {
			failures++
		}
	}
	if failures < 3 {
		t.Errorf("failed second factors recorded: %d", failures)
	}
}

func TestTOTPConcurrentUseAcceptsOnce(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	secret, _ := enrolTOTP(t, srv, b)
	code := totpCode(t, secret, time.Now().Add(30*time.Second))
	u := srv.user(alice.ID)
	var wg sync.WaitGroup
	results := make([]error, 8)
	for i := range results {
		wg.Go(func() {
			results[i] = srv.Main.Accounts.Credentials.VerifyTOTP(context.Background(), u, code, "127.0.0.1", "test")
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range results {
		if err == nil {
			ok++
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 8 concurrent uses of one code succeeded: %v", ok, results)
	}
}

func TestRememberedDeviceSkipsSecondStep(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	secret, _ := enrolTOTP(t, srv, b)
	b.submit(b.get(srv.URL+"/security"), "/logout", nil)
	p := b.get(srv.URL + "/login")
	if !isLoginPage(p) {
		t.Fatalf("after signing out, /login shows no form: %d %s", p.Status, truncateBody(p.Body))
	}
	p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if p.URL.Path != "/login/2fa" {
		t.Fatalf("no second step: %s", p.URL)
	}
	p = b.submit(p, "/login/2fa", url.Values{"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "remember_device": {"1"}})
	if p.Status != http.StatusOK || p.URL.Path == "/login/2fa" {
		t.Fatalf("second step: %d %s", p.Status, p.URL)
	}
	sec := b.get(srv.URL + "/security")
	if !strings.Contains(sec.Body, "Go HTTP client") {
		t.Errorf("remembered device not listed: %s", truncateBody(sec.Body))
	}
	b.submit(sec, "/logout", nil)
	p = b.get(srv.URL + "/login")
	p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if p.URL.Path == "/login/2fa" {
		t.Fatal("a remembered device was asked for the second factor")
	}
	// Forget all: the next sign-in asks again.
	sec = b.get(srv.URL + "/security")
	postPage(b, sec, "/security/devices/forget", url.Values{"all": {"1"}})
	b.submit(b.get(srv.URL+"/security"), "/logout", nil)
	p = b.submit(b.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if p.URL.Path != "/login/2fa" {
		t.Fatalf("a forgotten device skipped the second step: %s", p.URL)
	}
}

func TestRequire2FA(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.Accounts.Require2FA = true })
	srv.createUser("alice", false)
	rp := srv.createClient(newConfidentialClient("app"))
	b := newBrowser(t)
	p := rp.authorize(b, "st")
	p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if p.URL.Path != "/security" || !strings.Contains(p.Body, "requires two-factor") {
		t.Fatalf("a user without a second factor was not sent to enrol: %s", p.URL)
	}
	if strings.Contains(strings.Join(b.visited, " "), "code=") {
		t.Fatal("the app got a code before enrolment")
	}
	if r := b.get(srv.URL + "/profile"); r.URL.Path != "/security" {
		t.Errorf("/profile before enrolment landed on %s", r.URL)
	}
	p = postPage(b, p, "/security/totp/begin", url.Values{"return_to": {p.URL.Query().Get("return_to")}})
	secret := totpSecret(t, p.Body)
	done := b.submit(p, "/security/totp/confirm", url.Values{"code": {totpCode(t, secret, time.Now())}})
	var back string
	for _, a := range parsePage(t, done.Body).all("a", "href", "*") {
		if href := a.attr("href"); back == "" && strings.HasPrefix(href, "/login?authRequestID=") {
			back = href
		}
	}
	if back == "" {
		t.Fatalf("no way back to the app after enrolment: %s", truncateBody(done.Body))
	}
	p = b.get(srv.URL + back)
	if res := landed(t, p, rp.RedirectURI); res.Code == "" {
		t.Fatalf("after enrolment: %d %s", p.Status, p.URL)
	}
}

func TestPasswordChange(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	rp := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, GrantTypes: []string{"authorization_code", "refresh_token"}})
	other := newBrowser(t)
	code, verifier := rp.signIn(other, "alice", oauthScope("openid offline_access"))
	tok, err := rp.exchange(code, verifier)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("tokens: %v", err)
	}

	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/security")
	for name, c := range map[string]struct {
		form url.Values
		want string
	}{
		"wrong current": {url.Values{"current_password": {"nope nope nope"}, "new_password": {"a brand new secret"}, "new_password_confirm": {"a brand new secret"}}, "not correct"},
		"short":         {url.Values{"current_password": {testPassword}, "new_password": {"short"}, "new_password_confirm": {"short"}}, "at least 10"},
		"mismatch":      {url.Values{"current_password": {testPassword}, "new_password": {"a brand new secret"}, "new_password_confirm": {"another secret!!"}}, "do not match"},
		"username":      {url.Values{"current_password": {testPassword}, "new_password": {"alice@example.com"}, "new_password_confirm": {"alice@example.com"}}, "same as the username"},
	} {
		r := postPage(b, p, "/security/password", c.form)
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, c.want) {
			t.Errorf("%s: %d %s", name, r.Status, truncateBody(r.Body))
		}
	}
	if srv.user(alice.ID).PasswordHash != alice.PasswordHash {
		t.Fatal("a refused change changed the password")
	}
	if r := b.post(srv.URL+"/security/password", url.Values{"current_password": {testPassword}, "new_password": {"a brand new secret"}, "new_password_confirm": {"a brand new secret"}}); r.Status != http.StatusForbidden {
		t.Errorf("without CSRF token: %d", r.Status)
	}
	r := postPage(b, p, "/security/password", url.Values{"current_password": {testPassword}, "new_password": {"a brand new secret"}, "new_password_confirm": {"a brand new secret"}})
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "password was changed") {
		t.Fatalf("change: %d %s", r.Status, truncateBody(r.Body))
	}
	// This browser stays signed in; the other one and the app's refresh token do not.
	if r := b.get(srv.URL + "/profile"); r.URL.Path != "/profile" {
		t.Error("the browser that changed the password was signed out")
	}
	if r := other.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Error("another browser stayed signed in")
	}
	if status, _, body := rp.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true); status != http.StatusBadRequest {
		t.Errorf("refresh after password change: %d %v", status, body)
	}
	if _, err := srv.Main.Accounts.SignIn.Authenticate(context.Background(), account.Credentials{Login: "alice", Password: "a brand new secret"}); err != nil {
		t.Errorf("new password: %v", err)
	}
}

// passwordToSecondStep starts an authorization request in a new browser and
// passes the password step; it returns the 2FA page, the browser and the
// request's ID.
func passwordToSecondStep(t *testing.T, rp *testClient, login string) (page, *browser, string) {
	t.Helper()
	b := newBrowser(t)
	p := rp.authorize(b, "st")
	id := formFields(p.Body).Get("authRequestID")
	p = b.submit(p, "/login", url.Values{"login": {login}, "password": {testPassword}})
	if p.Status != http.StatusOK || p.URL.Path != "/login/2fa" || id == "" {
		t.Fatalf("password step did not lead to the second step: %d %s", p.Status, p.URL)
	}
	return p, b, id
}

func TestSecondStepEdges(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	secret, _ := enrolTOTP(t, srv, b)
	rp := srv.createClient(newConfidentialClient("app"))

	// Without the CSRF token the right code is refused and not spent.
	p, b2, id := passwordToSecondStep(t, rp, "alice")
	code := totpCode(t, secret, time.Now().Add(30*time.Second))
	if r := b2.post(srv.URL+"/login/2fa", url.Values{"code": {code}}); r.Status != http.StatusForbidden {
		t.Fatalf("second step without CSRF token: %d", r.Status)
	}
	if r := b2.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Fatal("a refused second step left a session")
	}
	// The password step alone gives no session: prompt=none says login_required.
	if r := rp.authorize(b2, "silent", oauth2.SetAuthURLParam("prompt", "none")); landed(t, r, rp.RedirectURI).Error != "login_required" {
		t.Fatalf("prompt=none during a pending second step: %s", r.Location)
	}
	// Coming back to the request goes through the dispatcher to the same step.
	if r := b2.get(srv.URL + "/login?authRequestID=" + url.QueryEscape(id)); r.URL.Path != "/login/2fa" {
		t.Fatalf("the request while a second factor is owed: %s", r.URL)
	}
	// Another browser cannot use this browser's pending step.
	if r := newBrowser(t).get(srv.URL + "/login/2fa?authRequestID=" + url.QueryEscape(id)); isLoginPage(r) == false {
		t.Fatalf("a browser without a password step got the second step: %s", r.URL)
	}
	res := landed(t, b2.submit(p, "/login/2fa", url.Values{"code": {code}}), rp.RedirectURI)
	if res.Code == "" || res.State != "st" {
		t.Fatalf("the code after the refused attempt: %+v", res)
	}

	// Cancel: back to the password step of the same request, as someone else.
	srv.createUser("bob", false)
	p, b3, id := passwordToSecondStep(t, rp, "alice")
	p = b3.submit(p, "/login/2fa/cancel", nil)
	if !isLoginPage(p) || formFields(p.Body).Get("authRequestID") != id {
		t.Fatalf("cancel: %d %s", p.Status, p.URL)
	}
	// The second step's page, once nothing is owed, leads to the sign-in of
	// the same request, not to a sign-in at the portal.
	if r := b3.get(srv.URL + "/login/2fa?authRequestID=" + url.QueryEscape(id)); !isLoginPage(r) || formFields(r.Body).Get("authRequestID") != id {
		t.Fatal("the second step is still pending after cancel")
	}
	p = b3.submit(p, "/login", url.Values{"login": {"bob"}, "password": {testPassword}})
	if res := landed(t, p, rp.RedirectURI); res.Code == "" {
		t.Fatalf("bob after alice's cancelled step: %+v", res)
	}
}

func TestTOTPDisableAndNewRecoveryCodes(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	_, codes := enrolTOTP(t, srv, b)

	p := b.get(srv.URL + "/security")
	if !strings.Contains(p.Body, "Recovery codes left: 10") {
		t.Errorf("security page does not count the recovery codes")
	}
	// From the confirmation page, which names the set of codes it replaces.
	fresh := submitForm(t, b, b.get(srv.URL+"/security/recovery-codes"), "/security/recovery-codes", nil)
	got := codeShaped(parsePage(t, fresh.Body))
	if fresh.Status != http.StatusOK || len(got) != account.RecoveryCodeCount {
		t.Fatalf("new recovery codes: %d, %d codes", fresh.Status, len(got))
	}
	u := srv.user(alice.ID)
	if err := srv.Main.Accounts.Credentials.UseRecoveryCode(context.Background(), u, codes[0], "", ""); err == nil {
		t.Error("an old recovery code works after regeneration")
	}
	if err := srv.Main.Accounts.Credentials.UseRecoveryCode(context.Background(), u, got[3], "", ""); err != nil {
		t.Errorf("a new recovery code: %v", err)
	}

	// Turning it off needs the password, every time.
	for name, form := range map[string]url.Values{
		"no password":    {},
		"wrong password": {"confirm_password": {"not the password"}},
	} {
		r := postPage(b, p, "/security/totp/disable", form)
		if r.Status < 400 || r.Status >= 500 || !account.HasTOTP(srv.user(alice.ID)) {
			t.Errorf("%s: %d, still on: %v", name, r.Status, account.HasTOTP(srv.user(alice.ID)))
		}
	}
	if r := b.post(srv.URL+"/security/totp/disable", url.Values{"confirm_password": {testPassword}}); r.Status != http.StatusForbidden {
		t.Errorf("disable without CSRF token: %d", r.Status)
	}
	r := postPage(b, p, "/security/totp/disable", url.Values{"confirm_password": {testPassword}})
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "is off") {
		t.Fatalf("disable: %d %s", r.Status, truncateBody(r.Body))
	}
	if u := srv.user(alice.ID); account.HasTOTP(u) || len(u.RecoveryCodes) != 0 {
		t.Fatal("TOTP still on after disable")
	}
	// Now a password alone signs in again.
	b.submit(b.get(srv.URL+"/security"), "/logout", nil)
	signInPortal(t, srv, b, "alice")
}

func TestForgetOneDevice(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	secret, recovery := enrolTOTP(t, srv, b)
	// Two remembered browsers: one by an app code, one by a recovery code
	// (the box works on either form).
	remembered := func(form url.Values) *browser {
		d := newBrowser(t)
		p := d.submit(d.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
		form.Set("remember_device", "1")
		p = d.submit(p, "/login/2fa", form)
		if p.URL.Path == "/login/2fa" {
			t.Fatalf("second step: %d %s", p.Status, truncateBody(p.Body))
		}
		return d
	}
	d1 := remembered(url.Values{"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}})
	d2 := remembered(url.Values{"recovery_code": {recovery[0]}})
	p := b.get(srv.URL + "/security")
	ids := inputValues(t, p.Body, "id")
	if len(ids) != 2 {
		t.Fatalf("%d devices listed", len(ids))
	}
	if r := postPage(b, p, "/security/devices/forget", url.Values{"id": {"no-such-device"}}); r.Status != http.StatusNotFound {
		t.Errorf("forget an unknown device: %d", r.Status)
	}
	if r := b.post(srv.URL+"/security/devices/forget", url.Values{"id": {ids[0]}}); r.Status != http.StatusForbidden {
		t.Errorf("forget without CSRF token: %d", r.Status)
	}
	r := postPage(b, p, "/security/devices/forget", url.Values{"id": {ids[0]}})
	if left := inputValues(t, r.Body, "id"); r.Status != http.StatusOK || len(left) != 1 || left[0] == ids[0] {
		t.Fatalf("forget one: %d, left %v", r.Status, left)
	}
	// Exactly one of the two browsers is asked for the second step again.
	asked := 0
	for _, d := range []*browser{d1, d2} {
		d.submit(d.get(srv.URL+"/security"), "/logout", nil)
		p := d.submit(d.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
		if p.URL.Path == "/login/2fa" {
			asked++
		}
	}
	if asked != 1 {
		t.Fatalf("%d of 2 browsers asked for the second step after forgetting one", asked)
	}
}

func TestSecondStepOptions(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.Accounts.TrustedDeviceLifetime = config.Duration{} })
	alice := srv.createUser("alice", false)
	rp := srv.createClient(newConfidentialClient("app"))
	c := newBrowser(t) // signed in before any factor exists, for enrolling later
	signInPortal(t, srv, c, "alice")

	// Only a passkey: the step offers the passkey (for webauthn.js), no code
	// field, and with remembering turned off no box for it.
	if err := srv.Main.Store.CreateCredential(context.Background(), storage.Credential{ID: "pk1", UserID: alice.ID, Kind: storage.KindPasskey, Name: "Laptop", WebAuthnID: []byte{1, 2, 3}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	p, _, _ := passwordToSecondStep(t, rp, "alice")
	if !strings.Contains(p.Body, `id="passkey-2fa" data-begin="/login/2fa/passkey/begin"`) || !strings.Contains(p.Body, `src="/static/webauthn.js"`) ||
		strings.Contains(p.Body, `name="code"`) || strings.Contains(p.Body, "remember_device") {
		t.Fatalf("passkey-only second step: %s", truncateBody(p.Body))
	}

	// German, from the browser's language.
	b := newBrowser(t)
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/login", nil)
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9")
	p = b.do(req)
	p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	req, _ = http.NewRequest(http.MethodGet, p.URL.String(), nil)
	req.Header.Set("Accept-Language", "de")
	if de := b.do(req); !strings.Contains(de.Body, "Bestätigen Sie mit einem Ihrer Passkeys.") || !strings.Contains(de.Body, "Zwei-Faktor-Anmeldung") {
		t.Errorf("second step in German: %s", truncateBody(de.Body))
	}

	// TOTP with remembering off: the box is not shown and a forged one is ignored.
	if err := srv.Main.Store.DeleteCredential(context.Background(), alice.ID, "pk1"); err != nil {
		t.Fatal(err)
	}
	secret, _ := enrolTOTP(t, srv, c)
	p, d, _ := passwordToSecondStep(t, rp, "alice")
	if strings.Contains(p.Body, "remember_device") {
		t.Error("remember box shown with remembering off")
	}
	p = d.submit(p, "/login/2fa", url.Values{"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "remember_device": {"1"}})
	if res := landed(t, p, rp.RedirectURI); res.Code == "" {
		t.Fatalf("second step: %+v", res)
	}
	if devices, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindTrustedDevice); len(devices) != 0 {
		t.Fatalf("a device was remembered with remembering off: %d", len(devices))
	}
}
