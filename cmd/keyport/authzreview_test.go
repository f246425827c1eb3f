package main

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
)

// A review of the authorization request's parameters in browser flows
// (OIDC Core §3.1.2.1, §3.1.2.6, §5.5): what TestAuthRequestParameters
// leaves out. One server for all; every case has users of its own.
func TestAuthRequestParametersReview(t *testing.T) {
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{localhost: true, now: clock.Now}) // passkeys want localhost
	app := srv.createClient(newConfidentialClient("review"))
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}

	flow, password, idToken, appError := paramFlow, passwordStep, flowIDToken, flowError

	t.Run("passkey without user verification", func(t *testing.T) {
		srv.createUser("vera", false)
		key := newPasskeyDevice(t, srv.URL)
		setup := newBrowser(t)
		signInPortal(t, srv, setup, "vera")
		registerPasskey(t, srv, setup, key, "Key")
		secret, _ := enrolTOTP(t, srv, setup)
		key.UV = false

		b := newBrowser(t)
		p, v := flow(t, b, app, "no-uv", map[string]string{"acr_values": account.ACRSecondFactor})
		status, done := passkeySignIn(t, b, p.URL.String(), key)
		next, _ := done["redirect"].(string)
		if status != http.StatusOK || next == "" {
			t.Fatalf("passkey sign-in: %d %v", status, done)
		}
		p = b.get(srv.URL + next)
		if p.URL.Path != "/login/2fa" {
			t.Fatalf("a passkey without user verification is one factor, but vera was not asked for her second: %d %s %s", p.Status, p.URL, p.Location)
		}
		p = b.submit(p, "/login/2fa", url.Values{"code": {totpCode(t, secret, clock.Now().Add(30*time.Second))}})
		claims, _ := idToken(t, app, p, "no-uv", v)
		amr, _ := claims["amr"].([]any)
		if claims["acr"] != account.ACRSecondFactor || !slices.Contains(amr, any("hwk")) || !slices.Contains(amr, any("mfa")) {
			t.Fatalf("acr %v amr %v", claims["acr"], claims["amr"])
		}
		// The same key again as the second factor is one kind of factor
		// twice: not two factors, and never the class of a passkey that
		// verified the person.
		d := newBrowser(t)
		essential := `{"id_token":{"acr":{"essential":true,"values":["` + account.ACRSecondFactor + `","` + account.ACRPasskey + `"]}}}`
		p, _ = flow(t, d, app, "key-twice", map[string]string{"claims": essential})
		status, done = passkeySignIn(t, d, p.URL.String(), key)
		next, _ = done["redirect"].(string)
		if p = d.get(srv.URL + next); status != http.StatusOK || p.URL.Path != "/login/2fa" {
			t.Fatalf("UV-less passkey, essential 2fa: %d %s", p.Status, p.URL)
		}
		appError(t, passkeySecondStep(t, srv, d, p, key), app, "key-twice", "unmet_authentication_requirements")
	})

	t.Run("prompt=none errors", func(t *testing.T) {
		srv.createUser("nora", false)
		b := newBrowser(t)
		p, v := flow(t, b, app, "first", nil)
		idToken(t, app, password(t, b, p, "nora"), "first", v)

		p, _ = flow(t, newBrowser(t), app, "nobody", map[string]string{"prompt": "none"})
		appError(t, p, app, "nobody", "login_required")
		// Within max_age the session answers; past it prompt=none cannot
		// sign in again.
		p, v = flow(t, b, app, "fresh", map[string]string{"prompt": "none", "max_age": "60"})
		if claims, _ := idToken(t, app, p, "fresh", v); claims["auth_time"] == nil {
			t.Fatalf("max_age without auth_time: %v", claims)
		}
		clock.Add(2 * time.Minute)
		p, _ = flow(t, b, app, "stale", map[string]string{"prompt": "none", "max_age": "60"})
		appError(t, p, app, "stale", "login_required")
		// An essential class the session does not meet and the user
		// cannot: no page, the error at once.
		p, _ = flow(t, b, app, "essential-2fa", map[string]string{"prompt": "none",
			"claims": `{"id_token":{"acr":{"essential":true,"value":"` + account.ACRSecondFactor + `"}}}`})
		appError(t, p, app, "essential-2fa", "unmet_authentication_requirements")
		// A class the session meets: the token names it.
		p, v = flow(t, b, app, "essential-1fa", map[string]string{"prompt": "none",
			"claims": `{"id_token":{"acr":{"essential":true,"values":["` + account.ACRPassword + `"]},"auth_time":{"essential":true}}}`})
		claims, tok := idToken(t, app, p, "essential-1fa", v)
		if claims["acr"] != account.ACRPassword || claims["auth_time"] == nil {
			t.Fatalf("essential acr and auth_time: %v", claims)
		}
		// A refreshed ID token of a request with max_age keeps auth_time.
		refreshed, err := app.oauth.TokenSource(t.Context(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil {
			t.Fatal(err)
		}
		if again := idTokenClaims(t, app, refreshed); again["auth_time"] != claims["auth_time"] || again["acr"] != claims["acr"] {
			t.Fatalf("refreshed: %v", again)
		}
	})

	t.Run("login_hint of someone else", func(t *testing.T) {
		srv.createUser("lena", false)
		lars := srv.createUser("lars", false)
		b := newBrowser(t)
		p, v := flow(t, b, app, "first", nil)
		lena, _ := idToken(t, app, password(t, b, p, "lena"), "first", v)
		// A hint naming lena, by username or address in any case, is
		// answered by her session.
		for _, hint := range []string{"lena", "LENA@example.com", " Lena "} {
			p, v = flow(t, b, app, "hint-lena", map[string]string{"login_hint": hint, "prompt": "none"})
			if claims, _ := idToken(t, app, p, "hint-lena", v); claims["sub"] != lena["sub"] {
				t.Fatalf("login_hint %q: sub %v", hint, claims["sub"])
			}
		}
		// One naming lars is not: prompt=none cannot sign him in, and
		// otherwise the sign-in page offers his name, not lena's.
		p, _ = flow(t, b, app, "none-lars", map[string]string{"login_hint": "lars", "prompt": "none"})
		appError(t, p, app, "none-lars", "login_required")
		p, v = flow(t, b, app, "hint-lars", map[string]string{"login_hint": "lars@example.com"})
		if !isLoginPage(p) || formValue(p.Body, "login") != "lars@example.com" {
			t.Fatalf("login_hint of another account answered by lena's session: %d %s %s", p.Status, p.URL, p.Location)
		}
		if claims, _ := idToken(t, app, password(t, b, p, "lars"), "hint-lars", v); claims["sub"] != lars.ID {
			t.Fatalf("signed in as %v, want lars", claims["sub"])
		}
		// A hint of the sub the app knows him by (public subjects: his ID)
		// names him too.
		p, v = flow(t, b, app, "sub-lars", map[string]string{"login_hint": lars.ID, "prompt": "none"})
		if claims, _ := idToken(t, app, p, "sub-lars", v); claims["sub"] != lars.ID {
			t.Fatalf("login_hint of his sub: sub %v", claims["sub"])
		}
	})

	t.Run("ui_locales", func(t *testing.T) {
		for _, c := range []struct{ locales, lang string }{
			{"de", "de"}, {"xx-Invalid!! de-AT", "de"}, {"fr de", "de"}, {"fr", "en"},
		} {
			p, _ := flow(t, newBrowser(t), app, "loc", map[string]string{"ui_locales": c.locales})
			if !isLoginPage(p) || !strings.Contains(p.Body, `<html lang="`+c.lang+`"`) {
				t.Errorf("ui_locales %q: not %s: %d %s", c.locales, c.lang, p.Status, truncateBody(p.Body)[:200])
			}
		}
	})

}
