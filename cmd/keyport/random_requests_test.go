package main

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/provider"
)

// Random requests built from the parameters, values, methods and headers
// that break servers: none may get a 5xx. The seed is fixed, so a failure
// is reproducible; the enumerated cases are in TestGarbageParametersNeverCause5xx.
func TestRandomRequestsNever5xx(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DeviceFlow, c.OAuth.DynamicRegistration = true, true })
	srv.createUser("rex", false)
	app := srv.createClient(account.NewClient{ID: "app"})
	srv.createClient(account.NewClient{ID: "tv", Public: true, GrantTypes: []string{account.GrantDeviceCode, account.GrantRefreshToken}})
	// An app with resources (RFC 8707), asked for by the values below,
	// and at the device authorization endpoint after the random requests.
	registered := []string{"https://api.example.com/", "urn:example:x"}
	srv.createClient(account.NewClient{ID: "res", Secret: app.Secret, Resources: registered,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials, account.GrantDeviceCode}})
	// An app that authenticates with signed assertions (RFC 7523), and
	// assertions for it: valid, signed with another key, HS256, made for
	// another audience, and of a client that does not exist.
	pkKey, otherKey := newRPKey(t, jose.ES256, "k1"), newRPKey(t, jose.ES256, "k1")
	srv.createClient(account.NewClient{ID: "pk", GrantTypes: []string{account.GrantAuthorizationCode, account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: pkKey.jwks(t)})
	assertions := []string{provider.ClientAssertionType, "pk",
		assertion(t, pkKey.signing(), "pk", srv.URL+"/oauth/token"), assertion(t, pkKey.signing(), "pk", srv.URL),
		assertion(t, otherKey.signing(), "pk", srv.URL), assertion(t, hs256(strings.Repeat("s", 32)), "pk", srv.URL),
		assertion(t, pkKey.signing(), "pk", "https://elsewhere.example"), assertion(t, pkKey.signing(), "nobody", srv.URL),
		"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIn0.eyJpc3MiOiJwayJ9.AAAA", "eyJhbGciOiJIUzI1NiJ9." + strings.Repeat("A", 9000) + ".AA"}

	// Request objects (RFC 9101) of that app: valid, with objects and
	// numbers for parameters, expired, wrongly signed, unsigned, with
	// parameters of the wrong JSON types; and an app that must sign.
	_, challenge := pkce()
	jar := map[string]any{"response_type": "code", "client_id": "pk", "redirect_uri": "http://127.0.0.1:9/callback/pk", "scope": "openid",
		"state": "s", "code_challenge": challenge, "code_challenge_method": "S256"}
	objects := []string{requestObject(t, pkKey.signing(), "pk", srv.URL, jar),
		requestObject(t, pkKey.signing(), "pk", srv.URL, jar, func(c map[string]any) {
			c["claims"], c["max_age"], c["prompt"] = map[string]any{"id_token": map[string]any{"acr": map[string]any{"essential": true, "values": []string{"x"}}}}, 1e30, "none"
		}),
		requestObject(t, pkKey.signing(), "pk", srv.URL, jar, func(c map[string]any) {
			c["scope"], c["state"], c["max_age"], c["response_mode"], c["resource"] = []any{1, "x"}, map[string]any{"a": nil}, -1, true, []string{"https://a.example", "x"}
		}),
		requestObject(t, pkKey.signing(), "pk", srv.URL, jar, func(c map[string]any) { c["exp"] = "soon" }),
		requestObject(t, pkKey.signing(), "pk", srv.URL, jar, func(c map[string]any) { c["aud"] = []any{srv.URL, 7} }),
		requestObject(t, pkKey.signing(), "pk", srv.URL, jar, func(c map[string]any) { c["redirect_uri"] = "https://evil.example/cb" }),
		requestObject(t, otherKey.signing(), "pk", srv.URL, jar), requestObject(t, hs256(strings.Repeat("s", 32)), "pk", srv.URL, jar),
		requestObject(t, pkKey.signing(), "app", srv.URL, jar), requestObject(t, pkKey.signing(), "jarstrict", srv.URL, jar),
		"eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"pk","aud":"`+srv.URL+`"}`)) + ".",
		"a.b.c.d.e", "eyJhbGciOiJFUzI1NiJ9.W10.AA", "eyJhbGciOiJFUzI1NiJ9." + strings.Repeat("A", 17<<10) + ".AA"}
	srv.createClient(account.NewClient{ID: "jarstrict", JWKS: pkKey.jwks(t), RequireSignedRequestObject: true})
	for _, object := range objects {
		for _, outer := range []url.Values{{"client_id": {"pk"}}, {"client_id": {"pk"}, "redirect_uri": {"http://127.0.0.1:9/callback/pk"}, "response_type": {"token"}},
			{"client_id": {"jarstrict"}}, {"client_id": {"nobody"}, "request_uri": {"urn:ietf:params:oauth:request_uri:x"}}, {}} {
			q := url.Values{"request": {object}}
			for k, v := range outer {
				q[k] = v
			}
			for _, req := range []*http.Request{mustRequest(http.MethodGet, srv.URL+"/authorize?"+q.Encode()), srv.formRequest("/oauth/par", q, "", "")} {
				if r, err := fetch(bareClient, req); err != nil || r.Status >= 500 {
					t.Errorf("%s %s with a request object: %v %d %s", req.Method, req.URL.Path, err, r.Status, truncateBody(r.Body))
				}
			}
		}
	}

	paths := []string{"/authorize", "/authorize/callback", "/oauth/token", "/oauth/introspect", "/revoke", "/userinfo",
		"/oauth/par", "/oauth/par", "/end_session", "/keys", "/.well-known/openid-configuration", "/login", "/consent", "/logout", "/logged-out",
		"/setup", "/api/v1/me", "/admin/users", "/security", "/profile", "/auth/verify", "/invite", "/reset-password",
		"/device_authorization", "/device", "/oauth/register", "/oauth/register/app"}
	keys := []string{"client_id", "redirect_uri", "response_type", "response_mode", "scope", "state", "nonce", "code",
		"code_verifier", "code_challenge", "code_challenge_method", "grant_type", "refresh_token", "token", "token_type_hint",
		"id_token_hint", "post_logout_redirect_uri", "prompt", "max_age", "login_hint", "acr_values", "request", "request_uri",
		"id", "authRequestID", "client_secret", "client_assertion", "client_assertion_type", "ui_locales", "claims",
		"access_token", "csrf_token", "login", "password", "device_code", "user_code", "decision",
		// token exchange (RFC 8693)
		"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type", "audience", "resource",
		// DPoP (RFC 9449 §10)
		"dpop_jkt"}
	values := []string{"", "app", "tv", account.GrantDeviceCode, "BCDF-GHJK", "approve", "openid", "code", app.RedirectURI, "%", "%zz", "\x00", strings.Repeat("a", 5000), "-1",
		"99999999999999999999", "S256", "plain", "none", "login consent", "form_post", "refresh_token", "client_credentials",
		"authorization_code", "eyJhbGciOiJub25lIn0.e30.", "x.y.z", "é", "\u202e", "<script>", "../../etc/passwd", "[]", "{}",
		// The sign-in parameters of an authorization request: prompt values,
		// classes (acr_values), claims parameters good and bad.
		"select_account", "none select_account", "0", "urn:keyport:acr:2fa", "urn:keyport:acr:passkey urn:keyport:acr:1fa",
		`{"id_token":{"acr":{"essential":true,"values":["urn:keyport:acr:passkey"]}}}`, `{"id_token":{"acr":{"essential":true,"value":"x"}}}`,
		`{"userinfo":{"email":null},"id_token":{"name":{"essential":true}}}`, `{"id_token":{"acr":{"values":"x"}}}`, `{"userinfo":[]}`, `{"id_token":`,
		"urn:ietf:params:oauth:request_uri:", "urn:ietf:params:oauth:request_uri:x",
		"urn:ietf:params:oauth:grant-type:token-exchange", "urn:ietf:params:oauth:token-type:access_token",
		"urn:keyport:params:oauth:token-type:app-password", "rex:x", "https://api.example.com/"}
	values = append(values, assertions...)
	values = append(values, objects...)
	// DPoP proofs (RFC 9449) for each endpoint that reads them, good and
	// bad, as the DPoP header; thumbprints for dpop_jkt; the DPoP scheme.
	dk := newDPoPKey(t)
	var proofs []string
	for _, target := range []string{srv.URL + "/oauth/token", srv.URL + "/userinfo", srv.URL + "/oauth/par"} {
		for _, m := range []string{"POST", "GET"} {
			proofs = append(proofs, dk.proof(t, m, target, ""), dk.proof(t, m, target, "x"),
				dk.proof(t, m, target, "", func(c map[string]any) { c["nonce"], c["jti"] = []any{1}, strings.Repeat("j", 300) }),
				dk.proof(t, m, target, "", func(c map[string]any) { c["iat"], c["htu"] = "now", "%zz" }))
		}
	}
	proofs = append(proofs, "", "x", "a.b.c", "eyJhbGciOiJIUzI1NiIsInR5cCI6ImRwb3Arand0In0.e30.AA", strings.Repeat("A", 9000),
		"eyJ0eXAiOiJkcG9wK2p3dCIsImFsZyI6IkVTMjU2IiwiandrIjp7Imt0eSI6IkVDIn19.e30.AA")
	values = append(values, dk.jkt, strings.Repeat("A", 43), "!!")

	// Resource indicators (RFC 8707): registered, with a fragment, relative,
	// oversized, an IRI, a URN.
	values = append(values, "res", "urn:example:x", "https://api.example.com/#", "https://api.example.com/#f", "/api", "//api.example.com/",
		"https://api.example.com/"+strings.Repeat("r", 600), "https://bücher.example/", "urn:", "a:b")
	auths := []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("app:x")),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("res:"+app.Secret)),
		"Basic " + base64.StdEncoding.EncodeToString([]byte("app:"+app.Secret)), "Basic %%%", "Bearer x", "Bearer ",
		"Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%")), "DPoP x", "DPoP ", "dpop " + strings.Repeat("a", 5000)}
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
		if rng.IntN(3) == 0 {
			req.Header.Set("DPoP", pick(proofs))
			if rng.IntN(8) == 0 {
				req.Header.Add("DPoP", pick(proofs))
			}
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

	// The device authorization endpoint with random lists of resource
	// indicators (RFC 8707): registered for the app, another's, with a
	// fragment, relative, empty, oversized. A list with one the app may
	// not ask for is invalid_target, any other gets a device code.
	resources := append(slices.Clone(registered), "https://other.example/", "https://api.example.com/#f", "/api", "x", "", "urn:",
		"https://api.example.com/"+strings.Repeat("r", 600), "https://bücher.example/")
	seen := map[string]int{}
	for i := 0; i < 80 && !t.Failed(); i++ {
		form := url.Values{"scope": {"openid"}}
		for n := rng.IntN(4); n > 0; n-- {
			form.Add("resource", pick(resources))
		}
		status, _, m := srv.postForm("/device_authorization", form, "res", app.Secret)
		refused := slices.ContainsFunc(form["resource"], func(r string) bool { return !slices.Contains(registered, r) })
		switch {
		case refused && (status != http.StatusBadRequest || m["error"] != "invalid_target" || m["device_code"] != nil):
			t.Errorf("device authorization for %q: %d %v, want 400 invalid_target", form["resource"], status, m)
		case !refused && (status != http.StatusOK || m["device_code"] == nil):
			t.Errorf("device authorization for %q: %d %v, want a device code", form["resource"], status, m)
		}
		seen[fmt.Sprint(status)]++
	}
	// The seed reaches both answers, or the test proves little.
	if seen["200"] == 0 || seen["400"] == 0 {
		t.Errorf("device authorizations with resources answered %v, want both 200 and 400", seen)
	}
}

// The same for a signed-in administrator's portal: random forms, with a
// valid CSRF token so they reach the handlers, at every page and action.
// Nothing may get a 5xx, and the session must survive (only sign-out ends
// it, and it is left out).
func TestRandomPortalFormsNever5xx(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DeviceFlow = true })
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
		"/admin/upstreams/new", "/admin/upstreams/x/edit", "/login/upstream/x", "/avatar/x", "/setup", "/invite", "/reset-password",
		"/device"}
	keys := []string{"name", "label", "scopes", "expires", "id", "token_id", "password", "current_password", "new_password",
		"confirm_password", "code", "secret", "ip", "cidr", "allowlist", "email", "given_name", "family_name", "locale",
		"zoneinfo", "picture", "type", "url", "bind_dn", "bind_password", "user_base_dn", "user_filter", "login_attributes",
		"issuer", "client_id", "client_secret", "enabled", "decision", "authRequestID", "return_to", "key", "value", "user_code"}
	values := []string{"", "x", "0", "-1", "99999999999999999999", "%zz", "\x00", strings.Repeat("z", 3000), "10.0.0.0/8",
		"::1/200", "999.1.1.1", "openid profile", "https://evil.example/", "//evil.example", "javascript:alert(1)",
		"ldap://127.0.0.1:1", "(uid=*)", "*)(|(uid=*", "é", "\u202e", "<script>", "{}", "[]", "true", "2026-13-45", "BCDF-GHJK", "approve", "deny"}

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

// Random combinations of the parameters that shape a sign-in (prompt,
// max_age, acr_values, claims, login_hint, ui_locales) on otherwise good
// authorization requests, from browsers with and without a session: none
// gets a 5xx, every answer to the app is a code or an error OIDC Core
// names, and a request §3.1.2.1 or §5.5 calls invalid never gets a code.
func TestRandomSignInParameters(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("rex", false)
	registered := []string{"https://api.example.com/", "urn:example:orders"}
	n := newConfidentialClient("app")
	n.Resources = registered
	app := srv.createClient(n)
	withSession := newBrowser(t)
	signInPortal(t, srv, withSession, "rex")
	// Resource indicators (RFC 8707): registered or not, malformed.
	resources := append(slices.Clone(registered), "https://other.example/", "https://api.example.com/#f", "/api", "x", "",
		"https://api.example.com/"+strings.Repeat("r", 600))

	params := map[string][]string{
		"prompt":     {"none", "login", "consent", "select_account", "none login", "none select_account", "login consent", "bogus", ""},
		"max_age":    {"0", "1", "3600", "-1", "x", "99999999999999999999"},
		"acr_values": {account.ACRPassword, account.ACRSecondFactor, account.ACRPasskey + " " + account.ACRPassword, "urn:example:x", ""},
		"claims": {`{"id_token":{"acr":{"essential":true,"values":["` + account.ACRSecondFactor + `"]}}}`,
			`{"id_token":{"acr":{"essential":true,"value":"urn:example:x"}}}`, `{"userinfo":{"email":null},"id_token":{"name":{"essential":true}}}`,
			`{"id_token":{"acr":{"values":"x"}}}`, `{"userinfo":[]}`, `{"id_token":`, `null`, `{}`, strings.Repeat(" ", 5000)},
		"login_hint": {"rex", "<b>x</b>", strings.Repeat("h", 600), "\x01"},
		"ui_locales": {"de", "fr de-AT", "xx-invalid-", strings.Repeat("de ", 100)},
	}
	names := []string{"prompt", "max_age", "acr_values", "claims", "login_hint", "ui_locales"}
	errorsAllowed := []string{"invalid_request", "login_required", "consent_required", "interaction_required",
		"unmet_authentication_requirements", "temporarily_unavailable", "invalid_target"}

	seen := map[string]int{} // the app's answers: "code" or the error
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 300 && !t.Failed(); i++ {
		b := newBrowser(t)
		if rng.IntN(2) == 0 {
			b = withSession
		}
		_, challenge := pkce()
		q := url.Values{"client_id": {app.ID}, "redirect_uri": {app.RedirectURI}, "response_type": {"code"}, "scope": {"openid email"},
			"state": {"s"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"}}
		for _, n := range names {
			if rng.IntN(3) == 0 {
				q.Set(n, params[n][rng.IntN(len(params[n]))])
			}
		}
		if i%2 == 1 { // every other request, so the others draw as before
			for k := rng.IntN(4); k > 0; k-- {
				q.Add("resource", resources[rng.IntN(len(resources))])
			}
		}
		p := b.get(srv.URL + "/authorize?" + q.Encode())
		what := q.Encode()
		if p.Status >= 500 {
			t.Fatalf("%s: %d %s", what, p.Status, truncateBody(p.Body))
		}
		if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, app.RedirectURI) {
			continue // a page of the sign-in, or a refusal shown to the person
		}
		res := landed(t, p, app.RedirectURI)
		if res.Code == "" && !slices.Contains(errorsAllowed, res.Error) {
			t.Fatalf("%s: the app got %v", what, res.Query)
		}
		seen[cmp.Or(res.Error, "code")]++
		prompt := strings.Fields(q.Get("prompt"))
		var claimsErr error
		var claims map[string]any
		if c := q.Get("claims"); c != "" {
			claimsErr = json.Unmarshal([]byte(c), &claims)
		}
		invalid := slices.Contains(prompt, "none") && len(prompt) > 1 || claimsErr != nil || q.Has("claims") && claims == nil
		unregistered := slices.ContainsFunc(q["resource"], func(r string) bool { return !slices.Contains(registered, r) })
		if (invalid || unregistered) && res.Code != "" {
			t.Fatalf("%s: an invalid request got a code", what)
		}
		if res.Error == "invalid_target" && !unregistered {
			t.Fatalf("%s: registered resources refused", what)
		}
	}
	// The seed reaches each kind of answer, or the test proves little.
	for _, want := range []string{"code", "invalid_request", "login_required", "unmet_authentication_requirements", "invalid_target"} {
		if seen[want] == 0 {
			t.Errorf("no request ended with %s: %v", want, seen)
		}
	}
}
