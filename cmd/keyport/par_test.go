package main

import (
	"context"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/seal"
)

// pushedParams are the parameters of a code-flow request for c, with a
// fresh state, nonce and PKCE pair; the verifier is returned.
func pushedParams(c *testClient) (url.Values, string) {
	verifier, challenge := pkce()
	return url.Values{
		"response_type":         {"code"},
		"client_id":             {c.ID},
		"redirect_uri":          {c.RedirectURI},
		"scope":                 {"openid profile email"},
		"state":                 {"pushed-" + account.RandomString(8)},
		"nonce":                 {account.RandomString(12)},
		"code_challenge":        {challenge},
		"code_challenge_method": {"S256"},
	}, verifier
}

// push posts form to the pushed authorization request endpoint as c (HTTP
// Basic with its secret; the form alone for a public client).
func (c *testClient) push(form url.Values) (int, http.Header, map[string]any) {
	c.srv.t.Helper()
	par, _ := c.srv.discovery()["pushed_authorization_request_endpoint"].(string)
	path := strings.TrimPrefix(par, c.srv.URL)
	if c.Secret == "" {
		return c.srv.postForm(path, form, "", "")
	}
	return c.srv.postForm(path, form, c.ID, c.Secret)
}

// discovery is the server's discovery document.
func (s *testServer) discovery() map[string]any {
	s.t.Helper()
	_, _, doc := doJSON(s.t, nil, mustRequest(http.MethodGet, s.URL+"/.well-known/openid-configuration"))
	return doc
}

func mustRequest(method, u string) *http.Request {
	req, err := http.NewRequest(method, u, nil)
	if err != nil {
		panic(err)
	}
	return req
}

// authorizeURI is /authorize with only client_id and request_uri, plus
// extra parameters the server must ignore.
func (c *testClient) authorizeURI(requestURI string, extra url.Values) string {
	q := url.Values{"client_id": {c.ID}, "request_uri": {requestURI}}
	for k, v := range extra {
		q[k] = v
	}
	return c.srv.URL + "/authorize?" + q.Encode()
}

// TestPushedAuthorizationRequests runs code flows through RFC 9126's
// endpoint with go-oidc and x/oauth2 on the app's side, and the refusals
// the RFC asks for: a request_uri used twice, expired, of another app, or
// pushed with bad credentials or parameters.
func TestPushedAuthorizationRequests(t *testing.T) {
	var skew atomic.Int64
	now := func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	srv := startServerWith(t, serverOptions{now: now, mutate: func(c *config.Config) {
		// Pushes come from the app's server, all from one address: they
		// must not count against it as a browser's /authorize would.
		c.Limits.MaxPendingSignInsPerAddress = 2
	}})
	srv.createUser("pia", false)
	app := srv.createClient(newConfidentialClient("par-app"))
	other := srv.createClient(newConfidentialClient("par-other"))

	doc := srv.discovery()
	if doc["pushed_authorization_request_endpoint"] != srv.URL+"/oauth/par" || doc["require_pushed_authorization_requests"] != false {
		t.Fatalf("discovery: endpoint %v, required %v", doc["pushed_authorization_request_endpoint"], doc["require_pushed_authorization_requests"])
	}

	t.Run("code flow", func(t *testing.T) {
		form, verifier := pushedParams(app)
		status, h, body := app.push(form)
		uri, _ := body["request_uri"].(string)
		if status != http.StatusCreated || !strings.HasPrefix(uri, "urn:ietf:params:oauth:request_uri:") || body["expires_in"] != float64(60) {
			t.Fatalf("push: %d %v", status, body)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
		}
		// A HEAD (a link checker looking ahead) does not use it up.
		if p := newBrowser(t).do(mustRequest(http.MethodHead, app.authorizeURI(uri, nil))); p.Status != http.StatusOK {
			t.Fatalf("HEAD of the request_uri: %d", p.Status)
		}
		b := newBrowser(t)
		// Parameters beside request_uri are ignored (RFC 9126 §4): the
		// pushed state comes back, not this one.
		first := b.get(app.authorizeURI(uri, url.Values{"state": {"from-the-browser"}, "scope": {"openid"}}))
		if !isLoginPage(first) {
			t.Fatalf("opening the request_uri: %d %s", first.Status, first.URL)
		}
		// Opened once, it cannot be opened again, not even while the
		// first browser is still signing in.
		if p := newBrowser(t).get(app.authorizeURI(uri, nil)); p.Status != http.StatusBadRequest || p.Location != "" {
			t.Fatalf("request_uri opened twice: %d %s", p.Status, p.Location)
		}
		res := landed(t, app.finish(b, first, "pia"), app.RedirectURI)
		if res.Code == "" || res.State != form.Get("state") || res.Iss != srv.URL {
			t.Fatalf("landed with %+v", res)
		}
		tok, err := app.exchange(res.Code, verifier)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		claims := idTokenClaims(t, app, tok)
		if claims["nonce"] != form.Get("nonce") || claims["email"] == nil {
			t.Errorf("ID token claims %v: want the pushed nonce and the pushed scopes' claims", claims)
		}

		// Used once: a second visit shows an error and goes nowhere.
		again := newBrowser(t).get(app.authorizeURI(uri, nil))
		if again.Status != http.StatusBadRequest || again.Location != "" {
			t.Errorf("request_uri used twice: %d %s", again.Status, again.Location)
		}
	})

	t.Run("bound to the app and to its lifetime", func(t *testing.T) {
		form, _ := pushedParams(app)
		_, _, body := app.push(form)
		uri, _ := body["request_uri"].(string)
		b := newBrowser(t)
		if p := b.get(other.authorizeURI(uri, nil)); p.Status != http.StatusBadRequest {
			t.Fatalf("another app's client_id opened the request: %d %s", p.Status, p.Location)
		}
		// The refusal changed nothing: the right app still opens it.
		if p := b.get(app.authorizeURI(uri, nil)); !isLoginPage(p) {
			t.Fatalf("after a refused open, the right app got %d %s", p.Status, p.URL)
		}

		form, _ = pushedParams(app)
		_, _, body = app.push(form)
		uri, _ = body["request_uri"].(string)
		skew.Store(int64(61 * time.Second))
		defer skew.Store(0)
		if p := newBrowser(t).get(app.authorizeURI(uri, nil)); p.Status != http.StatusBadRequest {
			t.Fatalf("expired request_uri: %d %s", p.Status, p.URL)
		}
		for _, bad := range []string{"urn:ietf:params:oauth:request_uri:nope", "https://app.example/request.jwt", ""} {
			if p := newBrowser(t).get(app.authorizeURI(bad, nil)); p.Status != http.StatusBadRequest || p.Location != "" {
				t.Errorf("request_uri %q: %d %s", bad, p.Status, p.Location)
			}
		}
	})

	t.Run("claims parameter pushed", func(t *testing.T) {
		// Pushed parameters are those of /authorize: the claims parameter
		// (OIDC Core §5.5) too, checked at the push.
		form, verifier := pushedParams(app)
		form.Set("scope", "openid")
		form.Set("claims", `{"id_token":{"email":null}}`)
		_, _, body := app.push(form)
		b := newBrowser(t)
		res := landed(t, app.finish(b, b.get(app.authorizeURI(body["request_uri"].(string), nil)), "pia"), app.RedirectURI)
		tok, err := app.exchange(res.Code, verifier)
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		if claims := idTokenClaims(t, app, tok); claims["email"] == nil || claims["name"] != nil {
			t.Errorf("ID token for scope openid with email asked for by the pushed claims parameter: %v", claims)
		}
		form.Set("claims", `{"id_token":`)
		if status, _, body := app.push(form); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("pushed claims that are not JSON: %d %v", status, body)
		}
	})

	t.Run("pushes do not count per address", func(t *testing.T) {
		var uris []string
		for range 4 {
			form, _ := pushedParams(app)
			status, _, body := app.push(form)
			if status != http.StatusCreated {
				t.Fatalf("push: %d %v", status, body)
			}
			uris = append(uris, body["request_uri"].(string))
		}
		// With two pending sign-ins allowed per address, the oldest
		// pushes would have been evicted had they counted by address.
		for _, uri := range uris {
			if p := newBrowser(t).get(app.authorizeURI(uri, nil)); !isLoginPage(p) {
				t.Fatalf("pushed request %s: %d %s", uri, p.Status, p.URL)
			}
		}
	})

	t.Run("refused pushes", func(t *testing.T) {
		good, _ := pushedParams(app)
		with := func(change func(url.Values)) url.Values {
			f := url.Values{}
			for k, v := range good {
				f[k] = append([]string(nil), v...)
			}
			change(f)
			return f
		}
		cases := []struct {
			name   string
			status int
			code   string
			send   func() (int, http.Header, map[string]any)
		}{
			{"wrong secret", 401, "invalid_client", func() (int, http.Header, map[string]any) {
				return srv.postForm("/oauth/par", good, app.ID, "wrong")
			}},
			{"no credentials", 401, "invalid_client", func() (int, http.Header, map[string]any) {
				return srv.postForm("/oauth/par", good, "", "")
			}},
			{"client_id of another app", 400, "invalid_request", func() (int, http.Header, map[string]any) {
				return app.push(with(func(f url.Values) { f.Set("client_id", other.ID) }))
			}},
			{"unregistered redirect_uri", 400, "invalid_request", func() (int, http.Header, map[string]any) {
				return app.push(with(func(f url.Values) { f.Set("redirect_uri", "https://evil.example/cb") }))
			}},
			{"request_uri pushed", 400, "invalid_request", func() (int, http.Header, map[string]any) {
				return app.push(with(func(f url.Values) { f.Set("request_uri", "urn:ietf:params:oauth:request_uri:x") }))
			}},
			{"unsigned request object", 400, "invalid_request_object", func() (int, http.Header, map[string]any) {
				return app.push(with(func(f url.Values) { f.Set("request", "eyJhbGciOiJub25lIn0.e30.") }))
			}},
			{"unsupported response_type", 400, "unsupported_response_type", func() (int, http.Header, map[string]any) {
				return app.push(with(func(f url.Values) { f.Set("response_type", "token") }))
			}},
			{"oversized state", 400, "invalid_request", func() (int, http.Header, map[string]any) {
				return app.push(with(func(f url.Values) { f.Set("state", strings.Repeat("s", 5000)) }))
			}},
			{"no redirect_uri", 400, "invalid_request", func() (int, http.Header, map[string]any) {
				return app.push(with(func(f url.Values) { f.Del("redirect_uri") }))
			}},
		}
		for _, c := range cases {
			status, h, body := c.send()
			if status != c.status || body["error"] != c.code {
				t.Errorf("%s: %d %v, want %d %s", c.name, status, body, c.status, c.code)
			}
			if status == http.StatusUnauthorized && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") {
				t.Errorf("%s: WWW-Authenticate %q", c.name, h.Get("WWW-Authenticate"))
			}
		}
		if p := bareGet(t, srv.URL+"/oauth/par?"+good.Encode()); p.Status != http.StatusMethodNotAllowed {
			t.Errorf("GET /oauth/par: %d", p.Status)
		}
	})

	t.Run("public app", func(t *testing.T) {
		spa := srv.createClient(account.NewClient{ID: "par-spa", Public: true, SkipConsent: true})
		form, verifier := pushedParams(spa)
		noPKCE := url.Values{}
		for k, v := range form {
			if !strings.HasPrefix(k, "code_challenge") {
				noPKCE[k] = v
			}
		}
		if status, _, body := spa.push(noPKCE); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("public app without PKCE: %d %v", status, body)
		}
		status, _, body := spa.push(form)
		if status != http.StatusCreated {
			t.Fatalf("public push: %d %v", status, body)
		}
		b := newBrowser(t)
		res := landed(t, spa.finish(b, b.get(spa.authorizeURI(body["request_uri"].(string), nil)), "pia"), spa.RedirectURI)
		if _, err := spa.exchange(res.Code, verifier); err != nil {
			t.Fatalf("public exchange: %v", err)
		}
	})

	t.Run("required per app", func(t *testing.T) {
		n := newConfidentialClient("par-required")
		n.RequirePushedAuthorizationRequests = true
		strict := srv.createClient(n)
		_, challenge := pkce()
		p := strict.authorize(newBrowser(t), "plain", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"), oidc.Nonce("n"))
		if p.Status != http.StatusBadRequest || p.Location != "" {
			t.Fatalf("a plain request of an app that must push: %d %s", p.Status, p.Location)
		}
		form, verifier := pushedParams(strict)
		_, _, body := strict.push(form)
		b := newBrowser(t)
		res := landed(t, strict.finish(b, b.get(strict.authorizeURI(body["request_uri"].(string), nil)), "pia"), strict.RedirectURI)
		if _, err := strict.exchange(res.Code, verifier); err != nil {
			t.Fatalf("exchange: %v", err)
		}
		// The management API switches it on for another app.
		rw, _, _ := adminTokens(t, srv)
		_, hdr, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients/"+other.ID, rw, "", "")
		status, _, body := apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/"+other.ID, rw, "application/json",
			`{"require_pushed_authorization_requests":true}`, http.Header{"If-Match": {hdr.Get("ETag")}})
		if status != http.StatusOK || body["require_pushed_authorization_requests"] != true {
			t.Fatalf("PATCH require_pushed_authorization_requests: %d %v", status, body)
		}
		if p := other.authorize(newBrowser(t), "plain", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")); p.Status != http.StatusBadRequest {
			t.Fatalf("a plain request after the API made the app push: %d %s", p.Status, p.Location)
		}
		// Other apps still send requests the old way.
		if code, _ := app.signIn(newBrowser(t), "pia"); code == "" {
			t.Fatal("no code for an app that need not push")
		}

		// The console shows the switch and turns it off again.
		ab := newBrowser(t)
		signInPortal(t, srv, ab, "root") // made by adminTokens above
		edit := ab.get(srv.URL + "/admin/apps/" + other.ID)
		box, ok := parsePage(t, edit.Body).first("input", "name", "require_pushed_authorization_requests")
		if !ok {
			t.Fatalf("the console has no PAR switch:\n%s", truncateBody(edit.Body))
		}
		if _, checked := box.lookup("checked"); !checked {
			t.Fatalf("the console does not show the app must push:\n%s", truncateBody(edit.Body))
		}
		off := url.Values{"require_pushed_authorization_requests": nil, "require_signed_request_object": nil}
		if saved := submitForm(t, ab, edit, "/admin/apps/"+other.ID+"/edit", off); saved.Status != http.StatusOK {
			t.Fatalf("console save: %d\n%s", saved.Status, truncateBody(saved.Body))
		}
		if c, _, err := srv.Main.Accounts.Clients.GetClient(context.Background(), other.ID); err != nil || c.RequirePushedAuthorizationRequests {
			t.Fatalf("after the console turned PAR off: %v %v", c.RequirePushedAuthorizationRequests, err)
		}
		if code, _ := other.signIn(newBrowser(t), "pia"); code == "" {
			t.Fatal("no code for a plain request once the console turned PAR off")
		}
		// And on again, as a checkbox sends it.
		edit = ab.get(srv.URL + "/admin/apps/" + other.ID)
		if saved := submitForm(t, ab, edit, "/admin/apps/"+other.ID+"/edit", url.Values{"require_pushed_authorization_requests": {"1"}}); saved.Status != http.StatusOK {
			t.Fatalf("console save: %d", saved.Status)
		}
		if p := other.authorize(newBrowser(t), "plain", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")); p.Status != http.StatusBadRequest {
			t.Fatalf("a plain request after the console made the app push: %d %s", p.Status, p.Location)
		}
	})

	t.Run("required per app, whatever the case of the parameter names", func(t *testing.T) {
		// zitadel decodes parameter names ignoring their case
		// (strings.EqualFold): a client_id that names no app beside a
		// CLIENT_ID naming the app that must push would pass the check,
		// and zitadel picks one of the two at random.
		n := newConfidentialClient("par-required-case")
		n.RequirePushedAuthorizationRequests = true
		strict := srv.createClient(n)
		_, challenge := pkce()
		q := url.Values{
			"response_type": {"code"}, "client_id": {"no-such-app"}, "CLIENT_ID": {strict.ID},
			"redirect_uri": {strict.RedirectURI}, "scope": {"openid"}, "state": {"s"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"},
		}
		for i := range 24 {
			p := newBrowser(t).get(srv.URL + "/authorize?" + q.Encode())
			if isLoginPage(p) || p.Status != http.StatusBadRequest {
				t.Errorf("try %d: a plain request of an app that must push, client_id in two cases: %d %s", i, p.Status, p.URL)
				break
			}
		}
		// A parameter Keyport bounds, in another case, is bounded too.
		form, _ := pushedParams(app)
		form.Del("state")
		form.Set("STATE", strings.Repeat("s", 5000))
		if status, _, body := app.push(form); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("pushed STATE of 5000 bytes: %d %v", status, body)
		}
	})

	t.Run("opened by one of many browsers at once", func(t *testing.T) {
		form, _ := pushedParams(app)
		_, _, body := app.push(form)
		uri, _ := body["request_uri"].(string)
		const n = 8
		pages := make([]page, n)
		var wg sync.WaitGroup
		for i := range n {
			b := newBrowser(t)
			wg.Add(1)
			go func() {
				defer wg.Done()
				pages[i] = b.get(app.authorizeURI(uri, nil))
			}()
		}
		wg.Wait()
		opened := 0
		for _, p := range pages {
			switch {
			case isLoginPage(p):
				opened++
			case p.Status != http.StatusBadRequest || p.Location != "":
				t.Errorf("a browser that lost the race: %d %s", p.Status, p.Location)
			}
		}
		if opened != 1 {
			t.Errorf("%d of %d browsers opened one request_uri at once", opened, n)
		}
	})

	t.Run("the sign-in page only after /authorize", func(t *testing.T) {
		// A pushed request is opened at /authorize, for its app, once;
		// the sign-in page does not take its ID before that.
		form, _ := pushedParams(app)
		_, _, body := app.push(form)
		uri, _ := body["request_uri"].(string)
		id := strings.TrimPrefix(uri, "urn:ietf:params:oauth:request_uri:")
		b := newBrowser(t)
		if p := b.get(srv.URL + "/login?authRequestID=" + url.QueryEscape(id)); strings.Contains(p.Body, id) {
			t.Fatalf("the sign-in page took an unopened pushed request: %d %s", p.Status, p.URL)
		}
		if p := b.get(app.authorizeURI(uri, nil)); !isLoginPage(p) || !strings.Contains(p.Body, id) {
			t.Fatalf("opening it at /authorize then: %d %s", p.Status, p.URL)
		}
	})
}

// TestPushedAuthorizationRequestsRequiredForAll turns on [oauth]
// require_pushed_authorization_requests: discovery says so, and no app's
// request comes through the browser any more.
func TestPushedAuthorizationRequestsRequiredForAll(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.RequirePushedAuthorizationRequests = true })
	srv.createUser("pia", false)
	app := srv.createClient(newConfidentialClient("par-all"))
	if doc := srv.discovery(); doc["require_pushed_authorization_requests"] != true {
		t.Fatalf("discovery: require_pushed_authorization_requests %v", doc["require_pushed_authorization_requests"])
	}
	_, challenge := pkce()
	if p := app.authorize(newBrowser(t), "plain", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")); p.Status != http.StatusBadRequest {
		t.Fatalf("plain request: %d %s", p.Status, p.Location)
	}
	form, verifier := pushedParams(app)
	_, _, body := app.push(form)
	b := newBrowser(t)
	res := landed(t, app.finish(b, b.get(app.authorizeURI(body["request_uri"].(string), nil)), "pia"), app.RedirectURI)
	tok, err := app.exchange(res.Code, verifier)
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	if _, err := app.provider.Verifier(&oidc.Config{ClientID: app.ID}).Verify(context.Background(), tok.Extra("id_token").(string)); err != nil {
		t.Fatalf("verify ID token: %v", err)
	}
}

// TestPushedAuthorizationRequestsOnPostgres: on PostgreSQL a request_uri
// opens once, and one whose ID is no text PostgreSQL stores (invalid
// UTF-8, a NUL) is an unknown request_uri (400), not a server error.
func TestPushedAuthorizationRequestsOnPostgres(t *testing.T) {
	dsn, key := pgtest.Database(t), filepath.Join(t.TempDir(), "secret.key")
	if _, _, err := seal.LoadOrCreateKey(key, true); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", func(c *config.Config) {
		c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, dsn, key
	})
	srv.createUser("pia", false)
	app := srv.createClient(newConfidentialClient("par-pg"))
	form, verifier := pushedParams(app)
	status, _, body := app.push(form)
	uri, _ := body["request_uri"].(string)
	if status != http.StatusCreated {
		t.Fatalf("push: %d %v", status, body)
	}
	b := newBrowser(t)
	first := b.get(app.authorizeURI(uri, nil))
	if p := newBrowser(t).get(app.authorizeURI(uri, nil)); p.Status != http.StatusBadRequest || p.Location != "" {
		t.Fatalf("request_uri opened twice: %d %s", p.Status, p.Location)
	}
	res := landed(t, app.finish(b, first, "pia"), app.RedirectURI)
	if _, err := app.exchange(res.Code, verifier); err != nil {
		t.Fatalf("exchange: %v", err)
	}
	for _, id := range []string{"%FF%FE", "a%00b"} {
		p := bareGet(t, srv.URL+"/authorize?client_id="+app.ID+"&request_uri=urn:ietf:params:oauth:request_uri:"+id)
		if p.Status != http.StatusBadRequest || p.Location != "" {
			t.Errorf("request_uri with ID %s: %d %s", id, p.Status, p.Location)
		}
	}
	for _, id := range []string{"\xff\xfe", "a\x00b"} {
		f, _ := pushedParams(app)
		f.Set("client_id", id)
		if status, _, body := srv.postForm("/oauth/par", f, "", ""); status >= 500 {
			t.Errorf("push with client_id %q: %d %v", id, status, body)
		}
		if p := bareGet(t, srv.URL+"/authorize?"+url.Values{"client_id": {id}, "redirect_uri": {app.RedirectURI}, "response_type": {"code"}, "scope": {"openid"}}.Encode()); p.Status >= 500 {
			t.Errorf("/authorize with client_id %q: %d", id, p.Status)
		}
	}
}
