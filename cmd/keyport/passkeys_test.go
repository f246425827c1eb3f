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

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/webauthntest"
	"github.com/keyport/keyport/storage"
)

// HTTP-level tests of the passkey endpoints, with a software authenticator
// that answers like a browser's (a real P-256 key, attestation "none"), so
// they run without Chromium. browser_test.go drives the real thing.

// passkeyDevice answers the portal's JSON ceremonies with the shared
// software authenticator.
type passkeyDevice struct {
	*webauthntest.Authenticator
}

func newPasskeyDevice(t *testing.T, origin string) *passkeyDevice {
	return &passkeyDevice{webauthntest.New(t, origin)}
}

// publicKey digs the publicKey options out of a begin answer.
func (d *passkeyDevice) publicKey(answer map[string]any) map[string]any {
	d.T.Helper()
	opts, _ := answer["options"].(map[string]any)
	pk, _ := opts["publicKey"].(map[string]any)
	if pk == nil {
		d.T.Fatalf("no publicKey options in %v", answer)
	}
	return pk
}

// answer runs one ceremony step on a begin answer's options.
func (d *passkeyDevice) answer(begin map[string]any, step func([]byte) []byte) map[string]any {
	d.T.Helper()
	opts, err := json.Marshal(map[string]any{"publicKey": d.publicKey(begin)})
	if err != nil {
		d.T.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(step(opts), &out); err != nil {
		d.T.Fatal(err)
	}
	return out
}

// create answers a registration begin like navigator.credentials.create.
func (d *passkeyDevice) create(begin map[string]any) map[string]any {
	return d.answer(begin, d.Register)
}

// get answers a sign-in begin like navigator.credentials.get.
func (d *passkeyDevice) get(begin map[string]any) map[string]any { return d.answer(begin, d.Assert) }

func passkeyPost(t *testing.T, b *browser, u, csrf string, body any) (int, map[string]any) {
	t.Helper()
	raw, ok := body.(string)
	if !ok {
		j, _ := json.Marshal(body)
		raw = string(j)
	}
	req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	p := b.do(req)
	var out map[string]any
	if err := json.Unmarshal([]byte(p.Body), &out); err != nil {
		t.Fatalf("POST %s: not JSON (%d): %s", u, p.Status, truncateBody(p.Body))
	}
	if p.Status != http.StatusOK && (out["message"] == nil || out["message"] == "") {
		t.Errorf("POST %s: %d without a message: %v", u, p.Status, out)
	}
	return p.Status, out
}

// csrfOf returns the CSRF token of the page at u (every portal page has one).
func csrfOf(t *testing.T, b *browser, u string) string {
	t.Helper()
	tok := formFields(b.get(u).Body).Get("csrf_token")
	if tok == "" {
		t.Fatalf("no CSRF token on %s", u)
	}
	return tok
}

// aliceWithPasskey starts a server where alice has registered one passkey,
// "Laptop", on key, from a browser session of her own.
func aliceWithPasskey(t *testing.T) (*testServer, storage.User, *passkeyDevice) {
	t.Helper()
	srv := startServerWith(t, serverOptions{localhost: true})
	alice := srv.createUser("alice", false)
	key := newPasskeyDevice(t, srv.URL)
	setup := newBrowser(t)
	signInPortal(t, srv, setup, "alice")
	registerPasskey(t, srv, setup, key, "Laptop")
	return srv, alice, key
}

// registerPasskey adds d to the signed-in browser b's account.
func registerPasskey(t *testing.T, srv *testServer, b *browser, d *passkeyDevice, name string) {
	t.Helper()
	csrf := csrfOf(t, b, srv.URL+"/security/passkeys")
	status, begin := passkeyPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, map[string]string{"name": name})
	if status != http.StatusOK {
		t.Fatalf("register begin: %d %v", status, begin)
	}
	status, done := passkeyPost(t, b, srv.URL+"/security/passkeys/register/finish", csrf, map[string]any{"credential": d.create(begin)})
	if status != http.StatusOK || done["redirect"] != "/security/passkeys?done=added" {
		t.Fatalf("register finish: %d %v", status, done)
	}
}

// passkeySignIn runs the username-less sign-in from the page at pageURL
// (its hidden authRequestID / return_to go along, as webauthn.js sends
// them) and returns the finish answer.
func passkeySignIn(t *testing.T, b *browser, pageURL string, d *passkeyDevice) (int, map[string]any) {
	t.Helper()
	p := b.get(pageURL)
	fields := formFields(p.Body)
	base, _ := url.Parse(pageURL)
	begin, _ := base.Parse("/login/passkey/begin")
	finish, _ := base.Parse("/login/passkey/finish")
	status, opts := passkeyPost(t, b, begin.String(), fields.Get("csrf_token"), `{}`)
	if status != http.StatusOK {
		t.Fatalf("sign-in begin: %d %v", status, opts)
	}
	return passkeyPost(t, b, finish.String(), fields.Get("csrf_token"), map[string]any{
		"authRequestID": fields.Get("authRequestID"), "return_to": fields.Get("return_to"), "credential": d.get(opts),
	})
}

func (s *testServer) passkeys(userID string) []storage.Credential {
	s.t.Helper()
	cs, err := s.Main.Store.ListCredentials(context.Background(), userID, storage.KindPasskey)
	if err != nil {
		s.t.Fatal(err)
	}
	return cs
}

func TestPasskeyCSRFAndShape(t *testing.T) {
	srv := startServerWith(t, serverOptions{localhost: true})
	alice := srv.createUser("alice", false)
	b := newBrowser(t)
	csrf := csrfOf(t, b, srv.URL+"/login")

	// Every ceremony endpoint wants the page's token in X-CSRF-Token and
	// answers JSON either way.
	for _, path := range []string{"/login/passkey/begin", "/login/passkey/finish", "/login/2fa/passkey/begin", "/login/2fa/passkey/finish", "/security/passkeys/register/begin", "/security/passkeys/register/finish"} {
		for _, tok := range []string{"", "wrong-token", csrf + "x"} {
			if status, body := passkeyPost(t, b, srv.URL+path, tok, `{}`); status != http.StatusForbidden {
				t.Errorf("%s with CSRF header %q: %d %v", path, tok, status, body)
			}
		}
	}
	status, body := passkeyPost(t, b, srv.URL+"/login/passkey/begin", csrf, `{}`)
	pk, _ := body["options"].(map[string]any)["publicKey"].(map[string]any)
	if status != http.StatusOK || pk["challenge"] == nil || pk["rpId"] != "localhost" || pk["userVerification"] != "preferred" {
		t.Fatalf("sign-in begin: %d %v", status, body)
	}
	if _, ok := pk["allowCredentials"]; ok {
		t.Error("a username-less sign-in lists credentials")
	}
	if h := b.get(srv.URL + "/login").Header.Get("Content-Security-Policy"); !strings.Contains(h, "script-src 'self'") || strings.Contains(h, "unsafe-inline") {
		t.Errorf("CSP: %s", h)
	}

	// A forged answer is refused and the challenge cannot be tried again.
	forged := `{"credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AAAA","signature":"AAAA","userHandle":"dXNlcg"}}}`
	if status, body := passkeyPost(t, b, srv.URL+"/login/passkey/finish", csrf, forged); status != http.StatusUnauthorized {
		t.Errorf("forged assertion: %d %v", status, body)
	}
	if status, body := passkeyPost(t, b, srv.URL+"/login/passkey/finish", csrf, forged); status != http.StatusBadRequest || !strings.Contains(body["message"].(string), "expired") {
		t.Errorf("second answer to a used challenge: %d %v", status, body)
	}
	for what, raw := range map[string]string{"not JSON": `<html>`, "oversized": `{"credential":"` + strings.Repeat("a", 40<<10) + `"}`} {
		passkeyPost(t, b, srv.URL+"/login/passkey/begin", csrf, `{}`)
		if status, body := passkeyPost(t, b, srv.URL+"/login/passkey/finish", csrf, raw); status != http.StatusBadRequest {
			t.Errorf("%s answer: %d %v", what, status, body)
		}
	}
	if r := b.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Error("a refused passkey answer signed the browser in")
	}
	// The second-factor endpoints need a pending password step.
	if status, _ := passkeyPost(t, b, srv.URL+"/login/2fa/passkey/begin", csrf, `{}`); status != http.StatusUnauthorized {
		t.Errorf("2FA begin without a password step: %d", status)
	}
	// Registration needs a session.
	if status, _ := passkeyPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, `{}`); status != http.StatusUnauthorized {
		t.Errorf("register signed out: %d", status)
	}
	if n := len(srv.passkeys(alice.ID)); n != 0 {
		t.Errorf("%d passkeys stored", n)
	}

	// German pages get German messages from the script's endpoints too.
	de := newBrowser(t)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login/passkey/finish", strings.NewReader(`{}`))
	req.Header.Set("X-CSRF-Token", csrfOf(t, de, srv.URL+"/login"))
	req.Header.Set("Accept-Language", "de")
	if p := de.do(req); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "Diese Passkey-Anfrage ist abgelaufen") {
		t.Errorf("German message: %d %s", p.Status, p.Body)
	}
}

func TestPasskeyRegisterAndManage(t *testing.T) {
	clock := testclock.At(time.Now())
	srv := startServerWith(t, serverOptions{localhost: true, now: clock.Now})
	alice := srv.createUser("alice", false)
	srv.createUser("bob", false)
	origin := srv.URL
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")

	p := b.get(srv.URL + "/security/passkeys")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="passkey-register"`) || !strings.Contains(p.Body, `src="/static/webauthn.js"`) ||
		strings.Contains(p.Body, `name="confirm_password"`) || !strings.Contains(p.Body, "You have no passkeys yet.") {
		t.Fatalf("passkeys page right after sign-in: %d %s", p.Status, truncateBody(p.Body))
	}
	csrf := formFields(p.Body).Get("csrf_token")

	// Names are checked before the authenticator is asked.
	if status, body := passkeyPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, map[string]string{"name": strings.Repeat("n", 65)}); status != http.StatusBadRequest || body["field"] != "name" {
		t.Errorf("long name: %d %v", status, body)
	}

	laptop := newPasskeyDevice(t, origin)
	registerPasskey(t, srv, b, laptop, "Laptop")
	clock.Add(time.Second)
	phone := newPasskeyDevice(t, origin)
	registerPasskey(t, srv, b, phone, "")
	names := map[string]string{}
	for _, c := range srv.passkeys(alice.ID) {
		names[c.Name] = c.ID
	}
	if len(names) != 2 || names["Laptop"] == "" || names["Passkey 2"] == "" {
		t.Fatalf("stored passkeys: %v", names)
	}
	p = b.get(srv.URL + "/security/passkeys?done=added")
	if !strings.Contains(p.Body, "Your passkey was added.") || !strings.Contains(p.Body, `value="Laptop"`) || !strings.Contains(p.Body, "Never") {
		t.Errorf("list after adding: %s", truncateBody(p.Body))
	}

	// The ceremony is bound to the browser that began it: another signed-in
	// browser cannot finish it, and it is used up once finished.
	csrf = formFields(p.Body).Get("csrf_token")
	_, begin := passkeyPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, `{}`)
	other := newBrowser(t)
	signInPortal(t, srv, other, "bob")
	otherCSRF := csrfOf(t, other, srv.URL+"/security/passkeys")
	stray := newPasskeyDevice(t, origin)
	if status, body := passkeyPost(t, other, srv.URL+"/security/passkeys/register/finish", otherCSRF, map[string]any{"credential": stray.create(begin)}); status != http.StatusBadRequest {
		t.Errorf("finish in another browser: %d %v", status, body)
	}
	if status, _ := passkeyPost(t, b, srv.URL+"/security/passkeys/register/finish", csrf, map[string]any{"credential": stray.create(begin)}); status != http.StatusOK {
		t.Errorf("finish in the right browser: %d", status)
	}
	if status, body := passkeyPost(t, b, srv.URL+"/security/passkeys/register/finish", csrf, map[string]any{"credential": newPasskeyDevice(t, origin).create(begin)}); status != http.StatusBadRequest {
		t.Errorf("finish twice: %d %v", status, body)
	}
	// The same authenticator again is refused (it is also excluded).
	_, begin = passkeyPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, `{}`)
	if excl, _ := laptop.publicKey(begin)["excludeCredentials"].([]any); len(excl) != 3 {
		t.Errorf("exclude list: %v", excl)
	}
	if status, body := passkeyPost(t, b, srv.URL+"/security/passkeys/register/finish", csrf, map[string]any{"credential": laptop.create(begin)}); status != http.StatusConflict {
		t.Errorf("same authenticator twice: %d %v", status, body)
	}
	if n := len(srv.passkeys(alice.ID)); n != 3 {
		t.Fatalf("%d passkeys, want 3", n)
	}

	// Rename: CSRF, clashes (the typed name stays in the form), success.
	id := names["Passkey 2"]
	page := b.get(srv.URL + "/security/passkeys")
	if r := b.post(srv.URL+"/security/passkeys/rename", url.Values{"id": {id}, "name": {"Phone"}}); r.Status != http.StatusForbidden {
		t.Errorf("rename without CSRF: %d", r.Status)
	}
	r := postPage(b, page, "/security/passkeys/rename", url.Values{"id": {id}, "name": {"laptop"}})
	if r.Status != http.StatusConflict || !strings.Contains(r.Body, "You already have a passkey with this name.") || !strings.Contains(r.Body, `value="laptop"`) {
		t.Errorf("rename to a taken name: %d %s", r.Status, truncateBody(r.Body))
	}
	if r := postPage(b, page, "/security/passkeys/rename", url.Values{"id": {"nope"}, "name": {"x"}}); r.Status != http.StatusNotFound {
		t.Errorf("rename an unknown passkey: %d", r.Status)
	}
	if r := postPage(b, page, "/security/passkeys/rename", url.Values{"id": {id}, "name": {"Phone"}}); r.Status != http.StatusOK || !strings.Contains(r.Body, "The passkey was renamed.") {
		t.Errorf("rename: %d %s", r.Status, truncateBody(r.Body))
	}
	if c, _ := srv.Main.Store.GetCredential(context.Background(), alice.ID, id); c.Name != "Phone" {
		t.Errorf("renamed to %q", c.Name)
	}

	// Ten minutes on, the sign-in is no longer recent: adding and removing
	// need the password.
	clock.Add(10 * time.Minute)
	page = b.get(srv.URL + "/security/passkeys")
	if !strings.Contains(page.Body, `name="confirm_password"`) {
		t.Fatalf("no password field without a recent sign-in: %s", truncateBody(page.Body))
	}
	csrf = formFields(page.Body).Get("csrf_token")
	if status, body := passkeyPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, `{}`); status != http.StatusBadRequest || body["field"] != "confirm_password" {
		t.Errorf("add without the password: %d %v", status, body)
	}
	if status, body := passkeyPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, map[string]string{"confirm_password": "wrong password!"}); status != http.StatusBadRequest || body["field"] != "confirm_password" {
		t.Errorf("add with a wrong password: %d %v", status, body)
	}
	if status, body := passkeyPost(t, b, srv.URL+"/security/passkeys/register/begin", csrf, map[string]string{"confirm_password": testPassword}); status != http.StatusOK {
		t.Errorf("add with the password: %d %v", status, body)
	}
	for _, pw := range []string{"", "wrong password!"} {
		if r := postPage(b, page, "/security/passkeys/remove", url.Values{"id": {id}, "confirm_password": {pw}, "confirm": {"yes"}}); r.Status != http.StatusBadRequest {
			t.Errorf("remove with password %q: %d", pw, r.Status)
		}
	}
	if n := len(srv.passkeys(alice.ID)); n != 3 {
		t.Fatalf("refused removals removed passkeys: %d left", n)
	}
	if r := postPage(b, page, "/security/passkeys/remove", url.Values{"id": {id}, "confirm_password": {testPassword}, "confirm": {"yes"}}); r.Status != http.StatusOK || !strings.Contains(r.Body, "The passkey was removed.") {
		t.Errorf("remove: %d %s", r.Status, truncateBody(r.Body))
	}
	if r := postPage(b, page, "/security/passkeys/remove", url.Values{"id": {id}, "confirm_password": {testPassword}, "confirm": {"yes"}}); r.Status != http.StatusNotFound {
		t.Errorf("remove twice: %d", r.Status)
	}
	if ks := srv.passkeys(alice.ID); len(ks) != 2 || slices.ContainsFunc(ks, func(c storage.Credential) bool { return c.ID == id }) {
		t.Errorf("after removal: %+v", ks)
	}
}

func TestPasskeySignInThroughCodeFlow(t *testing.T) {
	srv, alice, key := aliceWithPasskey(t)

	app := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki"})
	verifier, challenge := pkce()
	b := newBrowser(t)
	p := app.authorize(b, "st-pk", oauthCodeChallenge(challenge)...)
	if !isLoginPage(p) || !strings.Contains(p.Body, `id="passkey-signin"`) || !strings.Contains(p.Body, `autocomplete="username webauthn"`) {
		t.Fatalf("login page: %s", truncateBody(p.Body))
	}
	loginURL := p.URL.String()

	// Another browser cannot finish this browser's authorization request.
	thief := newBrowser(t)
	thiefCSRF := csrfOf(t, thief, srv.URL+"/login")
	_, opts := passkeyPost(t, thief, srv.URL+"/login/passkey/begin", thiefCSRF, `{}`)
	if status, body := passkeyPost(t, thief, srv.URL+"/login/passkey/finish", thiefCSRF, map[string]any{"authRequestID": formFields(p.Body).Get("authRequestID"), "credential": key.get(opts)}); status != http.StatusNotFound {
		t.Errorf("finish another browser's request: %d %v", status, body)
	}
	if r := thief.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Error("the other browser got a session")
	}

	status, done := passkeySignIn(t, b, loginURL, key)
	next, _ := done["redirect"].(string)
	if status != http.StatusOK || !strings.HasPrefix(next, "/login?authRequestID=") {
		t.Fatalf("passkey finish: %d %v", status, done)
	}
	p = b.get(srv.URL + next)
	if isConsentPage(p) {
		p = b.submit(p, "/consent", url.Values{"decision": {"allow"}})
	}
	res := landed(t, p, app.RedirectURI)
	if res.Code == "" || res.State != "st-pk" {
		t.Fatalf("app got %+v", res)
	}
	tok, err := app.exchange(res.Code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	claims := idTokenClaims(t, app, tok)
	amr, _ := claims["amr"].([]any)
	if claims["sub"] != alice.ID || !slices.Equal(amr, []any{"hwk", "mfa"}) {
		t.Fatalf("ID token after a passkey sign-in: sub %v amr %v", claims["sub"], claims["amr"])
	}
	if c := srv.passkeys(alice.ID)[0]; c.LastUsedAt.IsZero() || c.LastIP != "127.0.0.1" {
		t.Errorf("passkey use not noted: %+v", c)
	}
	hist, _ := srv.Main.Store.ListLoginAttempts(context.Background(), alice.ID, 1)
	if len(hist) != 1 || !hist[0].Success || hist[0].Method != "hwk" {
		t.Errorf("history: %+v", hist)
	}
}

func TestPasskeySignInReturnAndRules(t *testing.T) {
	srv, alice, key := aliceWithPasskey(t)

	// Without an app: back to the page that asked, never to another site.
	for returnTo, want := range map[string]string{"/security/passkeys": "/security/passkeys", "https://evil.example/": "/", "//evil.example/x": "/"} {
		b := newBrowser(t)
		status, done := passkeySignIn(t, b, srv.URL+"/login?return_to="+url.QueryEscape(returnTo), key)
		if status != http.StatusOK || done["redirect"] != want {
			t.Errorf("return_to %q: %d %v", returnTo, status, done)
		}
		if p := b.get(srv.URL + "/security/passkeys"); p.Status != http.StatusOK || isLoginPage(p) {
			t.Errorf("not signed in after the passkey: %d", p.Status)
		}
	}

	// The IP allowlist and blocks apply to passkeys too; the attempt is
	// recorded with the reason and no session starts.
	ctx := context.Background()
	refuse := func(what, reason string, change func(*storage.User)) {
		t.Helper()
		if _, err := srv.Main.Store.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) { change(&u); return u, nil }); err != nil {
			t.Fatal(err)
		}
		b := newBrowser(t)
		if status, body := passkeySignIn(t, b, srv.URL+"/login", key); status != http.StatusForbidden {
			t.Errorf("%s: %d %v", what, status, body)
		}
		if p := b.get(srv.URL + "/profile"); !isLoginPage(p) {
			t.Errorf("%s: signed in anyway", what)
		}
		if h, _ := srv.Main.Store.ListLoginAttempts(ctx, alice.ID, 1); len(h) != 1 || h[0].Success || h[0].Reason != reason || h[0].Method != "passkey" {
			t.Errorf("%s: history %+v", what, h)
		}
	}
	refuse("outside the allowlist", "network not allowed", func(u *storage.User) { u.AllowedNetworks = []string{"10.0.0.0/8"} })
	refuse("blocked", "account disabled", func(u *storage.User) { u.AllowedNetworks, u.Blocked = nil, true })
}

func TestPasskeyAsSecondFactorHTTP(t *testing.T) {
	srv, alice, key := aliceWithPasskey(t)

	app := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki"})
	verifier, challenge := pkce()
	b := newBrowser(t)
	p := app.authorize(b, "st-2fa", oauthCodeChallenge(challenge)...)
	p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if !strings.HasSuffix(p.URL.Path, "/login/2fa") || !strings.Contains(p.Body, `id="passkey-2fa"`) {
		t.Fatalf("a user with a passkey is not asked for it: %s %s", p.URL, truncateBody(p.Body))
	}
	csrf := formFields(p.Body).Get("csrf_token")
	// The page names the sign-in that owes the second factor; its script
	// sends that along (webauthn.js).
	pending := map[string]any{"authRequestID": formFields(p.Body).Get("authRequestID")}
	if pending["authRequestID"] == "" || !strings.Contains(p.Body, `data-request="`+pending["authRequestID"].(string)+`"`) {
		t.Fatalf("the second-step page does not name its sign-in: %s", truncateBody(p.Body))
	}

	// Another user's passkey does not count.
	srv.createUser("bob", false)
	bobKey := newPasskeyDevice(t, srv.URL)
	bobBrowser := newBrowser(t)
	signInPortal(t, srv, bobBrowser, "bob")
	registerPasskey(t, srv, bobBrowser, bobKey, "Bob's")
	_, opts := passkeyPost(t, b, srv.URL+"/login/2fa/passkey/begin", csrf, pending)
	allowed, _ := key.publicKey(opts)["allowCredentials"].([]any)
	if len(allowed) != 1 {
		t.Errorf("allowed credentials: %v", allowed)
	}
	if status, body := passkeyPost(t, b, srv.URL+"/login/2fa/passkey/finish", csrf, map[string]any{"authRequestID": pending["authRequestID"], "credential": bobKey.get(opts)}); status != http.StatusUnauthorized {
		t.Errorf("bob's passkey for alice: %d %v", status, body)
	}

	_, opts = passkeyPost(t, b, srv.URL+"/login/2fa/passkey/begin", csrf, pending)
	status, done := passkeyPost(t, b, srv.URL+"/login/2fa/passkey/finish", csrf, map[string]any{"authRequestID": pending["authRequestID"], "remember_device": true, "credential": key.get(opts)})
	next, _ := done["redirect"].(string)
	if status != http.StatusOK || !strings.HasPrefix(next, "/login?authRequestID=") {
		t.Fatalf("second factor finish: %d %v", status, done)
	}
	p = b.get(srv.URL + next)
	if isConsentPage(p) {
		p = b.submit(p, "/consent", url.Values{"decision": {"allow"}})
	}
	res := landed(t, p, app.RedirectURI)
	tok, err := app.exchange(res.Code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	claims := idTokenClaims(t, app, tok)
	if amr, _ := claims["amr"].([]any); !slices.Equal(amr, []any{"pwd", "hwk", "mfa"}) {
		t.Errorf("amr after password and passkey: %v", claims["amr"])
	}
	// remember_device remembered this browser.
	devices, _ := srv.Main.Store.ListCredentials(context.Background(), alice.ID, storage.KindTrustedDevice)
	if len(devices) != 1 {
		t.Errorf("%d remembered devices", len(devices))
	}
	// The pending step is over: no more second-factor ceremonies here.
	csrf = csrfOf(t, b, srv.URL+"/security/passkeys")
	if status, _ := passkeyPost(t, b, srv.URL+"/login/2fa/passkey/begin", csrf, pending); status != http.StatusUnauthorized {
		t.Errorf("2FA begin after finishing: %d", status)
	}
}

// oauthCodeChallenge is the PKCE parameters for an authorization request.
func oauthCodeChallenge(challenge string) []oauth2.AuthCodeOption {
	return []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"),
	}
}
