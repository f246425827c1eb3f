package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/caddytest"
	"github.com/keyport/keyport/internal/nginxtest"
)

// keyportBehindNginx runs Keyport behind a real nginx that adds the
// client's address to X-Forwarded-For, as the README's proxy setup does.
// Keyport trusts the proxy (127.0.0.1, where nginx connects from); the test's
// clients connect to nginx from other loopback addresses.
func keyportBehindNginx(t *testing.T, mutate func(*config.Config)) (*testServer, *nginxtest.Server) {
	t.Helper()
	srv := startServer(t, "", func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
		if mutate != nil {
			mutate(c)
		}
	})
	proxy := nginxtest.Start(t, `
		location / {
			proxy_pass `+srv.URL+`;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
		}`)
	return srv, proxy
}

// The repro from the hardening issue: behind the proxy, one client's wrong
// passwords must not throttle another client, and what Keyport records is the
// client's address, not the proxy's, whatever the client forges.
func TestClientAddressBehindNginx(t *testing.T) {
	srv, proxy := keyportBehindNginx(t, nil)
	srv.createUser("victim", false)
	bystander := srv.createUser("bystander", false)

	attacker := browserFrom(t, "127.0.0.5")
	for i := 0; i < 12; i++ {
		p := attacker.get(proxy.URL + "/login")
		attacker.submit(p, "/login", url.Values{"login": {"victim"}, "password": {"wrong password " + string(rune('a'+i))}})
	}

	// A different person, from another address, with a forged header that
	// names the attacker's address (the proxy appends the real one).
	b := browserFrom(t, "127.0.0.6")
	p := b.get(proxy.URL + "/login")
	form := formFields(p.Body)
	form.Set("login", "bystander")
	form.Set("password", testPassword)
	req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "127.0.0.5")
	p = b.do(req)
	if p.Status != http.StatusOK || isLoginPage(p) {
		t.Fatalf("bystander's sign-in through the proxy: %d %s\n%s", p.Status, truncateBody(p.Body), proxy.ErrorLog())
	}
	got := srv.user(bystander.ID)
	if got.LastIP != "127.0.0.6" {
		t.Errorf("bystander's last IP = %q, want the client's 127.0.0.6 (not the proxy's 127.0.0.1, not the forged 127.0.0.5)", got.LastIP)
	}
	attempts, err := srv.Main.Store.ListLoginAttempts(context.Background(), userIDOf(t, srv, "victim"), 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) == 0 {
		t.Fatal("no sign-in attempts recorded for victim")
	}
	for _, a := range attempts {
		if a.IP != "127.0.0.5" {
			t.Errorf("victim's attempt recorded from %q, want the attacker's 127.0.0.5", a.IP)
			break
		}
	}
}

// Without trusted_proxies, the header is ignored: every client of the proxy
// looks like the proxy, and nobody can choose their address by sending it.
func TestForwardedHeaderIgnoredFromUntrustedPeers(t *testing.T) {
	srv := startServer(t, "", nil)
	u := srv.createUser("alice", false)
	b := newBrowser(t)
	p := b.get(srv.URL + "/login")
	form := formFields(p.Body)
	form.Set("login", "alice")
	form.Set("password", testPassword)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "203.0.113.77")
	req.Header.Set("Forwarded", "for=203.0.113.78")
	if p := b.do(req); isLoginPage(p) {
		t.Fatalf("sign-in failed: %d", p.Status)
	}
	if got := srv.user(u.ID).LastIP; got != "127.0.0.1" {
		t.Errorf("last IP = %q, want the peer 127.0.0.1", got)
	}
}

// docBlocks returns the code blocks of one language in the reverse-proxy
// guide, in order, with its placeholder hosts replaced by replace's pairs.
func docBlocks(t *testing.T, lang string, replace ...string) []string {
	t.Helper()
	doc, err := os.ReadFile("../../docs/reverse-proxy.md")
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	for _, part := range strings.Split(string(doc), "```"+lang+"\n")[1:] {
		block, _, ok := strings.Cut(part, "```")
		if !ok {
			t.Fatalf("unterminated %s block in docs/reverse-proxy.md", lang)
		}
		blocks = append(blocks, strings.NewReplacer(replace...).Replace(block))
	}
	return blocks
}

// recordingApp is an app behind the proxy that remembers what reached it.
type recordingApp struct {
	*httptest.Server
	mu           sync.Mutex
	cookie, user string
}

func newRecordingApp(t *testing.T) *recordingApp {
	a := &recordingApp{}
	a.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.mu.Lock()
		a.cookie, a.user = r.Header.Get("Cookie"), r.Header.Get("Remote-User")
		a.mu.Unlock()
		_, _ = io.WriteString(w, "the app")
	}))
	t.Cleanup(a.Close)
	return a
}

// checkAppBehindProxy asks for the app through the proxy as b (signed in as
// alice) with a cookie of the app's own, a forged device cookie and a forged
// Remote-User, and checks what reached the app: alice, the app's cookie, and
// Keyport's session cookie only when wantSession says so. Signed out, the
// app is out of reach.
func checkAppBehindProxy(t *testing.T, b *browser, proxyURL string, app *recordingApp, wantSession bool) {
	t.Helper()
	pu, _ := url.Parse(proxyURL)
	b.client.Jar.SetCookies(pu, []*http.Cookie{{Name: "app_pref", Value: "dark"}, {Name: "keyport_session_device", Value: "dev"}})
	req, _ := http.NewRequest(http.MethodGet, proxyURL+"/app/page", nil)
	req.Header.Set("Remote-User", "mallory")
	if got := b.do(req); got.Status != http.StatusOK || got.Body != "the app" {
		t.Fatalf("app through the proxy: %d %q", got.Status, truncateBody(got.Body))
	}
	app.mu.Lock()
	cookie, user := app.cookie, app.user
	app.mu.Unlock()
	if user != "alice" {
		t.Errorf("app saw Remote-User %q, want alice (from Keyport, not the client's mallory)", user)
	}
	if !strings.Contains(cookie, "app_pref=dark") {
		t.Errorf("app lost its own cookie: %q", cookie)
	}
	if got := strings.Contains(cookie, "keyport_session="); got != wantSession {
		t.Errorf("session cookie reached the app: %v, want %v (Cookie: %q)", got, wantSession, cookie)
	}
	if !wantSession && strings.Contains(cookie, "keyport_session_device=") {
		t.Errorf("device cookie reached the app: %q", cookie)
	}
	if got := newBrowser(t).get(proxyURL + "/app/page"); got.Status != http.StatusUnauthorized {
		t.Errorf("anonymous request to the app: %d, want 401", got.Status)
	}
}

// The guide's nginx configuration, run as written: a signed-in browser
// reaches the app through auth_request, the app learns who it is, and
// neither of Keyport's cookies (nor a Remote-User the client forged) reaches
// the app, while the app's own cookies do. Without the Cookie line the
// session cookie would reach the app: the second run shows the test can
// tell.
func TestForwardAuthBehindNginxKeepsKeyportCookiesFromApps(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} })
	srv.createUser("alice", false)
	app := newRecordingApp(t)
	blocks := docBlocks(t, "nginx", "http://keyport:8080", srv.URL, "http://app:3000", app.URL)
	if len(blocks) != 2 {
		t.Fatalf("docs/reverse-proxy.md has %d nginx blocks, want 2 (http, server)", len(blocks))
	}
	for _, tc := range []struct {
		name        string
		server      string
		wantSession bool
	}{
		{"as documented", blocks[1], false},
		{"without the Cookie line", strings.Replace(blocks[1], "proxy_set_header Cookie $cookie_without_keyport;", "", 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proxy := nginxtest.StartWith(t, blocks[0], tc.server)
			b := newBrowser(t)
			p := b.get(proxy.URL + "/login")
			if p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}}); isLoginPage(p) {
				t.Fatalf("sign-in through nginx failed: %d\n%s", p.Status, proxy.ErrorLog())
			}
			checkAppBehindProxy(t, b, proxy.URL, app, tc.wantSession)
		})
	}
}

// The guide's Caddy lines, run as written in a real Caddy.
func TestForwardAuthBehindCaddyKeepsKeyportCookiesFromApps(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	app := newRecordingApp(t)
	blocks := docBlocks(t, "caddyfile", "keyport:8080", srv.addr, "app:3000", strings.TrimPrefix(app.URL, "http://"))
	if len(blocks) != 1 {
		t.Fatalf("docs/reverse-proxy.md has %d caddyfile blocks, want 1", len(blocks))
	}
	for _, tc := range []struct {
		name        string
		site        string
		wantSession bool
	}{
		{"as documented", blocks[0], false},
		{"without the header_up line", strings.Replace(blocks[0], `header_up Cookie "(^|;\s*)keyport_session(_device)?=[^;]*" "$1"`, "", 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.wantSession && tc.site == blocks[0] {
				t.Fatal("the header_up line of the guide was not found to take out")
			}
			proxy := caddytest.Start(t, tc.site)
			b := newBrowser(t)
			signInPortal(t, srv, b, "alice")
			checkAppBehindProxy(t, b, proxy.URL, app, tc.wantSession)
		})
	}
}
