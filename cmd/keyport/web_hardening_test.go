package main

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/templates"
)

// hardeningRequests are requests of every kind the server answers: portal
// pages, static files, errors, and the provider's documents, JSON errors and
// browser-facing error pages.
func hardeningRequests(base string) []*http.Request {
	get := func(path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, base+path, nil)
		return r
	}
	token, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	token.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	token.SetBasicAuth("nobody", "wrong-secret")
	return []*http.Request{
		get("/"), get("/login"), get("/logged-out"), get("/healthz"), get("/static/style.css"), get("/no/such/page"),
		get("/.well-known/openid-configuration"), get("/keys"), get("/userinfo"), token,
		get("/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid"),
	}
}

// With an https issuer every response, the provider's as well as the
// portal's, carries Strict-Transport-Security with the configured max-age;
// "0" and an http issuer send none.
func TestStrictTransportSecurity(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"https issuer, default max-age", func(c *config.Config) { c.Issuer = "https://id.keyport.test" }, "max-age=31536000"},
		{"https issuer, a week, subdomains", func(c *config.Config) {
			c.Issuer = "https://id.keyport.test"
			c.HTTP.HSTSMaxAge = config.Duration{Duration: 168 * time.Hour}
			c.HTTP.HSTSIncludeSubdomains = true
		}, "max-age=604800; includeSubDomains"},
		{"https issuer, off", func(c *config.Config) {
			c.Issuer = "https://id.keyport.test"
			c.HTTP.HSTSMaxAge = config.Duration{}
		}, ""},
		{"http issuer", nil, ""},
		// HSTS covers every port of a host: none for a loopback issuer.
		{"https loopback issuer", func(c *config.Config) { c.Issuer = "https://localhost:8443" }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startServer(t, "", c.mutate)
			for _, req := range hardeningRequests(srv.URL) {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
				}
				resp.Body.Close()
				got := resp.Header.Values("Strict-Transport-Security")
				if c.want == "" && len(got) != 0 || c.want != "" && (len(got) != 1 || got[0] != c.want) {
					t.Errorf("%s %s (%d): Strict-Transport-Security %q, want %q", req.Method, req.URL.Path, resp.StatusCode, got, c.want)
				}
			}
		})
	}
}

// copyTemplates writes the built-in templates to a directory (for
// templates_dir) and returns it.
func copyTemplates(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, templates.FS); err != nil {
		t.Fatal(err)
	}
	return dir
}

// /static/ serves files with their cache headers and never lists a folder;
// /favicon.ico is served, and every page links an icon.
func TestStaticFilesAndFavicon(t *testing.T) {
	dir := copyTemplates(t)
	if err := os.MkdirAll(filepath.Join(dir, "static", "extra"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "static", "extra", "theme.css"), []byte("body{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", func(c *config.Config) { c.TemplatesDir = dir })
	get := func(method, path string) page {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		return mustFetch(t, http.DefaultClient, req)
	}

	// Unclean paths are first redirected to their clean form, which ends the
	// same way.
	for _, p := range []string{"/static/", "/static", "/static/extra/", "/static/extra", "/static/./", "/static/extra/..", "/static//", "/static/%2e/", "/static/nope.css"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp := get(method, p)
			body := resp.Body
			if resp.Status != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s %s: %d %s at %s, want the 404 page", method, p, resp.Status, resp.Header.Get("Content-Type"), resp.URL.Path)
			}
			if strings.Contains(body, `href="style.css"`) || strings.Contains(body, `href="extra/"`) || strings.Contains(body, `href="theme.css"`) {
				t.Errorf("%s %s lists the folder:\n%s", method, p, truncateBody(body))
			}
			if cc := resp.Header.Get("Cache-Control"); method == http.MethodGet && cc != "no-store" {
				t.Errorf("%s %s: the 404 page has Cache-Control %q", method, p, cc)
			}
		}
	}

	files := []struct{ path, ctype, prefix string }{
		{"/static/style.css", "text/css", ""},
		{"/static/extra/theme.css", "text/css", "body{}"},
		{"/static/favicon.svg", "image/svg+xml", "<svg"},
		{"/favicon.ico", "image/x-icon", "\x00\x00\x01\x00"}, // the ICO header: reserved 0, type 1 (icon)
		{"/static/favicon.ico", "image/x-icon", "\x00\x00\x01\x00"},
	}
	for _, f := range files {
		resp := get(http.MethodGet, f.path)
		if resp.Status != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), f.ctype) || !strings.HasPrefix(resp.Body, f.prefix) {
			t.Errorf("GET %s: %d %q %q", f.path, resp.Status, resp.Header.Get("Content-Type"), truncateBody(resp.Body))
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=86400" {
			t.Errorf("GET %s: Cache-Control %q", f.path, cc)
		}
	}

	// Every page links the icons, and the links lead to them.
	login := get(http.MethodGet, "/login").Body
	for _, link := range []string{`<link rel="icon" href="/favicon.ico"`, `<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">`} {
		if !strings.Contains(login, link) {
			t.Errorf("the sign-in page lacks %s", link)
		}
	}
}

// cspDirective returns one directive of a response's Content-Security-Policy,
// or "" when it has none.
func cspDirective(h http.Header, name string) string {
	for _, d := range strings.Split(h.Get("Content-Security-Policy"), ";") {
		if d = strings.TrimSpace(d); d == name || strings.HasPrefix(d, name+" ") {
			return d
		}
	}
	return ""
}

// Every portal page lets its forms post to Keyport only; the form_post
// response page to exactly the origin of the redirect URI it posts to, and
// it may not be framed. A form post whose answer leaves the portal (to the
// provider's callback, an app, an upstream) ends on a page of Keyport's that
// hands the browser on, so the form's navigation never reaches an address
// the policy does not list; redirects between portal pages stay redirects.
func TestFormActionPolicy(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("pia", false)
	srv.createUser("olga", false)
	// Two origins for one app, and another app: a page names only the
	// origin of the redirect URI of its own request.
	app := srv.createClient(account.NewClient{ID: "app", Name: "Wiki", RedirectURIs: []string{"http://127.0.0.1:9/callback/app", "https://second.example/cb"}})
	srv.createClient(account.NewClient{ID: "other", RedirectURIs: []string{"https://other.example/cb"}})
	fp := srv.createClient(account.NewClient{ID: "fp", SkipConsent: true, RedirectURIs: []string{"https://fp.example:8443/cb?tenant=7", "https://fp-two.example/cb"}})

	selfOnly := func(where string, p page) {
		t.Helper()
		if got := cspDirective(p.Header, "form-action"); got != "form-action 'self'" {
			t.Errorf("%s (%d %s): %q, want form-action 'self'", where, p.Status, p.URL.Path, got)
		}
	}

	// Pages of an app's sign-in: password, consent, second step.
	b := newBrowser(t)
	b.navigates = true
	p := app.authorize(b, "st-1")
	selfOnly("sign-in page of a request", p)
	p = b.submit(p, "/login", url.Values{"login": {"pia"}, "password": {testPassword}})
	if !isConsentPage(p) {
		t.Fatalf("no consent page: %d %s", p.Status, p.URL)
	}
	selfOnly("consent page", p)
	// Deny: the answer goes to the app, through the hand-over page.
	deny := postPage(b, p, "/consent", url.Values{"decision": {"deny"}, "authRequestID": {formFields(p.Body).Get("authRequestID")}})
	res := landed(t, deny, app.RedirectURI)
	if res.Error != "access_denied" || res.State != "st-1" {
		t.Errorf("deny landed with %+v", res)
	}
	if !slices.ContainsFunc(b.visited, func(v string) bool { return strings.HasPrefix(v, app.RedirectURI+"?") }) {
		t.Errorf("the deny did not go through the hand-over page: %v", b.visited)
	}

	// Without following: the answer to a browser's sign-in form is the
	// hand-over page, not a redirect, and it leads to the provider's
	// callback. A browser is one that sends Fetch Metadata for its
	// navigation, or (WebKit before 16.4, which enforces form-action but
	// sends no Fetch Metadata) one that asks for HTML. A client that is no
	// browser (curl, Python's requests, Go's client) sends neither, and gets
	// the redirect RFC 6749 describes.
	var raw *browser
	signInForm := func(header map[string]string) *http.Response {
		t.Helper()
		raw = newBrowser(t)
		raw.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		lp := raw.get(srv.URL + "/authorize?" + url.Values{"client_id": {"fp"}, "redirect_uri": {"https://fp.example:8443/cb?tenant=7"}, "response_type": {"code"}, "scope": {"openid"}, "state": {"st-2"}, "response_mode": {"form_post"}}.Encode())
		if lp.Status != http.StatusFound {
			t.Fatalf("authorize: %d", lp.Status)
		}
		loginURL, _ := lp.URL.Parse(lp.Location)
		lp = raw.get(loginURL.String())
		form := formFields(lp.Body)
		form.Set("login", "pia")
		form.Set("password", testPassword)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header.Set(k, v)
		}
		resp, err := raw.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for _, script := range []struct {
		name   string
		header map[string]string
	}{
		{"Go's client", nil},
		{"curl", map[string]string{"Accept": "*/*", "User-Agent": "curl/8.5.0"}},
		{"a script asking for JSON", map[string]string{"Accept": "application/json"}},
	} {
		resp := signInForm(script.header)
		resp.Body.Close()
		if resp.StatusCode/100 != 3 || !strings.HasPrefix(resp.Header.Get("Location"), srv.URL+"/authorize/callback?id=") || resp.Header.Get("Refresh") != "" {
			t.Errorf("answer to %s's sign-in form: %d Location %q Refresh %q, want the redirect to the callback",
				script.name, resp.StatusCode, resp.Header.Get("Location"), resp.Header.Get("Refresh"))
		}
	}
	handedOver := func(name string, resp *http.Response) string {
		t.Helper()
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		refresh := resp.Header.Get("Refresh")
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || !strings.HasPrefix(refresh, "0; url="+srv.URL+"/authorize/callback?id=") ||
			!strings.Contains(string(body), `href="`+srv.URL+`/authorize/callback?id=`) || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("answer to %s's sign-in form: %d Location %q Refresh %q\n%s", name, resp.StatusCode, resp.Header.Get("Location"), refresh, truncateBody(string(body)))
		}
		if got := cspDirective(resp.Header, "form-action"); got != "form-action 'self'" {
			t.Errorf("hand-over page: %q", got)
		}
		return refresh
	}
	handedOver("Safari 16.3", signInForm(map[string]string{
		"Accept":     "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
		"User-Agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.3 Safari/605.1.15",
	}))
	refresh := handedOver("Chromium", signInForm(map[string]string{"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Site": "same-origin", "Sec-Fetch-Dest": "document"}))

	// The form_post page posts to fp.example:8443 and nowhere else.
	p = fp.finish(raw, raw.get(strings.TrimPrefix(refresh, "0; url=")), "pia")
	action, f := formPostResponse(t, p)
	if action != "https://fp.example:8443/cb?tenant=7" || f.Get("code") == "" {
		t.Fatalf("form_post page: %q %v", action, f)
	}
	if got := cspDirective(p.Header, "form-action"); got != "form-action https://fp.example:8443" {
		t.Errorf("form_post page: %q, want the redirect URI's origin only", got)
	}
	if got := cspDirective(p.Header, "frame-ancestors"); got != "frame-ancestors 'none'" || p.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("form_post page may be framed: %q, X-Frame-Options %q", got, p.Header.Get("X-Frame-Options"))
	}

	// The second step of a sign-in for an app.
	ob := newBrowser(t)
	signInPortal(t, srv, ob, "olga")
	enrolTOTP(t, srv, ob)
	p, _, _ = passwordToSecondStep(t, app, "olga")
	selfOnly("second step", p)

	// Portal pages, error pages, the provider's error pages.
	selfOnly("portal sign-in page", b.get(srv.URL+"/login"))
	selfOnly("signed-out page", b.get(srv.URL+"/logged-out"))
	selfOnly("not-found page", b.get(srv.URL+"/nowhere"))
	selfOnly("provider error page", b.get(srv.URL+"/authorize?client_id=app&redirect_uri=https%3A%2F%2Fevil.example%2F&response_type=code&scope=openid"))
	pb := newBrowser(t)
	home := signInPortal(t, srv, pb, "pia")
	selfOnly("home", home)
	profile := pb.get(srv.URL + "/profile")
	selfOnly("profile", profile)

	// Between portal pages a form's answer stays a redirect.
	noFollow := &http.Client{Jar: pb.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	form := url.Values{"csrf_token": {formFields(profile.Body).Get("csrf_token")}, "given_name": {"Pia"}}
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/profile", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	if resp, err := noFollow.Do(req); err != nil || resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Refresh") != "" {
		t.Errorf("profile save: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// recorder is a site that notes every request it gets.
func recorder(t *testing.T, answer func(w http.ResponseWriter, r *http.Request)) (*httptest.Server, <-chan string) {
	t.Helper()
	got := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Method + " " + r.URL.Path:
		default:
		}
		answer(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, got
}

// poll evaluates expr in the page until it is true (or the test's deadline).
func (c *chrome) poll(what, expr string) {
	c.t.Helper()
	for i := 0; i < 200; i++ {
		if ok, err := chromedp.Run(c.ctx, chromedp.Evaluate[bool](expr)); err == nil && ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatalf("%s: %s never became true at %s", what, expr, c.location())
}

// In Chromium: a form injected into a portal page cannot post to another
// site; a sign-in (password, then consent) still reaches the app, and goes
// on from the app's callback to a third site, as an oauth2-proxy goes back
// to the page that was asked for. Chromium checks form-action on every
// redirect after a form post, so that last step works only because the
// form's answer hands the browser on through a page of Keyport's.
func TestBrowserFormActionPolicy(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	thief, stolen := recorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("stolen")) })
	final, reached := recorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<p id=final>final</p>")) })
	appSrv, _ := recorder(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, final.URL+"/wanted-page", http.StatusFound)
	})
	app := srv.createClient(account.NewClient{ID: "proxy", Name: "Proxy", RedirectURIs: []string{appSrv.URL + "/oauth2/callback"}})

	// An injected form (as cross-site scripting would add) posting the
	// typed password elsewhere is refused by the browser.
	c.do("sign-in page", chromedp.Navigate(base+"/login"), chromedp.WaitVisible(chromedp.ID("login")))
	c.do("inject a form", chromedp.Evaluate[chromedp.Void](`
		document.addEventListener("securitypolicyviolation", e => { window.violated = e.effectiveDirective; });
		const f = document.createElement("form");
		f.method = "post";
		f.action = "`+thief.URL+`/steal";
		const i = document.createElement("input");
		i.name = "password";
		i.value = "typed secret";
		f.append(i);
		document.body.append(f);
		f.submit();`))
	c.poll("the policy stops the injected form", `window.violated === "form-action" || location.origin !== "`+base+`"`)
	select {
	case req := <-stolen:
		t.Fatalf("the injected form reached the other site: %s", req)
	default:
	}

	// A sign-in through the app's proxy: password, consent, the app's
	// callback, and on to the page the proxy sends the browser to.
	c.do("start the app's sign-in", chromedp.Navigate(app.oauth.AuthCodeURL("st-b")), chromedp.WaitVisible(chromedp.ID("login")))
	c.do("password",
		chromedp.SendKeys(chromedp.ID("login"), "alice"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`button[value="allow"]`)))
	c.do("allow", chromedp.Click(chromedp.CSS(`button[value="allow"]`)))
	c.waitLocation(final.URL + "/wanted-page")
	if got := <-reached; got != "GET /wanted-page" {
		t.Errorf("the final site got %s", got)
	}

	// The avatar upload (a multipart form) and the picture it shows.
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "me.png")
	if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	c.do("profile", chromedp.Navigate(base+"/profile"), chromedp.WaitVisible(chromedp.ID("avatar-file")))
	c.do("upload an avatar",
		chromedp.SetUploadFiles(chromedp.ID("avatar-file"), []string{file}),
		chromedp.Click(chromedp.CSS(`form[action="/profile/avatar"] button[type="submit"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action="/profile/avatar/remove"]`)))
	c.poll("the avatar shows", `document.querySelector("img.avatar").complete && document.querySelector("img.avatar").naturalWidth === 8`)
}

// In Chromium: the sign-in through an upstream provider (itself a Keyport,
// with its own form-action policy) gets from Keyport's sign-in page to the
// upstream, back, and on to the app.
func TestBrowserUpstreamButtonUnderPolicy(t *testing.T) {
	c := newChrome(t)
	_, down := upstreamPair(t, nil)
	appSrv, reached := recorder(t, func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("<p id=app>app</p>")) })
	app := down.createClient(account.NewClient{ID: "app", SkipConsent: true, RedirectURIs: []string{appSrv.URL + "/callback"}})

	c.do("start the app's sign-in", chromedp.Navigate(app.oauth.AuthCodeURL("st-u")), chromedp.WaitVisible(chromedp.CSS(`form[action="/login/upstream/up"] button`)))
	c.do("sign in with the upstream", chromedp.Click(chromedp.CSS(`form[action="/login/upstream/up"] button`)))
	// The upstream's own sign-in page (another port: another origin).
	for i := 0; i < 200 && strings.HasPrefix(c.location(), down.URL); i++ {
		time.Sleep(50 * time.Millisecond)
	}
	if loc := c.location(); strings.HasPrefix(loc, down.URL) || !strings.Contains(loc, "/login") {
		t.Fatalf("the upstream button did not lead to the upstream's sign-in page: at %s", loc)
	}
	c.do("sign in at the upstream",
		chromedp.WaitVisible(chromedp.ID("login")),
		chromedp.SendKeys(chromedp.ID("login"), "ursula"),
		chromedp.SendKeys(chromedp.ID("password"), testPassword),
		chromedp.Click(chromedp.CSS(`form[action="/login"] button[type="submit"]`)))
	back, _ := url.Parse(c.waitLocation(app.RedirectURI))
	if back.Query().Get("code") == "" || back.Query().Get("state") != "st-u" {
		t.Fatalf("the app got %s", back)
	}
	if got := <-reached; got != "GET /callback" {
		t.Errorf("the app got %s", got)
	}
}

// formPostApp is an app on ln that notes each request to its callback,
// with the code a form_post response carries.
func formPostApp(t *testing.T, ln net.Listener) (*httptest.Server, <-chan string) {
	t.Helper()
	got := make(chan string, 4)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/callback" {
			select {
			case got <- r.Method + " " + r.URL.Path + " code=" + r.PostFormValue("code"):
			default:
			}
		}
		_, _ = w.Write([]byte("<p id=app>app</p>"))
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, got
}

// In Chromium: the form_post page reaches apps whose redirect URI's host a
// CSP host-source cannot spell as it is: a native app's loopback redirect
// URI on [::1] (RFC 8252 §7.3), an internationalised name, a name with an
// underscore. Chromium resolves the made-up names to loopback.
func TestBrowserFormPostToHostsCSPCannotSpell(t *testing.T) {
	c := newChromeWith(t, chromedp.Flag("host-resolver-rules", "MAP xn--bcher-kva.test 127.0.0.1, MAP my_app.test 127.0.0.1"))
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))

	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Fatalf("this test needs IPv6 loopback: %v", err)
	}
	ln4, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port4 := strconv.Itoa(ln4.Addr().(*net.TCPAddr).Port)
	v6, v6Got := formPostApp(t, ln6)
	_, v4Got := formPostApp(t, ln4)
	for i, app := range []struct {
		name, redirectURI string
		got               <-chan string
	}{
		{"IPv6 loopback", v6.URL + "/callback", v6Got},
		{"internationalised name", "http://bücher.test:" + port4 + "/callback", v4Got},
		{"underscore", "http://my_app.test:" + port4 + "/callback", v4Got},
	} {
		id := "app" + strconv.Itoa(i)
		// http:// on a name other than localhost is what config.toml
		// allows (with a warning) and older versions registered; Keyport
		// no longer registers it, so the record is written directly.
		if err := srv.Main.Store.CreateClient(t.Context(), storage.Client{ID: id, Name: id, Public: true, SkipConsent: true, RedirectURIs: []string{app.redirectURI},
			GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken}}); err != nil {
			t.Fatal(err)
		}
		client := srv.rp(id, "", app.redirectURI)
		_, challenge := pkce()
		c.do(app.name+": authorize", chromedp.Navigate(client.oauth.AuthCodeURL("st", oauth2.SetAuthURLParam("response_mode", "form_post"),
			oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))))
		select {
		case got := <-app.got:
			if !strings.HasPrefix(got, "POST /callback code=") || strings.HasSuffix(got, "code=") {
				t.Errorf("%s: the app got %s", app.name, got)
			}
		case <-time.After(15 * time.Second):
			t.Errorf("%s: the form_post response to %s never arrived; the browser is at %s", app.name, app.redirectURI, c.location())
		}
	}
}

// The hand-over page's link leads where its Refresh header does, also for
// a native app's private-use scheme (RFC 8252 §7.1), which html/template
// would otherwise blank to "#ZgotmplZ". A scheme that runs code when
// followed (javascript:, data:, vbscript:, file:) is never a link, even if
// a client registered it: the answer stays the plain redirect.
func TestHandOverToNativeApp(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("pia", false)
	native := srv.createClient(account.NewClient{ID: "native", Name: "Native", Public: true, RedirectURIs: []string{"com.example.app:/oauth2redirect"}})
	// Registration refuses such schemes now; a client stored before that
	// still has one, so it is written to the store directly.
	if err := srv.Main.Store.CreateClient(context.Background(), storage.Client{ID: "odd", Name: "Odd", Public: true,
		RedirectURIs: []string{"vbscript:msgbox(1)"}, GrantTypes: []string{"authorization_code"}, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	odd := srv.rp("odd", "", "vbscript:msgbox(1)")

	// deny answers the consent page with Deny, as a browser navigation,
	// and returns the answer to the form post and the answer at the
	// provider's callback, where the hand-over page sends the browser.
	deny := func(app *testClient) (posted *http.Response, postedBody string, callback *http.Response) {
		t.Helper()
		b := newBrowser(t)
		b.navigates = true
		_, challenge := pkce()
		p := app.authorize(b, "st-1", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		p = b.submit(p, "/login", url.Values{"login": {"pia"}, "password": {testPassword}})
		if !isConsentPage(p) {
			t.Fatalf("%s: no consent page: %d %s\n%s", app.ID, p.Status, p.URL, truncateBody(p.Body))
		}
		form := formFields(p.Body)
		form.Set("decision", "deny")
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/consent", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		noFollow := &http.Client{Jar: b.client.Jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		posted, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(posted.Body)
		posted.Body.Close()
		// The form's answer ends its navigation on Keyport's own
		// callback: a page whose Refresh header and link go there.
		to := strings.TrimPrefix(posted.Header.Get("Refresh"), "0; url=")
		if posted.StatusCode != http.StatusOK || !strings.HasPrefix(to, srv.URL+"/authorize/callback?id=") {
			t.Fatalf("%s: deny: %d Refresh %q Location %q", app.ID, posted.StatusCode, posted.Header.Get("Refresh"), posted.Header.Get("Location"))
		}
		link, ok := parsePage(t, string(body)).first("a", "class", "button-primary")
		if !ok || link.attr("href") != to {
			t.Errorf("%s: the hand-over page's link is %q, want %q\n%s", app.ID, link.attr("href"), to, truncateBody(string(body)))
		}
		req, _ = http.NewRequest(http.MethodGet, to, nil)
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		callback, err = noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		callback.Body.Close()
		return posted, string(body), callback
	}

	// The callback sends the browser to the native app with the error.
	_, _, cb := deny(native)
	to := cb.Header.Get("Location")
	if cb.StatusCode != http.StatusFound || !strings.HasPrefix(to, "com.example.app:/oauth2redirect?") {
		t.Fatalf("deny for the native app, at the callback: %d Location %q", cb.StatusCode, to)
	}
	if q, _ := url.Parse(to); q.Query().Get("error") != "access_denied" || q.Query().Get("state") != "st-1" {
		t.Errorf("the callback leads to %s", to)
	}

	// A vbscript: redirect URI is never a link on a page: the form post is
	// handed over to the callback, which answers with a plain redirect.
	_, body, cb := deny(odd)
	if strings.Contains(body, "vbscript:") || cb.StatusCode != http.StatusFound || !strings.HasPrefix(cb.Header.Get("Location"), "vbscript:") {
		t.Errorf("deny for a client with a vbscript: redirect URI: %d Location %q\n%s", cb.StatusCode, cb.Header.Get("Location"), truncateBody(body))
	}
}
