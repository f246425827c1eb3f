package main

import (
	"html/template"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
)

// Requests another site starts can arrive without the browser's Keyport
// cookie: a cross-site POST under SameSite=Lax, any cross-site navigation
// under SameSite=Strict. They are sent once around through Keyport (a page
// whose Refresh header repeats them as a same-origin navigation), so that
// they come back with the cookie (portal/hop.go).

// fetchMetadata are the headers of a browser's request.
func fetchMetadata(site, mode, dest string) map[string]string {
	return map[string]string{"Sec-Fetch-Site": site, "Sec-Fetch-Mode": mode, "Sec-Fetch-Dest": dest}
}

var (
	crossSiteNavigation  = fetchMetadata("cross-site", "navigate", "document")
	sameOriginNavigation = fetchMetadata("same-origin", "navigate", "document")
)

// rawRequest sends one request without following redirects or Refresh
// headers; cookie, when set, is sent as the browser's Keyport cookie.
func rawRequest(t *testing.T, method, u string, form url.Values, header map[string]string, cookie *http.Cookie) *http.Response {
	t.Helper()
	var req *http.Request
	if method == http.MethodPost {
		req, _ = http.NewRequest(method, u, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req, _ = http.NewRequest(method, u, nil)
	}
	for k, v := range header {
		if k == "Host" {
			req.Host = v
			continue
		}
		req.Header.Set(k, v)
	}
	if cookie != nil {
		req.AddCookie(cookie)
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, u, err)
	}
	resp.Body.Close()
	return resp
}

// hopTarget is where a response's same-origin hop leads, or "".
func hopTarget(resp *http.Response) string {
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	_, to, _ := strings.Cut(resp.Header.Get("Refresh"), "0; url=")
	return to
}

func TestSameOriginHop(t *testing.T) {
	withHost := func(h map[string]string, host string) map[string]string {
		out := map[string]string{"Host": host}
		for k, v := range h {
			out[k] = v
		}
		return out
	}

	t.Run("strict", func(t *testing.T) {
		srv := startServer(t, "", func(c *config.Config) { c.Session.SameSite = "strict" })
		cookie := &http.Cookie{Name: "keyport_session", Value: "whatever-the-browser-holds"}
		long := "/?q=" + strings.Repeat("a", 9000)
		for _, c := range []struct {
			name, path string
			header     map[string]string
			cookie     *http.Cookie
			hop        string // "" for none: the page itself, with a fresh cookie
		}{
			{"a link from another site", "/login?x=1&y=%2F", crossSiteNavigation, nil, srv.URL + "/login?x=1&y=%2F"},
			{"a link from another site, another Host header", "/", withHost(crossSiteNavigation, "evil.example"), nil, srv.URL + "/"},
			{"the hop's own request", "/login?x=1", sameOriginNavigation, nil, ""},
			{"a link from a sibling subdomain", "/", fetchMetadata("same-site", "navigate", "document"), nil, ""},
			{"a script without Fetch Metadata", "/", nil, nil, ""},
			{"an image from another site", "/", fetchMetadata("cross-site", "no-cors", "image"), nil, ""},
			{"a frame on another site", "/", fetchMetadata("cross-site", "navigate", "iframe"), nil, ""},
			{"an address longer than a hop may be", long, crossSiteNavigation, nil, ""},
		} {
			resp := rawRequest(t, http.MethodGet, srv.URL+c.path, nil, c.header, c.cookie)
			got := hopTarget(resp)
			if got != c.hop {
				t.Errorf("%s: hop to %.80q, want %.80q (%d)", c.name, got, c.hop, resp.StatusCode)
			}
			setsCookie := len(resp.Header.Values("Set-Cookie")) > 0
			if c.hop != "" && setsCookie || c.hop == "" && !setsCookie {
				t.Errorf("%s: Set-Cookie %q", c.name, resp.Header.Values("Set-Cookie"))
			}
		}
		// A cross-site navigation that did carry a cookie (a session cookie
		// of another name is none of Keyport's) is answered as it is.
		if got := hopTarget(rawRequest(t, http.MethodGet, srv.URL+"/", nil, crossSiteNavigation, cookie)); got != "" {
			t.Errorf("a cross-site navigation with the cookie: hop to %q", got)
		}
		if got := hopTarget(rawRequest(t, http.MethodGet, srv.URL+"/", nil, crossSiteNavigation, &http.Cookie{Name: "other", Value: "x"})); got != srv.URL+"/" {
			t.Errorf("a cross-site navigation with another site's cookie: hop to %q", got)
		}
	})

	t.Run("lax", func(t *testing.T) {
		srv := startServer(t, "", nil)
		srv.createClient(account.NewClient{ID: "app", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp}})
		// Lax cookies come with a cross-site link: no hop.
		if resp := rawRequest(t, http.MethodGet, srv.URL+"/", nil, crossSiteNavigation, nil); hopTarget(resp) != "" || len(resp.Header.Values("Set-Cookie")) == 0 {
			t.Errorf("a link from another site under lax: %d Refresh %q", resp.StatusCode, resp.Header.Get("Refresh"))
		}
		params := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {byeApp}, "state": {"s1"}}
		withExtra := url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {byeApp}, "state": {"s1"}, "evil": {"1"}}
		for _, c := range []struct {
			name, method string
			header       map[string]string
			hop          string
		}{
			{"a form on another site", http.MethodPost, crossSiteNavigation, srv.URL + "/end_session?" + params.Encode()},
			{"a link on another site, from a browser without the cookie", http.MethodGet, crossSiteNavigation, srv.URL + "/end_session?" + params.Encode()},
			{"the hop's own request", http.MethodGet, sameOriginNavigation, ""},
			{"a script on another site (fetch)", http.MethodPost, fetchMetadata("cross-site", "cors", "empty"), ""},
			{"a script without Fetch Metadata", http.MethodPost, nil, ""},
		} {
			u := srv.URL + "/end_session"
			var form url.Values
			if c.method == http.MethodPost {
				form = withExtra
			} else {
				u += "?" + withExtra.Encode()
			}
			resp := rawRequest(t, c.method, u, form, c.header, nil)
			got := hopTarget(resp)
			if got != c.hop {
				t.Errorf("%s: hop to %q, want %q (%d, Location %q)", c.name, got, c.hop, resp.StatusCode, resp.Header.Get("Location"))
			}
			if c.hop == "" && (resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != byeApp+"?state=s1") {
				t.Errorf("%s: %d Location %q, want the logout to run", c.name, resp.StatusCode, resp.Header.Get("Location"))
			}
			if len(resp.Header.Values("Set-Cookie")) > 0 {
				t.Errorf("%s: Set-Cookie %q", c.name, resp.Header.Values("Set-Cookie"))
			}
		}
	})
}

// autoPostSite is another site whose page /post submits a form to action
// at once, with the page's own query parameters as the form's fields.
func autoPostSite(t *testing.T, action string) *httptest.Server {
	t.Helper()
	page := template.Must(template.New("").Parse(`<!doctype html><form method="post" action="{{.Action}}">` +
		`{{range $k, $v := .Fields}}<input type="hidden" name="{{$k}}" value="{{index $v 0}}">{{end}}</form>` +
		`<script>document.forms[0].submit()</script>`))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = page.Execute(w, struct {
			Action string
			Fields url.Values
		}{action, r.URL.Query()})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// codeApp is an app whose callback passes on the code it gets.
func codeApp(t *testing.T) (*httptest.Server, <-chan string) {
	t.Helper()
	codes := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case codes <- r.URL.Query().Get("code"):
			default:
			}
		}
		_, _ = w.Write([]byte("<p id=app>app</p>"))
	}))
	t.Cleanup(srv.Close)
	return srv, codes
}

// waitCode waits for the code an app's callback got.
func waitCode(t *testing.T, c *chrome, codes <-chan string) string {
	t.Helper()
	select {
	case code := <-codes:
		if code == "" {
			t.Fatalf("the app got no code; the browser is at %s", c.location())
		}
		return code
	case <-time.After(15 * time.Second):
		t.Fatalf("the app got nothing; the browser is at %s", c.location())
	}
	return ""
}

// portalSignedIn opens the profile and tells whether it stays there.
func (c *chrome) portalSignedIn(base string) bool {
	c.t.Helper()
	c.do("profile", chromedp.Navigate(base+"/profile"), chromedp.WaitReady(chromedp.CSS("main")))
	return strings.HasPrefix(c.location(), base+"/profile")
}

// In Chromium, with the default SameSite=Lax: a form on another site that
// posts to /end_session at once (no hint) lands on the sign-out
// confirmation, and the person stays signed in; the same form from the app
// with the person's id_token_hint signs them out without a question and
// goes back to the app.
func TestBrowserCrossSitePostToEndSession(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	bye, byeGot := recorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<p id=bye>bye</p>")) })
	appSrv, codes := codeApp(t)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, RedirectURIs: []string{appSrv.URL + "/callback"}, PostLogoutRedirectURIs: []string{bye.URL + "/bye"}})
	other := autoPostSite(t, base+"/end_session")

	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))

	c.do("a form on another site posts to end_session", chromedp.Navigate(other.URL+"/post"))
	c.poll("the form's answer", `document.getElementById("logout-confirm") !== null || location.pathname === "/logged-out"`)
	if loc := c.location(); !strings.HasPrefix(loc, base+"/end_session") {
		t.Errorf("the form landed at %s, not on the confirmation", loc)
	}
	if !c.portalSignedIn(base) {
		t.Fatal("a form on another site signed the user out")
	}

	// The app's own logout: an ID token of the person, by POST.
	verifier, challenge := pkce()
	c.do("sign in to the app", chromedp.Navigate(app.oauth.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))))
	tok, err := app.exchange(waitCode(t, c, codes), verifier)
	if err != nil {
		t.Fatal(err)
	}
	hint, _ := tok.Extra("id_token").(string)
	logout := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {bye.URL + "/bye"}, "state": {"s2"}}
	c.do("the app's logout form", chromedp.Navigate(other.URL+"/post?"+logout.Encode()))
	c.waitLocation(bye.URL + "/bye?state=s2")
	if got := <-byeGot; got != "GET /bye" {
		t.Errorf("the app got %s", got)
	}
	if c.portalSignedIn(base) {
		t.Error("the app's logout with the person's hint left them signed in")
	}
}

// In Chromium, with SameSite=Strict: links from another site to the
// portal and to an app's sign-in keep the person signed in, and single
// sign-on answers the app; a link to /end_session asks first.
func TestBrowserStrictCookieAcrossSites(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, func(cfg *config.Config) { cfg.Session.SameSite = "strict" })
	srv.createUser("alice", false)
	appSrv, codes := codeApp(t)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, RedirectURIs: []string{appSrv.URL + "/callback"}})
	verifier, challenge := pkce()
	authURL := app.oauth.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	other, _ := recorder(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte(`<a id="home" href="` + base + `/">Keyport</a> <a id="app" href="` + template.HTMLEscapeString(authURL) + `">App</a> <a id="end" href="` + base + `/end_session">Sign out</a>`))
	})

	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))

	c.do("a link to the portal", chromedp.Navigate(other.URL+"/"), chromedp.Click(chromedp.ID("home")))
	c.poll("the start page", `location.href === "`+base+`/" && document.querySelector(".home-links, a.button-primary[href='/login']") !== null`)
	if ok, _ := chromedp.Run(c.ctx, chromedp.Evaluate[bool](`document.querySelector(".home-links") !== null`)); !ok {
		t.Error("the start page says the person is signed out")
	}
	if !c.portalSignedIn(base) {
		t.Fatal("a link from another site signed the user out")
	}

	c.do("a link to the app's sign-in", chromedp.Navigate(other.URL+"/"), chromedp.Click(chromedp.ID("app")))
	tok, err := app.exchange(waitCode(t, c, codes), verifier)
	if err != nil {
		t.Fatal(err)
	}
	if idt, ok := tok.Extra("id_token").(string); !ok || idt == "" {
		t.Error("no ID token for the app")
	}
	if !c.portalSignedIn(base) {
		t.Fatal("the app's sign-in from another site signed the user out")
	}

	c.do("a link to end_session", chromedp.Navigate(other.URL+"/"), chromedp.Click(chromedp.ID("end")))
	c.poll("the link's answer", `document.getElementById("logout-confirm") !== null || location.pathname === "/logged-out"`)
	if loc := c.location(); !strings.HasPrefix(loc, base+"/end_session") {
		t.Errorf("the link landed at %s, not on the confirmation", loc)
	}
	if !c.portalSignedIn(base) {
		t.Fatal("a link to end_session from another site signed the user out")
	}
}
