package main

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// deviceServer is a server with the device flow on, a poll interval of one
// second (x/oauth2 waits the interval before each poll) and a running
// clock the test can move ahead, with its device apps: tv (public) and
// console (confidential), both allowed the grant and refresh tokens.
type deviceServer struct {
	*testServer
	clock       *testclock.Clock
	tv, console *testClient
}

func startDeviceServer(t *testing.T) *deviceServer {
	t.Helper()
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{now: clock.Now, mutate: func(c *config.Config) {
		c.OAuth.DeviceFlow = true
		c.OAuth.DevicePollInterval = config.Duration{Duration: time.Second}
	}})
	grants := []string{account.GrantDeviceCode, account.GrantRefreshToken}
	d := &deviceServer{testServer: srv, clock: clock,
		tv:      srv.createClient(account.NewClient{ID: "tv", Name: "Living room TV", Public: true, GrantTypes: grants}),
		console: srv.createClient(account.NewClient{ID: "console", Name: "Game console", GrantTypes: grants}),
	}
	for _, c := range []*testClient{d.tv, d.console} {
		c.oauth.Scopes = []string{"openid", "profile", "email", "offline_access"}
	}
	return d
}

// start asks for a device authorization as the relying party does.
// x/oauth2 sends only client_id to the device authorization endpoint; a
// confidential client must authenticate there too (RFC 8628 §3.1), so its
// secret goes in the form (client_secret_post).
func (d *deviceServer) start(t *testing.T, c *testClient) *oauth2.DeviceAuthResponse {
	t.Helper()
	var opts []oauth2.AuthCodeOption
	if c.Secret != "" {
		opts = append(opts, oauth2.SetAuthURLParam("client_secret", c.Secret))
	}
	da, err := c.oauth.DeviceAuth(context.Background(), opts...)
	if err != nil {
		t.Fatalf("device authorization for %s: %v", c.ID, err)
	}
	return da
}

// poll is one poll of the token endpoint for da, by c.
func (d *deviceServer) poll(c *testClient, da *oauth2.DeviceAuthResponse) (int, map[string]any) {
	status, _, body := c.tokenPost(url.Values{"grant_type": {account.GrantDeviceCode}, "device_code": {da.DeviceCode}}, false)
	return status, body
}

// openPage signs username in through the verification URI (the sign-in
// comes first and returns to the page) and returns the code-entry page.
func openPage(t *testing.T, d *deviceServer, b *browser, uri, username string) page {
	t.Helper()
	p := b.get(uri)
	if isLoginPage(p) {
		p = b.submit(p, "/login", url.Values{"login": {username}, "password": {testPassword}})
	}
	if p.Status != http.StatusOK || p.URL.Path != "/device" || !hasForm(p.Body, "/device") {
		t.Fatalf("verification page for %s: %d at %s: %s", username, p.Status, p.URL, truncateBody(p.Body))
	}
	return p
}

// decide types code on the entry page p, continues, and approves or denies.
func decide(t *testing.T, b *browser, p page, code, decision string) page {
	t.Helper()
	p = postPage(b, p, "/device", url.Values{"user_code": {code}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `value="approve"`) {
		t.Fatalf("decision page for %s: %d: %s", code, p.Status, truncateBody(p.Body))
	}
	return postPage(b, p, "/device", url.Values{"user_code": {formFields(p.Body).Get("user_code")}, "decision": {decision}})
}

// TestDeviceFlow runs the device authorization grant with x/oauth2 as the
// device and go-oidc checking the tokens: the person opens
// verification_uri_complete, signs in, sees the app's name and scopes,
// approves, and the polling device gets tokens carrying the claims a code
// flow's carry. Then the refusals RFC 8628 names, each on its own request.
func TestDeviceFlow(t *testing.T) {
	d := startDeviceServer(t)
	alice := d.createUser("alice", false)
	d.createUser("bob", false)

	// Discovery advertises the endpoint and the grant.
	if got := d.tv.oauth.Endpoint.DeviceAuthURL; got != d.URL+"/device_authorization" {
		t.Fatalf("device_authorization_endpoint from discovery = %q", got)
	}
	if grants := toStrings(discoveryOf(t, d.testServer)["grant_types_supported"]); !slices.Contains(grants, account.GrantDeviceCode) {
		t.Errorf("grant_types_supported %v lacks the device code grant", grants)
	}

	t.Run("app's own signing algorithm", func(t *testing.T) {
		// The device grant hands zitadel its client itself: the app's
		// id_token_signed_response_alg must still sign its ID token.
		es := d.createClient(account.NewClient{ID: "tv-es", Name: "Kitchen TV", Public: true, IDTokenSignedResponseAlg: "ES256",
			GrantTypes: []string{account.GrantDeviceCode}})
		da := d.start(t, es)
		b := newBrowser(t)
		decide(t, b, openPage(t, d, b, da.VerificationURIComplete, "alice"), da.UserCode, "approve")
		tok, err := es.oauth.DeviceAccessToken(context.Background(), da)
		if err != nil {
			t.Fatalf("device access token: %v", err)
		}
		raw, _ := tok.Extra("id_token").(string)
		header, _ := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[0])
		if !strings.Contains(string(header), `"alg":"ES256"`) {
			t.Errorf("ID token header %s, want ES256", header)
		}
		verifier := es.provider.Verifier(&oidc.Config{ClientID: es.ID, SupportedSigningAlgs: []string{"ES256"}})
		if _, err := verifier.Verify(context.Background(), raw); err != nil {
			t.Errorf("verify the ES256 ID token: %v", err)
		}
	})

	t.Run("approved", func(t *testing.T) {
		da := d.start(t, d.tv)
		if da.VerificationURI != d.URL+"/device" || da.VerificationURIComplete != da.VerificationURI+"?user_code="+url.QueryEscape(da.UserCode) {
			t.Errorf("verification URIs %q, %q", da.VerificationURI, da.VerificationURIComplete)
		}
		if len(da.UserCode) != 9 || da.UserCode[4] != '-' || strings.Trim(strings.ReplaceAll(da.UserCode, "-", ""), account.UserCodeAlphabet) != "" {
			t.Errorf("user code %q is not 8 characters of %s", da.UserCode, account.UserCodeAlphabet)
		}
		if da.Interval != 1 || da.Expiry.Before(time.Now().Add(9*time.Minute)) {
			t.Errorf("interval %d, expiry %s", da.Interval, da.Expiry)
		}
		b := newBrowser(t)
		p := openPage(t, d, b, da.VerificationURIComplete, "alice")
		if !strings.Contains(p.Body, `name="user_code" type="text" value="`+da.UserCode+`"`) {
			t.Errorf("the complete URI did not fill in %q: %s", da.UserCode, truncateBody(p.Body))
		}
		p = postPage(b, p, "/device", url.Values{"user_code": {strings.ToLower(da.UserCode)}})
		for _, want := range []string{"Living room TV", "offline_access", da.UserCode} {
			if !strings.Contains(p.Body, want) {
				t.Errorf("decision page lacks %q: %s", want, truncateBody(p.Body))
			}
		}
		p = postPage(b, p, "/device", url.Values{"user_code": {da.UserCode}, "decision": {"approve"}})
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "The device is connected") {
			t.Fatalf("approval: %d: %s", p.Status, truncateBody(p.Body))
		}

		tok, err := d.tv.oauth.DeviceAccessToken(context.Background(), da)
		if err != nil {
			t.Fatalf("device access token: %v", err)
		}
		claims := idTokenClaims(t, d.tv, tok)
		if claims["sub"] != alice.ID || claims["email"] != "alice@example.com" || !slices.Equal(toStrings(claims["aud"]), []string{"tv"}) {
			t.Errorf("ID token claims %v", claims)
		}
		if status, _, info := d.userinfo(tok.AccessToken); status != http.StatusOK || info["sub"] != alice.ID || info["email"] != "alice@example.com" {
			t.Errorf("userinfo with the device's token: %d %v", status, info)
		}
		if tok.RefreshToken == "" {
			t.Fatal("no refresh token for offline_access")
		}
		refreshed, err := d.tv.oauth.TokenSource(context.Background(), &oauth2.Token{RefreshToken: tok.RefreshToken}).Token()
		if err != nil || refreshed.AccessToken == "" {
			t.Errorf("refresh the device's tokens: %v", err)
		}

		// The same claims as a code flow's ID token for the same person
		// and scopes, but those of the code flow's browser: sid, nonce
		// and c_hash (no browser session, no nonce, no code).
		web := d.createClient(account.NewClient{ID: "web", Name: "Web", SkipConsent: true})
		web.oauth.Scopes = d.tv.oauth.Scopes
		codeClaims := idTokenClaims(t, web, web.tokens("alice"))
		want := slices.DeleteFunc(keysOf(codeClaims), func(k string) bool { return k == "sid" || k == "nonce" || k == "c_hash" })
		if got := keysOf(claims); !slices.Equal(got, want) {
			t.Errorf("device ID token claims %v, code flow's %v", got, want)
		}
		if claims["acr"] != codeClaims["acr"] || !slices.Equal(toStrings(claims["amr"]), toStrings(codeClaims["amr"])) {
			t.Errorf("acr/amr %v %v, code flow's %v %v", claims["acr"], claims["amr"], codeClaims["acr"], codeClaims["amr"])
		}

		// A device code is redeemed once.
		if status, body := d.poll(d.tv, da); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("device code used twice: %d %v", status, body)
		}
		// The approval is audited and kept as the person's grant.
		if g, err := d.Main.Store.GetGrant(context.Background(), alice.ID, "tv"); err != nil || !slices.Contains(g.Scopes, "offline_access") {
			t.Errorf("grant after the approval: %+v %v", g, err)
		}
	})

	t.Run("confidential client", func(t *testing.T) {
		da := d.start(t, d.console)
		wrong := url.Values{"client_id": {"console"}, "client_secret": {"not-the-secret"}, "grant_type": {account.GrantDeviceCode}, "device_code": {da.DeviceCode}}
		if status, hdr, body := d.postForm("/oauth/token", wrong, "", ""); status != http.StatusUnauthorized || body["error"] != "invalid_client" || hdr.Get("Cache-Control") != "no-store" {
			t.Errorf("wrong secret: %d %v", status, body)
		}
		if status, _, body := d.postForm("/device_authorization", url.Values{"scope": {"openid"}}, "console", "not-the-secret"); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("device authorization with a wrong secret: %d %v", status, body)
		}
		b := newBrowser(t)
		decide(t, b, openPage(t, d, b, da.VerificationURI, "bob"), da.UserCode, "approve")
		tok, err := d.console.oauth.DeviceAccessToken(context.Background(), da)
		if err != nil {
			t.Fatalf("device access token: %v", err)
		}
		if claims := idTokenClaims(t, d.console, tok); claims["preferred_username"] != "bob" {
			t.Errorf("claims %v", claims)
		}
		// Another client cannot redeem a code that is not its own.
		other := d.start(t, d.tv)
		if status, _, body := d.postForm("/oauth/token", url.Values{"grant_type": {account.GrantDeviceCode}, "device_code": {other.DeviceCode}}, "console", d.console.Secret); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("another client's device code: %d %v", status, body)
		}
	})

	t.Run("resource indicators", func(t *testing.T) {
		// RFC 8707 at the device authorization endpoint, as at
		// /authorize: each resource registered for the app, the device's
		// access tokens for them, a poll narrowing them but never
		// widening, the refresh family holding all of them.
		ctx := context.Background()
		app := d.createClient(account.NewClient{ID: "tv-api", Name: "Smart TV", AccessTokenJWT: true,
			GrantTypes: []string{account.GrantDeviceCode, account.GrantRefreshToken}, Resources: []string{resOrders, resFiles}})
		app.oauth.Scopes = []string{"openid", "offline_access"}
		ask := func(resources ...string) (int, map[string]any, *oauth2.DeviceAuthResponse) {
			t.Helper()
			// By hand: x/oauth2 sends one value of a parameter at most.
			status, _, m := d.postForm("/device_authorization", url.Values{"scope": {"openid offline_access"}, "resource": resources}, app.ID, app.Secret)
			da := &oauth2.DeviceAuthResponse{}
			da.DeviceCode, _ = m["device_code"].(string)
			da.UserCode, _ = m["user_code"].(string)
			da.VerificationURI, _ = m["verification_uri"].(string)
			return status, m, da
		}
		approve := func(da *oauth2.DeviceAuthResponse) {
			t.Helper()
			b := newBrowser(t)
			if p := decide(t, b, openPage(t, d, b, da.VerificationURI, "alice"), da.UserCode, "approve"); !strings.Contains(p.Body, "The device is connected") {
				t.Fatalf("approval: %d %s", p.Status, truncateBody(p.Body))
			}
		}
		poll := func(da *oauth2.DeviceAuthResponse, resources ...string) (int, map[string]any) {
			t.Helper()
			status, _, m := app.tokenPost(url.Values{"grant_type": {account.GrantDeviceCode}, "device_code": {da.DeviceCode}, "resource": resources}, true)
			return status, m
		}
		accessAud := func(m map[string]any) []string {
			t.Helper()
			access, _ := m["access_token"].(string)
			return audiences(jwtClaims(t, d.testServer, access)["aud"])
		}

		// One resource, asked for as a device does (x/oauth2): the JWT
		// access token and introspection name it, the ID token the app.
		da, err := app.oauth.DeviceAuth(ctx, oauth2.SetAuthURLParam("client_secret", app.Secret), oauth2.SetAuthURLParam("resource", resOrders))
		if err != nil {
			t.Fatalf("device authorization for %s: %v", resOrders, err)
		}
		approve(da)
		tok, err := app.oauth.DeviceAccessToken(ctx, da)
		if err != nil {
			t.Fatalf("device access token: %v", err)
		}
		claims := jwtClaims(t, d.testServer, tok.AccessToken)
		if got := audiences(claims["aud"]); !slices.Equal(got, []string{resOrders}) || claims["client_id"] != app.ID {
			t.Errorf("device access token aud %v client_id %v, want [%s] and %s", got, claims["client_id"], resOrders, app.ID)
		}
		status, _, info := d.postForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, app.ID, app.Secret)
		if got := audiences(info["aud"]); status != http.StatusOK || info["active"] != true || !slices.Equal(got, []string{resOrders}) {
			t.Errorf("introspection of the device's access token: %d %v, want aud [%s]", status, info, resOrders)
		}
		if got := toStrings(idTokenClaims(t, app, tok)["aud"]); !slices.Equal(got, []string{app.ID}) {
			t.Errorf("device ID token aud %v, want [%s]", got, app.ID)
		}

		// Two resources: a poll naming one gets it; the family keeps both.
		status, m, da := ask(resOrders, resFiles)
		if status != http.StatusOK || da.DeviceCode == "" {
			t.Fatalf("device authorization for two resources: %d %v", status, m)
		}
		approve(da)
		// Registered for the app but not asked for: refused, and the code
		// is neither spent nor counted as a poll.
		if status, m := poll(da, resFiles, resReports); status != http.StatusBadRequest || m["error"] != "invalid_target" || m["access_token"] != nil {
			t.Errorf("poll widening the request: %d %v, want 400 invalid_target", status, m)
		}
		status, m = poll(da, resFiles)
		if status != http.StatusOK || !slices.Equal(accessAud(m), []string{resFiles}) {
			t.Fatalf("poll narrowing to %s: %d %v", resFiles, status, m)
		}
		rt, _ := m["refresh_token"].(string)
		status, _, m = app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true)
		if status != http.StatusOK || !slices.Equal(accessAud(m), []string{resOrders, resFiles}) {
			t.Errorf("refresh of the family naming no resource: %d %v, want both resources", status, m)
		}

		// A device code asked for no resource: its tokens are the app's,
		// and a poll may not add one (the request holds none to narrow).
		_, _, da = ask()
		approve(da)
		if status, m := poll(da, resOrders); status != http.StatusBadRequest || m["error"] != "invalid_target" {
			t.Errorf("poll adding a resource the request did not ask for: %d %v, want 400 invalid_target", status, m)
		}
		if status, m := poll(da); status != http.StatusOK || !slices.Equal(accessAud(m), []string{app.ID}) {
			t.Errorf("poll of a request without resources: %d %v, want aud [%s]", status, m, app.ID)
		}

		// Refused at the device authorization endpoint, with nothing
		// stored: not registered for the app, a fragment, relative.
		for _, bad := range [][]string{{resReports}, {resOrders, "https://elsewhere.example.com/"}, {resOrders + "#frag"}, {"/orders"}} {
			if status, _, m := d.postForm("/device_authorization", url.Values{"resource": bad}, app.ID, app.Secret); status != http.StatusBadRequest || m["error"] != "invalid_target" || m["device_code"] != nil {
				t.Errorf("device authorization for %q: %d %v, want 400 invalid_target", bad, status, m)
			}
		}
	})

	t.Run("slow_down", func(t *testing.T) {
		da := d.start(t, d.tv)
		if status, body := d.poll(d.tv, da); status != http.StatusBadRequest || body["error"] != "authorization_pending" {
			t.Fatalf("first poll: %d %v", status, body)
		}
		if status, body := d.poll(d.tv, da); status != http.StatusBadRequest || body["error"] != "slow_down" {
			t.Fatalf("second poll at once: %d %v", status, body)
		}
		// The interval is now 6 s: a poll 2 s later is still too fast.
		d.clock.Add(2 * time.Second)
		if _, body := d.poll(d.tv, da); body["error"] != "slow_down" {
			t.Errorf("poll 2 s after a slow_down: %v", body)
		}
		d.clock.Add(11*time.Second + 500*time.Millisecond)
		if _, body := d.poll(d.tv, da); body["error"] != "authorization_pending" {
			t.Errorf("poll after the grown interval: %v", body)
		}
	})

	t.Run("access_denied", func(t *testing.T) {
		da := d.start(t, d.tv)
		b := newBrowser(t)
		p := decide(t, b, openPage(t, d, b, da.VerificationURI, "alice"), da.UserCode, "deny")
		if p.Status != http.StatusOK || !strings.Contains(p.Body, "not allowed to sign in") {
			t.Errorf("denial page: %d %s", p.Status, truncateBody(p.Body))
		}
		if _, err := d.tv.oauth.DeviceAccessToken(context.Background(), da); oauthErr(err) != "access_denied" {
			t.Errorf("denied device: %v", err)
		}
		// A decided code cannot be decided again.
		p = postPage(b, p, "/device", url.Values{"user_code": {da.UserCode}, "decision": {"approve"}})
		if p.Status != http.StatusNotFound {
			t.Errorf("approving a denied code: %d %s", p.Status, truncateBody(p.Body))
		}
	})

	t.Run("allowed groups", func(t *testing.T) {
		d.createClient(account.NewClient{ID: "kiosk", Name: "Kiosk", Public: true, GrantTypes: []string{account.GrantDeviceCode}, AllowedGroups: []string{"kiosk-users"}})
		kiosk := d.rp("kiosk", "", "")
		da := d.start(t, kiosk)
		b := newBrowser(t)
		p := decide(t, b, openPage(t, d, b, da.VerificationURI, "alice"), da.UserCode, "approve")
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "not allowed to use Kiosk") {
			t.Errorf("approval by someone outside the app's groups: %d %s", p.Status, truncateBody(p.Body))
		}
		if status, body := d.poll(kiosk, da); body["error"] != "access_denied" {
			t.Errorf("device of a refused person: %d %v", status, body)
		}
	})

	t.Run("allowed groups, in German", func(t *testing.T) {
		// The refusal has the app's name as an arg: a German browser
		// gets it in German (it was English), the name HTML-escaped.
		d.createClient(account.NewClient{ID: "kiosk-de", Name: "Kiosk <b>2</b>", Public: true, GrantTypes: []string{account.GrantDeviceCode}, AllowedGroups: []string{"kiosk-users"}})
		kiosk := d.rp("kiosk-de", "", "")
		da := d.start(t, kiosk)
		b := newBrowser(t)
		p := postPage(b, openPage(t, d, b, da.VerificationURI, "alice"), "/device", url.Values{"user_code": {da.UserCode}})
		form := url.Values{"user_code": {formFields(p.Body).Get("user_code")}, "decision": {"approve"}, "csrf_token": {formFields(p.Body).Get("csrf_token")}}
		req, _ := http.NewRequest(http.MethodPost, d.URL+"/device", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Accept-Language", "de-DE,de;q=0.9")
		p = b.do(req)
		want := "Ihr Konto darf Kiosk &lt;b&gt;2&lt;/b&gt; nicht verwenden. Wenden Sie sich an eine Administratorin oder einen Administrator."
		if p.Status != http.StatusForbidden || !strings.Contains(p.Body, want) || strings.Contains(p.Body, "<b>2</b>") {
			t.Errorf("a refusal in German: %d %s", p.Status, truncateBody(p.Body))
		}
		if status, body := d.poll(kiosk, da); body["error"] != "access_denied" {
			t.Errorf("device of a refused person: %d %v", status, body)
		}
	})

	t.Run("blocked or taken out of the app's groups after approving", func(t *testing.T) {
		// Blocking ends everything issued before it; a device the person
		// approved just before must not get tokens afterwards. Without
		// openid no ID token is made, whose claims would check the user.
		d.createClient(account.NewClient{ID: "frame", Name: "Photo frame", Public: true, GrantTypes: []string{account.GrantDeviceCode, account.GrantRefreshToken},
			AllowedGroups: []string{"frame-users"}})
		frame := d.rp("frame", "", "")
		frame.oauth.Scopes = []string{"profile", "offline_access"}
		for _, name := range []string{"erin", "fred"} {
			u := d.createUser(name, false)
			if _, err := d.Main.Store.UpdateUser(context.Background(), u.ID, func(u storage.User) (storage.User, error) {
				u.Groups = []string{"frame-users"}
				return u, nil
			}); err != nil {
				t.Fatal(err)
			}
			da := d.start(t, frame)
			b := newBrowser(t)
			if p := decide(t, b, openPage(t, d, b, da.VerificationURI, name), da.UserCode, "approve"); !strings.Contains(p.Body, "The device is connected") {
				t.Fatalf("approval by %s: %d %s", name, p.Status, truncateBody(p.Body))
			}
			if name == "erin" {
				if _, err := d.Main.Accounts.Admin.BlockUser(context.Background(), account.SystemActor, u.ID); err != nil {
					t.Fatal(err)
				}
			} else if _, err := d.Main.Store.UpdateUser(context.Background(), u.ID, func(u storage.User) (storage.User, error) {
				u.Groups = nil
				return u, nil
			}); err != nil {
				t.Fatal(err)
			}
			if status, body := d.poll(frame, da); status != http.StatusBadRequest || body["error"] != "access_denied" || body["access_token"] != nil {
				t.Errorf("device of %s after the approval no longer holds: %d %v", name, status, body)
			}
		}
	})

	t.Run("public device outside the person's IP allowlist", func(t *testing.T) {
		// A public app runs where its person is, so its refresh is held
		// to their IP allowlist (policy_test.go); the device's first
		// tokens are too, from the device's address, not the address of
		// the browser that approved it.
		gina := d.createUser("gina", false)
		if _, _, err := d.Main.Accounts.SignIn.SetAllowedNetworks(context.Background(), gina, "127.0.0.1", "127.0.0.1", false); err != nil {
			t.Fatal(err)
		}
		da := d.start(t, d.tv)
		b := newBrowser(t)
		if p := decide(t, b, openPage(t, d, b, da.VerificationURI, "gina"), da.UserCode, "approve"); !strings.Contains(p.Body, "The device is connected") {
			t.Fatalf("approval from inside the allowlist: %d %s", p.Status, truncateBody(p.Body))
		}
		form := url.Values{"grant_type": {account.GrantDeviceCode}, "device_code": {da.DeviceCode}, "client_id": {"tv"}}
		req, _ := http.NewRequest(http.MethodPost, d.URL+"/oauth/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if status, _, body := doJSON(t, browserFrom(t, "127.0.0.5").client, req); status != http.StatusBadRequest || body["error"] != "access_denied" || body["access_token"] != nil {
			t.Errorf("device polling from outside the allowlist: %d %v", status, body)
		}
	})

	t.Run("expired_token", func(t *testing.T) {
		da := d.start(t, d.tv)
		b := newBrowser(t)
		p := openPage(t, d, b, da.VerificationURI, "alice")
		d.clock.Add(10*time.Minute + time.Second)
		if status, body := d.poll(d.tv, da); status != http.StatusBadRequest || body["error"] != "expired_token" {
			t.Errorf("poll after the lifetime: %d %v", status, body)
		}
		if p = postPage(b, p, "/device", url.Values{"user_code": {da.UserCode}}); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "has expired") {
			t.Errorf("an expired user code on the page: %d %s", p.Status, truncateBody(p.Body))
		}
	})

	t.Run("unauthorized_client", func(t *testing.T) {
		web := d.createClient(account.NewClient{ID: "plain", Name: "Plain", Public: true})
		if status, _, body := d.postForm("/device_authorization", url.Values{"client_id": {"plain"}, "scope": {"openid"}}, "", ""); status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Errorf("device authorization for an app without the grant: %d %v", status, body)
		}
		if status, body := d.poll(web, &oauth2.DeviceAuthResponse{DeviceCode: "whatever"}); status != http.StatusBadRequest || body["error"] != "unauthorized_client" {
			t.Errorf("device_code grant by an app without it: %d %v", status, body)
		}
		if status, _, body := d.postForm("/device_authorization", url.Values{"client_id": {"nobody"}}, "", ""); status != http.StatusUnauthorized || body["error"] != "invalid_client" {
			t.Errorf("unknown client: %d %v", status, body)
		}
		if status, body := d.poll(d.tv, &oauth2.DeviceAuthResponse{}); status != http.StatusBadRequest || body["error"] != "invalid_request" {
			t.Errorf("no device_code: %d %v", status, body)
		}
		if status, body := d.poll(d.tv, &oauth2.DeviceAuthResponse{DeviceCode: "made-up"}); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Errorf("unknown device code: %d %v", status, body)
		}
		req, _ := http.NewRequest(http.MethodGet, d.URL+"/device_authorization?client_id=tv", nil)
		if p := mustFetch(t, http.DefaultClient, req); p.Status != http.StatusMethodNotAllowed {
			t.Errorf("GET /device_authorization: %d", p.Status)
		}
	})

	t.Run("app from the management API", func(t *testing.T) {
		root := d.createUser("root", true)
		rw, _, err := d.Main.Accounts.Credentials.CreateAPIToken(context.Background(), root, account.NewAPIToken{Name: "admin", Scope: account.ScopeReadWrite})
		if err != nil {
			t.Fatal(err)
		}
		status, _, body := apiCall(t, d.testServer, http.MethodPost, "/api/v1/clients", rw, "application/json",
			`{"id":"set-top","name":"Set-top box","public":true,"grant_types":["`+account.GrantDeviceCode+`","refresh_token"]}`)
		if status != http.StatusCreated {
			t.Fatalf("create a device app through the API: %d %v", status, body)
		}
		if da := d.start(t, d.rp("set-top", "", "")); da.UserCode == "" {
			t.Errorf("no user code for the API's device app: %+v", da)
		}
	})

	t.Run("wrong user codes throttled", func(t *testing.T) {
		da := d.start(t, d.tv)
		carol := d.createUser("carol", false)
		b := newBrowser(t)
		p := openPage(t, d, b, da.VerificationURI, carol.Username)
		throttled := false
		for i := range 30 {
			q := postPage(b, p, "/device", url.Values{"user_code": {"BBBB-BBB" + string(account.UserCodeAlphabet[i%20])}})
			if q.Status == http.StatusTooManyRequests {
				throttled = q.Header.Get("Retry-After") != ""
				break
			}
			if q.Status != http.StatusNotFound || !strings.Contains(q.Body, "This code is wrong") || !hasForm(q.Body, "/device") {
				t.Fatalf("wrong code %d: %d %s", i, q.Status, truncateBody(q.Body))
			}
		}
		if !throttled {
			t.Fatal("30 wrong user codes were never throttled")
		}
		// Throttled, even the right code is refused.
		if q := postPage(b, p, "/device", url.Values{"user_code": {da.UserCode}}); q.Status != http.StatusTooManyRequests {
			t.Errorf("the right code while throttled: %d", q.Status)
		}
		// A form without the CSRF token is refused and counts nothing.
		if q := b.post(d.URL+"/device", url.Values{"user_code": {da.UserCode}}); q.Status != http.StatusForbidden {
			t.Errorf("a post without the CSRF token: %d", q.Status)
		}
	})
}

// TestDeviceFlowPerAddress: one client address may hold
// [limits] max_device_authorizations_per_address (20 by default)
// unexpired device authorizations of public apps; more are refused with
// 429 and slow_down until the first expires, while other addresses, and a
// confidential app's backend on the same address, still get codes.
func TestDeviceFlowPerAddress(t *testing.T) {
	d := startDeviceServer(t)
	const limit = 20
	flood := func() (int, http.Header, map[string]any) {
		return d.postForm("/device_authorization", url.Values{"client_id": {"tv"}, "scope": {"openid"}}, "", "")
	}
	for i := range limit {
		if status, _, body := flood(); status != http.StatusOK || body["device_code"] == nil {
			t.Fatalf("device authorization %d of %d: %d %v", i+1, limit, status, body)
		}
	}
	last := d.clock.Now()
	status, hdr, body := flood()
	if status != http.StatusTooManyRequests || body["error"] != "slow_down" {
		t.Fatalf("device authorization %d from one address: %d %v", limit+1, status, body)
	}
	if secs, err := strconv.Atoi(hdr.Get("Retry-After")); err != nil || secs < 1 || secs > 600 {
		t.Errorf("Retry-After %q, want the seconds until the first expires (at most 600)", hdr.Get("Retry-After"))
	}
	if hdr.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q on the refusal", hdr.Get("Cache-Control"))
	}
	// Another address still gets its codes: a real device, x/oauth2
	// dialling from 127.0.0.2.
	other := context.WithValue(context.Background(), oauth2.HTTPClient, browserFrom(t, "127.0.0.2").client)
	if da, err := d.tv.oauth.DeviceAuth(other); err != nil || da.UserCode == "" {
		t.Errorf("device authorization from another address: %+v %v", da, err)
	}
	// A confidential app's backend is not bounded by its address.
	for i := range 3 {
		if da := d.start(t, d.console); da.UserCode == "" {
			t.Fatalf("confidential app's device authorization %d past the address's limit: %+v", i, da)
		}
	}
	// The refusal stored nothing: still refused a little later.
	d.clock.Add(5 * time.Minute)
	if status, _, body := flood(); status != http.StatusTooManyRequests {
		t.Errorf("still at the limit: %d %v", status, body)
	}
	// Expired ones stop counting, though they are kept a while.
	d.clock.Set(last.Add(10*time.Minute + time.Second))
	if status, _, body := flood(); status != http.StatusOK || body["device_code"] == nil {
		t.Errorf("device authorization once the first ones expired: %d %v", status, body)
	}
}

// TestDeviceFlowOff: without [oauth] device_flow nothing of it is served
// or advertised, and no app is given its grant, as none in config.toml may
// be: not by the management API (the console's rules) nor by dynamic
// registration. An app that has it from before keeps it through its edits.
func TestDeviceFlowOff(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DynamicRegistration = true })
	srv.createUser("dora", false)
	c := srv.createClient(account.NewClient{ID: "web", Name: "Web", Public: true})
	if c.oauth.Endpoint.DeviceAuthURL != "" {
		t.Errorf("discovery advertises %q", c.oauth.Endpoint.DeviceAuthURL)
	}
	if grants := toStrings(discoveryOf(t, srv)["grant_types_supported"]); slices.Contains(grants, account.GrantDeviceCode) || !slices.Contains(grants, "authorization_code") {
		t.Errorf("grant_types_supported %v", grants)
	}
	if status, _, _ := srv.postForm("/device_authorization", url.Values{"client_id": {"web"}}, "", ""); status != http.StatusNotFound {
		t.Errorf("/device_authorization: %d", status)
	}
	if status, _, body := c.tokenPost(url.Values{"grant_type": {account.GrantDeviceCode}, "device_code": {"x"}}, false); status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
		t.Errorf("device_code grant: %d %v", status, body)
	}
	b := newBrowser(t)
	if p := b.get(srv.URL + "/device?user_code=BCDF-GHJK"); p.Status != http.StatusNotFound || len(b.visited) > 0 {
		t.Errorf("/device signed out: %d after %v, want a 404 rather than a sign-in for one", p.Status, b.visited)
	}
	signInPortal(t, srv, b, "dora")
	if p := b.get(srv.URL + "/device"); p.Status != http.StatusNotFound {
		t.Errorf("/device: %d", p.Status)
	}

	rw, _, _ := adminTokens(t, srv)
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
		`{"id":"tv","public":true,"grant_types":["urn:ietf:params:oauth:grant-type:device_code"]}`); status != http.StatusBadRequest || body["field"] != "grant_types" {
		t.Errorf("create an app with the device code grant: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/web", rw, "application/json",
		`{"grant_types":["authorization_code","urn:ietf:params:oauth:grant-type:device_code"]}`); status != http.StatusBadRequest || body["field"] != "grant_types" {
		t.Errorf("give an app the device code grant: %d %v", status, body)
	}
	ctx := context.Background()
	if err := srv.Main.Store.CreateClient(ctx, storage.Client{ID: "old-tv", Name: "Old TV", Public: true, GrantTypes: []string{account.GrantDeviceCode}}); err != nil {
		t.Fatal(err)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/old-tv", rw, "application/json", `{"name":"Living room TV"}`); status != http.StatusOK || body["name"] != "Living room TV" {
		t.Errorf("edit an app that had the grant before: %d %v", status, body)
	}
	iat, _ := initialAccessToken(t, srv, rw, 0, false)
	m := map[string]any{"client_name": "TV", "token_endpoint_auth_method": "none", "grant_types": []string{account.GrantDeviceCode}}
	if status, _, body := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
		t.Errorf("register an app with the device code grant: %d %v", status, body)
	}
	if _, err := srv.Main.Store.GetClient(ctx, "tv"); err == nil {
		t.Error("the refused app tv was stored")
	}
	if c, _ := srv.Main.Store.GetClient(ctx, "web"); slices.Contains(c.GrantTypes, account.GrantDeviceCode) {
		t.Errorf("a refused edit gave web the grant: %v", c.GrantTypes)
	}
}

func discoveryOf(t *testing.T, srv *testServer) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/.well-known/openid-configuration", nil)
	d := mustFetch(t, http.DefaultClient, req).JSON()
	if d == nil {
		t.Fatal("discovery is not a JSON object")
	}
	return d
}

func keysOf(m map[string]any) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	out := make([]string, 0, len(l))
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}
