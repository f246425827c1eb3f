package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/testclock"
)

// refreshPrefix is the length of a refresh token's time prefix
// (provider.refreshPrefixLen): the rest is the secret.
const refreshPrefix = 10

// works reports whether a session's tokens still work: the access token at
// userinfo and the refresh token at the token endpoint. A working refresh
// token rotates, so the session moves on to the new one.
func (c *testClient) works(tok *oauth2.Token) (access, refresh bool) {
	c.srv.t.Helper()
	st, _, _ := c.srv.userinfo(tok.AccessToken)
	status, _, body := c.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status == 200 {
		tok.RefreshToken, _ = body["refresh_token"].(string)
		tok.AccessToken, _ = body["access_token"].(string)
	}
	return st == 200, status == 200
}

// offlineApp is a confidential client that gets refresh tokens, on a
// server with one user, gus.
func offlineApp(t *testing.T, srv *testServer) *testClient {
	t.Helper()
	srv.createUser("gus", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	return app
}

// tokenRequestLog records the token requests a real client sends.
type tokenRequestLog struct {
	mu    sync.Mutex
	basic []bool // per request: HTTP Basic (true) or secret in the body
}

func (l *tokenRequestLog) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _, basic := r.BasicAuth()
	l.mu.Lock()
	l.basic = append(l.basic, basic)
	l.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

// x/oauth2, not told how the server wants the client's secret, sends it
// with HTTP Basic, and when that exchange fails for any reason sends the
// same code again with the secret in the body. The second request must not
// count as a replay that signs the user out of the app: the first issued
// nothing.
func TestCodeRetryWithOtherAuthStyleRevokesNothing(t *testing.T) {
	srv := startServer(t, "", nil)
	app := offlineApp(t, srv)
	earlier := app.tokens("gus") // the user's session at the app in another browser

	code, _ := app.signIn(newBrowser(t), "gus")
	wrong, _ := pkce()
	log := &tokenRequestLog{}
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, &http.Client{Transport: log})
	// A freshly started app: x/oauth2 has not yet learnt the style that works.
	fresh := oauth2.Config{ClientID: app.ID, ClientSecret: app.Secret, Endpoint: app.oauth.Endpoint, RedirectURL: app.RedirectURI, Scopes: app.oauth.Scopes}
	if fresh.Endpoint.AuthStyle != oauth2.AuthStyleAutoDetect {
		t.Fatalf("the relying party is set to auth style %v; the test needs x/oauth2's detection", fresh.Endpoint.AuthStyle)
	}
	_, err := fresh.Exchange(ctx, code, oauth2.VerifierOption(wrong))
	if oauthErr(err) != "invalid_grant" {
		t.Fatalf("exchange with a wrong verifier: %v", err)
	}
	if len(log.basic) != 2 || !log.basic[0] || log.basic[1] {
		t.Fatalf("x/oauth2 sent %d token requests (Basic: %v); the test needs its retry in the other style", len(log.basic), log.basic)
	}
	if access, refresh := app.works(earlier); !access || !refresh {
		t.Errorf("the user's other session at the app after the failed exchange and its retry: access token works %v, refresh token works %v", access, refresh)
	}
}

// A wrong code_verifier spends the code (OAuth 2.1: a code is used once, so
// the right verifier afterwards is refused too) but issues nothing, so the
// second attempt revokes nothing. The app starts the sign-in again.
func TestWrongVerifierThenRightOne(t *testing.T) {
	srv := startServer(t, "", nil)
	app := offlineApp(t, srv)
	earlier := app.tokens("gus")

	b := newBrowser(t)
	code, verifier := app.signIn(b, "gus")
	wrong, _ := pkce()
	status, h, body := app.tokenPost(negCodeForm(code, app.RedirectURI, wrong), true)
	negTokenError(t, "wrong verifier", status, h, body, 400, "invalid_grant")
	status, h, body = app.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
	negTokenError(t, "right verifier after a wrong one", status, h, body, 400, "invalid_grant")
	if access, refresh := app.works(earlier); !access || !refresh {
		t.Errorf("the user's other session after the two attempts: access token works %v, refresh token works %v", access, refresh)
	}
	// Starting again works, single sign-on included.
	code, verifier = app.signIn(b, "gus")
	if _, err := app.exchange(code, verifier); err != nil {
		t.Fatalf("a new sign-in after the spent code: %v", err)
	}
}

// RFC 6749 §4.1.2: a replayed code revokes the tokens issued from it (the
// access token and the refresh-token family it started), and nothing else:
// not the user's other sessions at the same app. A code presented by
// another client, or without valid credentials, is not a replay at all.
func TestCodeReplayRevokesOnlyItsTokens(t *testing.T) {
	srv := startServer(t, "", nil)
	app := offlineApp(t, srv)
	other := srv.createClient(account.NewClient{ID: "other", SkipConsent: true})
	earlier := app.tokens("gus")

	code, verifier := app.signIn(newBrowser(t), "gus")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		user, pass string
		status     int
		code       string
	}{
		{"another client", other.ID, other.Secret, 400, "invalid_grant"},
		{"the app with a wrong secret", app.ID, "not-the-secret-0123456789", 401, "invalid_client"},
		{"no client", "", "", 401, "invalid_client"},
	} {
		r, err := srv.sendForm("/oauth/token", negCodeForm(code, app.RedirectURI, verifier), c.user, c.pass)
		if err != nil {
			t.Fatal(err)
		}
		negTokenError(t, c.name+" presents the redeemed code", r.Status, r.Header, r.JSON(), c.status, c.code)
		if st, _, _ := srv.userinfo(tok.AccessToken); st != 200 {
			t.Fatalf("the code's access token after %s presented the code: %d", c.name, st)
		}
	}

	// The app itself presents it again: a replay.
	if _, err := app.exchange(code, verifier); oauthErr(err) != "invalid_grant" {
		t.Fatalf("replay: %v", err)
	}
	if access, refresh := app.works(tok); access || refresh {
		t.Errorf("the replayed code's tokens: access token works %v, refresh token works %v; want both revoked", access, refresh)
	}
	if access, refresh := app.works(earlier); !access || !refresh {
		t.Errorf("another session of the same user at the app: access token works %v, refresh token works %v; want both untouched", access, refresh)
	}

	// Without offline_access a code issues an access token only; a replay
	// revokes that one.
	app.oauth.Scopes = []string{oidc.ScopeOpenID}
	code, verifier = app.signIn(newBrowser(t), "gus")
	online, err := app.exchange(code, verifier)
	if err != nil || online.RefreshToken != "" {
		t.Fatalf("exchange without offline_access: %v %v", err, online)
	}
	if _, err := app.exchange(code, verifier); oauthErr(err) != "invalid_grant" {
		t.Fatalf("replay: %v", err)
	}
	if st, _, _ := srv.userinfo(online.AccessToken); st != 401 {
		t.Errorf("the access token of a replayed code without offline_access: %d, want 401", st)
	}
	if access, refresh := app.works(earlier); !access || !refresh {
		t.Errorf("the other session after the second replay: access token works %v, refresh token works %v", access, refresh)
	}
}

// RFC 6749 §5.2: a client that fails authentication, an unknown one
// included, gets 401 invalid_client, with WWW-Authenticate after HTTP
// Basic, at every endpoint and for every grant; and its attempt does not
// spend the code it presented.
func TestUnknownClientAtTokenEndpoints(t *testing.T) {
	srv := startServer(t, "", nil)
	app := offlineApp(t, srv)
	spa := srv.createClient(account.NewClient{ID: "spa", Public: true, SkipConsent: true})
	b := newBrowser(t)
	code, verifier := app.signIn(b, "gus")
	tok := app.tokens("gus")

	forms := map[string]url.Values{
		"code grant, made-up code":          negCodeForm("made-up-code", app.RedirectURI, verifier),
		"code grant, a real code":           negCodeForm(code, app.RedirectURI, verifier),
		"refresh grant":                     {"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}},
		"client_credentials grant":          {"grant_type": {"client_credentials"}},
		"introspection (/oauth/introspect)": {"token": {tok.AccessToken}},
		"revocation (/revoke)":              {"token": {tok.RefreshToken}},
	}
	path := func(name string) string {
		switch {
		case strings.Contains(name, "introspect"):
			return "/oauth/introspect"
		case strings.Contains(name, "revoke"):
			return "/revoke"
		}
		return "/oauth/token"
	}
	// Each unknown client has a name of its own, so the failures stay below
	// the client-secret throttle (max_login_attempts per client and address).
	unknown := 0
	nobody := func() string { unknown++; return fmt.Sprintf("nobody-%d", unknown) }
	for name, form := range forms {
		for _, cred := range []struct {
			how        string
			user, pass string
			body       url.Values
		}{
			{"unknown client, Basic", nobody(), "some-secret-value-123", nil},
			{"unknown client, in the body", "", "", url.Values{"client_id": {nobody()}, "client_secret": {"some-secret-value-123"}}},
			{"unknown client, no secret", "", "", url.Values{"client_id": {nobody()}}},
			{"known client, wrong secret", app.ID, "not-the-secret-0123456789", nil},
		} {
			f := cloneForm(form)
			for k, v := range cred.body {
				f[k] = v
			}
			r, err := srv.sendForm(path(name), f, cred.user, cred.pass)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != 401 || r.ErrCode() != "invalid_client" {
				t.Errorf("%s, %s: %s, want 401 invalid_client", name, cred.how, r)
			}
			if cred.user != "" && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("%s, %s: WWW-Authenticate %q after HTTP Basic", name, cred.how, r.Header.Get("WWW-Authenticate"))
			}
		}
	}
	// A public client is known by its ID alone; an unknown one is refused
	// before its code is looked at.
	spaCode, spaVerifier := spa.signIn(b, "gus")
	f := negCodeForm(spaCode, spa.RedirectURI, spaVerifier)
	f.Set("client_id", "nobody-public")
	if r, err := srv.sendForm("/oauth/token", f, "", ""); err != nil || r.Status != 401 || r.ErrCode() != "invalid_client" {
		t.Errorf("unknown public client with a code: %v %s", err, r)
	}
	// None of that spent the codes or touched the tokens.
	if _, err := app.exchange(code, verifier); err != nil {
		t.Errorf("the app's code after the refused attempts: %v", err)
	}
	if _, err := spa.exchange(spaCode, spaVerifier); err != nil {
		t.Errorf("the public client's code after the refused attempt: %v", err)
	}
	if access, refresh := app.works(tok); !access || !refresh {
		t.Errorf("tokens after the refused attempts: access token works %v, refresh token works %v", access, refresh)
	}
}

func cloneForm(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

// Two tabs refreshing at once, or an app retrying after a lost response,
// use one refresh token twice in good faith. Within the reuse grace the
// second use gets the same new refresh token (and a fresh access token);
// once that new token has been used, or after the grace, the old one is
// reuse again and ends the family.
func TestRefreshReuseGrace(t *testing.T) {
	clock := testclock.At(time.Now())
	srv := startServerWith(t, serverOptions{now: clock.Now}) // the default grace, 5s
	app := offlineApp(t, srv)
	refresh := func(rt string) (int, map[string]any) {
		t.Helper()
		status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true)
		return status, body
	}

	t.Run("tabs at once", func(t *testing.T) {
		tok := app.tokens("gus")
		// Eight tabs of one app, each a real relying party holding the
		// same expired access token and refresh token.
		const tabs = 8
		got := parallel(tabs, func(int) *oauth2.Token {
			src := app.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)})
			next, err := src.Token()
			if err != nil {
				t.Errorf("a tab's refresh: %v", err)
				return nil
			}
			return next
		})
		seen := map[string]bool{}
		for i, next := range got {
			if next == nil {
				t.FailNow()
			}
			if next.RefreshToken == tok.RefreshToken || (i > 0 && next.RefreshToken != got[0].RefreshToken) {
				t.Fatalf("tab %d got refresh token %q, tab 0 %q (presented %q)", i, next.RefreshToken, got[0].RefreshToken, tok.RefreshToken)
			}
			if seen[next.AccessToken] {
				t.Errorf("tab %d got an access token another tab got too", i)
			}
			seen[next.AccessToken] = true
			if st, _, _ := srv.userinfo(next.AccessToken); st != 200 {
				t.Errorf("tab %d's access token at userinfo: %d", i, st)
			}
		}
		if access, refresh := app.works(got[0]); !access || !refresh {
			t.Errorf("the family after the tabs' refreshes: access %v, refresh %v", access, refresh)
		}
	})

	t.Run("retry after a lost response", func(t *testing.T) {
		tok := app.tokens("gus")
		status, lost := refresh(tok.RefreshToken)
		if status != 200 {
			t.Fatalf("first refresh: %d %v", status, lost)
		}
		clock.Add(4 * time.Second)
		status, retried := refresh(tok.RefreshToken)
		if status != 200 || retried["refresh_token"] != lost["refresh_token"] || retried["access_token"] == lost["access_token"] {
			t.Fatalf("retry within the grace: %d %v, first answer %v", status, retried, lost)
		}
		for _, a := range []any{lost["access_token"], retried["access_token"]} {
			if st, _, _ := srv.userinfo(a.(string)); st != 200 {
				t.Errorf("access token of the first answer or the retry: %d", st)
			}
		}
		// The new token is used; now the old one is reuse, grace or not.
		next, _ := retried["refresh_token"].(string)
		// Kept for the retry, the new token is in the database only sealed.
		var db bytes.Buffer
		if err := srv.Main.Store.Backup(context.Background(), &db); err != nil {
			t.Fatal(err)
		}
		for _, plain := range []string{next[refreshPrefix:], base64.StdEncoding.EncodeToString([]byte(next))} {
			if bytes.Contains(db.Bytes(), []byte(plain)) {
				t.Errorf("the database holds a refresh token in plain text (%.12s…)", plain)
			}
		}
		status, body := refresh(next)
		if status != 200 {
			t.Fatalf("refresh with the new token: %d %v", status, body)
		}
		third, _ := body["refresh_token"].(string)
		if status, body := refresh(tok.RefreshToken); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("the old token once its successor was used: %d %v", status, body)
		}
		if status, body := refresh(third); status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("the family after that reuse: %d %v", status, body)
		}
	})

	t.Run("after the grace", func(t *testing.T) {
		tok := app.tokens("gus")
		status, body := refresh(tok.RefreshToken)
		if status != 200 {
			t.Fatalf("refresh: %d %v", status, body)
		}
		next, _ := body["refresh_token"].(string)
		clock.Add(5 * time.Second)
		if status, body := refresh(tok.RefreshToken); status != 400 || body["error"] != "invalid_grant" {
			t.Fatalf("the old token after the grace: %d %v", status, body)
		}
		if status, body := refresh(next); status != 400 || body["error"] != "invalid_grant" {
			t.Errorf("the family after a reuse past the grace: %d %v", status, body)
		}
	})
}

// refresh_reuse_grace = "0s" turns the grace off: a second use of a token
// is reuse at once, as before the grace existed.
func TestRefreshReuseGraceOff(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.Tokens.RefreshReuseGrace = config.Duration{} })
	app := offlineApp(t, srv)
	tok := app.tokens("gus")
	status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != 200 {
		t.Fatalf("refresh: %d %v", status, body)
	}
	next, _ := body["refresh_token"].(string)
	status, _, body = app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Fatalf("second use without a grace: %d %v", status, body)
	}
	status, _, body = app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}}, true)
	if status != 400 || body["error"] != "invalid_grant" {
		t.Errorf("the family after a reuse without a grace: %d %v", status, body)
	}
}

// The code grant's client is authenticated before the code is looked at,
// through the same client-secret throttle as the other grants: wrong
// secrets from one address end in 429 there, and none of it spends the
// code, which its app then redeems from its own address.
func TestCodeGrantClientThrottled(t *testing.T) {
	srv := startServer(t, "", nil)
	app := offlineApp(t, srv)
	code, verifier := app.signIn(newBrowser(t), "gus")
	exchange := func(from, secret string) (int, http.Header, map[string]any) {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader(negCodeForm(code, app.RedirectURI, verifier).Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(app.ID), url.QueryEscape(secret))
		return doJSON(t, browserFrom(t, from).client, req)
	}
	for i := range 10 {
		if status, _, body := exchange("127.0.0.5", fmt.Sprintf("wrong-secret-%02d-0123456789", i)); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Fatalf("wrong secret %d: %d %v", i+1, status, body)
		}
	}
	if status, h, body := exchange("127.0.0.5", app.Secret); status != http.StatusTooManyRequests || retryAfter(h) <= 0 {
		t.Fatalf("the right secret from the throttled address: %d %v %v", status, h, body)
	}
	if status, _, body := exchange("127.0.0.6", app.Secret); status != http.StatusOK || body["access_token"] == nil {
		t.Fatalf("the app's exchange from its own address: %d %v", status, body)
	}
}

// zitadel reads the token request's parameters from the query string as
// well as from the body, so grant_type in the query must not slip past
// the client check that runs before a code is looked at (nor past the
// refusal of grants Keyport does not offer): an unknown client gets 401
// invalid_client, and the code it presented stays unspent.
func TestGrantTypeInQueryString(t *testing.T) {
	srv := startServer(t, "", nil)
	app := offlineApp(t, srv)
	code, verifier := app.signIn(newBrowser(t), "gus")
	post := func(query string, form url.Values, user, pass string) page {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token?"+query, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
		}
		r, err := fetch(bareClient, req)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	form := url.Values{"code": {code}, "redirect_uri": {app.RedirectURI}, "code_verifier": {verifier}}
	for _, c := range []struct {
		how        string
		user, pass string
		body       url.Values
	}{
		{"unknown client in the body", "", "", url.Values{"client_id": {"nobody-q1"}, "client_secret": {"some-secret-value-123"}}},
		{"unknown client, Basic", "nobody-q2", "some-secret-value-123", nil},
		{"the app with a wrong secret", app.ID, "not-the-secret-0123456789", nil},
	} {
		f := cloneForm(form)
		for k, v := range c.body {
			f[k] = v
		}
		r := post("grant_type=authorization_code", f, c.user, c.pass)
		if r.Status != 401 || r.ErrCode() != "invalid_client" {
			t.Errorf("%s, grant_type in the query: %s, want 401 invalid_client", c.how, r)
		}
	}
	if r := post("grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer", url.Values{"assertion": {"x.y.z"}}, app.ID, app.Secret); r.Status != 400 || r.ErrCode() != "unsupported_grant_type" {
		t.Errorf("a grant Keyport does not offer, in the query: %s, want 400 unsupported_grant_type", r)
	}
	if _, err := app.exchange(code, verifier); err != nil {
		t.Errorf("the code after the refused attempts: %v", err)
	}
}

// A public client is known by its client_id alone, which anyone may send.
// A used code of a public client presented again revokes the tokens it
// issued only with the code's PKCE verifier, which only the app holds:
// without it, whoever saw the code (in a log, a referrer, a browser's
// history) could sign the person out of that session.
func TestPublicClientCodeReplayNeedsVerifier(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("gus", false)
	spa := srv.createClient(account.NewClient{ID: "spa", Public: true, SkipConsent: true})
	spa.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	code, verifier := spa.signIn(newBrowser(t), "gus")
	tok, err := spa.exchange(code, verifier)
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("exchange: %v, refresh token %t", err, tok != nil && tok.RefreshToken != "")
	}
	works := func() (access, refresh bool) {
		t.Helper()
		st, _, _ := srv.userinfo(tok.AccessToken)
		status, _, body := spa.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, false)
		if status == 200 {
			tok.RefreshToken, _ = body["refresh_token"].(string)
			tok.AccessToken, _ = body["access_token"].(string)
		}
		return st == 200, status == 200
	}
	wrong, _ := pkce()
	for name, v := range map[string]string{"no verifier": "", "a wrong verifier": wrong} {
		status, h, body := spa.tokenPost(negCodeForm(code, spa.RedirectURI, v), false)
		negTokenError(t, "the used code with "+name, status, h, body, 400, "invalid_grant")
		if access, refresh := works(); !access || !refresh {
			t.Errorf("the session after the used code was presented with %s: access token works %v, refresh token works %v; want both untouched", name, access, refresh)
		}
	}
	// The app itself, with its verifier: a replay, and the code's tokens go.
	status, h, body := spa.tokenPost(negCodeForm(code, spa.RedirectURI, verifier), false)
	negTokenError(t, "the used code with its verifier", status, h, body, 400, "invalid_grant")
	if access, refresh := works(); access || refresh {
		t.Errorf("the session after the app replayed its code: access token works %v, refresh token works %v; want both revoked", access, refresh)
	}
}
