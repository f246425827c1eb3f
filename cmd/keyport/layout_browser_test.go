package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/accessibility"
	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/directory/ldap"
	oidcsource "github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/storage"
)

// Layout tests: the portal's pages in Chromium, on a phone-sized viewport
// and on a desktop one. What they check is geometry the browser computed
// (widths, positions, heights), never the markup's spelling.

// narrowWidth is the CSS width of a small phone (iPhone SE, 12 mini).
const narrowWidth = 375

// fitsJS lists what sticks out of the viewport sideways: the page being
// wider than the window, and every visible element whose box starts left of
// it or ends right of it.
const fitsJS = `(() => {
  const vw = window.innerWidth;
  const out = [];
  const sw = document.documentElement.scrollWidth;
  if (sw > vw) out.push("the page is " + sw + " px wide");
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\s+/).join(".") : "");
  for (const el of document.body.querySelectorAll("*")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) {
      out.push(name(el) + " spans " + Math.round(r.left) + " to " + Math.round(r.right) + " px (" + (el.textContent || "").trim().replace(/\s+/g, " ").slice(0, 30) + ")");
    }
    if (out.length >= 8) break;
  }
  return out;
})()`

// pageTour visits portal pages in one browser and checks that each fits.
type pageTour struct {
	c       *chrome
	base    string
	lang    string // the language every page must be in
	visited []string
}

// check asserts that the page the browser shows fits the viewport.
func (p *pageTour) check(name string) {
	p.c.t.Helper()
	problems, err := chromedp.Run(p.c.ctx, chromedp.Evaluate[[]string](fitsJS))
	if err != nil {
		p.c.t.Fatalf("%s: measure: %v", name, err)
	}
	if len(problems) > 0 {
		p.c.t.Errorf("%s (%s) does not fit %d px: %s", name, p.c.location(), narrowWidth, strings.Join(problems, "; "))
	}
	if lang := eval[string](p.c, "page language", `document.documentElement.lang`); lang != p.lang {
		p.c.t.Errorf("%s is in %q, want %q", name, lang, p.lang)
	}
	p.visited = append(p.visited, name)
}

// visit opens path, waits for sel and checks the page.
func (p *pageTour) visit(name, path, sel string) {
	p.c.t.Helper()
	p.c.waitFor("open "+name, sel, chromedp.Navigate(p.base+path))
	p.check(name)
}

// waitFor runs actions and waits (at most 15 s) until sel is visible.
func (c *chrome) waitFor(what, sel string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 15*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, append(actions, chromedp.WaitVisible(chromedp.CSS(sel)))...); err != nil {
		loc, _ := chromedp.Run(c.ctx, chromedp.Location())
		html, _ := chromedp.Run(c.ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		c.t.Fatalf("%s: waiting for %s: %v (at %s)\n%s", what, sel, err, loc, truncateBody(html))
	}
}

// eval evaluates a JavaScript expression on the current page.
func eval[T any](c *chrome, what, js string) T {
	c.t.Helper()
	v, err := chromedp.Run(c.ctx, chromedp.Evaluate[T](js))
	if err != nil {
		c.t.Fatalf("%s: %v", what, err)
	}
	return v
}

// portalWithEverything starts Keyport with something on every page: an
// LDAP directory and an upstream provider added by the admin, an app that
// asks for consent, and alice with an app password, an API token, a
// remembered device and failed sign-ins. Names are long on purpose.
func portalWithEverything(t *testing.T) (*testServer, string, storage.User, *testClient) {
	t.Helper()
	srv, base := startLocalhostServer(t, nil)
	ctx := context.Background()
	srv.createUser("root", true)
	alice := srv.createUser("alice", false)
	acct := srv.Main.Accounts
	if err := acct.Directories.SaveDirectory(ctx, ldap.Config{ID: "corp-ldap-europe-west", Name: "Corporate LDAP (Europe West)", URL: "ldap://127.0.0.1:1",
		UserBaseDN: "ou=people,dc=europe-west,dc=corp,dc=example,dc=com", UserFilter: "(objectClass=inetOrgPerson)", LoginAttributes: []string{"uid", "mail"}}, true); err != nil {
		t.Fatalf("add an LDAP directory: %v", err)
	}
	if err := acct.Directories.SaveUpstream(ctx, oidcsource.Config{ID: "partner-sso", Name: "Partner Single Sign-On", Issuer: "http://127.0.0.1:9/realms/partner",
		ClientID: "keyport", ClientSecret: "s3cret"}, true); err != nil {
		t.Fatalf("add an upstream provider: %v", err)
	}
	app := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki of the Engineering Department", RedirectURIs: []string{appServer(t)}})
	// Connected apps: one alice consented to, and one deleted since.
	srv.createClient(account.NewClient{ID: "chat", Name: "Team Chat of the Engineering Department"})
	for _, clientID := range []string{"chat", "timesheets-of-the-engineering-department"} {
		now := time.Now()
		if err := srv.Main.Store.PutGrant(ctx, storage.Grant{UserID: alice.ID, ClientID: clientID, Scopes: []string{"openid", "profile", "email", "groups", "offline_access"},
			CreatedAt: now, UpdatedAt: now, LastUsedAt: now}, nil); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := acct.Credentials.CreateAppPassword(ctx, alice, "Thunderbird on the office desktop", "wiki"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := acct.Credentials.CreateAPIToken(ctx, alice, account.NewAPIToken{Name: "nightly-backup-of-the-wiki", Scope: account.ScopeReadWrite,
		AllowedNetworks: "192.0.2.0/24, 2001:db8:85a3::/48", ExpiresAt: time.Now().AddDate(1, 0, 0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := acct.Credentials.TrustDevice(ctx, alice, "2001:db8:85a3::8a2e:370:7334", firefoxOnLinux); err != nil {
		t.Fatal(err)
	}
	// A webhook of alice's, off with its reason, with a delivery in its log.
	hook, _, err := acct.Webhooks.Create(ctx, account.Actor{Kind: account.ActorUser, UserID: alice.ID}, true, account.NewWebhook{
		URL: "https://hooks.engineering-department.example.com/keyport/account-events/receiver", EventTypes: []string{"user.password_reset_link_expired", "user.email_change_requested"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Main.Store.RecordWebhookDelivery(ctx, hook.ID, storage.WebhookDelivery{MessageID: "06h4rohvr4l6bc3gc98c98sfjg", EventID: "06h4rohvr73jlmc5btcenchij8",
		EventType: "user.password_reset_link_expired", At: time.Now(), Attempt: 20, Error: "Post \"https://hooks.engineering-department.example.com/keyport/account-events/receiver\": context deadline exceeded"},
		func(w *storage.Webhook) error {
			w.Disabled, w.DisabledReason = true, "20 delivery attempts in a row failed; the last: context deadline exceeded"
			return nil
		}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		_, _ = acct.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "wrong password " + itoa(int64(i)), IP: "2001:db8:85a3::8a2e:370:7334", UserAgent: firefoxOnLinux})
	}
	return srv, base, alice, app
}

// TestBrowserEveryPageFitsAPhone visits every page a user and an admin can
// reach at 375 px, in English and in German (the longer words), and fails
// on anything that sticks out sideways.
func TestBrowserEveryPageFitsAPhone(t *testing.T) {
	for _, lang := range []string{"en", "de"} {
		t.Run(lang, func(t *testing.T) { tourEveryPage(t, lang) })
	}
}

func tourEveryPage(t *testing.T, lang string) {
	c := newChrome(t)
	if _, err := chromedp.Call(c.ctx, network.SetExtraHTTPHeaders, network.SetExtraHTTPHeadersParams{Headers: network.Headers{"Accept-Language": lang}}); err != nil {
		t.Fatalf("ask for %s pages: %v", lang, err)
	}
	srv, base := startLocalhostServer(t, nil)
	tour := &pageTour{c: c, base: base, lang: lang}
	c.do("phone-sized viewport", chromedp.EmulateViewport(narrowWidth, 740))
	// The setup page exists only before the first account.
	tok, err := srv.Main.Accounts.Users.CreateSetupToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	tour.visit("first-admin setup", "/setup?token="+tok, "#username")
	srv.stop()

	srv, base, alice, app := portalWithEverything(t)
	tour.base = base
	c.withoutAutofill()
	tour.visit("sign-in", "/login", "#login")
	if lang == "en" {
		c.screenshot("mobile-login")
	}
	tour.visit("signed out", "/logged-out", "main h1")
	tour.visit("not found", "/no-such-page", "main h1")
	tour.visit("expired sign-in request", "/login?authRequestID=gone", "main h1")

	c.signIn(base, "alice")
	c.waitFor("home after sign-in", ".portal-nav")
	tour.check("home")
	tour.visit("profile", "/profile", "#f-given_name")
	tour.visit("security", "/security", `form[action="/security/totp/begin"] button`)
	c.waitFor("start TOTP", "#totp-secret", chromedp.Click(chromedp.CSS(`form[action="/security/totp/begin"] button`)))
	tour.check("authenticator app set-up")
	secret := c.text("#totp-secret")
	c.waitFor("confirm TOTP", ".recovery-codes",
		chromedp.SendKeys(chromedp.ID("totp-code"), totpCode(t, secret, time.Now())),
		chromedp.Click(chromedp.CSS(`form[action="/security/totp/confirm"] button`)))
	tour.check("new recovery codes")
	tour.visit("recovery codes, later", "/security/recovery-codes", "main h1")
	tour.visit("security with an authenticator app", "/security", "#totp")
	c.addPasskey(base, "Work laptop (ThinkPad X1 Carbon, fingerprint)")
	tour.visit("passkeys", "/security/passkeys", "#passkey-list")
	if lang == "en" {
		c.screenshot("mobile-passkeys")
	}
	tour.visit("remove a passkey?", "/security/passkeys/remove?id="+srv.passkeys(alice.ID)[0].ID, `form[action="/security/passkeys/remove"]`)
	tour.visit("app access", "/security/access", "#tok-name")
	if lang == "en" {
		c.screenshot("mobile-access")
	}
	c.waitFor("an allowlist without this address", `input[name="confirm_lockout"]`,
		chromedp.SetValue(chromedp.ID("allowed_networks"), "192.0.2.0/24"),
		chromedp.Click(chromedp.CSS(`form[action^="/security/allowlist"] button[type="submit"]`)))
	tour.check("allowlist lock-out warning")
	tour.visit("app access again", "/security/access", "#ap_name")
	c.waitFor("create an app password", "#new-secret",
		chromedp.SendKeys(chromedp.ID("ap_name"), "Phone mail app"),
		chromedp.Click(chromedp.CSS(`form[action="/security/app-passwords"] button[type="submit"]`)))
	tour.check("new app password")
	tour.visit("your webhooks", "/security/webhooks", "#webhook-form")
	tour.visit("your webhook", "/security/webhooks/"+tourHook(t, srv, alice.ID), "#deliveries-title")
	tour.visit("activity", "/security/activity", "#sessions")
	if lang == "en" {
		c.screenshot("mobile-activity")
	}
	tour.visit("sign out everywhere?", "/security/activity/signout-everywhere", `form[action="/security/activity/signout-everywhere"]`)
	tour.visit("not for you", "/admin/directories", "main h1")
	tour.visit("sign out?", "/logout", "#logout-confirm")
	tour.visit("an app asks to sign out", "/end_session?client_id="+app.ID, "#logout-confirm")
	// The provider's error pages show the value that was sent, however long.
	tour.visit("unregistered redirect address", "/authorize?"+url.Values{"client_id": {app.ID}, "response_type": {"code"}, "scope": {"openid"},
		"redirect_uri": {"https://an-application-nobody-registered.example.com/callback/" + strings.Repeat("very-long-path-segment/", 12)}}.Encode(), "main h1")

	_, challenge := pkce()
	authURL := app.oauth.AuthCodeURL("st-narrow", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	c.waitFor("consent", `button[value="allow"]`, chromedp.Navigate(authURL))
	tour.check("consent")
	// Someone signed in sees where else to go, on the consent page too.
	if links := eval[int](c, "portal menu on the consent page", `document.querySelectorAll(".portal-nav a[href]").length`); links < 5 {
		t.Errorf("the consent page shows %d links of the portal menu", links)
	}

	// The second step, with an app, a passkey and recovery codes to choose from.
	c.signOut(base)
	tour.check("signed out after the sign-out button")
	c.signIn(base, "alice")
	c.waitFor("second step", "#code")
	tour.check("second step")
	// The second step's pages name the sign-in record they are for.
	second, err := url.Parse(c.location())
	if err != nil || second.Query().Get("authRequestID") == "" {
		t.Fatalf("second step at %s", c.location())
	}
	tour.visit("second step with a recovery code", second.RequestURI()+"&recovery=1", "#recovery_code")
	c.waitFor("cancel the second step", "#login", chromedp.Click(chromedp.CSS(`form[action="/login/2fa/cancel"] button`)))

	c.signIn(base, "root")
	c.waitFor("admin home", ".portal-nav")
	tour.visit("directories", "/admin/directories", "#directories")
	if lang == "en" {
		c.screenshot("mobile-directories")
	}
	tour.visit("add an LDAP directory", "/admin/directories/new", "#d-id")
	tour.visit("edit an LDAP directory", "/admin/directories/corp-ldap-europe-west/edit", "#d-url")
	c.waitFor("save a broken directory", "#form-error",
		chromedp.SetValue(chromedp.ID("d-url"), "http://not-ldap.example.com"),
		chromedp.Click(chromedp.CSS(`form[action$="/edit"] button[type="submit"]`)))
	tour.check("LDAP directory form with an error")
	tour.visit("add an upstream provider", "/admin/upstreams/new", "#u-id")
	tour.visit("edit an upstream provider", "/admin/upstreams/partner-sso/edit", "#u-issuer")
	tour.visit("remove a directory?", "/admin/directories/corp-ldap-europe-west/delete", `form[action="/admin/directories/corp-ldap-europe-west/delete"]`)
	tour.visit("no such directory", "/admin/directories/nope/edit", "main h1")
	tour.visit("webhooks", "/admin/webhooks", "#webhooks")
	tour.visit("new webhook", "/admin/webhooks/new", "#h-url")
	tour.visit("a user's webhook", "/admin/webhooks/"+tourHook(t, srv, alice.ID), "#webhook-form")
	if len(tour.visited) < 33 {
		t.Errorf("only %d pages visited: %v", len(tour.visited), tour.visited)
	}
}

// signInLayout is what the sign-in page shows: its visible buttons and
// dividers, top to bottom.
type signInLayout struct {
	Buttons []struct {
		Text       string
		Width, Top float64
	}
	Dividers []struct {
		Text string
		Top  float64
	}
}

const signInLayoutJS = `(() => {
  const shown = (el) => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const box = (el) => el.getBoundingClientRect();
  return {
    buttons: Array.from(document.querySelectorAll("main button")).filter(shown)
      .map((b) => ({text: b.textContent.trim(), width: box(b).width, top: box(b).top})),
    dividers: Array.from(document.querySelectorAll("main .signin-divider, main [role=separator], main hr")).filter(shown)
      .map((d) => ({text: d.textContent.trim(), top: box(d).top})),
  };
})()`

// With an upstream provider and passkeys, the sign-in page offers three
// ways in: the password's button and the others are one width, with "or"
// between the password and the rest, on a desktop and on a phone.
func TestBrowserSignInButtons(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	if err := srv.Main.Accounts.Directories.SaveUpstream(context.Background(), oidcsource.Config{ID: "partner", Name: "Partner", Issuer: "http://127.0.0.1:9",
		ClientID: "keyport", ClientSecret: "s3cret"}, true); err != nil {
		t.Fatal(err)
	}
	c.withoutAutofill()
	for _, width := range []int64{1100, narrowWidth} {
		c.do("viewport", chromedp.EmulateViewport(width, 800))
		c.waitFor("sign-in page", "#passkey-signin", chromedp.Navigate(base+"/login"))
		l := eval[signInLayout](c, "measure the sign-in page", signInLayoutJS)
		if len(l.Buttons) != 3 {
			t.Fatalf("%d px: buttons %+v", width, l.Buttons)
		}
		for _, b := range l.Buttons[1:] {
			if d := b.Width - l.Buttons[0].Width; d > 1 || d < -1 {
				t.Errorf("%d px: %q is %.0f px wide, %q %.0f px", width, b.Text, b.Width, l.Buttons[0].Text, l.Buttons[0].Width)
			}
		}
		if len(l.Dividers) != 1 || l.Dividers[0].Text != "or" || l.Dividers[0].Top < l.Buttons[0].Top || l.Dividers[0].Top > l.Buttons[1].Top {
			t.Errorf("%d px: no \"or\" between the password's button and the others: dividers %+v, buttons %+v", width, l.Dividers, l.Buttons)
		}
		// A screen reader reads the "or" (a separator's text is not read)
		// and nothing of the lines beside it.
		var ors, separators int
		for _, n := range c.accessibilityTree() {
			if n.Role == "separator" {
				separators++
			}
			if n.Name == "or" && n.Role == "StaticText" {
				ors++
			}
		}
		if ors != 1 || separators != 0 {
			t.Errorf("%d px: a screen reader reads \"or\" %d times, with %d separators", width, ors, separators)
		}
		if width == 1100 {
			c.screenshot("login-choices")
		}
	}
}

// axNode is a node of Chromium's accessibility tree: what a screen reader
// is given.
type axNode struct{ Role, Name string }

// accessibilityTree returns the page's accessibility tree without the
// nodes Chromium ignores (hidden, presentational, a separator's content).
func (c *chrome) accessibilityTree() []axNode {
	c.t.Helper()
	res, err := chromedp.Call(c.ctx, accessibility.GetFullAXTree, accessibility.GetFullAXTreeParams{})
	if err != nil {
		c.t.Fatalf("accessibility tree: %v", err)
	}
	str := func(v *accessibility.Value) string {
		var s string
		if v != nil {
			_ = json.Unmarshal(v.Value, &s)
		}
		return s
	}
	var out []axNode
	for _, n := range res.Nodes {
		if !n.Ignored {
			out = append(out, axNode{Role: str(n.Role), Name: str(n.Name)})
		}
	}
	return out
}

// checkboxJS measures every checkbox on the page against its label's text
// (what follows the box inside its label).
const checkboxJS = `Array.from(document.querySelectorAll("main input[type=checkbox]")).map((box) => {
  const label = box.closest("label");
  const text = document.createRange();
  text.selectNodeContents(label);
  text.setStartAfter(box);
  const lines = Array.from(text.getClientRects()).filter((r) => r.width > 0);
  const b = box.getBoundingClientRect();
  const first = lines[0] || {left: 0, top: 0, bottom: 0};
  return {name: box.name, width: b.width, left: b.left, right: b.right, top: b.top, bottom: b.bottom,
    textLeft: Math.min(...lines.map((r) => r.left)), textTop: first.top, textBottom: first.bottom};
})`

type checkboxBox struct {
	Name                                                           string
	Width, Left, Right, Top, Bottom, TextLeft, TextTop, TextBottom float64
}

// checkBoxesBesideLabels asserts that each checkbox on the page is a small
// box on the first line of its label, left of the text.
func (c *chrome) checkBoxesBesideLabels(page string, want int) {
	c.t.Helper()
	boxes := eval[[]checkboxBox](c, "measure checkboxes on "+page, checkboxJS)
	if len(boxes) != want {
		c.t.Errorf("%s: %d checkboxes, want %d", page, len(boxes), want)
	}
	for _, b := range boxes {
		middle := (b.Top + b.Bottom) / 2
		if b.Width > 24 || b.Right > b.TextLeft || middle < b.TextTop || middle > b.TextBottom {
			c.t.Errorf("%s: the box %s is not beside its label: box %.0f px wide at %.0f–%.0f (x) %.0f–%.0f (y); text from x=%.0f, first line %.0f–%.0f",
				page, b.Name, b.Width, b.Left, b.Right, b.Top, b.Bottom, b.TextLeft, b.TextTop, b.TextBottom)
		}
	}
}

// Checkboxes sit beside their labels on the admin forms and the allowlist,
// on a desktop and on a phone.
func TestBrowserCheckboxesBesideLabels(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("root", true)
	c.signIn(base, "root")
	c.waitFor("home", ".portal-nav")
	for _, width := range []int64{1100, narrowWidth} {
		c.do("viewport", chromedp.EmulateViewport(width, 800))
		where := fmt.Sprintf(" at %d px", width)
		c.waitFor("LDAP form", "#d-url", chromedp.Navigate(base+"/admin/directories/new"))
		c.checkBoxesBesideLabels("the LDAP directory form"+where, 3)
		c.waitFor("upstream form", "#u-issuer", chromedp.Navigate(base+"/admin/upstreams/new"))
		c.checkBoxesBesideLabels("the upstream provider form"+where, 3)
		c.waitFor("app access", "#allowed_networks", chromedp.Navigate(base+"/security/access"))
		c.waitFor("an allowlist without this address", `input[name="confirm_lockout"]`,
			chromedp.SetValue(chromedp.ID("allowed_networks"), "192.0.2.0/24"),
			chromedp.Click(chromedp.CSS(`form[action^="/security/allowlist"] button[type="submit"]`)))
		c.checkBoxesBesideLabels("the allowlist"+where, 1)
	}
}

// The lock-out warning of the allowlist is beside the box that saves the
// list anyway, and the page opens there, not 2,000 px above it.
func TestBrowserLockoutWarningBesideItsBox(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	alice := srv.createUser("alice", false)
	// Enough on the page above the allowlist to push it down.
	for i := 0; i < 6; i++ {
		if _, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(context.Background(), alice, fmt.Sprintf("Mail app %d", i), ""); err != nil {
			t.Fatal(err)
		}
	}
	c.signIn(base, "alice")
	c.waitFor("home", ".portal-nav")
	c.waitFor("app access", "#allowed_networks", chromedp.Navigate(base+"/security/access"))
	c.waitFor("an allowlist without this address", `input[name="confirm_lockout"]`,
		chromedp.SetValue(chromedp.ID("allowed_networks"), "192.0.2.0/24"),
		chromedp.Click(chromedp.CSS(`form[action^="/security/allowlist"] button[type="submit"]`)))
	type box struct{ Top, Bottom, ViewHeight, PageHeight float64 }
	// The warning is found by its words, wherever the page puts it.
	warning := eval[box](c, "find the warning", `(() => {
	  const says = (e) => e.textContent.includes("is not in this list");
	  const el = Array.from(document.querySelectorAll("main *")).find((e) => says(e) && !Array.from(e.children).some(says));
	  const r = el.getBoundingClientRect();
	  return {top: r.top, bottom: r.bottom, viewHeight: window.innerHeight, pageHeight: document.documentElement.scrollHeight};
	})()`)
	checkbox := eval[box](c, "find the box", `(() => {
	  const r = document.querySelector('input[name="confirm_lockout"]').getBoundingClientRect();
	  return {top: r.top, bottom: r.bottom, viewHeight: window.innerHeight};
	})()`)
	t.Logf("page %.0f px tall; warning at %.0f–%.0f, box at %.0f–%.0f (viewport 0–%.0f)", warning.PageHeight, warning.Top, warning.Bottom, checkbox.Top, checkbox.Bottom, warning.ViewHeight)
	if gap := checkbox.Top - warning.Bottom; gap < 0 || gap > 40 {
		t.Errorf("the warning ends %.0f px above its box", gap)
	}
	for name, b := range map[string]box{"warning": warning, "box": checkbox} {
		if b.Top < 0 || b.Bottom > b.ViewHeight {
			t.Errorf("the %s is out of view after saving: %.0f–%.0f, viewport 0–%.0f", name, b.Top, b.Bottom, b.ViewHeight)
		}
	}

	// Saved: the page opens at the allowlist again, and says so there.
	c.waitFor("save an allowlist with this address", `[role="status"].notice`,
		chromedp.SetValue(chromedp.ID("allowed_networks"), "127.0.0.0/8\n::1/128"),
		chromedp.Click(chromedp.CSS(`form[action^="/security/allowlist"] button[type="submit"]`)))
	type notice struct {
		Text                    string
		Top, Bottom, ViewHeight float64
		ScrollY                 float64
		InSection               bool
	}
	saved := eval[notice](c, "find the notice", `(() => {
	  const n = document.querySelector('[role="status"].notice');
	  const r = n.getBoundingClientRect();
	  return {text: n.textContent.trim(), top: r.top, bottom: r.bottom, viewHeight: window.innerHeight, scrollY: window.scrollY,
	    inSection: n.closest("section") !== null && n.closest("section").contains(document.getElementById("allowed_networks"))};
	})()`)
	t.Logf("saved: scrolled %.0f px; notice %q at %.0f–%.0f (viewport 0–%.0f)", saved.ScrollY, saved.Text, saved.Top, saved.Bottom, saved.ViewHeight)
	if saved.Text != "Your IP allowlist was saved." || !saved.InSection || saved.Top < 0 || saved.Bottom > saved.ViewHeight {
		t.Errorf("after saving, the notice %q (in the allowlist's section: %v) is at %.0f–%.0f, viewport 0–%.0f", saved.Text, saved.InSection, saved.Top, saved.Bottom, saved.ViewHeight)
	}
	if got := srv.user(alice.ID).AllowedNetworks; len(got) != 2 {
		t.Errorf("saved allowlist: %q", got)
	}
}

// The profile page is compact on a desktop: each field has one short line
// under it, and where its value comes from and who sees it open on demand.
func TestBrowserProfileIsCompact(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	c.signIn(base, "alice")
	c.waitFor("home", ".portal-nav")
	c.waitFor("profile", "#f-given_name", chromedp.Navigate(base+"/profile"))
	type field struct {
		Key                               string
		RowHeight, MetaHeight, LineHeight float64
		SourceShown                       bool
	}
	fields := eval[[]field](c, "measure the profile's fields", `Array.from(document.querySelectorAll(".profile-field")).map((f) => {
	  const meta = f.querySelector(".field-meta");
	  const texts = document.createTreeWalker(f, NodeFilter.SHOW_TEXT);
	  let shown = false;
	  for (let n = texts.nextNode(); n; n = texts.nextNode()) {
	    if ((n.data.includes("Source:") || n.data.includes("Seen by:")) && n.parentElement.checkVisibility()) shown = true;
	  }
	  const summary = meta && (meta.querySelector("summary") || meta);
	  return {key: f.querySelector("label").htmlFor, rowHeight: f.getBoundingClientRect().height, metaHeight: meta ? meta.getBoundingClientRect().height : 0,
	    lineHeight: summary ? parseFloat(getComputedStyle(summary).lineHeight) : 0, sourceShown: shown};
	})`)
	if len(fields) < 15 {
		t.Fatalf("%d profile fields", len(fields))
	}
	for _, f := range fields {
		// Before: a row of 104 px, the value and two lines about it.
		if f.RowHeight > 60 || f.MetaHeight == 0 || f.MetaHeight > 1.5*f.LineHeight || f.SourceShown {
			t.Errorf("%s: a row of %.0f px with %.0f px about the field (a line is %.0f px); source shown before asking: %v", f.Key, f.RowHeight, f.MetaHeight, f.LineHeight, f.SourceShown)
		}
	}
	height := eval[float64](c, "page height", `document.documentElement.scrollHeight`)
	t.Logf("profile page: %.0f px tall at 1100 px", height)
	if height > 2200 { // 3,037 px before
		t.Errorf("the profile page is %.0f px tall", height)
	}
	// The details are one click away.
	c.waitFor("open a field's details", `.profile-field:nth-of-type(3) details.field-meta[open]`,
		chromedp.Click(chromedp.CSS(`.profile-field:nth-of-type(3) .field-meta summary`)))
	if shown := eval[bool](c, "details shown", `(() => {
	  const d = document.querySelector(".profile-field:nth-of-type(3) .field-meta");
	  return d.open && d.textContent.includes("Source:") && d.textContent.includes("Seen by:") && d.querySelector("p").checkVisibility();
	})()`); !shown {
		t.Error("a field's source and audience do not open")
	}
}

// copyAndRead clicks the copy button of the element id and returns what
// the clipboard then holds, and the text the page selected.
func (c *chrome) copyAndRead(id string) (clipboard, selection string) {
	c.t.Helper()
	button := `button[data-copy="` + id + `"]`
	c.waitFor("copy button of #"+id, button)
	c.do("copy #"+id, chromedp.Click(chromedp.CSS(button)),
		chromedp.WaitVisible(chromedp.CSS(`#`+id+`-status`)))
	clipboard, err := chromedp.Run(c.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	if err != nil {
		c.t.Fatalf("read the clipboard: %v", err)
	}
	selection = eval[string](c, "selection", `window.getSelection().toString()`)
	if status := c.text("#" + id + "-status"); status != "Copied." {
		c.t.Errorf("#%s: the page says %q after copying", id, status)
	}
	return clipboard, selection
}

// Copy buttons copy the authenticator key, the recovery codes, a new app
// password and a new API token; without JavaScript there is no button,
// and the value is there to select.
func TestBrowserCopyButtons(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(c.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name}, Setting: cdpbrowser.PermissionSettingGranted, Origin: base}); err != nil {
			t.Fatalf("allow %s: %v", name, err)
		}
	}
	c.signIn(base, "alice")
	c.waitFor("home", ".portal-nav")

	// Without scripts: no button that does nothing, and the key selectable.
	if _, err := chromedp.Call(c.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
		t.Fatal(err)
	}
	c.waitFor("start TOTP without scripts", "#totp-secret", chromedp.Navigate(base+"/security"),
		chromedp.Click(chromedp.CSS(`form[action="/security/totp/begin"] button`)))
	if shown := eval[bool](c, "button without scripts", `document.querySelector('button[data-copy="totp-secret"]').checkVisibility()`); shown {
		t.Error("a copy button shows without JavaScript")
	}
	if sel := eval[string](c, "user-select", `getComputedStyle(document.getElementById("totp-secret")).userSelect`); sel != "all" {
		t.Errorf("the key is not selectable in one click: user-select %q", sel)
	}
	if _, err := chromedp.Call(c.ctx, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: false}); err != nil {
		t.Fatal(err)
	}

	c.waitFor("the set-up with scripts", "#totp-secret", chromedp.Navigate(base+"/security"))
	secret := c.text("#totp-secret")
	if got, sel := c.copyAndRead("totp-secret"); got != secret || sel != secret {
		t.Errorf("copied the key as %q (selected %q), want %q", got, sel, secret)
	}
	c.waitFor("confirm TOTP", "#recovery-codes",
		chromedp.SendKeys(chromedp.ID("totp-code"), totpCode(t, secret, time.Now())),
		chromedp.Click(chromedp.CSS(`form[action="/security/totp/confirm"] button`)))
	codes := eval[[]string](c, "recovery codes", `Array.from(document.querySelectorAll("#recovery-codes li")).map((li) => li.textContent.trim())`)
	if got, _ := c.copyAndRead("recovery-codes"); len(codes) != account.RecoveryCodeCount || got != strings.Join(codes, "\n") {
		t.Errorf("copied the recovery codes as %q, want %q", got, codes)
	}

	c.waitFor("app access", "#ap_name", chromedp.Navigate(base+"/security/access"))
	c.waitFor("new app password", "#new-secret",
		chromedp.SendKeys(chromedp.ID("ap_name"), "Mail"),
		chromedp.Click(chromedp.CSS(`form[action="/security/app-passwords"] button[type="submit"]`)))
	if got, _ := c.copyAndRead("new-secret"); got == "" || got != c.text("#new-secret") {
		t.Errorf("copied the app password as %q, the page shows %q", got, c.text("#new-secret"))
	}
	c.waitFor("app access", "#tok-name", chromedp.Navigate(base+"/security/access"))
	c.waitFor("new API token", "#new-secret",
		chromedp.SendKeys(chromedp.ID("tok-name"), "script"),
		chromedp.Click(chromedp.CSS(`form[action="/security/api-tokens"] button[type="submit"]`)))
	token, _ := c.copyAndRead("new-secret")
	if token != c.text("#new-secret") {
		t.Errorf("copied the API token as %q, the page shows %q", token, c.text("#new-secret"))
	}
	if status, _, me := apiCall(t, srv, http.MethodGet, "/api/v1/me", token, "", ""); status != http.StatusOK || me["username"] != "alice" {
		t.Errorf("the copied token does not work: %d %v", status, me)
	}
}

// A browser that uploads a 1.3 MB picture stays on the profile page, with
// the message beside the upload field, and can try again from there.
func TestBrowserTooLargeAvatar(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	alice := srv.createUser("alice", false)
	file := filepath.Join(t.TempDir(), "holiday.png")
	if err := os.WriteFile(file, append(pngImage(t, 4, 4), make([]byte, 1300*1000)...), 0o600); err != nil {
		t.Fatal(err)
	}
	c.signIn(base, "alice")
	c.waitFor("home", ".portal-nav")
	c.waitFor("profile", "#avatar-file", chromedp.Navigate(base+"/profile"))
	c.waitFor("upload 1.3 MB", `section[aria-labelledby="avatar-heading"] .field-error`,
		chromedp.SetUploadFiles(chromedp.ID("avatar-file"), []string{file}),
		chromedp.Click(chromedp.CSS(`form[action="/profile/avatar"] button[type="submit"]`)))
	if msg := c.text(`section[aria-labelledby="avatar-heading"] .field-error`); msg != "The image is too large: at most 1 MiB." {
		t.Errorf("message beside the upload: %q", msg)
	}
	if h1 := c.text("main h1"); h1 != "Your profile" {
		t.Errorf("after the upload: %q", h1)
	}
	if !srv.user(alice.ID).AvatarAt.IsZero() {
		t.Error("the upload set an avatar")
	}
	// The form is there to try again with a smaller picture.
	small := filepath.Join(t.TempDir(), "small.png")
	if err := os.WriteFile(small, pngImage(t, 40, 40), 0o600); err != nil {
		t.Fatal(err)
	}
	c.waitFor("upload a small picture", ".notice",
		chromedp.SetUploadFiles(chromedp.ID("avatar-file"), []string{small}),
		chromedp.Click(chromedp.CSS(`form[action="/profile/avatar"] button[type="submit"]`)))
	if srv.user(alice.ID).AvatarAt.IsZero() {
		t.Error("the second upload did not set the avatar")
	}
}

// tourHook is the ID of userID's first webhook (portalWithEverything
// makes one).
func tourHook(t *testing.T, srv *testServer, userID string) string {
	t.Helper()
	hooks, err := srv.Main.Store.ListWebhooksOf(context.Background(), userID)
	if err != nil || len(hooks) == 0 {
		t.Fatalf("the tour's webhook: %v %v", hooks, err)
	}
	return hooks[0].ID
}
