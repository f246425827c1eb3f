package main

import (
	"context"
	"encoding/json"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/provider"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/web"
)

// sidOf verifies an ID token as app's relying party does and returns its
// sid claim.
func sidOf(t *testing.T, app *testClient, rawIDToken string) string {
	t.Helper()
	idt, err := app.verifier.Verify(context.Background(), rawIDToken)
	if err != nil {
		t.Fatalf("verify the ID token of %s: %v", app.ID, err)
	}
	var c struct {
		SID string `json:"sid"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	return c.SID
}

// ID tokens name the browser session they were issued in (sid, Front- and
// Back-Channel Logout 1.0): the same for every app signed in to through
// one session, kept by a refresh, and another for another browser.
func TestIDTokenSid(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("lena", false)
	appA := srv.createClient(account.NewClient{ID: "app-a", SkipConsent: true})
	appA.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	appB := srv.createClient(account.NewClient{ID: "app-b", SkipConsent: true})

	b := newBrowser(t)
	code, verifier := appA.signIn(b, "lena")
	tokA, err := appA.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	sidA := sidOf(t, appA, tokA.Extra("id_token").(string))
	if len(sidA) < 16 {
		t.Fatalf("sid %q in app-a's ID token: want a session name", sidA)
	}
	code, verifier = appB.signIn(b, "lena") // single sign-on
	tokB, err := appB.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if sidB := sidOf(t, appB, tokB.Extra("id_token").(string)); sidB != sidA {
		t.Errorf("sid of app-b in the same browser session = %q, app-a's %q", sidB, sidA)
	}

	status, _, body := appA.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tokA.RefreshToken}}, true)
	if status != http.StatusOK {
		t.Fatalf("refresh: %d %v", status, body)
	}
	if got := sidOf(t, appA, body["id_token"].(string)); got != sidA {
		t.Errorf("sid after a refresh = %q, before %q", got, sidA)
	}
	// And after a second rotation, from the rotated link.
	status, _, body = appA.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {body["refresh_token"].(string)}}, true)
	if status != http.StatusOK {
		t.Fatalf("second refresh: %d %v", status, body)
	}
	if got := sidOf(t, appA, body["id_token"].(string)); got != sidA {
		t.Errorf("sid after a second refresh = %q, before %q", got, sidA)
	}

	other := appA.tokens("lena") // another browser
	if sid := sidOf(t, appA, other.Extra("id_token").(string)); sid == "" || sid == sidA {
		t.Errorf("sid of another browser's session = %q, the first's %q", sid, sidA)
	}
}

// Discovery says Keyport does front- and back-channel logout with sid.
func TestDiscoveryLogoutChannels(t *testing.T) {
	srv := startServer(t, "", nil)
	p := bareGet(t, srv.URL+"/.well-known/openid-configuration")
	doc := p.JSON()
	for _, k := range []string{"frontchannel_logout_supported", "frontchannel_logout_session_supported", "backchannel_logout_supported", "backchannel_logout_session_supported"} {
		if doc[k] != true {
			t.Errorf("discovery %s = %v, want true", k, doc[k])
		}
	}
	claims, _ := doc["claims_supported"].([]any)
	found := false
	for _, c := range claims {
		found = found || c == "sid"
	}
	if !found {
		t.Errorf("claims_supported %v lacks sid", claims)
	}
}

var logoutFrame = regexp.MustCompile(`<iframe class="logout-frame" src="([^"]*)"`)

// frameSrcOf is the frame-src directive of a Content-Security-Policy, or "".
func frameSrcOf(csp string) string {
	for _, d := range strings.Split(csp, ";") {
		if d = strings.TrimSpace(d); strings.HasPrefix(d, "frame-src ") {
			return d
		}
	}
	return ""
}

// Signing out through an app's end_session loads, in hidden iframes, the
// front-channel logout URI of every app that got tokens in that browser
// session and registered one, with iss and sid for the app that asks for
// them (its own query kept); no frame for an app without the URI, or for
// one the browser never signed in to. The page's CSP allows frames from
// exactly those origins and is otherwise the pages' policy, and it goes on
// to the app's post-logout redirect.
func TestFrontChannelLogout(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("lena", false)
	withSID := srv.createClient(account.NewClient{ID: "with-sid", SkipConsent: true, PostLogoutRedirectURIs: []string{byeApp},
		FrontchannelLogoutURI: "https://with-sid.example:8443/fc?tenant=a%20b&x=1", FrontchannelLogoutSessionRequired: true})
	plain := srv.createClient(account.NewClient{ID: "plain", SkipConsent: true, FrontchannelLogoutURI: "http://127.0.0.1:9/plain/fc"})
	none := srv.createClient(account.NewClient{ID: "none", SkipConsent: true})
	srv.createClient(account.NewClient{ID: "elsewhere", SkipConsent: true, FrontchannelLogoutURI: "https://elsewhere.example/fc"})

	b := newBrowser(t)
	var sid, hint string
	for _, app := range []*testClient{withSID, plain, none} {
		code, verifier := app.signIn(b, "lena")
		tok, err := app.exchange(code, verifier)
		if err != nil {
			t.Fatal(err)
		}
		if app == withSID {
			hint = tok.Extra("id_token").(string)
			sid = sidOf(t, app, hint)
		}
	}

	q := url.Values{"id_token_hint": {hint}, "post_logout_redirect_uri": {byeApp}, "state": {"st-1"}}
	p := b.get(srv.URL + "/end_session?" + q.Encode())
	if p.Status != http.StatusOK {
		t.Fatalf("end_session: %d %s", p.Status, truncateBody(p.Body))
	}
	var frames []string
	for _, m := range logoutFrame.FindAllStringSubmatch(p.Body, -1) {
		frames = append(frames, html.UnescapeString(m[1]))
	}
	want := []string{
		"https://with-sid.example:8443/fc?tenant=a%20b&x=1&" + url.Values{"iss": {srv.URL}, "sid": {sid}}.Encode(),
		"http://127.0.0.1:9/plain/fc",
	}
	if !slices.Equal(frames, want) {
		t.Errorf("logout frames\n got %q\nwant %q", frames, want)
	}
	csp := p.Header.Get("Content-Security-Policy")
	if got := frameSrcOf(csp); got != "frame-src http://127.0.0.1:9 https://with-sid.example:8443" {
		t.Errorf("frame-src = %q (CSP %q)", got, csp)
	}
	rec := httptest.NewRecorder()
	web.SecurityHeaders(rec.Header())
	if base := rec.Header().Get("Content-Security-Policy"); strings.TrimSuffix(csp, "; "+frameSrcOf(csp)) != base {
		t.Errorf("the rest of the CSP changed:\n got %q\nwant %q", csp, base)
	}
	cont := regexp.MustCompile(`id="logout-continue" href="([^"]*)"`).FindStringSubmatch(p.Body)
	if cont == nil || html.UnescapeString(cont[1]) != byeApp+"?state=st-1" {
		t.Errorf("continue link %q, want the post-logout redirect with its state", cont)
	}
	if !strings.Contains(p.Body, `<script src="/static/logout.js" defer></script>`) {
		t.Error("the page lacks the script that goes on")
	}
	if signedIn(srv, b) {
		t.Error("the browser is still signed in")
	}

	// The portal's own sign-out shows the frames too, and stays. An app
	// whose code was never exchanged got no tokens: no frame.
	withSID.signIn(b, "lena")
	code, verifier := plain.signIn(b, "lena")
	if _, err := plain.exchange(code, verifier); err != nil {
		t.Fatal(err)
	}
	p = b.get(srv.URL + "/logout")
	p = b.submit(p, "/logout", nil)
	frames = frames[:0]
	for _, m := range logoutFrame.FindAllStringSubmatch(p.Body, -1) {
		frames = append(frames, html.UnescapeString(m[1]))
	}
	if p.Status != http.StatusOK || !slices.Equal(frames, []string{"http://127.0.0.1:9/plain/fc"}) || strings.Contains(p.Body, "logout-continue") {
		t.Errorf("portal sign-out: %d frames %q", p.Status, frames)
	}
	if got := frameSrcOf(p.Header.Get("Content-Security-Policy")); got != "frame-src http://127.0.0.1:9" {
		t.Errorf("portal sign-out frame-src = %q", got)
	}

	// Nothing to tell: the plain redirect as before, and no frame-src.
	code, verifier = none.signIn(b, "lena")
	tok, err := none.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	q = url.Values{"id_token_hint": {tok.Extra("id_token").(string)}}
	p = b.get(srv.URL + "/end_session?" + q.Encode())
	if logoutFrame.MatchString(p.Body) || frameSrcOf(p.Header.Get("Content-Security-Policy")) != "" {
		t.Errorf("a session without front-channel apps got frames: %d %s", p.Status, truncateBody(p.Body))
	}
}

// A logout token (Back-Channel Logout 1.0 §2.4) for a signed-in session
// passes a receiver's checks against the JWKS: signature, typ logout+jwt,
// iss, aud, the event, sub, sid, and no nonce; it is posted form-encoded
// to the app's URI, and answers other than 200/204 are errors that say the
// status, redirects not followed. The apps to tell are those that got
// tokens in the session and registered a back-channel URI.
func TestBackChannelLogoutToken(t *testing.T) {
	srv := startServer(t, "", nil)
	lena := srv.createUser("lena", false)

	type received struct {
		contentType string
		token       string
	}
	got := make(chan received, 4)
	var status, redirectHits atomic.Int32
	status.Store(http.StatusNoContent)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/moved" {
			redirectHits.Add(1)
			return
		}
		_ = r.ParseForm()
		got <- received{r.Header.Get("Content-Type"), r.PostForm.Get("logout_token")}
		if status.Load() == http.StatusFound {
			http.Redirect(w, r, "/moved", http.StatusFound)
			return
		}
		w.WriteHeader(int(status.Load()))
	}))
	defer recv.Close()

	app := srv.createClient(account.NewClient{ID: "bc-app", SkipConsent: true, BackchannelLogoutURI: recv.URL + "/bc?tenant=1", BackchannelLogoutSessionRequired: true})
	srv.createClient(account.NewClient{ID: "bc-unused", SkipConsent: true, BackchannelLogoutURI: recv.URL + "/unused"})
	quiet := srv.createClient(account.NewClient{ID: "quiet", SkipConsent: true})
	b := newBrowser(t)
	code, verifier := app.signIn(b, "lena")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	sid := sidOf(t, app, tok.Extra("id_token").(string))
	code, verifier = quiet.signIn(b, "lena")
	if _, err := quiet.exchange(code, verifier); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	sessions, err := srv.Main.Accounts.SignIn.Sessions(ctx, lena.ID)
	if err != nil || len(sessions) != 1 {
		t.Fatalf("sessions of lena: %v %v", sessions, err)
	}
	targets := srv.Main.Accounts.SignIn.BackChannelLogoutsForSession(ctx, sessions[0])
	wantTarget := account.BackChannelLogout{ClientID: "bc-app", URI: recv.URL + "/bc?tenant=1", UserID: lena.ID, SID: sid}
	if len(targets) != 1 || targets[0] != wantTarget {
		t.Fatalf("back-channel logouts of the session = %+v, want %+v", targets, wantTarget)
	}
	if all, err := srv.Main.Accounts.SignIn.BackChannelLogoutsForUser(ctx, lena.ID); err != nil || len(all) != 1 || all[0] != wantTarget {
		t.Fatalf("back-channel logouts of the user = %+v %v", all, err)
	}
	// An app held for an administrator's approval (a self-registered app
	// that changed its registration, its logout URI perhaps among the
	// changes no one has seen) is sent no logout token; approved again,
	// it is.
	hold := func(held bool) {
		t.Helper()
		if _, err := srv.Main.Store.UpdateClient(ctx, app.ID, func(c storage.Client) (storage.Client, error) {
			c.PendingApproval = held
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	hold(true)
	if held := srv.Main.Accounts.SignIn.BackChannelLogoutsForSession(ctx, sessions[0]); len(held) != 0 {
		t.Errorf("back-channel logouts of the session while bc-app is held = %+v, want none", held)
	}
	if held, err := srv.Main.Accounts.SignIn.BackChannelLogoutsForUser(ctx, lena.ID); err != nil || len(held) != 0 {
		t.Errorf("back-channel logouts of the user while bc-app is held = %+v %v, want none", held, err)
	}
	hold(false)
	if again := srv.Main.Accounts.SignIn.BackChannelLogoutsForSession(ctx, sessions[0]); len(again) != 1 || again[0] != wantTarget {
		t.Errorf("back-channel logouts of the session once bc-app is approved again = %+v, want %+v", again, wantTarget)
	}

	if err := srv.Main.Provider.BackChannelLogout(ctx, targets[0]); err != nil {
		t.Fatalf("deliver: %v", err)
	}
	r := <-got
	if r.contentType != "application/x-www-form-urlencoded" {
		t.Errorf("Content-Type %q", r.contentType)
	}
	// The receiver's checks.
	keys := oidc.NewRemoteKeySet(ctx, srv.URL+"/keys")
	payload, err := keys.VerifySignature(ctx, r.token)
	if err != nil {
		t.Fatalf("logout token signature: %v", err)
	}
	jws, err := jose.ParseSignedCompact(r.token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if typ := jws.Signatures[0].Header.ExtraHeaders["typ"]; typ != "logout+jwt" {
		t.Errorf("typ header %v", typ)
	}
	idJWS, _ := jose.ParseSignedCompact(tok.Extra("id_token").(string), []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if kid := jws.Signatures[0].Header.KeyID; kid == "" || kid != idJWS.Signatures[0].Header.KeyID {
		t.Errorf("kid %q, the ID token's %q", kid, idJWS.Signatures[0].Header.KeyID)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	events, _ := claims["events"].(map[string]any)
	ev, isObject := events["http://schemas.openid.net/event/backchannel-logout"].(map[string]any)
	iat, _ := claims["iat"].(float64)
	exp, _ := claims["exp"].(float64)
	if claims["iss"] != srv.URL || claims["aud"] != "bc-app" || claims["sub"] != lena.ID || claims["sid"] != sid ||
		!isObject || len(ev) != 0 || claims["jti"] == "" || claims["jti"] == nil || exp <= iat || exp-iat > 300 {
		t.Errorf("logout token claims %v", claims)
	}
	if _, has := claims["nonce"]; has {
		t.Error("logout token carries a nonce")
	}

	// The app answers otherwise: errors with the status; a redirect is not followed.
	token, err := srv.Main.Provider.LogoutToken(ctx, "bc-app", lena.ID, sid)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		status int
		retry  bool
	}{{http.StatusBadRequest, false}, {http.StatusServiceUnavailable, true}, {http.StatusFound, false}} {
		status.Store(int32(c.status))
		err := provider.DeliverLogoutToken(ctx, nil, recv.URL+"/bc", token)
		<-got
		var de *provider.LogoutDeliveryError
		if !errors.As(err, &de) || de.Status != c.status || de.Retry != c.retry || !strings.Contains(err.Error(), strconv.Itoa(c.status)) {
			t.Errorf("answer %d: error %v", c.status, err)
		}
	}
	if redirectHits.Load() != 0 {
		t.Error("the delivery followed a redirect")
	}
	// An app that requires sid gets no token without one.
	if _, err := srv.Main.Provider.LogoutToken(ctx, "bc-app", lena.ID, ""); err == nil {
		t.Error("a token without sid for an app that requires it")
	}
}

// Bad logout URIs are refused through the API, naming the field.
func TestAdminAPIClientLogoutURIs(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "static-app", RedirectURIs: []string{"https://static.example.com/cb"}, GrantTypes: []string{"authorization_code"}, Secret: "static-secret-0123456789",
			FrontchannelLogoutURI: "https://static.example.com/fc", BackchannelLogoutURI: "https://static.example.com/bc", BackchannelLogoutSessionRequired: true})
	})
	rw, _, _ := adminTokens(t, srv)
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/clients/static-app", rw, "", ""); status != http.StatusOK ||
		body["frontchannel_logout_uri"] != "https://static.example.com/fc" || body["backchannel_logout_uri"] != "https://static.example.com/bc" || body["backchannel_logout_session_required"] != true {
		t.Errorf("the static app's logout URIs from config.toml: %d %v", status, body)
	}
	for _, c := range []struct{ body, field string }{
		{`{"id":"w","redirect_uris":["https://a.example/cb"],"frontchannel_logout_uri":"http://a.example/fc"}`, "frontchannel_logout_uri"},
		{`{"id":"w","redirect_uris":["https://a.example/cb"],"frontchannel_logout_uri":"https://a.example/fc#x"}`, "frontchannel_logout_uri"},
		{`{"id":"w","redirect_uris":["https://a.example/cb"],"frontchannel_logout_uri":"/fc"}`, "frontchannel_logout_uri"},
		{`{"id":"w","redirect_uris":["https://a.example/cb"],"backchannel_logout_uri":"com.example.app:/bc"}`, "backchannel_logout_uri"},
		{`{"id":"w","redirect_uris":["https://a.example/cb"],"backchannel_logout_uri":"javascript:alert(1)"}`, "backchannel_logout_uri"},
	} {
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", c.body); status != http.StatusBadRequest || body["field"] != c.field {
			t.Errorf("create %s: %d %v, want the field %q named", c.body, status, body, c.field)
		}
	}
	status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
		`{"id":"w","redirect_uris":["https://a.example/cb"],"frontchannel_logout_uri":"https://a.example/fc?x=1","frontchannel_logout_session_required":true,"backchannel_logout_uri":"http://127.0.0.1:8080/bc"}`)
	client, _ := body["client"].(map[string]any)
	if status != http.StatusCreated || client["frontchannel_logout_uri"] != "https://a.example/fc?x=1" || client["frontchannel_logout_session_required"] != true ||
		client["backchannel_logout_uri"] != "http://127.0.0.1:8080/bc" || client["backchannel_logout_session_required"] != false {
		t.Fatalf("create with logout URIs: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/w", rw, "application/json", `{"backchannel_logout_uri":"http://bc.example/x"}`); status != http.StatusBadRequest || body["field"] != "backchannel_logout_uri" {
		t.Errorf("patch to a bad URI: %d %v", status, body)
	}
	status, _, body = apiCall(t, srv, http.MethodPatch, "/api/v1/clients/w", rw, "application/json", `{"frontchannel_logout_uri":"","backchannel_logout_session_required":true}`)
	if status != http.StatusOK || body["frontchannel_logout_uri"] != "" || body["backchannel_logout_session_required"] != true {
		t.Errorf("patch clearing the front-channel URI: %d %v", status, body)
	}
}

// The command line registers and edits the logout URIs, with the API's
// rules, and documents the flags in its usage.
func TestCLIClientLogoutURIs(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	cliMust(t, env, "", "client", "create", "--id", "web", "--redirect-uri", "https://web.example.com/cb",
		"--frontchannel-logout-uri", "https://web.example.com/fc?x=1", "--frontchannel-logout-session-required",
		"--backchannel-logout-uri", "https://web.example.com/bc")
	cliFail(t, env, "", 1, "frontchannel_logout_uri", "client", "create", "--id", "bad", "--redirect-uri", "https://web.example.com/cb",
		"--frontchannel-logout-uri", "http://web.example.com/fc")
	cliMust(t, env, "", "client", "update", "--id", "web", "--backchannel-logout-session-required=true", "--frontchannel-logout-uri", "")
	cliFail(t, env, "", 1, "backchannel_logout_uri", "client", "update", "--id", "web", "--backchannel-logout-uri", "https://web.example.com/bc#f")

	db, err := bolt.Open(filepath.Join(dir, "keyport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := db.GetClient(context.Background(), "web")
	if err != nil || c.FrontchannelLogoutURI != "" || !c.FrontchannelLogoutSessionRequired || c.BackchannelLogoutURI != "https://web.example.com/bc" || !c.BackchannelLogoutSessionRequired {
		t.Errorf("stored app: %+v %v", c, err)
	}
	if _, err := db.GetClient(context.Background(), "bad"); err == nil {
		t.Error("the refused app was stored")
	}
	r := cliRun(t, env, "", "client", "update", "--help")
	for _, f := range []string{"--frontchannel-logout-uri", "--backchannel-logout-uri"} {
		if !strings.Contains(r.Stdout+r.Stderr, strings.TrimPrefix(f, "-")) {
			t.Errorf("client update --help does not document %s: %s", f, r)
		}
	}
}
