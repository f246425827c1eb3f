package main

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/internal/smtptest"
	"github.com/keyport/keyport/storage"
)

func TestMain(m *testing.M) {
	runAsMain()
	// zitadel's op logs every rejected request through the default logger;
	// tests provoke hundreds on purpose.
	if os.Getenv("KEYPORT_TEST_LOG") == "" {
		slog.SetDefault(slog.New(slog.DiscardHandler))
	}
	// Run stops the SMTP test server when a test started it; Stop the
	// PostgreSQL cluster.
	code := smtptest.Run(m)
	pgtest.Stop()
	os.Exit(code)
}

// testServer is a real Keyport (the same Main that `keyport serve` runs) on a
// loopback port with its data in a temp dir.
type testServer struct {
	t      testing.TB
	Main   *Main
	URL    string
	dir    string
	addr   string
	cancel context.CancelFunc
	done   chan error
	opts   serverOptions // how it was started, for restart
}

const testPassword = "correct horse battery"

// startServer starts Keyport with its data in dir (a fresh temp dir when
// empty). mutate may adjust the configuration.
func startServer(t *testing.T, dir string, mutate func(*config.Config)) *testServer {
	t.Helper()
	return startServerWith(t, serverOptions{dir: dir, mutate: mutate})
}

// serverOptions is how a test's server differs from startServer's; every
// zero value is the default.
type serverOptions struct {
	dir string       // the data directory; a fresh temp dir when ""
	ln  net.Listener // where it listens; a new port on 127.0.0.1 when nil
	// localhost makes the issuer http://localhost:PORT: WebAuthn wants a
	// domain and refuses 127.0.0.1.
	localhost  bool
	configFile string               // a TOML file loaded under the environment, as `serve --config` does
	now        func() time.Time     // the server's clock; the wall clock when nil
	logs       io.Writer            // gets the log at debug level; discarded when nil
	mutate     func(*config.Config) // adjusts the configuration, which must stay valid
	// issuer, when set, is where the server is reached (a load balancer
	// in front of several), instead of its own address.
	issuer string
}

// startServerWith starts Keyport as o says and returns once it answers.
func startServerWith(t testing.TB, o serverOptions) *testServer {
	t.Helper()
	cfg, issuer := testConfig(t, &o)
	if o.logs == nil && os.Getenv("KEYPORT_TEST_LOG") != "" {
		o.logs = os.Stderr
	}
	log := slog.New(slog.DiscardHandler)
	if o.logs != nil {
		log = slog.New(slog.NewTextHandler(o.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	srv := serve(t, cfg, o.ln, log, o.now)
	srv.URL = issuer
	o.ln = nil
	srv.opts = o
	return srv
}

// testConfig is the configuration of the server o describes: the built-in
// default under the environment a test server gets (its data dir, issuer
// and listen address), then o.mutate; and the issuer it was given, where
// the server answers. It fills in o's dir and listener.
func testConfig(t testing.TB, o *serverOptions) (*config.Config, string) {
	t.Helper()
	if o.dir == "" {
		o.dir = t.TempDir()
	}
	if o.ln == nil {
		o.ln = listenLoopback(t)
	}
	addr := o.ln.Addr().String()
	issuer := "http://" + addr
	if o.localhost {
		_, port, _ := net.SplitHostPort(addr)
		issuer = "http://localhost:" + port
	}
	if o.issuer != "" {
		issuer = o.issuer
	}
	env := map[string]string{"KEYPORT_DATA_DIR": o.dir, "KEYPORT_ISSUER": issuer, "KEYPORT_LISTEN": addr}
	cfg, _, err := config.Load(o.configFile, func(k string) string { return env[k] })
	if err != nil {
		o.ln.Close()
		t.Fatalf("load config: %v", err)
	}
	if o.mutate != nil {
		o.mutate(cfg)
		if _, err := cfg.Validate(); err != nil {
			o.ln.Close()
			t.Fatalf("test config invalid: %v", err)
		}
	}
	return cfg, issuer
}

// listenLoopback listens on a new port on 127.0.0.1.
func listenLoopback(t testing.TB) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}

// serve loads Keyport from cfg, runs it on ln until the test ends, and
// returns once it answers.
func serve(t testing.TB, cfg *config.Config, ln net.Listener, log *slog.Logger, now func() time.Time) *testServer {
	t.Helper()
	m, err := Load(cfg, log, now)
	if err != nil {
		ln.Close()
		t.Fatalf("load keyport: %v", err)
	}
	m.Listener = ln
	addr := ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	s := &testServer{t: t, Main: m, URL: "http://" + addr, dir: cfg.DataDir, addr: addr, cancel: cancel, done: make(chan error, 1)}
	go func() { s.done <- m.Run(ctx) }()
	t.Cleanup(s.stop)
	for i := 0; i < 200; i++ {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("server did not start")
	return nil
}

func (s *testServer) stop() {
	if s.cancel == nil {
		return
	}
	s.cancel()
	if err := <-s.done; err != nil {
		s.t.Errorf("server: %v", err)
	}
	s.cancel = nil
	if err := s.Main.Close(); err != nil {
		s.t.Errorf("close: %v", err)
	}
}

// restart stops the server and starts a new one as it was started, on the
// same address and data.
func (s *testServer) restart() *testServer {
	s.t.Helper()
	s.stop()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatalf("re-listen on %s: %v", s.addr, err)
	}
	o := s.opts
	o.ln = ln
	return startServerWith(s.t, o)
}

func (s *testServer) createUser(username string, admin bool) storage.User {
	s.t.Helper()
	u, err := s.Main.Accounts.Users.CreateUser(context.Background(), account.NewUser{
		Username: username, Email: username + "@example.com", Name: strings.ToUpper(username[:1]) + username[1:] + " Tester",
		Admin: admin, Password: testPassword,
	})
	if err != nil {
		s.t.Fatalf("create user: %v", err)
	}
	return u
}

// testClient is a registered app plus a real relying party for it.
type testClient struct {
	ID, Secret  string
	RedirectURI string
	oauth       oauth2.Config
	verifier    *oidc.IDTokenVerifier
	provider    *oidc.Provider
	srv         *testServer
}

func (s *testServer) createClient(n account.NewClient) *testClient {
	s.t.Helper()
	if len(n.RedirectURIs) == 0 {
		n.RedirectURIs = []string{"http://127.0.0.1:9/callback/" + n.ID}
	}
	if len(n.PostLogoutRedirectURIs) == 0 {
		n.PostLogoutRedirectURIs = []string{"http://127.0.0.1:9/bye/" + n.ID}
	}
	c, secret, err := s.Main.Accounts.Clients.RegisterClient(context.Background(), account.SystemActor, n)
	if err != nil {
		s.t.Fatalf("register client: %v", err)
	}
	return s.rp(c.ID, secret, n.RedirectURIs[0])
}

// rp builds a go-oidc relying party from discovery.
func (s *testServer) rp(id, secret, redirect string) *testClient {
	s.t.Helper()
	p, err := oidc.NewProvider(context.Background(), s.URL)
	if err != nil {
		s.t.Fatalf("discovery: %v", err)
	}
	return &testClient{
		ID: id, Secret: secret, RedirectURI: redirect, provider: p, srv: s,
		oauth: oauth2.Config{
			ClientID: id, ClientSecret: secret, RedirectURL: redirect, Endpoint: p.Endpoint(),
			Scopes: []string{oidc.ScopeOpenID, "profile", "email"},
		},
		verifier: p.Verifier(&oidc.Config{ClientID: id}),
	}
}

// browser is a cookie-jar HTTP client that stops at the app's redirect URI.
type browser struct {
	t       testing.TB
	client  *http.Client
	visited []string // every URL a redirect led to
	// navigates: send Fetch Metadata as a browser's navigation does
	// (Sec-Fetch-Mode: navigate), so the portal treats form posts as a
	// browser's; without it the client is a script.
	navigates bool
}

func newBrowser(t testing.TB) *browser {
	jar, _ := cookiejar.New(nil)
	b := &browser{t: t}
	b.client = &http.Client{
		Jar:     jar,
		Timeout: 20 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			b.visited = append(b.visited, req.URL.String())
			if req.URL.Host == "127.0.0.1:9" || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	return b
}

// browserFrom is newBrowser with its connections from the loopback address
// ip (127.0.0.x; any when ""), so tests can play several clients.
func browserFrom(t *testing.T, ip string) *browser {
	b := newBrowser(t)
	d := &net.Dialer{Timeout: 5 * time.Second}
	if ip != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(ip)}
	}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	b.client.Transport = tr
	return b
}

// signedIn asks the server whether browser b has a live session: its
// sign-in page sends a signed-in browser home.
func signedIn(srv *testServer, b *browser) bool {
	b.t.Helper()
	p := b.get(srv.URL + "/login")
	return p.Status < 400 && p.URL.Path == "/"
}

// page is a response with its body read: the one type the tests read
// answers as, pages and JSON alike.
type page struct {
	Status   int
	URL      *url.URL // where the answer came from, after redirects
	Header   http.Header
	Body     string
	Location string
}

// JSON decodes the body; nil when it is not a JSON object.
func (p page) JSON() map[string]any {
	var m map[string]any
	if json.Unmarshal([]byte(p.Body), &m) != nil {
		return nil
	}
	return m
}

// ErrCode is the OAuth error code of a JSON error answer.
func (p page) ErrCode() string {
	s, _ := p.JSON()["error"].(string)
	return s
}

func (p page) String() string {
	return fmt.Sprintf("%d %s Location=%q\n%s", p.Status, p.Header.Get("Content-Type"), p.Location, truncateBody(p.Body))
}

// bareClient follows no redirects and keeps no cookies: a script's view.
var bareClient = &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// fetch performs req with c and reads the answer whole. It fails no test,
// so goroutines and benchmarks may use it.
func fetch(c *http.Client, req *http.Request) (page, error) {
	resp, err := c.Do(req)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	p := page{Status: resp.StatusCode, Header: resp.Header, Body: string(body), Location: resp.Header.Get("Location")}
	if resp.Request != nil {
		p.URL = resp.Request.URL
	}
	return p, err
}

// mustFetch is fetch that fails the test when no answer comes.
func mustFetch(t testing.TB, c *http.Client, req *http.Request) page {
	t.Helper()
	p, err := fetch(c, req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, truncateBody(req.URL.String()), err)
	}
	return p
}

// bareGet gets u with bareClient.
func bareGet(t *testing.T, u string) page {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return mustFetch(t, bareClient, req)
}

// fetchFollowing is fetch that follows a page which hands the browser on
// with a Refresh header (the portal's way to another site), as browsers do,
// up to five times; visit, when set, hears of each URL it follows. A
// hand-over to the app (127.0.0.1:9, where the browsers' CheckRedirect
// stops too) is reported as the redirect it replaces.
func fetchFollowing(c *http.Client, req *http.Request, visit func(string)) (page, error) {
	for hops := 0; ; hops++ {
		p, err := fetch(c, req)
		if err != nil {
			return p, err
		}
		to, ok := refreshTarget(p)
		if !ok || hops == 5 {
			return p, nil
		}
		if visit != nil {
			visit(to.String())
		}
		if to.Host == "127.0.0.1:9" {
			p.Status, p.Location = http.StatusFound, to.String()
			return p, nil
		}
		req, _ = http.NewRequest(http.MethodGet, to.String(), nil)
	}
}

func (b *browser) do(req *http.Request) page {
	b.t.Helper()
	if b.navigates {
		req.Header.Set("Sec-Fetch-Mode", "navigate")
		req.Header.Set("Sec-Fetch-Dest", "document")
	}
	p, err := fetchFollowing(b.client, req, func(u string) { b.visited = append(b.visited, u) })
	if err != nil {
		b.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	return p
}

// nextHop is where a response sends the browser next: its redirect, or the
// Refresh header of the page that hands a form's answer on.
func nextHop(resp *http.Response) string {
	if loc := resp.Header.Get("Location"); loc != "" {
		return loc
	}
	_, to, _ := strings.Cut(resp.Header.Get("Refresh"), "url=")
	return to
}

// refreshTarget is where a page's "Refresh: 0; url=…" header leads.
func refreshTarget(p page) (*url.URL, bool) {
	_, raw, ok := strings.Cut(p.Header.Get("Refresh"), "url=")
	if !ok || p.Status != http.StatusOK {
		return nil, false
	}
	to, err := p.URL.Parse(raw)
	return to, err == nil
}

func (b *browser) get(u string) page {
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	return b.do(req)
}

func (b *browser) post(u string, form url.Values) page {
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// submit posts to action the hidden fields of p's forms (formFields) plus
// extra, which replace them.
func (b *browser) submit(p page, action string, extra url.Values) page {
	b.t.Helper()
	form := formFields(p.Body)
	for k, v := range extra {
		form[k] = v
	}
	base := p.URL
	u, _ := base.Parse(action)
	return b.post(u.String(), form)
}

func isLoginPage(p page) bool { return p.Status < 500 && hasForm(p.Body, "/login") }
func isConsentPage(p page) bool {
	return p.Status == 200 && hasForm(p.Body, "/consent")
}

// pkce returns a verifier and its S256 challenge.
func pkce() (verifier, challenge string) {
	verifier = account.RandomString(32)
	sum := sha256.Sum256([]byte(verifier))
	return verifier, base64.RawURLEncoding.EncodeToString(sum[:])
}

// flowResult is where the browser landed at the app.
type flowResult struct {
	Code, State, Error, Iss string
	Query                   url.Values
}

func landed(t testing.TB, p page, redirect string) flowResult {
	t.Helper()
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, redirect) {
		t.Fatalf("expected a redirect to %s, got %d %s\n%s", redirect, p.Status, p.Location, truncateBody(p.Body))
	}
	u, err := url.Parse(p.Location)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	return flowResult{Code: q.Get("code"), State: q.Get("state"), Error: q.Get("error"), Iss: q.Get("iss"), Query: q}
}

func truncateBody(s string) string {
	if len(s) > 2000 {
		return s[:2000] + "…"
	}
	return s
}

// authorize starts an authorization request with opts and returns the first page.
func (c *testClient) authorize(b *browser, state string, opts ...oauth2.AuthCodeOption) page {
	return b.get(c.oauth.AuthCodeURL(state, opts...))
}

// signIn runs a whole code flow for username: login form, consent when
// asked, back to the app. It returns the code and the PKCE verifier.
func (c *testClient) signIn(b *browser, username string, opts ...oauth2.AuthCodeOption) (code, verifier string) {
	c.srv.t.Helper()
	verifier, challenge := pkce()
	nonce := account.RandomString(8)
	opts = append(opts, oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"), oidc.Nonce(nonce))
	p := c.authorize(b, "st-"+nonce, opts...)
	p = c.finish(b, p, username)
	res := landed(c.srv.t, p, c.RedirectURI)
	if res.Error != "" || res.Code == "" || res.State != "st-"+nonce {
		c.srv.t.Fatalf("flow ended with %+v", res)
	}
	return res.Code, verifier
}

// finish walks login and consent pages until the browser leaves Keyport.
func (c *testClient) finish(b *browser, p page, username string) page {
	c.srv.t.Helper()
	for i := 0; i < 4; i++ {
		switch {
		case isLoginPage(p):
			p = b.submit(p, "/login", url.Values{"login": {username}, "password": {testPassword}})
		case isConsentPage(p):
			p = b.submit(p, "/consent", url.Values{"decision": {"allow"}})
		default:
			return p
		}
	}
	return p
}

// exchange trades a code for tokens with the real oauth2 client.
func (c *testClient) exchange(code, verifier string) (*oauth2.Token, error) {
	opts := []oauth2.AuthCodeOption{}
	if verifier != "" {
		opts = append(opts, oauth2.VerifierOption(verifier))
	}
	return c.oauth.Exchange(context.Background(), code, opts...)
}

// tokens signs username in with a new browser and exchanges the code.
func (c *testClient) tokens(username string) *oauth2.Token {
	c.srv.t.Helper()
	code, verifier := c.signIn(newBrowser(c.srv.t), username)
	tok, err := c.exchange(code, verifier)
	if err != nil {
		c.srv.t.Fatalf("exchange the code of %s: %v", username, err)
	}
	return tok
}

// tokenPost calls the token endpoint directly and decodes the JSON answer.
func (c *testClient) tokenPost(form url.Values, basic bool) (int, http.Header, map[string]any) {
	c.srv.t.Helper()
	if !basic {
		form.Set("client_id", c.ID)
		if c.Secret != "" {
			form.Set("client_secret", c.Secret)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, c.srv.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(url.QueryEscape(c.ID), url.QueryEscape(c.Secret))
	}
	return doJSON(c.srv.t, nil, req)
}

// introspect asks the introspection endpoint (RFC 7662) about tok as c,
// authenticated with its secret, and fails the test unless it answers 200.
func (c *testClient) introspect(t *testing.T, tok string) map[string]any {
	t.Helper()
	status, _, out := c.srv.postForm("/oauth/introspect", url.Values{"token": {tok}}, c.ID, c.Secret)
	if status != http.StatusOK {
		t.Fatalf("introspect as %s: %d %v", c.ID, status, out)
	}
	return out
}

// doJSON performs req with c (http.DefaultClient when nil) and decodes a
// JSON answer; any other body comes back as {"_raw": body}. It fails the
// test with Errorf, so goroutines may call it; the status is 0 then.
func doJSON(t testing.TB, c *http.Client, req *http.Request) (int, http.Header, map[string]any) {
	t.Helper()
	if c == nil {
		c = http.DefaultClient
	}
	p, err := fetch(c, req)
	if err != nil {
		t.Errorf("%s %s: %v", req.Method, req.URL, err)
		return 0, nil, nil
	}
	var m map[string]any
	if p.Body != "" && strings.HasPrefix(p.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal([]byte(p.Body), &m); err != nil {
			t.Errorf("%s %s: bad JSON %q: %v", req.Method, req.URL, p.Body, err)
		}
	}
	if m == nil {
		m = map[string]any{"_raw": p.Body}
	}
	return p.Status, p.Header, m
}

// formRequest is a POST of form to path, with HTTP Basic credentials when
// user is set.
func (s *testServer) formRequest(path string, form url.Values, user, pass string) *http.Request {
	req, _ := http.NewRequest(http.MethodPost, s.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	return req
}

// postForm posts a form to path and decodes the JSON answer.
func (s *testServer) postForm(path string, form url.Values, user, pass string) (int, http.Header, map[string]any) {
	return doJSON(s.t, nil, s.formRequest(path, form, user, pass))
}

// sendForm posts a form to path with bareClient; it fails no test, so
// goroutines may use it.
func (s *testServer) sendForm(path string, form url.Values, user, pass string) (page, error) {
	return fetch(bareClient, s.formRequest(path, form, user, pass))
}

func (s *testServer) userinfo(accessToken string) (int, http.Header, map[string]any) {
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/userinfo", nil)
	if accessToken != "" {
		req.Header.Set("Authorization", "Bearer "+accessToken)
	}
	return doJSON(s.t, nil, req)
}

// oauthErr extracts the OAuth error code of a failed token call.
func oauthErr(err error) string {
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		return re.ErrorCode
	}
	if err != nil {
		return err.Error()
	}
	return ""
}

// parallel runs fn n times at once and collects the results.
func parallel[T any](n int, fn func(i int) T) []T {
	out := make([]T, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			out[i] = fn(i)
		}(i)
	}
	close(start)
	wg.Wait()
	return out
}
