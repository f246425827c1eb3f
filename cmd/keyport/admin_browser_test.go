package main

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
)

// TestAdminConsoleInChromium drives the admin console in Chromium as an
// administrator would, through its menu, forms and buttons, and checks each
// action where it matters: in the store and with a real relying party. It
// finds a user by part of their name, blocks them (their tokens stop
// working and their next sign-in fails) and unblocks them, resets their
// second factor, creates a group with the user in it and an app
// restricted to that group, and rotates the app's secret with a grace period in which
// both secrets work.
func TestAdminConsoleInChromium(t *testing.T) {
	browser := newChrome(t)
	// in hands step t the one Chromium, so that a failed action fails
	// that step.
	in := func(t *testing.T) *chrome {
		c := *browser
		c.t = t
		return &c
	}
	srv, base := startLocalhostServer(t, nil)
	ctx := context.Background()
	srv.createUser("root", true)
	newUser := func(username, name string) string {
		u, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: username, Email: username + "@example.com", Name: name, Password: testPassword})
		if err != nil {
			t.Fatalf("create %s: %v", username, err)
		}
		return u.ID
	}
	gina := newUser("gina", "Regina Falkenrath")
	newUser("gino", "Gino Falk") // close, but not what the admin types
	newUser("bob", "Bob Builder")

	// An app the user already signs in to, with refresh tokens.
	portalApp := srv.createClient(account.NewClient{ID: "portal-app", SkipConsent: true})
	portalApp.oauth.Scopes = append(portalApp.oauth.Scopes, oidc.ScopeOfflineAccess)

	userPage := base + "/admin/users/" + gina
	// clickAction presses one of the user page's action buttons and waits
	// for the page it redirects to, which names the action done.
	clickAction := func(c *chrome, action, done string) {
		c.t.Helper()
		c.do("press "+action,
			chromedp.Click(chromedp.CSS(`#user-actions form[action="/admin/users/`+gina+`/`+action+`"] button`)))
		c.waitLocation(userPage + "?done=" + done)
		c.do("the user page after "+action, chromedp.WaitVisible(chromedp.ID("notice")))
	}

	// Each step starts where the previous one left the browser and the
	// data, so the test stops at the first step that fails.
	if !t.Run("find the user", func(t *testing.T) {
		c := in(t)
		c.signIn(base, "root")
		c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
		c.do("open the console", chromedp.Click(chromedp.CSS(`.portal-nav a[href="/admin"]`)), chromedp.WaitVisible(chromedp.CSS(".admin-nav")))
		c.do("open Users", chromedp.Click(chromedp.CSS(`.admin-nav a[href="/admin/users"]`)), chromedp.WaitVisible(chromedp.ID("s-q")))
		c.do("search for part of the name",
			chromedp.SendKeys(chromedp.ID("s-q"), "falken"),
			chromedp.Click(chromedp.CSS(`#user-search button[type="submit"]`)))
		c.waitLocation(base + "/admin/users?q=falken")
		c.do("the results", chromedp.WaitVisible(chromedp.ID("users")))
		found := eval[[]string](c, "read the results", `Array.from(document.querySelectorAll("#users tbody a")).map(a => a.getAttribute("href"))`)
		if !slices.Equal(found, []string{"/admin/users/" + gina}) {
			t.Fatalf("searching for %q found %v, want only gina (%s)", "falken", found, gina)
		}
		c.do("open the user", chromedp.Click(chromedp.CSS(`#users a[href="/admin/users/`+gina+`"]`)), chromedp.WaitVisible(chromedp.ID("user-actions")))
		if loc := c.location(); loc != userPage {
			t.Fatalf("the result led to %s, want %s", loc, userPage)
		}
		if h := c.text("main h1"); h != "Regina Falkenrath" {
			t.Errorf("user page titled %q", h)
		}
	}) {
		return
	}

	if !t.Run("block and unblock", func(t *testing.T) {
		c := in(t)
		tok := portalApp.tokens("gina")
		if access, refresh := portalApp.works(tok); !access || !refresh {
			t.Fatalf("before the block: access token works %v, refresh token works %v", access, refresh)
		}
		clickAction(c, "block", "blocked")
		if !srv.user(gina).Blocked {
			t.Fatal("the Block button did not block the stored user")
		}
		if access, refresh := portalApp.works(tok); access || refresh {
			t.Errorf("after the block: access token works %v, refresh token works %v", access, refresh)
		}
		if _, err := srv.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "gina", Password: testPassword, IP: "127.0.0.1"}); err == nil {
			t.Error("a blocked user's password is accepted")
		}
		// Her next sign-in at the app, in a new browser, stays on the
		// sign-in page saying why, and the app gets no code.
		b := newBrowser(t)
		p := portalApp.finish(b, portalApp.authorize(b, "st-blocked"), "gina")
		if !isLoginPage(p) || p.Status < 400 || strings.Contains(p.Location, "code=") {
			t.Fatalf("a blocked user's sign-in: %s", p)
		}
		if !strings.Contains(p.Body, "This account is disabled. Please contact your administrator.") {
			t.Errorf("the sign-in page does not say the account is blocked: %s", p)
		}

		clickAction(c, "unblock", "unblocked")
		if srv.user(gina).Blocked {
			t.Fatal("the Unblock button did not unblock the stored user")
		}
		if _, err := srv.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "gina", Password: testPassword, IP: "127.0.0.1"}); err != nil {
			t.Errorf("sign-in after the unblock: %v", err)
		}
	}) {
		return
	}

	if !t.Run("reset the second factor", func(t *testing.T) {
		c := in(t)
		withTOTP(t, srv, "gina")
		if u := srv.user(gina); len(u.TOTPSecret) == 0 || len(u.RecoveryCodes) == 0 {
			t.Fatalf("gina has no second factor to reset: %d-byte secret, %d recovery codes", len(u.TOTPSecret), len(u.RecoveryCodes))
		}
		c.do("reload the user page", chromedp.Navigate(userPage), chromedp.WaitVisible(chromedp.ID("user-actions")))
		if facts := c.text("#facts"); !strings.Contains(facts, "authenticator app") {
			t.Errorf("the user page does not show the authenticator app: %q", facts)
		}
		// It asks first: the reset removes the factors for good.
		c.do("ask to reset the second factors",
			chromedp.Click(chromedp.CSS(`#user-actions a[href="/admin/users/`+gina+`/reset-2fa"]`)),
			chromedp.WaitVisible(chromedp.CSS(`form[action="/admin/users/`+gina+`/reset-2fa"]`)))
		if u := srv.user(gina); len(u.TOTPSecret) == 0 {
			t.Fatal("opening the question already reset the second factors")
		}
		c.do("confirm the reset", chromedp.Click(chromedp.CSS(`form[action="/admin/users/`+gina+`/reset-2fa"] button[type="submit"]`)))
		c.waitLocation(userPage + "?done=reset-2fa")
		c.do("the user page after the reset", chromedp.WaitVisible(chromedp.ID("notice")))
		if u := srv.user(gina); len(u.TOTPSecret) != 0 || len(u.RecoveryCodes) != 0 {
			t.Fatalf("after the reset: %d-byte TOTP secret, %d recovery codes stored", len(u.TOTPSecret), len(u.RecoveryCodes))
		}
		if facts := c.text("#facts"); strings.Contains(facts, "authenticator app") {
			t.Errorf("the user page still shows the authenticator app: %q", facts)
		}
		// She signs in with her password alone again.
		signInPortal(t, srv, newBrowser(t), "gina")
	}) {
		return
	}

	if !t.Run("a group", func(t *testing.T) {
		c := in(t)
		c.do("open Groups", chromedp.Click(chromedp.CSS(`.admin-nav a[href="/admin/groups"]`)), chromedp.WaitVisible(chromedp.ID("create-group")))
		c.do("create staff",
			chromedp.SendKeys(chromedp.ID("g-name"), "staff"),
			chromedp.SendKeys(chromedp.ID("g-description"), "Everyone on the payroll"),
			chromedp.Click(chromedp.CSS(`#create-group button[type="submit"]`)))
		if loc := c.waitLocation(base + "/admin/groups/"); !strings.HasSuffix(loc, "?done=created") {
			t.Fatalf("creating the group led to %s", loc)
		}
		groups, err := srv.Main.Store.ListGroups(ctx)
		if err != nil || len(groups) != 1 || groups[0].Name != "staff" || groups[0].Description != "Everyone on the payroll" {
			t.Fatalf("stored groups after the form: %+v (%v)", groups, err)
		}
		// gina joins it on the group's page, by username.
		c.do("add gina",
			chromedp.WaitVisible(chromedp.ID("add-member")),
			chromedp.SendKeys(chromedp.ID("g-login"), "gina"),
			chromedp.Click(chromedp.CSS(`#add-member button[type="submit"]`)))
		c.waitLocation(base + "/admin/groups/" + groups[0].ID + "?done=added")
		if g := srv.user(gina).Groups; !slices.Equal(g, []string{"staff"}) {
			t.Fatalf("gina's stored groups after joining: %v", g)
		}
		c.do("the group's page after adding", chromedp.WaitVisible(chromedp.ID("notice")))
		members := eval[[]string](c, "read the members", `Array.from(document.querySelectorAll("#members tbody a")).map(a => a.getAttribute("href"))`)
		if !slices.Equal(members, []string{"/admin/users/" + gina}) {
			t.Errorf("the group's page lists %v, want gina", members)
		}
	}) {
		return
	}

	const redirect = "http://127.0.0.1:9/callback/wiki"
	var wiki *testClient
	if !t.Run("an app for a group", func(t *testing.T) {
		c := in(t)
		c.do("open Apps", chromedp.Click(chromedp.CSS(`.admin-nav a[href="/admin/apps"]`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/admin/apps/new"]`)))
		c.do("open the new-app form", chromedp.Click(chromedp.CSS(`a[href="/admin/apps/new"]`)), chromedp.WaitVisible(chromedp.ID("a-id")))
		c.do("fill in the app",
			chromedp.SendKeys(chromedp.ID("a-id"), "wiki"),
			chromedp.SendKeys(chromedp.ID("a-name"), "Team Wiki"),
			chromedp.SetValue(chromedp.ID("a-redirect_uris"), redirect),
			chromedp.Click(chromedp.CSS(`input[name="grant_types"][value="client_credentials"]`)),
			chromedp.SendKeys(chromedp.ID("a-allowed_groups"), "staff"),
			chromedp.Click(chromedp.CSS(`input[name="skip_consent"]`)),
			chromedp.Click(chromedp.CSS(`#app-form button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.ID("new-secret")),
		)
		secret := c.text("#new-secret")
		stored, err := srv.Main.Store.GetClient(ctx, "wiki")
		if err != nil {
			t.Fatalf("the form created no app: %v", err)
		}
		if !slices.Equal(stored.AllowedGroups, []string{"staff"}) || !slices.Equal(stored.RedirectURIs, []string{redirect}) || !stored.SkipConsent ||
			!slices.Contains(stored.GrantTypes, account.GrantClientCredentials) || !slices.Contains(stored.GrantTypes, account.GrantAuthorizationCode) {
			t.Fatalf("stored app: %+v", stored)
		}
		wiki = srv.rp("wiki", secret, redirect)

		// The member gets tokens for herself.
		tok := wiki.tokens("gina")
		if claims := idTokenClaims(t, wiki, tok); claims["sub"] != gina {
			t.Fatalf("the member's ID token: %v", claims)
		}
		if status, _, info := srv.userinfo(tok.AccessToken); status != http.StatusOK || info["sub"] != gina {
			t.Fatalf("the member's access token at userinfo: %d %v", status, info)
		}

		// bob, not a member, is told after signing in, and going on takes
		// him back to the app with access_denied.
		b := newBrowser(t)
		p := wiki.finish(b, wiki.authorize(b, "st-bob"), "bob")
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Your account is not allowed to use Team Wiki.") {
			t.Fatalf("the non-member after signing in: %s", p)
		}
		back, ok := parsePage(t, p.Body).first("a", "class", "button button-secondary")
		if !ok {
			t.Fatalf("no way back to the app on the page: %s", p)
		}
		to, _ := p.URL.Parse(back.attr("href"))
		if res := landed(t, b.get(to.String()), redirect); res.Error != "access_denied" || res.Code != "" || res.State != "st-bob" {
			t.Fatalf("the app got %+v for the non-member, want access_denied", res)
		}
	}) {
		return
	}

	t.Run("rotate the secret with a grace", func(t *testing.T) {
		c := in(t)
		old := wiki.Secret
		c.do("open the app's page", chromedp.Navigate(base+"/admin/apps/wiki"), chromedp.WaitVisible(chromedp.ID("rotate-secret")))
		c.do("rotate with a day's grace",
			chromedp.SetValue(chromedp.ID("a-grace"), "1"),
			chromedp.SetValue(chromedp.ID("a-grace_unit"), "days"),
			chromedp.Click(chromedp.CSS(`#rotate-secret button[type="submit"]`)),
			chromedp.WaitVisible(chromedp.ID("new-secret")),
		)
		fresh := c.text("#new-secret")
		if fresh == "" || fresh == old {
			t.Fatalf("the page shows %q as the new secret (the old one was %q)", fresh, old)
		}
		stored, err := srv.Main.Store.GetClient(ctx, "wiki")
		if err != nil {
			t.Fatal(err)
		}
		if until := time.Until(stored.PreviousSecretUntil); until < 23*time.Hour || until > 25*time.Hour {
			t.Errorf("the old secret works until %v, want a day from now", stored.PreviousSecretUntil)
		}
		for _, s := range []struct{ name, secret string }{{"old", old}, {"new", fresh}} {
			status, _, body := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "wiki", s.secret)
			if tok, _ := body["access_token"].(string); status != http.StatusOK || tok == "" {
				t.Errorf("client_credentials with the %s secret within the grace: %d %v", s.name, status, body)
			}
		}
		if status, _, body := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "wiki", "not-"+fresh); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("client_credentials with a wrong secret: %d %v", status, body)
		}
	})
}
