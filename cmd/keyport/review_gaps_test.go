package main

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
)

// Review of c60095b/f166fee (an approved self-registered app that changes
// security-relevant metadata through RFC 7592 is held for approval
// again): what a held-again app still reaches. One server for all cases.
func TestReviewHeldAgainApp(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DynamicRegistration, c.OAuth.DeviceFlow = true, true })
	srv.createUser("rex", false)
	adminToken, _, _ := adminTokens(t, srv)
	rs := srv.createClient(account.NewClient{ID: "review-rs", Name: "Resource server", GrantTypes: []string{account.GrantClientCredentials}})

	// register makes an app held for approval with a front-channel logout
	// URI, approves it, signs rex in to it in b and returns the app, its
	// access token and what an RFC 7592 update needs.
	register := func(t *testing.T, name string, b *browser) (app *testClient, access, regToken, uri string, m map[string]any) {
		t.Helper()
		iat, _ := initialAccessToken(t, srv, adminToken, 0, true)
		m = webMetadata(name)
		if name == "weather" {
			m["client_name"] = "Weather widget"
		}
		if strings.HasPrefix(name, "device") {
			m["grant_types"] = []string{"authorization_code", "refresh_token", account.GrantDeviceCode}
		}
		m["frontchannel_logout_uri"] = "https://approved.example/fc/" + name
		status, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m)
		if status != http.StatusCreated {
			t.Fatalf("register %s: %d %v", name, status, reg)
		}
		id, _ := reg["client_id"].(string)
		secret, _ := reg["client_secret"].(string)
		regToken, _ = reg["registration_access_token"].(string)
		uri, _ = reg["registration_client_uri"].(string)
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients/"+id+"/approve", adminToken, "", ""); status != http.StatusOK {
			t.Fatalf("approve %s: %d %v", name, status, out)
		}
		app = srv.rp(id, secret, "http://127.0.0.1:9/callback/"+name)
		m["client_id"] = id
		if b == nil {
			return app, "", regToken, uri, m
		}
		code, verifier := app.signIn(b, "rex")
		tok, err := app.exchange(code, verifier)
		if err != nil {
			t.Fatalf("sign in to %s: %v", name, err)
		}
		return app, tok.AccessToken, regToken, uri, m
	}
	holdAgain := func(t *testing.T, app *testClient, regToken, uri string, m map[string]any) {
		t.Helper()
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK {
			t.Fatalf("update %s: %d %v", app.ID, status, out)
		}
		if c, _ := srv.Main.Store.GetClient(t.Context(), app.ID); !c.PendingApproval {
			t.Fatalf("%s was not held again by its update", app.ID)
		}
	}
	introspected := func(t *testing.T, token string) bool { return rs.introspect(t, token)["active"] == true }

	// README: "the tokens it has are not revoked; while held it gets no
	// new ones". Userinfo takes the held app's access token (it never looks
	// at the app); introspection (SetIntrospectionFromToken's getClient,
	// which hides held apps) and the management API's reader say it is
	// dead. A resource server and userinfo disagree about one token.
	t.Run("its tokens, at userinfo and introspection alike", func(t *testing.T) {
		app, access, regToken, uri, m := register(t, "tokens", newBrowser(t))
		if status, _, _ := srv.userinfo(access); status != http.StatusOK || !introspected(t, access) {
			t.Fatalf("before the update: userinfo %d, introspection active %v", status, introspected(t, access))
		}
		m["redirect_uris"] = []string{"http://127.0.0.1:9/callback/tokens-moved"}
		holdAgain(t, app, regToken, uri, m)
		status, _, _ := srv.userinfo(access)
		if active := introspected(t, access); (status == http.StatusOK) != active {
			t.Errorf("the held-again app's access token: userinfo %d, introspection active %v; they should agree", status, active)
		}
	})

	// A held app "exists for no one" (provider/memo.go), yet signing out
	// loads, in the person's browser, the front-channel logout URI it
	// chose in the very update that held it, which no administrator has
	// seen (account.sessionApps reads the store directly; so does
	// BackChannelLogoutsForSession/ForUser for back-channel logout).
	t.Run("its new logout URI, before anyone approved it", func(t *testing.T) {
		b := newBrowser(t)
		app, _, regToken, uri, m := register(t, "logout", b)
		const unreviewed = "https://unreviewed.example/fc"
		m["frontchannel_logout_uri"] = unreviewed
		holdAgain(t, app, regToken, uri, m)
		p := b.submit(b.get(srv.URL+"/logout"), "/logout", nil)
		for _, f := range logoutFrame.FindAllStringSubmatch(p.Body, -1) {
			if src := html.UnescapeString(f[1]); strings.HasPrefix(src, unreviewed) {
				t.Errorf("sign-out loaded the held app's unapproved front-channel logout URI %s", src)
			}
		}
	})

	// The name is the one field an approved app changes keeping its
	// approval (cosmeticFields), yet it is what the consent page shows
	// the person, next to "your administrator approved it": an app
	// approved as "Weather widget" renames itself "Keyport account
	// security" and the consent page vouches for that name, which no
	// administrator saw (RFC 7591 §5 names client_name as a means of
	// impersonation).
	t.Run("a new name under the approval", func(t *testing.T) {
		srv.createUser("una", false)
		app, _, regToken, uri, m := register(t, "weather", nil)
		m["client_name"] = "Keyport account security"
		if status, _, out := registrationCall(t, srv, http.MethodPut, uri, regToken, m); status != http.StatusOK {
			t.Fatalf("rename: %d %v", status, out)
		}
		_, challenge := pkce()
		b := newBrowser(t)
		p := app.authorize(b, "s", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		if isLoginPage(p) {
			p = b.submit(p, "/login", url.Values{"login": {"una"}, "password": {testPassword}})
		}
		if !isConsentPage(p) {
			return // held again: no one signs in to it, nothing to vouch for
		}
		line, _ := textByID(t, p.Body, "self-registered")
		if strings.Contains(line, "approved it") && !strings.Contains(p.Body, "Weather widget") {
			t.Errorf("the consent page of the renamed app says %q under the name %q, which no administrator approved", line, "Keyport account security")
		}
	})

	// The device flow's approval page is where a person consents for a
	// device, and the flow most open to phishing (a code sent by someone
	// else): it names the app and its scopes but not that the app
	// registered itself, nor whether an administrator approved it, as the
	// consent page does (portal/flow.go showConsent). And a device code an
	// app got before an update held it again is still offered for
	// approval (account.DeviceFlow.Find reads the store directly); the
	// approval stores the person's consent to the held app.
	t.Run("the device approval page", func(t *testing.T) {
		srv.createUser("vic", false)
		startDevice := func(t *testing.T, app *testClient) (userCode, verify string) {
			t.Helper()
			status, _, da := srv.postForm("/device_authorization", url.Values{"scope": {"openid profile"}}, app.ID, app.Secret)
			if status != http.StatusOK {
				t.Fatalf("device authorization: %d %v", status, da)
			}
			return da["user_code"].(string), da["verification_uri"].(string)
		}
		b := newBrowser(t)
		decisionPage := func(t *testing.T, userCode, verify string) page {
			t.Helper()
			p := b.get(verify)
			if isLoginPage(p) {
				p = b.submit(p, "/login", url.Values{"login": {"vic"}, "password": {testPassword}})
			}
			return postPage(b, p, "/device", url.Values{"user_code": {userCode}})
		}

		app, _, regToken, uri, m := register(t, "device-unreviewed", nil)
		code, verify := startDevice(t, app)
		p := decisionPage(t, code, verify)
		if !strings.Contains(p.Body, `value="approve"`) {
			t.Fatalf("no decision page: %d %s", p.Status, truncateBody(p.Body))
		}
		if !strings.Contains(p.Body, "registered itself") {
			t.Error("the device approval page of a self-registered app does not say it registered itself (the consent page does)")
		}

		// A code asked for while approved; the app then changes its
		// redirect URIs and is held again.
		code, verify = startDevice(t, app)
		m["redirect_uris"] = []string{"http://127.0.0.1:9/callback/device-moved"}
		holdAgain(t, app, regToken, uri, m)
		p = decisionPage(t, code, verify)
		if strings.Contains(p.Body, `value="approve"`) {
			t.Errorf("the device page offers to approve a device of the held app %s", app.ID)
			p = postPage(b, p, "/device", url.Values{"user_code": {formFields(p.Body).Get("user_code")}, "decision": {"approve"}})
			if strings.Contains(p.Body, "The device is connected") {
				t.Errorf("a person approved a device of the held app %s", app.ID)
			}
		}
	})
}
