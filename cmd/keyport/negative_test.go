package main

// Negative end-to-end tests: everything a client, a browser or an attacker
// can get wrong, against the real server over real HTTP. Every test checks
// the status, the OAuth error code and the headers, and that the refused
// request changed nothing.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
)

// ---------------------------------------------------------------------------
// Helpers of the negative tests alone; the rest are the harness's.

// negRaw writes a request byte for byte (for bytes Go's client refuses to
// send: NUL, raw invalid UTF-8 in the request line) and reads the answer.
func negRaw(addr, request string) (page, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return page{}, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(conn, request); err != nil {
		return page{}, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return page{}, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}, nil
}

// negAuthorizeURL builds an /authorize URL from params.
func negAuthorizeURL(srv *testServer, params url.Values) string {
	return srv.URL + "/authorize?" + params.Encode()
}

// negAuthParams are the parameters of a well-formed authorization request.
func negAuthParams(clientID, redirect, state string) url.Values {
	_, challenge := pkce()
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {clientID},
		"redirect_uri":          {redirect},
		"scope":                 {"openid profile"},
		"state":                 {state},
		"nonce":                 {"n-" + state},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}
}

// negCodeForm is an authorization_code token request.
func negCodeForm(code, redirect, verifier string) url.Values {
	f := url.Values{"grant_type": {"authorization_code"}, "code": {code}}
	if redirect != "" {
		f.Set("redirect_uri", redirect)
	}
	if verifier != "" {
		f.Set("code_verifier", verifier)
	}
	return f
}

// negTokenError checks a failed token-endpoint answer.
func negTokenError(t *testing.T, what string, status int, h http.Header, body map[string]any, wantStatus int, wantCodes ...string) {
	t.Helper()
	code, _ := body["error"].(string)
	if status != wantStatus || !slices.Contains(wantCodes, code) {
		t.Errorf("%s: got %d %v, want %d %v", what, status, body, wantStatus, wantCodes)
	}
	for _, k := range []string{"access_token", "refresh_token", "id_token"} {
		if _, ok := body[k]; ok {
			t.Errorf("%s: the error response carries %s: %v", what, k, body)
		}
	}
	if got := h.Get("Cache-Control"); got != "no-store" {
		t.Errorf("%s: Cache-Control = %q, want no-store", what, got)
	}
}

// negErrorPage checks that an answer is an HTML error page with status
// want that sends the browser nowhere.
func negErrorPage(t *testing.T, what string, r page, want int) {
	t.Helper()
	if r.Status != want {
		t.Errorf("%s: status %d, want %d\n%s", what, r.Status, want, r)
	}
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("%s: Content-Type %q, want text/html", what, ct)
	}
	if loc := r.Header.Get("Location"); loc != "" {
		t.Errorf("%s: Location %q on an error page", what, loc)
	}
	if strings.Contains(r.Body, "http-equiv") || strings.Contains(r.Body, "code=") {
		t.Errorf("%s: the error page redirects or leaks a code:\n%s", what, truncateBody(r.Body))
	}
}

// ---------------------------------------------------------------------------
// 1. The token endpoint's code grant.

func TestCodeExchangeNegative(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("nina", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true,
		RedirectURIs: []string{"http://127.0.0.1:9/callback/app", "http://127.0.0.1:9/callback/app-alt"}})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	other := srv.createClient(account.NewClient{ID: "other", SkipConsent: true})
	b := newBrowser(t)

	t.Run("code reuse", func(t *testing.T) {
		code, verifier := app.signIn(b, "nina")
		status, h, body := app.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
		if status != 200 || body["access_token"] == nil || h.Get("Cache-Control") != "no-store" {
			t.Fatalf("first exchange: %d %v %v", status, h, body)
		}
		access, _ := body["access_token"].(string)
		refresh, _ := body["refresh_token"].(string)
		status, h, body = app.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
		negTokenError(t, "second exchange", status, h, body, 400, "invalid_grant")
		// RFC 6749 §4.1.2: the tokens issued for a replayed code are revoked.
		if st, h, _ := srv.userinfo(access); st != 401 || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`) {
			t.Errorf("access token of a replayed code still works at userinfo: %d", st)
		}
		status, h, body = app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refresh}}, true)
		negTokenError(t, "refresh token of a replayed code", status, h, body, 400, "invalid_grant")
	})

	t.Run("wrong code_verifier", func(t *testing.T) {
		code, verifier := app.signIn(b, "nina")
		wrong, _ := pkce()
		status, h, body := app.tokenPost(negCodeForm(code, app.RedirectURI, wrong), true)
		negTokenError(t, "wrong verifier", status, h, body, 400, "invalid_grant")
		// One guess only: the failed attempt spent the code.
		status, h, body = app.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
		negTokenError(t, "right verifier after a wrong one", status, h, body, 400, "invalid_grant")
	})

	t.Run("missing code_verifier (PKCE downgrade)", func(t *testing.T) {
		code, verifier := app.signIn(b, "nina")
		status, h, body := app.tokenPost(negCodeForm(code, app.RedirectURI, ""), true)
		negTokenError(t, "no verifier", status, h, body, 400, "invalid_request", "invalid_grant")
		status, h, body = app.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
		negTokenError(t, "verifier after a downgrade attempt", status, h, body, 400, "invalid_grant")
	})

	t.Run("wrong client secret", func(t *testing.T) {
		bad := *app
		bad.Secret = "definitely-not-the-secret"
		code, verifier := app.signIn(b, "nina")
		status, h, body := bad.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
		negTokenError(t, "wrong secret (Basic)", status, h, body, 401, "invalid_client")
		if wa := h.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Basic") {
			t.Errorf("401 after Basic without WWW-Authenticate: Basic: %q", wa)
		}
		code, verifier = app.signIn(b, "nina")
		status, h, body = bad.tokenPost(negCodeForm(code, app.RedirectURI, verifier), false)
		negTokenError(t, "wrong secret (form)", status, h, body, 401, "invalid_client")

		unknown := *app
		unknown.ID = "nobody"
		code, verifier = app.signIn(b, "nina")
		status, h, body = unknown.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
		negTokenError(t, "unknown client", status, h, body, 401, "invalid_client")
		if wa := h.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Basic") {
			t.Errorf("unknown client: WWW-Authenticate %q", wa)
		}
	})

	t.Run("code of another client", func(t *testing.T) {
		code, verifier := app.signIn(b, "nina")
		status, h, body := other.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
		negTokenError(t, "client B redeems client A's code", status, h, body, 400, "invalid_grant")
		status, h, body = other.tokenPost(negCodeForm(code, other.RedirectURI, verifier), true)
		negTokenError(t, "again with B's redirect URI", status, h, body, 400, "invalid_grant")
	})

	t.Run("redirect_uri mismatch", func(t *testing.T) {
		code, verifier := app.signIn(b, "nina")
		status, h, body := app.tokenPost(negCodeForm(code, "http://127.0.0.1:9/callback/app-alt", verifier), true)
		negTokenError(t, "other registered redirect URI", status, h, body, 400, "invalid_grant")
		code, verifier = app.signIn(b, "nina")
		status, h, body = app.tokenPost(negCodeForm(code, "", verifier), true)
		negTokenError(t, "no redirect URI", status, h, body, 400, "invalid_grant")
		code, verifier = app.signIn(b, "nina")
		status, h, body = app.tokenPost(negCodeForm(code, app.RedirectURI+"/", verifier), true)
		negTokenError(t, "redirect URI with a trailing slash", status, h, body, 400, "invalid_grant")
	})

	// After all that, a clean exchange still works: nothing above broke the client.
	code, verifier := app.signIn(b, "nina")
	if _, err := app.exchange(code, verifier); err != nil {
		t.Fatalf("clean exchange after the negative cases: %v", err)
	}
}

// ---------------------------------------------------------------------------
// 2. /authorize: unknown clients and unregistered redirect URIs never redirect.

func TestAuthorizeRejectsUnknownClientAndRedirectURI(t *testing.T) {
	srv := startServer(t, "", nil)
	const reg = "http://127.0.0.1:9/callback/app"
	srv.createClient(account.NewClient{ID: "app", RedirectURIs: []string{reg}})
	srv.createClient(account.NewClient{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1:9/callback/spa"}})

	cases := []struct{ name, client, redirect string }{
		{"unknown client", "nobody", reg},
		{"empty client_id", "", reg},
		{"unknown client with its own URI", "nobody", "https://evil.example/cb"},
		{"missing redirect_uri", "app", ""},
		{"prefix of the registered URI", "app", "http://127.0.0.1:9/callback/ap"},
		{"registered URI plus suffix", "app", reg + "2"},
		{"registered URI plus path", "app", reg + "/evil"},
		{"trailing slash", "app", reg + "/"},
		{"different case in the path", "app", "http://127.0.0.1:9/Callback/app"},
		{"different case in the scheme", "app", "HTTP://127.0.0.1:9/callback/app"},
		{"extra query parameter", "app", reg + "?x=1"},
		{"empty query", "app", reg + "?"},
		{"fragment", "app", reg + "#f"},
		{"https instead of http", "app", "https://127.0.0.1:9/callback/app"},
		{"other port", "app", "http://127.0.0.1:10/callback/app"},
		{"default port spelled out", "app", "http://127.0.0.1:9/callback/app:80"},
		{"other host", "app", "http://evil.example/callback/app"},
		{"userinfo trick", "app", "http://127.0.0.1:9@evil.example/callback/app"},
		{"dot segments", "app", "http://127.0.0.1:9/callback/x/../app"},
		{"percent-encoded path", "app", "http://127.0.0.1:9/callback/%61pp"},
		{"another client's URI", "app", "http://127.0.0.1:9/callback/spa"},
		{"javascript scheme", "app", "javascript:alert(1)"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := negAuthParams(c.client, c.redirect, "st")
			if c.redirect == "" {
				q.Del("redirect_uri")
			}
			r := bareGet(t, negAuthorizeURL(srv, q))
			negErrorPage(t, c.name, r, http.StatusBadRequest)
			// A browser following everything still ends on Keyport's page.
			p := newBrowser(t).get(negAuthorizeURL(srv, q))
			if p.URL.Host != strings.TrimPrefix(srv.URL, "http://") || p.Status != 400 || strings.Contains(p.URL.Path, "login") {
				t.Errorf("browser ended at %s with %d", p.URL, p.Status)
			}
		})
	}

	// Well-formed client and redirect URI, but PKCE broken: the error goes
	// back to the app (its URI is verified), and no code comes with it.
	refused := func(t *testing.T, q url.Values, wantCode string) {
		t.Helper()
		r := bareGet(t, negAuthorizeURL(srv, q))
		if r.Status != http.StatusFound {
			t.Fatalf("expected an error redirect to the app, got %s", r)
		}
		u, err := url.Parse(r.Header.Get("Location"))
		if err != nil {
			t.Fatal(err)
		}
		got := u.Query()
		if !strings.HasPrefix(r.Header.Get("Location"), q.Get("redirect_uri")+"?") || got.Get("error") != wantCode || got.Has("code") ||
			got.Get("state") != q.Get("state") || got.Get("iss") != srv.URL {
			t.Errorf("refusal: %s", r.Header.Get("Location"))
		}
	}
	t.Run("plain PKCE", func(t *testing.T) {
		q := negAuthParams("app", reg, "plain")
		q.Set("code_challenge", strings.Repeat("a", 43))
		q.Set("code_challenge_method", "plain")
		refused(t, q, "invalid_request")
		q = negAuthParams("spa", "http://127.0.0.1:9/callback/spa", "plain-spa")
		q.Set("code_challenge_method", "plain")
		refused(t, q, "invalid_request")
	})
	t.Run("unknown PKCE method", func(t *testing.T) {
		q := negAuthParams("app", reg, "s512")
		q.Set("code_challenge_method", "S512")
		refused(t, q, "invalid_request")
	})
	t.Run("public client without code_challenge", func(t *testing.T) {
		q := negAuthParams("spa", "http://127.0.0.1:9/callback/spa", "nopkce")
		q.Del("code_challenge")
		q.Del("code_challenge_method")
		refused(t, q, "invalid_request")
	})
	// A response type with token or id_token answers in the fragment
	// unless response_mode says otherwise, its errors too (RFC 6749
	// §4.2.2.1, OAuth 2.0 Multiple Response Type Encoding Practices §2.1,
	// §3, §5): an implicit app reads nothing else. none and types Keyport
	// does not know answer in the query (RFC 6749 §4.1.2.1).
	for rt, inFragment := range map[string]bool{"token": true, "id_token": true, "code id_token": true, "code token": true,
		"id_token token": true, "code id_token token": true, "none": false, "foo": false} {
		for _, mode := range []string{"", "query"} {
			t.Run("response_type="+rt+" response_mode="+mode, func(t *testing.T) {
				q := negAuthParams("app", reg, "rt")
				q.Set("response_type", rt)
				if mode != "" {
					q.Set("response_mode", mode)
				}
				r := bareGet(t, negAuthorizeURL(srv, q))
				u, err := url.Parse(r.Header.Get("Location"))
				if r.Status != http.StatusFound || err != nil || !strings.HasPrefix(u.String(), reg) {
					t.Fatalf("expected an error redirect to the app, got %s", r)
				}
				got, other := u.Query(), u.EscapedFragment()
				if inFragment && mode == "" {
					got, _ = url.ParseQuery(u.EscapedFragment())
					other = u.RawQuery
				}
				if got.Get("error") != "unsupported_response_type" || got.Get("state") != "rt" || got.Get("iss") != srv.URL || got.Has("code") || other != "" {
					t.Errorf("refusal: %s", u)
				}
			})
		}
	}
}

// ---------------------------------------------------------------------------
// 3. prompt=none.

func TestPromptNone(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("olga", false)
	app := srv.createClient(account.NewClient{ID: "app", Name: "Needs Consent"})
	b := newBrowser(t)

	none := func(state string) flowResult {
		t.Helper()
		_, challenge := pkce()
		p := app.authorize(b, state, oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"),
			oauth2.SetAuthURLParam("prompt", "none"))
		return landed(t, p, app.RedirectURI)
	}

	// No session.
	res := none("s-1")
	if res.Error != "login_required" || res.Code != "" || res.State != "s-1" || res.Iss != srv.URL {
		t.Fatalf("prompt=none without a session: %v", res.Query)
	}

	// A session (signed in at Keyport itself), but no consent for this app.
	p := b.get(srv.URL + "/login")
	p = b.submit(p, "/login", url.Values{"login": {"olga"}, "password": {testPassword}})
	if p.URL.Path != "/" || !signedIn(srv, b) {
		t.Fatalf("direct sign-in: %d %s", p.Status, p.URL)
	}
	res = none("s-2")
	if res.Error != "consent_required" || res.Code != "" || res.State != "s-2" || res.Iss != srv.URL {
		t.Fatalf("prompt=none without consent: %v", res.Query)
	}
	if _, err := srv.Main.Store.GetGrant(context.Background(), srv.negUserID("olga"), "app"); err == nil {
		t.Error("a grant exists although the user never consented")
	}

	// Consent once, interactively.
	code, verifier := app.signIn(b, "olga")
	if _, err := app.exchange(code, verifier); err != nil {
		t.Fatal(err)
	}
	// Now prompt=none answers with a code straight away.
	res = none("s-3")
	if res.Error != "" || res.Code == "" || res.State != "s-3" || res.Iss != srv.URL {
		t.Fatalf("prompt=none with session and consent: %v", res.Query)
	}

	// prompt=none combined with another prompt value is invalid.
	_, challenge := pkce()
	p = app.authorize(b, "s-4", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"),
		oauth2.SetAuthURLParam("prompt", "none login"))
	if p.Status >= 500 || (p.Status == http.StatusFound && strings.Contains(p.Location, "code=")) {
		t.Errorf("prompt=none login: %d %s", p.Status, p.Location)
	}
}

func (s *testServer) negUserID(username string) string {
	s.t.Helper()
	us, err := s.Main.Accounts.Users.ListUsers(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	for _, u := range us {
		if u.Username == username {
			return u.ID
		}
	}
	s.t.Fatalf("no user %q", username)
	return ""
}

// ---------------------------------------------------------------------------
// 4. Blocked users.

func TestBlockedUser(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("mallory", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess, "email"}
	rs := srv.createClient(account.NewClient{ID: "api", GrantTypes: []string{account.GrantClientCredentials}})
	b := newBrowser(t)
	code, verifier := app.signIn(b, "mallory")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	introspect := func() map[string]any {
		t.Helper()
		r, err := srv.sendForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, rs.ID, rs.Secret)
		if err != nil || r.Status != 200 {
			t.Fatalf("introspect: %v %s", err, r)
		}
		return r.JSON()
	}
	// Before: everything works.
	if st, _, _ := srv.userinfo(tok.AccessToken); st != 200 {
		t.Fatalf("userinfo before blocking: %d", st)
	}
	if got := introspect(); got["active"] != true {
		t.Fatalf("introspection before blocking: %v", got)
	}

	if err := srv.Main.Accounts.Users.SetBlocked(context.Background(), "mallory", true); err != nil {
		t.Fatal(err)
	}

	st, h, body := srv.userinfo(tok.AccessToken)
	if wa := h.Get("WWW-Authenticate"); st != 401 || !strings.HasPrefix(wa, "Bearer") || !strings.Contains(wa, `error="invalid_token"`) {
		t.Errorf("userinfo of a blocked user: %d %q %v", st, wa, body)
	}
	if _, ok := body["email"]; ok {
		t.Errorf("userinfo of a blocked user released claims: %v", body)
	}
	if got := introspect(); got["active"] != false || len(got) != 1 {
		t.Errorf("introspection of a blocked user's token: %v (want only active:false)", got)
	}
	status, h, rbody := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	negTokenError(t, "refresh of a blocked user", status, h, rbody, 400, "invalid_grant")

	// The browser's session ended with the block.
	if signedIn(srv, b) {
		t.Error("the blocked user's browser session survived")
	}
	_, challenge := pkce()
	p := app.authorize(b, "blk", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	if !isLoginPage(p) {
		t.Fatalf("authorization after blocking: %d %s", p.Status, p.Location)
	}
	// Signing in with the right password is refused, with a clear message
	// and no way back to the app.
	p = b.submit(p, "/login", url.Values{"login": {"mallory"}, "password": {testPassword}})
	if p.Status != http.StatusForbidden || p.Location != "" || !strings.Contains(p.Body, "disabled") {
		t.Errorf("sign-in of a blocked user: %d %q\n%s", p.Status, p.Location, truncateBody(p.Body))
	}
	if p.URL.Host == "127.0.0.1:9" || signedIn(srv, b) {
		t.Error("the blocked user got through")
	}
	// prompt=none cannot sneak past either.
	p = app.authorize(b, "blk2", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"),
		oauth2.SetAuthURLParam("prompt", "none"))
	if res := landed(t, p, app.RedirectURI); res.Error != "login_required" || res.Code != "" {
		t.Errorf("prompt=none for a blocked user: %v", res.Query)
	}

	// Unblocking lets them sign in again, but the old tokens stay dead.
	if err := srv.Main.Accounts.Users.SetBlocked(context.Background(), "mallory", false); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := srv.userinfo(tok.AccessToken); st != 401 {
		t.Errorf("old access token after unblocking: %d", st)
	}
	status, h, rbody = app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	negTokenError(t, "old refresh token after unblocking", status, h, rbody, 400, "invalid_grant")
	code, verifier = app.signIn(newBrowser(t), "mallory")
	if _, err := app.exchange(code, verifier); err != nil {
		t.Errorf("sign-in after unblocking: %v", err)
	}
}

// ---------------------------------------------------------------------------
// 5. Races.

func TestConcurrentCodeAndRefreshRedemption(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("pat", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	b := newBrowser(t)
	const n = 8

	type outcome struct {
		r   page
		err error
	}
	for round := 0; round < 3; round++ {
		// Exchanges of one code at once: the code is used more than once,
		// so at most one gets tokens, and those are revoked by the others
		// (RFC 6749 §4.1.2).
		code, verifier := app.signIn(b, "pat")
		outs := parallel(n, func(int) outcome {
			r, err := srv.sendForm("/oauth/token", negCodeForm(code, app.RedirectURI, verifier), app.ID, app.Secret)
			return outcome{r, err}
		})
		for i, o := range outs {
			switch {
			case o.err != nil:
				t.Fatalf("round %d: exchange %d: %v", round, i, o.err)
			case o.r.Status == 200:
				access, _ := o.r.JSON()["access_token"].(string)
				if st, _, _ := srv.userinfo(access); st != 401 {
					t.Errorf("round %d: the access token of a raced code still works: %d", round, st)
				}
			case o.r.Status != 400 || o.r.ErrCode() != "invalid_grant":
				t.Errorf("round %d: exchange %d: unexpected answer %s", round, i, o.r)
			}
		}
		// Refreshes of one token at once (tabs, retries): within the reuse
		// grace they all get the same new refresh token, which works.
		code, verifier = app.signIn(b, "pat")
		tok, err := app.exchange(code, verifier)
		if err != nil || tok.RefreshToken == "" {
			t.Fatalf("exchange: %v %v", err, tok)
		}
		rt := tok.RefreshToken
		outs = parallel(n, func(int) outcome {
			r, err := srv.sendForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, app.ID, app.Secret)
			return outcome{r, err}
		})
		next := ""
		for i, o := range outs {
			if o.err != nil || o.r.Status != 200 || o.r.Header.Get("Cache-Control") != "no-store" {
				t.Fatalf("round %d: refresh %d: %v %s", round, i, o.err, o.r)
			}
			got, _ := o.r.JSON()["refresh_token"].(string)
			if next == "" {
				next = got
			}
			if got != next || got == rt {
				t.Errorf("round %d: refresh %d got refresh token %q, another got %q", round, i, got, next)
			}
		}
		r, err := srv.sendForm("/oauth/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next}}, app.ID, app.Secret)
		if err != nil || r.Status != 200 {
			t.Errorf("round %d: the new refresh token after the race: %v %s", round, err, r)
		}
	}
}

// ---------------------------------------------------------------------------
// 6. Garbage, oversized and duplicated parameters on every endpoint.

func TestGarbageParametersNeverCause5xx(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("quinn", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials}})

	// A browser with a portal cookie, so forms get past the CSRF check and
	// the garbage reaches the handlers.
	b := newBrowser(t)
	csrf := formFields(b.get(srv.URL + "/login").Body).Get("csrf_token")
	if csrf == "" {
		t.Fatal("no CSRF token on the login page")
	}
	withCookie := &http.Client{Jar: b.client.Jar, Timeout: 30 * time.Second, CheckRedirect: bareClient.CheckRedirect}

	type endpoint struct {
		path      string
		method    string // the method it normally serves
		portal    bool   // a portal form (CSRF-protected when POSTed)
		lenientGE bool   // GET ignores parameters it does not know (documents, pages)
	}
	endpoints := []endpoint{
		{path: "/.well-known/openid-configuration", method: "GET", lenientGE: true},
		{path: "/keys", method: "GET", lenientGE: true},
		{path: "/authorize", method: "GET"},
		{path: "/authorize/callback", method: "GET"},
		{path: "/oauth/token", method: "POST"},
		{path: "/oauth/introspect", method: "POST"},
		{path: "/userinfo", method: "GET"},
		{path: "/revoke", method: "POST"},
		{path: "/end_session", method: "GET"},
		{path: "/login", method: "GET", portal: true, lenientGE: true},
		{path: "/login", method: "POST", portal: true},
		{path: "/consent", method: "GET", portal: true},
		{path: "/consent", method: "POST", portal: true},
		{path: "/logout", method: "GET", portal: true, lenientGE: true},
		{path: "/logout", method: "POST", portal: true},
		{path: "/setup", method: "GET", portal: true},
		{path: "/setup", method: "POST", portal: true},
		{path: "/invite", method: "GET", portal: true},
		{path: "/invite", method: "POST", portal: true},
		{path: "/reset-password", method: "GET", portal: true},
		{path: "/reset-password", method: "POST", portal: true},
	}

	reg := url.QueryEscape(app.RedirectURI)
	long := strings.Repeat("x", 20<<10)
	queries := []struct{ name, q string }{
		{"pct-zz", "client_id=%zz&scope=openid&authRequestID=%zz&token=%zz&id=%zz"},
		{"pct-trailing", "client_id=app&scope=openid%"},
		{"pct-short", "client_id=app%2&state=%a"},
		{"nul", "client_id=%00&redirect_uri=%00&authRequestID=%00&token=%00&id=%00&id_token_hint=%00"},
		{"invalid-utf8", "client_id=%ff%fe&scope=%c3%28&authRequestID=%ff&token=%ff&id=%ff&id_token_hint=%ff"},
		{"dup", "client_id=app&client_id=other&grant_type=a&grant_type=b&code=1&code=2&redirect_uri=x&redirect_uri=y&scope=openid&scope=email&authRequestID=a&authRequestID=b&token=a&token=b&id=a&id=b"},
		{"dup-same", "client_id=app&client_id=app&redirect_uri=" + reg + "&redirect_uri=" + reg + "&response_type=code&scope=openid"},
		{"long-scope", "client_id=app&response_type=code&scope=openid+" + long},
		{"max_age-abc", "client_id=app&response_type=code&scope=openid&redirect_uri=" + reg + "&max_age=abc&code_challenge=" + strings.Repeat("A", 43) + "&code_challenge_method=S256"},
		{"max_age-huge", "client_id=app&response_type=code&scope=openid&redirect_uri=" + reg + "&max_age=99999999999999999999999&code_challenge=" + strings.Repeat("A", 43) + "&code_challenge_method=S256"},
		{"query-40KB", "x=" + strings.Repeat("a", 40<<10)},
	}
	// Query cases that are a valid request for an endpoint that ignores the
	// rest (not "bad" there): any answer below 500 is right.
	lenientQuery := map[string]bool{
		"/end_session long-scope":   true, // a logout with client_id=app and unknown extras
		"/end_session max_age-abc":  true,
		"/end_session max_age-huge": true,
	}

	form := "application/x-www-form-urlencoded"
	mb := strings.Repeat("a", 1<<20)
	bodies := []struct{ name, body, ctype string }{
		{"body-1MB", "csrf_token={csrf}&grant_type=client_credentials&a=" + mb, form},
		{"body-pct-zz", "grant_type=%zz&token=%zz&login=%zz&authRequestID=%zz&csrf_token={csrf}", form},
		{"body-pct-trailing", "grant_type=client_credentials&token=x%&login=x%&csrf_token={csrf}", form},
		{"body-nul", "grant_type=client_credentials%00&token=\x00&login=\x00&password=\x00pw&authRequestID=\x00&decision=\x00&csrf_token={csrf}", form},
		{"body-invalid-utf8", "grant_type=\xff&token=\xff\xfe&login=\xff&password=\xc3\x28&authRequestID=\xff&decision=\xff&csrf_token={csrf}", form},
		{"body-dup", "grant_type=client_credentials&grant_type=refresh_token&client_id=a&client_id=b&code=1&code=2&redirect_uri=a&redirect_uri=b&scope=openid&scope=x&token=a&token=b&login=a&login=b&authRequestID=a&authRequestID=b&csrf_token={csrf}", form},
		{"json", `{"grant_type":"client_credentials","token":"x","login":"quinn","csrf_token":"{csrf}"}`, "application/json"},
		{"wrong-ctype", "grant_type=client_credentials&token=x&login=quinn&password=x&csrf_token={csrf}", "text/plain"},
		{"multipart-garbage", "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nclient_credentials\r\n", "multipart/form-data; boundary=y"},
		{"unknown-grant", "grant_type=urn:evil:grant&csrf_token={csrf}", form},
		{"refresh-garbage", "grant_type=refresh_token&refresh_token=%ff%00&csrf_token={csrf}", form},
		{"code-garbage", "grant_type=authorization_code&code=%ff%00&redirect_uri=%00&code_verifier=%ff&csrf_token={csrf}", form},
		{"long-scope", "grant_type=client_credentials&scope=" + long + "&csrf_token={csrf}", form},
		{"max_age-abc", "client_id=app&response_type=code&scope=openid&redirect_uri=" + reg + "&max_age=abc&csrf_token={csrf}", form},
	}
	// Body cases that are acceptable requests once authenticated (the RFCs
	// say so); everything else must be refused with a 4xx.
	lenientBody := func(path, name string, authed bool) bool {
		if !authed {
			return false
		}
		switch path {
		case "/oauth/introspect", "/revoke":
			// RFC 7662 §2.2 / RFC 7009 §2.2: a garbage token is simply not
			// active (200); a missing one is a 400.
			return name == "body-nul" || name == "body-invalid-utf8"
		case "/oauth/token":
			// An unknown scope on client_credentials is dropped or kept,
			// not an error (RFC 6749 §3.3 lets the server choose).
			return name == "long-scope"
		case "/logout":
			// Signing out needs only the CSRF token.
			return name != "body-1MB" && name != "json" && name != "wrong-ctype" && name != "multipart-garbage"
		case "/end_session":
			return name != "body-1MB" && name != "body-dup" && name != "body-pct-zz" && name != "body-pct-trailing"
		}
		return false
	}

	type gcase struct {
		name    string
		method  string
		target  string
		body    string
		ctype   string
		basic   bool
		cookie  bool
		want4xx bool
		check   func(t *testing.T, r page)
	}
	var cases []gcase
	for _, e := range endpoints {
		getLike := e.method == "GET"
		for _, q := range queries {
			want := !(getLike && e.lenientGE) && !lenientQuery[e.path+" "+q.name]
			if q.name == "query-40KB" {
				want = true // larger than the server's header limit: 431
			}
			if e.portal && e.method == "POST" {
				// A portal POST with only query garbage has no CSRF token: 403.
				want = true
			}
			c := gcase{name: e.method + " " + e.path + " ?" + q.name, method: e.method, target: e.path + "?" + q.q, want4xx: want}
			if e.path == "/authorize" && strings.HasPrefix(q.name, "max_age-") {
				// The app and its redirect URI are good: it hears of its
				// bad max_age (RFC 6749 §4.1.2.1), and gets no code.
				c.want4xx, c.check = false, func(t *testing.T, r page) {
					if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.Contains(loc, "error=invalid_request&") || strings.Contains(loc, "code=") {
						t.Errorf("max_age: %s", r)
					}
				}
			}
			cases = append(cases, c)
		}
		if getLike {
			continue
		}
		for _, bd := range bodies {
			for _, authed := range []bool{false, true} {
				c := gcase{name: fmt.Sprintf("%s %s %s", e.method, e.path, bd.name), method: e.method, target: e.path, body: bd.body, ctype: bd.ctype}
				if authed {
					c.name += " (authenticated)"
					c.basic, c.cookie = !e.portal, e.portal
				}
				c.want4xx = !lenientBody(e.path, bd.name, authed)
				if e.path == "/oauth/introspect" {
					c.check = func(t *testing.T, r page) {
						if r.Status == 200 && r.JSON()["active"] != false {
							t.Errorf("garbage introspected as active: %s", r)
						}
					}
				}
				cases = append(cases, c)
			}
		}
	}
	// Every endpoint also gets POST bodies (GET endpoints must refuse or
	// ignore them) and wrong methods.
	for _, p := range []string{"/.well-known/openid-configuration", "/keys", "/authorize", "/authorize/callback", "/userinfo", "/end_session"} {
		for _, bd := range []string{"body-1MB", "body-dup", "body-pct-zz", "body-nul", "json"} {
			i := slices.IndexFunc(bodies, func(b struct{ name, body, ctype string }) bool { return b.name == bd })
			want := true
			if p == "/end_session" && bd == "body-nul" || p == "/end_session" && bd == "json" {
				want = false // unknown parameters only: a plain logout
			}
			cases = append(cases, gcase{name: "POST " + p + " " + bd, method: "POST", target: p, body: bodies[i].body, ctype: bodies[i].ctype, want4xx: want})
		}
	}
	wrongMethods := map[string][]string{
		"/.well-known/openid-configuration": {"POST", "PUT", "DELETE"},
		"/keys":                             {"POST", "PUT", "DELETE"},
		"/oauth/token":                      {"GET", "PUT", "DELETE", "PATCH"},
		"/oauth/introspect":                 {"GET", "PUT", "DELETE"},
		"/revoke":                           {"GET", "PUT", "DELETE"},
		"/authorize":                        {"PUT", "DELETE"},
		"/authorize/callback":               {"PUT", "DELETE"},
		"/userinfo":                         {"PUT", "DELETE"},
		"/end_session":                      {"PUT", "DELETE"},
		"/login":                            {"PUT", "DELETE", "PATCH"},
		"/consent":                          {"PUT", "DELETE"},
		"/logout":                           {"PUT", "DELETE"},
		"/setup":                            {"PUT", "DELETE"},
		"/invite":                           {"PUT", "DELETE"},
		"/reset-password":                   {"PUT", "DELETE"},
	}
	for p, ms := range wrongMethods {
		for _, m := range ms {
			cases = append(cases, gcase{name: m + " " + p, method: m, target: p + "?client_id=app&grant_type=client_credentials", want4xx: true})
		}
	}
	// Specific traps.
	cases = append(cases,
		gcase{name: "GET /oauth/token with a valid grant in the query", method: "GET", target: "/oauth/token?grant_type=client_credentials", basic: true, want4xx: true},
		gcase{name: "unknown grant_type", method: "POST", target: "/oauth/token", body: "grant_type=password&username=quinn&password=x", ctype: form, basic: true, want4xx: true,
			check: func(t *testing.T, r page) {
				if r.ErrCode() != "unsupported_grant_type" {
					t.Errorf("error = %q, want unsupported_grant_type", r.ErrCode())
				}
			}},
		gcase{name: "JWT bearer grant (RFC 7523), not offered", method: "POST", target: "/oauth/token", body: "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", ctype: form, basic: true, want4xx: true,
			check: func(t *testing.T, r page) {
				if r.Status != 400 || r.ErrCode() != "unsupported_grant_type" {
					t.Errorf("%d %q, want 400 unsupported_grant_type", r.Status, r.ErrCode())
				}
			}},
		gcase{name: "device code grant, not offered", method: "POST", target: "/oauth/token", body: "grant_type=" + url.QueryEscape("urn:ietf:params:oauth:grant-type:device_code") + "&device_code=x", ctype: form, basic: true, want4xx: true,
			check: func(t *testing.T, r page) {
				if r.Status != 400 || r.ErrCode() != "unsupported_grant_type" {
					t.Errorf("%d %q, want 400 unsupported_grant_type", r.Status, r.ErrCode())
				}
			}},
		gcase{name: "refresh grant with an unknown client_id", method: "POST", target: "/oauth/token", body: "grant_type=refresh_token&refresh_token=abc&client_id=nobody", ctype: form, want4xx: true},
		gcase{name: "refresh grant with an unknown client_id and secret", method: "POST", target: "/oauth/token", body: "grant_type=refresh_token&refresh_token=abc&client_id=nobody&client_secret=whatever-secret", ctype: form, want4xx: true},
		gcase{name: "code grant with an unknown client_id", method: "POST", target: "/oauth/token", body: "grant_type=authorization_code&code=abc&client_id=nobody&redirect_uri=" + reg, ctype: form, want4xx: true},
		gcase{name: "client_id with a NUL", method: "POST", target: "/oauth/token", body: "grant_type=client_credentials&client_id=a%00b&client_secret=x", ctype: form, want4xx: true},
		gcase{name: "client_id 10 KB", method: "POST", target: "/oauth/token", body: "grant_type=client_credentials&client_id=" + strings.Repeat("c", 10<<10) + "&client_secret=x", ctype: form, want4xx: true},
		gcase{name: "Basic and form credentials together", method: "POST", target: "/oauth/token", body: "grant_type=client_credentials&client_id=app&client_secret=" + url.QueryEscape(app.Secret), ctype: form, basic: true, want4xx: true},
		gcase{name: "code_verifier too long", method: "POST", target: "/oauth/token", body: "grant_type=authorization_code&code=x&redirect_uri=" + reg + "&code_verifier=" + strings.Repeat("v", 20<<10), ctype: form, basic: true, want4xx: true},
		gcase{name: "end_session broken id_token_hint", method: "GET", target: "/end_session?id_token_hint=not.a.jwt&post_logout_redirect_uri=" + reg, want4xx: true},
		gcase{name: "end_session unknown client", method: "GET", target: "/end_session?client_id=nobody&post_logout_redirect_uri=" + reg, want4xx: true},
		gcase{name: "end_session NUL client", method: "GET", target: "/end_session?client_id=%00", want4xx: true},
		gcase{name: "userinfo garbage bearer", method: "GET", target: "/userinfo", want4xx: true},
		gcase{name: "callback with a garbage id", method: "GET", target: "/authorize/callback?id=%ff%00", want4xx: true},
		gcase{name: "authorize with an unsigned request object", method: "GET", target: "/authorize?client_id=app&response_type=code&scope=openid&redirect_uri=" + reg + "&request=e30.e30.", want4xx: false,
			check: func(t *testing.T, r page) {
				// Only signed request objects (RFC 9101): an error back to the app, never a code.
				if loc := r.Header.Get("Location"); r.Status != http.StatusFound || !strings.Contains(loc, "error=invalid_request_object") || strings.Contains(loc, "code=") {
					t.Errorf("request object: %s", r)
				}
			}},
	)

	for _, c := range cases {
		if c.cookie {
			// Signing out (a lenient case) rotates the token: use the current one.
			csrf = formFields(b.get(srv.URL + "/login?fresh=1").Body).Get("csrf_token")
		}
		body := strings.ReplaceAll(c.body, "{csrf}", csrf)
		var rd io.Reader
		if c.body != "" {
			rd = strings.NewReader(body)
		}
		req, err := http.NewRequest(c.method, srv.URL+c.target, rd)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.ctype != "" {
			req.Header.Set("Content-Type", c.ctype)
		}
		if c.basic {
			req.SetBasicAuth(app.ID, app.Secret)
		}
		if c.name == "userinfo garbage bearer" {
			req.Header.Set("Authorization", "Bearer %%%garbage==\"")
		}
		cl := bareClient
		if c.cookie {
			cl = withCookie
		}
		r, err := fetch(cl, req)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if r.Status >= 500 {
			t.Errorf("%s: 5xx\n%s", c.name, r)
			continue
		}
		if c.want4xx && (r.Status < 400 || r.Status >= 500) {
			t.Errorf("%s: status %d, want 4xx\n%s", c.name, r.Status, r)
		}
		if c.check != nil {
			c.check(t, r)
		}
	}

	// Bytes the Go client will not send: NUL and raw invalid UTF-8 in the
	// request line, raw NUL in a header.
	addr := strings.TrimPrefix(srv.URL, "http://")
	for _, e := range endpoints {
		for _, q := range []string{"client_id=\x00", "client_id=\xff\xfe&scope=\xc3\x28&authRequestID=\xff&token=\xff&id=\xff", "a=%zz\x01"} {
			req := e.method + " " + e.path + "?" + q + " HTTP/1.1\r\nHost: " + addr + "\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
			r, err := negRaw(addr, req)
			name := fmt.Sprintf("raw %s %s ?%q", e.method, e.path, q)
			if err != nil {
				t.Errorf("%s: %v", name, err)
				continue
			}
			want := !(e.method == "GET" && e.lenientGE) || strings.ContainsAny(q, "\x00\x01")
			if r.Status >= 500 || want && r.Status < 400 {
				t.Errorf("%s: %s", name, r)
			}
		}
	}
	raw := "POST /oauth/token HTTP/1.1\r\nHost: " + addr + "\r\nContent-Type: application/x-www-form-urlencoded\r\nX-Evil: a\x00b\r\nContent-Length: 29\r\nConnection: close\r\n\r\ngrant_type=client_credentials"
	if r, err := negRaw(addr, raw); err != nil || r.Status != 400 {
		t.Errorf("NUL in a header: %v %s", err, r)
	}

	// The server is still healthy and serving.
	status, _, body := app.tokenPost(url.Values{"grant_type": {"client_credentials"}}, true)
	if status != 200 || body["access_token"] == nil {
		t.Fatalf("client_credentials after the garbage: %d %v", status, body)
	}
}

// /end_session with broken percent-encoding is a 400 page, not a 500, and
// does not sign the browser out.
func TestEndSessionBrokenEncoding(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("rita", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	b := newBrowser(t)
	code, verifier := app.signIn(b, "rita")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	idt, _ := tok.Extra("id_token").(string)
	for _, q := range []string{
		"id_token_hint=%zz",
		"id_token_hint=" + idt + "&post_logout_redirect_uri=http://127.0.0.1:9/bye/app%",
		"id_token_hint=" + idt + "&state=%g0",
		"post_logout_redirect_uri=%%%%",
		"client_id=app&client_id=app",
	} {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/end_session?"+q, nil)
		for _, k := range b.client.Jar.Cookies(req.URL) {
			req.AddCookie(k)
		}
		r := mustFetch(t, bareClient, req)
		negErrorPage(t, "end_session?"+negTrunc(q, 40), r, http.StatusBadRequest)
		if len(r.Header.Values("Set-Cookie")) > 0 {
			t.Errorf("end_session?%s changed cookies: %v", negTrunc(q, 40), r.Header.Values("Set-Cookie"))
		}
	}
	if !signedIn(srv, b) {
		t.Error("a refused end_session signed the browser out")
	}
	if st, _, _ := srv.userinfo(tok.AccessToken); st != 200 {
		t.Errorf("a refused end_session revoked tokens: userinfo %d", st)
	}
}

func negTrunc(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

// A refresh naming an unknown client is a 4xx (zitadel turns plain storage
// errors into 500s).
func TestRefreshWithUnknownClient(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("sam", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	code, verifier := app.signIn(newBrowser(t), "sam")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		codes      []string
	}{
		{"unknown client_id, no secret", url.Values{"client_id": {"nobody"}}, "", "", 401, []string{"invalid_client"}},
		{"unknown client_id with a secret", url.Values{"client_id": {"nobody"}, "client_secret": {"some-secret-value"}}, "", "", 401, []string{"invalid_client"}},
		{"unknown client via Basic", url.Values{}, "nobody", "some-secret-value", 401, []string{"invalid_client"}},
		{"right client_id, no secret", url.Values{"client_id": {"app"}}, "", "", 401, []string{"invalid_client"}},
		{"no client at all", url.Values{}, "", "", 401, []string{"invalid_client", "invalid_request"}},
	} {
		c.form.Set("grant_type", "refresh_token")
		c.form.Set("refresh_token", tok.RefreshToken)
		r, err := srv.sendForm("/oauth/token", c.form, c.user, c.pass)
		if err != nil {
			t.Fatal(err)
		}
		negTokenError(t, c.name, r.Status, r.Header, r.JSON(), c.status, c.codes...)
	}
	// The refresh token survived all that and still works for its owner.
	status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != 200 {
		t.Fatalf("refresh by the owner after the refused attempts: %d %v", status, body)
	}
}

// ---------------------------------------------------------------------------
// 7. Header traps.

func TestHeaderTraps(t *testing.T) {
	srv := startServer(t, "", nil)
	m2m := srv.createClient(account.NewClient{ID: "worker", GrantTypes: []string{account.GrantClientCredentials}})

	// Token endpoint: no-store on success and on every kind of error.
	for _, c := range []struct {
		name   string
		form   url.Values
		user   string
		pass   string
		status int
	}{
		{"success", url.Values{"grant_type": {"client_credentials"}}, m2m.ID, m2m.Secret, 200},
		{"invalid_client", url.Values{"grant_type": {"client_credentials"}}, m2m.ID, "wrong-secret-value", 401},
		{"unsupported_grant_type", url.Values{"grant_type": {"password"}}, m2m.ID, m2m.Secret, 400},
		{"invalid_grant", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}}, m2m.ID, m2m.Secret, 400},
		{"unauthorized_client", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {m2m.RedirectURI}}, m2m.ID, m2m.Secret, 400},
		{"repeated parameter", url.Values{"grant_type": {"client_credentials", "client_credentials"}}, m2m.ID, m2m.Secret, 400},
	} {
		r, err := srv.sendForm("/oauth/token", c.form, c.user, c.pass)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != c.status || r.Header.Get("Cache-Control") != "no-store" || r.Header.Get("Pragma") != "no-cache" && c.name == "success" {
			t.Errorf("token %s: %d Cache-Control=%q Pragma=%q", c.name, r.Status, r.Header.Get("Cache-Control"), r.Header.Get("Pragma"))
		}
		if !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			t.Errorf("token %s: Content-Type %q", c.name, r.Header.Get("Content-Type"))
		}
		if c.status == 401 && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("token %s: WWW-Authenticate %q", c.name, r.Header.Get("WWW-Authenticate"))
		}
	}
	// The middleware's own early errors (body too large) carry no-store too.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/oauth/token", strings.NewReader("grant_type=client_credentials&x="+strings.Repeat("a", 200<<10)))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(m2m.ID, m2m.Secret)
	if r := mustFetch(t, bareClient, req); r.Status != http.StatusRequestEntityTooLarge || r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("oversized token request: %d Cache-Control=%q", r.Status, r.Header.Get("Cache-Control"))
	}

	// Userinfo without a token: 401, a Bearer challenge with a realm and no
	// error code (RFC 6750 §3.1).
	st, h, _ := srv.userinfo("")
	wa := h.Get("WWW-Authenticate")
	if st != 401 || !strings.HasPrefix(wa, "Bearer realm=") || strings.Contains(wa, "error=") {
		t.Errorf("userinfo without a token: %d %q", st, wa)
	}
	// With a bad token: invalid_token.
	for _, bad := range []string{"garbage", strings.Repeat("A", 4000), "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."} {
		st, h, body := srv.userinfo(bad)
		wa := h.Get("WWW-Authenticate")
		if st != 401 || !strings.HasPrefix(wa, "Bearer realm=") || !strings.Contains(wa, `error="invalid_token"`) || body["error"] != "invalid_token" {
			t.Errorf("userinfo with token %q: %d %q %v", negTrunc(bad, 20), st, wa, body)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("userinfo error Cache-Control %q", h.Get("Cache-Control"))
		}
	}
	// A non-Bearer scheme is no token either.
	req, _ = http.NewRequest(http.MethodGet, srv.URL+"/userinfo", nil)
	req.SetBasicAuth(m2m.ID, m2m.Secret)
	if r := mustFetch(t, bareClient, req); r.Status != 401 || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("userinfo with Basic: %d %q", r.Status, r.Header.Get("WWW-Authenticate"))
	}
	// The method checks leave CORS preflights alone.
	req, _ = http.NewRequest(http.MethodOptions, srv.URL+"/userinfo", nil)
	req.Header.Set("Origin", "https://app.example")
	req.Header.Set("Access-Control-Request-Method", "GET")
	req.Header.Set("Access-Control-Request-Headers", "authorization")
	if r := mustFetch(t, bareClient, req); r.Status >= 300 || r.Header.Get("Access-Control-Allow-Origin") == "" {
		t.Errorf("CORS preflight at userinfo: %d %v", r.Status, r.Header)
	}
	// Introspection and revocation after Basic with a wrong secret.
	for _, p := range []string{"/oauth/introspect", "/revoke"} {
		r, err := srv.sendForm(p, url.Values{"token": {"x"}}, m2m.ID, "wrong-secret-value")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != 401 || r.ErrCode() != "invalid_client" || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s with a wrong secret: %s %q", p, r, r.Header.Get("WWW-Authenticate"))
		}
	}
}

// ---------------------------------------------------------------------------
// 8. Portal: CSRF, cross-site posts, flow binding, account enumeration.

// negStartFlow opens an authorization request in b and returns the login page
// and the request's ID.
func negStartFlow(t *testing.T, app *testClient, b *browser, state string) (page, string) {
	t.Helper()
	_, challenge := pkce()
	p := app.authorize(b, state, oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	id := formFields(p.Body).Get("authRequestID")
	if id == "" {
		t.Fatalf("no authRequestID on %d %s\n%s", p.Status, p.URL, truncateBody(p.Body))
	}
	return p, id
}

func TestPortalCSRFAndCrossSite(t *testing.T) {
	srv := startServer(t, "", nil)
	uma := srv.createUser("uma", false)
	app := srv.createClient(account.NewClient{ID: "app", Name: "Consent App"})
	ctx := context.Background()

	untouched := func(t *testing.T, id string, wantUser string) {
		t.Helper()
		a, err := srv.Main.Store.GetAuthRequest(ctx, id)
		if err != nil {
			t.Fatalf("auth request %s: %v", id, err)
		}
		if a.UserID != wantUser || a.Completed || a.ConsentOK {
			t.Errorf("the refused post changed the auth request: user=%q completed=%v consent=%v", a.UserID, a.Completed, a.ConsentOK)
		}
	}
	post := func(b *browser, path string, form url.Values, hdr map[string]string) page {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		return b.do(req)
	}
	refused := func(t *testing.T, what string, p page) {
		t.Helper()
		if p.Status != http.StatusForbidden || p.URL.Host == "127.0.0.1:9" || p.Location != "" || !strings.HasPrefix(p.Header.Get("Content-Type"), "text/html") {
			t.Errorf("%s: %d %s %q\n%s", what, p.Status, p.URL, p.Location, truncateBody(p.Body))
		}
	}

	b := newBrowser(t)
	loginPage, id := negStartFlow(t, app, b, "csrf-1")
	good := formFields(loginPage.Body)
	creds := url.Values{"login": {"uma"}, "password": {testPassword}, "authRequestID": {id}}
	with := func(extra url.Values) url.Values {
		f := url.Values{}
		for k, v := range creds {
			f[k] = v
		}
		for k, v := range extra {
			f[k] = v
		}
		return f
	}

	// POST /login.
	refused(t, "login without csrf_token", post(b, "/login", creds, nil))
	refused(t, "login with a wrong csrf_token", post(b, "/login", with(url.Values{"csrf_token": {"x" + good.Get("csrf_token")}}), nil))
	refused(t, "login with an empty csrf_token", post(b, "/login", with(url.Values{"csrf_token": {""}}), nil))
	refused(t, "login cross-site (Sec-Fetch-Site)", post(b, "/login", with(url.Values{"csrf_token": {good.Get("csrf_token")}}), map[string]string{"Sec-Fetch-Site": "cross-site"}))
	refused(t, "login cross-site (Origin)", post(b, "/login", with(url.Values{"csrf_token": {good.Get("csrf_token")}}), map[string]string{"Origin": "https://evil.example"}))
	refused(t, "login with another browser's csrf_token", post(b, "/login", with(url.Values{"csrf_token": {formFields(newBrowser(t).get(srv.URL + "/login").Body).Get("csrf_token")}}), nil))
	untouched(t, id, "")
	if signedIn(srv, b) {
		t.Fatal("a refused login post signed the browser in")
	}

	// The real form still works: the refusals changed nothing.
	p := b.submit(loginPage, "/login", url.Values{"login": {"uma"}, "password": {testPassword}})
	if !isConsentPage(p) {
		t.Fatalf("expected consent after a proper sign-in: %d\n%s", p.Status, truncateBody(p.Body))
	}
	// The CSRF token from before sign-in is worth nothing now.
	refused(t, "consent with the pre-sign-in csrf_token", post(b, "/consent", url.Values{"csrf_token": {good.Get("csrf_token")}, "authRequestID": {id}, "decision": {"allow"}}, nil))
	cf := formFields(p.Body)

	// POST /consent.
	allow := url.Values{"authRequestID": {id}, "decision": {"allow"}}
	refused(t, "consent without csrf_token", post(b, "/consent", allow, nil))
	allow.Set("csrf_token", "x"+cf.Get("csrf_token"))
	refused(t, "consent with a wrong csrf_token", post(b, "/consent", allow, nil))
	allow.Set("csrf_token", cf.Get("csrf_token"))
	refused(t, "consent cross-site (Sec-Fetch-Site)", post(b, "/consent", allow, map[string]string{"Sec-Fetch-Site": "cross-site"}))
	refused(t, "consent cross-site (Origin)", post(b, "/consent", allow, map[string]string{"Origin": "http://evil.example"}))
	untouched(t, id, uma.ID)
	if _, err := srv.Main.Store.GetGrant(ctx, uma.ID, "app"); err == nil {
		t.Error("a refused consent post stored a grant")
	}
	// Same-origin posts are fine.
	p = post(b, "/consent", allow, map[string]string{"Sec-Fetch-Site": "same-origin", "Origin": srv.URL})
	if res := landed(t, p, app.RedirectURI); res.Code == "" {
		t.Fatalf("proper consent: %v", res.Query)
	}

	// POST /logout needs the token too.
	hp := b.get(srv.URL + "/logout")
	refused(t, "logout without csrf_token", post(b, "/logout", url.Values{}, nil))
	refused(t, "logout cross-site", post(b, "/logout", url.Values{"csrf_token": {formFields(hp.Body).Get("csrf_token")}}, map[string]string{"Sec-Fetch-Site": "cross-site"}))
	if !signedIn(srv, b) {
		t.Error("a refused logout signed the browser out")
	}
}

func TestPortalFlowBoundToBrowser(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("vera", false)
	srv.createUser("wade", false)
	app := srv.createClient(account.NewClient{ID: "app", Name: "Bound App"})
	ctx := context.Background()

	victim := newBrowser(t)
	_, id := negStartFlow(t, app, victim, "bind-1")

	// An attacker who learns the ID, with a browser and CSRF token of their own.
	attacker := newBrowser(t)
	ap := attacker.get(srv.URL + "/login")
	tok := formFields(ap.Body).Get("csrf_token")
	// Refused because the request is not this browser's (404), not for the
	// CSRF token (403): the attacker's own token is valid.
	foreign := func(what string, p page) {
		t.Helper()
		if p.Status != http.StatusNotFound || p.URL.Host == "127.0.0.1:9" || !strings.Contains(p.Body, "started in another browser") {
			t.Errorf("foreign browser %s: %d %s\n%s", what, p.Status, p.URL, truncateBody(p.Body))
		}
	}
	foreign("posting /login for another's request", attacker.post(srv.URL+"/login", url.Values{"csrf_token": {tok}, "authRequestID": {id}, "login": {"wade"}, "password": {testPassword}}))
	foreign("posting /consent for another's request", attacker.post(srv.URL+"/consent", url.Values{"csrf_token": {tok}, "authRequestID": {id}, "decision": {"allow"}}))
	if signedIn(srv, attacker) {
		t.Error("the refused foreign login signed the attacker in")
	}
	a, err := srv.Main.Store.GetAuthRequest(ctx, id)
	if err != nil || a.UserID != "" || a.Completed {
		t.Fatalf("the foreign login touched the request: %v %+v", err, a)
	}

	// The victim signs in and reaches consent.
	vp, _ := negFlowPage(victim, srv, id)
	vp = victim.submit(vp, "/login", url.Values{"login": {"vera"}, "password": {testPassword}})
	if !isConsentPage(vp) {
		t.Fatalf("victim: expected consent, got %d\n%s", vp.Status, truncateBody(vp.Body))
	}
	// Sign the attacker in properly (their own account), then try.
	ap = attacker.get(srv.URL + "/login")
	attacker.submit(ap, "/login", url.Values{"login": {"wade"}, "password": {testPassword}})
	if !signedIn(srv, attacker) {
		t.Fatal("attacker could not sign in to their own account")
	}
	tok = formFields(attacker.get(srv.URL + "/").Body).Get("csrf_token")
	if tok == "" {
		t.Fatal("no CSRF token on the signed-in home page")
	}
	foreign("(signed in) posting /consent", attacker.post(srv.URL+"/consent", url.Values{"csrf_token": {tok}, "authRequestID": {id}, "decision": {"allow"}}))
	foreign("(signed in) posting /login", attacker.post(srv.URL+"/login", url.Values{"csrf_token": {tok}, "authRequestID": {id}, "login": {"wade"}, "password": {testPassword}}))
	foreign("(signed in) opening /consent", attacker.get(srv.URL+"/consent?authRequestID="+id))
	a, err = srv.Main.Store.GetAuthRequest(ctx, id)
	if err != nil || a.Completed || a.ConsentOK || a.UserID != srv.negUserID("vera") {
		t.Fatalf("foreign posts changed the request: %v %+v", err, a)
	}
	// The victim finishes normally.
	vp = victim.submit(vp, "/consent", url.Values{"decision": {"allow"}})
	if res := landed(t, vp, app.RedirectURI); res.Code == "" || res.State != "bind-1" {
		t.Fatalf("victim consent: %v", res.Query)
	}
}

// negFlowPage reopens the login page of request id in b.
func negFlowPage(b *browser, srv *testServer, id string) (page, string) {
	p := b.get(srv.URL + "/login?authRequestID=" + url.QueryEscape(id))
	return p, id
}

func TestFailedSignInIndistinguishable(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("xena", false)
	app := srv.createClient(account.NewClient{ID: "app"})

	attempt := func(b *browser, p page, login string) page {
		t.Helper()
		return b.submit(p, "/login", url.Values{"login": {login}, "password": {"not the password 123"}})
	}

	// Without an authorization request, each in a fresh browser.
	b1, b2 := newBrowser(t), newBrowser(t)
	r1 := attempt(b1, b1.get(srv.URL+"/login"), "xena")
	r2 := attempt(b2, b2.get(srv.URL+"/login"), "nobody-here")
	if r1.Status != http.StatusUnauthorized || r2.Status != r1.Status {
		t.Errorf("statuses differ or are wrong: existing %d, unknown %d", r1.Status, r2.Status)
	}
	if n1, n2 := comparablePage(t, r1.Body, "xena"), comparablePage(t, r2.Body, "nobody-here"); n1 != n2 {
		t.Errorf("bodies differ:\n--- existing user\n%s\n--- unknown user\n%s", n1, n2)
	}
	if !strings.Contains(r1.Body, "Incorrect username or password") {
		t.Errorf("no clear message:\n%s", truncateBody(r1.Body))
	}

	// Within one flow of one browser (same request ID, same CSRF token).
	b3 := newBrowser(t)
	p, _ := negStartFlow(t, app, b3, "enum")
	r3 := attempt(b3, p, "xena")
	r4 := attempt(b3, r3, "nobody-here")
	r5 := attempt(b3, r4, "xena@example.com")
	if r3.Status != 401 || r4.Status != 401 || r5.Status != 401 {
		t.Errorf("statuses: %d %d %d", r3.Status, r4.Status, r5.Status)
	}
	n3, n4, n5 := comparablePage(t, r3.Body, "xena"), comparablePage(t, r4.Body, "nobody-here"), comparablePage(t, r5.Body, "xena@example.com")
	if n3 != n4 || n3 != n5 {
		t.Errorf("flow bodies differ:\n%s\n---\n%s", n3, n4)
	}
	for _, h := range []string{"Content-Type", "Cache-Control", "Set-Cookie"} {
		if (r3.Header.Get(h) == "") != (r4.Header.Get(h) == "") {
			t.Errorf("header %s differs: %q vs %q", h, r3.Header.Get(h), r4.Header.Get(h))
		}
	}
}

// ---------------------------------------------------------------------------
// 9. Rate limiting.

func TestLoginRateLimit(t *testing.T) {
	srv := startServer(t, "", nil)
	max := srv.Main.Config.Limits.MaxLoginAttempts
	if max != 10 {
		t.Fatalf("default max_login_attempts = %d, want 10", max)
	}
	srv.createUser("yuri", false)
	srv.createUser("zoe", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})

	attacker := browserFrom(t, "127.0.0.2")
	p, id := negStartFlow(t, app, attacker, "rl")
	for i := 0; i < max; i++ {
		p = attacker.submit(p, "/login", url.Values{"login": {"yuri"}, "password": {fmt.Sprintf("guess number %d", i)}})
		if p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d\n%s", i+1, p.Status, truncateBody(p.Body))
		}
	}
	limited := func(t *testing.T, what string, p page) {
		t.Helper()
		if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" || p.Location != "" || p.URL.Host == "127.0.0.1:9" || !strings.Contains(p.Body, "Too many failed sign-in attempts") {
			t.Errorf("%s: %d %s\n%s", what, p.Status, p.URL, truncateBody(p.Body))
		}
	}
	// The right password no longer helps, from this address…
	limited(t, "right password after the limit", attacker.submit(p, "/login", url.Values{"login": {"yuri"}, "password": {testPassword}}))
	if a, err := srv.Main.Store.GetAuthRequest(context.Background(), id); err != nil || a.UserID != "" || a.Completed {
		t.Errorf("a rate-limited sign-in touched the request: %v %+v", err, a)
	}
	if signedIn(srv, attacker) {
		t.Error("a rate-limited sign-in started a session")
	}
	// …also by email, the same account.
	limited(t, "the account by email", attacker.submit(p, "/login", url.Values{"login": {"YURI@example.com"}, "password": {testPassword}}))
	// The owner elsewhere is not locked out by the attacker's failures
	// (the account-wide wait needs account_lockout_failures, from anywhere).
	owner := browserFrom(t, "127.0.0.3")
	code, verifier := app.signIn(owner, "yuri")
	if _, err := app.exchange(code, verifier); err != nil {
		t.Errorf("the owner from another address: %v", err)
	}
	// Other accounts from the attacking address have their own budget, up
	// to max_login_attempts_per_address.
	zp, _ := negStartFlow(t, app, attacker, "zoe-from-attacker")
	if res := landed(t, attacker.submit(zp, "/login", url.Values{"login": {"zoe"}, "password": {testPassword}}), app.RedirectURI); res.Code == "" {
		t.Errorf("another account from the attacking address: %+v", res)
	}
	// Someone else, elsewhere, is unaffected.
	other := browserFrom(t, "127.0.0.4")
	code, verifier = app.signIn(other, "zoe")
	if _, err := app.exchange(code, verifier); err != nil {
		t.Errorf("an unrelated sign-in: %v", err)
	}
}
