package main

import (
	"context"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
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
