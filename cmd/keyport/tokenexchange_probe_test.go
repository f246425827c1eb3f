package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// TestTokenExchangeRefusals sends a token-exchange request for every way
// an attacker might bend one: each is refused with the code RFC 6749 §5.2,
// RFC 8693 §2.2.2 or RFC 8707 §2 names, with a 4xx, and issues nothing;
// the subject token stays what it was.
func TestTokenExchangeRefusals(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DPoP = true })
	ctx := context.Background()
	srv.createUser("ann", false)
	ben := srv.createUser("ben", false)
	cid := srv.createUser("cid", false)
	front := srv.createClient(account.NewClient{ID: "pf", Secret: tokenExchangeSecret,
		GrantTypes:             []string{account.GrantAuthorizationCode, account.GrantRefreshToken, grantTokenExchange},
		TokenExchangeAudiences: []string{"papi", "https://files.example.com/"}})
	api := srv.createClient(account.NewClient{ID: "papi", GrantTypes: []string{account.GrantClientCredentials, grantTokenExchange}, AccessTokenJWT: true})
	otherApp := srv.createClient(account.NewClient{ID: "pother", Secret: tokenExchangeSecret,
		GrantTypes: []string{account.GrantAuthorizationCode, grantTokenExchange}, TokenExchangeAudiences: []string{"papi"}})

	offline := *front
	offline.oauth.Scopes = append(slices.Clone(front.oauth.Scopes), "offline_access")
	annTok := offline.tokens("ann")
	if annTok.RefreshToken == "" {
		t.Fatal("no refresh token")
	}

	form := func(extra ...string) url.Values { return exchangeForm(annTok.AccessToken, typeAccessToken, extra...) }

	t.Run("subject tokens", func(t *testing.T) {
		wantTokenError(t, "refresh token as access token", front, exchangeForm(annTok.RefreshToken, typeAccessToken, "audience", "papi"), 400, "invalid_request")
		wantTokenError(t, "refresh token typed refresh_token", front, exchangeForm(annTok.RefreshToken, "urn:ietf:params:oauth:token-type:refresh_token", "audience", "papi"), 400, "invalid_request")
		wantTokenError(t, "id_token type", front, exchangeForm(annTok.AccessToken, "urn:ietf:params:oauth:token-type:id_token", "audience", "papi"), 400, "invalid_request")
		wantTokenError(t, "unknown URN", front, exchangeForm(annTok.AccessToken, "urn:x:unknown", "audience", "papi"), 400, "invalid_request")
		wantTokenError(t, "access token typed app password", front, exchangeForm(annTok.AccessToken, typeAppPassword), 400, "invalid_request")
		wantTokenError(t, "oversized", front, exchangeForm(strings.Repeat("a", 20000), typeAccessToken, "audience", "papi"), 400, "invalid_request")
		wantTokenError(t, "another app's token", otherApp, form("audience", "papi"), 400, "invalid_request")
		wantTokenError(t, "requested id_token", front, form("audience", "papi", "requested_token_type", "urn:ietf:params:oauth:token-type:id_token"), 400, "invalid_request")
		wantTokenError(t, "requested unknown", front, form("audience", "papi", "requested_token_type", "urn:x"), 400, "invalid_request")
		wantTokenError(t, "actor_token_type alone", front, form("audience", "papi", "actor_token_type", typeAccessToken), 400, "invalid_request")
		wantTokenError(t, "scope widening", front, form("audience", "papi", "scope", "openid keyport:admin"), 400, "invalid_scope")
		wantTokenError(t, "bad scope token", front, form("audience", "papi", "scope", "openid \x01"), 400, "invalid_scope")
		wantTokenError(t, "oversized scope", front, form("audience", "papi", "scope", strings.Repeat("openid ", 3000)), 400, "invalid_scope")
		wantTokenError(t, "oversized audience", front, form("audience", strings.Repeat("a", 20000)), 400, "invalid_target")
		wantTokenError(t, "resource relative", front, form("resource", "/files"), 400, "invalid_target")
		wantTokenError(t, "resource fragment", front, form("resource", "https://files.example.com/#x"), 400, "invalid_target")
		wantTokenError(t, "resource not listed", front, form("resource", "https://files.example.com/other"), 400, "invalid_target")
		wantTokenError(t, "client id as resource", front, form("resource", "papi"), 400, "invalid_target")
		many := form()
		for i := 0; i < 9; i++ {
			many.Add("audience", "papi")
		}
		wantTokenError(t, "too many audiences", front, many, 400, "invalid_request")
	})

	// An audience named twice is the same request as once: the token is
	// in the one target app's format (papi takes JWTs).
	t.Run("audience repeated", func(t *testing.T) {
		for _, f := range []url.Values{form("audience", "papi"), form("audience", "papi", "audience", "papi")} {
			status, _, m := front.tokenPost(f, true)
			if status != 200 {
				t.Fatalf("%v: %d %v", f["audience"], status, m)
			}
			token := m["access_token"].(string)
			if strings.Count(token, ".") != 2 {
				t.Errorf("audience %v: an opaque token for papi, which takes JWTs", f["audience"])
				continue
			}
			if claims := jwtClaims(t, srv, token); !slices.Equal(audiences(claims["aud"]), []string{"papi"}) {
				t.Errorf("audience %v: claims %v", f["audience"], claims)
			}
		}
	})

	t.Run("scope repeated", func(t *testing.T) {
		status, _, m := front.tokenPost(form("audience", "papi", "scope", "openid openid profile"), true)
		if status != 200 || m["scope"] != "openid profile" {
			t.Errorf("scope repeated: %d %v", status, m)
		}
	})

	t.Run("duplicated parameters", func(t *testing.T) {
		for _, k := range []string{"subject_token", "subject_token_type", "requested_token_type", "scope", "grant_type", "actor_token"} {
			f := form("audience", "papi")
			v := f.Get(k)
			if v == "" {
				v = typeAccessToken
			}
			f.Add(k, v)
			f.Add(k, v)
			wantTokenError(t, "repeated "+k, front, f, 400, "invalid_request")
		}
	})

	t.Run("client authentication", func(t *testing.T) {
		f := form("audience", "papi", "client_id", "pf")
		status, _, m := srv.postForm("/oauth/token", f, "", "")
		if status != 401 && status != 400 || m["error"] != "invalid_client" || m["access_token"] != nil {
			t.Errorf("no secret: %d %v", status, m)
		}
		status, _, m = srv.postForm("/oauth/token", form("audience", "papi"), "", "")
		if status/100 != 4 || m["access_token"] != nil {
			t.Errorf("no client: %d %v", status, m)
		}
		if m["error"] != "invalid_client" && m["error"] != "invalid_request" {
			t.Errorf("no client: %v", m)
		}
	})

	t.Run("wrong secret by Basic", func(t *testing.T) {
		status, h, m := srv.postForm("/oauth/token", form("audience", "papi"), front.ID, "wrong-secret-0123456789")
		if status != 401 || m["error"] != "invalid_client" || h.Get("WWW-Authenticate") == "" || h.Get("Cache-Control") != "no-store" {
			t.Errorf("wrong secret: %d %v %v", status, m, h)
		}
		status, h, m = front.tokenPost(form("audience", "nope"), true)
		if status != 400 || h.Get("Cache-Control") != "no-store" {
			t.Errorf("refusal headers: %d %v %v", status, m, h)
		}
	})

	t.Run("app passwords", func(t *testing.T) {
		forFront, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, ben, "cli", "pf")
		if err != nil {
			t.Fatal(err)
		}
		forOther, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, ben, "cli2", "pother")
		if err != nil {
			t.Fatal(err)
		}
		wantTokenError(t, "limited to another app", front, exchangeForm("ben:"+forOther, typeAppPassword), 400, "invalid_request")
		wantTokenError(t, "audience of another app", front, exchangeForm("ben:"+forFront, typeAppPassword, "audience", "papi"), 400, "invalid_target")
		wantTokenError(t, "resource", front, exchangeForm("ben:"+forFront, typeAppPassword, "resource", "https://files.example.com/"), 400, "invalid_target")
		wantTokenError(t, "oversized login", front, exchangeForm(strings.Repeat("b", 50000)+":"+forFront, typeAppPassword), 400, "invalid_request")
		wantTokenError(t, "oversized password", front, exchangeForm("ben:"+strings.Repeat("b", 50000), typeAppPassword), 400, "invalid_request")
		wantTokenError(t, "requested refresh", front, exchangeForm("ben:"+forFront, typeAppPassword, "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), 400, "invalid_request")
		status, _, m := front.tokenPost(exchangeForm("ben:"+forFront, typeAppPassword, "scope", "openid keyport:admin offline_access"), true)
		if status != 200 || strings.Contains(m["scope"].(string), "admin") || strings.Contains(m["scope"].(string), "offline") || m["refresh_token"] != nil {
			t.Errorf("app password with management scope: %d %v", status, m)
		}
		if status, _, m := front.tokenPost(exchangeForm("ben:"+forFront, typeAppPassword, "scope", "openid openid"), true); status != 200 || m["scope"] != "openid" {
			t.Errorf("app password, scope repeated: %d %v", status, m)
		}
		if status, _, m := front.tokenPost(exchangeForm("ben:"+forFront, typeAppPassword, "audience", "pf"), true); status != 200 {
			t.Errorf("audience itself: %d %v", status, m)
		}

		for _, bad := range []string{"\xff\xfe:" + forFront, "ben\x00:" + forFront, ":", "ben:", ":" + forFront, "ben:\xff", "ben@example.com:" + forOther,
			"ben:" + forFront + ":", strings.Repeat(":", 5000)} {
			wantTokenError(t, "odd app password subject "+truncateBody(bad), front, exchangeForm(bad, typeAppPassword), 400, "invalid_request")
		}
		if status, _, m := front.tokenPost(exchangeForm("ben@example.com:"+forFront, typeAppPassword), true); status != 200 {
			t.Errorf("by email: %d %v", status, m)
		}
		// The subject token in the URL, which access logs keep.
		for _, q := range []url.Values{exchangeForm("ben:"+forFront, typeAppPassword), {"subject_token": {"ben:" + forFront}}, {"subject_token": {annTok.AccessToken}}} {
			body := exchangeForm("ben:"+forFront, typeAppPassword)
			if q.Has("subject_token_type") {
				body = url.Values{"grant_type": {grantTokenExchange}}
			} else {
				body.Del("subject_token")
				if strings.Contains(q.Get("subject_token"), annTok.AccessToken) {
					body.Set("subject_token_type", typeAccessToken)
					body.Set("audience", "papi")
				}
			}
			req := srv.formRequest("/oauth/token?"+q.Encode(), body, front.ID, front.Secret)
			status, _, m := doJSON(t, nil, req)
			if status != 400 || m["error"] != "invalid_request" || m["access_token"] != nil {
				t.Errorf("subject_token in the query (%s): %d %v", truncateBody(q.Encode()), status, m)
			}
		}
		cidPass, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, cid, "cli", "pf")
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.Main.Accounts.Users.SetBlocked(ctx, "cid", true); err != nil {
			t.Fatal(err)
		}
		wantTokenError(t, "blocked user", front, exchangeForm("cid:"+cidPass, typeAppPassword), 400, "invalid_request")
		if err := srv.Main.Store.DeleteUser(ctx, cid.ID, time.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		wantTokenError(t, "deleted user", front, exchangeForm("cid:"+cidPass, typeAppPassword), 400, "invalid_request")
	})

	// An app password limited to an app whose allowed groups the person
	// has left since: refused, and the refusal is a failed sign-in in the
	// person's history, not a successful one, and not a use of the app
	// password.
	t.Run("app password of a user no longer in the app's groups", func(t *testing.T) {
		grp := srv.createClient(account.NewClient{ID: "pgrp", Secret: tokenExchangeSecret,
			GrantTypes: []string{account.GrantAuthorizationCode, grantTokenExchange}, AllowedGroups: []string{"staff"}})
		dan := srv.createUser("dan", false)
		setGroups := func(groups ...string) storage.User {
			t.Helper()
			u, err := srv.Main.Store.UpdateUser(ctx, dan.ID, func(u storage.User) (storage.User, error) { u.Groups = groups; return u, nil })
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		password, cred, err := srv.Main.Accounts.Credentials.CreateAppPassword(ctx, setGroups("staff"), "cli", "pgrp")
		if err != nil {
			t.Fatal(err)
		}
		setGroups()
		wantTokenError(t, "not in the app's groups", grp, exchangeForm("dan:"+password, typeAppPassword), 400, "invalid_request")
		// It is told why: not a wrong password, a person the app does
		// not take.
		if _, _, m := grp.tokenPost(exchangeForm("dan:"+password, typeAppPassword), true); !strings.Contains(fmt.Sprint(m["error_description"]), "may not use this app") {
			t.Errorf("the refusal for the app's groups: %v", m)
		}
		attempts, err := srv.Main.Store.ListLoginAttempts(ctx, dan.ID, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(attempts) == 0 || attempts[0].Success {
			t.Errorf("the refused exchange is in the history as %+v, want a failed attempt", attempts)
		}
		creds, err := srv.Main.Store.ListCredentials(ctx, dan.ID, storage.KindAppPassword)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range creds {
			if c.ID == cred.ID && !c.LastUsedAt.IsZero() {
				t.Errorf("the refused exchange noted a use of the app password at %v", c.LastUsedAt)
			}
		}
		// Back in the group, it works.
		setGroups("staff")
		if status, _, m := grp.tokenPost(exchangeForm("dan:"+password, typeAppPassword), true); status != 200 {
			t.Errorf("back in the group: %d %v", status, m)
		}
	})

	t.Run("DPoP-bound subject token", func(t *testing.T) {
		key := newDPoPKey(t)
		code, verifier := front.signIn(newBrowser(t), "ann")
		form0 := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "code_verifier": {verifier}, "redirect_uri": {front.RedirectURI}}
		status, _, m := dpopPost(front, "/oauth/token", form0, key.proof(t, http.MethodPost, srv.URL+"/oauth/token", ""))
		if status != 200 || !strings.EqualFold(m["token_type"].(string), "DPoP") {
			t.Fatalf("DPoP code exchange: %d %v", status, m)
		}
		bound := m["access_token"].(string)
		wantTokenError(t, "bound, no proof", front, exchangeForm(bound, typeAccessToken, "audience", "papi"), 400, "invalid_request")
		other := newDPoPKey(t)
		status, _, m = dpopPost(front, "/oauth/token", exchangeForm(bound, typeAccessToken, "audience", "papi"), other.proof(t, http.MethodPost, srv.URL+"/oauth/token", ""))
		if status != 400 || m["error"] != "invalid_request" || m["access_token"] != nil {
			t.Errorf("bound, other key: %d %v", status, m)
		}
		proof := key.proof(t, http.MethodPost, srv.URL+"/oauth/token", "")
		status, _, m = dpopPost(front, "/oauth/token", exchangeForm(bound, typeAccessToken, "audience", "papi"), proof)
		if status != 200 {
			t.Fatalf("bound, right key: %d %v", status, m)
		}
		exchanged := m["access_token"].(string)
		claims := jwtClaims(t, srv, exchanged)
		cnf, _ := claims["cnf"].(map[string]any)
		if cnf["jkt"] != key.jkt || !slices.Equal(audiences(claims["aud"]), []string{"papi"}) {
			t.Errorf("exchanged from a bound token: %v", claims)
		}
		if intro := api.introspect(t, exchanged); intro["active"] != true {
			t.Errorf("introspection: %v", intro)
		}
		// The same proof again is a replay.
		status, _, m = dpopPost(front, "/oauth/token", exchangeForm(bound, typeAccessToken, "audience", "papi"), proof)
		if status != 400 || m["access_token"] != nil {
			t.Errorf("replayed proof: %d %v", status, m)
		}
	})

	// After all of it, the subject token is as it was.
	if intro := front.introspect(t, annTok.AccessToken); intro["active"] != true || intro["act"] != nil {
		t.Errorf("subject token after the refusals: %v", intro)
	}
}

// TestResourceIndicatorProbes: resources outside a pushed request are not
// taken, a refresh of a family granted none may name none, and a refused
// request leaves the grant working.
func TestResourceIndicatorProbes(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.PushedAuthorizationRequests = true })
	srv.createUser("alice", false)
	const resA, resB = "https://a.example.com/api", "urn:example:b"
	app := srv.createClient(account.NewClient{ID: "rapp", Secret: tokenExchangeSecret, SkipConsent: true, AccessTokenJWT: true,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken}, Resources: []string{resA, resB}})
	app.oauth.Scopes = append(app.oauth.Scopes, "offline_access")

	t.Run("a resource beside request_uri", func(t *testing.T) {
		verifier, challenge := pkce()
		pushed := url.Values{"response_type": {"code"}, "redirect_uri": {app.RedirectURI}, "scope": {"openid offline_access"}, "state": {"st"},
			"code_challenge": {challenge}, "code_challenge_method": {"S256"}, "resource": {resA}}
		status, _, m := app.push(pushed)
		if status != http.StatusCreated {
			t.Fatalf("push: %d %v", status, m)
		}
		b := newBrowser(t)
		p := b.get(app.authorizeURI(m["request_uri"].(string), url.Values{"resource": {resB}}))
		res := landed(t, app.finish(b, p, "alice"), app.RedirectURI)
		if res.Code == "" {
			t.Logf("refused: %+v", res)
			return
		}
		form := url.Values{"grant_type": {"authorization_code"}, "code": {res.Code}, "code_verifier": {verifier}, "redirect_uri": {app.RedirectURI}}
		status, _, tok := app.tokenPost(form, true)
		if status != 200 {
			t.Fatalf("exchange: %d %v", status, tok)
		}
		if got := audiences(jwtClaims(t, srv, tok["access_token"].(string))["aud"]); !slices.Equal(got, []string{resA}) {
			t.Errorf("aud %v, want the pushed resource only", got)
		}
	})

	t.Run("refresh of a family granted no resource", func(t *testing.T) {
		tok := app.tokens("alice")
		refresh := func(resources ...string) (int, map[string]any) {
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
			for _, r := range resources {
				form.Add("resource", r)
			}
			status, _, m := app.tokenPost(form, true)
			return status, m
		}
		for _, rs := range [][]string{{resA}, {resA, resB}, {"https://a.example.com/api#x"}, {"api"}, {""}} {
			if status, m := refresh(rs...); status != 400 || m["error"] != "invalid_target" || m["access_token"] != nil {
				t.Errorf("refresh naming %q: %d %v, want 400 invalid_target", rs, status, m)
			}
		}
		status, m := refresh()
		if status != 200 {
			t.Fatalf("refresh after the refusals: %d %v", status, m)
		}
		if got := audiences(jwtClaims(t, srv, m["access_token"].(string))["aud"]); !slices.Equal(got, []string{app.ID}) {
			t.Errorf("aud %v, want the app", got)
		}
	})
}
