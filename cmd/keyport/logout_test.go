package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// isLogoutConfirmation tells whether p is the sign-out confirmation: a
// form that posts to /logout with the browser's CSRF token.
func isLogoutConfirmation(p page) bool {
	return p.Status == http.StatusOK && strings.Contains(p.Body, `<form class="form" method="post" action="/logout" id="logout-confirm">`) &&
		formFields(p.Body).Get("csrf_token") != ""
}

const byeApp = "http://127.0.0.1:9/bye/app"

// A request to /end_session that does not clearly come from the app the
// person signed in to (no id_token_hint for them), and GET /logout, ask
// before signing out (RP-Initiated Logout 1.0 §2) and change nothing until
// the person confirms; confirming goes on as the request would have.
// A hint for the signed-in person, or nobody signed in, needs no question.
func TestLogoutConfirmation(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("lena", false)
	srv.createUser("max", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp}})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}

	b := newBrowser(t)
	code, verifier := app.signIn(b, "lena")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	maxHint, _ := app.tokens("max").Extra("id_token").(string)
	unchanged := func(what string) {
		t.Helper()
		if !signedIn(srv, b) {
			t.Fatalf("%s signed the browser out", what)
		}
		if st, _, _ := srv.userinfo(tok.AccessToken); st != http.StatusOK {
			t.Fatalf("%s revoked the app's tokens: userinfo %d", what, st)
		}
	}

	withParams := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {byeApp}, "state": {"s1"}}
	asked := []struct {
		name, method, query string
		continueURL         string
	}{
		{"a bare GET", http.MethodGet, "", "/end_session"},
		{"a GET with the app's parameters, and one more", http.MethodGet, withParams.Encode() + "&evil=1", "/end_session?" + withParams.Encode()},
		// The cookie jar ignores SameSite and sends the cookie with this
		// POST; a browser would not (TestBrowserCrossSitePostToEndSession).
		{"a POST (a form on another site)", http.MethodPost, withParams.Encode(), "/end_session?" + withParams.Encode()},
		{"another person's hint", http.MethodGet, "id_token_hint=" + maxHint, "/end_session?id_token_hint=" + maxHint},
	}
	for _, c := range asked {
		var p page
		if c.method == http.MethodPost {
			q, _ := url.ParseQuery(c.query)
			p = b.post(srv.URL+"/end_session", q)
		} else {
			p = b.get(srv.URL + "/end_session?" + c.query)
		}
		if !isLogoutConfirmation(p) || p.URL.Path != "/end_session" {
			t.Fatalf("%s: no confirmation: %d at %s\n%s", c.name, p.Status, p.URL, truncateBody(p.Body))
		}
		if got := formFields(p.Body).Get("continue"); got != c.continueURL {
			t.Errorf("%s: continue %q, want %q", c.name, got, c.continueURL)
		}
		if !strings.Contains(p.Body, "An application asked Keyport to sign you out") {
			t.Errorf("%s: the page does not say an app asked", c.name)
		}
		unchanged(c.name)
	}
	p := b.get(srv.URL + "/logout")
	if !isLogoutConfirmation(p) || formFields(p.Body).Has("continue") {
		t.Fatalf("GET /logout: %d %s\n%s", p.Status, p.URL, truncateBody(p.Body))
	}
	unchanged("GET /logout")

	// Invalid requests are refused before anyone is asked, and sign nobody
	// out.
	for _, q := range []string{
		"client_id=app&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F",
		"id_token_hint=not.a.token",
		"client_id=nobody",
	} {
		if p := b.get(srv.URL + "/end_session?" + q); p.Status != http.StatusBadRequest || isLogoutConfirmation(p) {
			t.Errorf("end_session?%s: %d", q, p.Status)
		}
		unchanged("end_session?" + q)
	}

	// The confirmation's POST needs this browser's CSRF token, from this
	// site.
	confirm := b.get(srv.URL + "/end_session?" + withParams.Encode())
	token := formFields(confirm.Body).Get("csrf_token")
	other := newBrowser(t)
	otherToken := formFields(other.get(srv.URL + "/login").Body).Get("csrf_token")
	for _, c := range []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"no token", url.Values{"continue": {"/end_session"}}, nil},
		{"another browser's token", url.Values{"csrf_token": {otherToken}, "continue": {"/end_session"}}, nil},
		{"cross-site", url.Values{"csrf_token": {token}}, map[string]string{"Sec-Fetch-Site": "cross-site"}},
		{"from another origin", url.Values{"csrf_token": {token}}, map[string]string{"Origin": "https://evil.example"}},
	} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/logout", strings.NewReader(c.form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range c.header {
			req.Header.Set(k, v)
		}
		if p := b.do(req); p.Status != http.StatusForbidden {
			t.Errorf("confirmation with %s: %d", c.name, p.Status)
		}
		unchanged("a refused confirmation (" + c.name + ")")
	}

	// Confirming signs out and goes on: to the app's registered address,
	// with its state.
	p = b.submit(confirm, "/logout", nil)
	if p.Status != http.StatusFound || p.Location != byeApp+"?state=s1" {
		t.Fatalf("after confirming: %d %q at %s\n%s", p.Status, p.Location, p.URL, truncateBody(p.Body))
	}
	if signedIn(srv, b) {
		t.Error("still signed in after confirming")
	}

	// A hint for the person signed in: signed out at once, and the app's
	// tokens end with the session.
	b2 := newBrowser(t)
	code, verifier = app.signIn(b2, "lena")
	tok2, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := tok2.Extra("id_token").(string)
	p = b2.get(srv.URL + "/end_session?" + url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {byeApp}, "state": {"s2"}}.Encode())
	if p.Status != http.StatusFound || p.Location != byeApp+"?state=s2" || signedIn(srv, b2) {
		t.Errorf("end_session with the signed-in person's hint: %d %q", p.Status, p.Location)
	}
	if st, _, _ := srv.userinfo(tok2.AccessToken); st != http.StatusUnauthorized {
		t.Errorf("the hinted session's tokens live on: userinfo %d", st)
	}

	// Nobody signed in: nothing to ask.
	p = newBrowser(t).get(srv.URL + "/end_session?" + url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {byeApp}, "state": {"s3"}}.Encode())
	if p.Status != http.StatusFound || p.Location != byeApp+"?state=s3" {
		t.Errorf("end_session without a session: %d %q", p.Status, p.Location)
	}
	if p := newBrowser(t).get(srv.URL + "/logout"); p.Status != http.StatusOK || p.URL.Path != "/logged-out" {
		t.Errorf("GET /logout without a session: %d at %s", p.Status, p.URL)
	}
}

// Whatever the confirmation's form carries, signing out never sends the
// browser off Keyport except to an address registered for the app.
func TestLogoutConfirmationStaysOnKeyport(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("lena", false)
	srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp}})
	for _, c := range []struct {
		continueURL string
		wantPath    string
		wantStatus  int
	}{
		{"https://evil.example/", "/logged-out", http.StatusOK},
		{"//evil.example/", "/logged-out", http.StatusOK},
		{"/\\evil.example/", "/logged-out", http.StatusOK},
		{"http:evil.example", "/logged-out", http.StatusOK},
		{"/\t/evil.example/", "/logged-out", http.StatusOK},
		{"/" + strings.Repeat("a", 9000), "/logged-out", http.StatusOK},
		// A path on Keyport: the end_session request checks its own
		// parameters again, and refuses an address the app did not register.
		{"/end_session?client_id=app&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F", "/end_session", http.StatusBadRequest},
	} {
		b := newBrowser(t)
		home := signInPortal(t, srv, b, "lena")
		p := postPage(b, home, "/logout", url.Values{"continue": {c.continueURL}})
		if p.Status != c.wantStatus || p.URL.Path != c.wantPath || p.URL.Host != strings.TrimPrefix(srv.URL, "http://") {
			t.Errorf("continue %.40q: %d at %s", c.continueURL, p.Status, p.URL)
		}
		for _, v := range b.visited {
			if strings.Contains(v, "evil.example") && !strings.Contains(v, "post_logout_redirect_uri=") {
				t.Errorf("continue %.40q: the browser went to %s", c.continueURL, v)
			}
		}
		if signedIn(srv, b) {
			t.Errorf("continue %.40q: still signed in", c.continueURL)
		}
	}
}

// In Chromium: a page on another site that links or redirects to
// /end_session lands on the confirmation, and the person stays signed in
// until they confirm; confirming lands on the app's registered address.
func TestBrowserLogoutConfirmation(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	bye, byeGot := recorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<p id=bye>bye</p>")) })
	srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{bye.URL + "/bye"}})
	endSession := base + "/end_session?" + url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {bye.URL + "/bye"}, "state": {"st"}}.Encode()
	other, _ := recorder(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, endSession, http.StatusFound)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<a id="go" href="` + base + `/end_session">Sign out of Keyport</a>`))
	})
	signedIn := func() bool {
		t.Helper()
		c.do("profile", chromedp.Navigate(base+"/profile"), chromedp.WaitReady(chromedp.CSS("main")))
		return strings.HasPrefix(c.location(), base+"/profile")
	}

	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))

	c.do("a link from another site", chromedp.Navigate(other.URL+"/"), chromedp.Click(chromedp.ID("go")), chromedp.WaitVisible(chromedp.ID("logout-confirm")))
	if loc := c.location(); !strings.HasPrefix(loc, base+"/end_session") {
		t.Errorf("the link landed at %s", loc)
	}
	if !signedIn() {
		t.Fatal("the link from another site signed the user out")
	}

	c.do("a redirect from another site", chromedp.Navigate(other.URL+"/redirect"), chromedp.WaitVisible(chromedp.ID("logout-confirm")))
	if !signedIn() {
		t.Fatal("the redirect from another site signed the user out")
	}
	c.do("back to the confirmation", chromedp.Navigate(other.URL+"/redirect"), chromedp.WaitVisible(chromedp.ID("logout-confirm")))
	c.do("confirm", chromedp.Click(chromedp.CSS(`#logout-confirm button[type="submit"]`)))
	c.waitLocation(bye.URL + "/bye?state=st")
	if got := <-byeGot; got != "GET /bye" {
		t.Errorf("the app got %s", got)
	}
	if signedIn() {
		t.Error("still signed in after confirming")
	}
}

// An end_session request that arrives without the browser's cookie (a
// cross-site POST under SameSite=Lax, a browser that withholds it) ends no
// session and writes no cookie: a fresh one would replace the session the
// browser still holds, signing the person out without a question.
func TestEndSessionWithoutTheCookieWritesNone(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("lena", false)
	srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp}})
	b := newBrowser(t)
	signInPortal(t, srv, b, "lena")
	base, _ := url.Parse(srv.URL)

	for _, c := range []struct {
		method string
		form   url.Values
	}{
		{http.MethodPost, url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {byeApp}, "state": {"s1"}}},
		{http.MethodPost, nil},
		{http.MethodGet, url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {byeApp}}},
	} {
		var req *http.Request
		if c.method == http.MethodPost {
			req, _ = http.NewRequest(http.MethodPost, srv.URL+"/end_session", strings.NewReader(c.form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, _ = http.NewRequest(http.MethodGet, srv.URL+"/end_session?"+c.form.Encode(), nil)
		}
		// No jar: the request carries no cookie.
		noCookie := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		resp, err := noCookie.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusFound {
			t.Errorf("%s end_session?%s: %d", c.method, c.form.Encode(), resp.StatusCode)
		}
		if got := resp.Header.Values("Set-Cookie"); len(got) != 0 {
			t.Errorf("%s end_session?%s without a cookie sets %q", c.method, c.form.Encode(), got)
		}
		// What the browser would store from that answer.
		b.client.Jar.SetCookies(base, resp.Cookies())
		if !signedIn(srv, b) {
			t.Fatalf("%s end_session?%s without the cookie signed the browser out", c.method, c.form.Encode())
		}
	}
}

// RP-Initiated Logout 1.0 §2 lets an expired ID token serve as the hint:
// it still says which app and which person the request comes from. An
// expired hint for the person signed in signs them out at once, like a
// fresh one; an expired hint for someone else asks first.
func TestLogoutWithExpiredHint(t *testing.T) {
	// ID tokens that expire as they are issued.
	srv := startServer(t, "", func(c *config.Config) { c.Tokens.ID = config.Duration{Duration: time.Millisecond} })
	srv.createUser("lena", false)
	srv.createUser("max", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp}})
	expiredHint := func(tok *oauth2.Token) string {
		t.Helper()
		hint, _ := tok.Extra("id_token").(string)
		parts := strings.Split(hint, ".")
		if len(parts) != 3 {
			t.Fatalf("no ID token: %q", hint)
		}
		payload, err := base64.RawURLEncoding.DecodeString(parts[1])
		var claims struct {
			Exp int64 `json:"exp"`
		}
		if err != nil || json.Unmarshal(payload, &claims) != nil || claims.Exp == 0 {
			t.Fatalf("ID token claims: %s %v", payload, err)
		}
		// zitadel counts a token as expired from its exp second on.
		for !time.Now().After(time.Unix(claims.Exp, 0)) {
			time.Sleep(time.Millisecond)
		}
		return hint
	}

	b := newBrowser(t)
	code, verifier := app.signIn(b, "lena")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	lenaHint := expiredHint(tok)
	maxHint := expiredHint(app.tokens("max"))

	p := b.get(srv.URL + "/end_session?" + url.Values{"id_token_hint": {maxHint}, "post_logout_redirect_uri": {byeApp}, "state": {"s1"}}.Encode())
	if !isLogoutConfirmation(p) || !signedIn(srv, b) {
		t.Fatalf("another person's expired hint: %d at %s, signed in %v", p.Status, p.URL, signedIn(srv, b))
	}
	p = b.get(srv.URL + "/end_session?" + url.Values{"id_token_hint": {lenaHint}, "post_logout_redirect_uri": {byeApp}, "state": {"s2"}}.Encode())
	if p.Status != http.StatusFound || p.Location != byeApp+"?state=s2" {
		t.Errorf("the signed-in person's expired hint: %d %q at %s\n%s", p.Status, p.Location, p.URL, truncateBody(p.Body))
	}
	if signedIn(srv, b) {
		t.Error("still signed in after an end_session with the person's expired hint")
	}
}

// The confirmation is asked for only while someone is signed in; when the
// session ended between the provider's question and the page (signed out
// in another tab, "sign out everywhere"), there is nothing to confirm and
// the request goes on as it would for nobody signed in.
func TestLogoutPromptAfterSessionEnded(t *testing.T) {
	srv := startServer(t, "", nil)
	lena := srv.createUser("lena", false)
	srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp}})
	b := newBrowser(t)
	signInPortal(t, srv, b, "lena")
	continueURL := "/end_session?" + url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {byeApp}}.Encode()
	prompt := func() *httptest.ResponseRecorder {
		t.Helper()
		req := httptest.NewRequest(http.MethodGet, srv.URL+continueURL, nil)
		u, _ := url.Parse(srv.URL)
		for _, c := range b.client.Jar.Cookies(u) {
			req.AddCookie(c)
		}
		rec := httptest.NewRecorder()
		srv.Main.Portal.LogoutPrompt(rec, req, continueURL)
		return rec
	}

	if rec := prompt(); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `id="logout-confirm"`) {
		t.Fatalf("signed in: %d\n%s", rec.Code, truncateBody(rec.Body.String()))
	}
	if err := srv.Main.Accounts.SignIn.SignOutEverywhere(context.Background(), lena.ID); err != nil {
		t.Fatal(err)
	}
	rec := prompt()
	if rec.Code != http.StatusFound || rec.Header().Get("Location") != continueURL || strings.Contains(rec.Body.String(), `id="logout-confirm"`) {
		t.Errorf("after the session ended: %d Location %q", rec.Code, rec.Header().Get("Location"))
	}
	// Going on runs the request as for nobody signed in.
	if p := b.get(srv.URL + rec.Header().Get("Location")); p.Status != http.StatusFound || p.Location != byeApp {
		t.Errorf("going on: %d %q", p.Status, p.Location)
	}
}

// The confirmation of an app's end_session request speaks the language the
// app asked for with ui_locales (RP-Initiated Logout 1.0 §2), ahead of the
// browser's Accept-Language; a language the person chose in their profile
// comes first, as in Keycloak.
func TestLogoutConfirmationLanguage(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("lena", false)
	maxUser := srv.createUser("max", false)
	if _, err := srv.Main.Store.UpdateUser(context.Background(), maxUser.ID, func(u storage.User) (storage.User, error) {
		u.Locale = "en"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp}})
	lena, maxB := newBrowser(t), newBrowser(t)
	signInPortal(t, srv, lena, "lena")
	signInPortal(t, srv, maxB, "max")
	for _, c := range []struct {
		name           string
		b              *browser
		uiLocales      string
		acceptLanguage string
		want           string
	}{
		{"ui_locales", lena, "de", "en-US,en;q=0.9", "de"},
		{"ui_locales, first one Keyport speaks", lena, "fr-CA de-CH en", "en-US,en;q=0.9", "de"},
		{"ui_locales Keyport does not speak", lena, "fr ja", "de-DE,de;q=0.9", "de"},
		{"ui_locales over Accept-Language", lena, "en", "de-DE,de;q=0.9", "en"},
		{"no ui_locales", lena, "", "de-DE,de;q=0.9", "de"},
		{"the profile's language first", maxB, "de", "de-DE,de;q=0.9", "en"},
	} {
		q := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {byeApp}}
		if c.uiLocales != "" {
			q.Set("ui_locales", c.uiLocales)
		}
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/end_session?"+q.Encode(), nil)
		req.Header.Set("Accept-Language", c.acceptLanguage)
		p := c.b.do(req)
		if !isLogoutConfirmation(p) {
			t.Fatalf("%s: no confirmation: %d at %s", c.name, p.Status, p.URL)
		}
		heading := map[string]string{"en": "Sign out?", "de": "Abmelden?"}[c.want]
		h1, _ := parsePage(t, p.Body).first("h1")
		if !strings.Contains(p.Body, `<html lang="`+c.want+`"`) || h1.text() != heading {
			t.Errorf("%s: page in the wrong language (want %s): h1 %q", c.name, c.want, h1.text())
		}
		if got := formFields(p.Body).Get("continue"); c.uiLocales != "" && !strings.Contains(got, "ui_locales="+url.QueryEscape(c.uiLocales)) {
			t.Errorf("%s: the confirmation's continue %q loses ui_locales", c.name, got)
		}
	}
}
