package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
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
