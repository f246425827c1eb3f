package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// The progress of a sign-in lives on its record (account.Flow), not in the
// browser's cookie: two sign-ins under way in one browser (two tabs, two
// apps) each finish for their own app.
func TestSecondStepsOfTwoAppsInOneBrowser(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	secret, recovery := withTOTP(t, srv, "alice")
	wiki := srv.createClient(newConfidentialClient("wiki"))
	chat := srv.createClient(newConfidentialClient("chat"))

	b := newBrowser(t)
	toSecondStep := func(rp *testClient, state string) page {
		t.Helper()
		p := rp.authorize(b, state)
		p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
		if p.Status != http.StatusOK || p.URL.Path != "/login/2fa" {
			t.Fatalf("%s: the password step did not lead to the second step: %d %s", rp.ID, p.Status, p.URL)
		}
		return p
	}
	wikiStep := toSecondStep(wiki, "for-wiki")
	chatStep := toSecondStep(chat, "for-chat")

	// The wiki's tab finishes for the wiki, although the chat's sign-in
	// started later in the same browser.
	res := landed(t, b.submit(wikiStep, "/login/2fa", url.Values{"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}}), wiki.RedirectURI)
	if res.State != "for-wiki" || res.Code == "" {
		t.Fatalf("the wiki's second step: %+v", res)
	}
	// The chat's tab, reloaded (signing in renews the browser's CSRF
	// token), still asks for the chat's second factor and finishes there.
	chatStep = b.get(chatStep.URL.String())
	if chatStep.URL.Path != "/login/2fa" {
		t.Fatalf("the chat's second step after the wiki's sign-in: %s", chatStep.URL)
	}
	res = landed(t, b.submit(chatStep, "/login/2fa", url.Values{"recovery_code": {recovery[0]}}), chat.RedirectURI)
	if res.State != "for-chat" || res.Code == "" {
		t.Fatalf("the chat's second step: %+v", res)
	}
}

// A sign-in at the portal itself that owes a second factor gets a record of
// its own, which returns to the page asked for and is never an app's
// request: the provider's callback refuses it.
func TestPortalSecondStepRecordIsNoAuthorizationRequest(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	secret, _ := withTOTP(t, srv, "alice")

	b := newBrowser(t)
	p := b.get(srv.URL + "/login?return_to=" + url.QueryEscape("/security"))
	p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	id := p.URL.Query().Get("authRequestID")
	if p.URL.Path != "/login/2fa" || id == "" {
		t.Fatalf("portal sign-in: %d %s", p.Status, p.URL)
	}
	if r := b.get(srv.URL + "/authorize/callback?id=" + url.QueryEscape(id)); r.Status < 400 || r.Location != "" {
		t.Fatalf("the callback answered a portal sign-in record: %d %s", r.Status, r.Location)
	}
	p = b.submit(p, "/login/2fa", url.Values{"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}})
	if p.Status != http.StatusOK || p.URL.Path != "/security" || !strings.Contains(p.Body, "totp") {
		t.Fatalf("after the second step: %d %s", p.Status, p.URL)
	}
	// The record went with the sign-in.
	if r := b.get(srv.URL + "/login/2fa?authRequestID=" + url.QueryEscape(id)); r.URL.Path == "/login/2fa" {
		t.Errorf("the finished portal record still asks for a second factor: %s", r.URL)
	}
}
