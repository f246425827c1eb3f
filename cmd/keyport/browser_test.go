package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// Browser tests drive Debian's Chromium headless. WebAuthn needs a secure
// context and a domain as relying party ID, so the server's issuer is
// http://localhost:PORT.

func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("chromium is not installed (apt-get install chromium); KEYPORT_REQUIRE_INTEGRATION=1 requires the browser tests")
	}
	t.Skip("chromium is not installed (apt-get install chromium): skipping the browser tests")
	return ""
}

// newChrome starts a headless Chromium with a fresh profile and a virtual
// WebAuthn authenticator (resident keys, user verification).
func newChrome(t *testing.T) (context.Context, webauthn.AuthenticatorID) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if _, err := chromedp.Call(bctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("start chromium / enable WebAuthn: %v", err)
	}
	res, err := chromedp.Call(bctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatalf("add virtual authenticator: %v", err)
	}
	return bctx, res.AuthenticatorID
}

// presence turns the virtual authenticator's automatic user presence on or
// off. Off, the login page's passkey autofill (conditional mediation) waits
// instead of signing in at once, so password sign-ins can be driven.
func presence(t *testing.T, ctx context.Context, id webauthn.AuthenticatorID, on bool) {
	t.Helper()
	if _, err := chromedp.Call(ctx, webauthn.SetAutomaticPresenceSimulation, webauthn.SetAutomaticPresenceSimulationParams{AuthenticatorID: id, Enabled: on}); err != nil {
		t.Fatalf("set presence simulation: %v", err)
	}
}

// screenshots go to KEYPORT_SCREENSHOTS when set (the README's set in
// docs/screenshots is made that way), else to the test's temp dir.
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("KEYPORT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "keyport-screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		t.Fatal(err)
	}
}

func do(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		loc, _ := chromedp.Run(ctx, chromedp.Location())
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, truncateBody(html))
	}
}

func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func location(t *testing.T, ctx context.Context) string {
	t.Helper()
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// waitLocation polls until the page's URL starts with prefix.
func waitLocation(t *testing.T, ctx context.Context, prefix string) string {
	t.Helper()
	for i := 0; i < 200; i++ {
		if loc, err := chromedp.Run(ctx, chromedp.Location()); err == nil && strings.HasPrefix(loc, prefix) {
			return loc
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("never reached %s; at %s", prefix, location(t, ctx))
	return ""
}

func startLocalhostServer(t *testing.T, mutate func(*config.Config)) (*testServer, string) {
	t.Helper()
	srv := startServer(t, "", func(c *config.Config) {
		c.Issuer = strings.Replace(c.Issuer, "127.0.0.1", "localhost", 1)
		if mutate != nil {
			mutate(c)
		}
	})
	return srv, strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
}

func browserSignIn(t *testing.T, ctx context.Context, base, login string) {
	t.Helper()
	do(t, ctx, "open the sign-in page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("login")))
	do(t, ctx, "sign in",
		chromedp.SendKeys(chromedp.ID("login"), login),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
	)
}

func TestBrowserPortal(t *testing.T) {
	ctx, authenticator := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	alice := srv.createUser("alice", false)

	do(t, ctx, "open the sign-in page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("passkey-signin")))
	screenshot(t, ctx, "login")
	browserSignIn(t, ctx, base, "alice")
	do(t, ctx, "home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))

	// Edit the profile.
	do(t, ctx, "profile", chromedp.Navigate(base+"/profile"), chromedp.WaitVisible(chromedp.ID("f-given_name")))
	do(t, ctx, "edit the profile",
		chromedp.SetValue(chromedp.ID("f-given_name"), "Alice"),
		chromedp.SetValue(chromedp.ID("f-family_name"), "Liddell"),
		chromedp.SetValue(chromedp.ID("f-zoneinfo"), "Europe/Berlin"),
		chromedp.Click(chromedp.CSS(`form[action="/profile"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if u := srv.user(alice.ID); u.GivenName != "Alice" || u.Zoneinfo != "Europe/Berlin" {
		t.Fatalf("profile not saved from the browser: %+v", u)
	}
	screenshot(t, ctx, "profile")

	// Enrol TOTP, reading the secret from the page.
	do(t, ctx, "security page", chromedp.Navigate(base+"/security"), chromedp.WaitVisible(chromedp.CSS(`form[action="/security/totp/begin"] button`)))
	screenshot(t, ctx, "security")
	do(t, ctx, "start TOTP", chromedp.Click(chromedp.CSS(`form[action="/security/totp/begin"] button`)), chromedp.WaitVisible(chromedp.ID("totp-secret")))
	secret := text(t, ctx, "#totp-secret")
	screenshot(t, ctx, "security-totp")
	do(t, ctx, "confirm TOTP",
		chromedp.SendKeys(chromedp.ID("totp-code"), totpCode(t, secret, time.Now())),
		chromedp.Click(chromedp.CSS(`form[action="/security/totp/confirm"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".recovery-codes")),
	)
	screenshot(t, ctx, "recovery-codes")

	// Register a passkey with the virtual authenticator.
	do(t, ctx, "passkeys page", chromedp.Navigate(base+"/security/passkeys"), chromedp.WaitVisible(chromedp.ID("passkey-add")))
	do(t, ctx, "register a passkey",
		chromedp.SendKeys(chromedp.ID("passkey-name"), "Laptop"),
		chromedp.Click(chromedp.ID("passkey-add")),
		chromedp.WaitVisible(chromedp.ID("passkey-list")),
	)
	keys, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindPasskey)
	if len(keys) != 1 || keys[0].Name != "Laptop" {
		t.Fatalf("passkeys stored: %+v", keys)
	}
	screenshot(t, ctx, "passkeys")

	// Create an API token and use it.
	do(t, ctx, "access page", chromedp.Navigate(base+"/security/access"), chromedp.WaitVisible(chromedp.ID("tok-name")))
	screenshot(t, ctx, "access")
	do(t, ctx, "create an API token",
		chromedp.SendKeys(chromedp.ID("tok-name"), "script"),
		chromedp.Click(chromedp.CSS(`form[action="/security/api-tokens"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("new-secret")),
	)
	token := text(t, ctx, "#new-secret")
	screenshot(t, ctx, "api-token")
	status, _, me := apiCall(t, srv, http.MethodGet, "/api/v1/me", token, "", "")
	if status != http.StatusOK || me["username"] != "alice" || me["given_name"] != "Alice" {
		t.Fatalf("API token from the page: %d %v", status, me)
	}
	do(t, ctx, "activity page", chromedp.Navigate(base+"/security/activity"), chromedp.WaitVisible(chromedp.ID("sessions")))
	screenshot(t, ctx, "activity")

	signOut := func() {
		do(t, ctx, "sign out", chromedp.Navigate(base+"/security"), chromedp.WaitVisible(chromedp.CSS(".session-logout button")),
			chromedp.Click(chromedp.CSS(".session-logout button")), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)))
	}

	// Password + TOTP code. With a passkey registered, the sign-in page's
	// autofill would sign in at once; hold the authenticator back.
	presence(t, ctx, authenticator, false)
	signOut()
	browserSignIn(t, ctx, base, "alice")
	do(t, ctx, "second step", chromedp.WaitVisible(chromedp.ID("code")))
	screenshot(t, ctx, "two-factor")
	do(t, ctx, "enter the code",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now().Add(30*time.Second))),
		chromedp.Click(chromedp.CSS(`form[action="/login/2fa"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".portal-nav")),
	)

	// Password + passkey as the second factor.
	signOut()
	browserSignIn(t, ctx, base, "alice")
	do(t, ctx, "second step offers the passkey", chromedp.WaitVisible(chromedp.ID("passkey-2fa-button")))
	presence(t, ctx, authenticator, true)
	do(t, ctx, "passkey as second factor", chromedp.Click(chromedp.ID("passkey-2fa-button")), chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	presence(t, ctx, authenticator, false)

	// No password at all: an app's code flow finished with the passkey.
	signOut()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("app")) }))
	defer app.Close()
	redirect := app.URL + "/callback"
	c, secretApp, err := srv.Main.Accounts.RegisterClient(context.Background(), account.NewClient{ID: "app", Name: "Team Wiki", RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	verifier, challenge := pkce()
	authURL := base + "/authorize?" + url.Values{"client_id": {c.ID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid profile"}, "state": {"st-1"}, "nonce": {"n-1"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}.Encode()
	do(t, ctx, "start the app's sign-in", chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.ID("passkey-signin")))
	presence(t, ctx, authenticator, true)
	// The button; the pending autofill request may answer first, which ends
	// in the same place.
	_ = chromedp.Do(ctx, chromedp.Click(chromedp.ID("passkey-signin")))
	// The app asks for consent the first time: the passkey sign-in goes on
	// to the consent page, like a password sign-in.
	do(t, ctx, "consent after the passkey", chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)))
	screenshot(t, ctx, "consent")
	do(t, ctx, "allow", chromedp.Click(chromedp.CSS(`button[value="allow"]`)))
	back, _ := url.Parse(waitLocation(t, ctx, redirect))
	code := back.Query().Get("code")
	if code == "" || back.Query().Get("state") != "st-1" {
		t.Fatalf("app got %s", back)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {verifier}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(c.ID, secretApp)
	status, _, tok := doJSON(t, req)
	if status != http.StatusOK {
		t.Fatalf("token exchange: %d %v", status, tok)
	}
	claims := jwtClaims(t, tok["id_token"].(string))
	amr, _ := claims["amr"].([]any)
	if claims["sub"] != alice.ID || !(slices.Contains(amr, any("hwk")) || slices.Contains(amr, any("swk"))) || slices.Contains(amr, any("pwd")) {
		t.Fatalf("ID token after passkey sign-in: %v", claims)
	}
}

func TestBrowserLockedProfile(t *testing.T) {
	ctx, _ := newChrome(t)
	srv, base := startLocalhostServer(t, func(c *config.Config) { c.Accounts.ProfilesLocked = true })
	srv.createUser("alice", false)
	browserSignIn(t, ctx, base, "alice")
	do(t, ctx, "home", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	do(t, ctx, "profile", chromedp.Navigate(base+"/profile"), chromedp.WaitVisible(chromedp.ID("f-given_name")))
	editable, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("input#f-given_name") !== null`))
	if err != nil || editable {
		t.Fatalf("a locked field is editable in the browser (%v)", err)
	}
	if reason := text(t, ctx, ".profile-field .field-meta"); reason == "" {
		t.Error("no lock reason shown")
	}
	screenshot(t, ctx, "profile-locked")
}

// jwtClaims decodes a JWT's payload (the signature is checked by the
// protocol tests; here only the claims matter).
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(b, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
