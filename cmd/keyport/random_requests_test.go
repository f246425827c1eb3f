package main

import (
	"encoding/base64"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
)

// Random requests built from the parameters, values, methods and headers
// that break servers: none may get a 5xx. The seed is fixed, so a failure
// is reproducible; the enumerated cases are in TestGarbageParametersNeverCause5xx.
func TestRandomRequestsNever5xx(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("rex", false)
	app := srv.createClient(account.NewClient{ID: "app"})

	paths := []string{"/authorize", "/authorize/callback", "/oauth/token", "/oauth/introspect", "/revoke", "/userinfo",
		"/end_session", "/keys", "/.well-known/openid-configuration", "/login", "/consent", "/logout", "/logged-out",
		"/setup", "/api/v1/me", "/admin/users", "/security", "/profile", "/auth/verify"}
	keys := []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce", "code",
		"code_verifier", "code_challenge", "code_challenge_method", "grant_type", "refresh_token", "token", "token_type_hint",
		"id_token_hint", "post_logout_redirect_uri", "prompt", "max_age", "login_hint", "acr_values", "request", "request_uri",
		"id", "authRequestID", "client_secret", "client_assertion", "client_assertion_type", "ui_locales", "claims",
		"access_token", "csrf_token", "login", "password"}
	values := []string{"", "app", "openid", "code", app.RedirectURI, "%", "%zz", "\x00", strings.Repeat("a", 5000), "-1",
		"99999999999999999999", "S256", "plain", "none", "login consent", "form_post", "refresh_token", "client_credentials",
		"authorization_code", "eyJhbGciOiJub25lIn0.e30.", "x.y.z", "é", "\u202e", "<script>", "../../etc/passwd", "[]", "{}"}
	auths := []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("app:x")), "Basic %%%", "Bearer x", "Bearer ",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%"))}
	methods := []string{"GET", "POST", "POST", "HEAD", "OPTIONS", "PUT"}
	ctypes := []string{"application/x-www-form-urlencoded", "application/json", "multipart/form-data", "text/plain"}

	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	failures := 0
	for i := 0; i < 1500 && failures < 10; i++ {
		q := url.Values{}
		for n := rng.IntN(7); n > 0; n-- {
			q.Add(pick(keys), pick(values))
		}
		raw := q.Encode()
		if rng.IntN(5) == 0 {
			raw = strings.ReplaceAll(raw, "%25", "%") // broken percent-encoding
		}
		method, target := pick(methods), srv.URL+pick(paths)
		var body *strings.Reader
		if method == "POST" {
			body = strings.NewReader(raw)
		} else {
			target += "?" + raw
			body = strings.NewReader("")
		}
		req, err := http.NewRequest(method, target, body)
		if err != nil {
			continue // not a request a client could send
		}
		if method == "POST" {
			req.Header.Set("Content-Type", pick(ctypes))
		}
		if rng.IntN(3) == 0 {
			req.Header.Set("Authorization", pick(auths))
		}
		if rng.IntN(5) == 0 {
			req.Header.Set("Origin", "https://x.example")
			if rng.IntN(2) == 0 {
				req.Header.Set("Access-Control-Request-Method", "POST")
			}
		}
		r, err := negSend(negClient, req)
		if err != nil {
			t.Errorf("%s %s: %v", method, truncateBody(target), err)
			failures++
			continue
		}
		if r.Status >= 500 {
			t.Errorf("%s %s (%q): %d %s", method, truncateBody(target), truncateBody(raw), r.Status, truncateBody(r.Body))
			failures++
		}
	}
}
