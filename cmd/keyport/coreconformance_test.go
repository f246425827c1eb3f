package main

// Conformance of the core endpoints found wanting in a review: the token
// endpoint's code grant (RFC 6749 §4.1, §5.2; RFC 7636), revocation
// (RFC 7009) and userinfo (RFC 6750), each against the real server.

import (
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
)

func TestCoreConformance(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("cora", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeEmail, oidc.ScopeOfflineAccess}
	other := srv.createClient(account.NewClient{ID: "other", SkipConsent: true})
	b := newBrowser(t)

	// RFC 7009 §2.1: token_type_hint is a hint; a server that does not
	// find the token under it must search its other types. A refresh
	// token sent as an "access_token" must die, not get a 200 and live on.
	t.Run("revocation looks past a wrong token_type_hint", func(t *testing.T) {
		tok := app.tokens("cora")
		// Another client cannot revoke it under that hint either.
		if status, _, body := srv.postForm("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}, other.ID, other.Secret); status == 200 {
			t.Errorf("another client revoked the refresh token with hint access_token: %d %v", status, body)
		}
		if status, _, body := srv.postForm("/revoke", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"access_token"}}, app.ID, app.Secret); status != 200 {
			t.Fatalf("revoke the refresh token with hint access_token: %d %v", status, body)
		}
		status, h, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
		negTokenError(t, "refresh with a token revoked under a wrong hint", status, h, body, 400, "invalid_grant")
		if status, _, _ := srv.userinfo(tok.AccessToken); status != 401 {
			t.Errorf("the access token of the revoked refresh token at userinfo: %d, want 401", status)
		}
	})

	// RFC 6749 §4.1.2.1: an app without the authorization_code grant is
	// refused at /authorize (unauthorized_client), before anyone signs in
	// for a code it can never redeem.
	t.Run("authorize refuses an app without the code grant", func(t *testing.T) {
		m2m := srv.createClient(account.NewClient{ID: "m2m", GrantTypes: []string{account.GrantClientCredentials}})
		_, challenge := pkce()
		p := m2m.authorize(b, "st-m2m", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		if isLoginPage(p) {
			t.Fatalf("an app without the authorization_code grant got the sign-in page")
		}
		res := landed(t, p, m2m.RedirectURI)
		if res.Error != "unauthorized_client" || res.Code != "" || res.State != "st-m2m" {
			t.Errorf("authorize for an app without the code grant: %v, want error=unauthorized_client", res.Query)
		}
	})

}
