package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
)

// authorizeURL is an authorization request of app with extra parameters.
func authorizeURL(base string, app *testClient, extra url.Values) string {
	_, challenge := pkce()
	q := url.Values{
		"client_id": {app.ID}, "redirect_uri": {app.RedirectURI}, "response_type": {"code"}, "scope": {"openid"},
		"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "state": {"st"}, "nonce": {"no"},
	}
	for k, v := range extra {
		q[k] = v
	}
	return base + "/authorize?" + q.Encode()
}

// /authorize refuses parameters longer than real clients send (see
// provider.authorizeParamLimits): to the app as invalid_request when the
// client and redirect URI are good, else with the error page; values at the
// limit still sign in.
func TestAuthorizeParameterLimits(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	b := newBrowser(t)
	long := func(n int) string { return strings.Repeat("x", n) }

	for _, c := range []struct {
		name, param, value, error string
		wantState                 bool
	}{
		{"state", "state", long(2049), "invalid_request", false},
		{"nonce", "nonce", long(2049), "invalid_request", true},
		{"login_hint", "login_hint", long(513), "invalid_request", true},
		{"code_challenge", "code_challenge", long(129), "invalid_request", true},
		{"acr_values", "acr_values", long(257), "invalid_request", true},
		{"ui_locales", "ui_locales", long(257), "invalid_request", true},
		{"prompt", "prompt", long(65), "invalid_request", true},
		{"a control character in state", "state", "a\nb", "invalid_request", false},
		{"33 scopes", "scope", "openid" + strings.Repeat(" profile", 32), "invalid_scope", true},
		{"a scope of 129 characters", "scope", "openid " + long(129), "invalid_scope", true},
	} {
		p := b.get(authorizeURL(srv.URL, app, url.Values{c.param: {c.value}}))
		res := landed(t, p, app.RedirectURI)
		if res.Error != c.error || res.Code != "" || !strings.Contains(res.Query.Get("error_description"), strings.Fields(c.param)[0]) {
			t.Errorf("%s: landed with %v, want %s naming %s", c.name, res.Query, c.error, c.param)
		}
		if wantState := map[bool]string{true: "st", false: ""}[c.wantState]; res.State != wantState {
			t.Errorf("%s: state %.20q came back, want %q", c.name, res.State, wantState)
		}
	}

	// With a bad client or redirect URI nothing goes back to the app.
	for name, extra := range map[string]url.Values{
		"unknown client":          {"client_id": {"nobody"}, "state": {long(5000)}},
		"unregistered redirect":   {"redirect_uri": {"http://127.0.0.1:9/elsewhere"}, "state": {long(5000)}},
		"unregistered, big nonce": {"redirect_uri": {"http://127.0.0.1:9/elsewhere"}, "nonce": {long(5000)}},
	} {
		p := b.get(authorizeURL(srv.URL, app, extra))
		if p.Status != http.StatusBadRequest || p.Location != "" || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %q, want the error page", name, p.Status, p.Location)
		}
	}

	// At the limits, with the characters that cost most to store, a real
	// relying party signs in and gets its state and nonce back intact.
	state := strings.Repeat(`<&"\>`, 2048/5) + "xxx"
	nonce := strings.Repeat("n", 1024)
	verifier, challenge := pkce()
	p := app.authorize(b, state, oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"), oidc.Nonce(nonce))
	res := landed(t, app.finish(b, p, "gus"), app.RedirectURI)
	if res.Code == "" || res.State != state {
		t.Fatalf("sign-in with parameters at the limits: %v, state %d bytes", res.Error, len(res.State))
	}
	tok, err := app.exchange(res.Code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := tok.Extra("id_token").(string)
	claims, err := app.verifier.Verify(context.Background(), idt)
	if err != nil || claims.Nonce != nonce {
		t.Fatalf("ID token of a sign-in with parameters at the limits: %v, nonce %d bytes", err, len(claims.Nonce))
	}
}

// The parameters /authorize stores beyond those of
// TestAuthorizeParameterLimits are bounded too, even with max_body_bytes
// raised: response_mode and code_challenge_method take one of their few
// values, refused to the app as invalid_request otherwise; a redirect URI
// that is too long, carries a user name or a fragment (which zitadel would
// let through for a native app's loopback address, comparing only path and
// query) gets the error page and is not redirected to.
func TestAuthorizeStoredParametersBounded(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.Limits.MaxBodyBytes = 2 << 20 })
	srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	cli := srv.createClient(account.NewClient{ID: "cli", Public: true, SkipConsent: true,
		RedirectURIs: []string{"http://127.0.0.1:4444/callback/cli", "com.example.cli:/cb"}})
	b := newBrowser(t)
	form := func(c *testClient, extra url.Values) url.Values {
		u, _ := url.Parse(authorizeURL(srv.URL, c, extra))
		return u.Query()
	}
	for _, c := range []struct {
		name  string
		param string
		extra url.Values
		post  bool
	}{
		{"response_mode of 30000 bytes", "response_mode", url.Values{"response_mode": {strings.Repeat("x", 30000)}}, false},
		{"response_mode of 64000 bytes, posted", "response_mode", url.Values{"response_mode": {strings.Repeat("x", 64000)}}, true},
		{"response_mode of 2 MB, posted", "response_mode", url.Values{"response_mode": {strings.Repeat("x", 2000000)}}, true},
		{"response_mode=form_post.jwt", "response_mode", url.Values{"response_mode": {"form_post.jwt"}}, false},
		{"code_challenge_method of 64000 bytes without code_challenge", "code_challenge_method",
			url.Values{"code_challenge": {""}, "code_challenge_method": {strings.Repeat("y", 64000)}}, true},
		{"code_challenge_method=plain without code_challenge", "code_challenge_method",
			url.Values{"code_challenge": {""}, "code_challenge_method": {"plain"}}, false},
	} {
		var p page
		if c.post {
			p = b.post(srv.URL+"/authorize", form(app, c.extra))
		} else {
			p = b.get(authorizeURL(srv.URL, app, c.extra))
		}
		res := landed(t, p, app.RedirectURI)
		if res.Error != "invalid_request" || res.Code != "" || !strings.Contains(res.Query.Get("error_description"), c.param) {
			t.Errorf("%s: landed with %.200v, want invalid_request naming %s", c.name, res.Query, c.param)
		}
	}
	for _, c := range []struct {
		name, redirect string
		client         *testClient
		says           string
	}{
		{"a loopback redirect URI with a user name of 30000 bytes", "http://" + strings.Repeat("u", 30000) + "@127.0.0.1:9/callback/cli", cli, "redirect_uri is longer"},
		{"a loopback redirect URI with a fragment of 30000 bytes", "http://127.0.0.1:9/callback/cli#" + strings.Repeat("f", 30000), cli, "redirect_uri is longer"},
		{"a loopback redirect URI with a password", "http://u:p@127.0.0.1:9/callback/cli", cli, "user name or password"},
		{"a loopback redirect URI with an empty fragment", "http://127.0.0.1:9/callback/cli#", cli, "must not contain a fragment"},
		{"a loopback redirect URI with a port of 3000 digits", "http://127.0.0.1:" + strings.Repeat("0", 2990) + "4444/callback/cli", cli, "redirect_uri is longer"},
		// zitadel compares a web app's redirect URI whole: not registered.
		{"a registered redirect URI with a fragment", app.RedirectURI + "#x", app, "not registered"},
	} {
		p := b.post(srv.URL+"/authorize", form(c.client, url.Values{"redirect_uri": {c.redirect}}))
		if p.Status != http.StatusBadRequest || p.Location != "" || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") || !strings.Contains(p.Body, c.says) {
			t.Errorf("%s: %d %.100q, want the error page saying %q:\n%s", c.name, p.Status, p.Location, c.says, truncateBody(p.Body))
		}
	}
	// The native app still signs in on a loopback port of its choosing.
	loopback := srv.rp(cli.ID, "", "http://127.0.0.1:9/callback/cli")
	code, verifier := loopback.signIn(b, "gus")
	if _, err := loopback.exchange(code, verifier); err != nil {
		t.Errorf("the native app's sign-in on another loopback port: %v", err)
	}
}

// When one address has max_pending_sign_ins_per_address sign-ins pending,
// its oldest makes room for its newest; other addresses are untouched.
func TestPendingSignInsPerAddress(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Limits.MaxPendingSignIns, c.Limits.MaxPendingSignInsPerAddress = 10, 3
	})
	srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	busy, other := browserFrom(t, "127.0.0.5"), browserFrom(t, "127.0.0.6")
	start := func(b *browser) page {
		t.Helper()
		p := b.get(authorizeURL(srv.URL, app, nil))
		if !isLoginPage(p) {
			t.Fatalf("authorize: %d %s", p.Status, truncateBody(p.Body))
		}
		return p
	}
	quiet := start(other)
	var pages []page
	for range 4 {
		pages = append(pages, start(busy))
	}
	if p := busy.get(pages[0].URL.String()); isLoginPage(p) || p.Status != http.StatusNotFound {
		t.Errorf("the oldest of four sign-ins from one address: %d, want it gone", p.Status)
	}
	for i, p := range pages[1:] {
		if again := busy.get(p.URL.String()); !isLoginPage(again) {
			t.Errorf("sign-in %d of the busy address: %d", i+1, again.Status)
		}
	}
	// The newest and the other address's sign-in both finish.
	for _, f := range []struct {
		b *browser
		p page
	}{{busy, pages[3]}, {other, quiet}} {
		if res := landed(t, app.finish(f.b, f.p, "gus"), app.RedirectURI); res.Code == "" {
			t.Errorf("sign-in: %+v", res)
		}
	}
}

// noRedirects is a client that connects from ip and stops at the first
// redirect, as a script flooding /authorize does: it never opens the
// sign-in page its requests lead to.
func noRedirects(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	return &http.Client{
		Transport:     &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 8},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		Timeout:       20 * time.Second,
	}
}

// startSignIn sends one authorization request with c and reports whether
// it was stored (it leads to the sign-in page).
func startSignIn(t *testing.T, c *http.Client, authorizeURL string) bool {
	t.Helper()
	resp, err := c.Get(authorizeURL)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return strings.Contains(resp.Header.Get("Location"), "/login?authRequestID=")
}

// When the total is full, the sign-in whose code was just issued is not
// the one evicted, though its life was shortened to the code's and so it
// is the closest to expiry: the app's exchange succeeds.
func TestPendingSignInsSpareIssuedCodes(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Limits.MaxPendingSignIns, c.Limits.MaxPendingSignInsPerAddress = 10, 10
	})
	srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	for i := 1; i <= 9; i++ {
		if !startSignIn(t, noRedirects(fmt.Sprintf("127.0.2.%d", i)), authorizeURL(srv.URL, app, nil)) {
			t.Fatal("authorization request not stored")
		}
	}
	// The tenth: a person signs in, and the app receives a code.
	code, verifier := app.signIn(browserFrom(t, "127.0.0.50"), "gus")
	// One more request from elsewhere: one request must go.
	if !startSignIn(t, noRedirects("127.0.2.10"), authorizeURL(srv.URL, app, nil)) {
		t.Fatal("authorization request not stored")
	}
	if _, err := app.exchange(code, verifier); err != nil {
		t.Errorf("the person's code exchange after one more authorization request: %v", err)
	}
}

// Sign-ins whose code went out are never evicted. When every pending
// sign-in of an address has its code (here one browser signing in again
// and again through single sign-on, its app never exchanging the codes),
// that address's next authorization request is refused with
// temporarily_unavailable until a code is exchanged or expires; other
// addresses go on.
func TestPendingSignInsAllWithCodes(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Limits.MaxPendingSignIns, c.Limits.MaxPendingSignInsPerAddress = 20, 3
	})
	srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	b := browserFrom(t, "127.0.0.60")
	var codes, verifiers []string
	for range 3 {
		code, verifier := app.signIn(b, "gus")
		codes, verifiers = append(codes, code), append(verifiers, verifier)
	}
	res := landed(t, app.authorize(b, "st"), app.RedirectURI)
	if res.Error != "temporarily_unavailable" || res.Code != "" || res.State != "st" {
		t.Errorf("a fourth sign-in from the address: landed with %v, want temporarily_unavailable", res.Query)
	}
	if code, verifier := app.signIn(browserFrom(t, "127.0.0.61"), "gus"); code == "" {
		t.Errorf("a sign-in from another address got no code (%s)", verifier)
	}
	for i := range codes {
		if _, err := app.exchange(codes[i], verifiers[i]); err != nil {
			t.Errorf("code %d: %v", i, err)
		}
	}
	if code, _ := app.signIn(b, "gus"); code == "" {
		t.Error("a sign-in from the address once its codes were exchanged got no code")
	}
}

// More addresses than max_pending_sign_ins / max_pending_sign_ins_per_address
// flood /authorize, each at its own limit: people who opened the sign-in
// page before or during the flood finish signing in. The flood's requests
// evict each other, since its addresses hold the most.
func TestPendingSignInsManyAddresses(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Limits.MaxPendingSignIns, c.Limits.MaxPendingSignInsPerAddress = 50, 5
	})
	srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	early := browserFrom(t, "127.0.0.50")
	earlyPage := app.authorize(early, "st")
	if !isLoginPage(earlyPage) {
		t.Fatalf("no sign-in page: %d", earlyPage.Status)
	}
	var late *browser
	var latePage page
	flooders := make([]*http.Client, 60)
	for a := range flooders {
		flooders[a] = noRedirects(fmt.Sprintf("127.0.3.%d", a+1))
	}
	for round := range 7 {
		if round == 3 {
			late = browserFrom(t, "127.0.0.51")
			latePage = app.authorize(late, "st")
			if !isLoginPage(latePage) {
				t.Fatalf("no sign-in page during the flood: %d", latePage.Status)
			}
		}
		for _, c := range flooders {
			if !startSignIn(t, c, authorizeURL(srv.URL, app, nil)) {
				t.Fatal("flood request not stored")
			}
		}
	}
	for name, f := range map[string]struct {
		b *browser
		p page
	}{"before the flood": {early, earlyPage}, "during the flood": {late, latePage}} {
		res := landed(t, app.finish(f.b, f.p, "gus"), app.RedirectURI)
		if res.Code == "" {
			t.Errorf("the person who opened the sign-in page %s: landed with %v", name, res.Query)
		}
	}
}

// A flood of /authorize requests against `keyport serve`, from more
// addresses than max_pending_sign_ins / max_pending_sign_ins_per_address
// (so the total limit evicts, not only the per-address one), every stored
// parameter at its largest with the characters that cost most, and some
// requests oversized in each stored parameter: the flow file and the
// server's memory stay within the bound config.toml documents, and people
// signing in from other addresses succeed: one who opened the sign-in page
// before the flood and finishes after it, one during it, one after it.
func TestAuthorizeFloodStaysBounded(t *testing.T) {
	const (
		total      = 1000
		perAddress = 100
		addresses  = 24 // more than total / perAddress
		secret     = "flood-test-client-secret-0123456789"
		redirect   = "http://127.0.0.1:9/callback/app"
	)
	// A registered redirect URI as long as /authorize accepts (2 KiB).
	longRedirect := redirect + "/" + strings.Repeat("r", 2048-len(redirect)-1)
	dir := t.TempDir()
	cliMust(t, map[string]string{"KEYPORT_DATA_DIR": dir}, testPassword+"\n", "user", "create", "--username", "gus", "--email", "gus@example.com", "--password-stdin")
	child := startChild(t, dir, fmt.Sprintf(`
[limits]
max_pending_sign_ins = %d
max_pending_sign_ins_per_address = %d

[[clients]]
id = "app"
secret = %q
redirect_uris = [%q, %q]
skip_consent = true
`, total, perAddress, secret, redirect, longRedirect))
	app := (&testServer{t: t, URL: child.URL}).rp("app", secret, redirect)
	flows := filepath.Join(dir, "keyport-flows.db")
	_, peakBefore := child.memory()

	// Every flood request is stored at the largest size allowed: each
	// limited parameter at its limit (the code challenge at the length of
	// an S256 one), of quotes (stored as \"), lists of
	// one-character items, the longest response mode, 32 scopes, the long
	// redirect URI.
	quotes := func(n int) string { return strings.Repeat(`"`, n) }
	items := func(n int) string { return strings.TrimSpace(strings.Repeat(`" `, n/2)) }
	atLimit := url.Values{
		"state": {quotes(2048)}, "nonce": {quotes(1024)}, "login_hint": {quotes(512)},
		"code_challenge": {strings.Repeat("A", 43)}, "code_challenge_method": {"S256"}, // S256's only length
		"ui_locales": {items(256)}, "acr_values": {items(256)}, "prompt": {"login consent select_account " + items(34)},
		"response_mode": {"form_post"}, "max_age": {"18446744073709551615"},
		"scope":        {"openid" + strings.Repeat(" offline_access", 31)},
		"redirect_uri": {longRedirect},
	}
	// One in ten is oversized in one stored parameter, and refused: to
	// the app as invalid_request, or with the error page for a bad
	// redirect URI.
	oversized := []url.Values{
		{"state": {strings.Repeat("x", 16<<10)}},
		{"response_mode": {strings.Repeat("m", 30000)}},
		{"code_challenge": {""}, "code_challenge_method": {strings.Repeat("c", 30000)}},
		{"redirect_uri": {redirect + "#" + strings.Repeat("f", 30000)}},
		{"redirect_uri": {redirect + "/" + strings.Repeat("r", 3000)}},
	}
	// The flood goes on until it has stored three times what the flow file
	// may keep, or for at most maxDuration on a slow machine.
	const target = 3 * total
	maxDuration := 20 * time.Second
	if raceEnabled {
		maxDuration = 60 * time.Second
	}
	var sent, stored, refused atomic.Int64
	ctx, cancel := context.WithTimeout(context.Background(), maxDuration)
	defer cancel()

	// Someone opens the sign-in page before the flood, and finishes once
	// it is over.
	early := browserFrom(t, "127.0.0.9")
	earlyPage := app.authorize(early, "early")
	if !isLoginPage(earlyPage) {
		t.Fatalf("no sign-in page before the flood: %d", earlyPage.Status)
	}

	began := time.Now()
	var wg sync.WaitGroup
	for a := 1; a <= addresses; a++ {
		client := noRedirects(fmt.Sprintf("127.0.4.%d", a))
		wg.Go(func() {
			for i := 0; ctx.Err() == nil; i++ {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, authorizeURL(child.URL, app, atLimit), nil)
				if (i+a)%10 == 0 {
					// Posted: the request line could not hold it.
					extra := cloneForm(atLimit)
					for k, v := range oversized[(i/10+a)%len(oversized)] {
						extra[k] = v
					}
					u, _ := url.Parse(authorizeURL(child.URL, app, extra))
					req, _ = http.NewRequestWithContext(ctx, http.MethodPost, child.URL+"/authorize", strings.NewReader(u.RawQuery))
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				}
				resp, err := client.Do(req)
				if err != nil {
					continue // the end of the flood
				}
				body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
				resp.Body.Close()
				sent.Add(1)
				html := strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html")
				switch loc := resp.Header.Get("Location"); {
				case strings.Contains(loc, "/login?authRequestID="):
					stored.Add(1)
				case strings.Contains(loc, "error=invalid_request"),
					// response_mode=form_post: the refusal is posted to the app.
					resp.StatusCode == http.StatusOK && html && strings.Contains(string(body), `value="invalid_request"`),
					// A bad redirect URI: the error page.
					resp.StatusCode == http.StatusBadRequest && loc == "" && html:
					refused.Add(1)
				default:
					t.Errorf("flood request: %d %.200q", resp.StatusCode, loc)
					return
				}
			}
		})
	}
	// until waits for the flood to store n requests (or to end).
	until := func(n int64) {
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for stored.Load() < n && ctx.Err() == nil {
			<-tick.C
		}
	}
	// Someone signs in from another address while the flood runs, and
	// again once it is over.
	until(target / 2)
	if _, err := app.exchange(app.signIn(browserFrom(t, "127.0.0.10"), "gus")); err != nil {
		t.Errorf("sign-in during the flood: %v", err)
	}
	until(target)
	cancel()
	wg.Wait()
	duration := time.Since(began).Round(100 * time.Millisecond)
	if res := landed(t, app.finish(early, earlyPage, "gus"), app.RedirectURI); res.Code == "" {
		t.Errorf("the sign-in opened before the flood: %v", res.Query)
	} else if _, err := app.exchange(res.Code, ""); err != nil {
		t.Errorf("the sign-in opened before the flood: exchange: %v", err)
	}
	if _, err := app.exchange(app.signIn(browserFrom(t, "127.0.0.11"), "gus")); err != nil {
		t.Errorf("sign-in after the flood: %v", err)
	}

	fi, err := os.Stat(flows)
	if err != nil {
		t.Fatal(err)
	}
	_, peak := child.memory()
	// config.toml: the flow file stays below max_pending_sign_ins * 32 KiB,
	// and memory may grow by as much, the file being mapped. On top, the
	// flood's requests in flight take heap: 10 to 18 MiB live during the
	// flood here (GODEBUG=gctrace=1), which `keyport serve` lets grow five
	// times before it collects (serverGCPercent): heap goals up to 92 MiB;
	// 128 MiB allowed. The race detector's shadow memory multiplies what
	// the server allocates.
	fileBound := int64(total) * 32 << 10
	memBound := peakBefore + fileBound + 128<<20
	if raceEnabled {
		memBound = 4 * memBound
	}
	t.Logf("%d requests from %d addresses in %s (%d stored, %d refused); %s: %d KiB (bound %d KiB); peak memory %d MiB before, %d MiB after (bound %d MiB)",
		sent.Load(), addresses, duration, stored.Load(), refused.Load(), filepath.Base(flows), fi.Size()>>10, fileBound>>10, peakBefore>>20, peak>>20, memBound>>20)
	if stored.Load() < 2*total {
		t.Errorf("the flood stored only %d requests in %s: too few to show the limits at work", stored.Load(), duration)
	}
	if refused.Load() == 0 {
		t.Error("no oversized request was refused")
	}
	if fi.Size() > fileBound {
		t.Errorf("%s is %d KiB after the flood, above the documented %d KiB", filepath.Base(flows), fi.Size()>>10, fileBound>>10)
	}
	if peak > memBound {
		t.Errorf("peak memory %d MiB, above %d MiB", peak>>20, memBound>>20)
	}
	if logs := child.Logs(); !strings.Contains(logs, "too many pending sign-ins") {
		t.Errorf("no log line about the evicted sign-ins:\n%s", truncateBody(logs))
	}
}
