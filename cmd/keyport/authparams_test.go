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
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
)

// The parameters of an authorization request that shape the sign-in (OIDC
// Core §3.1.2.1, §5.5): acr_values and the claims parameter's acr, prompt,
// max_age, claims, login_hint and ui_locales, each through a real relying
// party (go-oidc and x/oauth2) and the portal's pages. One server for all:
// every case uses users and apps of its own.
func TestAuthRequestParameters(t *testing.T) {
	srv := startServerWith(t, serverOptions{localhost: true}) // passkeys want localhost
	app := srv.createClient(newConfidentialClient("params"))
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}

	flow, password, idToken, appError := paramFlow, passwordStep, flowIDToken, flowError

	t.Run("acr step-up to a second factor", func(t *testing.T) {
		srv.createUser("tom", false)
		secret, recovery := withTOTP(t, srv, "tom")
		b := newBrowser(t)
		// A first sign-in that remembers the device.
		p, v := flow(t, b, app, "remember", nil)
		p = password(t, b, p, "tom")
		if p.URL.Path != "/login/2fa" {
			t.Fatalf("no second step: %s", p.URL)
		}
		p = b.submit(p, "/login/2fa", url.Values{"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}, "remember_device": {"1"}})
		claims, _ := idToken(t, app, p, "remember", v)
		if claims["acr"] != account.ACRSecondFactor {
			t.Fatalf("acr after two factors: %v", claims["acr"])
		}
		// On the remembered device a new sign-in takes the password alone.
		p, v = flow(t, b, app, "one-factor", map[string]string{"prompt": "login"})
		p = password(t, b, p, "tom")
		claims, _ = idToken(t, app, p, "one-factor", v)
		if claims["acr"] != account.ACRPassword || slices.Contains(claims["amr"].([]any), any("mfa")) {
			t.Fatalf("one-factor sign-in on a remembered device: acr %v amr %v", claims["acr"], claims["amr"])
		}
		// prompt=none cannot step up: the one-factor session does not
		// answer a request for two.
		p, _ = flow(t, b, app, "none-2fa", map[string]string{"prompt": "none", "acr_values": account.ACRSecondFactor})
		appError(t, p, app, "none-2fa", "login_required")
		// The app asks for two factors: the session of one is not reused,
		// the sign-in page names the account, and the remembered device
		// does not stand in for the second factor.
		p, v = flow(t, b, app, "step-up", map[string]string{"acr_values": account.ACRSecondFactor + " " + account.ACRPassword})
		if !isLoginPage(p) || formValue(p.Body, "login") != "tom" {
			t.Fatalf("a session of one factor was reused for acr 2fa, or the sign-in page does not name it: %d %s login=%q", p.Status, p.URL, formValue(p.Body, "login"))
		}
		p = password(t, b, p, "tom")
		if p.URL.Path != "/login/2fa" {
			t.Fatalf("the remembered device skipped the second factor the app asked for: %d %s", p.Status, p.URL)
		}
		p = b.submit(p, "/login/2fa", url.Values{"recovery_code": {recovery[0]}}) // the app code of this period is spent
		claims, _ = idToken(t, app, p, "step-up", v)
		if claims["acr"] != account.ACRSecondFactor || !slices.Contains(claims["amr"].([]any), any("mfa")) {
			t.Fatalf("after the step-up: acr %v amr %v", claims["acr"], claims["amr"])
		}
		// Now the session of two factors answers a request for them.
		p, v = flow(t, b, app, "reuse-2fa", map[string]string{"acr_values": account.ACRSecondFactor})
		claims, _ = idToken(t, app, p, "reuse-2fa", v)
		if claims["acr"] != account.ACRSecondFactor {
			t.Fatalf("reused two-factor session: acr %v", claims["acr"])
		}
	})

	t.Run("essential acr that cannot be met", func(t *testing.T) {
		srv.createUser("una", false) // no second factor
		b := newBrowser(t)
		essential2FA := `{"id_token":{"acr":{"essential":true,"values":["` + account.ACRSecondFactor + `"]}}}`
		p, _ := flow(t, b, app, "unmet", map[string]string{"claims": essential2FA})
		p = password(t, b, p, "una")
		appError(t, p, app, "unmet", "unmet_authentication_requirements")
		// Voluntary: the sign-in goes on, with the class it met.
		b = newBrowser(t)
		p, v := flow(t, b, app, "voluntary", map[string]string{"acr_values": account.ACRSecondFactor})
		p = password(t, b, p, "una")
		claims, _ := idToken(t, app, p, "voluntary", v)
		if claims["acr"] != account.ACRPassword {
			t.Fatalf("a voluntary acr the user cannot meet: acr %v, want the one met", claims["acr"])
		}
		// An essential class Keyport does not offer fails at once.
		p, _ = flow(t, newBrowser(t), app, "unknown", map[string]string{"claims": `{"id_token":{"acr":{"essential":true,"value":"urn:example:loa:4"}}}`})
		appError(t, p, app, "unknown", "unmet_authentication_requirements")
	})

	t.Run("passkey class", func(t *testing.T) {
		alice := srv.createUser("alice", false)
		key := newPasskeyDevice(t, srv.URL)
		setup := newBrowser(t)
		signInPortal(t, srv, setup, "alice")
		registerPasskey(t, srv, setup, key, "Laptop")

		b := newBrowser(t)
		essential := `{"id_token":{"acr":{"essential":true,"values":["` + account.ACRPasskey + `"]}}}`
		p, v := flow(t, b, app, "passkey", map[string]string{"claims": essential})
		if !strings.Contains(p.Body, "sign in with a passkey") {
			t.Errorf("the sign-in page does not ask for a passkey:\n%s", truncateBody(p.Body))
		}
		status, done := passkeySignIn(t, b, p.URL.String(), key)
		next, _ := done["redirect"].(string)
		if status != http.StatusOK || next == "" {
			t.Fatalf("passkey sign-in: %d %v", status, done)
		}
		claims, _ := idToken(t, app, b.get(srv.URL+next), "passkey", v)
		if claims["acr"] != account.ACRPasskey || claims["sub"] != alice.ID {
			t.Fatalf("passkey sign-in: acr %v", claims["acr"])
		}
		// The passkey session meets a request for two factors, and the
		// ID token names the class the app asked for.
		p, v = flow(t, b, app, "passkey-meets-2fa", map[string]string{"acr_values": account.ACRSecondFactor})
		claims, _ = idToken(t, app, p, "passkey-meets-2fa", v)
		if claims["acr"] != account.ACRSecondFactor {
			t.Fatalf("acr for a passkey session asked for 2fa: %v", claims["acr"])
		}
		// A password and a second factor do not make the passkey class:
		// an essential request for it fails rather than passing them off
		// as one.
		d := newBrowser(t)
		p, _ = flow(t, d, app, "passkey-by-password", map[string]string{"claims": essential})
		p = password(t, d, p, "alice")
		if p.URL.Path != "/login/2fa" {
			t.Fatalf("alice's password step: %s", p.URL)
		}
		appError(t, passkeySecondStep(t, srv, d, p, key), app, "passkey-by-password", "unmet_authentication_requirements")
	})

	t.Run("prompt", func(t *testing.T) {
		srv.createUser("pia", false)
		b := newBrowser(t)
		p, v := flow(t, b, app, "first", nil)
		idToken(t, app, password(t, b, p, "pia"), "first", v)
		for _, prompt := range []string{"none login", "none consent", "none select_account"} {
			p, _ = flow(t, b, app, "combined", map[string]string{"prompt": prompt})
			appError(t, p, app, "combined", "invalid_request")
		}
		// select_account: one session per browser, so a new sign-in that
		// offers the current account.
		p, v = flow(t, b, app, "select", map[string]string{"prompt": "select_account"})
		if !isLoginPage(p) || formValue(p.Body, "login") != "pia" {
			t.Fatalf("prompt=select_account reused the session or named no account: %d %s", p.Status, p.URL)
		}
		claims, _ := idToken(t, app, password(t, b, p, "pia"), "select", v)
		if claims["auth_time"] == nil {
			t.Fatal("no auth_time")
		}
		// Without a session prompt=none is login_required; with consent
		// missing, consent_required.
		p, _ = flow(t, newBrowser(t), app, "none-nobody", map[string]string{"prompt": "none"})
		appError(t, p, app, "none-nobody", "login_required")
		consentApp := srv.createClient(account.NewClient{ID: "asks-consent", Name: "Asks Consent"})
		p, _ = flow(t, b, consentApp, "none-consent", map[string]string{"prompt": "none"})
		appError(t, p, consentApp, "none-consent", "consent_required")
	})

	t.Run("max_age", func(t *testing.T) {
		srv.createUser("max", false)
		b := newBrowser(t)
		p, v := flow(t, b, app, "first", nil)
		first, _ := idToken(t, app, password(t, b, p, "max"), "first", v)
		// A session within max_age answers, and the ID token says when
		// the person signed in (§3.1.2.1: REQUIRED with max_age).
		p, v = flow(t, b, app, "recent", map[string]string{"max_age": "3600"})
		claims, _ := idToken(t, app, p, "recent", v)
		if claims["auth_time"] == nil || claims["auth_time"] != first["auth_time"] {
			t.Fatalf("max_age=3600: auth_time %v, first sign-in %v", claims["auth_time"], first["auth_time"])
		}
		// max_age=0 is prompt=login: a new sign-in, and a new auth_time.
		time.Sleep(1100 * time.Millisecond) // auth_time counts seconds
		p, v = flow(t, b, app, "zero", map[string]string{"max_age": "0"})
		if !isLoginPage(p) {
			t.Fatalf("max_age=0 reused the session: %d %s", p.Status, p.URL)
		}
		claims, _ = idToken(t, app, password(t, b, p, "max"), "zero", v)
		at, _ := claims["auth_time"].(float64)
		was, _ := first["auth_time"].(float64)
		if at <= was {
			t.Fatalf("max_age=0: auth_time %v, not after the first sign-in's %v", at, was)
		}
		// A max_age beyond what a time.Duration holds (300 years) is no
		// limit, not a wrapped one: the session answers, even to
		// prompt=none.
		p, v = flow(t, b, app, "centuries", map[string]string{"max_age": "10000000000", "prompt": "none"})
		idToken(t, app, p, "centuries", v)
		// A max_age that is no number of seconds is the app's mistake,
		// told to the app at its redirect URI (RFC 6749 §4.1.2.1), not
		// an error page for the person.
		for _, bad := range []string{"abc", "-1", "1.5", "99999999999999999999"} {
			p, _ = flow(t, b, app, "bad-max-age", map[string]string{"max_age": bad})
			appError(t, p, app, "bad-max-age", "invalid_request")
		}
	})

	t.Run("claims parameter", func(t *testing.T) {
		cleo := srv.createUser("cleo", false)
		b := newBrowser(t)
		for _, bad := range []string{`{"id_token":`, `[]`, `"x"`, `{"userinfo":[]}`, `{"id_token":{"acr":{"values":"x"}}}`, `{"userinfo":{"email":` + strings.Repeat(" ", 4100) + `null}}`} {
			p, _ := flow(t, b, app, "bad-claims", map[string]string{"claims": bad})
			appError(t, p, app, "bad-claims", "invalid_request")
		}
		// scope=openid alone, with email in the ID token and
		// preferred_username at userinfo: each where it was asked for.
		asked := `{"id_token":{"email":{"essential":true},"nickname":null},"userinfo":{"preferred_username":null},"x-unknown":1}`
		p, v := flow(t, b, app, "claims", map[string]string{"claims": asked})
		claims, tok := idToken(t, app, password(t, b, p, "cleo"), "claims", v)
		if claims["email"] != "cleo@example.com" || claims["preferred_username"] != nil || claims["name"] != nil {
			t.Fatalf("ID token claims: %v", claims)
		}
		_, _, info := srv.userinfo(tok.AccessToken)
		if info["preferred_username"] != "cleo" || info["email"] != nil {
			t.Fatalf("userinfo: %v", info)
		}
		// A refreshed ID token keeps the claims asked for.
		refreshed, err := app.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatalf("refresh: %v", err)
		}
		if again := idTokenClaims(t, app, refreshed); again["email"] != "cleo@example.com" || again["acr"] != account.ACRPassword || again["auth_time"] != claims["auth_time"] {
			t.Fatalf("refreshed ID token: %v", again)
		}
		if _, _, info := srv.userinfo(refreshed.AccessToken); info["preferred_username"] != "cleo" {
			t.Fatalf("userinfo with a refreshed access token: %v", info)
		}
		// sub with a value: only that user. The session of cleo answers
		// for her; for someone else it is a new sign-in, and signing in as
		// cleo then gets no ID token.
		p, v = flow(t, b, app, "sub-cleo", map[string]string{"claims": `{"id_token":{"sub":{"value":"` + cleo.ID + `"}}}`})
		if claims, _ := idToken(t, app, p, "sub-cleo", v); claims["sub"] != cleo.ID {
			t.Fatalf("sub asked for: %v", claims["sub"])
		}
		other := srv.createUser("otto", false)
		p, _ = flow(t, b, app, "sub-otto", map[string]string{"claims": `{"id_token":{"sub":{"value":"` + other.ID + `"}}}`})
		appError(t, password(t, b, p, "cleo"), app, "sub-otto", "access_denied")
		p, _ = flow(t, b, app, "sub-bad", map[string]string{"claims": `{"id_token":{"sub":{"value":1}}}`})
		appError(t, p, app, "sub-bad", "invalid_request")
		// An app limited to the profile scope gets no email however it
		// asks.
		limited := srv.createClient(account.NewClient{ID: "limited", Name: "Limited", SkipConsent: true, AllowedScopes: []string{"openid", "profile"}})
		p, v = flow(t, b, limited, "limited", map[string]string{"claims": `{"id_token":{"email":null,"preferred_username":null}}`})
		claims, _ = idToken(t, limited, p, "limited", v)
		if claims["email"] != nil || claims["preferred_username"] != "cleo" {
			t.Fatalf("limited app: %v", claims)
		}
		// An app that asks for consent asks for the claims' scopes too.
		consentApp := srv.createClient(account.NewClient{ID: "claims-consent", Name: "Claims Consent"})
		p, _ = flow(t, b, consentApp, "consent", map[string]string{"claims": `{"userinfo":{"phone_number":null}}`})
		if !isConsentPage(p) || !strings.Contains(p.Body, "phone") {
			t.Fatalf("consent page for a claim of the phone scope: %d\n%s", p.Status, truncateBody(p.Body))
		}
	})

	t.Run("login_hint", func(t *testing.T) {
		b := newBrowser(t)
		hint := `"><script>alert(1)</script>`
		p, _ := flow(t, b, app, "hint", map[string]string{"login_hint": hint})
		if !isLoginPage(p) || formValue(p.Body, "login") != hint || strings.Contains(p.Body, "<script>alert") {
			t.Fatalf("login_hint not filled in, or not escaped: %q\n%s", formValue(p.Body, "login"), truncateBody(p.Body))
		}
		p, _ = flow(t, b, app, "long-hint", map[string]string{"login_hint": strings.Repeat("h", 513)})
		appError(t, p, app, "long-hint", "invalid_request")
	})

	t.Run("pairwise sub as login_hint and claims sub", func(t *testing.T) {
		// A pairwise app (OIDC Core §8) knows the person only by its
		// pairwise sub, and names them by it: as login_hint, or as the
		// claims parameter's sub. Each app's default redirect URI is on
		// loopback, so each is a sector of its own.
		pw := srv.createClient(account.NewClient{ID: "pw-hint", Name: "Pairwise Hint", SkipConsent: true, SubjectType: account.SubjectPairwise})
		other := srv.createClient(account.NewClient{ID: "pw-other", Name: "Pairwise Other", SkipConsent: true, SubjectType: account.SubjectPairwise})
		petra := srv.createUser("petra", false)
		paul := srv.createUser("paul", false)
		sub := func(b *browser, app *testClient, state, login string) string {
			t.Helper()
			p, v := flow(t, b, app, state, nil)
			if login != "" {
				p = password(t, b, p, login)
			}
			claims, _ := idToken(t, app, p, state, v)
			s, _ := claims["sub"].(string)
			if s == "" || s == petra.ID {
				t.Fatalf("%s: pairwise sub %q", state, s)
			}
			return s
		}
		b := newBrowser(t)
		petraSub := sub(b, pw, "first", "petra")
		otherAppSub := sub(b, other, "other-app", "") // the session answers
		paulSub := sub(newBrowser(t), pw, "paul", "paul")

		// Its own pairwise sub names the person signed in: the session
		// answers, also to prompt=none.
		p, v := flow(t, b, pw, "hint-sub", map[string]string{"login_hint": petraSub})
		if claims, _ := idToken(t, pw, p, "hint-sub", v); claims["sub"] != petraSub {
			t.Fatalf("login_hint=pairwise sub: sub %v, want %s", claims["sub"], petraSub)
		}
		p, v = flow(t, b, pw, "hint-sub-none", map[string]string{"login_hint": petraSub, "prompt": "none"})
		idToken(t, pw, p, "hint-sub-none", v)
		// The claims parameter's sub, alone and with the hint.
		p, v = flow(t, b, pw, "claims-sub", map[string]string{"claims": `{"id_token":{"sub":{"value":"` + petraSub + `"}}}`, "login_hint": petraSub})
		if claims, _ := idToken(t, pw, p, "claims-sub", v); claims["sub"] != petraSub {
			t.Fatalf("claims sub=pairwise sub: sub %v, want %s", claims["sub"], petraSub)
		}
		p, v = flow(t, b, pw, "claims-sub-none", map[string]string{"claims": `{"id_token":{"sub":{"value":"` + petraSub + `"}}}`, "prompt": "none"})
		idToken(t, pw, p, "claims-sub-none", v)

		// Someone else's pairwise sub, another app's (sector's) value for
		// the same person, or a forged one: a new sign-in. The page names
		// nobody: not the account the sub names (whoever holds a sub
		// must not learn whose it is), and no pairwise sub as a username.
		forged := []byte(petraSub)
		forged[5] ^= 3 // another nonce, or no base64url: no sub Keyport gave
		for _, hint := range []string{paulSub, otherAppSub, string(forged)} {
			p, _ = flow(t, b, pw, "hint-other", map[string]string{"login_hint": hint})
			if !isLoginPage(p) {
				t.Fatalf("login_hint %q (not this app's sub of the person signed in) reused the session: %d %s", hint, p.Status, p.URL)
			}
			if login := formValue(p.Body, "login"); login == "paul" || login == "petra" {
				t.Fatalf("login_hint %q: the sign-in page offers %q", hint, login)
			}
			if strings.Contains(p.Body, "paul") {
				t.Fatalf("login_hint %q: the sign-in page names the account behind it", hint)
			}
			p, _ = flow(t, b, pw, "hint-other-none", map[string]string{"login_hint": hint, "prompt": "none"})
			appError(t, p, pw, "hint-other-none", "login_required")
		}
		// paul's sub: the sign-in page is empty, and signing in as paul
		// answers with his sub.
		p, v = flow(t, b, pw, "hint-paul", map[string]string{"login_hint": paulSub})
		if login := formValue(p.Body, "login"); login != "" {
			t.Fatalf("login_hint of another person's pairwise sub: the sign-in page offers %q", login)
		}
		if claims, _ := idToken(t, pw, password(t, b, p, "paul"), "hint-paul", v); claims["sub"] != paulSub {
			t.Fatalf("signed in as paul for his hint: sub %v, want %s", claims["sub"], paulSub)
		}
		// Another app's pairwise value as the claims parameter's sub is
		// no sub of this app's: refused at once.
		p, _ = flow(t, b, pw, "claims-other-app", map[string]string{"claims": `{"id_token":{"sub":{"value":"` + otherAppSub + `"}}}`})
		appError(t, p, pw, "claims-other-app", "access_denied")
		// The public user ID keeps fitting the person signed in, now
		// paul (a hint the app could only have from elsewhere, telling it
		// no more than a username hint does).
		p, v = flow(t, b, pw, "hint-user-id", map[string]string{"login_hint": paul.ID, "prompt": "none"})
		idToken(t, pw, p, "hint-user-id", v)
	})

	t.Run("ui_locales through every page", func(t *testing.T) {
		srv.createUser("uli", false)
		secret, _ := withTOTP(t, srv, "uli")
		consentApp := srv.createClient(account.NewClient{ID: "locales", Name: "Locales"})
		b := newBrowser(t)
		p, _ := flow(t, b, consentApp, "de", map[string]string{"ui_locales": "de-CH en"})
		if !strings.Contains(p.Body, `<html lang="de"`) {
			t.Fatalf("sign-in page not in German:\n%s", truncateBody(p.Body))
		}
		wrong := b.submit(p, "/login", url.Values{"login": {"uli"}, "password": {"not the password"}})
		if !strings.Contains(wrong.Body, `<html lang="de"`) {
			t.Errorf("the sign-in page after a wrong password is not in German")
		}
		p = password(t, b, wrong, "uli")
		if p.URL.Path != "/login/2fa" || !strings.Contains(p.Body, `<html lang="de"`) {
			t.Fatalf("second-factor page not in German: %s\n%s", p.URL, truncateBody(p.Body))
		}
		p = b.submit(p, "/login/2fa", url.Values{"code": {totpCode(t, secret, time.Now().Add(30*time.Second))}})
		if !isConsentPage(p) || !strings.Contains(p.Body, `<html lang="de"`) {
			t.Fatalf("consent page not in German: %d\n%s", p.Status, truncateBody(p.Body))
		}
	})

	t.Run("discovery", func(t *testing.T) {
		resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var d struct {
			Claims  bool     `json:"claims_parameter_supported"`
			ACR     []string `json:"acr_values_supported"`
			Prompts []string `json:"prompt_values_supported"`
			Locales []string `json:"ui_locales_supported"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&d); err != nil {
			t.Fatal(err)
		}
		if !d.Claims || !slices.Equal(d.ACR, account.ACRValues) || !slices.Contains(d.Prompts, "select_account") || !slices.Equal(d.Locales, []string{"en", "de"}) {
			t.Fatalf("discovery: %+v", d)
		}
	})
}

// formValue is the value of the input named name on the page ("" if none).
func formValue(body, name string) string {
	doc, _ := parseHTML(body) // never fails on a string; see parseHTML
	in, _ := doc.first("input", "name", name)
	return in.attr("value")
}

// paramFlow starts a code flow with PKCE and the parameters params in
// browser b and returns its first page and the verifier.
func paramFlow(t *testing.T, b *browser, rp *testClient, state string, params map[string]string) (page, string) {
	t.Helper()
	verifier, challenge := pkce()
	opts := []oauth2.AuthCodeOption{oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")}
	for k, v := range params {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}
	return rp.authorize(b, state, opts...), verifier
}

// passwordStep signs in as login on the sign-in page p.
func passwordStep(t *testing.T, b *browser, p page, login string) page {
	t.Helper()
	if !isLoginPage(p) {
		t.Fatalf("expected the sign-in page, got %d %s\n%s", p.Status, p.URL, truncateBody(p.Body))
	}
	return b.submit(p, "/login", url.Values{"login": {login}, "password": {testPassword}})
}

// flowIDToken exchanges the code the flow landed with and returns the ID
// token's claims.
func flowIDToken(t *testing.T, rp *testClient, p page, state, verifier string) (map[string]any, *oauth2.Token) {
	t.Helper()
	res := landed(t, p, rp.RedirectURI)
	if res.Error != "" || res.Code == "" || res.State != state {
		t.Fatalf("%s: the app got %v", state, res.Query)
	}
	tok, err := rp.exchange(res.Code, verifier)
	if err != nil {
		t.Fatalf("%s: exchange: %v", state, err)
	}
	return idTokenClaims(t, rp, tok), tok
}

// flowError: the app gets error want at its redirect URI, with its state
// and the issuer (RFC 9207), and no code.
func flowError(t *testing.T, p page, rp *testClient, state, want string) {
	t.Helper()
	res := landed(t, p, rp.RedirectURI)
	if res.Error != want || res.Code != "" || res.State != state || res.Iss != rp.srv.URL {
		t.Fatalf("%s: the app got %v, want error=%s with state and iss", state, res.Query, want)
	}
}

// passkeySecondStep answers the second-factor page p with a passkey of
// key and returns where the flow goes next.
func passkeySecondStep(t *testing.T, srv *testServer, b *browser, p page, key *passkeyDevice) page {
	t.Helper()
	pending := formFields(p.Body)
	status, opts := passkeyPost(t, b, srv.URL+"/login/2fa/passkey/begin", pending.Get("csrf_token"), map[string]any{"authRequestID": pending.Get("authRequestID")})
	if status != http.StatusOK {
		t.Fatalf("second-factor passkey begin: %d %v", status, opts)
	}
	status, done := passkeyPost(t, b, srv.URL+"/login/2fa/passkey/finish", pending.Get("csrf_token"), map[string]any{"authRequestID": pending.Get("authRequestID"), "credential": key.get(opts)})
	next, _ := done["redirect"].(string)
	if status != http.StatusOK || next == "" {
		t.Fatalf("second-factor passkey finish: %d %v", status, done)
	}
	return b.get(srv.URL + next)
}
