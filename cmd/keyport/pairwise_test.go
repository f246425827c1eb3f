package main

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
)

// sectorServer serves sector_identifier_uri documents over https on
// loopback, and makes the server under test trust it (sectorRoots) for
// the test's life. onFetch, if given, runs before each document is served.
func sectorServer(t *testing.T, docs map[string]string, onFetch ...func(path string)) *httptest.Server {
	t.Helper()
	s := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		doc, ok := docs[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		for _, f := range onFetch {
			f(r.URL.Path)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(doc))
	}))
	t.Cleanup(s.Close)
	roots := x509.NewCertPool()
	roots.AddCert(s.Certificate())
	sectorRoots = roots
	t.Cleanup(func() { sectorRoots = nil })
	return s
}

// leavingBrowser is a browser that stops at any host but the server's,
// so apps can have redirect URIs on hosts of their own (their sectors).
func leavingBrowser(t *testing.T, srv *testServer) *browser {
	b := newBrowser(t)
	host := strings.TrimPrefix(srv.URL, "http://")
	b.client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		b.visited = append(b.visited, req.URL.String())
		if req.URL.Host != host || len(via) > 10 {
			return http.ErrUseLastResponse
		}
		return nil
	}
	return b
}

// idTokenSub verifies an ID token as app's relying party does and
// returns its sub.
func idTokenSub(t *testing.T, app *testClient, tok *oauth2.Token) string {
	t.Helper()
	raw, _ := tok.Extra("id_token").(string)
	idt, err := app.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("verify the ID token of %s: %v", app.ID, err)
	}
	return idt.Subject
}

// TestPairwiseSubjects runs pairwise subject identifiers (OpenID Connect
// Core 1.0 §8) with go-oidc and x/oauth2 on the other side, on one server:
// two apps of different sectors and two apps of one sector_identifier_uri
// (served on loopback https), and a public app; the sub of each ID token
// agrees with userinfo, introspection and JWT access tokens; the sub
// comes back as id_token_hint at /authorize and /end_session, and as the
// claims parameter's sub; token exchange and back-channel logout tokens
// carry the sub of the app they are for; and apps whose sector document
// is wrong are refused with the reason.
func TestPairwiseSubjects(t *testing.T) {
	corp := []string{"https://crm.example/cb", "https://hr.example/cb", "https://static.example/cb"}
	docJSON, _ := json.Marshal(corp)
	big, _ := json.Marshal(append(slicesRepeat("https://filler.example/"+strings.Repeat("x", 100), 700), corp...))
	docs := map[string]string{
		"/sector.json":  string(docJSON),
		"/partial.json": `["https://crm.example/cb"]`,
		"/notjson":      `<html>hello</html>`,
		"/big.json":     string(big),
		"/race.json":    string(docJSON),
	}
	var raceOnce sync.Once
	var onRace func()
	sectors := sectorServer(t, docs, func(path string) {
		if path == "/race.json" && onRace != nil {
			raceOnce.Do(onRace)
		}
	})
	sectorURI := sectors.URL + "/sector.json"

	recv := make(chan map[string]any, 8)
	bc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		recv <- unverifiedJWTClaims(t, r.PostFormValue("logout_token"))
	}))
	defer bc.Close()

	const staticSecret = "static-secret-0123456789"
	srv := startServer(t, "", func(c *config.Config) {
		c.ClientAuth.JWKSAllowNetworks = []string{"127.0.0.0/8"}
		c.OAuth.DeviceFlow = true
		c.OAuth.DevicePollInterval = config.Duration{Duration: time.Second}
		// A pairwise app of config.toml, its sector document checked at
		// the start.
		c.Clients = append(c.Clients, config.Client{ID: "static", RedirectURIs: []string{"https://static.example/cb"},
			GrantTypes: []string{"authorization_code"}, Secret: staticSecret, SkipConsent: true,
			SubjectType: "pairwise", SectorIdentifierURI: sectorURI})
	})
	alice := srv.createUser("pia", false)
	srv.createUser("bob", false)

	app := func(n account.NewClient) *testClient {
		t.Helper()
		n.SkipConsent = true
		return srv.createClient(n)
	}
	shop := app(account.NewClient{ID: "shop", RedirectURIs: []string{"https://shop.example/cb"}, SubjectType: account.SubjectPairwise,
		AccessTokenJWT: true, BackchannelLogoutURI: bc.URL + "/shop",
		GrantTypes:             []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantTokenExchange},
		TokenExchangeAudiences: []string{"blog", "wiki", "https://api.example/"}})
	shop.oauth.Scopes = append(shop.oauth.Scopes, oidc.ScopeOfflineAccess)
	blog := app(account.NewClient{ID: "blog", RedirectURIs: []string{"https://blog.example/cb"}, SubjectType: account.SubjectPairwise, AccessTokenJWT: true})
	crm := app(account.NewClient{ID: "crm", RedirectURIs: []string{"https://crm.example/cb"}, SubjectType: account.SubjectPairwise, SectorIdentifierURI: sectorURI})
	hr := app(account.NewClient{ID: "hr", RedirectURIs: []string{"https://hr.example/cb"}, SubjectType: account.SubjectPairwise, SectorIdentifierURI: sectorURI})
	wiki := app(account.NewClient{ID: "wiki", RedirectURIs: []string{"https://wiki.example/cb"}})
	static := srv.rp("static", staticSecret, "https://static.example/cb")

	b := leavingBrowser(t, srv)
	signIn := func(c *testClient, opts ...oauth2.AuthCodeOption) *oauth2.Token {
		t.Helper()
		code, verifier := c.signIn(b, "pia", opts...)
		tok, err := c.exchange(code, verifier)
		if err != nil {
			t.Fatalf("exchange the code of %s: %v", c.ID, err)
		}
		return tok
	}
	toks := map[string]*oauth2.Token{}
	subs := map[string]string{}
	for _, c := range []*testClient{shop, blog, crm, hr, wiki, static} {
		toks[c.ID] = signIn(c)
		subs[c.ID] = idTokenSub(t, c, toks[c.ID])
	}

	t.Run("subs by sector", func(t *testing.T) {
		if subs["wiki"] != alice.ID {
			t.Errorf("the public app got sub %q, want the user ID %q", subs["wiki"], alice.ID)
		}
		for _, id := range []string{"shop", "blog", "crm", "hr", "static"} {
			if subs[id] == alice.ID || strings.Contains(subs[id], alice.ID) {
				t.Errorf("pairwise app %s got the user ID as sub: %q", id, subs[id])
			}
		}
		if subs["shop"] == subs["blog"] {
			t.Error("apps of different sectors (shop.example, blog.example) got the same sub")
		}
		if subs["crm"] != subs["hr"] || subs["crm"] != subs["static"] {
			t.Errorf("apps of one sector_identifier_uri got different subs: crm %q, hr %q, static %q", subs["crm"], subs["hr"], subs["static"])
		}
		if subs["crm"] == subs["shop"] || subs["crm"] == subs["blog"] {
			t.Error("the sector document's apps share a sub with another sector")
		}
		// The same person signing in again gets the same sub.
		if again := idTokenSub(t, shop, signIn(shop)); again != subs["shop"] {
			t.Errorf("shop's sub changed between sign-ins: %q then %q", subs["shop"], again)
		}
		// Another person gets another.
		code, verifier := shop.signIn(leavingBrowser(t, srv), "bob")
		tok, err := shop.exchange(code, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if idTokenSub(t, shop, tok) == subs["shop"] {
			t.Error("two people got the same sub at shop")
		}
	})

	t.Run("discovery", func(t *testing.T) {
		var d struct {
			Types []string `json:"subject_types_supported"`
		}
		if err := shop.provider.Claims(&d); err != nil || strings.Join(d.Types, " ") != "public pairwise" {
			t.Errorf("subject_types_supported = %v (%v)", d.Types, err)
		}
	})

	t.Run("userinfo, introspection and access tokens agree", func(t *testing.T) {
		for _, c := range []*testClient{shop, blog, crm, wiki} {
			tok := toks[c.ID]
			status, _, info := srv.userinfo(tok.AccessToken)
			if status != http.StatusOK || info["sub"] != subs[c.ID] {
				t.Errorf("%s: userinfo %d sub %v, want %q", c.ID, status, info["sub"], subs[c.ID])
			}
			ui, err := c.provider.UserInfo(context.Background(), oauth2.StaticTokenSource(tok))
			if err != nil || ui.Subject != subs[c.ID] {
				t.Errorf("%s: go-oidc userinfo sub %v (%v), want %q", c.ID, ui, err, subs[c.ID])
			}
			status, _, in := srv.postForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, c.ID, c.Secret)
			if status != http.StatusOK || in["active"] != true || in["sub"] != subs[c.ID] {
				t.Errorf("%s: introspection %d %v, want sub %q", c.ID, status, in, subs[c.ID])
			}
		}
		if got := unverifiedJWTClaims(t, toks["shop"].AccessToken)["sub"]; got != subs["shop"] {
			t.Errorf("shop's JWT access token has sub %v, want %q", got, subs["shop"])
		}
		// A refresh token, introspected and used.
		status, _, in := srv.postForm("/oauth/introspect", url.Values{"token": {toks["shop"].RefreshToken}}, "shop", shop.Secret)
		if status != http.StatusOK || in["sub"] != subs["shop"] {
			t.Errorf("shop's refresh token introspected: %d %v, want sub %q", status, in, subs["shop"])
		}
		refreshed, err := shop.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: toks["shop"].RefreshToken}).Token()
		if err != nil {
			t.Fatal(err)
		}
		if got := idTokenSub(t, shop, refreshed); got != subs["shop"] {
			t.Errorf("a refreshed ID token has sub %q, want %q", got, subs["shop"])
		}
		toks["shop"] = refreshed
	})

	pictures := map[string]string{} // each app's picture claim
	t.Run("no claim carries the user ID", func(t *testing.T) {
		// The picture claim is a URL of Keyport's: with the user ID in
		// its path, it gave every sector one identifier to join people
		// by, whatever the sub (OpenID Connect Core 1.0 §8.1).
		for _, c := range []*testClient{shop, blog, crm, hr, static, wiki} {
			raw, _ := toks[c.ID].Extra("id_token").(string)
			idt := unverifiedJWTClaims(t, raw)
			status, _, info := srv.userinfo(toks[c.ID].AccessToken)
			if status != http.StatusOK {
				t.Fatalf("%s: userinfo %d", c.ID, status)
			}
			pic, _ := info["picture"].(string)
			if pic == "" || idt["picture"] != pic {
				t.Errorf("%s: picture %q in userinfo, %v in the ID token", c.ID, pic, idt["picture"])
			}
			pictures[c.ID] = pic
			if c == wiki {
				continue
			}
			for where, claims := range map[string]map[string]any{"ID token": idt, "userinfo": info} {
				for k, v := range claims {
					if strings.Contains(fmt.Sprint(v), alice.ID) {
						t.Errorf("%s: the %s's %s carries the user ID: %v", c.ID, where, k, v)
					}
				}
			}
			// The app's picture URL shows the person's picture.
			resp, err := http.Get(pic)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
				t.Errorf("%s: its picture URL %s answers %d %s", c.ID, pic, resp.StatusCode, resp.Header.Get("Content-Type"))
			}
		}
		if pictures["shop"] == pictures["blog"] || pictures["shop"] == pictures["crm"] {
			t.Errorf("apps of different sectors got one picture URL: shop %s, blog %s, crm %s", pictures["shop"], pictures["blog"], pictures["crm"])
		}
		if pictures["crm"] != pictures["hr"] || pictures["crm"] != pictures["static"] {
			t.Errorf("apps of one sector got different picture URLs: crm %s, hr %s, static %s", pictures["crm"], pictures["hr"], pictures["static"])
		}
		if !strings.Contains(pictures["wiki"], alice.ID) {
			t.Errorf("the public app's picture URL changed: %s", pictures["wiki"])
		}
		// An avatar ID that is no one's.
		forged := strings.TrimSuffix(srv.URL, "/") + "/avatar/p.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
		if resp, err := http.Get(forged); err != nil || resp.StatusCode != http.StatusNotFound {
			t.Errorf("a forged pairwise avatar ID: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
	})

	sids := map[string]string{} // each app's sid of the one browser session
	t.Run("sid by sector", func(t *testing.T) {
		// Every app was signed in to through one browser session. Its sid
		// is one more identifier apps could join people by, whatever
		// their subs: a pairwise app's is its sector's, as its sub is
		// (OpenID Connect Core 1.0 §8). shop's ID token is a refreshed
		// one, which keeps the sign-in's sid.
		for _, c := range []*testClient{shop, blog, crm, hr, static, wiki} {
			raw, _ := toks[c.ID].Extra("id_token").(string)
			if sids[c.ID] = sidOf(t, c, raw); sids[c.ID] == "" {
				t.Fatalf("%s: no sid in the ID token", c.ID)
			}
		}
		for _, pair := range [][2]string{{"shop", "blog"}, {"shop", "crm"}, {"blog", "crm"}, {"shop", "wiki"}, {"crm", "wiki"}} {
			if sids[pair[0]] == sids[pair[1]] {
				t.Errorf("apps of different sectors %s and %s got one sid %q", pair[0], pair[1], sids[pair[0]])
			}
		}
		if sids["crm"] != sids["hr"] || sids["crm"] != sids["static"] {
			t.Errorf("apps of one sector got different sids: crm %q, hr %q, static %q", sids["crm"], sids["hr"], sids["static"])
		}
		// Front-channel logout names the session as the app's ID tokens
		// do (blog has a front-channel logout URI for the check only:
		// the logout below expects a redirect, not the iframes' page).
		ctx := context.Background()
		fcURI, on, off, none := "https://blog.example/fc", true, false, ""
		if _, _, err := srv.Main.Accounts.Clients.UpdateClient(ctx, account.SystemActor, "blog", "", account.ClientPatch{FrontchannelLogoutURI: &fcURI, FrontchannelLogoutSessionRequired: &on}); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if _, _, err := srv.Main.Accounts.Clients.UpdateClient(ctx, account.SystemActor, "blog", "", account.ClientPatch{FrontchannelLogoutURI: &none, FrontchannelLogoutSessionRequired: &off}); err != nil {
				t.Fatal(err)
			}
		}()
		sessions, err := srv.Main.Store.ListUserSessions(ctx, alice.ID)
		if err != nil || len(sessions) != 1 {
			t.Fatalf("pia's sessions: %v (%v)", sessions, err)
		}
		fc := srv.Main.Accounts.SignIn.FrontChannelLogoutURLs(ctx, srv.URL, sessions[0])
		if len(fc) != 1 || !strings.HasPrefix(fc[0], "https://blog.example/fc?") || !strings.Contains(fc[0], "sid="+sids["blog"]) {
			t.Errorf("front-channel logout URIs %v, want blog's with its sid %q", fc, sids["blog"])
		}
	})

	t.Run("introspection without the profile scope names no username", func(t *testing.T) {
		// The username is one name every app knows the person by: a
		// pairwise app learns it with the profile scope only, as
		// preferred_username.
		saved := shop.oauth.Scopes
		shop.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
		tok := signIn(shop)
		shop.oauth.Scopes = saved
		for kind, token := range map[string]string{"access": tok.AccessToken, "refresh": tok.RefreshToken} {
			status, _, in := srv.postForm("/oauth/introspect", url.Values{"token": {token}}, "shop", shop.Secret)
			if status != http.StatusOK || in["active"] != true || in["sub"] != subs["shop"] {
				t.Errorf("shop's %s token without profile: %d %v", kind, status, in)
			}
			if u, ok := in["username"]; ok {
				t.Errorf("shop's %s token without profile introspected with username %v", kind, u)
			}
		}
		// With profile, as preferred_username is at userinfo.
		status, _, in := srv.postForm("/oauth/introspect", url.Values{"token": {toks["shop"].AccessToken}}, "shop", shop.Secret)
		if status != http.StatusOK || in["username"] != "pia" {
			t.Errorf("shop's access token with profile: %d %v, want username pia", status, in)
		}
	})

	t.Run("token exchange", func(t *testing.T) {
		status, _, body := shop.tokenPost(exchangeForm(toks["shop"].AccessToken, typeAccessToken, "audience", "blog"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange for blog: %d %v", status, body)
		}
		exchanged, _ := body["access_token"].(string)
		if got := unverifiedJWTClaims(t, exchanged)["sub"]; got != subs["blog"] {
			t.Errorf("the token for blog has sub %v, want blog's %q", got, subs["blog"])
		}
		status, _, in := srv.postForm("/oauth/introspect", url.Values{"token": {exchanged}}, "blog", blog.Secret)
		if status != http.StatusOK || in["sub"] != subs["blog"] {
			t.Errorf("the token for blog introspected: %d %v, want sub %q", status, in, subs["blog"])
		}
		// Its picture is the one of the sub it carries, blog's, not shop's
		// (which would tell blog shop's name for the person).
		if status, _, info := srv.userinfo(exchanged); status != http.StatusOK || info["sub"] != subs["blog"] || info["picture"] != pictures["blog"] {
			t.Errorf("userinfo with the token for blog: %d sub %v picture %v, want blog's %q", status, info["sub"], info["picture"], pictures["blog"])
		}
		// A token for blog and an audience that knows the person by
		// another sub (wiki: the user ID; a resource: shop's, the
		// requester's) would tell blog that sub too: refused, nothing
		// issued. Each alone is fine.
		for _, form := range []url.Values{
			exchangeForm(toks["shop"].AccessToken, typeAccessToken, "audience", "blog", "audience", "wiki"),
			exchangeForm(toks["shop"].AccessToken, typeAccessToken, "audience", "blog", "resource", "https://api.example/"),
		} {
			status, _, body := shop.tokenPost(form, true)
			if status != http.StatusBadRequest || body["error"] != "invalid_target" {
				t.Errorf("exchange for %v %v: %d %v, want invalid_target", form["audience"], form["resource"], status, body)
			}
			if tok, _ := body["access_token"].(string); tok != "" {
				t.Errorf("exchange for %v %v issued a token with sub %v (blog's is %q)", form["audience"], form["resource"], unverifiedJWTClaims(t, tok)["sub"], subs["blog"])
			}
		}
		for aud, want := range map[string]string{"wiki": alice.ID, "https://api.example/": subs["shop"]} {
			key := "audience"
			if strings.Contains(aud, "://") {
				key = "resource"
			}
			status, _, body := shop.tokenPost(exchangeForm(toks["shop"].AccessToken, typeAccessToken, key, aud), true)
			if tok, _ := body["access_token"].(string); status != http.StatusOK || tok == "" {
				t.Errorf("exchange for %s alone: %d %v", aud, status, body)
			} else if st, _, in := srv.postForm("/oauth/introspect", url.Values{"token": {tok}}, "shop", shop.Secret); st != http.StatusOK || in["sub"] != want {
				t.Errorf("the token for %s alone introspected: %d %v, want sub %q", aud, st, in, want)
			}
		}
	})

	t.Run("id_token_hint and the claims parameter's sub at authorize", func(t *testing.T) {
		hint := func(c *testClient) string { raw, _ := toks[c.ID].Extra("id_token").(string); return raw }
		v, ch := pkce()
		pkceOpts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", ch), oauth2.SetAuthURLParam("code_challenge_method", "S256")}
		ask := func(c *testClient, extra ...oauth2.AuthCodeOption) flowResult {
			t.Helper()
			opts := append(append([]oauth2.AuthCodeOption{oauth2.SetAuthURLParam("prompt", "none")}, pkceOpts...), extra...)
			return landed(t, c.authorize(b, "st", opts...), c.RedirectURI)
		}
		// The signed-in person's own hint and sub: the code comes at once.
		if res := ask(crm, oauth2.SetAuthURLParam("id_token_hint", hint(crm))); res.Code == "" {
			t.Errorf("crm's own pairwise id_token_hint with prompt=none: %+v", res)
		}
		// The hint of another app of the sector names the same person.
		if res := ask(crm, oauth2.SetAuthURLParam("id_token_hint", hint(hr))); res.Code == "" {
			t.Errorf("hr's id_token_hint at crm (one sector): %+v", res)
		}
		// A hint from another sector names no one crm knows.
		if res := ask(crm, oauth2.SetAuthURLParam("id_token_hint", hint(shop))); res.Error != "invalid_request" {
			t.Errorf("shop's id_token_hint at crm (another sector): %+v, want invalid_request", res)
		}
		claims := func(sub string) oauth2.AuthCodeOption {
			raw, _ := json.Marshal(map[string]any{"id_token": map[string]any{"sub": map[string]any{"value": sub}}})
			return oauth2.SetAuthURLParam("claims", string(raw))
		}
		res := ask(shop, claims(subs["shop"]))
		if res.Code == "" {
			t.Fatalf("shop asking for its own sub of the person: %+v", res)
		}
		if tok, err := shop.exchange(res.Code, v); err != nil || idTokenSub(t, shop, tok) != subs["shop"] {
			t.Errorf("the code of a claims sub request: %v", err)
		}
		for name, sub := range map[string]string{"the user ID": alice.ID, "blog's sub": subs["blog"]} {
			if res := ask(shop, claims(sub)); res.Code != "" || res.Error != "access_denied" {
				t.Errorf("shop asking for %s as sub: %+v, want access_denied", name, res)
			}
		}
		// A public app is as before: the user ID.
		if res := ask(wiki, claims(alice.ID), oauth2.SetAuthURLParam("id_token_hint", hint(wiki))); res.Code == "" {
			t.Errorf("the public app's hint and claims sub: %+v", res)
		}
	})

	t.Run("device flow", func(t *testing.T) {
		// A device app has no redirect URI: its sector document names
		// its sector, the one of crm and hr.
		if _, _, err := srv.Main.Accounts.Clients.RegisterClient(context.Background(), account.SystemActor, account.NewClient{ID: "tv", Public: true,
			GrantTypes: []string{account.GrantDeviceCode}, SubjectType: account.SubjectPairwise, SectorIdentifierURI: sectorURI}); err != nil {
			t.Fatal(err)
		}
		tv := srv.rp("tv", "", "")
		da, err := tv.oauth.DeviceAuth(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		db := newBrowser(t)
		p := openPage(t, nil, db, da.VerificationURIComplete, "pia")
		if p = decide(t, db, p, da.UserCode, "approve"); !strings.Contains(p.Body, "The device is connected") {
			t.Fatalf("approval: %d: %s", p.Status, truncateBody(p.Body))
		}
		tok, err := tv.oauth.DeviceAccessToken(context.Background(), da)
		if err != nil {
			t.Fatal(err)
		}
		if got := idTokenSub(t, tv, tok); got != subs["crm"] {
			t.Errorf("the device's ID token has sub %q, want the sector's %q", got, subs["crm"])
		}
		if status, _, info := srv.userinfo(tok.AccessToken); status != http.StatusOK || info["sub"] != subs["crm"] {
			t.Errorf("userinfo with the device's token: %d %v", status, info)
		}
	})

	t.Run("invalid sector documents", func(t *testing.T) {
		rw, _, _ := adminTokens(t, srv)
		create := func(uri string, redirects ...string) (int, map[string]any) {
			body, _ := json.Marshal(map[string]any{"id": "bad-sector", "redirect_uris": redirects, "subject_type": "pairwise", "sector_identifier_uri": uri})
			status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", string(body))
			return status, out
		}
		for _, tt := range []struct{ name, uri, want string }{
			{"not https", strings.Replace(sectorURI, "https://", "http://", 1), "https"},
			{"missing a redirect URI", sectors.URL + "/partial.json", "does not list the redirect URI https://hr.example/cb"},
			{"not JSON", sectors.URL + "/notjson", "not a JSON array"},
			{"too big", sectors.URL + "/big.json", "larger than"},
			{"not found", sectors.URL + "/nothing.json", "answered 404"},
			{"unreachable", "https://127.0.0.1:1/sector.json", "connect"},
			{"a disallowed address", "https://169.254.169.254/sector.json", "link-local"},
		} {
			status, out := create(tt.uri, "https://crm.example/cb", "https://hr.example/cb")
			msg, _ := out["message"].(string)
			if status < 400 || status > 499 || out["field"] != "sector_identifier_uri" || !strings.Contains(msg, tt.want) {
				t.Errorf("%s: %d %v, want a 4xx on sector_identifier_uri saying %q", tt.name, status, out, tt.want)
			}
		}
		if _, _, err := srv.Main.Accounts.Clients.GetClient(context.Background(), "bad-sector"); err == nil {
			t.Error("an app with a refused sector document was stored")
		}
		// Several redirect hosts without a sector document.
		body := `{"id":"bad-sector","redirect_uris":["https://a.example/cb","https://b.example/cb"],"subject_type":"pairwise"}`
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", body); status < 400 || status > 499 || out["field"] != "sector_identifier_uri" {
			t.Errorf("pairwise with two redirect hosts and no sector: %d %v", status, out)
		}
		// An edit is checked too: crm adding a redirect URI its sector
		// document does not list is refused, and nothing changes.
		status, _, out := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/crm", rw, "application/json",
			`{"redirect_uris":["https://crm.example/cb","https://crm.example/other"]}`)
		if status < 400 || status > 499 || out["field"] != "sector_identifier_uri" {
			t.Errorf("crm adding an unlisted redirect URI: %d %v", status, out)
		}
		if c, _, _ := srv.Main.Accounts.Clients.GetClient(context.Background(), "crm"); len(c.RedirectURIs) != 1 {
			t.Errorf("crm's redirect URIs after a refused edit: %v", c.RedirectURIs)
		}
		// A good one through the API, shown as stored.
		status, _, out = apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
			`{"id":"api-hr","redirect_uris":["https://hr.example/cb"],"subject_type":"pairwise","sector_identifier_uri":"`+sectorURI+`"}`)
		if c, _ := out["client"].(map[string]any); status != http.StatusCreated || c["subject_type"] != "pairwise" || c["sector_identifier_uri"] != sectorURI {
			t.Errorf("create a pairwise app with a good sector document: %d %v", status, out)
		}
		_, _, out = apiCall(t, srv, http.MethodGet, "/api/v1/clients/wiki", rw, "", "")
		if out["subject_type"] != "public" {
			t.Errorf("the public app through the API: %v", out)
		}
	})

	t.Run("console form", func(t *testing.T) {
		ab := newBrowser(t)
		signInPortal(t, srv, ab, "root") // made by adminTokens above
		form := url.Values{"id": {"console-crm"}, "type": {"confidential"}, "redirect_uris": {"https://crm.example/cb\nhttps://hr.example/cb"},
			"grant_types": {"authorization_code"}, "subject_type": {"pairwise"}, "sector_identifier_uri": {sectors.URL + "/partial.json"}}
		bad := submitForm(t, ab, ab.get(srv.URL+"/admin/apps/new"), "/admin/apps/new", form)
		if invalid, ok := parsePage(t, bad.Body).first("input", "aria-invalid", "true"); bad.Status != http.StatusBadRequest || !ok || invalid.attr("name") != "sector_identifier_uri" {
			t.Errorf("a sector document without hr's redirect URI: %d\n%s", bad.Status, truncateBody(bad.Body))
		}
		form.Set("sector_identifier_uri", sectorURI)
		if created := submitForm(t, ab, bad, "/admin/apps/new", form); created.Status != http.StatusCreated {
			t.Fatalf("create: %d\n%s", created.Status, truncateBody(created.Body))
		}
		c, _, err := srv.Main.Accounts.Clients.GetClient(context.Background(), "console-crm")
		if err != nil || c.SubjectType != account.SubjectPairwise || c.SectorIdentifierURI != sectorURI {
			t.Fatalf("stored: %+v %v", c, err)
		}
		edit := ab.get(srv.URL + "/admin/apps/console-crm")
		if _, ok := parsePage(t, edit.Body).first("option", "value", "pairwise"); !ok || !strings.Contains(edit.Body, `<option value="pairwise" selected>`) {
			t.Errorf("the edit form does not show pairwise chosen")
		}
		if saved := submitForm(t, ab, edit, "/admin/apps/console-crm/edit", url.Values{"subject_type": {"public"}, "sector_identifier_uri": {""}}); saved.Status != http.StatusOK {
			t.Errorf("back to public: %d", saved.Status)
		}
		if c, _, _ := srv.Main.Accounts.Clients.GetClient(context.Background(), "console-crm"); c.SubjectType != "" || c.SectorIdentifierURI != "" {
			t.Errorf("after going back to public: %q %q", c.SubjectType, c.SectorIdentifierURI)
		}
	})

	// An edit whose sector document is fetched before its transaction
	// (which must not wait on the network) is refused when the app changed
	// meanwhile: the document was checked against redirect URIs the app no
	// longer has. The other edit stays, and the edit tried again is
	// checked against what the app has now.
	t.Run("an edit racing its sector check", func(t *testing.T) {
		ctx := context.Background()
		app(account.NewClient{ID: "race", RedirectURIs: []string{"https://hr.example/cb"}, SubjectType: account.SubjectPairwise, SectorIdentifierURI: sectorURI})
		crmOnly := []string{"https://crm.example/cb"}
		onRace = func() {
			if _, _, err := srv.Main.Accounts.Clients.UpdateClient(ctx, account.SystemActor, "race", "", account.ClientPatch{RedirectURIs: &crmOnly}); err != nil {
				t.Errorf("the edit made while the sector document was fetched: %v", err)
			}
		}
		raceURI := sectors.URL + "/race.json"
		_, _, err := srv.Main.Accounts.Clients.UpdateClient(ctx, account.SystemActor, "race", "", account.ClientPatch{SectorIdentifierURI: &raceURI})
		if err == nil || !strings.Contains(account.ErrorMessage(err), "changed") {
			t.Fatalf("an edit whose sector check went stale: %v, want a refusal saying the app changed", err)
		}
		c, _, err := srv.Main.Accounts.Clients.GetClient(ctx, "race")
		if err != nil || c.SectorIdentifierURI != sectorURI || !slices.Equal(c.RedirectURIs, crmOnly) {
			t.Errorf("race after the refused edit: %q %v (%v), want the other edit's redirect URIs and the old sector", c.SectorIdentifierURI, c.RedirectURIs, err)
		}
		if _, _, err := srv.Main.Accounts.Clients.UpdateClient(ctx, account.SystemActor, "race", "", account.ClientPatch{SectorIdentifierURI: &raceURI}); err != nil {
			t.Errorf("the edit tried again: %v", err)
		}
	})

	t.Run("logout by a pairwise id_token_hint", func(t *testing.T) {
		raw, _ := toks["shop"].Extra("id_token").(string)
		q := url.Values{"id_token_hint": {raw}, "post_logout_redirect_uri": {"http://127.0.0.1:9/bye/shop"}}
		p := b.get(srv.URL + "/end_session?" + q.Encode())
		if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "http://127.0.0.1:9/bye/shop") {
			t.Fatalf("end_session with shop's ID token of the signed-in person: %d %s, want signed out at once\n%s", p.Status, p.Location, truncateBody(p.Body))
		}
		if signedIn(srv, b) {
			t.Error("still signed in after end_session")
		}
		if status, _, _ := srv.userinfo(toks["shop"].AccessToken); status == http.StatusOK {
			t.Error("shop's access token still works after its logout")
		}
		select {
		case l := <-recv:
			if l["sub"] != subs["shop"] || l["aud"] != "shop" || l["sid"] != sids["shop"] {
				t.Errorf("shop's logout token: sub %v aud %v sid %v, want sub %q sid %q", l["sub"], l["aud"], l["sid"], subs["shop"], sids["shop"])
			}
		case <-time.After(10 * time.Second):
			t.Error("no back-channel logout token for shop")
		}
	})

	t.Run("a config app whose sector document fails stops the start", func(t *testing.T) {
		o := serverOptions{mutate: func(c *config.Config) {
			c.ClientAuth.JWKSAllowNetworks = []string{"127.0.0.0/8"}
			c.Clients = append(c.Clients, config.Client{ID: "static", RedirectURIs: []string{"https://static.example/cb", "https://elsewhere.example/cb"},
				GrantTypes: []string{"authorization_code"}, Secret: staticSecret, SubjectType: "pairwise", SectorIdentifierURI: sectorURI})
		}}
		cfg, _ := testConfig(t, &o)
		o.ln.Close()
		m, err := Load(cfg, slog.New(slog.DiscardHandler), nil)
		if err == nil {
			m.Close()
			t.Fatal("Load accepted a pairwise app its sector document does not list")
		}
		if !strings.Contains(err.Error(), "clients[") || !strings.Contains(err.Error(), "sector_identifier_uri") || !strings.Contains(err.Error(), "https://elsewhere.example/cb") {
			t.Errorf("the refusal does not say which app and why: %v", err)
		}
	})
}

// slicesRepeat is n copies of s.
func slicesRepeat(s string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = s
	}
	return out
}
