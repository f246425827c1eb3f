package main

import (
	"context"
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

	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// Browser tests drive Debian's Chromium headless through chromedp, with
// the DevTools virtual WebAuthn authenticator standing in for a security
// key or a phone. WebAuthn needs a secure context and a domain as relying
// party ID, so the server's issuer is http://localhost:PORT (localhost is
// a secure context even over http). Each test has its own server and its
// own browser.

// chromiumPath finds Debian's Chromium, or skips the test (fails under
// KEYPORT_REQUIRE_INTEGRATION=1, as CI and the README's test command set).
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
		t.Fatal("chromium is not installed (apt-get install chromium), and KEYPORT_REQUIRE_INTEGRATION=1 requires the browser tests")
	}
	t.Skip("chromium is not installed (apt-get install chromium): skipping the browser tests")
	return ""
}

// chrome is one headless Chromium with a fresh profile and a virtual
// authenticator.
type chrome struct {
	t    *testing.T
	ctx  context.Context
	auth webauthn.AuthenticatorID
}

// newChrome starts Chromium with a platform authenticator that keeps
// resident keys and verifies the user (like a laptop's fingerprint reader),
// answering every request at once (automatic presence).
func newChrome(t *testing.T) *chrome {
	t.Helper()
	return newChromeWith(t)
}

// newChromeWith is newChrome with more command-line options, such as
// host-resolver-rules that send made-up host names to loopback.
func newChromeWith(t *testing.T, extra ...chromedp.ExecAllocatorOption) *chrome {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		// Nothing may reach out: the tests run without a network.
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
	}
	opts = append(opts, extra...)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	t.Cleanup(cancel)
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(acancel)
	bctx, bcancel := chromedp.NewContext(actx)
	t.Cleanup(bcancel)
	if err := chromedp.Do(bctx, chromedp.EmulateViewport(1100, 900)); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	if _, err := chromedp.Call(bctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("enable WebAuthn in chromium: %v", err)
	}
	res, err := chromedp.Call(bctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}})
	if err != nil {
		t.Fatalf("add virtual authenticator: %v", err)
	}
	return &chrome{t: t, ctx: bctx, auth: res.AuthenticatorID}
}

// do runs actions and fails the test with the page's state when one fails.
func (c *chrome) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	if err := chromedp.Do(c.ctx, actions...); err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		html, _ := chromedp.Run(c.ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		c.t.Fatalf("%s: %v (at %s)\n%s", what, err, loc, truncateBody(html))
	}
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		c.t.Fatalf("read %s: %v", sel, err)
	}
	return strings.TrimSpace(s)
}

func (c *chrome) location() string {
	c.t.Helper()
	loc, err := chromedp.Run(c.ctx, chromedp.Location())
	if err != nil {
		c.t.Fatal(err)
	}
	return loc
}

// waitLocation waits until the page's URL starts with prefix (a page of
// another server, where no element of ours can be waited for).
func (c *chrome) waitLocation(prefix string) string {
	c.t.Helper()
	for i := 0; i < 200; i++ {
		if loc, err := chromedp.Run(c.ctx, chromedp.Location()); err == nil && strings.HasPrefix(loc, prefix) {
			return loc
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("never reached %s; at %s", prefix, c.location())
	return ""
}

// withoutAutofill makes pages report that the browser offers no passkey
// autofill (conditional mediation), as browsers without it do. With it, a
// virtual authenticator that holds a passkey answers the sign-in page's
// autofill request at once, before any button or password can be used.
// The returned func turns autofill back on for pages loaded afterwards.
func (c *chrome) withoutAutofill() (restore func()) {
	c.t.Helper()
	res, err := chromedp.Call(c.ctx, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
		Source: `if (window.PublicKeyCredential) { PublicKeyCredential.isConditionalMediationAvailable = function () { return Promise.resolve(false); }; }`,
	})
	if err != nil {
		c.t.Fatalf("turn off passkey autofill: %v", err)
	}
	return func() {
		c.t.Helper()
		if _, err := chromedp.Call(c.ctx, cdppage.RemoveScriptToEvaluateOnNewDocument, cdppage.RemoveScriptToEvaluateOnNewDocumentParams(res)); err != nil {
			c.t.Fatalf("turn passkey autofill back on: %v", err)
		}
	}
}

// credentials lists what the virtual authenticator holds.
func (c *chrome) credentials() []*webauthn.Credential {
	c.t.Helper()
	res, err := chromedp.Call(c.ctx, webauthn.GetCredentials, webauthn.GetCredentialsParams{AuthenticatorID: c.auth})
	if err != nil {
		c.t.Fatalf("list the authenticator's credentials: %v", err)
	}
	return res.Credentials
}

// screenshot saves a full-page PNG of the current page as name.png in the
// test's artefact dir: KEYPORT_SCREENSHOTS when set (the README's set in
// docs/screenshots is made that way), else a temp dir of the test.
func (c *chrome) screenshot(name string) {
	c.t.Helper()
	dir := os.Getenv("KEYPORT_SCREENSHOTS")
	if dir == "" {
		dir = filepath.Join(c.t.TempDir(), "screenshots")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		c.t.Fatal(err)
	}
	buf, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), buf, 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// signIn signs in on the portal's sign-in page with the test password.
func (c *chrome) signIn(base, login string) {
	c.t.Helper()
	c.do("open the sign-in page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("login")))
	c.do("sign in with a password",
		chromedp.SendKeys(chromedp.ID("login"), login),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
	)
}

// signOut uses the sign-out button of the security page.
func (c *chrome) signOut(base string) {
	c.t.Helper()
	c.do("sign out", chromedp.Navigate(base+"/security"), chromedp.WaitVisible(chromedp.CSS(".session-logout button")),
		chromedp.Click(chromedp.CSS(".session-logout button")), chromedp.WaitVisible(chromedp.CSS(`a[href="/login"]`)))
}

// addPasskey registers a passkey called name on /security/passkeys.
func (c *chrome) addPasskey(base, name string) {
	c.t.Helper()
	c.do("passkeys page", chromedp.Navigate(base+"/security/passkeys"), chromedp.WaitVisible(chromedp.ID("passkey-add")))
	c.do("register a passkey",
		chromedp.SendKeys(chromedp.ID("passkey-name"), name),
		chromedp.Click(chromedp.ID("passkey-add")),
		chromedp.WaitVisible(chromedp.ID("passkey-list")),
	)
}

// startLocalhostServer starts Keyport with the issuer and the harness URL
// on http://localhost:PORT and returns that base URL.
func startLocalhostServer(t *testing.T, mutate func(*config.Config)) (*testServer, string) {
	t.Helper()
	srv := startServerWith(t, serverOptions{localhost: true, mutate: mutate})
	return srv, srv.URL
}

// appServer is a relying party's redirect target the browser can load.
func appServer(t *testing.T) string {
	t.Helper()
	app := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("app")) }))
	t.Cleanup(app.Close)
	return app.URL + "/callback"
}

func TestBrowserPasskeySignIn(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	alice := srv.createUser("alice", false)
	app := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki", RedirectURIs: []string{appServer(t)}})

	// Without a passkey: a password, then a passkey on the passkeys page.
	restoreAutofill := c.withoutAutofill()
	c.do("open the sign-in page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("passkey-signin")))
	c.screenshot("login")
	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	c.addPasskey(base, "Laptop")
	keys := srv.passkeys(alice.ID)
	if len(keys) != 1 || keys[0].Name != "Laptop" {
		t.Fatalf("passkeys stored: %+v", keys)
	}
	// A discoverable credential for the RP ID "localhost", whose user handle
	// is the user ID (never the username).
	if held := c.credentials(); len(held) != 1 || !held[0].IsResidentCredential || held[0].RpID != "localhost" || string(held[0].UserHandle) != alice.ID {
		t.Fatalf("the authenticator holds %+v", held)
	}
	c.screenshot("passkeys")
	// The same authenticator again: the browser refuses (the page excludes
	// the user's passkeys) and the page says why.
	c.do("register the same authenticator again",
		chromedp.SendKeys(chromedp.ID("passkey-name"), "Again"),
		chromedp.Click(chromedp.ID("passkey-add")),
		chromedp.WaitVisible(chromedp.ID("passkey-error")),
	)
	if msg := c.text("#passkey-error"); msg != "This device already holds one of your passkeys." {
		t.Errorf("message for a second registration: %q", msg)
	}
	if n := len(srv.passkeys(alice.ID)); n != 1 {
		t.Errorf("%d passkeys after the refused registration", n)
	}
	c.signOut(base)

	// An app's code flow, finished with "Sign in with a passkey": no
	// username, no password.
	verifier, challenge := pkce()
	authURL := app.oauth.AuthCodeURL("st-pk", oauth2.SetAuthURLParam("code_challenge", challenge),
		oauth2.SetAuthURLParam("code_challenge_method", "S256"), oidc.Nonce("n-pk"))
	c.do("start the app's sign-in", chromedp.Navigate(authURL), chromedp.WaitVisible(chromedp.ID("passkey-signin")))
	if ac, err := chromedp.Run(c.ctx, chromedp.AttributeValue(chromedp.ID("login"), "autocomplete")); err != nil || ac.Value != "username webauthn" {
		t.Errorf("username field autocomplete %q (%v)", ac.Value, err)
	}
	c.do("sign in with a passkey", chromedp.Click(chromedp.ID("passkey-signin")))
	// The app asks for consent the first time: the passkey sign-in goes on
	// through the dispatcher like a password sign-in.
	c.do("consent after the passkey", chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)))
	c.screenshot("consent")
	c.do("allow", chromedp.Click(chromedp.CSS(`button[value="allow"]`)))
	back, _ := url.Parse(c.waitLocation(app.RedirectURI))
	if back.Query().Get("code") == "" || back.Query().Get("state") != "st-pk" {
		t.Fatalf("the app got %s", back)
	}
	tok, err := app.exchange(back.Query().Get("code"), verifier)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	claims := idTokenClaims(t, app, tok)
	if amr, _ := claims["amr"].([]any); claims["sub"] != alice.ID || !slices.Equal(amr, []any{"hwk", "mfa"}) {
		t.Fatalf("ID token after a passkey sign-in: sub %v amr %v", claims["sub"], claims["amr"])
	}
	if k := srv.passkeys(alice.ID)[0]; k.LastUsedAt.IsZero() {
		t.Error("the passkey's last use was not noted")
	}

	// With autofill: the sign-in page's username field offers the passkey,
	// and the authenticator (always present here) answers it unasked.
	c.signOut(base)
	restoreAutofill()
	c.do("sign in through autofill", chromedp.Navigate(base+"/login?return_to=%2Fsecurity%2Fpasskeys"), chromedp.WaitVisible(chromedp.ID("passkey-list")))
	if hist, _ := srv.Main.Store.ListLoginAttempts(context.Background(), alice.ID, 1); len(hist) != 1 || !hist[0].Success || hist[0].Method != "hwk" {
		t.Errorf("history after autofill: %+v", hist)
	}
}

func TestBrowserPasskeySecondFactor(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	alice := srv.createUser("alice", false)
	// The sign-in page must not sign in by autofill: the password is used.
	c.withoutAutofill()
	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	c.addPasskey(base, "Laptop")
	c.signOut(base)

	// A user with a passkey who signs in with a password is asked for it.
	c.signIn(base, "alice")
	c.do("the second step offers the passkey", chromedp.WaitVisible(chromedp.ID("passkey-2fa-button")))
	if loc := c.location(); !strings.Contains(loc, "/login/2fa?authRequestID=") {
		t.Fatalf("second step at %s", loc)
	}
	c.screenshot("two-factor-passkey")
	c.do("answer with the passkey", chromedp.Click(chromedp.ID("passkey-2fa-button")), chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	sessions, err := srv.Main.Store.ListUserSessions(context.Background(), alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(sessions, func(s storage.Session) bool { return slices.Equal(s.AMR, []string{"pwd", "hwk", "mfa"}) }) {
		t.Errorf("no session with password and passkey: %+v", sessions)
	}
}

func TestBrowserPortal(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	alice := srv.createUser("alice", false)
	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))

	// Edit the profile.
	c.do("profile", chromedp.Navigate(base+"/profile"), chromedp.WaitVisible(chromedp.ID("f-given_name")))
	c.do("edit the profile",
		chromedp.SetValue(chromedp.ID("f-given_name"), "Alice"),
		chromedp.SetValue(chromedp.ID("f-family_name"), "Liddell"),
		chromedp.SetValue(chromedp.ID("f-zoneinfo"), "Europe/Berlin"),
		chromedp.Click(chromedp.CSS(`form[action="/profile"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".notice")),
	)
	if u := srv.user(alice.ID); u.GivenName != "Alice" || u.Zoneinfo != "Europe/Berlin" {
		t.Fatalf("profile not saved from the browser: %+v", u)
	}
	c.screenshot("profile")

	// Enrol TOTP, reading the secret from the page.
	c.do("security page", chromedp.Navigate(base+"/security"), chromedp.WaitVisible(chromedp.CSS(`form[action="/security/totp/begin"] button`)))
	c.screenshot("security")
	c.do("start TOTP", chromedp.Click(chromedp.CSS(`form[action="/security/totp/begin"] button`)), chromedp.WaitVisible(chromedp.ID("totp-secret")))
	secret := c.text("#totp-secret")
	c.screenshot("security-totp")
	c.do("confirm TOTP",
		chromedp.SendKeys(chromedp.ID("totp-code"), totpCode(t, secret, time.Now())),
		chromedp.Click(chromedp.CSS(`form[action="/security/totp/confirm"] button`)),
		chromedp.WaitVisible(chromedp.CSS(".recovery-codes")),
	)
	c.screenshot("recovery-codes")

	// Create an API token and use it.
	c.do("access page", chromedp.Navigate(base+"/security/access"), chromedp.WaitVisible(chromedp.ID("tok-name")))
	c.screenshot("access")
	c.do("create an API token",
		chromedp.SendKeys(chromedp.ID("tok-name"), "script"),
		chromedp.Click(chromedp.CSS(`form[action="/security/api-tokens"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.ID("new-secret")),
	)
	token := c.text("#new-secret")
	c.screenshot("api-token")
	status, _, me := apiCall(t, srv, http.MethodGet, "/api/v1/me", token, "", "")
	if status != http.StatusOK || me["username"] != "alice" || me["given_name"] != "Alice" {
		t.Fatalf("API token from the page: %d %v", status, me)
	}
	c.do("activity page", chromedp.Navigate(base+"/security/activity"), chromedp.WaitVisible(chromedp.ID("sessions")))
	c.screenshot("activity")

	// Sign in again: password, then the code from the authenticator app.
	c.signOut(base)
	c.signIn(base, "alice")
	c.do("second step", chromedp.WaitVisible(chromedp.ID("code")))
	c.screenshot("two-factor")
	c.do("enter the code",
		chromedp.SendKeys(chromedp.ID("code"), totpCode(t, secret, time.Now().Add(30*time.Second))),
		chromedp.Click(chromedp.CSS(`form[action="/login/2fa"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(".portal-nav")),
	)
}

func TestBrowserLockedProfile(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, func(c *config.Config) { c.Accounts.ProfilesLocked = true })
	srv.createUser("alice", false)
	c.signIn(base, "alice")
	c.do("home", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	c.do("profile", chromedp.Navigate(base+"/profile"), chromedp.WaitVisible(chromedp.ID("f-given_name")))
	editable, err := chromedp.Run(c.ctx, chromedp.Evaluate[bool](`document.querySelector("input#f-given_name") !== null`))
	if err != nil || editable {
		t.Fatalf("a locked field is editable in the browser (%v)", err)
	}
	if reason := c.text(".profile-field .field-meta"); reason == "" {
		t.Error("no lock reason shown")
	}
	c.screenshot("profile-locked")
}

// In a real browser the form_post page (response_mode=form_post) submits
// itself under its Content-Security-Policy, and the app receives the code,
// state and iss as a POST.
func TestBrowserFormPost(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	posted := make(chan url.Values, 1)
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.ParseForm() == nil {
			select {
			case posted <- r.PostForm:
			default:
			}
		}
		_, _ = w.Write([]byte("app"))
	}))
	t.Cleanup(appSrv.Close)
	app := srv.createClient(account.NewClient{ID: "wiki", SkipConsent: true, RedirectURIs: []string{appSrv.URL + "/callback"}})

	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	verifier, challenge := pkce()
	authURL := app.oauth.AuthCodeURL("st-fp", oauth2.SetAuthURLParam("response_mode", "form_post"),
		oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	c.do("start the app's sign-in", chromedp.Navigate(authURL))
	c.waitLocation(app.RedirectURI)
	var form url.Values
	select {
	case form = <-posted:
	case <-time.After(10 * time.Second):
		t.Fatalf("the app received no POST; the browser is at %s", c.location())
	}
	if form.Get("state") != "st-fp" || form.Get("iss") != base || form.Get("code") == "" {
		t.Fatalf("the app received %v", form)
	}
	if _, err := app.exchange(form.Get("code"), verifier); err != nil {
		t.Fatalf("code exchange: %v", err)
	}
}
