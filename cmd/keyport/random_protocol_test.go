package main

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/provider"
)

// TestRandomProtocolErrorCodes sends seeded random bad input to the
// endpoints and parameters of the newer RFCs, on one server, and holds
// each answer to the error code its RFC names, never a 5xx, with nothing
// issued or registered: DPoP proofs (RFC 9449) at the token endpoint
// (under every grant), /userinfo and /oauth/par, and dpop_jkt; client
// assertions (RFC 7523) at every endpoint that authenticates apps;
// request objects (RFC 9101) at /authorize and /oauth/par, and the
// sign-in parameters inside them; resource indicators (RFC 8707); pushes
// (RFC 9126) mixing all of these; token exchange (RFC 8693) with
// assertions and proofs; oversized and repeated parameters and
// credentials; registrations and their updates (RFC 7591, RFC 7592,
// pairwise metadata); device authorization requests and device_code
// polls (RFC 8628). Each subtest has its own fixed seed, logged, so a
// failure replays alone with -run. Good requests are mixed in, and each
// subtest checks its seed reached both, so a generator that only ever
// makes refusals (or none) is noticed.
func TestRandomProtocolErrorCodes(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.OAuth.DeviceFlow, c.OAuth.DynamicRegistration = true, true })
	rex := srv.createUser("rex", false)
	pkKey, otherKey := newRPKey(t, jose.ES256, "k1"), newRPKey(t, jose.ES256, "k1")
	registered := []string{"https://api.example.com/", "urn:example:x"}
	// pk authenticates with signed assertions and signs request objects.
	pk := srv.createClient(account.NewClient{ID: "pk", TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: pkKey.jwks(t),
		Resources:  registered,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantClientCredentials, account.GrantDeviceCode}})
	// ro has a secret and signs request objects with pkKey.
	ro := srv.createClient(account.NewClient{ID: "ro", JWKS: pkKey.jwks(t), Resources: registered})
	machine := srv.createClient(account.NewClient{ID: "machine", GrantTypes: []string{account.GrantClientCredentials}})
	web := srv.createClient(account.NewClient{ID: "web", SkipConsent: true})
	tv := srv.createClient(account.NewClient{ID: "tv", Public: true, GrantTypes: []string{account.GrantDeviceCode, account.GrantRefreshToken}})
	tokenURL, parURL, userinfoURL := srv.URL+"/oauth/token", srv.URL+"/oauth/par", srv.URL+"/userinfo"
	adminRW, _, _ := adminTokens(t, srv)

	// Failed client authentication is throttled per app and address; each
	// request comes from its own loopback address, so the throttle, tested
	// elsewhere, does not stand in for the answer under test.
	from := map[int]*http.Client{}
	clientFrom := func(i int) *http.Client {
		i %= 250
		if from[i] == nil {
			from[i] = browserFrom(t, fmt.Sprintf("127.0.10.%d", 1+i)).client
		}
		return from[i]
	}

	t.Run("DPoP proofs at the token endpoint", func(t *testing.T) {
		rng := seeded(t, 9449, 1)
		key := newDPoPKey(t)
		grants := []url.Values{
			{"grant_type": {"refresh_token"}, "refresh_token": {"x"}},
			{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {web.RedirectURI}, "code_verifier": {strings.Repeat("v", 43)}},
			{"grant_type": {account.GrantDeviceCode}, "device_code": {"x"}},
			{"grant_type": {account.GrantTokenExchange}, "subject_token": {"x"}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}},
			{},
			{"grant_type": {"client_credentials"}, "scope": {"\x00 openid"}},
		}
		seen, used := map[string]int{}, ""
		for i := 0; i < 150 && !t.Failed(); i++ {
			proofs, what := randomProof(t, rng, key, http.MethodPost, tokenURL, "", used)
			form := url.Values{"grant_type": {"client_credentials"}}
			if what != "" && what != "replay" && rng.IntN(2) == 0 {
				// The proof is checked ahead of every grant Keyport offers: a
				// bad one is invalid_dpop_proof whatever the rest of the
				// request. (A grant it does not offer is refused before; a
				// proof's jti is spent, and a replay found, once the grant
				// has a token to bind.)
				form = grants[rng.IntN(len(grants))]
			}
			req := srv.formRequest("/oauth/token", form, machine.ID, machine.Secret)
			addProofs(rng, req, proofs)
			status, _, m := doJSON(t, bareClient, req)
			wantAnswer(t, "token request with a DPoP proof: "+what, status, m, what == "", http.StatusBadRequest, "invalid_dpop_proof")
			if what != "" && m["access_token"] != nil {
				t.Errorf("%s: a token was issued", what)
			}
			if what == "" {
				used = proofs[0]
			}
			seen[goodOrNot(what == "")]++
		}
		reached(t, seen)
	})

	t.Run("DPoP proofs at userinfo", func(t *testing.T) {
		rng := seeded(t, 9449, 2)
		key := newDPoPKey(t)
		code, verifier := web.signIn(newBrowser(t), "rex")
		tok, err := web.oauth.Exchange(dpopContext(t, key), code, oauth2.VerifierOption(verifier))
		if err != nil || tok.Type() != "DPoP" {
			t.Fatalf("a DPoP-bound token: %v %v", err, tok)
		}
		seen, used := map[string]int{}, ""
		for i := 0; i < 120 && !t.Failed(); i++ {
			method := []string{http.MethodGet, http.MethodPost}[rng.IntN(2)]
			proofs, what := randomProof(t, rng, key, method, userinfoURL, tok.AccessToken, used)
			req := mustRequest(method, userinfoURL)
			req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
			addProofs(rng, req, proofs)
			status, h, m := doJSON(t, bareClient, req)
			wantAnswer(t, method+" userinfo with a DPoP proof: "+what, status, m, what == "", http.StatusUnauthorized, "invalid_dpop_proof")
			if what != "" && (m["sub"] != nil || !strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_dpop_proof"`)) {
				t.Errorf("%s: %v, WWW-Authenticate %q", what, m, h.Get("WWW-Authenticate"))
			}
			if what == "" {
				used = proofs[0]
			}
			seen[goodOrNot(what == "")]++
		}
		reached(t, seen)
	})

	t.Run("DPoP proofs at PAR", func(t *testing.T) {
		rng := seeded(t, 9449, 3)
		key := newDPoPKey(t)
		seen, used := map[string]int{}, ""
		for i := 0; i < 100 && !t.Failed(); i++ {
			proofs, what := randomProof(t, rng, key, http.MethodPost, parURL, "", used)
			form, _ := pushedParams(web)
			req := srv.formRequest("/oauth/par", form, web.ID, web.Secret)
			addProofs(rng, req, proofs)
			status, _, m := doJSON(t, bareClient, req)
			wantAnswer(t, "pushed request with a DPoP proof: "+what, status, m, what == "", http.StatusBadRequest, "invalid_dpop_proof")
			if what != "" && m["request_uri"] != nil {
				t.Errorf("%s: a request_uri was issued", what)
			}
			if what == "" {
				used = proofs[0]
			}
			seen[goodOrNot(what == "")]++
		}
		reached(t, seen)
	})

	t.Run("client assertions", func(t *testing.T) {
		rng := seeded(t, 7523, 1)
		type endpoint struct {
			path string
			form func() url.Values
			ok   int
		}
		endpoints := []endpoint{
			{"/oauth/token", func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }, http.StatusOK},
			{"/oauth/introspect", func() url.Values { return url.Values{"token": {"x"}} }, http.StatusOK},
			{"/revoke", func() url.Values { return url.Values{"token": {"x"}} }, http.StatusOK},
			{"/oauth/par", func() url.Values { f, _ := pushedParams(pk); f.Del("client_id"); return f }, http.StatusCreated},
			{"/device_authorization", func() url.Values { return url.Values{"scope": {"openid"}} }, http.StatusOK},
		}
		seen := map[string]int{}
		var replay string
		for i := 0; i < 250 && !t.Failed(); i++ {
			e := endpoints[rng.IntN(len(endpoints))]
			form := e.form()
			a, what := randomAssertion(t, rng, pkKey, otherKey, srv.URL, replay)
			form.Set("client_assertion_type", provider.ClientAssertionType)
			form.Set("client_assertion", a)
			switch rng.IntN(12) {
			case 0:
				form.Set("client_assertion_type", []string{"", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer", "jwt"}[rng.IntN(3)])
				what = "client_assertion_type"
			case 1:
				form.Set("client_id", "machine") // the assertion is pk's (RFC 7521 §4.2)
				what = "client_id of another app"
			case 2:
				form.Set("client_id", "pk")
			}
			if what == "" {
				replay = a
			}
			status, _, m := doJSON(t, clientFrom(i), srv.formRequest(e.path, form, "", ""))
			if what == "" && status != e.ok || what != "" && ((status != http.StatusUnauthorized && status != http.StatusBadRequest) || m["error"] != "invalid_client") {
				t.Errorf("%s with a client assertion (%s): %d %v", e.path, cmp.Or(what, "valid"), status, m)
			}
			if what != "" && (m["access_token"] != nil || m["request_uri"] != nil || m["device_code"] != nil || m["active"] != nil) {
				t.Errorf("%s (%s): answered %v", e.path, what, m)
			}
			seen[goodOrNot(what == "")]++
		}
		reached(t, seen)
	})

	// Token exchange (RFC 8693) by an app that signs its assertions, with
	// random assertions, DPoP proofs and audiences: each bad part refuses
	// the exchange with its code (invalid_client, invalid_dpop_proof,
	// invalid_target); good ones get a token, DPoP-bound with a proof.
	t.Run("token exchange with assertions and proofs", func(t *testing.T) {
		rng := seeded(t, 8693, 2)
		srv.createClient(account.NewClient{ID: "pkx", TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: pkKey.jwks(t),
			GrantTypes: []string{account.GrantClientCredentials, account.GrantTokenExchange}})
		password, _, err := srv.Main.Accounts.Credentials.CreateAppPassword(context.Background(), rex, "cli", "pkx")
		if err != nil {
			t.Fatal(err)
		}
		key := newDPoPKey(t)
		seen, usedProof := map[string]int{}, ""
		for i := 0; i < 120 && !t.Failed(); i++ {
			var codes []string
			a, what := randomAssertion(t, rng, pkKey, otherKey, srv.URL, "")
			if what == "" {
				// randomAssertion's good ones speak for pk; this is pkx's.
				a = assertion(t, pkKey.signing(), "pkx", srv.URL)
			}
			if what != "" {
				codes = append(codes, "invalid_client")
			}
			form := merge(assertionParams(a), url.Values{"grant_type": {account.GrantTokenExchange}, "subject_token": {"rex:" + password},
				"subject_token_type": {"urn:keyport:params:oauth:token-type:app-password"}})
			switch rng.IntN(4) {
			case 0: // an app password is exchanged for a token of its own app only
				form.Set("audience", []string{"machine", "nobody", "https://other.example/"}[rng.IntN(3)])
				codes = append(codes, "invalid_target")
			case 1:
				form.Set("audience", "pkx")
			}
			req := srv.formRequest("/oauth/token", form, "", "")
			var proofs []string
			if rng.IntN(2) == 0 {
				var pw string
				proofs, pw = randomProof(t, rng, key, http.MethodPost, tokenURL, "", usedProof)
				if pw != "" {
					codes = append(codes, "invalid_dpop_proof")
				}
				for _, p := range proofs {
					req.Header.Add("DPoP", p)
				}
			}
			status, _, m := doJSON(t, clientFrom(i), req)
			code, _ := m["error"].(string)
			switch {
			case len(codes) == 0 && (status != http.StatusOK || (len(proofs) > 0) != (m["token_type"] == "DPoP")):
				t.Errorf("a good exchange (DPoP %d): %d %v", len(proofs), status, m)
			case len(codes) > 0 && (status < 400 || status >= 500 || !slices.Contains(codes, code) || m["access_token"] != nil):
				t.Errorf("an exchange with bad parts %v (assertion %q, audience %q): %d %v", codes, what, form.Get("audience"), status, m)
			}
			if status == http.StatusOK && len(proofs) > 0 {
				// Its jti is spent now; a refused request spends none.
				usedProof = proofs[0]
			}
			seen[goodOrNot(len(codes) == 0)]++
		}
		reached(t, seen)
	})

	t.Run("request objects", func(t *testing.T) {
		rng := seeded(t, 9101, 1)
		seen := map[string]int{}
		for i := 0; i < 150 && !t.Failed(); i++ {
			params, _ := objectParams(ro)
			object, what := randomRequestObject(t, rng, pkKey, otherKey, ro.ID, srv.URL, params)
			outer := url.Values{"client_id": {ro.ID}, "request": {object}}
			if rng.IntN(2) == 0 {
				status, _, m := doJSON(t, bareClient, srv.formRequest("/oauth/par", outer, ro.ID, ro.Secret))
				want := "invalid_request_object"
				if what == "unregistered redirect_uri" {
					want = "invalid_request"
				}
				wantAnswer(t, "pushed request object: "+what, status, m, what == "", http.StatusBadRequest, want)
				if what == "" && status != http.StatusCreated || what != "" && m["request_uri"] != nil {
					t.Errorf("pushed request object (%s): %d %v", cmp.Or(what, "valid"), status, m)
				}
			} else {
				outer.Set("redirect_uri", ro.RedirectURI)
				outer.Set("state", "outer")
				p, err := fetch(bareClient, mustRequest(http.MethodGet, srv.URL+"/authorize?"+outer.Encode()))
				if err != nil || p.Status >= 500 {
					t.Fatalf("/authorize with a request object (%s): %v %d %s", what, err, p.Status, truncateBody(p.Body))
				}
				loc, _ := url.Parse(p.Location)
				switch {
				case what == "" && (p.Status != http.StatusFound || strings.HasPrefix(p.Location, ro.RedirectURI)):
					t.Errorf("a valid request object: %d to %q, want the sign-in", p.Status, p.Location)
				case what == "unregistered redirect_uri" && (p.Status != http.StatusBadRequest || p.Location != ""):
					t.Errorf("a request object with an unregistered redirect_uri: %d to %q, want the error page", p.Status, p.Location)
				case what != "" && what != "unregistered redirect_uri" && (!strings.HasPrefix(p.Location, ro.RedirectURI) ||
					loc.Query().Get("error") != "invalid_request_object" || loc.Query().Get("code") != "" || loc.Query().Get("state") != "outer"):
					t.Errorf("/authorize with a request object (%s): %d to %q, want invalid_request_object at the app", what, p.Status, p.Location)
				}
			}
			seen[goodOrNot(what == "")]++
		}
		reached(t, seen)
	})

	// The sign-in parameters (prompt, max_age, acr_values, claims,
	// login_hint, ui_locales, resource) inside request objects, of any
	// JSON type, by value at /authorize or pushed, from browsers with and
	// without a session: never a 5xx; what reaches the app is a code or
	// an error OIDC Core and RFC 9101 name; an invalid claims parameter
	// or prompt=none with another value never gets a code.
	t.Run("sign-in parameters inside request objects", func(t *testing.T) {
		rng := seeded(t, 9101, 2)
		app := srv.createClient(account.NewClient{ID: "ro-signin", JWKS: pkKey.jwks(t), SkipConsent: true, Resources: registered})
		withSession := newBrowser(t)
		signInPortal(t, srv, withSession, "rex")
		inner := map[string][]any{
			"prompt":     {"none", "login", "none login", "select_account", "bogus", "", 7, []string{"none"}, nil},
			"max_age":    {0, 3600, -1, 1e30, "x", "60", true, []any{}, nil},
			"acr_values": {account.ACRSecondFactor, account.ACRPasskey + " " + account.ACRPassword, "urn:example:x", 7, []string{"x"}},
			"claims": {map[string]any{"id_token": map[string]any{"acr": map[string]any{"essential": true, "values": []string{account.ACRSecondFactor}}}},
				map[string]any{"userinfo": map[string]any{"email": nil}}, `{"id_token":{"name":null}}`, `{"id_token":`, 7, []any{}, map[string]any{"userinfo": []any{}}, "null"},
			"login_hint":    {"rex", strings.Repeat("h", 600), 7, map[string]any{}},
			"ui_locales":    {"de", "fr de-AT", 7, []string{"de"}},
			"resource":      {registered[0], []string{registered[0], registered[1]}, "https://other.example/", []any{7}, "/api"},
			"response_mode": {"query", "form_post", "fragment", "x", 7},
			"nonce":         {7, strings.Repeat("n", 600), map[string]any{}},
		}
		names := make([]string, 0, len(inner))
		for k := range inner {
			names = append(names, k)
		}
		slices.Sort(names)
		allowed := []string{"invalid_request", "invalid_request_object", "login_required", "consent_required", "interaction_required",
			"unmet_authentication_requirements", "invalid_target", "invalid_scope", "temporarily_unavailable"}
		seen := map[string]int{}
		for i := 0; i < 150 && !t.Failed(); i++ {
			params, _ := objectParams(app)
			for n := 1 + rng.IntN(3); n > 0; n-- {
				name := names[rng.IntN(len(names))]
				params[name] = inner[name][rng.IntN(len(inner[name]))]
			}
			object := requestObject(t, pkKey.signing(), app.ID, srv.URL, params)
			b := newBrowser(t)
			if rng.IntN(2) == 0 {
				b = withSession
			}
			target := app.objectURI(object, nil)
			if rng.IntN(3) == 0 {
				status, _, m := app.push(url.Values{"request": {object}})
				if status >= 500 || status != http.StatusCreated && !slices.Contains(allowed, fmt.Sprint(m["error"])) {
					t.Fatalf("pushed %v: %d %v", params, status, m)
				}
				if status != http.StatusCreated {
					seen[fmt.Sprint(m["error"])]++
					continue
				}
				target = app.authorizeURI(m["request_uri"].(string), nil)
			}
			p := b.get(target)
			if p.Status >= 500 {
				t.Fatalf("%v: %d %s", params, p.Status, truncateBody(p.Body))
			}
			if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, app.RedirectURI) {
				seen["page"]++
				continue // a page of the sign-in, or a refusal shown to the person
			}
			res := landed(t, p, app.RedirectURI)
			if u, _ := url.Parse(p.Location); u.Fragment != "" { // response_mode=fragment
				q, _ := url.ParseQuery(u.Fragment)
				res = flowResult{Code: q.Get("code"), Error: q.Get("error"), Query: q}
			}
			if res.Code == "" && !slices.Contains(allowed, res.Error) {
				t.Fatalf("%v: the app got %v", params, res.Query)
			}
			seen[cmp.Or(res.Error, "code")]++
			var prompt []string
			if s, ok := params["prompt"].(string); ok {
				prompt = strings.Fields(s)
			}
			claimsOK := true
			switch c := params["claims"].(type) {
			case nil:
			case map[string]any:
				_, bad := c["userinfo"].([]any)
				claimsOK = !bad
			case string:
				var m map[string]any
				claimsOK = json.Unmarshal([]byte(c), &m) == nil && m != nil
			default:
				claimsOK = false
			}
			resourceOK := true
			switch r := params["resource"].(type) {
			case nil:
			case string:
				resourceOK = slices.Contains(registered, r)
			case []string:
				resourceOK = !slices.ContainsFunc(r, func(v string) bool { return !slices.Contains(registered, v) })
			default:
				resourceOK = false
			}
			if res.Code != "" && (slices.Contains(prompt, "none") && len(prompt) > 1 || !claimsOK || !resourceOK) {
				t.Fatalf("%v: an invalid request got a code", params)
			}
		}
		t.Logf("answers: %v", seen)
		if seen["code"] == 0 || seen["invalid_request"] == 0 {
			t.Errorf("the seed reached %v; want codes and refusals", seen)
		}
	})

	t.Run("resource indicators at PAR", func(t *testing.T) {
		rng := seeded(t, 8707, 1)
		pool := append(slices.Clone(registered), "https://other.example/", "https://api.example.com/#f", "/api", "x", "", "urn:",
			"https://api.example.com/"+strings.Repeat("r", 600), "https://bücher.example/", "%zz", "\x00")
		seen := map[string]int{}
		for i := 0; i < 100 && !t.Failed(); i++ {
			form, _ := pushedParams(ro)
			for n := rng.IntN(4); n > 0; n-- {
				form.Add("resource", pool[rng.IntN(len(pool))])
			}
			good := !slices.ContainsFunc(form["resource"], func(r string) bool { return !slices.Contains(registered, r) })
			status, _, m := doJSON(t, bareClient, srv.formRequest("/oauth/par", form, ro.ID, ro.Secret))
			if good && status != http.StatusCreated || !good && (status != http.StatusBadRequest || m["error"] != "invalid_target" || m["request_uri"] != nil) {
				t.Errorf("pushed request for %q: %d %v", form["resource"], status, m)
			}
			seen[goodOrNot(good)]++
		}
		reached(t, seen)
	})

	// Pushed requests that mix everything a push may carry, each part good
	// or bad: client authentication (a secret or an assertion), a DPoP
	// proof, dpop_jkt, resources, a request object holding the
	// parameters. One bad part refuses the push with that part's code;
	// with none, it gets a request_uri.
	t.Run("pushed requests mixing parameters", func(t *testing.T) {
		rng := seeded(t, 9126, 1)
		key, otherJKT := newDPoPKey(t), newDPoPKey(t).jkt
		pool := append(slices.Clone(registered), "https://other.example/", "https://api.example.com/#f", "/api", "")
		seen, usedProof, usedAssertion := map[string]int{}, "", ""
		for i := 0; i < 200 && !t.Failed(); i++ {
			var codes []string // the codes a refusal may carry; none for a good push
			var parts []string
			bad := func(code, what string) {
				if what != "" {
					codes = append(codes, code)
				}
			}
			app := []*testClient{ro, pk}[rng.IntN(2)]
			params, _ := objectParams(app)
			form := url.Values{}
			var user, pass string
			if app == pk {
				a, what := randomAssertion(t, rng, pkKey, otherKey, srv.URL, usedAssertion)
				form = assertionParams(a)
				bad("invalid_client", what)
				if what == "" {
					usedAssertion = a
				}
			} else {
				user, pass = ro.ID, []string{ro.Secret, ro.Secret, ro.Secret, "wrong"}[rng.IntN(4)]
				if pass == "wrong" {
					bad("invalid_client", "secret")
				}
			}
			var proofs []string
			if rng.IntN(2) == 0 {
				var what string
				proofs, what = randomProof(t, rng, key, http.MethodPost, parURL, "", usedProof)
				bad("invalid_dpop_proof", what)
				if what != "" {
					parts = append(parts, "proof: "+what)
				}
			}
			switch rng.IntN(5) {
			case 0:
				params["dpop_jkt"] = key.jkt
			case 1:
				params["dpop_jkt"] = otherJKT
				if len(proofs) > 0 {
					bad("invalid_dpop_proof", "dpop_jkt of another key")
				}
			case 2:
				params["dpop_jkt"] = []string{"", "!!", strings.Repeat("A", 44), key.jkt + "="}[rng.IntN(4)]
				bad("invalid_request", "malformed dpop_jkt")
			}
			var resources []string
			for n := rng.IntN(3); n > 0; n-- {
				resources = append(resources, pool[rng.IntN(len(pool))])
			}
			if len(resources) > 0 {
				params["resource"] = resources
				if slices.ContainsFunc(resources, func(r string) bool { return !slices.Contains(registered, r) }) {
					bad("invalid_target", "resource")
				}
			}
			if rng.IntN(2) == 0 {
				object, what := randomRequestObject(t, rng, pkKey, otherKey, app.ID, srv.URL, params)
				if what == "unregistered redirect_uri" {
					bad("invalid_request", what)
				} else {
					bad("invalid_request_object", what)
				}
				form.Set("request", object)
				if app == ro || rng.IntN(2) == 0 {
					form.Set("client_id", app.ID)
				}
			} else {
				for k, v := range params {
					if list, ok := v.([]string); ok {
						form[k] = list
					} else {
						form.Set(k, fmt.Sprint(v))
					}
				}
			}
			req := srv.formRequest("/oauth/par", form, user, pass)
			addProofs(rng, req, proofs)
			status, _, m := doJSON(t, clientFrom(i), req)
			code, _ := m["error"].(string)
			switch {
			case len(codes) == 0 && (status != http.StatusCreated || m["request_uri"] == nil):
				t.Errorf("a good push %q (DPoP %d): %d %v", truncateBody(form.Encode()), len(proofs), status, m)
			case len(codes) > 0 && (status < 400 || status >= 500 || !slices.Contains(codes, code) || m["request_uri"] != nil):
				t.Errorf("a push %q (DPoP %d, %v, Origin %q) with bad parts %v: %d %v", truncateBody(form.Encode()), len(proofs), parts, req.Header.Get("Origin"), codes, status, m)
			}
			if status == http.StatusCreated && len(proofs) > 0 {
				// Its jti is spent now; a refused push spends none
				// (provider/dpop.go), so only this one is a replay after.
				usedProof = proofs[0]
			}
			seen[goodOrNot(len(codes) == 0)]++
		}
		reached(t, seen)
	})

	// dpop_jkt at /authorize (RFC 9449 §10): a malformed one is
	// invalid_request at the app, a well-formed one a sign-in.
	t.Run("dpop_jkt at authorize", func(t *testing.T) {
		rng := seeded(t, 9449, 10)
		key := newDPoPKey(t)
		values := []string{key.jkt, strings.Repeat("A", 43), "", "!!", strings.Repeat("A", 44), key.jkt + "=", "%zz", strings.Repeat("j", 3000)}
		seen := map[string]int{}
		for i := 0; i < 40 && !t.Failed(); i++ {
			form, _ := pushedParams(web)
			jkt := values[rng.IntN(len(values))]
			form.Set("dpop_jkt", jkt)
			good := len(jkt) == 43 && !strings.ContainsAny(jkt, "!%=")
			p, err := fetch(bareClient, mustRequest(http.MethodGet, srv.URL+"/authorize?"+form.Encode()))
			if err != nil {
				t.Fatal(err)
			}
			loc, _ := url.Parse(p.Location)
			switch {
			case p.Status >= 500:
				t.Errorf("dpop_jkt %q: %d %s", truncateBody(jkt), p.Status, truncateBody(p.Body))
			case good && (p.Status != http.StatusFound || strings.HasPrefix(p.Location, web.RedirectURI)):
				t.Errorf("dpop_jkt %q: %d to %q, want the sign-in", jkt, p.Status, p.Location)
			case !good && (!strings.HasPrefix(p.Location, web.RedirectURI) || loc.Query().Get("error") != "invalid_request"):
				t.Errorf("dpop_jkt %q: %d to %q, want invalid_request at the app", truncateBody(jkt), p.Status, p.Location)
			}
			seen[goodOrNot(good)]++
		}
		reached(t, seen)
	})

	// Oversized and repeated input at each endpoint that takes a form:
	// a body past the bound is 413, a parameter sent twice that may not
	// repeat (RFC 6749 §3.1), a second Authorization header (two client
	// authentications, §2.3) or a client_id naming another app than the
	// header is 400 invalid_request, before anything else is read;
	// nothing is issued.
	t.Run("oversized and repeated parameters", func(t *testing.T) {
		rng := seeded(t, 6749, 1)
		dk := newDPoPKey(t)
		paths := []string{"/oauth/token", "/oauth/par", "/device_authorization", "/oauth/introspect", "/revoke"}
		params := []string{"client_assertion", "client_assertion_type", "request", "dpop_jkt", "grant_type", "device_code", "subject_token",
			"client_id", "scope", "token"}
		for i := 0; i < 100 && !t.Failed(); i++ {
			path := paths[rng.IntN(len(paths))]
			form, _ := pushedParams(web)
			form.Set("grant_type", "client_credentials")
			form.Set("token", "x")
			wantHTTP, what := http.StatusBadRequest, ""
			var second string // a second Authorization header
			switch rng.IntN(4) {
			case 3:
				// Another app's client_id beside the Authorization header.
				form.Set("client_id", []string{"machine", "nobody", "WEB", "web "}[rng.IntN(4)])
				what = "mismatched client_id"
			case 0:
				name := params[rng.IntN(len(params))]
				form[name] = []string{"a", "b"}
				what = "repeated " + name
			case 1:
				form.Set(params[rng.IntN(len(params))], strings.Repeat("o", 65<<10))
				wantHTTP, what = http.StatusRequestEntityTooLarge, "oversized"
			default:
				second = []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("machine:"+machine.Secret)),
					"Basic " + base64.StdEncoding.EncodeToString([]byte("web:"+web.Secret)), "Bearer x", "DPoP x", ""}[rng.IntN(5)]
				what = "repeated Authorization"
			}
			req := srv.formRequest(path, form, web.ID, web.Secret)
			if what == "repeated Authorization" {
				req.Header.Add("Authorization", second)
			}
			if rng.IntN(2) == 0 {
				proofs, _ := randomProof(t, rng, dk, http.MethodPost, srv.URL+path, "", "")
				req.Header.Set("DPoP", proofs[0])
			}
			status, _, m := doJSON(t, clientFrom(i), req)
			if status != wantHTTP || m["error"] != "invalid_request" || m["access_token"] != nil || m["request_uri"] != nil || m["device_code"] != nil {
				t.Errorf("%s with a %s parameter: %d %v, want %d invalid_request", path, what, status, m, wantHTTP)
			}
		}
		// /userinfo takes one access token (RFC 6750 §2, §3.1).
		for _, second := range []string{"Bearer x", "DPoP x", ""} {
			req := mustRequest(http.MethodGet, userinfoURL)
			req.Header.Add("Authorization", "Bearer "+web.tokens("rex").AccessToken)
			req.Header.Add("Authorization", second)
			if status, h, m := doJSON(t, bareClient, req); status != http.StatusBadRequest || m["error"] != "invalid_request" ||
				!strings.Contains(h.Get("WWW-Authenticate"), `error="invalid_request"`) || m["sub"] != nil {
				t.Errorf("userinfo with a second Authorization header %q: %d %v %q, want 400 invalid_request", second, status, m, h.Get("WWW-Authenticate"))
			}
		}
		// A registration body past its bound.
		iat, _ := initialAccessToken(t, srv, adminRW, 0, false)
		body := webMetadata("oversized")
		body["client_name"] = strings.Repeat("o", 65<<10)
		if status, _, m := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, body); status != http.StatusRequestEntityTooLarge || m["error"] != "invalid_client_metadata" {
			t.Errorf("an oversized registration: %d %v", status, m)
		}
	})

	t.Run("registration bodies", func(t *testing.T) {
		rng := seeded(t, 7591, 1)
		iat, _ := initialAccessToken(t, srv, adminRW, 0, false)
		key := newRPKey(t, jose.ES256, "k1")
		badRedirects := []any{[]string{"javascript:alert(1)"}, []string{"https://a.example/cb#f"}, []string{"/cb"}, []string{""},
			[]string{"http://evil.example/cb"}, []string{"https://a.example/cb", "http://evil.example/cb"},
			[]string{"https://a.example/" + strings.Repeat("p", 3000)}}
		badMetadata := map[string][]any{
			"token_endpoint_auth_method":   {"x", "client_secret_jwt ", 7, []string{"none"}},
			"grant_types":                  {[]string{"password"}, []string{"implicit"}, "authorization_code", []string{"urn:ietf:params:oauth:grant-type:jwt-bearer"}},
			"response_types":               {[]string{"token"}, []string{"code id_token"}, "code"},
			"scope":                        {"openid keyport:admin", 7, []string{"openid"}},
			"jwks":                         {"x", map[string]any{"keys": []any{map[string]any{"kty": "EC"}}}, []any{}},
			"jwks_uri":                     {"http://127.0.0.1:1/jwks", "javascript:x", 7},
			"id_token_signed_response_alg": {"none", "HS256", "XX"},
			"subject_type":                 {"x", "pairwise ", 7},
			// Never a name to resolve: the checks must refuse these before any fetch.
			"sector_identifier_uri":  {"http://127.0.0.1:1/s.json", "x", "https://127.0.0.1:1/s.json#f"},
			"backchannel_logout_uri": {"javascript:x", "https://a.example/l#f", 7},
			"client_name":            {strings.Repeat("n", 5000), 7, []string{"x"}},
			// A list of redirect URIs that is not a list of strings is a body
			// that is not client metadata, before any URI is read.
			"redirect_uris": {"https://a.example/cb", 7, []any{1}, map[string]any{}},
		}
		names := make([]string, 0, len(badMetadata))
		for k := range badMetadata {
			names = append(names, k)
		}
		slices.Sort(names)
		count := func() int {
			clients, err := srv.Main.Store.ListClients(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			return len(clients)
		}
		before, created := count(), 0
		seen := map[string]int{}
		for i := 0; i < 150 && !t.Failed(); i++ {
			body := webMetadata(fmt.Sprintf("random-%d", i))
			body["jwks"] = key.jwks(t)
			delete(body, "backchannel_logout_uri")
			var what, want string
			switch rng.IntN(4) {
			case 0: // good
			case 1:
				body[[]string{"redirect_uris", "post_logout_redirect_uris"}[rng.IntN(2)]] = badRedirects[rng.IntN(len(badRedirects))]
				what, want = "redirect URI", "invalid_redirect_uri"
			default:
				name := names[rng.IntN(len(names))]
				body[name] = badMetadata[name][rng.IntN(len(badMetadata[name]))]
				what, want = name, "invalid_client_metadata"
			}
			status, _, m := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, body)
			switch {
			case want == "" && status != http.StatusCreated:
				t.Errorf("good metadata %v: %d %v", body, status, m)
			case want != "" && (status != http.StatusBadRequest || m["error"] != want || m["client_id"] != nil):
				raw, _ := json.Marshal(body)
				t.Errorf("metadata with a bad %s (%s): %d %v, want 400 %s", what, truncateBody(string(raw)), status, m, want)
			}
			if status == http.StatusCreated {
				created++
			}
			seen[goodOrNot(want == "")]++
		}
		reached(t, seen)
		if after := count(); after != before+created {
			t.Errorf("%d apps after %d registrations, want %d: a refused registration registered one", after, created, before+created)
		}

		// Updates of one registration (RFC 7592 §2.2): bad metadata,
		// another client_id, a wrong token are refused with their codes
		// and leave the registration as it was; good ones change it.
		body := webMetadata("updated")
		_, _, reg := registrationCall(t, srv, http.MethodPost, "/oauth/register", iat, body)
		id, regToken := reg["client_id"].(string), reg["registration_access_token"].(string)
		read := func() map[string]any {
			status, _, m := registrationCall(t, srv, http.MethodGet, "/oauth/register/"+id, regToken, nil)
			if status != http.StatusOK {
				t.Fatalf("read the registration: %d %v", status, m)
			}
			return m
		}
		last := read()
		for i := 0; i < 60 && !t.Failed(); i++ {
			body := webMetadata("updated")
			body["client_id"] = id
			body["client_name"] = fmt.Sprintf("updated-%d", i)
			token := regToken
			var what, want string
			switch rng.IntN(6) {
			case 0, 1: // good
			case 2:
				body[[]string{"redirect_uris", "post_logout_redirect_uris"}[rng.IntN(2)]] = badRedirects[rng.IntN(len(badRedirects))]
				what, want = "redirect URI", "invalid_redirect_uri"
			case 3:
				name := names[rng.IntN(len(names))]
				body[name] = badMetadata[name][rng.IntN(len(badMetadata[name]))]
				what, want = name, "invalid_client_metadata"
			case 4:
				body["client_id"] = []any{"pk", "", nil, 7, id + "x"}[rng.IntN(5)]
				what, want = "client_id", "invalid_client_metadata"
			case 5:
				token = []string{iat, regToken + "x", account.RegistrationAccessTokenPrefix + "x"}[rng.IntN(3)]
				what, want = "token", "invalid_token"
			}
			status, _, m := registrationCall(t, srv, http.MethodPut, "/oauth/register/"+id, token, body)
			switch {
			case want == "" && status != http.StatusOK:
				t.Errorf("a good update: %d %v", status, m)
			case want == "invalid_token" && (status != http.StatusUnauthorized || m["error"] != want):
				t.Errorf("an update with a wrong token: %d %v, want 401 invalid_token", status, m)
			case want != "" && want != "invalid_token" && (status != http.StatusBadRequest || m["error"] != want):
				t.Errorf("an update with a bad %s: %d %v, want 400 %s", what, status, m, want)
			}
			now := read()
			if want == "" {
				last = now
			} else if !reflect.DeepEqual(now, last) {
				t.Errorf("a refused update (%s) changed the registration: %v, was %v", what, now, last)
			}
			seen[goodOrNot(want == "")]++
		}
	})

	t.Run("device authorization", func(t *testing.T) {
		rng := seeded(t, 8628, 1)
		type expected struct {
			status int
			code   string
		}
		// Scopes the app may not have are dropped, as at /authorize; the
		// ones RFC 6749 §3.3 does not allow, or too many, are refused.
		scopes := []string{"openid", "openid offline_access", "keyport:admin", "openid x", "",
			strings.Repeat("s ", 40), "\x00", "openid \"x\"", "a\\b", strings.Repeat("s", 129), "é"}
		seen := map[string]int{}
		for i := 0; i < 150 && !t.Failed(); i++ {
			form := url.Values{"scope": {scopes[rng.IntN(5)]}}
			var user, pass string
			var want expected
			switch rng.IntN(9) {
			case 0:
				form.Set("client_id", tv.ID)
			case 1:
				form.Set("client_id", []string{"nobody", "", strings.Repeat("n", 300), "%zz"}[rng.IntN(4)])
				want = expected{http.StatusUnauthorized, "invalid_client"}
			case 2:
				user, pass = machine.ID, machine.Secret // not a device app
				want = expected{http.StatusBadRequest, "unauthorized_client"}
			case 3:
				user, pass = machine.ID, "wrong"
				want = expected{http.StatusUnauthorized, "invalid_client"}
			case 4:
				form.Set("client_id", tv.ID)
				form.Set("scope", scopes[5+rng.IntN(len(scopes)-5)])
				want = expected{http.StatusBadRequest, "invalid_scope"}
			case 5:
				form.Set("client_id", tv.ID)
				form.Add("resource", []string{"https://other.example/", "/api", "https://api.example.com/#f"}[rng.IntN(3)])
				want = expected{http.StatusBadRequest, "invalid_target"}
			case 6:
				a, what := randomAssertion(t, rng, pkKey, otherKey, srv.URL, "")
				form.Set("client_assertion_type", provider.ClientAssertionType)
				form.Set("client_assertion", a)
				if what != "" {
					want = expected{http.StatusUnauthorized, "invalid_client"}
				}
			case 7:
				form.Set("client_id", []string{"pk", "machine"}[rng.IntN(2)]) // no credentials
				want = expected{http.StatusUnauthorized, "invalid_client"}
			case 8:
				form.Set("client_id", tv.ID)
				form.Add("client_id", "pk")
				want = expected{http.StatusBadRequest, "invalid_request"}
			}
			req := srv.formRequest("/device_authorization", form, user, pass)
			status, _, m := doJSON(t, clientFrom(i), req)
			switch {
			case want.code == "" && (status != http.StatusOK || m["device_code"] == nil):
				t.Errorf("device authorization %q: %d %v, want a device code", form.Encode(), status, m)
			case want.code != "" && (status != want.status && !(want.code == "invalid_client" && status == http.StatusBadRequest) || m["error"] != want.code || m["device_code"] != nil):
				t.Errorf("device authorization %q (Basic %q): %d %v, want %d %s", truncateBody(form.Encode()), user, status, m, want.status, want.code)
			}
			seen[goodOrNot(want.code == "")]++
		}
		reached(t, seen)

		// Random headers, methods and bodies: never a 5xx; a refusal is
		// JSON with a code RFC 6749 §5.2 names (RFC 8628 §3.2), and
		// hands out no device code.
		codes := []string{"invalid_request", "invalid_client", "unauthorized_client", "invalid_scope", "invalid_target"}
		auths := []string{"Basic " + base64.StdEncoding.EncodeToString([]byte("machine:"+machine.Secret)), "Basic %%%", "Basic " +
			base64.StdEncoding.EncodeToString([]byte("tv:")), "Basic " + base64.StdEncoding.EncodeToString([]byte("%zz:%")),
			"Basic " + base64.StdEncoding.EncodeToString([]byte(strings.Repeat("u", 5000)+":x")), "Bearer x", "DPoP x", "", "Basic"}
		bodies := []string{"client_id=tv&scope=openid", "client_id=tv&client_id=tv", "client_id=tv&scope=openid&scope=email",
			"client_id=%zz", "client_id=tv&CLIENT_ID=pk", "client_id=tv&resource=%00", "scope=openid", "", "%", "client_id=" + strings.Repeat("t", 9000),
			"client_id=pk&client_assertion_type=" + url.QueryEscape(provider.ClientAssertionType) + "&client_assertion=x",
			"client_id=tv&client_secret=x&client_assertion=y", "{\"client_id\":\"tv\"}"}
		ctypes := []string{"application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8", "application/json", "text/plain", "",
			"multipart/form-data; boundary=x"}
		for i := 0; i < 100 && !t.Failed(); i++ {
			body, method := bodies[rng.IntN(len(bodies))], []string{"POST", "POST", "POST", "GET", "PUT"}[rng.IntN(5)]
			target := srv.URL + "/device_authorization"
			if rng.IntN(4) == 0 {
				target += "?" + bodies[rng.IntN(len(bodies))]
			}
			req, err := http.NewRequest(method, target, strings.NewReader(body))
			if err != nil {
				continue
			}
			req.Header.Set("Content-Type", ctypes[rng.IntN(len(ctypes))])
			if a := auths[rng.IntN(len(auths))]; a != "" {
				req.Header.Set("Authorization", a)
			}
			if rng.IntN(4) == 0 {
				req.Header.Set("DPoP", []string{"x", strings.Repeat("A", 9000)}[rng.IntN(2)])
			}
			status, _, m := doJSON(t, clientFrom(i), req)
			code, _ := m["error"].(string)
			switch {
			case status >= 500 || status == http.StatusOK && m["device_code"] == nil:
				t.Errorf("%s device authorization %q %v: %d %v", method, truncateBody(body), req.Header, status, m)
			case status != http.StatusOK && (!slices.Contains(codes, code) || m["device_code"] != nil):
				t.Errorf("%s device authorization %q %v: %d %v, want one of %v", method, truncateBody(body), req.Header, status, m, codes)
			}
		}

		// The device_code grant with random codes: its own, another app's,
		// made up; codes no one approved yet are pending.
		_, _, tvCode := srv.postForm("/device_authorization", url.Values{"client_id": {tv.ID}, "scope": {"openid"}}, "", "")
		_, _, pkCode := srv.postForm("/device_authorization", merge(assertionParams(assertion(t, pkKey.signing(), "pk", srv.URL)), url.Values{"scope": {"openid"}}), "", "")
		own, others := tvCode["device_code"].(string), pkCode["device_code"].(string)
		for i := 0; i < 60 && !t.Failed(); i++ {
			form := url.Values{"grant_type": {account.GrantDeviceCode}, "client_id": {tv.ID}}
			want := "invalid_grant"
			switch rng.IntN(4) {
			case 0:
				form.Set("device_code", own)
				want = "authorization_pending" // or slow_down, polled too fast
			case 1:
				form.Set("device_code", others)
			case 2:
				form.Set("device_code", []string{"", "x", strings.Repeat("d", 5000), own + "x", "%zz", "\x00"}[rng.IntN(6)])
				if c := form.Get("device_code"); c == "" || len(c) > 256 {
					want = "invalid_request" // missing, or longer than any code Keyport makes
				}
			case 3:
				form.Del("device_code")
				want = "invalid_request"
			}
			status, _, m := doJSON(t, clientFrom(i), srv.formRequest("/oauth/token", form, "", ""))
			if status != http.StatusBadRequest || m["error"] != want && !(want == "authorization_pending" && m["error"] == "slow_down") || m["access_token"] != nil {
				t.Errorf("device_code grant with %q: %d %v, want 400 %s", truncateBody(form.Get("device_code")), status, m, want)
			}
		}
	})
}

// seeded is a random source with a fixed seed, logged so a failure can be
// replayed.
func seeded(t *testing.T, a, b uint64) *rand.Rand {
	t.Logf("seed %d,%d", a, b)
	return rand.New(rand.NewPCG(a, b))
}

// goodOrNot names an outcome for the counts of reached.
func goodOrNot(good bool) string {
	if good {
		return "good"
	}
	return "refused"
}

// reached fails the test unless the seed reached both good requests and
// refusals: a test that only ever draws one proves little.
func reached(t *testing.T, seen map[string]int) {
	t.Helper()
	t.Logf("answers: %v", seen)
	if seen["good"] == 0 || seen["refused"] == 0 {
		t.Errorf("the seed reached %v; want both good requests and refusals", seen)
	}
}

// wantAnswer checks an answer: a refusal (good false) must be status with
// the error code; a good request must not be refused with it.
func wantAnswer(t *testing.T, what string, status int, m map[string]any, good bool, want int, code string) {
	t.Helper()
	switch {
	case status >= 500:
		t.Errorf("%s: %d %v", what, status, m)
	case !good && (status != want || m["error"] != code):
		t.Errorf("%s: %d %v, want %d %s", what, status, m, want, code)
	case good && status >= 400:
		t.Errorf("%s (a good one): %d %v", what, status, m)
	}
}

// randomProof is a DPoP proof of method at target (with ath for token),
// as one of the ways a client gets it wrong, chosen by rng, named by
// what; what is "" for a good proof. A proof is one header value unless
// it is sent twice; used is a good proof sent already, to replay.
func randomProof(t *testing.T, rng *rand.Rand, key *dpopKey, method, target, token, used string) (proofs []string, what string) {
	edit := func(f func(map[string]any)) []string { return []string{key.proof(t, method, target, token, f)} }
	claims := func() map[string]any {
		c := map[string]any{"jti": account.NewID(), "htm": method, "htu": target, "iat": time.Now().Unix()}
		if token != "" {
			sum := sha256.Sum256([]byte(token))
			c["ath"] = base64.RawURLEncoding.EncodeToString(sum[:])
		}
		return c
	}
	signing := jose.SigningKey{Algorithm: jose.ES256, Key: key.key}
	header := func(h map[string]any, payload string) string {
		raw, _ := json.Marshal(h)
		return base64.RawURLEncoding.EncodeToString(raw) + "." + payload + ".AAAA"
	}
	payload, _ := json.Marshal(claims())
	jwk, _ := (&jose.JSONWebKey{Key: key.key.Public()}).MarshalJSON()
	switch rng.IntN(24) {
	case 0, 1, 2:
		return []string{key.proof(t, method, target, token)}, ""
	case 3:
		return []string{key.proof(t, map[string]string{"GET": "POST", "POST": "GET"}[method], target, token)}, "htm"
	case 4:
		return []string{key.proof(t, method, target+"x", token)}, "htu path"
	case 5:
		return []string{key.proof(t, method, strings.Replace(target, "http://", "https://", 1), token)}, "htu scheme"
	case 6:
		return edit(func(c map[string]any) { c["iat"] = time.Now().Add(-time.Hour).Unix() }), "old iat"
	case 7:
		return edit(func(c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }), "future iat"
	case 8:
		return edit(func(c map[string]any) { c["iat"] = []string{"now", "", "1e400"}[rng.IntN(3)] }), "iat not a number"
	case 9:
		return edit(func(c map[string]any) { delete(c, []string{"jti", "htm", "htu", "iat"}[rng.IntN(4)]) }), "claim missing"
	case 10:
		return edit(func(c map[string]any) { c["jti"] = []any{42, "", strings.Repeat("j", 300), nil}[rng.IntN(4)] }), "bad jti"
	case 11:
		return edit(func(c map[string]any) {
			c["htu"] = []any{7, "", "%zz", "https://evil.example/oauth/token"}[rng.IntN(4)]
		}), "bad htu"
	case 12:
		if token == "" {
			return edit(func(c map[string]any) { c["htm"] = []any{"PUT", 7, ""}[rng.IntN(3)] }), "bad htm"
		}
		return edit(func(c map[string]any) { c["ath"] = []any{"x", 7, nil, ""}[rng.IntN(4)] }), "wrong ath"
	case 13:
		typ := []string{"JWT", "dpop", "dpop+JWT ", ""}[rng.IntN(4)]
		return []string{signJWTWith(t, signing, (&jose.SignerOptions{EmbedJWK: true}).WithType(jose.ContentType(typ)), claims())}, "typ " + typ
	case 14:
		return []string{signJWTWith(t, signing, (&jose.SignerOptions{}).WithType("dpop+jwt"), claims())}, "no jwk"
	case 15:
		return []string{signJWT(t, hs256(strings.Repeat("s", 32)), "dpop+jwt", claims())}, "HS256"
	case 16:
		return []string{header(map[string]any{"typ": "dpop+jwt", "alg": "none", "jwk": json.RawMessage(jwk)},
			base64.RawURLEncoding.EncodeToString(payload))}, "alg none"
	case 17:
		p := key.proof(t, method, target, token)
		i := strings.LastIndexByte(p, '.') + 1 + rng.IntN(20)
		c := byte('A')
		if p[i] == 'A' {
			c = 'B'
		}
		return []string{p[:i] + string(c) + p[i+1:]}, "tampered signature"
	case 18:
		return []string{header(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": json.RawMessage(jwk)},
			[]string{"W10", "bnVsbA", "e30", "!!", ""}[rng.IntN(5)])}, "bad payload"
	case 19:
		return []string{[]string{"", "x", "a.b.c", "....", strings.Repeat("A", 9000), "eyJ0eXAiOiJkcG9wK2p3dCJ9.e30."}[rng.IntN(6)]}, "garbage"
	case 20:
		return edit(func(c map[string]any) { c["pad"] = strings.Repeat("p", 9<<10) }), "oversized"
	case 21:
		return []string{key.proof(t, method, target, token), key.proof(t, method, target, token)}, "two proofs"
	case 22:
		return []string{header(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": map[string]any{"kty": "EC", "crv": "P-256"}},
			base64.RawURLEncoding.EncodeToString(payload))}, "bad jwk"
	default:
		// A good proof sent before (RFC 9449 §11.1).
		if used != "" {
			return []string{used}, "replay"
		}
		return []string{key.proof(t, method, target, token)}, ""
	}
}

// randomAssertion is a client assertion of pk (RFC 7523 §3) for aud, as
// one of the ways an app or an attacker gets it wrong, chosen by rng and
// named by what; what is "" for a good one. used is a good assertion
// sent already, to replay.
func randomAssertion(t *testing.T, rng *rand.Rand, key, other rpKey, aud, used string) (a, what string) {
	edit := func(f func(map[string]any)) string { return assertion(t, key.signing(), "pk", aud, f) }
	claims := map[string]any{"iss": "pk", "sub": "pk", "aud": aud, "jti": account.NewID(), "iat": time.Now().Unix(), "exp": time.Now().Add(time.Minute).Unix()}
	payload, _ := json.Marshal(claims)
	switch rng.IntN(18) {
	case 0, 1, 2, 3:
		return assertion(t, key.signing(), "pk", aud), ""
	case 4:
		return edit(func(c map[string]any) { c["iss"] = []any{"machine", "nobody", "", 7}[rng.IntN(4)] }), "iss"
	case 5:
		return edit(func(c map[string]any) { c["sub"] = []any{"machine", "nobody", "", 7}[rng.IntN(4)] }), "sub"
	case 6:
		return edit(func(c map[string]any) {
			c["aud"] = []any{"https://elsewhere.example", aud + "/userinfo", nil, 7, []any{}}[rng.IntN(5)]
		}), "aud"
	case 7:
		return edit(func(c map[string]any) {
			c["exp"] = []any{time.Now().Add(-time.Hour).Unix(), nil, "soon", 1e30}[rng.IntN(4)]
		}), "exp"
	case 8:
		return edit(func(c map[string]any) { c["nbf"] = time.Now().Add(time.Hour).Unix() }), "nbf"
	case 9:
		return assertion(t, other.signing(), "pk", aud), "another key"
	case 10:
		return assertion(t, hs256(strings.Repeat("s", 32)), "pk", aud), "HS256"
	case 11:
		h, _ := json.Marshal(map[string]any{"alg": "none", "typ": "JWT"})
		return base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(payload) + ".", "alg none"
	case 12:
		a := assertion(t, key.signing(), "pk", aud)
		i := strings.LastIndexByte(a, '.') + 1 + rng.IntN(20)
		c := byte('A')
		if a[i] == 'A' {
			c = 'B'
		}
		return a[:i] + string(c) + a[i+1:], "tampered signature"
	case 13:
		return []string{"", "x", "a.b.c", "....", "eyJhbGciOiJFUzI1NiJ9.W10.AA", strings.Repeat("A", 20<<10)}[rng.IntN(6)], "garbage"
	case 14:
		return edit(func(c map[string]any) { c["pad"] = strings.Repeat("p", 20<<10) }), "oversized"
	case 15:
		return assertion(t, key.signing(), "nobody", aud), "unknown app"
	default:
		if used != "" {
			return used, "replay"
		}
		return assertion(t, key.signing(), "pk", aud), ""
	}
}

// randomRequestObject is a request object (RFC 9101) of app id for aud
// with params, as one of the ways an app gets it wrong, chosen by rng and
// named by what; what is "" for a good one.
func randomRequestObject(t *testing.T, rng *rand.Rand, key, other rpKey, id, aud string, params map[string]any) (object, what string) {
	edit := func(f func(map[string]any)) string { return requestObject(t, key.signing(), id, aud, params, f) }
	switch rng.IntN(16) {
	case 0, 1, 2, 3:
		return requestObject(t, key.signing(), id, aud, params), ""
	case 4:
		return edit(func(c map[string]any) { c["iss"] = []any{"pk", "", 7}[rng.IntN(3)] }), "iss"
	case 5:
		return edit(func(c map[string]any) { c["aud"] = []any{"https://elsewhere.example", nil, 7, []any{}}[rng.IntN(4)] }), "aud"
	case 6:
		return edit(func(c map[string]any) { c["client_id"] = []any{"pk", "", 7}[rng.IntN(3)] }), "client_id"
	case 7:
		return edit(func(c map[string]any) {
			c["exp"] = []any{time.Now().Add(-time.Hour).Unix(), nil, "soon", time.Now().Add(24 * time.Hour).Unix()}[rng.IntN(4)]
		}), "exp"
	case 8:
		return edit(func(c map[string]any) { c[[]string{"nbf", "iat"}[rng.IntN(2)]] = time.Now().Add(time.Hour).Unix() }), "nbf or iat"
	case 9:
		return requestObject(t, other.signing(), id, aud, params), "another key"
	case 10:
		return requestObject(t, hs256(strings.Repeat("s", 32)), id, aud, params), "HS256"
	case 11:
		claims, _ := json.Marshal(map[string]any{"iss": id, "aud": aud, "client_id": id, "exp": time.Now().Add(time.Minute).Unix()})
		return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + ".", "alg none"
	case 12:
		return []string{"x", "a.b.c", "a.b.c.d.e", "eyJhbGciOiJFUzI1NiJ9.W10.AA", strings.Repeat("A", 17<<10)}[rng.IntN(5)], "garbage"
	case 13:
		return edit(func(c map[string]any) { c[[]string{"request", "request_uri"}[rng.IntN(2)]] = "x" }), "nested request"
	case 14:
		return signJWT(t, key.signing(), []string{"dpop+jwt", "at+jwt"}[rng.IntN(2)], map[string]any{"iss": id, "aud": aud,
			"exp": time.Now().Add(time.Minute).Unix()}), "typ"
	default:
		return edit(func(c map[string]any) { c["redirect_uri"] = "https://evil.example/cb" }), "unregistered redirect_uri"
	}
}

// addProofs puts proofs in req's DPoP headers and, one time in three, an
// Origin: a browser app's request, whose answers get CORS headers.
func addProofs(rng *rand.Rand, req *http.Request, proofs []string) {
	for _, p := range proofs {
		req.Header.Add("DPoP", p)
	}
	if rng.IntN(3) == 0 {
		req.Header.Set("Origin", "https://spa.example")
	}
}
