package main

// Conformance of the core endpoints found wanting in a review: the token
// endpoint's code grant (RFC 6749 §4.1, §5.2; RFC 7636), revocation
// (RFC 7009) and userinfo (RFC 6750), each against the real server.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
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

	// RFC 7636 §4.2: an S256 code_challenge is the 43 base64url characters
	// of a SHA-256. Any other can match no code_verifier, so it is refused
	// at /authorize, before anyone signs in for a code that cannot be
	// redeemed.
	t.Run("authorize refuses a malformed S256 challenge", func(t *testing.T) {
		_, good := pkce()
		for _, challenge := range []string{"abc", good + "A", good[:42] + "=", good[:42] + "+", strings.Repeat("A", 128)} {
			p := app.authorize(b, "st-pkce", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
			if isLoginPage(p) {
				t.Errorf("challenge %q: got the sign-in page", challenge)
				continue
			}
			if res := landed(t, p, app.RedirectURI); res.Error != "invalid_request" || res.Code != "" || res.State != "st-pkce" {
				t.Errorf("challenge %q: %v, want error=invalid_request", challenge, res.Query)
			}
		}
		if p := app.authorize(b, "st-pkce", oauth2.SetAuthURLParam("code_challenge", good), oauth2.SetAuthURLParam("code_challenge_method", "S256")); !isLoginPage(p) {
			t.Errorf("a well-formed challenge: %d, want the sign-in page", p.Status)
		}
	})

	// RFC 7636 §4.1: a code_verifier is 43 to 128 characters of
	// [A-Z a-z 0-9 - . _ ~]. A malformed one is refused as such and
	// spends nothing; a short one never passes, so a client cannot use
	// PKCE with a guessable verifier.
	t.Run("code_verifier syntax", func(t *testing.T) {
		code, verifier := app.signIn(b, "cora")
		for name, bad := range map[string]string{
			"42 characters":       verifier[:42],
			"129 characters":      strings.Repeat("a", 129),
			"a character outside": verifier[:42] + "+",
		} {
			status, h, body := app.tokenPost(negCodeForm(code, app.RedirectURI, bad), true)
			negTokenError(t, "code_verifier of "+name, status, h, body, 400, "invalid_request")
		}
		if status, _, body := app.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true); status != 200 {
			t.Errorf("the right verifier after malformed ones: %d %v (the refusals spent the code?)", status, body)
		}

		// A challenge of a short verifier: its code is never exchanged.
		short := "too-short-to-be-a-verifier"
		sum := sha256.Sum256([]byte(short))
		p := app.authorize(b, "st-short", oauth2.SetAuthURLParam("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:])),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		res := landed(t, app.finish(b, p, "cora"), app.RedirectURI)
		status, h, body := app.tokenPost(negCodeForm(res.Code, app.RedirectURI, short), true)
		negTokenError(t, "a short verifier matching its challenge", status, h, body, 400, "invalid_request")

		// 128 characters, every allowed one: fine.
		long := strings.Repeat("AZaz09-._~", 12) + "abcdefgh"
		sum = sha256.Sum256([]byte(long))
		p = app.authorize(b, "st-long", oauth2.SetAuthURLParam("code_challenge", base64.RawURLEncoding.EncodeToString(sum[:])),
			oauth2.SetAuthURLParam("code_challenge_method", "S256"))
		res = landed(t, app.finish(b, p, "cora"), app.RedirectURI)
		if status, _, body := app.tokenPost(negCodeForm(res.Code, app.RedirectURI, long), true); status != 200 {
			t.Errorf("a verifier of 128 allowed characters: %d %v", status, body)
		}
	})

	// RFC 6749 §5.2 names the token endpoint's error codes; a code whose
	// user can no longer sign in is an invalid grant (access_denied is
	// the authorization endpoint's).
	t.Run("code of a user blocked since", func(t *testing.T) {
		srv.createUser("bea", false)
		code, verifier := app.signIn(newBrowser(t), "bea")
		if err := srv.Main.Accounts.Users.SetBlocked(context.Background(), "bea", true); err != nil {
			t.Fatal(err)
		}
		status, h, body := app.tokenPost(negCodeForm(code, app.RedirectURI, verifier), true)
		negTokenError(t, "the code of a blocked user", status, h, body, 400, "invalid_grant")
	})

	// RFC 6750 §2: one way to send the token per request; §3.1: two are
	// invalid_request, 400.
	t.Run("userinfo with the token sent twice", func(t *testing.T) {
		tok := app.tokens("cora")
		// zitadel's decoder takes the body's name in any case.
		for _, name := range []string{"access_token", "Access_Token", "ACCESS_TOKEN"} {
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/userinfo", strings.NewReader(url.Values{name: {tok.AccessToken}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
			status, h, body := doJSON(t, nil, req)
			if status != 400 || body["error"] != "invalid_request" || body["sub"] != nil {
				t.Errorf("userinfo with the token in the header and the body as %s: %d %v, want 400 invalid_request", name, status, body)
			}
			if wa := h.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer") || !strings.Contains(wa, `error="invalid_request"`) {
				t.Errorf("WWW-Authenticate = %q, want Bearer with error=\"invalid_request\"", wa)
			}
		}
		// Each way alone still works.
		if status, _, body := srv.userinfo(tok.AccessToken); status != 200 || body["sub"] == nil {
			t.Errorf("userinfo with the header alone: %d %v", status, body)
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/userinfo", strings.NewReader(url.Values{"access_token": {tok.AccessToken}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if status, _, body := doJSON(t, nil, req); status != 200 || body["sub"] == nil {
			t.Errorf("userinfo with the body alone: %d %v", status, body)
		}
	})

	// RFC 6749 §2.3.1: client credentials MUST NOT be in the request URI,
	// which access logs, proxies and histories keep. Refused at every
	// endpoint that authenticates clients.
	t.Run("client secret in the URL", func(t *testing.T) {
		m2m := srv.createClient(account.NewClient{ID: "m2m-url", GrantTypes: []string{account.GrantClientCredentials}})
		for _, path := range []string{"/oauth/token", "/oauth/introspect", "/revoke", "/oauth/par"} {
			for _, name := range []string{"client_secret", "client_assertion"} {
				q := url.Values{"client_id": {m2m.ID}, name: {m2m.Secret}}
				req, _ := http.NewRequest(http.MethodPost, srv.URL+path+"?"+q.Encode(),
					strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "token": {"x"}}.Encode()))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				if status, _, body := doJSON(t, nil, req); status != 400 || body["error"] != "invalid_request" || body["access_token"] != nil {
					t.Errorf("%s with %s in the URL: %d %v, want 400 invalid_request", path, name, status, body)
				}
			}
		}
		// In the body it works.
		if status, _, body := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {m2m.ID}, "client_secret": {m2m.Secret}}, "", ""); status != 200 || body["access_token"] == nil {
			t.Errorf("client_credentials with the secret in the body: %d %v", status, body)
		}
	})

	// RFC 7662 §2.2: an active token's answer names its issuer (iss), which
	// a resource server trusting several servers needs; refresh tokens too.
	t.Run("introspection names the issuer", func(t *testing.T) {
		tok := app.tokens("cora")
		for what, token := range map[string]string{"access token": tok.AccessToken, "refresh token": tok.RefreshToken} {
			status, _, body := srv.postForm("/oauth/introspect", url.Values{"token": {token}}, app.ID, app.Secret)
			if status != 200 || body["active"] != true || body["iss"] != srv.URL {
				t.Errorf("introspection of the %s: %d %v, want active with iss %s", what, status, body, srv.URL)
			}
		}
	})

	// response_mode=form_post with the implicit types: zitadel writes its
	// refusal into the fragment whatever the mode, and the form must
	// still carry it (error, state, iss), not arrive empty.
	t.Run("form_post refusal of an implicit response type", func(t *testing.T) {
		for _, rt := range []string{"token", "id_token", "id_token token"} {
			q := negAuthParams(app.ID, app.RedirectURI, "st-fp")
			q.Set("response_type", rt)
			q.Set("response_mode", "form_post")
			p := bareGet(t, negAuthorizeURL(srv, q))
			f := formFields(p.Body)
			if p.Status != http.StatusOK || f.Get("error") != "unsupported_response_type" || f.Get("state") != "st-fp" || f.Get("iss") != srv.URL {
				t.Errorf("response_type=%s response_mode=form_post: %d, posted %v (Location %q)", rt, p.Status, f, p.Header.Get("Location"))
			}
		}
	})
}

// A [[clients]] jwks_uri follows the rule apps' follow (https, http on
// loopback only) when the file is read, so a file that validates is one
// the server starts with.
func TestConfigJWKSURIRule(t *testing.T) {
	for uri, ok := range map[string]bool{"http://keys.example.com/jwks": false, "http://127.0.0.2/jwks": false, "http://127.0.0.1:9/jwks": true, "https://keys.example.com/jwks": true} {
		path := filepath.Join(t.TempDir(), "keyport.toml")
		toml := `issuer = "https://id.example.com"

[[clients]]
id = "svc"
name = "svc"
grant_types = ["client_credentials"]
token_endpoint_auth_method = "private_key_jwt"
jwks_uri = "` + uri + `"
`
		if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, _, err := config.Load(path, nil)
		if !ok {
			if err == nil || !strings.Contains(err.Error(), "jwks_uri") {
				t.Errorf("jwks_uri %s: config.Load = %v, want a jwks_uri error", uri, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("jwks_uri %s: %v", uri, err)
		}
		if _, err := staticClients(cfg.Clients); err != nil {
			t.Errorf("jwks_uri %s validated, but the server refuses it at start: %v", uri, err)
		}
	}
}
