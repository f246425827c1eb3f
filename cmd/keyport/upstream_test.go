package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/directory"
	oidcsource "github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/storage"
)

// upstreamPair starts an upstream Keyport with user "ursula" and a client
// for the downstream Keyport, which lists the upstream as a directory.
func upstreamPair(t *testing.T, mutate func(*config.Directory)) (up, down *testServer) {
	t.Helper()
	rig := startUpstreamRig(t, mutate, nil)
	return rig.up, rig.down
}

// signInUpstream clicks the upstream button on down's sign-in page, signs in
// at the upstream, and returns the page the browser lands on.
func signInUpstream(t *testing.T, down *testServer, b *browser, start page) page {
	t.Helper()
	if !hasForm(start.Body, "/login/upstream/up") || !strings.Contains(start.Body, "Sign in with Upstream Keyport") {
		t.Fatalf("no upstream button: %s", truncateBody(start.Body))
	}
	p := b.submit(start, "/login/upstream/up", nil)
	if !isLoginPage(p) || !strings.HasPrefix(p.URL.String(), strings.TrimSuffix(p.URL.Scheme+"://"+p.URL.Host, "/")) {
		t.Fatalf("not at the upstream's sign-in page: %s", p.URL)
	}
	return b.submit(p, "/login", url.Values{"login": {"ursula"}, "password": {testPassword}})
}

func TestUpstreamOIDCSignIn(t *testing.T) {
	up, down := upstreamPair(t, nil)
	rp := down.createClient(account.NewClient{ID: "app", SkipConsent: true})
	b := newBrowser(t)
	start := rp.authorize(b, "st-1")
	p := signInUpstream(t, down, b, start)
	res := landed(t, p, rp.RedirectURI)
	if res.Code == "" {
		t.Fatalf("no code after the upstream sign-in: %d %s", p.Status, truncateBody(p.Body))
	}
	tok, err := rp.exchange(res.Code, "")
	if err != nil {
		t.Fatal(err)
	}
	claims := idTokenClaims(t, rp, tok)
	local, err := down.Main.Store.GetUserByLogin(context.Background(), "ursula")
	if err != nil {
		t.Fatal(err)
	}
	upUser, _ := up.Main.Store.GetUserByLogin(context.Background(), "ursula")
	if claims["sub"] != local.ID || claims["sub"] == upUser.ID || claims["email"] != "ursula@example.com" || claims["name"] != "Ursula Tester" {
		t.Fatalf("claims: %v", claims)
	}
	if local.Source != "up" || len(local.Identities) != 1 || local.Identities[0].UserID != upUser.ID || local.Identities[0].Provider != "oidc" {
		t.Fatalf("local record: %+v", local)
	}
	if amr, _ := claims["amr"].([]any); len(amr) != 2 || amr[0] != "fed" || amr[1] != "pwd" {
		t.Errorf("amr should say fed, then pass the upstream's through: %v", claims["amr"])
	}
}

func TestUpstreamStateAndNonceTampering(t *testing.T) {
	_, down := upstreamPair(t, nil)
	b := newBrowser(t)
	start := b.get(down.URL + "/login")
	// Follow to the upstream, then answer the callback with a forged state.
	p := b.submit(start, "/login/upstream/up", nil)
	p = b.submit(p, "/login", url.Values{"login": {"ursula"}, "password": {testPassword}})
	cb := ""
	for _, v := range b.visited {
		if strings.Contains(v, "/login/upstream/callback") {
			cb = v
		}
	}
	if cb == "" || p.URL.Path != "/" {
		t.Fatalf("the honest round trip failed: %s visited %v", p.URL, b.visited)
	}
	// The same callback again: the attempt was used up.
	if r := b.get(cb); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "expired") {
		t.Errorf("replayed callback: %d", r.Status)
	}
	// A fresh attempt with a tampered state.
	b2 := newBrowser(t)
	p = b2.submit(b2.get(down.URL+"/login"), "/login/upstream/up", nil)
	b2.visited = nil
	noFollow := *b2.client
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	form := formFields(p.Body)
	form.Set("login", "ursula")
	form.Set("password", testPassword)
	u, _ := p.URL.Parse("/login")
	req, _ := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := noFollow.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(nextHop(resp))
	for i := 0; i < 5 && loc != nil && !strings.Contains(loc.Path, "/login/upstream/callback"); i++ {
		next, _ := resp.Request.URL.Parse(loc.String())
		resp, err = noFollow.Get(next.String())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		loc, _ = url.Parse(nextHop(resp))
	}
	if loc == nil || !strings.Contains(loc.Path, "/login/upstream/callback") {
		t.Fatalf("never reached the callback: %v", resp.Header)
	}
	q := loc.Query()
	q.Set("state", "forged-"+q.Get("state"))
	loc.RawQuery = q.Encode()
	if r := b2.get(loc.String()); r.Status != http.StatusBadRequest {
		t.Errorf("tampered state: %d", r.Status)
	}
	if r := b2.get(down.URL + "/profile"); !isLoginPage(r) {
		t.Error("a tampered state signed the browser in")
	}
}

func TestUpstreamLinkingRules(t *testing.T) {
	// Linking by verified email is off by default: a local account with the
	// same address is not taken over, and no account is created when
	// create_users is off.
	_, down := upstreamPair(t, func(d *config.Directory) { d.CreateUsers = false })
	down.createUser("ursula", false) // same email, not linked
	b := newBrowser(t)
	p := signInUpstream(t, down, b, b.get(down.URL+"/login"))
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "No account here is linked") {
		t.Errorf("unlinked without create_users: %d %s", p.Status, truncateBody(p.Body))
	}

	// With linking on, an account whose email is verified is linked...
	up2, down2 := upstreamPair(t, func(d *config.Directory) { d.LinkByVerifiedEmail = true; d.CreateUsers = false })
	markVerified(t, up2, "ursula")
	local := down2.createUser("ursula", false)
	if _, err := down2.Main.Store.UpdateUser(context.Background(), local.ID, func(u storage.User) (storage.User, error) { u.EmailVerified = true; return u, nil }); err != nil {
		t.Fatal(err)
	}
	b2 := newBrowser(t)
	p = signInUpstream(t, down2, b2, b2.get(down2.URL+"/login"))
	if p.Status != http.StatusOK || p.URL.Path != "/" {
		t.Fatalf("link by verified email: %d %s", p.Status, truncateBody(p.Body))
	}
	if u := down2.user(local.ID); len(u.Identities) != 1 || u.Source != "" {
		t.Errorf("linked account: %+v", u)
	}

	// ...but never one whose email is not verified.
	up3, down3 := upstreamPair(t, func(d *config.Directory) { d.LinkByVerifiedEmail = true; d.CreateUsers = false })
	markVerified(t, up3, "ursula")
	unverified := down3.createUser("ursula", false)
	if _, err := down3.Main.Store.UpdateUser(context.Background(), unverified.ID, func(u storage.User) (storage.User, error) { u.EmailVerified = false; return u, nil }); err != nil {
		t.Fatal(err)
	}
	b3 := newBrowser(t)
	if p := signInUpstream(t, down3, b3, b3.get(down3.URL+"/login")); p.Status != http.StatusForbidden {
		t.Errorf("linking to an unverified email: %d", p.Status)
	}
	if u := down3.user(unverified.ID); len(u.Identities) != 0 {
		t.Error("an unverified email was linked")
	}
}

func markVerified(t *testing.T, srv *testServer, login string) {
	t.Helper()
	if _, err := srv.Main.Store.UpdateUser(context.Background(), userIDOf(t, srv, login), func(u storage.User) (storage.User, error) {
		u.EmailVerified = true
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func TestUpstreamNonceAndPKCEChecked(t *testing.T) {
	up := startServer(t, "", nil)
	up.createUser("ursula", false)
	redirect := "http://127.0.0.1:9/callback/down"
	_, secret, err := up.Main.Accounts.Clients.RegisterClient(context.Background(), account.SystemActor, account.NewClient{ID: "down", SkipConsent: true, RedirectURIs: []string{redirect}})
	if err != nil {
		t.Fatal(err)
	}
	src, err := oidcsource.Config{ID: "up", Issuer: up.URL, ClientID: "down", ClientSecret: secret, RedirectURL: redirect}.Open()
	if err != nil {
		t.Fatal(err)
	}
	code := func(nonce, verifier string) string {
		to, err := src.AuthURL(context.Background(), "st", nonce, verifier)
		if err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		p := b.get(to)
		p = b.submit(p, "/login", url.Values{"login": {"ursula"}, "password": {testPassword}})
		res := landed(t, p, redirect)
		if res.Code == "" {
			t.Fatalf("no code: %+v", res)
		}
		return res.Code
	}
	verifier := account.NewSecret() + account.NewSecret()
	if _, err := src.Exchange(context.Background(), code("nonce-a", verifier), verifier, "nonce-b"); !errors.Is(err, directory.ErrInvalidCredentials) || !strings.Contains(err.Error(), "nonce") {
		t.Errorf("tampered nonce: %v", err)
	}
	if _, err := src.Exchange(context.Background(), code("nonce-a", verifier), "another-verifier-another-verifier-another-verifier", "nonce-a"); !errors.Is(err, directory.ErrInvalidCredentials) {
		t.Errorf("wrong PKCE verifier: %v", err)
	}
	id, err := src.Exchange(context.Background(), code("nonce-a", verifier), verifier, "nonce-a")
	if err != nil || id.Username != "ursula" || id.ID != userIDOf(t, up, "ursula") {
		t.Errorf("honest exchange: %v %+v", err, id)
	}
}

func TestAdminAddsUpstream(t *testing.T) {
	up := startServer(t, "", func(c *config.Config) { c.Session.CookieName = "upstream_session" })
	up.createUser("ursula", false)
	down := startServer(t, "", nil)
	_, secret, err := up.Main.Accounts.Clients.RegisterClient(context.Background(), account.SystemActor, account.NewClient{ID: "downstream", SkipConsent: true, RedirectURIs: []string{down.URL + "/login/upstream/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	down.createUser("root", true)
	b := newBrowser(t)
	signInPortal(t, down, b, "root")
	p := b.get(down.URL + "/admin/upstreams/new")
	if !strings.Contains(p.Body, down.URL+"/login/upstream/callback") {
		t.Fatalf("the form does not show the redirect URI to register: %s", truncateBody(p.Body))
	}
	form := url.Values{"id": {"up"}, "name": {"Upstream Keyport"}, "issuer": {up.URL}, "client_id": {"downstream"}, "client_secret": {secret}, "create_users": {"1"},
		"handles_second_factor": {"1"}}
	bad := url.Values{"id": {"up"}, "issuer": {"ftp://nope"}, "client_id": {"downstream"}}
	if r := postPage(b, p, "/admin/upstreams/new", bad); r.Status != http.StatusBadRequest {
		t.Errorf("bad issuer: %d", r.Status)
	}
	if r := postPage(b, p, "/admin/upstreams/new", form); r.Status != http.StatusOK || !strings.Contains(r.Body, "Upstream Keyport") {
		t.Fatalf("add upstream: %d %s", r.Status, truncateBody(r.Body))
	}
	stored, err := down.Main.Store.GetDirectory(context.Background(), "up")
	if err != nil || stored.Type != "oidc" || strings.Contains(string(stored.Settings), secret) || strings.Contains(string(stored.SealedSecret), secret) {
		t.Fatalf("stored upstream (secret must be sealed): %v %s", err, stored.Settings)
	}
	if r := b.get(down.URL + "/admin/upstreams/up/edit"); r.Status != http.StatusOK || !strings.Contains(r.Body, up.URL) ||
		!strings.Contains(r.Body, `name="handles_second_factor" value="1" checked`) {
		t.Errorf("edit form of the upstream: %d %s", r.Status, truncateBody(r.Body))
	}
	if cfg, err := down.Main.Accounts.Directories.StoredUpstream(context.Background(), "up"); err != nil || !cfg.HandlesSecondFactor {
		t.Errorf("handles_second_factor of the stored upstream: %v %+v", err, cfg)
	}
	// The LDAP form is not for an upstream provider, nor one form for an unknown ID.
	for _, path := range []string{"/admin/directories/up/edit", "/admin/upstreams/nope/edit"} {
		if r := b.get(down.URL + path); r.Status != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, r.Status)
		}
	}
	ub := newBrowser(t)
	start := ub.get(down.URL + "/login")
	res := signInUpstream(t, down, ub, start)
	if res.Status != http.StatusOK || res.URL.Path != "/" {
		t.Fatalf("sign-in through the added upstream: %d %s", res.Status, res.URL)
	}
	if u, err := down.Main.Store.GetUserByLogin(context.Background(), "ursula"); err != nil || u.Source != "up" {
		t.Errorf("created account: %v %+v", err, u)
	}
}

func TestUpstreamUnreachable(t *testing.T) {
	up, down := upstreamPair(t, nil)
	up.stop()
	b := newBrowser(t)
	p := b.submit(b.get(down.URL+"/login"), "/login/upstream/up", nil)
	if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "cannot be reached") {
		t.Errorf("upstream down: %d %s", p.Status, truncateBody(p.Body))
	}
	if r := b.get(down.URL + "/login/upstream/callback?state=x&code=y"); r.Status != http.StatusBadRequest {
		t.Errorf("callback without an attempt: %d", r.Status)
	}
	if r := b.submit(b.get(down.URL+"/login"), "/login/upstream/nope", nil); r.Status != http.StatusNotFound {
		t.Errorf("unknown provider: %d", r.Status)
	}
}
