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
		"/setup", "/api/v1/me", "/admin/users", "/security", "/profile", "/auth/verify", "/invite", "/reset-password"}
	keys := []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce", "code",
		"code_verifier", "code_challenge", "code_challenge_method", "grant_type", "refresh_token", "token", "token_type_hint",
		"id_token_hint", "post_logout_redirect_uri", "prompt", "max_age", "login_hint", "acr_values", "request", "request_uri",
		"id", "authRequestID", "client_secret", "client_assertion", "client_assertion_type", "ui_locales", "claims",
		"access_token", "csrf_token", "login", "password",
		// token exchange (RFC 8693)
		"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type", "audience", "resource"}
	values := []string{"", "app", "openid", "code", app.RedirectURI, "%", "%zz", "\x00", strings.Repeat("a", 5000), "-1",
		"99999999999999999999", "S256", "plain", "none", "login consent", "form_post", "refresh_token", "client_credentials",
		"authorization_code", "eyJhbGciOiJub25lIn0.e30.", "x.y.z", "é", "\u202e", "<script>", "../../etc/passwd", "[]", "{}",
		"urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:token-type:access_token",
		"urn:keyport:params:oauth:token-type:app-password", "rex:x", "https://api.example.com/"}
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
		r, err := fetch(bareClient, req)
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

// The same for a signed-in administrator's portal: random forms, with a
// valid CSRF token so they reach the handlers, at every page and action.
// Nothing may get a 5xx, and the session must survive (only sign-out ends
// it, and it is left out).
func TestRandomPortalFormsNever5xx(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("ada", true)
	b := newBrowser(t)
	home := signInPortal(t, srv, b, "ada")
	csrf := formFields(home.Body).Get("csrf_token")
	if csrf == "" {
		t.Fatal("no CSRF token on the home page")
	}

	paths := []string{"/", "/profile", "/profile/avatar/remove", "/profile/custom-data", "/security", "/security/access",
		"/security/activity", "/security/allowlist", "/security/api-tokens", "/security/api-tokens/revoke",
		"/security/app-passwords", "/security/app-passwords/revoke", "/security/devices/forget", "/security/passkeys",
		"/security/passkeys/register/begin", "/security/passkeys/register/finish", "/security/passkeys/remove",
		"/security/passkeys/rename", "/security/password", "/security/recovery-codes", "/security/totp/begin",
		"/security/totp/confirm", "/security/totp/disable", "/consent", "/login/2fa", "/login/2fa/cancel",
		"/admin/directories", "/admin/directories/new", "/admin/directories/x/edit", "/admin/directories/x/delete",
		"/admin/directories/x/sync", "/admin/directories/x/test", "/admin/directories/x/toggle",
		"/admin/upstreams/new", "/admin/upstreams/x/edit", "/login/upstream/x", "/avatar/x", "/setup", "/invite", "/reset-password"}
	keys := []string{"name", "label", "scopes", "expires", "id", "token_id", "password", "current_password", "new_password",
		"confirm_password", "code", "secret", "ip", "cidr", "allowlist", "email", "given_name", "family_name", "locale",
		"zoneinfo", "picture", "type", "url", "bind_dn", "bind_password", "user_base_dn", "user_filter", "login_attributes",
		"issuer", "client_id", "client_secret", "enabled", "decision", "authRequestID", "return_to", "key", "value"}
	values := []string{"", "x", "0", "-1", "99999999999999999999", "%zz", "\x00", strings.Repeat("z", 3000), "10.0.0.0/8",
		"::1/200", "999.1.1.1", "openid profile", "https://evil.example/", "//evil.example", "javascript:alert(1)",
		"ldap://127.0.0.1:1", "(uid=*)", "*)(|(uid=*", "é", "\u202e", "<script>", "{}", "[]", "true", "2026-13-45"}

	rng := rand.New(rand.NewPCG(3, 4))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	failures := 0
	for i := 0; i < 800 && failures < 10; i++ {
		form := url.Values{"csrf_token": {csrf}}
		for n := rng.IntN(6); n > 0; n-- {
			form.Add(pick(keys), pick(values))
		}
		path := pick(paths)
		var p page
		if rng.IntN(4) == 0 {
			p = b.get(srv.URL + path + "?" + form.Encode())
		} else {
			p = b.post(srv.URL+path, form)
		}
		if p.Status >= 500 {
			t.Errorf("%s with %q: %d %s", path, truncateBody(form.Encode()), p.Status, truncateBody(p.Body))
			failures++
		}
	}
	if p := b.get(srv.URL + "/security"); p.Status != http.StatusOK || hasForm(p.Body, "/login") {
		t.Errorf("the administrator's session did not survive: %d at %s", p.Status, p.URL)
	}
}

// And for the JSON API: random and broken JSON bodies, methods and content
// types with a read-write token. Every answer is JSON, none a 5xx.
func TestRandomAPIRequestsNever5xx(t *testing.T) {
	srv := startServer(t, "", nil)
	abe := srv.createUser("abe", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "abe")
	rw := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"writer"}, "scope": {"read-write"}})

	fields := []string{"given_name", "family_name", "name", "nickname", "email", "phone_number", "locale", "zoneinfo",
		"picture", "website", "custom_data", "username", "blocked", "last_ip", "logins_count", "id", "password"}
	values := []string{`""`, `"x"`, `0`, `-1`, `1e400`, `null`, `true`, `[]`, `{}`, `{"a":{"b":{"c":[1,2,3]}}}`,
		`"` + strings.Repeat("z", 5000) + `"`, `"\u0000"`, `"\ud800"`, `"Europe/Nowhere"`, `"javascript:alert(1)"`}
	broken := []string{"", "{", "}", "[", `{"given_name":}`, `{"given_name":"x",}`, "null", "[]", `"x"`, "\x00", `{"a":1}{"b":2}`,
		strings.Repeat("[", 10000)}
	rng := rand.New(rand.NewPCG(5, 6))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	failures := 0
	for i := 0; i < 600 && failures < 10; i++ {
		var body string
		if rng.IntN(4) == 0 {
			body = pick(broken)
		} else {
			parts := []string{}
			for n := rng.IntN(5); n > 0; n-- {
				parts = append(parts, `"`+pick(fields)+`":`+pick(values))
			}
			body = "{" + strings.Join(parts, ",") + "}"
		}
		method := pick([]string{"GET", "PATCH", "PATCH", "PUT", "POST", "DELETE"})
		req, _ := http.NewRequest(method, srv.URL+pick([]string{"/api/v1/me", "/api/v1/me/", "/api/v1/", "/api/v1/users"}), strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+rw)
		req.Header.Set("Content-Type", pick([]string{"application/json", "application/json; charset=utf-8", "text/plain", ""}))
		r, err := fetch(bareClient, req)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status >= 500 || r.JSON() == nil && r.Status != http.StatusNotFound && r.Status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s with %q: %d %s", method, req.URL.Path, truncateBody(body), r.Status, truncateBody(r.Body))
			failures++
		}
	}
	// What the API does not own stayed as it was.
	if u := srv.user(abe.ID); u.Username != "abe" || u.Blocked || u.ID != abe.ID || u.Admin {
		t.Errorf("the API changed fields it does not own: %+v", u)
	}
}
