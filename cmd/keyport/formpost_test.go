package main

import (
	"crypto/sha256"
	"encoding/base64"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
)

// formPostResponse reads an OAuth 2.0 Form Post Response Mode page: where it
// posts and what.
func formPostResponse(t *testing.T, p page) (action string, fields url.Values) {
	t.Helper()
	if p.Status != 200 || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("form_post response: %d %q\n%s", p.Status, p.Header.Get("Content-Type"), truncateBody(p.Body))
	}
	forms := pageForms(t, p.Body)
	if len(forms) != 1 || forms[0].Method != "post" {
		t.Fatalf("form_post page has %d forms, want one that posts:\n%s", len(forms), truncateBody(p.Body))
	}
	return forms[0].Action, forms[0].Fields
}

// response_mode=form_post (OAuth 2.0 Form Post Response Mode) carries the
// same parameters as a redirect, iss included (RFC 9207), successes and
// errors alike, and the page posts itself without inline script.
func TestFormPostResponseMode(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("fay", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	formPost := oauth2.SetAuthURLParam("response_mode", "form_post")

	b := newBrowser(t)
	verifier, challenge := pkce()
	p := app.authorize(b, "st-1", formPost, oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	p = app.finish(b, p, "fay")
	action, f := formPostResponse(t, p)
	if action != app.RedirectURI || f.Get("code") == "" || f.Get("state") != "st-1" || f.Get("iss") != srv.URL {
		t.Fatalf("form_post success: action %q fields %v", action, f)
	}
	// Its one script runs because the CSP names its hash, and nothing else
	// inline would.
	csp := p.Header.Get("Content-Security-Policy")
	scripts := parsePage(t, p.Body).all("script")
	if len(scripts) != 1 {
		t.Fatalf("form_post page has %d scripts", len(scripts))
	}
	sum := sha256.Sum256([]byte(scripts[0].rawText()))
	if !strings.Contains(csp, "script-src 'sha256-"+base64.StdEncoding.EncodeToString(sum[:])+"'") || strings.Contains(csp, "unsafe-inline") || strings.Contains(p.Body, "onload=") {
		t.Errorf("form_post page CSP %q does not allow exactly its script", csp)
	}
	if !strings.Contains(p.Body, "<noscript>") {
		t.Error("form_post page has no way on without scripts")
	}
	if p.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("form_post Cache-Control %q", p.Header.Get("Cache-Control"))
	}
	if tok, err := app.exchange(f.Get("code"), verifier); err != nil || tok.AccessToken == "" {
		t.Fatalf("exchange of a form_post code: %v", err)
	}

	// An error goes back the same way, with its code.
	p = newBrowser(t).get(app.oauth.AuthCodeURL("st-2", formPost, oauth2.SetAuthURLParam("prompt", "none")))
	action, f = formPostResponse(t, p)
	if action != app.RedirectURI || f.Get("error") != "login_required" || f.Get("state") != "st-2" || f.Get("iss") != srv.URL {
		t.Errorf("form_post error: action %q fields %v", action, f)
	}

	// An error found before any sign-in (here an unsupported
	// code_challenge_method) too.
	p = newBrowser(t).get(app.oauth.AuthCodeURL("st-3", formPost, oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "plain")))
	action, f = formPostResponse(t, p)
	if action != app.RedirectURI || f.Get("error") != "invalid_request" || f.Get("state") != "st-3" || f.Get("iss") != srv.URL {
		t.Errorf("form_post early error: action %q fields %v", action, f)
	}

	// A redirect URI with a query of its own is the form's action as
	// registered; only response parameters are posted.
	withQuery := srv.createClient(account.NewClient{ID: "tenant", SkipConsent: true, RedirectURIs: []string{"http://127.0.0.1:9/cb?tenant=7"}})
	b = newBrowser(t)
	p = withQuery.finish(b, withQuery.authorize(b, "st-4", formPost, oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")), "fay")
	action, f = formPostResponse(t, p)
	if action != "http://127.0.0.1:9/cb?tenant=7" || f.Get("code") == "" || f.Get("state") != "st-4" || f.Has("tenant") {
		t.Errorf("form_post to a redirect URI with a query: action %q fields %v", action, f)
	}

	// response_mode=fragment: the parameters come back in the fragment as
	// they went out, a state full of the characters a form encoding
	// treats specially included, and with iss (RFC 9207). The state of an
	// app that keeps its return URL in it (oauth2-proxy) holds & and =.
	fragment := oauth2.SetAuthURLParam("response_mode", "fragment")
	fromFragment := func(t *testing.T, p page) url.Values {
		t.Helper()
		u, err := url.Parse(p.Location)
		if p.Status != 302 || err != nil || !strings.HasPrefix(p.Location, app.RedirectURI+"#") {
			t.Fatalf("fragment response: %d %s", p.Status, p.Location)
		}
		// As the app's script reads location.hash.
		got, err := url.ParseQuery(u.EscapedFragment())
		if err != nil {
			t.Fatalf("fragment %q: %v", u.EscapedFragment(), err)
		}
		return got
	}
	for _, state := range []string{"a+b c", "n0nce:https://app.example/p?a=1&b=2", "100%"} {
		b = newBrowser(t)
		verifier, challenge = pkce()
		p = app.finish(b, app.authorize(b, state, fragment, oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")), "fay")
		got := fromFragment(t, p)
		if got.Get("state") != state || got.Get("iss") != srv.URL || got.Get("code") == "" || len(got) != 3 {
			t.Errorf("fragment success for state %q: %v", state, got)
		} else if _, err := app.exchange(got.Get("code"), verifier); err != nil {
			t.Errorf("exchange of a fragment code: %v", err)
		}
		got = fromFragment(t, newBrowser(t).get(app.oauth.AuthCodeURL(state, fragment, oauth2.SetAuthURLParam("prompt", "none"))))
		if got.Get("state") != state || got.Get("iss") != srv.URL || got.Get("error") != "login_required" {
			t.Errorf("fragment error for state %q: %v", state, got)
		}
	}
}
