package main

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The pages for refused authorization and sign-out requests say in plain
// words, English or German, what went wrong and what to do, and show the
// value that was wrong, escaped and shortened; zitadel's technical English
// never shows.
func TestProviderErrorPagesInPlainLanguage(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	// A confidential client that registered a native app's private-use
	// scheme: zitadel refuses that kind of address for a client with a
	// secret, though it is registered. Keyport no longer registers such
	// a client (account.ValidateRedirectURI), but an older version did,
	// so the record is written as that version left it.
	if err := srv.Main.Store.CreateClient(t.Context(), storage.Client{ID: "conf", Name: "conf", SecretHash: account.HashSecret(account.NewSecret()),
		RedirectURIs: []string{"com.example.app:/oauth2redirect"}, GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken}}); err != nil {
		t.Fatal(err)
	}
	authorize := func(q url.Values) string {
		if !q.Has("response_type") {
			q.Set("response_type", "code")
			q.Set("scope", "openid")
		}
		return "/authorize?" + q.Encode()
	}
	xss := `https://evil.example/cb"><script>alert(1)</script>`
	long := "https://app.example/" + strings.Repeat("x", 3000)
	cases := []struct {
		name, path string
		status     int
		heading    [2]string // English, German
		shown      string    // the value the page must show
		notShown   [2]string // text of another case the page must not show (English, German)
	}{
		{"unknown client", authorize(url.Values{"client_id": {"nobody"}, "redirect_uri": {"https://app.example/cb"}}),
			400, [2]string{"Unknown application", "Unbekannte Anwendung"}, "nobody", [2]string{}},
		{"unknown client, shaped like markup", authorize(url.Values{"client_id": {`<img src=x onerror=alert(1)>`}, "redirect_uri": {"https://app.example/cb"}}),
			400, [2]string{"Unknown application", "Unbekannte Anwendung"}, `<img src=x onerror=alert(1)>`, [2]string{}},
		{"unregistered redirect URI", authorize(url.Values{"client_id": {"app"}, "redirect_uri": {"https://evil.example/cb"}}),
			400, [2]string{"This application cannot sign you in here", "Diese Anwendung kann Sie hier nicht anmelden"}, "https://evil.example/cb", [2]string{"may not use an address", "darf keine Adresse"}},
		{"registered redirect URI of a kind the client may not use", authorize(url.Values{"client_id": {"conf"}, "redirect_uri": {"com.example.app:/oauth2redirect"},
			"code_challenge": {"E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"}, "code_challenge_method": {"S256"}}),
			400, [2]string{"This application cannot sign you in here", "Diese Anwendung kann Sie hier nicht anmelden"}, "com.example.app:/oauth2redirect", [2]string{"not registered", "nicht registriert"}},
		{"redirect URI with a right-to-left override", authorize(url.Values{"client_id": {"app"}, "redirect_uri": {"https://evil.example/\u202Emoc.elgoog"}}),
			400, [2]string{"This application cannot sign you in here", "Diese Anwendung kann Sie hier nicht anmelden"}, "https://evil.example/\uFFFDmoc.elgoog", [2]string{"\u202E", "\u202E"}},
		{"redirect URI shaped like markup", authorize(url.Values{"client_id": {"app"}, "redirect_uri": {xss}}),
			400, [2]string{"This application cannot sign you in here", "Diese Anwendung kann Sie hier nicht anmelden"}, xss, [2]string{}},
		{"long redirect URI", authorize(url.Values{"client_id": {"app"}, "redirect_uri": {long}}),
			400, [2]string{"This application cannot sign you in here", "Diese Anwendung kann Sie hier nicht anmelden"}, long[:200] + "…", [2]string{}},
		{"redirect URI missing", authorize(url.Values{"client_id": {"app"}}),
			400, [2]string{"This request cannot be processed", "Diese Anfrage kann nicht bearbeitet werden"}, "redirect_uri is missing", [2]string{}},
		{"expired sign-in request", "/authorize/callback?id=no-such-request",
			400, [2]string{"This sign-in request cannot be used", "Diese Anmeldeanfrage kann nicht verwendet werden"}, "", [2]string{}},
		{"broken id_token_hint", "/end_session?id_token_hint=not.a.token",
			400, [2]string{"Sign-out request not accepted", "Abmeldeanfrage nicht angenommen"}, "id_token_hint", [2]string{}},
		{"sign-out for an unknown client", "/end_session?client_id=nobody",
			400, [2]string{"Sign-out request not accepted", "Abmeldeanfrage nicht angenommen"}, "nobody", [2]string{}},
		{"sign-out to an unregistered address", "/end_session?" + url.Values{"client_id": {"app"}, "post_logout_redirect_uri": {xss}}.Encode(),
			400, [2]string{"Sign-out request not accepted", "Abmeldeanfrage nicht angenommen"}, xss, [2]string{}},
	}
	technical := []string{"unable to retrieve client by id", "id_token_hint invalid", "missing in the client configuration", "post_logout_redirect_uri invalid",
		"unknown client", "authorization request not found", "ErrorType=", "<script>alert(1)", "<img src=x", "custom schema", "is not allowed"}
	for _, c := range cases {
		for i, lang := range []string{"en-US,en;q=0.9", "de-DE,de;q=0.9"} {
			req, _ := http.NewRequest(http.MethodGet, srv.URL+c.path, nil)
			req.Header.Set("Accept-Language", lang)
			p := newBrowser(t).do(req)
			if p.Status != c.status || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s (%s): %d %s", c.name, lang[:2], p.Status, p.Header.Get("Content-Type"))
			}
			text := html.UnescapeString(p.Body)
			if !strings.Contains(p.Body, `<html lang="`+lang[:2]+`"`) || !strings.Contains(text, "<h1>"+c.heading[i]+"</h1>") {
				t.Errorf("%s (%s): heading %q missing:\n%s", c.name, lang[:2], c.heading[i], truncateBody(p.Body))
			}
			if !strings.Contains(text, c.shown) {
				t.Errorf("%s (%s): the page does not show %.60q:\n%s", c.name, lang[:2], c.shown, truncateBody(p.Body))
			}
			if c.notShown[i] != "" && strings.Contains(text, c.notShown[i]) {
				t.Errorf("%s (%s): the page says %q:\n%s", c.name, lang[:2], c.notShown[i], truncateBody(p.Body))
			}
			if c.shown == long[:200]+"…" && strings.Contains(text, long[:201]) {
				t.Errorf("%s: the value is not shortened", c.name)
			}
			for _, s := range technical {
				if strings.Contains(p.Body, s) {
					t.Errorf("%s (%s): the page shows %q:\n%s", c.name, lang[:2], s, truncateBody(p.Body))
				}
			}
			if i == 1 && (strings.Contains(text, "Go back") || strings.Contains(text, "The application")) {
				t.Errorf("%s: English on the German page:\n%s", c.name, truncateBody(p.Body))
			}
		}
	}
}
