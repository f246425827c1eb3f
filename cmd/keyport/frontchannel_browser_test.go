package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
)

// Front-channel logout in a real browser: after an app's RP-initiated
// logout, Chromium loads the app's front-channel logout URI (with iss and
// sid) in the signed-out page's iframe, as its CSP allows, and then goes
// on to the app's post-logout page.
func TestBrowserFrontChannelLogout(t *testing.T) {
	c := newChrome(t)
	srv, base := startLocalhostServer(t, nil)
	srv.createUser("alice", false)
	hits := make(chan url.Values, 4)
	appSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/fc" {
			select {
			case hits <- r.URL.Query():
			default:
			}
		}
		_, _ = w.Write([]byte("app"))
	}))
	t.Cleanup(appSrv.Close)
	app := srv.createClient(account.NewClient{ID: "wiki", SkipConsent: true, RedirectURIs: []string{appSrv.URL + "/callback"},
		PostLogoutRedirectURIs: []string{appSrv.URL + "/bye"}, FrontchannelLogoutURI: appSrv.URL + "/fc", FrontchannelLogoutSessionRequired: true})

	c.signIn(base, "alice")
	c.do("home after sign-in", chromedp.WaitVisible(chromedp.CSS(".portal-nav")))
	verifier, challenge := pkce()
	c.do("the app's sign-in", chromedp.Navigate(app.oauth.AuthCodeURL("st-fc",
		oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))))
	landedAt, err := url.Parse(c.waitLocation(app.RedirectURI))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := app.exchange(landedAt.Query().Get("code"), verifier)
	if err != nil {
		t.Fatalf("code exchange: %v", err)
	}
	idToken := tok.Extra("id_token").(string)
	sid := sidOf(t, app, idToken)

	q := url.Values{"id_token_hint": {idToken}, "post_logout_redirect_uri": {appSrv.URL + "/bye"}, "state": {"st-bye"}}
	c.do("the app's logout", chromedp.Navigate(base+"/end_session?"+q.Encode()))
	select {
	case got := <-hits:
		if got.Get("iss") != base || got.Get("sid") != sid {
			t.Errorf("the front-channel logout URI was loaded with %v, want iss %s and sid %s", got, base, sid)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("Chromium did not load the front-channel logout URI; it is at %s", c.location())
	}
	c.waitLocation(appSrv.URL + "/bye")
}
