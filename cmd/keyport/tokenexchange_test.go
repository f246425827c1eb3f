package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

const (
	grantTokenExchange  = "urn:ietf:params:oauth:grant-type:token-exchange"
	typeAccessToken     = "urn:ietf:params:oauth:token-type:access_token"
	typeJWT             = "urn:ietf:params:oauth:token-type:jwt"
	typeAppPassword     = "urn:keyport:params:oauth:token-type:app-password"
	tokenExchangeSecret = "frontend-secret-0123456789"
)

// exchangeForm is a token-exchange request for subject of type typ.
func exchangeForm(subject, typ string, extra ...string) url.Values {
	f := url.Values{"grant_type": {grantTokenExchange}, "subject_token": {subject}, "subject_token_type": {typ}}
	for i := 0; i+1 < len(extra); i += 2 {
		f.Add(extra[i], extra[i+1])
	}
	return f
}

// audiences reads aud, a string or a list (RFC 7519 §4.1.3).
func audiences(v any) []string {
	switch a := v.(type) {
	case string:
		return []string{a}
	case []any:
		var out []string
		for _, x := range a {
			s, _ := x.(string)
			out = append(out, s)
		}
		return out
	}
	return nil
}

// actorOf is act.sub of a decoded token or introspection answer.
func actorOf(m map[string]any) string {
	act, _ := m["act"].(map[string]any)
	sub, _ := act["sub"].(string)
	return sub
}

func TestTokenExchange(t *testing.T) {
	var offset atomic.Int64 // the server's clock runs ahead by this much
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	srv := startServerWith(t, serverOptions{now: clock})
	ctx := context.Background()
	alice := srv.createUser("alice", false)
	bob := srv.createUser("bob", false)
	carol := srv.createUser("carol", false)
	dave := srv.createUser("dave", false)
	if _, err := srv.Main.Store.UpdateUser(ctx, bob.ID, func(u storage.User) (storage.User, error) {
		u.Groups = []string{"finance"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}

	frontend := srv.createClient(account.NewClient{ID: "frontend", Secret: tokenExchangeSecret,
		GrantTypes:             []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials, grantTokenExchange},
		TokenExchangeAudiences: []string{"orders-api", "reports-api", "https://files.example.com/"}})
	orders := srv.createClient(account.NewClient{ID: "orders-api", GrantTypes: []string{account.GrantClientCredentials, grantTokenExchange}, AccessTokenJWT: true,
		TokenExchangeAudiences: []string{"reports-api"}, IDTokenSignedResponseAlg: "ES256",
		AccessTokenLifetime: 2 * time.Hour}) // longer than the subject token's
	reports := srv.createClient(account.NewClient{ID: "reports-api", GrantTypes: []string{account.GrantClientCredentials},
		AllowedGroups: []string{"finance"}, AllowedScopes: []string{"openid", "email"}})
	other := srv.createClient(account.NewClient{ID: "other", GrantTypes: []string{account.GrantAuthorizationCode, grantTokenExchange},
		TokenExchangeAudiences: []string{"orders-api"}})
	plain := srv.createClient(account.NewClient{ID: "plain"})
	mailer := srv.createClient(account.NewClient{ID: "mailer", GrantTypes: []string{grantTokenExchange}})

	// Discovery advertises the grant.
	var doc struct {
		Grants []string `json:"grant_types_supported"`
	}
	if err := frontend.provider.Claims(&doc); err != nil || !slices.Contains(doc.Grants, grantTokenExchange) {
		t.Fatalf("grant_types_supported %v (%v) lacks token exchange", doc.Grants, err)
	}

	aliceTok := frontend.tokens("alice")
	introspect := func(by *testClient, token string) map[string]any {
		t.Helper()
		status, _, m := srv.postForm("/oauth/introspect", url.Values{"token": {token}}, by.ID, by.Secret)
		if status != http.StatusOK {
			t.Fatalf("introspect: %d %v", status, m)
		}
		return m
	}

	t.Run("delegation to a JWT audience", func(t *testing.T) {
		status, h, m := frontend.tokenPost(exchangeForm(aliceTok.AccessToken, typeAccessToken, "audience", "orders-api"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange: %d %v", status, m)
		}
		if m["issued_token_type"] != typeAccessToken || !strings.EqualFold(m["token_type"].(string), "bearer") || m["refresh_token"] != nil {
			t.Errorf("response %v: want issued_token_type access_token, Bearer, no refresh token", m)
		}
		if h.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", h.Get("Cache-Control"))
		}
		if exp, ok := m["expires_in"].(float64); !ok || time.Now().Add(time.Duration(exp)*time.Second).After(aliceTok.Expiry.Add(2*time.Second)) {
			t.Errorf("expires_in %v outlives the subject token (expires %v)", m["expires_in"], aliceTok.Expiry)
		}
		token := m["access_token"].(string)
		payload, err := oidc.NewRemoteKeySet(ctx, srv.URL+"/keys").VerifySignature(ctx, token)
		if err != nil {
			t.Fatalf("the exchanged token is no JWT signed by the server's keys: %v", err)
		}
		// orders-api verifies ES256 (its id_token_signed_response_alg).
		if header, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0]); err != nil || !strings.Contains(string(header), `"alg":"ES256"`) {
			t.Errorf("the exchanged token's header %s (%v): want ES256, orders-api's algorithm", header, err)
		}
		var claims map[string]any
		if err := json.Unmarshal(payload, &claims); err != nil {
			t.Fatal(err)
		}
		if got := audiences(claims["aud"]); !slices.Equal(got, []string{"orders-api"}) || claims["sub"] != alice.ID || actorOf(claims) != "frontend" || claims["client_id"] != "frontend" {
			t.Errorf("claims %v: want aud orders-api, sub alice, act.sub frontend, client_id frontend", claims)
		}
		if status, _, info := srv.userinfo(token); status != http.StatusOK || info["sub"] != alice.ID {
			t.Errorf("userinfo with the exchanged token: %d %v", status, info)
		}
		intro := introspect(orders, token)
		if intro["active"] != true || !slices.Contains(audiences(intro["aud"]), "orders-api") || actorOf(intro) != "frontend" || intro["sub"] != alice.ID {
			t.Errorf("introspection by orders-api: %v", intro)
		}
		// The subject token's own introspection has no act.
		if intro := introspect(orders, aliceTok.AccessToken); intro["active"] != true || intro["act"] != nil {
			t.Errorf("introspection of the subject token: %v", intro)
		}
	})

	t.Run("delegation to an opaque audience with fewer scopes", func(t *testing.T) {
		bobTok := frontend.tokens("bob")
		// Asking for a scope the subject token lacks is refused, never trimmed.
		wantTokenError(t, "scope widening", frontend, exchangeForm(bobTok.AccessToken, typeAccessToken, "audience", "reports-api", "scope", "openid email phone"),
			http.StatusBadRequest, "invalid_scope")
		status, _, m := frontend.tokenPost(exchangeForm(bobTok.AccessToken, typeAccessToken, "audience", "reports-api", "scope", "openid profile email"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange: %d %v", status, m)
		}
		// reports-api may receive openid and email only: profile is dropped.
		if m["scope"] != "openid email" {
			t.Errorf("scope %v, want the target app's share of the subject token's", m["scope"])
		}
		token := m["access_token"].(string)
		if strings.Count(token, ".") == 2 {
			t.Errorf("reports-api uses opaque tokens, got a JWT")
		}
		intro := introspect(reports, token)
		if intro["active"] != true || !slices.Equal(audiences(intro["aud"]), []string{"reports-api"}) || actorOf(intro) != "frontend" || intro["scope"] != "openid email" {
			t.Errorf("introspection: %v", intro)
		}
		if status, _, info := srv.userinfo(token); status != http.StatusOK || info["sub"] != bob.ID || info["email"] != "bob@example.com" || info["name"] != nil {
			t.Errorf("userinfo: %d %v (want email, no profile)", status, info)
		}
		// A resource URI on the app's list.
		status, _, m = frontend.tokenPost(exchangeForm(bobTok.AccessToken, typeAccessToken, "resource", "https://files.example.com/"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange for a resource: %d %v", status, m)
		}
		if intro := introspect(reports, m["access_token"].(string)); !slices.Equal(audiences(intro["aud"]), []string{"https://files.example.com/"}) {
			t.Errorf("introspection of a resource token: %v", intro)
		}
	})

	t.Run("chained delegation", func(t *testing.T) {
		bobTok := frontend.tokens("bob")
		status, _, m := frontend.tokenPost(exchangeForm(bobTok.AccessToken, typeAccessToken, "audience", "orders-api"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange for orders-api: %d %v", status, m)
		}
		// orders-api holds a token issued for it, and passes the user on.
		status, _, m = orders.tokenPost(exchangeForm(m["access_token"].(string), typeAccessToken, "audience", "reports-api"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange by orders-api for reports-api: %d %v", status, m)
		}
		intro := introspect(reports, m["access_token"].(string))
		act, _ := intro["act"].(map[string]any)
		if intro["active"] != true || intro["client_id"] != "orders-api" || actorOf(intro) != "orders-api" || actorOf(act) != "frontend" || intro["sub"] != bob.ID {
			t.Errorf("introspection of the twice exchanged token: %v (want act orders-api, then frontend)", intro)
		}
		// A JWT access token may be typed by its format too (RFC 8693 §3),
		// as Spring Security's client types every JWT; an opaque token or
		// an ID token so typed is refused.
		status, _, j := frontend.tokenPost(exchangeForm(bobTok.AccessToken, typeAccessToken, "audience", "orders-api"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange for orders-api: %d %v", status, j)
		}
		status, _, j = orders.tokenPost(exchangeForm(j["access_token"].(string), typeJWT, "audience", "reports-api"), true)
		if status != http.StatusOK || j["issued_token_type"] != typeAccessToken {
			t.Fatalf("exchange of a JWT access token typed jwt: %d %v", status, j)
		}
		if intro := introspect(reports, j["access_token"].(string)); intro["active"] != true || actorOf(intro) != "orders-api" || intro["sub"] != bob.ID {
			t.Errorf("introspection of the token exchanged from one typed jwt: %v", intro)
		}
		wantTokenError(t, "opaque token typed jwt", frontend, exchangeForm(bobTok.AccessToken, typeJWT, "audience", "orders-api"), http.StatusBadRequest, "invalid_request")
		idToken, _ := bobTok.Extra("id_token").(string)
		wantTokenError(t, "ID token typed jwt", frontend, exchangeForm(idToken, typeJWT, "audience", "orders-api"), http.StatusBadRequest, "invalid_request")

		// Its own token (issued to it, not for it by a user) it cannot pass on.
		status, _, m = orders.tokenPost(url.Values{"grant_type": {"client_credentials"}}, true)
		if status != http.StatusOK {
			t.Fatalf("client_credentials: %d %v", status, m)
		}
		wantTokenError(t, "orders-api's own machine token", orders, exchangeForm(m["access_token"].(string), typeAccessToken, "audience", "reports-api"),
			http.StatusBadRequest, "invalid_request")
	})

	// A token of an app held for an administrator's approval (a
	// self-registered app that changed its registration; here the flag
	// set in the store) works nowhere while the app is held: not at
	// userinfo, not at introspection, and it is not passed on by the app
	// it was issued for. Approved again, it works again.
	t.Run("a token of an app held for approval", func(t *testing.T) {
		bobTok := frontend.tokens("bob")
		status, _, m := frontend.tokenPost(exchangeForm(bobTok.AccessToken, typeAccessToken, "audience", "orders-api"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange for orders-api: %d %v", status, m)
		}
		forOrders := m["access_token"].(string) // issued to frontend, for orders-api
		hold := func(held bool) {
			t.Helper()
			if _, err := srv.Main.Store.UpdateClient(ctx, frontend.ID, func(c storage.Client) (storage.Client, error) {
				c.PendingApproval = held
				return c, nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		t.Cleanup(func() { hold(false) })
		works := func(when string, want bool) {
			t.Helper()
			if status, _, info := srv.userinfo(forOrders); (status == http.StatusOK) != want {
				t.Errorf("%s: userinfo %d %v, want it to work: %v", when, status, info, want)
			}
			if intro := introspect(orders, forOrders); (intro["active"] == true) != want {
				t.Errorf("%s: introspection %v, want active %v", when, intro, want)
			}
			status, _, m := orders.tokenPost(exchangeForm(forOrders, typeAccessToken, "audience", "reports-api"), true)
			if want && status != http.StatusOK {
				t.Errorf("%s: exchange by orders-api: %d %v", when, status, m)
			}
			if !want && (status != http.StatusBadRequest || m["error"] != "invalid_request" || m["access_token"] != nil) {
				t.Errorf("%s: exchange by orders-api: %d %v, want 400 invalid_request", when, status, m)
			}
		}
		hold(true)
		works("frontend held", false)
		hold(false)
		works("frontend approved again", true)
	})

	t.Run("refusals", func(t *testing.T) {
		form := func(extra ...string) url.Values { return exchangeForm(aliceTok.AccessToken, typeAccessToken, extra...) }
		wantTokenError(t, "audience not allowed for the app", frontend, form("audience", "other"), http.StatusBadRequest, "invalid_target")
		wantTokenError(t, "resource not allowed for the app", frontend, form("resource", "https://evil.example.com/"), http.StatusBadRequest, "invalid_target")
		wantTokenError(t, "one of two audiences not allowed", frontend, form("audience", "orders-api", "audience", "mailer"), http.StatusBadRequest, "invalid_target")
		wantTokenError(t, "no audience", frontend, form(), http.StatusBadRequest, "invalid_request")
		// A token issued to frontend, presented by another app allowed to
		// exchange for the same audience.
		wantTokenError(t, "token not issued to the app", other, form("audience", "orders-api"), http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "app without the grant", plain, form("audience", "orders-api"), http.StatusBadRequest, "unauthorized_client")
		bad := *frontend
		bad.Secret = "wrong-secret-0123456789"
		wantTokenError(t, "wrong secret", &bad, form("audience", "orders-api"), http.StatusUnauthorized, "invalid_client")
		wantTokenError(t, "unknown subject_token_type", frontend, exchangeForm(aliceTok.AccessToken, "urn:ietf:params:oauth:token-type:saml2", "audience", "orders-api"),
			http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "missing subject_token", frontend, exchangeForm("", typeAccessToken, "audience", "orders-api"), http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "refresh token requested", frontend, form("audience", "orders-api", "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"),
			http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "actor_token", frontend, form("audience", "orders-api", "actor_token", aliceTok.AccessToken, "actor_token_type", typeAccessToken),
			http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "garbage subject token", frontend, exchangeForm("not-a-token", typeAccessToken, "audience", "orders-api"), http.StatusBadRequest, "invalid_request")
		idToken, _ := aliceTok.Extra("id_token").(string)
		wantTokenError(t, "ID token as access token", frontend, exchangeForm(idToken, typeAccessToken, "audience", "orders-api"), http.StatusBadRequest, "invalid_request")
		// alice is not in reports-api's allowed groups.
		wantTokenError(t, "target app's allowed groups", frontend, form("audience", "reports-api"), http.StatusBadRequest, "invalid_target")

		status, _, m := frontend.tokenPost(url.Values{"grant_type": {"client_credentials"}}, true)
		if status != http.StatusOK {
			t.Fatalf("client_credentials: %d %v", status, m)
		}
		wantTokenError(t, "client_credentials token", frontend, exchangeForm(m["access_token"].(string), typeAccessToken, "audience", "orders-api"),
			http.StatusBadRequest, "invalid_request")
	})

	t.Run("revoked subject token", func(t *testing.T) {
		tok := frontend.tokens("alice")
		if status, _, m := srv.postForm("/revoke", url.Values{"token": {tok.AccessToken}}, frontend.ID, frontend.Secret); status != http.StatusOK {
			t.Fatalf("revoke: %d %v", status, m)
		}
		wantTokenError(t, "revoked", frontend, exchangeForm(tok.AccessToken, typeAccessToken, "audience", "orders-api"), http.StatusBadRequest, "invalid_request")
	})

	t.Run("subject token's sign-in revoked", func(t *testing.T) {
		// The app revokes the sign-in's refresh token (RFC 7009), which
		// revokes the access tokens of its family: what was exchanged
		// from them goes with them, at the app and down a chain.
		offline := *frontend
		offline.oauth.Scopes = append(slices.Clone(frontend.oauth.Scopes), oidc.ScopeOfflineAccess)
		tok := offline.tokens("bob")
		if tok.RefreshToken == "" {
			t.Fatal("the sign-in gave no refresh token")
		}
		status, _, m := frontend.tokenPost(exchangeForm(tok.AccessToken, typeAccessToken, "audience", "orders-api"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange: %d %v", status, m)
		}
		exchanged := m["access_token"].(string)
		status, _, m = orders.tokenPost(exchangeForm(exchanged, typeAccessToken, "audience", "reports-api"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange by orders-api: %d %v", status, m)
		}
		chained := m["access_token"].(string)
		if status, _, m := srv.postForm("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}}, frontend.ID, frontend.Secret); status != http.StatusOK {
			t.Fatalf("revoke: %d %v", status, m)
		}
		if intro := introspect(orders, tok.AccessToken); intro["active"] != false {
			t.Fatalf("the subject token outlived its family: %v", intro)
		}
		for name, token := range map[string]string{"exchanged": exchanged, "exchanged twice": chained} {
			if intro := introspect(reports, token); intro["active"] != false {
				t.Errorf("the %s token outlived the revocation of the sign-in it came from: %v", name, intro)
			}
			if status, _, _ := srv.userinfo(token); status != http.StatusUnauthorized {
				t.Errorf("userinfo with the %s token of a revoked sign-in: %d", name, status)
			}
		}
		wantTokenError(t, "exchanged token of a revoked sign-in", orders, exchangeForm(exchanged, typeAccessToken, "audience", "reports-api"), http.StatusBadRequest, "invalid_request")
	})

	t.Run("user blocked after issue", func(t *testing.T) {
		tok := frontend.tokens("carol")
		status, _, m := frontend.tokenPost(exchangeForm(tok.AccessToken, typeAccessToken, "audience", "orders-api"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange: %d %v", status, m)
		}
		exchanged := m["access_token"].(string)
		// Blocked in the store, as a directory sync does, so the tokens
		// stay: the exchange itself must check the account (SetBlocked
		// would also revoke them).
		if _, err := srv.Main.Store.UpdateUser(ctx, carol.ID, func(u storage.User) (storage.User, error) { u.Blocked = true; return u, nil }); err != nil {
			t.Fatal(err)
		}
		wantTokenError(t, "blocked user", frontend, exchangeForm(tok.AccessToken, typeAccessToken, "audience", "orders-api"), http.StatusBadRequest, "invalid_request")
		if status, _, _ := srv.userinfo(exchanged); status != http.StatusUnauthorized {
			t.Errorf("userinfo with a blocked user's exchanged token: %d", status)
		}
		if intro := introspect(orders, exchanged); intro["active"] != false {
			t.Errorf("introspection of a blocked user's exchanged token: %v", intro)
		}
	})

	t.Run("app password", func(t *testing.T) {
		limited, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, alice, "mail", "mailer")
		if err != nil {
			t.Fatal(err)
		}
		forFrontend, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, alice, "web", "frontend")
		if err != nil {
			t.Fatal(err)
		}
		anyApp, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, alice, "any", "")
		if err != nil {
			t.Fatal(err)
		}
		status, _, m := mailer.tokenPost(exchangeForm("alice:"+limited, typeAppPassword, "scope", "openid email offline_access"), true)
		if status != http.StatusOK {
			t.Fatalf("exchange an app password: %d %v", status, m)
		}
		if m["issued_token_type"] != typeAccessToken || m["refresh_token"] != nil || m["scope"] != "openid email" {
			t.Errorf("response %v: want an access token with openid email and no refresh token", m)
		}
		if exp, _ := m["expires_in"].(float64); exp <= 0 || exp > 3600 {
			t.Errorf("expires_in %v, want at most an hour", m["expires_in"])
		}
		token := m["access_token"].(string)
		if status, _, info := srv.userinfo(token); status != http.StatusOK || info["sub"] != alice.ID || info["email"] != "alice@example.com" {
			t.Errorf("userinfo: %d %v", status, info)
		}
		if intro := introspect(mailer, token); intro["active"] != true || !slices.Equal(audiences(intro["aud"]), []string{"mailer"}) || intro["act"] != nil {
			t.Errorf("introspection: %v", intro)
		}
		// The email address works as the name too.
		if status, _, m := mailer.tokenPost(exchangeForm("alice@example.com:"+limited, typeAppPassword), true); status != http.StatusOK {
			t.Errorf("by email: %d %v", status, m)
		}
		wantTokenError(t, "password limited to another app", mailer, exchangeForm("alice:"+forFrontend, typeAppPassword), http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "password for every app", mailer, exchangeForm("alice:"+anyApp, typeAppPassword), http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "the account password", mailer, exchangeForm("alice:"+testPassword, typeAppPassword), http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "another app presents it", frontend, exchangeForm("alice:"+limited, typeAppPassword), http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "for another audience", mailer, exchangeForm("alice:"+limited, typeAppPassword, "audience", "orders-api"), http.StatusBadRequest, "invalid_target")
		wantTokenError(t, "no name", mailer, exchangeForm(limited, typeAppPassword), http.StatusBadRequest, "invalid_request")

		// Wrong app passwords are guesses: throttled like any.
		if _, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, dave, "mail", "mailer"); err != nil {
			t.Fatal(err)
		}
		throttled := 0
		for i := 0; i < 30 && throttled == 0; i++ {
			status, h, m := mailer.tokenPost(exchangeForm("dave:wrong-"+strings.Repeat("x", i), typeAppPassword), true)
			switch {
			case status == http.StatusTooManyRequests && h.Get("Retry-After") != "":
				throttled = i + 1
			case status != http.StatusBadRequest || m["error"] != "invalid_request":
				t.Fatalf("wrong app password %d: %d %v", i, status, m)
			}
		}
		t.Logf("throttled at wrong app password %d (max_login_attempts %d)", throttled, srv.Main.Config.Limits.MaxLoginAttempts)
		if throttled == 0 || throttled > srv.Main.Config.Limits.MaxLoginAttempts+1 {
			t.Errorf("throttled after %d wrong app passwords, want after %d", throttled, srv.Main.Config.Limits.MaxLoginAttempts)
		}
	})

	// A token exchanged from an app password lives only as long as the app
	// password: revoked on the security page, expired or its user blocked,
	// the token stops working at once at every reader (userinfo,
	// introspection, token exchange, the management API's reader), and
	// so does what was exchanged from it in turn; another app password's
	// token is untouched.
	t.Run("app password revoked or expired", func(t *testing.T) {
		erin := srv.createUser("erin", false)
		b := newBrowser(t)
		signInPortal(t, srv, b, "erin")
		secrets := map[string]string{}
		for _, name := range []string{"laptop", "phone", "tablet"} {
			secrets[name] = createOnPage(t, srv, b, "/security/app-passwords", url.Values{"ap_name": {name}, "client_id": {"frontend"}})
		}
		stored, err := srv.Main.Store.ListCredentials(ctx, erin.ID, storage.KindAppPassword)
		if err != nil || len(stored) != 3 {
			t.Fatalf("erin's app passwords: %v %v", stored, err)
		}
		ids := map[string]string{}
		for _, c := range stored {
			ids[c.Name] = c.ID
		}
		exchange := func(name string) string {
			t.Helper()
			status, _, m := frontend.tokenPost(exchangeForm("erin:"+secrets[name], typeAppPassword, "scope", "openid email"), true)
			if status != http.StatusOK {
				t.Fatalf("exchange app password %s: %d %v", name, status, m)
			}
			return m["access_token"].(string)
		}
		// works checks token at every reader; alive says whether it should
		// be accepted.
		works := func(what, token string, alive bool) {
			t.Helper()
			status, h, info := srv.userinfo(token)
			switch {
			case alive && (status != http.StatusOK || info["sub"] != erin.ID):
				t.Errorf("%s: userinfo %d %v, want erin's claims", what, status, info)
			case !alive && (status != http.StatusUnauthorized || info["error"] != "invalid_token" || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`)):
				t.Errorf("%s: userinfo %d %v %q, want 401 invalid_token", what, status, info, h.Get("WWW-Authenticate"))
			}
			if intro := introspect(frontend, token); intro["active"] != alive || (alive && intro["sub"] != erin.ID) {
				t.Errorf("%s: introspection %v, want active %v", what, intro, alive)
			}
			// The management API's reader (ReadAccessToken); /api/v1
			// itself never takes a person's token, whether or not it is
			// live, so an app acting for a person gains no admin rights.
			if read, err := srv.Main.Provider.ReadAccessToken(ctx, token); (err == nil) != alive || (alive && read.UserID != erin.ID) {
				t.Errorf("%s: ReadAccessToken %+v, %v; want it live %v", what, read, err, alive)
			}
			if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/users", token, "", ""); status != http.StatusUnauthorized {
				t.Errorf("%s: the management API took a person's token: %d %v", what, status, body)
			}
		}

		laptop, phone, tablet := exchange("laptop"), exchange("phone"), exchange("tablet")
		// Passed on by delegation (the app holds it) to orders-api.
		status, _, m := frontend.tokenPost(exchangeForm(laptop, typeAccessToken, "audience", "orders-api"), true)
		if status != http.StatusOK {
			t.Fatalf("delegate the app password's token: %d %v", status, m)
		}
		delegated := m["access_token"].(string)
		works("laptop token", laptop, true)
		works("phone token", phone, true)
		if intro := introspect(orders, delegated); intro["active"] != true || actorOf(intro) != "frontend" {
			t.Errorf("introspection of the delegated token: %v", intro)
		}

		// erin revokes the laptop's app password on her security page.
		p := b.get(srv.URL + "/security/access")
		if r := postPage(b, p, "/security/app-passwords/revoke", url.Values{"id": {ids["laptop"]}}); r.Status != http.StatusOK || !strings.Contains(r.Body, "Revoked") {
			t.Fatalf("revoke on the security page: %d %s", r.Status, truncateBody(r.Body))
		}
		works("laptop token after its app password was revoked", laptop, false)
		if intro := introspect(orders, delegated); intro["active"] != false {
			t.Errorf("the token delegated from the revoked app password's token is still active: %v", intro)
		}
		if status, _, _ := srv.userinfo(delegated); status != http.StatusUnauthorized {
			t.Errorf("userinfo with the token delegated from the revoked app password's token: %d", status)
		}
		wantTokenError(t, "revoked app password's token as subject_token", frontend, exchangeForm(laptop, typeAccessToken, "audience", "orders-api"),
			http.StatusBadRequest, "invalid_request")
		wantTokenError(t, "the revoked app password", frontend, exchangeForm("erin:"+secrets["laptop"], typeAppPassword), http.StatusBadRequest, "invalid_request")
		// The other app passwords' tokens are untouched.
		works("phone token after another app password was revoked", phone, true)
		works("tablet token after another app password was revoked", tablet, true)

		// The tablet's app password expires (app passwords have no expiry
		// of their own yet; the store's record does): its token, which
		// would live longer, ends with it.
		if _, err := srv.Main.Store.UpdateCredential(ctx, erin.ID, ids["tablet"], func(c storage.Credential) (storage.Credential, error) {
			c.ExpiresAt = clock().Add(time.Minute)
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
		works("tablet token before its app password expires", tablet, true)
		offset.Store(int64(2 * time.Minute))
		defer offset.Store(0)
		works("tablet token after its app password expired", tablet, false)
		works("phone token after another app password expired", phone, true)

		// Blocking erin (in the store, as a directory sync does, which
		// leaves the tokens stored) ends the last one too.
		if _, err := srv.Main.Store.UpdateUser(ctx, erin.ID, func(u storage.User) (storage.User, error) { u.Blocked = true; return u, nil }); err != nil {
			t.Fatal(err)
		}
		works("phone token of a blocked user", phone, false)
	})

	// A token issued to an app that was deleted since is the old app's,
	// not the one registered again under its ID: dead at every reader
	// (userinfo, introspection, token exchange, the management API's
	// reader), not only at the management API. Deleting the app deletes
	// its stored tokens; a grant that authenticated the old app just
	// before the deletion stores its token just after, which the test
	// does by storing the old token's record again.
	t.Run("app deleted and registered again", func(t *testing.T) {
		kim := srv.createUser("kim", false)
		kioskApp := account.NewClient{ID: "kiosk", GrantTypes: []string{account.GrantAuthorizationCode, grantTokenExchange},
			AccessTokenJWT: true, TokenExchangeAudiences: []string{"orders-api"}}
		kiosk := srv.createClient(kioskApp)
		token := kiosk.tokens("kim").AccessToken
		jti, _ := jwtClaims(t, srv, token)["jti"].(string)
		record, err := srv.Main.Store.GetAccessToken(ctx, jti)
		if err != nil {
			t.Fatalf("kiosk's token %q is not stored: %v", jti, err)
		}
		// works checks token at every reader; alive says whether it should
		// be accepted.
		works := func(what string, alive bool) {
			t.Helper()
			status, h, info := srv.userinfo(token)
			switch {
			case alive && (status != http.StatusOK || info["sub"] != kim.ID):
				t.Errorf("%s: userinfo %d %v, want kim's claims", what, status, info)
			case !alive && (status != http.StatusUnauthorized || info["error"] != "invalid_token" || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_token"`)):
				t.Errorf("%s: userinfo %d %v %q, want 401 invalid_token", what, status, info, h.Get("WWW-Authenticate"))
			}
			if intro := introspect(orders, token); intro["active"] != alive || (alive && intro["client_id"] != "kiosk") {
				t.Errorf("%s: introspection %v, want active %v", what, intro, alive)
			}
			if _, err := srv.Main.Provider.ReadAccessToken(ctx, token); (err == nil) != alive {
				t.Errorf("%s: ReadAccessToken: %v; want it live %v", what, err, alive)
			}
			status, _, m := kiosk.tokenPost(exchangeForm(token, typeAccessToken, "audience", "orders-api"), true)
			switch {
			case alive && status != http.StatusOK:
				t.Errorf("%s: exchange by kiosk: %d %v", what, status, m)
			case !alive && (status != http.StatusBadRequest || m["error"] != "invalid_request" || m["access_token"] != nil):
				t.Errorf("%s: exchange by kiosk: %d %v, want 400 invalid_request", what, status, m)
			}
		}
		works("kiosk's token", true)

		if err := srv.Main.Accounts.Clients.DeleteClient(ctx, account.SystemActor, "kiosk"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // the new app is created in a later millisecond (issuedBefore)
		kiosk = srv.createClient(kioskApp)
		again, err := srv.Main.Store.GetClient(ctx, "kiosk")
		if err != nil || !record.CreatedAt.Before(again.CreatedAt.Truncate(time.Millisecond)) {
			t.Fatalf("kiosk registered again at %v (%v), not after its token of %v", again.CreatedAt, err, record.CreatedAt)
		}
		// Stored after the deletion, without the refresh family the
		// deletion took (the grant in flight stores its own).
		record.FamilyID = ""
		if err := srv.Main.Store.CreateTokens(ctx, record, nil); err != nil {
			t.Fatal(err)
		}
		works("the deleted kiosk's token once kiosk is registered again", false)
	})

	t.Run("expired subject token", func(t *testing.T) {
		tok := frontend.tokens("alice")
		offset.Store(int64(24 * time.Hour))
		defer offset.Store(0)
		wantTokenError(t, "expired", frontend, exchangeForm(tok.AccessToken, typeAccessToken, "audience", "orders-api"), http.StatusBadRequest, "invalid_request")
	})
}

// TestRandomTokenExchangeNever5xx sends token-exchange requests built from
// random parameters, valid and not, with an app that may use the grant
// and a live subject token among the values: nothing may get a 5xx, and
// every refusal is one of the codes RFC 6749 §5.2 and RFC 8693 §2.2.2 name.
func TestRandomTokenExchangeNever5xx(t *testing.T) {
	srv := startServer(t, "", nil)
	rex := srv.createUser("rex", false)
	app := srv.createClient(account.NewClient{ID: "app", Secret: tokenExchangeSecret,
		GrantTypes:             []string{account.GrantAuthorizationCode, account.GrantClientCredentials, grantTokenExchange},
		TokenExchangeAudiences: []string{"api", "https://api.example.com/"}})
	srv.createClient(account.NewClient{ID: "api", GrantTypes: []string{account.GrantClientCredentials}, AccessTokenJWT: true})
	password, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(context.Background(), rex, "cli", "app")
	if err != nil {
		t.Fatal(err)
	}
	live := app.tokens("rex").AccessToken

	keys := []string{"subject_token", "subject_token_type", "actor_token", "actor_token_type", "requested_token_type",
		"audience", "audience", "resource", "scope", "client_id", "client_secret"}
	values := []string{"", live, live, "rex:" + password, "rex:", ":" + password, "app", "api", "https://api.example.com/",
		"https://api.example.com/#f", "/relative", typeAccessToken, typeAccessToken, typeAppPassword, typeAppPassword,
		"urn:ietf:params:oauth:token-type:refresh_token", "urn:ietf:params:oauth:token-type:id_token", "openid", "openid email offline_access",
		"keyport:admin", strings.Repeat("a", 9000), "%", "\x00", "é", "x.y.z", "eyJhbGciOiJub25lIn0.e30.", tokenExchangeSecret}
	allowed := map[string]bool{"invalid_request": true, "invalid_client": true, "unauthorized_client": true,
		"invalid_scope": true, "invalid_target": true, "temporarily_unavailable": true}
	rng := rand.New(rand.NewPCG(8693, 1))
	pick := func(s []string) string { return s[rng.IntN(len(s))] }
	issued, failures := 0, 0
	for i := 0; i < 600 && failures < 10; i++ {
		form := url.Values{"grant_type": {grantTokenExchange}}
		switch rng.IntN(3) {
		case 0: // a valid subject, so the rest of the request is what decides
			form.Set("subject_token", live)
			form.Set("subject_token_type", typeAccessToken)
			form.Set("audience", "api")
		case 1:
			form.Set("subject_token", "rex:"+password)
			form.Set("subject_token_type", typeAppPassword)
		}
		for n := rng.IntN(4); n > 0; n-- {
			form.Add(pick(keys), pick(values))
		}
		req := srv.formRequest("/oauth/token", form, "", "")
		if rng.IntN(4) != 0 {
			req.SetBasicAuth(app.ID, pick([]string{tokenExchangeSecret, tokenExchangeSecret, "wrong", "%zz"}))
		}
		r, err := fetch(bareClient, req)
		if err != nil {
			t.Errorf("%v: %v", form, err)
			failures++
			continue
		}
		var m map[string]any
		_ = json.Unmarshal([]byte(r.Body), &m)
		switch {
		case r.Status >= 500:
			t.Errorf("%s: %d %s", truncateBody(form.Encode()), r.Status, truncateBody(r.Body))
			failures++
		case r.Status == http.StatusOK:
			issued++
			if m["issued_token_type"] != typeAccessToken || m["refresh_token"] != nil {
				t.Errorf("%s: %s", truncateBody(form.Encode()), r.Body)
				failures++
			}
		case !allowed[fmt.Sprint(m["error"])]:
			t.Errorf("%s: %d with error %v", truncateBody(form.Encode()), r.Status, m["error"])
			failures++
		}
	}
	t.Logf("%d of 600 random exchanges issued a token", issued)
}

// The grant and the audiences an app may exchange for are set in
// config.toml, the management API and the console, under the same rules.
func TestTokenExchangeSettings(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "static-app", RedirectURIs: []string{"https://static.example.com/cb"}, Secret: "static-secret-0123456789",
			GrantTypes: []string{"authorization_code", grantTokenExchange}, TokenExchangeAudiences: []string{"api", "https://api.example.com/"}})
	})
	rw, _, _ := adminTokens(t, srv)
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/clients/static-app", rw, "", ""); status != http.StatusOK ||
		!slices.Contains(toStrings(body["grant_types"]), grantTokenExchange) || !slices.Equal(toStrings(body["token_exchange_audiences"]), []string{"api", "https://api.example.com/"}) {
		t.Errorf("the static app from config.toml: %d %v", status, body)
	}
	for _, c := range []struct{ body, field string }{
		{`{"id":"w","public":true,"redirect_uris":["https://a.example/cb"],"grant_types":["authorization_code","` + grantTokenExchange + `"]}`, "grant_types"},
		{`{"id":"w","grant_types":["` + grantTokenExchange + `"],"token_exchange_audiences":["not an id"]}`, "token_exchange_audiences"},
		{`{"id":"w","grant_types":["` + grantTokenExchange + `"],"token_exchange_audiences":["javascript:alert(1)"]}`, "token_exchange_audiences"},
		{`{"id":"w","grant_types":["urn:ietf:params:oauth:grant-type:jwt-bearer"]}`, "grant_types"},
	} {
		if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", c.body); status != http.StatusBadRequest || body["field"] != c.field {
			t.Errorf("create %s: %d %v, want the field %q named", c.body, status, body, c.field)
		}
	}
	status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
		`{"id":"w","grant_types":["`+grantTokenExchange+`"],"token_exchange_audiences":["api","api"," static-app "]}`)
	client, _ := body["client"].(map[string]any)
	if status != http.StatusCreated || !slices.Equal(toStrings(client["token_exchange_audiences"]), []string{"api", "static-app"}) {
		t.Fatalf("create with audiences: %d %v", status, body)
	}
	status, _, body = apiCall(t, srv, http.MethodPatch, "/api/v1/clients/w", rw, "application/json", `{"token_exchange_audiences":[]}`)
	if status != http.StatusOK || len(toStrings(body["token_exchange_audiences"])) != 0 {
		t.Errorf("patch clearing the audiences: %d %v", status, body)
	}
	// The console's app form sets both.
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	form := url.Values{"id": {"console-app"}, "name": {"Console"}, "type": {"confidential"},
		"grant_types": {grantTokenExchange}, "token_exchange_audiences": {"api, https://api.example.com/"}}
	if p := submitForm(t, b, b.get(srv.URL+"/admin/apps/new"), "/admin/apps/new", form); p.Status >= 400 {
		t.Fatalf("create in the console: %d %s", p.Status, truncateBody(p.Body))
	}
	c, err := srv.Main.Store.GetClient(context.Background(), "console-app")
	if err != nil || !slices.Equal(c.GrantTypes, []string{grantTokenExchange}) || !slices.Equal(c.TokenExchangeAudiences, []string{"api", "https://api.example.com/"}) {
		t.Errorf("the console's app: %+v, %v", c, err)
	}
	if p := b.get(srv.URL + "/admin/apps/console-app"); !strings.Contains(p.Body, `value="api, https://api.example.com/"`) {
		t.Errorf("the app page does not show the audiences")
	}
}

// wantTokenError posts form to c's token endpoint and wants the error
// wantCode with wantStatus, and no token.
func wantTokenError(t *testing.T, name string, c *testClient, form url.Values, wantStatus int, wantCode string) {
	t.Helper()
	status, _, m := c.tokenPost(form, true)
	if status != wantStatus || m["error"] != wantCode {
		t.Errorf("%s: %d %v, want %d %s", name, status, m, wantStatus, wantCode)
	}
	if m["access_token"] != nil {
		t.Errorf("%s: issued a token: %v", name, m)
	}
}
