package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// createOnPage submits a create form on /security/access and returns the
// secret shown once.
func createOnPage(t *testing.T, srv *testServer, b *browser, action string, form url.Values) string {
	t.Helper()
	p := b.get(srv.URL + "/security/access")
	r := postPage(b, p, action, form)
	secret, shown := textByID(t, r.Body, "new-secret")
	if r.Status != http.StatusOK || !shown || secret == "" {
		t.Fatalf("create at %s: %d %s", action, r.Status, truncateBody(r.Body))
	}
	if !strings.Contains(r.Header.Get("Cache-Control"), "no-store") {
		t.Error("the page with a new secret may be cached")
	}
	if again := b.get(srv.URL + "/security/access"); strings.Contains(again.Body, secret) {
		t.Error("the secret is shown again")
	}
	return secret
}

func verify(srv *testServer, user, pass, query string, cookies *browser) (int, http.Header) {
	return verifyWith(srv, http.MethodGet, user, pass, query, cookies, map[string]string{"X-Forwarded-Uri": "/wiki/page?x=1"})
}

// verifyWith calls /auth/verify as a reverse proxy would, with its headers.
func verifyWith(srv *testServer, method, user, pass, query string, cookies *browser, headers map[string]string) (int, http.Header) {
	req, _ := http.NewRequest(method, srv.URL+"/auth/verify"+query, nil)
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	client := http.DefaultClient
	if cookies != nil {
		client = cookies.client
	}
	p := mustFetch(srv.t, client, req)
	return p.Status, p.Header
}

func TestAppPasswordsAndForwardAuth(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	srv.createClient(newConfidentialClient("wiki"))
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")

	secret := createOnPage(t, srv, b, "/security/app-passwords", url.Values{"ap_name": {"Mail on phone"}})
	if len(strings.ReplaceAll(secret, "-", "")) < 24 {
		t.Fatalf("app password too short: %q", secret)
	}
	stored, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindAppPassword)
	if len(stored) != 1 || strings.Contains(stored[0].Hash, secret) || stored[0].Hash == secret {
		t.Fatalf("stored app passwords: %+v", stored)
	}

	if _, err := srv.Main.Store.UpdateUser(context.Background(), alice.ID, func(u storage.User) (storage.User, error) {
		u.Groups = []string{"staff", "wiki-admins"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	status, h := verify(srv, "alice", secret, "", nil)
	if status != http.StatusOK || h.Get("Remote-User") != "alice" || h.Get("Remote-Email") != "alice@example.com" || h.Get("Remote-Name") != "Alice Tester" || h.Get("Remote-Groups") != "staff,wiki-admins" {
		t.Fatalf("forward auth with an app password: %d %v", status, h)
	}
	if h.Get("Set-Cookie") != "" || !strings.Contains(h.Get("Cache-Control"), "no-store") {
		t.Error("forward auth set a cookie or may be cached")
	}
	// HEAD works too (Caddy), and the secret may be typed in capitals without dashes; by email as well.
	if status, h := verifyWith(srv, http.MethodHead, "alice@example.com", strings.ToUpper(strings.ReplaceAll(secret, "-", "")), "", nil, nil); status != http.StatusOK || h.Get("Remote-User") != "alice" {
		t.Errorf("HEAD with a retyped app password: %d", status)
	}
	if hist, _ := srv.Main.Accounts.SignIn.History(context.Background(), alice.ID, 1); len(hist) != 1 || !hist[0].Success || hist[0].Method != "app_password" {
		t.Errorf("forward auth not in the history: %+v", hist)
	}
	if c, _ := srv.Main.Store.GetCredential(context.Background(), alice.ID, stored[0].ID); c.LastUsedAt.IsZero() || c.LastIP != "127.0.0.1" {
		t.Errorf("last use not noted: %+v", c)
	}
	// No credentials at all: 401 with the hint.
	if status, h := verify(srv, "", "", "", nil); status != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" || h.Get("X-Keyport-Login") == "" {
		t.Errorf("anonymous: %d %v", status, h)
	}
	status, h = verify(srv, "alice", "wrong-password-here", "", nil)
	if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Basic") || h.Get("X-Keyport-Login") != srv.URL+"/login?return_to=%2Fwiki%2Fpage%3Fx%3D1" {
		t.Errorf("wrong app password: %d %v", status, h)
	}
	// Without a second factor the account password is accepted too.
	if status, _ := verify(srv, "alice", testPassword, "", nil); status != http.StatusOK {
		t.Errorf("account password without 2FA: %d", status)
	}
	// The portal session works as well.
	if status, h := verify(srv, "", "", "", b); status != http.StatusOK || h.Get("Remote-User") != "alice" {
		t.Errorf("session cookie: %d", status)
	}

	// An app password for one app only.
	wikiOnly := createOnPage(t, srv, b, "/security/app-passwords", url.Values{"ap_name": {"Wiki sync"}, "client_id": {"wiki"}})
	if status, _ := verify(srv, "alice", wikiOnly, "?client=wiki", nil); status != http.StatusOK {
		t.Errorf("restricted app password at its app: %d", status)
	}
	if status, _ := verify(srv, "alice", wikiOnly, "?client=other", nil); status != http.StatusUnauthorized {
		t.Errorf("restricted app password elsewhere: %d", status)
	}

	// Once the account has 2FA the password alone is refused, app passwords still work.
	if _, err := srv.Main.Store.UpdateUser(context.Background(), alice.ID, func(u storage.User) (storage.User, error) {
		u.TOTPSecret = []byte("sealed-secret-placeholder")
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if status, _ := verify(srv, "alice", testPassword, "", nil); status != http.StatusUnauthorized {
		t.Errorf("account password with 2FA: %d", status)
	}
	if status, _ := verify(srv, "alice", secret, "", nil); status != http.StatusOK {
		t.Errorf("app password with 2FA: %d", status)
	}

	// Revoking needs the CSRF token; then the app password no longer works.
	p := b.get(srv.URL + "/security/access")
	if r := b.post(srv.URL+"/security/app-passwords/revoke", url.Values{"id": {stored[0].ID}}); r.Status != http.StatusForbidden {
		t.Errorf("revoke without CSRF: %d", r.Status)
	}
	if status, _ := verify(srv, "alice", secret, "", nil); status != http.StatusOK {
		t.Errorf("revoked without CSRF: %d", status)
	}
	if r := postPage(b, p, "/security/app-passwords/revoke", url.Values{"id": {stored[0].ID}}); r.Status != http.StatusOK || !strings.Contains(r.Body, "Revoked") {
		t.Errorf("revoke: %d", r.Status)
	}
	if status, _ := verify(srv, "alice", secret, "", nil); status != http.StatusUnauthorized {
		t.Errorf("revoked app password: %d", status)
	}
	// A duplicate name is refused and nothing is stored.
	r := postPage(b, p, "/security/app-passwords", url.Values{"ap_name": {"wiki SYNC"}})
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "already have one") || !strings.Contains(r.Body, `value="wiki SYNC"`) {
		t.Errorf("duplicate name: %d", r.Status)
	}
	if r := b.post(srv.URL+"/security/app-passwords", url.Values{"ap_name": {"no csrf"}}); r.Status != http.StatusForbidden {
		t.Errorf("without CSRF: %d", r.Status)
	}
	for name, form := range map[string]url.Values{
		"long name":      {"ap_name": {strings.Repeat("n", 65)}},
		"empty name":     {"ap_name": {" "}},
		"unknown client": {"ap_name": {"x"}, "client_id": {"nope"}},
	} {
		if r := postPage(b, p, "/security/app-passwords", form); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, `class="field-error"`) {
			t.Errorf("%s: %d", name, r.Status)
		}
	}
	if all, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindAppPassword); len(all) != 1 {
		t.Errorf("%d app passwords stored, want 1", len(all))
	}
}

// TestForwardAuthLoginHint: the hint sends the browser back only to a path
// on Keyport's own host, whatever the proxy's headers say.
func TestForwardAuthLoginHint(t *testing.T) {
	srv := startServer(t, "", nil)
	issuerHost := strings.TrimPrefix(srv.URL, "http://")
	login := srv.URL + "/login"
	for name, c := range map[string]struct {
		headers map[string]string
		want    string
	}{
		"none":                  {nil, login},
		"forwarded path":        {map[string]string{"X-Forwarded-Uri": "/wiki/page?x=1"}, login + "?return_to=%2Fwiki%2Fpage%3Fx%3D1"},
		"same host":             {map[string]string{"X-Forwarded-Uri": "/a", "X-Forwarded-Host": issuerHost, "X-Forwarded-Proto": "http"}, login + "?return_to=%2Fa"},
		"other host":            {map[string]string{"X-Forwarded-Uri": "/a", "X-Forwarded-Host": "evil.example"}, login},
		"nginx same host":       {map[string]string{"X-Original-URL": srv.URL + "/b?c=d"}, login + "?return_to=%2Fb%3Fc%3Dd"},
		"nginx other host":      {map[string]string{"X-Original-URL": "https://evil.example/b"}, login},
		"scheme-relative":       {map[string]string{"X-Forwarded-Uri": "//evil.example/x"}, login},
		"backslash":             {map[string]string{"X-Forwarded-Uri": "/\\evil.example"}, login},
		"javascript":            {map[string]string{"X-Original-URL": "javascript:alert(1)"}, login},
		"other host in the uri": {map[string]string{"X-Forwarded-Uri": "https://evil.example/x", "X-Forwarded-Host": issuerHost}, login},
	} {
		status, h := verifyWith(srv, http.MethodGet, "", "", "", nil, c.headers)
		if status != http.StatusUnauthorized || h.Get("X-Keyport-Login") != c.want {
			t.Errorf("%s: %d %q, want %q", name, status, h.Get("X-Keyport-Login"), c.want)
		}
	}
}

// TestForwardAuthRequire2FA: with require_2fa, a session or app password of
// someone who has not enrolled reaches no app.
func TestForwardAuthRequire2FA(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.Accounts.Require2FA = true })
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	if status, _ := verify(srv, "", "", "", b); status != http.StatusUnauthorized {
		t.Errorf("session without the required second factor: %d", status)
	}
	if status, _ := verify(srv, "alice", testPassword, "", nil); status != http.StatusUnauthorized {
		t.Errorf("password without the required second factor: %d", status)
	}
	secret, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(context.Background(), alice, "old one", "")
	if err != nil {
		t.Fatal(err)
	}
	if status, _ := verify(srv, "alice", secret, "", nil); status != http.StatusUnauthorized {
		t.Errorf("app password without the required second factor: %d", status)
	}
	if _, err := srv.Main.Store.UpdateUser(context.Background(), alice.ID, func(u storage.User) (storage.User, error) {
		u.TOTPSecret = []byte("sealed-secret-placeholder")
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if status, _ := verify(srv, "", "", "", b); status != http.StatusOK {
		t.Errorf("session after enrolling: %d", status)
	}
	if status, _ := verify(srv, "alice", secret, "", nil); status != http.StatusOK {
		t.Errorf("app password after enrolling: %d", status)
	}
}

func apiCall(t *testing.T, srv *testServer, method, path, token, contentType, body string) (int, http.Header, map[string]any) {
	t.Helper()
	return apiCallWith(t, srv, method, path, token, contentType, body, nil)
}

// apiCallWith is apiCall with extra request headers (If-Match).
func apiCallWith(t *testing.T, srv *testServer, method, path, token, contentType, body string, header http.Header) (int, http.Header, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	for k, v := range header {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	p := mustFetch(t, http.DefaultClient, req)
	schemas := schemasOf(t, srv)
	if body != "" {
		schemas.checkRequest(t, method, path, p.Status, []byte(body))
	}
	schemas.check(t, method, path, p.Status, []byte(p.Body))
	if p.Status == http.StatusNoContent {
		return p.Status, p.Header, nil
	}
	var out map[string]any
	if err := json.Unmarshal([]byte(p.Body), &out); err != nil {
		t.Fatalf("%s %s: not JSON (%d): %v", method, path, p.Status, err)
	}
	if p.Status >= 400 {
		out = flattenAPIError(t, method+" "+path, out)
	}
	return p.Status, p.Header, out
}

func TestAPITokens(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	ro := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"reader"}, "scope": {"read-only"}})
	rw := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"writer"}, "scope": {"read-write"}, "expires": {time.Now().AddDate(0, 1, 0).Format("2006-01-02")}})
	if !strings.HasPrefix(ro, "kp_") || len(ro) < 40 {
		t.Fatalf("token format: %q", ro)
	}

	status, h, me := apiCall(t, srv, http.MethodGet, "/api/v1/me", ro, "", "")
	if status != http.StatusOK || me["id"] != alice.ID || me["username"] != "alice" || h.Get("Set-Cookie") != "" {
		t.Fatalf("GET /me: %d %v", status, me)
	}
	for _, hidden := range []string{"password_hash", "blocked", "last_ip", "logins_count", "app_metadata", "totp_secret", "recovery_codes"} {
		if _, ok := me[hidden]; ok {
			t.Errorf("/me shows %s", hidden)
		}
	}
	if status, h, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", ro, "application/json", `{"given_name":"X"}`); status != http.StatusForbidden || body["error"] != "insufficient_scope" || !strings.Contains(h.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("read-only PATCH: %d %v", status, body)
	}
	status, _, me = apiCall(t, srv, http.MethodPatch, "/api/v1/me", rw, "application/json", `{"given_name":"Alice","zoneinfo":"Europe/Paris","custom_data":{"team":"blue"}}`)
	if status != http.StatusOK || me["given_name"] != "Alice" || me["zoneinfo"] != "Europe/Paris" {
		t.Fatalf("read-write PATCH: %d %v", status, me)
	}
	if u := srv.user(alice.ID); u.GivenName != "Alice" || u.CustomData["team"] != "blue" {
		t.Fatalf("PATCH not stored: %+v", u)
	}
	before := srv.user(alice.ID)
	for name, c := range map[string]struct {
		ctype, body string
		status      int
		field       string
	}{
		"username":     {"application/json", `{"username":"mallory","given_name":"Y"}`, http.StatusForbidden, "username"},
		"unknown":      {"application/json", `{"shoe_size":"44"}`, http.StatusBadRequest, "shoe_size"},
		"bad email":    {"application/json", `{"email":"nope","given_name":"Y"}`, http.StatusBadRequest, "email"},
		"not a string": {"application/json", `{"given_name":42}`, http.StatusBadRequest, "given_name"},
		"bad custom":   {"application/json", `{"given_name":"Y","custom_data":{"1bad":"x"}}`, http.StatusBadRequest, "custom_data"},
		"not json":     {"application/json", `given_name=Y`, http.StatusBadRequest, ""},
		"two objects":  {"application/json", `{"given_name":"Y"} {"given_name":"Z"}`, http.StatusBadRequest, ""},
		"an array":     {"application/json", `[{"given_name":"Y"}]`, http.StatusBadRequest, ""},
		"form type":    {"application/x-www-form-urlencoded", `given_name=Y`, http.StatusUnsupportedMediaType, ""},
	} {
		status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", rw, c.ctype, c.body)
		if status != c.status || (c.field != "" && body["field"] != c.field) {
			t.Errorf("%s: %d %v", name, status, body)
		}
	}
	if after := srv.user(alice.ID); !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Error("a refused PATCH changed the user")
	}
	// Missing, malformed and unknown tokens.
	for name, tok := range map[string]string{"none": "", "garbled": "kp_nope", "no prefix": "abc"} {
		status, h, body := apiCall(t, srv, http.MethodGet, "/api/v1/me", tok, "", "")
		if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || body["error"] == nil {
			t.Errorf("%s token: %d %v", name, status, body)
		}
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/nothing", ro, "", ""); status != http.StatusNotFound || body["error"] != "not_found" {
		t.Errorf("unknown endpoint: %d", status)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/me", rw, "application/json", `{}`); status != http.StatusMethodNotAllowed || body["error"] == nil {
		t.Errorf("POST /me: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", rw, "", `{"given_name":"Y"}`); status != http.StatusUnsupportedMediaType || body["error"] == nil {
		t.Errorf("PATCH without a content type: %d %v", status, body)
	}
	big := `{"given_name":"` + strings.Repeat("y", 70<<10) + `"}`
	if status, h, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", rw, "application/json", big); status != http.StatusBadRequest || body["error"] == nil || h.Get("Set-Cookie") != "" {
		t.Errorf("oversized PATCH: %d %v", status, body)
	}
	// A read-write token still cannot mint tokens or app passwords: those
	// pages need the browser session.
	for _, path := range []string{"/security/api-tokens", "/security/app-passwords"} {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader("name=more&scope=read-write&ap_name=more"))
		req.Header.Set("Authorization", "Bearer "+rw)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("%s with a token: %d", path, resp.StatusCode)
		}
	}

	// Expired: 401 and recorded.
	toks, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindAPIToken)
	var writer storage.Credential
	for _, c := range toks {
		if c.Name == "writer" {
			writer = c
		}
	}
	if _, err := srv.Main.Store.UpdateCredential(context.Background(), alice.ID, writer.ID, func(c storage.Credential) (storage.Credential, error) {
		c.ValidUntil = time.Now().Add(-time.Minute)
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/me", rw, "", ""); status != http.StatusUnauthorized {
		t.Errorf("expired token: %d", status)
	}
	// From outside its networks: 401 and recorded.
	narrow := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"office"}, "scope": {"read-only"}, "token_networks": {"10.0.0.0/8, 192.0.2.7"}})
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/me", narrow, "", ""); status != http.StatusUnauthorized {
		t.Errorf("token from outside its networks: %d", status)
	}
	hist, _ := srv.Main.Accounts.SignIn.History(context.Background(), alice.ID, 10)
	reasons := ""
	for _, a := range hist {
		if a.Method == "api_token" && !a.Success {
			reasons += a.Reason + ";"
		}
	}
	if !strings.Contains(reasons, "expired") || !strings.Contains(reasons, "network") {
		t.Errorf("refused token uses not recorded: %q", reasons)
	}

	// Bad input on the page: clear message, nothing stored.
	p := b.get(srv.URL + "/security/access")
	n := len(toks) + 1
	for name, form := range map[string]url.Values{
		"bad cidr":    {"name": {"x1"}, "scope": {"read-only"}, "token_networks": {"10.0.0.0/33"}},
		"past expiry": {"name": {"x2"}, "scope": {"read-only"}, "expires": {"2020-01-01"}},
		"duplicate":   {"name": {"Reader"}, "scope": {"read-only"}},
		"bad scope":   {"name": {"x3"}, "scope": {"admin"}},
		"long name":   {"name": {strings.Repeat("n", 65)}, "scope": {"read-only"}},
	} {
		if r := postPage(b, p, "/security/api-tokens", form); r.Status < 400 || r.Status >= 500 {
			t.Errorf("%s: %d", name, r.Status)
		}
	}
	if all, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindAPIToken); len(all) != n {
		t.Errorf("%d tokens stored after refusals, want %d", len(all), n)
	}
	// Revoked: 401.
	for _, c := range toks {
		if c.Name == "reader" {
			postPage(b, p, "/security/api-tokens/revoke", url.Values{"id": {c.ID}})
		}
	}
	if status, _, _ := apiCall(t, srv, http.MethodGet, "/api/v1/me", ro, "", ""); status != http.StatusUnauthorized {
		t.Errorf("revoked token: %d", status)
	}
}

// TestAccessNeedsRecentSignIn: new API tokens and app passwords, and the
// allowlist, need the password again once the sign-in is not recent.
func TestAccessNeedsRecentSignIn(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	// Age the session past the recent-auth window.
	sess, _ := srv.Main.Store.ListUserSessions(context.Background(), alice.ID)
	for _, s := range sess {
		s.AuthTime = s.AuthTime.Add(-time.Hour)
		_ = srv.Main.Store.DeleteSession(context.Background(), s.ID)
		_ = srv.Main.Store.CreateSession(context.Background(), s)
	}
	p := b.get(srv.URL + "/security/access")
	if n := strings.Count(p.Body, `name="confirm_password"`); n != 3 {
		t.Fatalf("an old session is asked for the password in %d forms, want 3", n)
	}
	for _, c := range []struct {
		action, fieldID string
		form            url.Values
		stored          func() int
	}{
		{"/security/api-tokens", "confirm_password_tok", url.Values{"name": {"t"}, "scope": {"read-only"}}, func() int {
			l, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindAPIToken)
			return len(l)
		}},
		{"/security/app-passwords", "confirm_password_ap", url.Values{"ap_name": {"t"}}, func() int {
			l, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindAppPassword)
			return len(l)
		}},
		{"/security/allowlist", "confirm_password_allow", url.Values{"allowed_networks": {"127.0.0.0/8"}}, func() int {
			return len(srv.user(alice.ID).AllowedNetworks)
		}},
	} {
		form := func(extra ...string) url.Values {
			f := url.Values{}
			for k, v := range c.form {
				f[k] = v
			}
			if len(extra) > 0 {
				f.Set("confirm_password", extra[0])
			}
			return f
		}
		r := postPage(b, p, c.action, form())
		if r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "current password") || !strings.Contains(r.Body, `id="`+c.fieldID+`"`) {
			t.Errorf("%s without confirmation: %d", c.action, r.Status)
		}
		if r := postPage(b, p, c.action, form("wrong password!!")); r.Status != http.StatusBadRequest {
			t.Errorf("%s with a wrong password: %d", c.action, r.Status)
		}
		if n := c.stored(); n != 0 {
			t.Errorf("%s saved without confirmation", c.action)
		}
		r = postPage(b, p, c.action, form(testPassword))
		if r.Status != http.StatusOK || c.stored() != 1 {
			t.Errorf("%s with the password: %d", c.action, r.Status)
		}
	}
}

func userIDOf(t *testing.T, srv *testServer, login string) string {
	u, err := srv.Main.Store.GetUserByLogin(context.Background(), login)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

func TestIPAllowlist(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/security/access")

	if r := postPage(b, p, "/security/allowlist", url.Values{"allowed_networks": {"10.0.0.0/8\nnot-an-ip"}}); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "&#34;not-an-ip&#34; is not an IP address") {
		t.Errorf("invalid entry: %d %s", r.Status, truncateBody(r.Body))
	}
	if r := b.post(srv.URL+"/security/allowlist", url.Values{"allowed_networks": {"127.0.0.1"}}); r.Status != http.StatusForbidden {
		t.Errorf("without CSRF: %d", r.Status)
	}
	if n := srv.user(alice.ID).AllowedNetworks; len(n) != 0 {
		t.Fatalf("saved after refusals: %v", n)
	}
	// The message names the entry in the user's language too.
	if _, err := srv.Main.Store.UpdateUser(context.Background(), alice.ID, func(u storage.User) (storage.User, error) {
		u.Locale = "de"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := postPage(b, p, "/security/allowlist", url.Values{"allowed_networks": {"999.1.1.1"}}); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "&#34;999.1.1.1&#34; ist weder") {
		t.Errorf("German message: %d %s", r.Status, truncateBody(r.Body))
	}
	if _, err := srv.Main.Store.UpdateUser(context.Background(), alice.ID, func(u storage.User) (storage.User, error) {
		u.Locale = ""
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	// A list without the current address asks first and saves nothing.
	r := postPage(b, p, "/security/allowlist", url.Values{"allowed_networks": {"10.0.0.0/8"}})
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "127.0.0.1") || !strings.Contains(r.Body, `name="confirm_lockout"`) {
		t.Fatalf("lockout warning: %d %s", r.Status, truncateBody(r.Body))
	}
	if n := srv.user(alice.ID).AllowedNetworks; len(n) != 0 {
		t.Fatalf("saved without confirmation: %v", n)
	}
	r = postPage(b, p, "/security/allowlist", url.Values{"allowed_networks": {"10.0.0.0/8"}, "confirm_lockout": {"1"}})
	if r.Status != http.StatusOK || len(srv.user(alice.ID).AllowedNetworks) != 1 {
		t.Fatalf("confirmed save: %d", r.Status)
	}
	// Now a password sign-in from 127.0.0.1 is refused and recorded.
	other := newBrowser(t)
	lp := other.submit(other.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if lp.Status != http.StatusForbidden || !strings.Contains(lp.Body, "not allowed") {
		t.Errorf("sign-in from outside the allowlist: %d", lp.Status)
	}
	hist, _ := srv.Main.Accounts.SignIn.History(context.Background(), alice.ID, 1)
	if len(hist) != 1 || hist[0].Reason != "network not allowed" {
		t.Errorf("history: %+v", hist)
	}
	if status, _ := verify(srv, "alice", testPassword, "", nil); status != http.StatusUnauthorized {
		t.Errorf("forward auth from outside the allowlist: %d", status)
	}
}

func TestActivityPage(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	for i := 0; i < 4; i++ {
		_, _ = srv.Main.Accounts.SignIn.Authenticate(context.Background(), account.Credentials{Login: "alice", Password: "wrong password " + itoa(int64(i)), IP: "192.0.2.9"})
	}
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	other := newBrowser(t)
	signInPortal(t, srv, other, "alice")
	// An app holds a refresh token from this sign-in.
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	tok, err := app.exchange(app.signIn(b, "alice"))
	if err != nil || tok.RefreshToken == "" {
		t.Fatalf("refresh token: %v", err)
	}
	p := b.get(srv.URL + "/security/activity")
	history, _ := parsePage(t, p.Body).byID("history")
	body, _ := history.first("tbody")
	rows := len(body.all("tr"))
	if p.Status != http.StatusOK || rows != 5 {
		t.Fatalf("history rows: %d (want the last 5)", rows)
	}
	if !strings.Contains(p.Body, "Failed: wrong password") || !strings.Contains(p.Body, "Signed in") || !strings.Contains(p.Body, "this browser") {
		t.Errorf("activity page: %s", truncateBody(p.Body))
	}
	if n := strings.Count(p.Body, "Go HTTP client"); n < 2 {
		t.Errorf("sessions listed: %d", n)
	}
	if r := b.post(srv.URL+"/security/activity/signout-everywhere", url.Values{"confirm": {"yes"}}); r.Status != http.StatusForbidden {
		t.Errorf("sign out everywhere without CSRF: %d", r.Status)
	}
	r := postPage(b, p, "/security/activity/signout-everywhere", url.Values{"confirm": {"yes"}})
	if !isLoginPage(r) {
		t.Errorf("after signing out everywhere: %s", r.URL)
	}
	if r := other.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Error("the other browser is still signed in")
	}
	if s, _ := srv.Main.Store.ListUserSessions(context.Background(), alice.ID); len(s) != 0 {
		t.Errorf("%d sessions left", len(s))
	}
	if status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("refresh token after signing out everywhere: %d %v", status, body)
	}
}

func TestAPIAcceptsCrossSiteTokenCalls(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	token := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"cross"}, "scope": {"read-write"}})
	req, _ := http.NewRequest(http.MethodPatch, srv.URL+"/api/v1/me", strings.NewReader(`{"nickname":"al"}`))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://tools.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Errorf("cross-site PATCH with a token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// The portal's own forms still refuse cross-site posts.
	req, _ = http.NewRequest(http.MethodPost, srv.URL+"/profile", strings.NewReader("nickname=x"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	if p := b.do(req); p.Status != http.StatusForbidden {
		t.Errorf("cross-site form post: %d", p.Status)
	}
}

// TestForwardAuthAppAllowedGroups: when the proxy names the app
// (?client=ID), only members of the app's allowed groups get through,
// whatever they present: an app password for that app, the account
// password, or the portal session. Others get 403 (signed in, not allowed).
func TestForwardAuthAppAllowedGroups(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	wiki := newConfidentialClient("wiki")
	wiki.AllowedGroups = []string{"wiki-users"}
	srv.createClient(wiki)
	ctx := context.Background()
	appPassword, cred, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, alice, "wiki sync", "wiki")
	if err != nil {
		t.Fatal(err)
	}
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	history := func() ([]storage.LoginAttempt, []storage.AuditEvent) {
		t.Helper()
		hist, err := srv.Main.Accounts.SignIn.History(ctx, alice.ID, 50)
		if err != nil {
			t.Fatal(err)
		}
		events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{TargetUserID: alice.ID, Types: []string{account.EventSignInSucceeded, account.EventSignInFailed}, Limit: 50})
		if err != nil {
			t.Fatal(err)
		}
		return hist, events
	}
	hist0, events0 := history()
	check := func(want int) {
		t.Helper()
		if status, h := verify(srv, "alice", appPassword, "?client=wiki", nil); status != want || (want == http.StatusOK) != (h.Get("Remote-User") == "alice") {
			t.Errorf("app password for the app: %d, want %d", status, want)
		}
		if status, _ := verify(srv, "alice", testPassword, "?client=wiki", nil); status != want {
			t.Errorf("account password: %d, want %d", status, want)
		}
		if status, _ := verify(srv, "", "", "?client=wiki", b); status != want {
			t.Errorf("portal session: %d, want %d", status, want)
		}
	}
	check(http.StatusForbidden)
	// The refusals of right credentials (an app password for the app, and
	// the account password of an account without a second factor) are
	// failed sign-ins in the history and the audit log, and no use of the
	// app password; the session's refusal writes nothing.
	hist, events := history()
	var refusals []string
	for _, a := range hist[:len(hist)-len(hist0)] { // newest first
		if a.Success || a.Reason != "not in the app's allowed groups" {
			t.Errorf("a refused forward auth is in the history as %+v, want a failure for the app's groups", a)
		}
		refusals = append(refusals, a.Method)
	}
	if !slices.Equal(refusals, []string{"pwd", "app_password"}) {
		t.Errorf("history since the portal sign-in: %v, want the account password's and the app password's refusals", refusals)
	}
	if len(events)-len(events0) != 2 {
		t.Errorf("%d sign-in events for the refusals, want 2", len(events)-len(events0))
	}
	for _, e := range events[:len(events)-len(events0)] {
		if e.Type != account.EventSignInFailed || e.ClientID != "wiki" {
			t.Errorf("audit event of a refused forward auth: %s for %q, want %s for wiki", e.Type, e.ClientID, account.EventSignInFailed)
		}
	}
	if c, err := srv.Main.Store.GetCredential(ctx, alice.ID, cred.ID); err != nil || !c.LastUsedAt.IsZero() {
		t.Errorf("the refused app password was noted as used at %v (%v)", c.LastUsedAt, err)
	}
	// A wrong password is still a prompt to sign in, not a refusal.
	if status, h := verify(srv, "alice", "wrong password", "?client=wiki", nil); status != http.StatusUnauthorized || h.Get("WWW-Authenticate") == "" {
		t.Errorf("wrong password for the app: %d %v", status, h)
	}
	// Without naming an app the proxy asks only who it is.
	if status, _ := verify(srv, "", "", "", b); status != http.StatusOK {
		t.Errorf("portal session without an app: %d", status)
	}
	if _, err := srv.Main.Store.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
		u.Groups = []string{"Wiki-Users"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	check(http.StatusOK)
}
