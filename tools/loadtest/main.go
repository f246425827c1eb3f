// Command loadtest measures a running Keyport: discovery, JWKS, userinfo,
// client_credentials, refresh chains and whole browser code flows. It prints
// one line per scenario: requests, errors, throughput and latency
// percentiles.
//
//	go run ./tools/loadtest -url http://127.0.0.1:8080 -client-id bench -client-secret S \
//	    -public-client-id benchpub -user bench -password P [-duration 10s] [-concurrency 16] \
//	    [-only refresh,cc,ccjwt,userinfo,discovery,jwks,codeflow]
//	    [-jwt-client-id benchccjwt -jwt-client-secret S] [-refresh-clients bench-RS256,bench-ES256]
//
// It talks to loopback addresses only. scripts/bench.sh sets up a server
// pinned to one core and runs this on the other.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

type options struct {
	base         *url.URL
	clientID     string
	clientSecret string
	publicID     string
	user         string
	password     string
	redirectURI  string
	duration     time.Duration
	warmup       time.Duration
	concurrency  int
	flowConc     int
	flowUsers    int
	maxRequests  int64
	only         map[string]bool
	stdlibGets   bool
	consentEach  bool
	serverPID    int
	// jwtClientID and jwtClientSecret: the app of the ccjwt scenario,
	// one with JWT access tokens.
	jwtClientID     string
	jwtClientSecret string
	// refreshClients are the apps the refresh scenario runs a chain set
	// for, one after the other (they share -client-secret); empty is
	// -client-id alone.
	refreshClients []string
}

var allScenarios = []string{"discovery", "jwks", "userinfo", "cc", "ccjwt", "refresh", "codeflow"}

// defaultScenarios run when -only is not given; ccjwt joins them when
// -jwt-client-id names its app.
var defaultScenarios = []string{"discovery", "jwks", "userinfo", "cc", "refresh", "codeflow"}

func main() {
	var o options
	rawURL := flag.String("url", "http://127.0.0.1:8080", "Keyport's base URL (loopback only)")
	flag.StringVar(&o.clientID, "client-id", "bench", "confidential client (grants authorization_code, refresh_token, client_credentials)")
	flag.StringVar(&o.clientSecret, "client-secret", "", "its secret")
	flag.StringVar(&o.publicID, "public-client-id", "", "public client for the code-flow scenario (default: the confidential client)")
	flag.StringVar(&o.user, "user", "bench", "username to sign in with")
	flag.StringVar(&o.password, "password", "", "its password")
	flag.StringVar(&o.redirectURI, "redirect-uri", "http://127.0.0.1:9/cb", "redirect URI registered for the clients (nothing needs to listen there)")
	flag.DurationVar(&o.duration, "duration", 10*time.Second, "measuring time per scenario (the code flow runs twice: sequential, then concurrent)")
	flag.DurationVar(&o.warmup, "warmup", time.Second, "unmeasured warm-up per scenario")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent requests (refresh: chains)")
	flag.IntVar(&o.flowConc, "flow-concurrency", 8, "concurrent code flows in the second code-flow run")
	flag.IntVar(&o.flowUsers, "flow-users", 1, "people the concurrent code flows sign in as: -user, then -user with 2, 3, … appended (same password); with 1, concurrent checks of the one user's password are shared (one guess) and the figure flatters")
	flag.Int64Var(&o.maxRequests, "max-requests", 5_000_000, "stop a scenario after this many requests")
	flag.BoolVar(&o.stdlibGets, "stdlib-gets", false, "use net/http for the GET scenarios instead of the lean keep-alive client")
	flag.BoolVar(&o.consentEach, "consent-every-flow", false, "codeflow: send prompt=consent so every flow shows and answers the consent page (default: consent once, then remembered)")
	flag.IntVar(&o.serverPID, "server-pid", 0, "the server's process ID: adds its CPU use per scenario (server cpu%, CPU time per request) from /proc")
	flag.StringVar(&o.jwtClientID, "jwt-client-id", "", "ccjwt: a confidential client with JWT access tokens and the client_credentials grant")
	flag.StringVar(&o.jwtClientSecret, "jwt-client-secret", "", "ccjwt: its secret")
	refreshClients := flag.String("refresh-clients", "", "refresh: run the scenario once per client in this comma-separated list (they share -client-secret), e.g. one app per signing algorithm; default -client-id")
	only := flag.String("only", "", "scenarios to run, comma separated, from "+strings.Join(allScenarios, ",")+" (default all but ccjwt, and ccjwt too with -jwt-client-id)")
	flag.Parse()
	if *only == "" {
		*only = strings.Join(defaultScenarios, ",")
		if o.jwtClientID != "" {
			*only += ",ccjwt"
		}
	}

	u, err := url.Parse(strings.TrimSuffix(*rawURL, "/"))
	if err != nil || u.Scheme != "http" || u.Host == "" {
		fatalf("-url must be an http:// URL, got %q", *rawURL)
	}
	if !loopbackHost(u.Hostname()) {
		fatalf("refusing %s: this load generator only talks to loopback addresses", u.Host)
	}
	if u.Port() == "" {
		u.Host = net.JoinHostPort(u.Hostname(), "80")
	}
	o.base = u
	o.only = map[string]bool{}
	for _, s := range strings.Split(*only, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !slices.Contains(allScenarios, s) {
			fatalf("unknown scenario %q (have %s)", s, strings.Join(allScenarios, ","))
		}
		o.only[s] = true
	}
	if o.concurrency < 1 || o.flowConc < 1 || o.flowUsers < 1 || o.duration <= 0 || o.maxRequests < 1 {
		fatalf("-concurrency, -flow-concurrency, -duration and -max-requests must be positive")
	}
	needsUser := o.only["userinfo"] || o.only["refresh"] || o.only["codeflow"]
	if o.password == "" && needsUser {
		fatalf("-password is required for userinfo, refresh and codeflow")
	}
	if o.clientSecret == "" && (needsUser || o.only["cc"]) {
		fatalf("-client-secret is required")
	}
	if o.only["ccjwt"] && (o.jwtClientID == "" || o.jwtClientSecret == "") {
		fatalf("ccjwt needs -jwt-client-id and -jwt-client-secret")
	}
	for _, c := range strings.Split(*refreshClients, ",") {
		if c = strings.TrimSpace(c); c != "" {
			o.refreshClients = append(o.refreshClients, c)
		}
	}

	lt := newLoadTest(o)
	fmt.Printf("keyport load test against %s: %s per scenario, concurrency %d\n", u, o.duration, o.concurrency)
	header := fmt.Sprintf("%-52s %9s %7s %10s %9s %9s %9s", "scenario", "requests", "errors", "req/s", "p50", "p90", "p99")
	if o.serverPID > 0 {
		if _, err := processCPU(o.serverPID); err != nil {
			fatalf("-server-pid: %v", err)
		}
		header += fmt.Sprintf(" %7s %9s", "srv cpu", "cpu/req")
	}
	fmt.Println(header)
	ok := true
	for _, name := range allScenarios {
		if !o.only[name] {
			continue
		}
		if err := lt.run(name); err != nil {
			fmt.Printf("%-52s setup failed: %v\n", name, err)
			ok = false
		}
	}
	if !ok || sawErrors.Load() {
		os.Exit(1)
	}
}

func fatalf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "loadtest: "+format+"\n", a...)
	os.Exit(2)
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// loopbackDialer refuses every non-loopback address, whatever a redirect says.
func loopbackDialer() func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		if !loopbackHost(host) {
			return nil, fmt.Errorf("refusing to connect to non-loopback %s", addr)
		}
		return d.DialContext(ctx, network, addr)
	}
}

type loadTest struct {
	o         options
	transport *http.Transport
	api       *http.Client // token endpoint and friends: no redirects
}

func newLoadTest(o options) *loadTest {
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         loopbackDialer(),
		MaxIdleConns:        512,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  true,
	}
	return &loadTest{o: o, transport: tr, api: &http.Client{
		Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

func (lt *loadTest) url(path string) string { return lt.o.base.String() + path }

func (lt *loadTest) run(name string) error {
	switch name {
	case "discovery":
		lt.gets("discovery", "/.well-known/openid-configuration", "")
	case "jwks":
		lt.gets("jwks", "/keys", "")
	case "userinfo":
		sess, err := lt.signIn(lt.o.clientID, lt.o.clientSecret)
		if err != nil {
			return err
		}
		t, err := sess.tokens("openid profile email")
		if err != nil {
			return err
		}
		lt.gets("userinfo (at="+tokenKind(t.AccessToken)+")", "/userinfo", t.AccessToken)
	case "cc":
		return lt.clientCredentials("cc", lt.o.clientID, lt.o.clientSecret)
	case "ccjwt":
		return lt.clientCredentials("ccjwt", lt.o.jwtClientID, lt.o.jwtClientSecret)
	case "refresh":
		clients := lt.o.refreshClients
		if len(clients) == 0 {
			clients = []string{lt.o.clientID}
		}
		for _, id := range clients {
			if err := lt.refresh(id); err != nil {
				return fmt.Errorf("%s: %w", id, err)
			}
		}
	case "codeflow":
		return lt.codeFlows()
	}
	return nil
}

// Measurement.

type worker struct {
	lats []time.Duration
	errs int64
}

type result struct {
	name    string
	elapsed time.Duration
	lats    []time.Duration
	errs    int64
	// serverCPU is the server process's CPU time during the measured phase.
	serverCPU time.Duration
}

// errorLog prints the first few errors of a scenario.
type errorLog struct {
	mu sync.Mutex
	n  int
}

func (e *errorLog) report(scenario string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.n++
	if e.n <= 5 {
		fmt.Fprintf(os.Stderr, "  %s error: %v\n", scenario, trunc(err.Error(), 300))
	}
}

// drive runs fn in conc goroutines, first for the warm-up (unmeasured), then
// for the duration or until max requests, and reports what it measured. fn
// returns an error for a failed request; op is the worker's index.
func (lt *loadTest) drive(name string, conc int, warmup, dur time.Duration, maxReq int64, fn func(op int) error) result {
	elog := &errorLog{}
	if warmup > 0 {
		lt.phase(name, conc, warmup, maxReq, fn, nil)
	}
	workers := make([]*worker, conc)
	for i := range workers {
		workers[i] = &worker{lats: make([]time.Duration, 0, 4096)}
	}
	cpu0, _ := processCPU(lt.o.serverPID)
	elapsed := lt.phase(name, conc, dur, maxReq, fn, func(i int, d time.Duration, err error) {
		w := workers[i]
		if err != nil {
			w.errs++
			elog.report(name, err)
			return
		}
		w.lats = append(w.lats, d)
	})
	r := result{name: name, elapsed: elapsed}
	if cpu1, err := processCPU(lt.o.serverPID); err == nil && lt.o.serverPID > 0 {
		r.serverCPU = cpu1 - cpu0
	}
	for _, w := range workers {
		r.lats = append(r.lats, w.lats...)
		r.errs += w.errs
	}
	return r
}

func (lt *loadTest) phase(name string, conc int, dur time.Duration, maxReq int64, fn func(int) error, record func(int, time.Duration, error)) time.Duration {
	var count atomic.Int64
	deadline := time.Now().Add(dur)
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < conc; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for count.Add(1) <= maxReq {
				t0 := time.Now()
				if t0.After(deadline) {
					return
				}
				err := fn(i)
				if record != nil {
					record(i, time.Since(t0), err)
				}
			}
		}(i)
	}
	wg.Wait()
	return time.Since(start)
}

// sawErrors makes the exit status 1 when any request failed.
var sawErrors atomic.Bool

func (r result) print() {
	if r.errs > 0 {
		sawErrors.Store(true)
	}
	n := int64(len(r.lats)) + r.errs
	slices.Sort(r.lats)
	line := fmt.Sprintf("%-52s %9d %7d %10.0f %9s %9s %9s", r.name, n, r.errs, float64(n)/r.elapsed.Seconds(),
		pct(r.lats, 0.50), pct(r.lats, 0.90), pct(r.lats, 0.99))
	if r.serverCPU > 0 && n > 0 {
		line += fmt.Sprintf(" %6.0f%% %9s", 100*r.serverCPU.Seconds()/r.elapsed.Seconds(), pct([]time.Duration{r.serverCPU / time.Duration(n)}, 0))
	}
	fmt.Println(line)
}

func pct(sorted []time.Duration, p float64) string {
	if len(sorted) == 0 {
		return "-"
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	d := sorted[i]
	switch {
	case d >= 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d >= time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

func trunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// GET scenarios.

// gets hammers one GET endpoint. By default each worker uses its own
// keep-alive connection and a prepared request, so the generator, on one
// core, costs less than the server it measures; -stdlib-gets uses net/http.
func (lt *loadTest) gets(name, path, bearer string) {
	conc := lt.o.concurrency
	var fn func(int) error
	if lt.o.stdlibGets {
		fn = func(int) error {
			req, _ := http.NewRequest(http.MethodGet, lt.url(path), nil)
			if bearer != "" {
				req.Header.Set("Authorization", "Bearer "+bearer)
			}
			resp, err := lt.api.Do(req)
			if err != nil {
				return err
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("%d %s", resp.StatusCode, trunc(string(body), 200))
			}
			return nil
		}
	} else {
		var req bytes.Buffer
		fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: keyport-loadtest\r\nAccept: application/json\r\n", path, lt.o.base.Host)
		if bearer != "" {
			fmt.Fprintf(&req, "Authorization: Bearer %s\r\n", bearer)
		}
		req.WriteString("\r\n")
		conns := make([]*rawConn, conc)
		defer func() {
			for _, c := range conns {
				c.close()
			}
		}()
		fn = func(i int) error {
			if conns[i] == nil {
				conns[i] = &rawConn{addr: lt.o.base.Host, req: req.Bytes()}
			}
			return conns[i].get()
		}
	}
	lt.drive(name, conc, lt.o.warmup, lt.o.duration, lt.o.maxRequests, fn).print()
}

// rawConn is a minimal HTTP/1.1 keep-alive client for one prepared GET: one
// request in flight per connection, no pipelining.
type rawConn struct {
	addr string
	req  []byte
	c    net.Conn
	br   *bufio.Reader
	body []byte
}

func (rc *rawConn) close() {
	if rc != nil && rc.c != nil {
		rc.c.Close()
		rc.c = nil
	}
}

func (rc *rawConn) get() error {
	if rc.c == nil {
		c, err := loopbackDialer()(context.Background(), "tcp", rc.addr)
		if err != nil {
			return err
		}
		rc.c, rc.br = c, bufio.NewReaderSize(c, 16<<10)
	}
	rc.c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := rc.c.Write(rc.req); err != nil {
		rc.close()
		return err
	}
	status, err := rc.readResponse()
	if err != nil {
		rc.close()
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("%d %s", status, trunc(string(rc.body), 200))
	}
	return nil
}

func (rc *rawConn) readResponse() (int, error) {
	line, err := rc.br.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.1 ")) {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, fmt.Errorf("bad status line %q", line)
	}
	length, chunked, closing := -1, false, false
	for {
		h, err := rc.br.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		h = bytes.TrimRight(h, "\r\n")
		if len(h) == 0 {
			break
		}
		k, v, _ := bytes.Cut(h, []byte(":"))
		v = bytes.TrimSpace(v)
		switch {
		case bytes.EqualFold(k, []byte("Content-Length")):
			if length, err = strconv.Atoi(string(v)); err != nil {
				return 0, fmt.Errorf("bad Content-Length %q", v)
			}
		case bytes.EqualFold(k, []byte("Transfer-Encoding")):
			chunked = bytes.EqualFold(v, []byte("chunked"))
		case bytes.EqualFold(k, []byte("Connection")):
			closing = bytes.EqualFold(v, []byte("close"))
		}
	}
	rc.body = rc.body[:0]
	switch {
	case chunked:
		for {
			l, err := rc.br.ReadSlice('\n')
			if err != nil {
				return 0, err
			}
			sz, _, _ := bytes.Cut(bytes.TrimRight(l, "\r\n"), []byte(";"))
			n, err := strconv.ParseInt(string(sz), 16, 32)
			if err != nil {
				return 0, fmt.Errorf("bad chunk size %q", l)
			}
			if n == 0 {
				for { // trailers
					t, err := rc.br.ReadSlice('\n')
					if err != nil {
						return 0, err
					}
					if len(bytes.TrimRight(t, "\r\n")) == 0 {
						break
					}
				}
				break
			}
			if err := rc.readN(int(n) + 2); err != nil {
				return 0, err
			}
			rc.body = rc.body[:len(rc.body)-2]
		}
	case length >= 0:
		if err := rc.readN(length); err != nil {
			return 0, err
		}
	default:
		return 0, errors.New("response without a length")
	}
	if closing {
		rc.close()
	}
	return status, nil
}

func (rc *rawConn) readN(n int) error {
	off := len(rc.body)
	rc.body = slices.Grow(rc.body, n)[:off+n]
	_, err := io.ReadFull(rc.br, rc.body[off:])
	return err
}

// Token endpoint scenarios.

type tokenSet struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	IDToken      string `json:"id_token"`
	TokenType    string `json:"token_type"`
}

func tokenKind(t string) string {
	if strings.Count(t, ".") == 2 {
		return "jwt"
	}
	return "opaque"
}

// tokenPost calls the token endpoint, authenticating with HTTP Basic when
// secret is set.
func (lt *loadTest) tokenPost(clientID, secret string, form url.Values) (tokenSet, error) {
	if secret == "" {
		form.Set("client_id", clientID)
	}
	req, _ := http.NewRequest(http.MethodPost, lt.url("/oauth/token"), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret != "" {
		req.SetBasicAuth(url.QueryEscape(clientID), url.QueryEscape(secret))
	}
	resp, err := lt.api.Do(req)
	if err != nil {
		return tokenSet{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return tokenSet{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return tokenSet{}, fmt.Errorf("token endpoint (%s): %d %s", form.Get("grant_type"), resp.StatusCode, trunc(string(body), 300))
	}
	var t tokenSet
	if err := json.Unmarshal(body, &t); err != nil {
		return tokenSet{}, fmt.Errorf("token endpoint: %v: %s", err, trunc(string(body), 300))
	}
	if t.AccessToken == "" {
		return tokenSet{}, fmt.Errorf("token endpoint: no access token: %s", trunc(string(body), 300))
	}
	return t, nil
}

// clientCredentials hammers the client_credentials grant of one app.
func (lt *loadTest) clientCredentials(name, clientID, secret string) error {
	form := func() url.Values { return url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}} }
	t, err := lt.tokenPost(clientID, secret, form())
	if err != nil {
		return err
	}
	kind := tokenKind(t.AccessToken)
	if kind == "jwt" {
		kind += " " + jwtAlg(t.AccessToken)
	}
	fn := func(int) error {
		_, err := lt.tokenPost(clientID, secret, form())
		return err
	}
	lt.drive(fmt.Sprintf("%s (%s, at=%s)", name, clientID, kind), lt.o.concurrency, lt.o.warmup, lt.o.duration, lt.o.maxRequests, fn).print()
	return nil
}

// jwtAlg is the alg of a compact JWS's header, "?" when it cannot be read.
func jwtAlg(jws string) string {
	head, _, _ := strings.Cut(jws, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	var h struct {
		Alg string `json:"alg"`
	}
	if err != nil || json.Unmarshal(raw, &h) != nil || h.Alg == "" {
		return "?"
	}
	return h.Alg
}

// refresh runs one refresh-token chain per worker: every request presents
// the token the previous answer rotated to. A chain that breaks is replaced
// by a new one from the signed-in session.
func (lt *loadTest) refresh(clientID string) error {
	sess, err := lt.signIn(clientID, lt.o.clientSecret)
	if err != nil {
		return err
	}
	const scope = "openid profile email offline_access"
	chains := make([]string, lt.o.concurrency)
	var kind, idAlg string
	for i := range chains {
		t, err := sess.tokens(scope)
		if err != nil {
			return err
		}
		if t.RefreshToken == "" || t.IDToken == "" {
			return fmt.Errorf("code flow with offline_access gave no refresh or ID token")
		}
		chains[i], kind, idAlg = t.RefreshToken, tokenKind(t.AccessToken), jwtAlg(t.IDToken)
	}
	var mu sync.Mutex // the session browser is not for concurrent flows
	fn := func(i int) error {
		t, err := lt.tokenPost(clientID, lt.o.clientSecret, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {chains[i]}})
		if err == nil && (t.RefreshToken == "" || t.RefreshToken == chains[i] || t.IDToken == "") {
			err = fmt.Errorf("refresh answer without a rotated refresh token or an ID token")
		}
		if err != nil {
			mu.Lock()
			if nt, ferr := sess.tokens(scope); ferr == nil {
				chains[i] = nt.RefreshToken
			}
			mu.Unlock()
			return err
		}
		chains[i] = t.RefreshToken
		return nil
	}
	name := fmt.Sprintf("refresh (%s, id %s, at=%s, %d chains)", clientID, idAlg, kind, len(chains))
	lt.drive(name, len(chains), lt.o.warmup, lt.o.duration, lt.o.maxRequests, fn).print()
	return nil
}

// Browser code flows.

// browser is one user agent: its own cookie jar, the shared connections.
type browser struct {
	lt       *loadTest
	clientID string
	secret   string
	c        *http.Client
	steps    map[string]time.Duration // time per step of the last flow
	prompt   string                   // prompt parameter of the authorization request
	user     string                   // who signs in; "" is -user
}

func (lt *loadTest) browser(clientID, secret string) *browser {
	jar, _ := cookiejar.New(nil)
	redirect := lt.o.redirectURI
	return &browser{lt: lt, clientID: clientID, secret: secret, c: &http.Client{
		Jar: jar, Transport: lt.transport, Timeout: 30 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), redirect) || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			if !loopbackHost(req.URL.Hostname()) {
				return fmt.Errorf("refusing redirect to %s", req.URL.Host)
			}
			return nil
		},
	}}
}

// signIn returns a browser with a session, for flows that need tokens but
// are not what is measured.
func (lt *loadTest) signIn(clientID, secret string) (*browser, error) {
	b := lt.browser(clientID, secret)
	_, err := b.tokens("openid")
	return b, err
}

type page struct {
	status   int
	url      *url.URL
	body     string
	location string
}

func (b *browser) do(step string, req *http.Request) (page, error) {
	t0 := time.Now()
	resp, err := b.c.Do(req)
	if err != nil {
		return page{}, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if b.steps != nil {
		b.steps[step] += time.Since(t0)
	}
	return page{status: resp.StatusCode, url: resp.Request.URL, body: string(body), location: resp.Header.Get("Location")}, err
}

var hiddenInput = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)

func (b *browser) submit(step string, p page, action string, extra url.Values) (page, error) {
	form := url.Values{}
	for _, m := range hiddenInput.FindAllStringSubmatch(p.body, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if form.Get("csrf_token") == "" {
		return page{}, fmt.Errorf("%s: no csrf_token in the page at %s", step, p.url)
	}
	for k, v := range extra {
		form[k] = v
	}
	u, err := p.url.Parse(action)
	if err != nil {
		return page{}, err
	}
	req, _ := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", b.lt.o.base.Scheme+"://"+b.lt.o.base.Host)
	return b.do(step, req)
}

func isLoginPage(p page) bool {
	return p.status < 500 && strings.Contains(p.body, `action="/login"`) && strings.Contains(p.body, `name="authRequestID"`)
}
func isConsentPage(p page) bool {
	return p.status == 200 && strings.Contains(p.body, `action="/consent"`)
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// tokens runs one authorization-code flow with PKCE: authorize, sign in when
// there is no session, consent when asked, then the token exchange.
func (b *browser) tokens(scope string) (tokenSet, error) {
	o := b.lt.o
	verifier := randomString(32)
	sum := sha256.Sum256([]byte(verifier))
	state, nonce := randomString(12), randomString(12)
	q := url.Values{
		"client_id": {b.clientID}, "redirect_uri": {o.redirectURI}, "response_type": {"code"}, "scope": {scope},
		"state": {state}, "nonce": {nonce},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
	}
	if b.prompt != "" {
		q.Set("prompt", b.prompt)
	}
	req, _ := http.NewRequest(http.MethodGet, b.lt.url("/authorize?"+q.Encode()), nil)
	p, err := b.do("authorize", req)
	for i := 0; err == nil && i < 4; i++ {
		switch {
		case isLoginPage(p):
			user := o.user
			if b.user != "" {
				user = b.user
			}
			p, err = b.submit("login", p, "/login", url.Values{"login": {user}, "password": {o.password}})
		case isConsentPage(p):
			p, err = b.submit("consent", p, "/consent", url.Values{"decision": {"allow"}})
		default:
			i = 4
		}
	}
	if err != nil {
		return tokenSet{}, err
	}
	if p.status != http.StatusFound || !strings.HasPrefix(p.location, o.redirectURI) {
		return tokenSet{}, fmt.Errorf("code flow did not reach the redirect URI: %d at %s -> %q: %s", p.status, p.url, p.location, trunc(strings.Join(strings.Fields(p.body), " "), 300))
	}
	loc, err := url.Parse(p.location)
	if err != nil {
		return tokenSet{}, err
	}
	lq := loc.Query()
	if e := lq.Get("error"); e != "" {
		return tokenSet{}, fmt.Errorf("authorization error %s: %s", e, lq.Get("error_description"))
	}
	if lq.Get("state") != state || lq.Get("code") == "" {
		return tokenSet{}, fmt.Errorf("bad authorization response %s", p.location)
	}
	t0 := time.Now()
	t, err := b.lt.tokenPost(b.clientID, b.secret, url.Values{
		"grant_type": {"authorization_code"}, "code": {lq.Get("code")}, "redirect_uri": {o.redirectURI}, "code_verifier": {verifier},
	})
	if b.steps != nil {
		b.steps["token"] += time.Since(t0)
	}
	if err == nil && strings.Contains(scope, "openid") && t.IDToken == "" {
		err = errors.New("token response without an ID token")
	}
	return t, err
}

// codeFlows measures whole sign-ins from a fresh browser each time: the
// login form (argon2id), consent when the client asks for it, the code and
// the token exchange. First one at a time for latency, then several at once
// for throughput.
func (lt *loadTest) codeFlows() error {
	id, secret := lt.o.clientID, lt.o.clientSecret
	if lt.o.publicID != "" {
		id, secret = lt.o.publicID, ""
	}
	const scope = "openid profile email offline_access"
	// One flow outside the measurement, which also answers consent once for
	// this user and client the way a first visit does.
	// flowUser is who worker i signs in as in the concurrent run.
	flowUser := func(i int) string {
		if n := i % lt.o.flowUsers; n > 0 {
			return fmt.Sprintf("%s%d", lt.o.user, n+1)
		}
		return lt.o.user
	}
	for i := range lt.o.flowUsers {
		b := lt.browser(id, secret)
		b.user = flowUser(i)
		if _, err := b.tokens(scope); err != nil {
			return fmt.Errorf("first sign-in of %s: %w", b.user, err)
		}
	}
	var mu sync.Mutex
	steps := map[string][]time.Duration{}
	flow := func(record bool) func(int) error {
		return func(i int) error {
			b := lt.browser(id, secret)
			if !record {
				b.user = flowUser(i)
			}
			if lt.o.consentEach {
				b.prompt = "consent"
			}
			if record {
				b.steps = map[string]time.Duration{}
			}
			_, err := b.tokens(scope)
			if record && err == nil {
				mu.Lock()
				for k, v := range b.steps {
					steps[k] = append(steps[k], v)
				}
				mu.Unlock()
			}
			return err
		}
	}
	lt.drive("codeflow sequential ("+id+")", 1, lt.o.warmup, lt.o.duration, lt.o.maxRequests, flow(true)).print()
	var parts []string
	for _, k := range []string{"authorize", "login", "consent", "token"} {
		if d := steps[k]; len(d) > 0 {
			slices.Sort(d)
			parts = append(parts, fmt.Sprintf("%s %s", k, pct(d, 0.5)))
		}
	}
	fmt.Printf("  %s\n", "p50 per step: "+strings.Join(parts, ", "))
	lt.drive(fmt.Sprintf("codeflow %d at once (%s)", lt.o.flowConc, id), lt.o.flowConc, lt.o.warmup, lt.o.duration, lt.o.maxRequests, flow(false)).print()
	return nil
}

// processCPU is the user and system CPU time the process has used, from
// /proc/PID/stat (Linux). With the server alone on its core, CPU time per
// request is the figure that decides throughput; it is also steadier than
// req/s on a shared machine.
func processCPU(pid int) (time.Duration, error) {
	if pid <= 0 {
		return 0, nil
	}
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read the server's CPU time: %w", err)
	}
	// The command name (field 2) may hold spaces; fields after its closing
	// parenthesis are plain. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(raw, ')')
	if i < 0 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	fields := strings.Fields(string(raw[i+1:]))
	if len(fields) < 13 {
		return 0, fmt.Errorf("unexpected /proc/%d/stat", pid)
	}
	var ticks int64
	for _, f := range fields[11:13] {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("unexpected /proc/%d/stat: %w", pid, err)
		}
		ticks += v
	}
	// USER_HZ is 100 on every Linux architecture Go supports.
	return time.Duration(ticks) * 10 * time.Millisecond, nil
}
