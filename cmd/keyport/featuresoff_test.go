package main

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// allFeaturesOff turns off every [oauth] feature that is on by default.
func allFeaturesOff(c *config.Config) {
	c.OAuth.PushedAuthorizationRequests = false
	c.OAuth.RequestObjects = false
	c.OAuth.DPoP = false
	c.OAuth.TokenExchange = false
	c.OAuth.PairwiseSubjects = false
	c.OAuth.DynamicRegistration = true
}

// TestOAuthFeaturesOff: each feature [oauth] turns off is neither served
// nor advertised, and no app is given a setting that needs it, by the
// management API, the console or registration (RFC 7591 and 7592); an app
// that had one keeps it through its edits. A DPoP-bound refresh token made
// while DPoP was on still needs its proof after DPoP is turned off, and the
// tokens it then gets are bearer tokens; a proof nothing bound needs is
// ignored. A last restart turns PAR back on with the others off.
func TestOAuthFeaturesOff(t *testing.T) {
	// The device flow is on too (it is off by default, and so again after
	// the restart below).
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DynamicRegistration, c.OAuth.DeviceFlow = true, true })
	srv.createUser("olga", false)
	spa := srv.createClient(account.NewClient{ID: "off-spa", Public: true, SkipConsent: true})
	spa.oauth.Scopes = append(spa.oauth.Scopes, "offline_access")
	key := newDPoPKey(t)
	code, verifier := spa.signIn(newBrowser(t), "olga")
	bound, err := spa.oauth.Exchange(dpopContext(t, key), code, oauth2.VerifierOption(verifier))
	if err != nil || bound.Type() != "DPoP" || bound.RefreshToken == "" {
		t.Fatalf("DPoP-bound tokens while DPoP is on: %v %v", err, bound)
	}
	ctx := context.Background()
	// Apps given each setting while the features were on.
	for _, c := range []storage.Client{
		{ID: "old-pairwise", Name: "Old pairwise", Public: true, SubjectType: account.SubjectPairwise},
		{ID: "old-par", Name: "Old PAR", Public: true, RequirePushedAuthorizationRequests: true},
		{ID: "old-dpop", Name: "Old DPoP", Public: true, DPoPBoundAccessTokens: true},
		{ID: "old-signed", Name: "Old signed", Public: true, RequireSignedRequestObject: true,
			JWKS: newRPKey(t, jose.ES256, "old-signed-1").jwks(t)},
		{ID: "old-device", Name: "Old device", Public: true, GrantTypes: []string{account.GrantAuthorizationCode, account.GrantDeviceCode}},
	} {
		if c.GrantTypes == nil {
			c.GrantTypes = []string{account.GrantAuthorizationCode}
		}
		c.RedirectURIs = []string{"http://127.0.0.1:9/callback/" + c.ID}
		if err := srv.Main.Store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}

	// Apps registered (RFC 7591) with a setting while its feature was on,
	// and one without, each with what it registered.
	type registered struct {
		meta       map[string]any
		token, uri string
	}
	rw, _, _ := adminTokens(t, srv)
	onIAT, _ := initialAccessToken(t, srv, rw, 0, false)
	regs := map[string]*registered{
		"device":   {meta: map[string]any{"client_name": "Reg TV", "token_endpoint_auth_method": "none", "grant_types": []string{account.GrantDeviceCode}}},
		"pairwise": {meta: map[string]any{"client_name": "Reg pairwise", "redirect_uris": []string{"http://127.0.0.1:9/callback/reg-pw"}, "subject_type": "pairwise"}},
		"plain":    {meta: map[string]any{"client_name": "Reg plain", "token_endpoint_auth_method": "none", "redirect_uris": []string{"http://127.0.0.1:9/callback/reg-plain"}}},
	}
	for name, r := range regs {
		status, _, out := registrationCall(t, srv, http.MethodPost, "/oauth/register", onIAT, r.meta)
		if status != http.StatusCreated {
			t.Fatalf("register %s while its feature is on: %d %v", name, status, out)
		}
		r.meta["client_id"] = out["client_id"]
		r.token, _ = out["registration_access_token"].(string)
		r.uri, _ = out["registration_client_uri"].(string)
	}
	// And one that registered itself with one (RFC 7591).
	iat, _ := initialAccessToken(t, srv, rw, 0, false)
	regMeta := map[string]any{"client_name": "Registered DPoP", "token_endpoint_auth_method": "none",
		"redirect_uris": []string{"https://app.example/cb"}, "dpop_bound_access_tokens": true}
	status, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, regMeta)
	if status != http.StatusCreated || reg["dpop_bound_access_tokens"] != true {
		t.Fatalf("register with dpop_bound_access_tokens while DPoP is on: %d %v", status, reg)
	}
	regID, _ := reg["client_id"].(string)
	regToken, _ := reg["registration_access_token"].(string)

	srv.opts.mutate = allFeaturesOff
	srv = srv.restart()
	spa.srv = srv
	web := srv.createClient(newConfidentialClient("off-web"))
	webKey := newRPKey(t, jose.ES256, "off-web-1")

	t.Run("discovery", func(t *testing.T) {
		doc := srv.discovery()
		for _, k := range []string{"pushed_authorization_request_endpoint", "require_pushed_authorization_requests",
			"request_object_signing_alg_values_supported", "dpop_signing_alg_values_supported"} {
			if v, ok := doc[k]; ok {
				t.Errorf("%s advertised: %v", k, v)
			}
		}
		if doc["request_parameter_supported"] != false {
			t.Errorf("request_parameter_supported = %v", doc["request_parameter_supported"])
		}
		if grants := toStrings(doc["grant_types_supported"]); slices.Contains(grants, account.GrantTokenExchange) || !slices.Contains(grants, "refresh_token") {
			t.Errorf("grant_types_supported %v", grants)
		}
		if subs := toStrings(doc["subject_types_supported"]); !slices.Equal(subs, []string{"public"}) {
			t.Errorf("subject_types_supported %v", subs)
		}
	})

	t.Run("pushed authorization requests", func(t *testing.T) {
		form, _ := pushedParams(web)
		if status, _, body := srv.postForm("/oauth/par", form, web.ID, web.Secret); status != http.StatusNotFound {
			t.Errorf("/oauth/par: %d %v", status, body)
		}
		// Nor does a browser app's preflight find it: the endpoint is off
		// for every method, as the device endpoint is while it is off.
		req := mustRequest(http.MethodOptions, srv.URL+"/oauth/par")
		req.Header.Set("Origin", "https://spa.example")
		req.Header.Set("Access-Control-Request-Method", "POST")
		if r := mustFetch(t, bareClient, req); r.Status != http.StatusNotFound || r.Header.Get("Access-Control-Allow-Origin") != "" {
			t.Errorf("preflight of /oauth/par: %d %v", r.Status, r.Header)
		}
		b := newBrowser(t)
		p := b.get(web.authorizeURI("urn:ietf:params:oauth:request_uri:abc", nil))
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "request_uri_not_supported") {
			t.Errorf("/authorize with a request_uri: %d %s", p.Status, truncateBody(p.Body))
		}
		// An app that must push cannot sign in, and is told why.
		old := srv.rp("old-par", "", "http://127.0.0.1:9/callback/old-par")
		p = old.authorize(newBrowser(t), "s1")
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "pushed authorization requests are off") {
			t.Errorf("/authorize for an app that must push: %d %s", p.Status, truncateBody(p.Body))
		}
	})

	t.Run("request objects", func(t *testing.T) {
		params, _ := objectParams(web)
		object := requestObject(t, webKey.signing(), web.ID, srv.URL, params)
		b := newBrowser(t)
		p := b.get(web.objectURI(object, url.Values{"redirect_uri": {web.RedirectURI}, "state": {"outer"}}))
		to, err := url.Parse(p.Location)
		if p.Status != http.StatusFound || err != nil || !strings.HasPrefix(p.Location, web.RedirectURI) ||
			to.Query().Get("error") != "request_not_supported" || to.Query().Get("state") != "outer" {
			t.Errorf("/authorize with a request object: %d %q", p.Status, p.Location)
		}
		if len(b.visited) > 0 && isLoginPage(p) {
			t.Error("a request object led to a sign-in")
		}
		// An app that must send them cannot sign in, and is told why.
		old := srv.rp("old-signed", "", "http://127.0.0.1:9/callback/old-signed")
		p = old.authorize(newBrowser(t), "s2")
		to, err = url.Parse(p.Location)
		if p.Status != http.StatusFound || err != nil || to.Query().Get("error") != "invalid_request" ||
			!strings.Contains(to.Query().Get("error_description"), "request objects are off") {
			t.Errorf("/authorize for an app that must send request objects: %d %q", p.Status, p.Location)
		}
	})

	t.Run("token exchange", func(t *testing.T) {
		for _, f := range []url.Values{
			exchangeForm(bound.AccessToken, "urn:ietf:params:oauth:token-type:access_token"),
			exchangeForm("not-an-app-password", "urn:keyport:params:oauth:token-type:app-password", "username", "olga"),
		} {
			if status, _, body := web.tokenPost(f, true); status != http.StatusBadRequest || body["error"] != "unsupported_grant_type" {
				t.Errorf("token exchange of a %s: %d %v", f.Get("subject_token_type"), status, body)
			}
		}
	})

	t.Run("dpop", func(t *testing.T) {
		// The bound refresh token needs its proof still.
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bound.RefreshToken}}
		if status, _, body := dpopPost(spa, "/oauth/token", form, ""); status != http.StatusBadRequest || body["error"] != "invalid_grant" && body["error"] != "invalid_dpop_proof" {
			t.Errorf("a bound refresh token without its proof: %d %v", status, body)
		}
		other := newDPoPKey(t)
		form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bound.RefreshToken}}
		if status, _, body := dpopPost(spa, "/oauth/token", form, other.proof(t, http.MethodPost, srv.URL+"/oauth/token", "")); status != http.StatusBadRequest {
			t.Errorf("a bound refresh token with another key's proof: %d %v", status, body)
		}
		form = url.Values{"grant_type": {"refresh_token"}, "refresh_token": {bound.RefreshToken}}
		status, _, body := dpopPost(spa, "/oauth/token", form, key.proof(t, http.MethodPost, srv.URL+"/oauth/token", ""))
		if status != http.StatusOK || body["token_type"] != "Bearer" {
			t.Fatalf("a bound refresh token with its proof: %d %v", status, body)
		}
		// The access token got is a bearer token: userinfo takes it as one.
		if status, _, info := srv.userinfo(body["access_token"].(string)); status != http.StatusOK || info["sub"] == nil {
			t.Errorf("userinfo with the new access token as Bearer: %d %v", status, info)
		}
		// The access token bound before still needs its proof at /userinfo.
		ui := srv.URL + "/userinfo"
		if status, _, info := dpopUserinfo(srv, http.MethodGet, "DPoP", bound.AccessToken, key.proof(t, http.MethodGet, ui, bound.AccessToken)); status != http.StatusOK || info["sub"] == nil {
			t.Errorf("userinfo with the access token bound before and its proof: %d %v", status, info)
		}
		if status, _, info := srv.userinfo(bound.AccessToken); status != http.StatusUnauthorized {
			t.Errorf("userinfo with the access token bound before as Bearer: %d %v", status, info)
		}
		// A confidential app's proof is ignored: a bearer token.
		cc := srv.createClient(account.NewClient{ID: "off-machine", GrantTypes: []string{account.GrantClientCredentials}})
		status, _, body = dpopPost(cc, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, newDPoPKey(t).proof(t, http.MethodPost, srv.URL+"/oauth/token", ""))
		if status != http.StatusOK || body["token_type"] != "Bearer" {
			t.Errorf("client_credentials with a proof: %d %v", status, body)
		}
		// Ignored means not spent either: a server without DPoP does not
		// refuse a proof it has seen, as a replay (invalid_dpop_proof).
		proof := newDPoPKey(t).proof(t, http.MethodPost, srv.URL+"/oauth/token", "")
		for i := range 2 {
			if status, _, body := dpopPost(cc, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, proof); status != http.StatusOK || body["token_type"] != "Bearer" {
				t.Errorf("client_credentials with a proof sent before (%d): %d %v", i, status, body)
			}
		}
		status, _, body = dpopPost(cc, "/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "not a proof")
		if status != http.StatusOK || body["token_type"] != "Bearer" {
			t.Errorf("client_credentials with a malformed proof, ignored: %d %v", status, body)
		}
		// dpop_jkt at /authorize is ignored, as by a server without DPoP:
		// the code is not bound, and a malformed one is not refused.
		for _, jkt := range []string{newDPoPKey(t).jkt, "short"} {
			code, verifier := spa.signIn(newBrowser(t), "olga", oauth2.SetAuthURLParam("dpop_jkt", jkt))
			if tok, err := spa.exchange(code, verifier); err != nil || tok.Type() != "Bearer" {
				t.Errorf("a code asked for with dpop_jkt %q, exchanged without a proof: %v %v", jkt, err, tok)
			}
		}
		// An app registered to get bound tokens only is refused rather than given bearer ones.
		old := srv.rp("old-dpop", "", "http://127.0.0.1:9/callback/old-dpop")
		status, _, body = dpopPost(old, "/oauth/token", url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {old.RedirectURI}}, key.proof(t, http.MethodPost, srv.URL+"/oauth/token", ""))
		if status != http.StatusBadRequest || body["error"] != "invalid_request" || !strings.Contains(body["error_description"].(string), "DPoP is off") {
			t.Errorf("token request of an app with dpop_bound_access_tokens: %d %v", status, body)
		}
	})

	settings := []struct{ field, create, patch string }{
		{"subject_type", `{"id":"new-1","public":true,"redirect_uris":["https://app.example/cb"],"subject_type":"pairwise"}`, `{"subject_type":"pairwise"}`},
		{"require_pushed_authorization_requests", `{"id":"new-2","public":true,"redirect_uris":["https://app.example/cb"],"require_pushed_authorization_requests":true}`, `{"require_pushed_authorization_requests":true}`},
		{"dpop_bound_access_tokens", `{"id":"new-3","public":true,"redirect_uris":["https://app.example/cb"],"dpop_bound_access_tokens":true}`, `{"dpop_bound_access_tokens":true}`},
		{"require_dpop_nonce", `{"id":"new-6","public":true,"redirect_uris":["https://app.example/cb"],"require_dpop_nonce":true}`, `{"require_dpop_nonce":true}`},
		{"grant_types", `{"id":"new-4","grant_types":["client_credentials","urn:ietf:params:oauth:grant-type:token-exchange"]}`, `{"grant_types":["authorization_code","urn:ietf:params:oauth:grant-type:token-exchange"]}`},
		{"require_signed_request_object", `{"id":"new-5","public":true,"redirect_uris":["https://app.example/cb"],"require_signed_request_object":true,"jwks":` + string(webKey.jwks(t)) + `}`, `{"require_signed_request_object":true}`},
	}
	t.Run("management API", func(t *testing.T) {
		for _, s := range settings {
			if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", s.create); status != http.StatusBadRequest || body["field"] != s.field {
				t.Errorf("create an app with %s: %d %v", s.field, status, body)
			}
			if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/off-web", rw, "application/json", s.patch); status != http.StatusBadRequest || body["field"] != s.field {
				t.Errorf("give an app %s: %d %v", s.field, status, body)
			}
		}
		c, err := srv.Main.Store.GetClient(ctx, "off-web")
		if err != nil || c.SubjectType != "" || c.RequirePushedAuthorizationRequests || c.DPoPBoundAccessTokens || c.RequireSignedRequestObject || slices.Contains(c.GrantTypes, account.GrantTokenExchange) {
			t.Errorf("refused edits changed the app: %+v %v", c, err)
		}
		// Apps that had a setting keep it through other edits.
		for _, id := range []string{"old-pairwise", "old-par", "old-dpop"} {
			if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/"+id, rw, "application/json", `{"name":"Renamed"}`); status != http.StatusOK || body["name"] != "Renamed" {
				t.Errorf("edit %s, which had its setting before: %d %v", id, status, body)
			}
		}
		if c, _ := srv.Main.Store.GetClient(ctx, "old-pairwise"); c.SubjectType != account.SubjectPairwise {
			t.Errorf("old-pairwise lost its subject type: %q", c.SubjectType)
		}
		// Refused before the sector document is fetched, under subject_type
		// (the fetch, refused here by the SSRF guard, was the refusal).
		if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/off-web", rw, "application/json",
			`{"subject_type":"pairwise","sector_identifier_uri":"https://127.0.0.1:1/sector.json"}`); status != http.StatusBadRequest || body["field"] != "subject_type" {
			t.Errorf("make an app pairwise with a sector document: %d %v", status, body)
		}
		// Keeping one DPoP setting is not being given the other.
		if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/old-dpop", rw, "application/json", `{"require_dpop_nonce":true}`); status != http.StatusBadRequest || body["field"] != "require_dpop_nonce" {
			t.Errorf("give old-dpop require_dpop_nonce: %d %v", status, body)
		}
	})

	t.Run("console", func(t *testing.T) {
		ab := newBrowser(t)
		signInPortal(t, srv, ab, "root") // made by adminTokens
		for _, k := range []string{"dpop_bound_access_tokens", "require_dpop_nonce", "require_pushed_authorization_requests", "require_signed_request_object"} {
			form := url.Values{"id": {"console-new"}, "type": {"public"}, "redirect_uris": {"https://app.example/cb"}, "grant_types": {"authorization_code"}, k: {"1"}}
			bad := submitForm(t, ab, ab.get(srv.URL+"/admin/apps/new"), "/admin/apps/new", form)
			marked := ""
			if invalid, ok := parsePage(t, bad.Body).first("input", "aria-invalid", "true"); ok {
				marked = invalid.attr("name")
			}
			if bad.Status != http.StatusBadRequest || marked != k {
				t.Errorf("a new app with %s: %d, the field marked invalid is %q", k, bad.Status, marked)
			}
		}
		bad := submitForm(t, ab, ab.get(srv.URL+"/admin/apps/new"), "/admin/apps/new", url.Values{"id": {"console-new"}, "type": {"public"},
			"redirect_uris": {"https://app.example/cb"}, "grant_types": {"authorization_code"}, "subject_type": {"pairwise"}})
		if invalid, ok := parsePage(t, bad.Body).first("select", "aria-invalid", "true"); bad.Status != http.StatusBadRequest || !ok || invalid.attr("name") != "subject_type" {
			t.Errorf("a new pairwise app: %d\n%s", bad.Status, truncateBody(bad.Body))
		}
		if _, err := srv.Main.Store.GetClient(ctx, "console-new"); err == nil {
			t.Error("a refused app was stored")
		}
		// The form offers none of these settings: each control is
		// disabled (the pairwise choice of the select), unset, and
		// described by a note naming its [oauth] key, in the admin's
		// language.
		controls := []struct{ name, value, key string }{
			{"grant_types", account.GrantDeviceCode, "device_flow"},
			{"grant_types", account.GrantTokenExchange, "token_exchange"},
			{"dpop_bound_access_tokens", "1", "dpop"},
			{"require_dpop_nonce", "1", "dpop"},
			{"require_pushed_authorization_requests", "1", "pushed_authorization_requests"},
			{"require_signed_request_object", "1", "request_objects"},
			{"subject_type", account.SubjectPairwise, "pairwise_subjects"},
		}
		// control finds a setting's control on a page: whether it is
		// offered, set, and the text of the note that describes it.
		control := func(t *testing.T, body, name, value string) (offered, set bool, note string) {
			t.Helper()
			doc := parsePage(t, body)
			n, ok := doc.first("input", "name", name, "value", value)
			choice := n
			if !ok {
				if n, ok = doc.first("select", "name", name); ok {
					choice, ok = n.first("option", "value", value)
				}
			}
			if !ok {
				t.Fatalf("no control %s=%s on the page", name, value)
			}
			_, disabled := choice.lookup("disabled")
			_, checked := choice.lookup("checked")
			_, selected := choice.lookup("selected")
			for _, id := range strings.Fields(n.attr("aria-describedby")) {
				if p, ok := doc.byID(id); ok && id != "form-error" {
					note = p.text()
				}
			}
			return !disabled, checked || selected, note
		}
		newForm := ab.get(srv.URL + "/admin/apps/new")
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/admin/apps/new", nil)
		req.Header.Set("Accept-Language", "de-DE,de;q=0.9")
		newFormDE := ab.do(req)
		for _, c := range controls {
			want := "Turned off in the server configuration ([oauth] " + c.key + " in config.toml)."
			if offered, set, note := control(t, newForm.Body, c.name, c.value); offered || set || note != want {
				t.Errorf("the new-app form's %s=%s: offered %v, set %v, note %q", c.name, c.value, offered, set, note)
			}
			wantDE := "In der Serverkonfiguration ausgeschaltet ([oauth] " + c.key + " in config.toml)."
			if _, _, note := control(t, newFormDE.Body, c.name, c.value); note != wantDE {
				t.Errorf("the German new-app form's %s=%s: note %q", c.name, c.value, note)
			}
		}
		// An app that had a setting is shown with it, offered and marked;
		// its other settings whose feature is off are not offered.
		kept := map[string][]string{
			"old-pairwise": {"subject_type"}, "old-par": {"require_pushed_authorization_requests"}, "old-dpop": {"dpop_bound_access_tokens"},
			"old-signed": {"require_signed_request_object"}, "old-device": {account.GrantDeviceCode},
		}
		for id, has := range kept {
			page := ab.get(srv.URL + "/admin/apps/" + id)
			for _, c := range controls {
				had := slices.Contains(has, c.name) || slices.Contains(has, c.value)
				offered, set, note := control(t, page.Body, c.name, c.value)
				if had && (!offered || !set || !strings.Contains(note, "[oauth] "+c.key+" ") || !strings.Contains(note, "keeps it")) ||
					!had && (offered || set || !strings.HasPrefix(note, "Turned off")) {
					t.Errorf("%s's form, %s=%s (had it: %v): offered %v, set %v, note %q", id, c.name, c.value, had, offered, set, note)
				}
			}
		}
		// Saving the edit form of an app that had its settings sends them
		// back unchanged: kept.
		for id := range kept {
			if saved := submitForm(t, ab, ab.get(srv.URL+"/admin/apps/"+id), "/admin/apps/"+id+"/edit", url.Values{"name": {"Console " + id}}); saved.Status != http.StatusOK {
				msg, _ := parsePage(t, saved.Body).byID("form-error")
				t.Errorf("console edit of %s: %d %s", id, saved.Status, msg.text())
			}
			if c, _ := srv.Main.Store.GetClient(ctx, id); c.Name != "Console "+id {
				t.Errorf("%s after a console edit: name %q", id, c.Name)
			}
		}
		after := map[string]storage.Client{}
		for id := range kept {
			after[id], _ = srv.Main.Store.GetClient(ctx, id)
		}
		if after["old-pairwise"].SubjectType != account.SubjectPairwise || !after["old-par"].RequirePushedAuthorizationRequests ||
			!after["old-dpop"].DPoPBoundAccessTokens || after["old-dpop"].RequireDPoPNonce || !after["old-signed"].RequireSignedRequestObject ||
			!slices.Contains(after["old-device"].GrantTypes, account.GrantDeviceCode) {
			t.Errorf("the apps that had their settings, after console edits: %+v", after)
		}
	})

	t.Run("registration", func(t *testing.T) {
		iat, _ := initialAccessToken(t, srv, rw, 0, false)
		for _, m := range []map[string]any{
			{"subject_type": "pairwise"},
			{"require_pushed_authorization_requests": true},
			{"dpop_bound_access_tokens": true},
			{"grant_types": []string{"client_credentials", account.GrantTokenExchange}, "token_endpoint_auth_method": "client_secret_basic"},
		} {
			m["client_name"] = "Registered"
			if _, ok := m["grant_types"]; !ok {
				m["redirect_uris"] = []string{"https://app.example/cb"}
			}
			if status, _, body := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, m); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" {
				t.Errorf("register %v: %d %v", m, status, body)
			}
		}
		// RFC 7592: an app that registered with a setting keeps it through
		// its updates, and is not given another.
		regMeta["client_id"], regMeta["client_name"] = regID, "Renamed DPoP"
		if status, _, body := registrationCall(t, srv, http.MethodPut, "/oauth/register/"+regID, regToken, regMeta); status != http.StatusOK || body["dpop_bound_access_tokens"] != true || body["client_name"] != "Renamed DPoP" {
			t.Errorf("update of an app registered with dpop_bound_access_tokens: %d %v", status, body)
		}
		for k, v := range map[string]any{"subject_type": "pairwise", "require_pushed_authorization_requests": true} {
			m := maps.Clone(regMeta)
			m[k] = v
			if k == "subject_type" {
				m["sector_identifier_uri"] = "https://127.0.0.1:1/sector.json" // not fetched
			}
			if status, _, body := registrationCall(t, srv, http.MethodPut, "/oauth/register/"+regID, regToken, m); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" ||
				!strings.HasPrefix(fmt.Sprint(body["error_description"]), k+": ") || !strings.Contains(fmt.Sprint(body["error_description"]), "off on this server") {
				t.Errorf("update that adds %s: %d %v", k, status, body)
			}
		}
		if c, err := srv.Main.Store.GetClient(ctx, regID); err != nil || c.SubjectType != "" || c.RequirePushedAuthorizationRequests || !c.DPoPBoundAccessTokens {
			t.Errorf("after refused updates: %+v %v", c, err)
		}
	})

	// RFC 7592 updates follow the same rule as the management API's edits:
	// an app registered with a setting while its feature was on keeps it
	// through an update that repeats it, and no update adds one.
	t.Run("registration updates", func(t *testing.T) {
		for name, r := range regs {
			r.meta["client_name"] = r.meta["client_name"].(string) + ", renamed"
			if status, _, body := registrationCall(t, srv, http.MethodPut, r.uri, r.token, r.meta); status != http.StatusOK || body["client_name"] != r.meta["client_name"] {
				t.Errorf("update %s repeating its setting: %d %v", name, status, body)
			}
		}
		id, _ := regs["device"].meta["client_id"].(string)
		if c, err := srv.Main.Store.GetClient(ctx, id); err != nil || !slices.Contains(c.GrantTypes, account.GrantDeviceCode) {
			t.Errorf("the registered device app after its update: %v %v", c.GrantTypes, err)
		}
		id, _ = regs["pairwise"].meta["client_id"].(string)
		if c, err := srv.Main.Store.GetClient(ctx, id); err != nil || c.SubjectType != account.SubjectPairwise {
			t.Errorf("the registered pairwise app after its update: %q %v", c.SubjectType, err)
		}

		plain := regs["plain"]
		id, _ = plain.meta["client_id"].(string)
		before, _ := srv.Main.Store.GetClient(ctx, id)
		for field, add := range map[string]func(m map[string]any){
			"grant_types":  func(m map[string]any) { m["grant_types"] = []string{"authorization_code", account.GrantDeviceCode} },
			"subject_type": func(m map[string]any) { m["subject_type"] = "pairwise" },
		} {
			m := maps.Clone(plain.meta)
			add(m)
			if status, _, body := registrationCall(t, srv, http.MethodPut, plain.uri, plain.token, m); status != http.StatusBadRequest || body["error"] != "invalid_client_metadata" ||
				!strings.Contains(fmt.Sprint(body["error_description"]), "off on this server") {
				t.Errorf("an update adding %s: %d %v", field, status, body)
			}
		}
		if after, _ := srv.Main.Store.GetClient(ctx, id); !reflect.DeepEqual(before, after) {
			t.Errorf("refused updates changed the app:\n%+v\n%+v", before, after)
		}
	})
	// PAR on again, request objects and DPoP still off: a pushed request
	// object is refused as at /authorize, and a pushed request's DPoP
	// proof and dpop_jkt are ignored, as by a server without DPoP.
	// The device flow on beside them: its grant is offered, the token
	// exchange grant still not.
	srv.opts.mutate = func(c *config.Config) {
		allFeaturesOff(c)
		c.OAuth.PushedAuthorizationRequests, c.OAuth.DeviceFlow = true, true
	}
	srv = srv.restart()
	web.srv = srv
	t.Run("pushed requests and the device flow on, request objects and DPoP off", func(t *testing.T) {
		doc := srv.discovery()
		if doc["pushed_authorization_request_endpoint"] != srv.URL+"/oauth/par" || doc["request_parameter_supported"] != false {
			t.Errorf("discovery: %v %v", doc["pushed_authorization_request_endpoint"], doc["request_parameter_supported"])
		}
		if grants := toStrings(doc["grant_types_supported"]); !slices.Contains(grants, account.GrantDeviceCode) || slices.Contains(grants, account.GrantTokenExchange) {
			t.Errorf("grant_types_supported with the device flow on: %v", grants)
		}
		params, _ := objectParams(web)
		object := requestObject(t, webKey.signing(), web.ID, srv.URL, params)
		if status, _, body := web.push(url.Values{"client_id": {web.ID}, "request": {object}}); status != http.StatusBadRequest || body["error"] != "request_not_supported" {
			t.Errorf("a pushed request object: %d %v", status, body)
		}
		for _, jkt := range []string{"", "short"} {
			form, verifier := pushedParams(web)
			if jkt != "" {
				form.Set("dpop_jkt", jkt)
			}
			status, _, body := dpopPost(web, "/oauth/par", form, key.proof(t, http.MethodPost, srv.URL+"/oauth/par", ""))
			uri, _ := body["request_uri"].(string)
			if status != http.StatusCreated || uri == "" {
				t.Errorf("a push with a DPoP proof and dpop_jkt %q: %d %v", jkt, status, body)
				continue
			}
			b := newBrowser(t)
			res := landed(t, web.finish(b, b.get(web.authorizeURI(uri, nil)), "olga"), web.RedirectURI)
			if tok, err := web.exchange(res.Code, verifier); err != nil || tok.Type() != "Bearer" {
				t.Errorf("the code of a push with a DPoP proof, exchanged without one: %v %v", err, tok)
			}
		}
	})

}
