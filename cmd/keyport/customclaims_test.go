package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
)

// Custom claims per app, on one server: an app from config.toml whose
// mappings put an app_metadata key, roles, groups and the username in the
// ID token, userinfo and its JWT access tokens (and introspection) as
// configured, and only with their scope; an app without mappings that gets
// none even when it asks for the scope; an app made through the
// management API whose mapping changes take effect at the next refresh;
// the API refusing bad mappings with 4xx; discovery keeping one app's
// scopes and claims to itself; and the console's form round trip, in
// German.
func TestCustomClaimsPerApp(t *testing.T) {
	clock := testclock.Running()
	intranetSecret := "intranet-secret-0123456789"
	intranetRedirect := "http://127.0.0.1:9/callback/intranet"
	srv := startServerWith(t, serverOptions{now: clock.Now, mutate: func(c *config.Config) {
		c.Clients = append(c.Clients, config.Client{ID: "intranet", Name: "Intranet", Secret: intranetSecret,
			RedirectURIs: []string{intranetRedirect}, GrantTypes: []string{"authorization_code", "refresh_token"},
			AccessTokenJWT: true, SkipConsent: true,
			CustomClaims: []config.ClaimMapping{
				{Claim: "department", Source: "app_metadata.department", Scope: "org"},
				{Claim: "intranet_roles", Source: "roles", Scope: "org", In: []string{"id_token", "access_token"}},
				{Claim: "login", Source: "username", Scope: "profile", In: []string{"userinfo"}},
				{Claim: "teams", Source: "groups", Scope: "org", In: []string{"userinfo", "access_token"}},
			}})
	}})
	ctx := context.Background()
	rw, _, _ := adminTokens(t, srv) // root (admin) and alice
	alice, err := srv.Main.Store.GetUserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Main.Store.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
		u.AppMetadata = map[string]string{"department": "R&D", "team": "blue"}
		u.Roles, u.Groups = []string{"editor"}, []string{"staff"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}

	// claimsOf are the claims of an ID token (verified), userinfo and a
	// JWT access token of one sign-in of alice.
	type issued struct{ id, userinfo, access map[string]any }
	signIn := func(app *testClient, scopes ...string) issued {
		t.Helper()
		app.oauth.Scopes = scopes
		tok := app.tokens("alice")
		var out issued
		rawID, _ := tok.Extra("id_token").(string)
		idt, err := app.verifier.Verify(ctx, rawID)
		if err != nil {
			t.Fatalf("verify ID token: %v", err)
		}
		if err := idt.Claims(&out.id); err != nil {
			t.Fatal(err)
		}
		status, _, ui := srv.userinfo(tok.AccessToken)
		if status != http.StatusOK {
			t.Fatalf("userinfo: %d %v", status, ui)
		}
		out.userinfo = ui
		if strings.Count(tok.AccessToken, ".") == 2 {
			if err := json.Unmarshal(jwtPayload(t, tok.AccessToken), &out.access); err != nil {
				t.Fatal(err)
			}
		}
		return out
	}
	has := func(where string, claims map[string]any, want map[string]any, absent ...string) {
		t.Helper()
		for k, v := range want {
			if got, _ := json.Marshal(claims[k]); string(got) != mustJSON(v) {
				t.Errorf("%s: %s = %s, want %s (all: %v)", where, k, got, mustJSON(v), claims)
			}
		}
		for _, k := range absent {
			if _, ok := claims[k]; ok {
				t.Errorf("%s: has %s: %v", where, k, claims)
			}
		}
	}

	// The app from config.toml, with its scope: each claim where it is
	// configured, and nowhere else.
	intranet := srv.rp("intranet", intranetSecret, intranetRedirect)
	got := signIn(intranet, oidc.ScopeOpenID, "profile", "org")
	has("ID token", got.id, map[string]any{"department": "R&D", "intranet_roles": []string{"editor"}, "preferred_username": "alice"}, "login", "teams")
	has("userinfo", got.userinfo, map[string]any{"department": "R&D", "login": "alice", "teams": []string{"staff"}}, "intranet_roles")
	has("JWT access token", got.access, map[string]any{"intranet_roles": []string{"editor"}, "teams": []string{"staff"}}, "department", "login")
	if got.access["sub"] != alice.ID || got.access["client_id"] != "intranet" {
		t.Errorf("JWT access token's own claims: %v", got.access)
	}
	tok := intranet.tokens("alice")
	status, _, intro := srv.postForm("/oauth/introspect", url.Values{"token": {tok.AccessToken}}, "intranet", intranetSecret)
	if status != http.StatusOK || intro["active"] != true {
		t.Fatalf("introspect: %d %v", status, intro)
	}
	has("introspection", intro, map[string]any{"intranet_roles": []string{"editor"}, "teams": []string{"staff"}}, "department", "login")

	// Without org: only the profile-scoped claim, in userinfo.
	got = signIn(intranet, oidc.ScopeOpenID, "profile")
	has("ID token without org", got.id, nil, "department", "intranet_roles", "teams", "login")
	has("userinfo without org", got.userinfo, map[string]any{"login": "alice"}, "department", "teams")
	has("JWT without org", got.access, nil, "intranet_roles", "teams")

	// An app without mappings gets none of them, and not the scope.
	plain := srv.createClient(account.NewClient{ID: "plain", AccessTokenJWT: true, SkipConsent: true})
	plain.oauth.Scopes = []string{oidc.ScopeOpenID, "profile", "org"}
	ptok := plain.tokens("alice")
	if sc, _ := ptok.Extra("scope").(string); slices.Contains(strings.Fields(sc), "org") {
		t.Errorf("an app without mappings was granted org: %q", sc)
	}
	got = signIn(plain, oidc.ScopeOpenID, "profile", "org")
	for where, claims := range map[string]map[string]any{"ID token": got.id, "userinfo": got.userinfo, "JWT": got.access} {
		has(where+" of an app without mappings", claims, nil, "department", "intranet_roles", "teams", "login")
	}

	// Discovery does not list one app's custom scopes and claims: they
	// are that app's alone (another app asking for org is not granted
	// it), and their names (a salary band, an HR level) are nothing for
	// every unauthenticated caller to read. OpenID Connect Discovery 1.0
	// §3 lets a provider leave supported scopes out; Keycloak lists no
	// client's dedicated mappers either.
	discovery := func() (scopes, claims []string) {
		t.Helper()
		var d struct {
			Scopes []string `json:"scopes_supported"`
			Claims []string `json:"claims_supported"`
		}
		p := bareGet(t, srv.URL+"/.well-known/openid-configuration")
		if err := json.Unmarshal([]byte(p.Body), &d); err != nil {
			t.Fatal(err)
		}
		return d.Scopes, d.Claims
	}
	if scopes, claims := discovery(); slices.Contains(scopes, "org") || !slices.Contains(scopes, "email") || slices.Contains(claims, "department") || !slices.Contains(claims, "email") {
		t.Errorf("discovery: scopes %v claims %v", scopes, claims)
	}

	// The management API refuses bad mappings, naming the field, and
	// stores nothing.
	tooMany := make([]string, account.MaxCustomClaims+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf(`{"claim":"c%d","source":"roles","scope":"crm"}`, i)
	}
	for _, c := range []struct{ claims, field string }{
		{`[{"claim":"iss","source":"roles","scope":"crm"}]`, "custom_claims[0].claim"},
		{`[{"claim":"team","source":"app_metadata.team","scope":"crm"},{"claim":"email_verified","source":"roles","scope":"crm"}]`, "custom_claims[1].claim"},
		{`[{"claim":"team","source":"password_hash","scope":"crm"}]`, "custom_claims[0].source"},
		{`[{"claim":"team","source":"roles","scope":"crm"},{"claim":"team","source":"groups","scope":"crm"}]`, "custom_claims[1].claim"},
		{`[` + strings.Join(tooMany, ",") + `]`, "custom_claims"},
	} {
		body := `{"id":"crm","redirect_uris":["http://127.0.0.1:9/callback/crm"],"custom_claims":` + c.claims + `}`
		if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json", body); status < 400 || status > 499 || out["field"] != c.field {
			t.Errorf("create with %s: %d %v, want 4xx naming %s", c.claims, status, out, c.field)
		}
	}
	if _, err := srv.Main.Store.GetClient(ctx, "crm"); err == nil {
		t.Fatal("a refused create stored the app")
	}

	// An app made through the API: its claim, consented to with its scope.
	status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
		`{"id":"crm","name":"CRM","redirect_uris":["http://127.0.0.1:9/callback/crm"],"custom_claims":[{"claim":"team","source":"app_metadata.team","scope":"crm"}]}`)
	created, _ := out["client"].(map[string]any)
	if status != http.StatusCreated || mustJSON(created["custom_claims"]) != `[{"claim":"team","in":["id_token","userinfo"],"scope":"crm","source":"app_metadata.team"}]` {
		t.Fatalf("create crm: %d %v", status, out)
	}
	crm := srv.rp("crm", out["secret"].(string), "http://127.0.0.1:9/callback/crm")
	crm.oauth.Scopes = []string{oidc.ScopeOpenID, "crm", oidc.ScopeOfflineAccess}
	b := newBrowser(t)
	verifier, challenge := pkce()
	p := crm.authorize(b, "s1", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if !isConsentPage(p) || !strings.Contains(p.Body, "See further details about you that your administrator set up for this app") {
		t.Fatalf("consent for the custom scope: %d\n%s", p.Status, truncateBody(p.Body))
	}
	res := landed(t, b.submit(p, "/consent", url.Values{"decision": {"allow"}}), crm.RedirectURI)
	ctok, err := crm.exchange(res.Code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	idClaims := func(tok *oauth2.Token) map[string]any {
		t.Helper()
		raw, _ := tok.Extra("id_token").(string)
		idt, err := crm.verifier.Verify(ctx, raw)
		if err != nil {
			t.Fatalf("verify: %v", err)
		}
		var m map[string]any
		_ = idt.Claims(&m)
		return m
	}
	has("crm ID token", idClaims(ctok), map[string]any{"team": "blue"})

	// The mapping changes through the API; the next refresh follows it.
	_, hdr, _ := apiCall(t, srv, http.MethodGet, "/api/v1/clients/crm", rw, "", "")
	status, _, out = apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/crm", rw, "application/json",
		`{"custom_claims":[{"claim":"squad","source":"app_metadata.team","scope":"crm"}]}`, http.Header{"If-Match": {hdr.Get("ETag")}})
	if status != http.StatusOK {
		t.Fatalf("patch: %d %v", status, out)
	}
	status, _, out = apiCallWith(t, srv, http.MethodPatch, "/api/v1/clients/crm", rw, "application/json",
		`{"custom_claims":[{"claim":"sub","source":"app_metadata.team","scope":"crm"}]}`, nil)
	if status != http.StatusBadRequest || out["field"] != "custom_claims[0].claim" {
		t.Errorf("patch to a protected claim: %d %v", status, out)
	}
	refreshed, err := crm.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: ctok.RefreshToken}).Token()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	has("crm ID token after the change", idClaims(refreshed), map[string]any{"squad": "blue"}, "team")
	if status, _, ui := srv.userinfo(refreshed.AccessToken); status != http.StatusOK || ui["squad"] != "blue" || ui["team"] != nil {
		t.Errorf("userinfo after the change: %d %v", status, ui)
	}
	evs, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{account.AuditClientUpdated}})
	if err != nil || len(evs) != 1 || evs[0].ClientID != "crm" || len(evs[0].Changes) != 1 || evs[0].Changes[0].Field != "custom_claims" {
		t.Errorf("audit of the change: %+v %v", evs, err)
	}

	// Nor those of an app the API made, however long one waits.
	clock.Add(6 * time.Second)
	if scopes, claims := discovery(); slices.Contains(scopes, "crm") || slices.Contains(claims, "squad") || slices.Contains(claims, "team") {
		t.Errorf("discovery after the API's changes: scopes %v claims %v", scopes, claims)
	}

	// The console's form, in German: the mappings as text, a save, and a
	// refusal naming the line.
	if _, err := srv.Main.Store.UpdateUser(ctx, mustUser(t, srv, "root").ID, func(u storage.User) (storage.User, error) {
		u.Locale = "de"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	admin := newBrowser(t)
	signInPortal(t, srv, admin, "root")
	page := admin.get(srv.URL + "/admin/apps/crm")
	area, ok := parsePage(t, page.Body).first("textarea", "name", "custom_claims")
	if !ok || area.rawText() != "squad app_metadata.team crm id_token,userinfo\n" {
		t.Fatalf("the form's custom claims: %q", area.rawText())
	}
	if _, ok := parsePage(t, page.Body).first("input", "name", "allowed_scopes", "value", "crm"); !ok {
		t.Error("the form does not offer the app's own scope among the allowed scopes")
	}
	saved := submitForm(t, admin, page, "/admin/apps/crm/edit", url.Values{"custom_claims": {"team app_metadata.team crm\r\n\r\nboss roles crm access_token\r\n"},
		"allowed_scopes": {"openid", "crm"}})
	if saved.Status != http.StatusOK {
		t.Fatalf("save: %d\n%s", saved.Status, truncateBody(saved.Body))
	}
	c, _ := srv.Main.Store.GetClient(ctx, "crm")
	if mustJSON(c.CustomClaims) != `[{"claim":"team","source":"app_metadata.team","scope":"crm","in":["id_token","userinfo"]},{"claim":"boss","source":"roles","scope":"crm","in":["access_token"]}]` ||
		!slices.Equal(c.AllowedScopes, []string{"openid", "crm"}) {
		t.Errorf("stored after the form: %+v %v", c.CustomClaims, c.AllowedScopes)
	}
	again := admin.get(srv.URL + "/admin/apps/crm")
	if area, _ := parsePage(t, again.Body).first("textarea", "name", "custom_claims"); area.rawText() != "team app_metadata.team crm id_token,userinfo\nboss roles crm access_token\n" {
		t.Errorf("the form after the save: %q", area.rawText())
	}
	for _, bad := range []struct{ text, want string }{
		{"team app_metadata.team crm\nsub username crm\n", "Eigene Claims, Zeile 2: Dieser Claim ist registriert"},
		{"team\n", "Eigene Claims, Zeile 1: Schreiben Sie einen eigenen Claim je Zeile"},
		{"team app_metadata.team crm\nx secret crm\n", "Eigene Claims, Zeile 2: Unbekannte Quelle"},
	} {
		refused := submitForm(t, admin, again, "/admin/apps/crm/edit", url.Values{"custom_claims": {bad.text}})
		doc := parsePage(t, refused.Body)
		e, _ := doc.byID("form-error")
		invalid, ok := doc.first("textarea", "aria-invalid", "true")
		if refused.Status != http.StatusBadRequest || !strings.HasPrefix(e.text(), bad.want) || !ok || invalid.attr("name") != "custom_claims" {
			t.Errorf("form with %q: %d %q", bad.text, refused.Status, e.text())
		}
	}
	if c2, _ := srv.Main.Store.GetClient(ctx, "crm"); mustJSON(c2.CustomClaims) != mustJSON(c.CustomClaims) {
		t.Errorf("a refused form changed the mappings: %+v", c2.CustomClaims)
	}

	// The claims parameter asks for a custom claim by name, without its
	// scope (OIDC Core §5.5): the person consents to the claim's scope,
	// and the claim goes where it was asked for and its mapping allows.
	bob := srv.createUser("bob", false)
	if _, err := srv.Main.Store.UpdateUser(ctx, bob.ID, func(u storage.User) (storage.User, error) {
		u.AppMetadata, u.Roles = map[string]string{"team": "red"}, []string{"lead"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	crm.oauth.Scopes = []string{oidc.ScopeOpenID}
	b = newBrowser(t)
	verifier, challenge = pkce()
	p = crm.authorize(b, "s2", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"),
		oauth2.SetAuthURLParam("claims", `{"id_token":{"team":null},"userinfo":{"boss":{"essential":true}}}`))
	p = b.submit(p, "/login", url.Values{"login": {"bob"}, "password": {testPassword}})
	if !isConsentPage(p) || !strings.Contains(p.Body, ">crm<") {
		t.Fatalf("consent for a custom claim asked for by name: %d\n%s", p.Status, truncateBody(p.Body))
	}
	res = landed(t, b.submit(p, "/consent", url.Values{"decision": {"allow"}}), crm.RedirectURI)
	btok, err := crm.exchange(res.Code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if sc, _ := btok.Extra("scope").(string); sc != "openid" {
		t.Errorf("scope %q: the claims parameter grants no scope", sc)
	}
	has("ID token with claims={id_token:{team}}", idClaims(btok), map[string]any{"team": "red"}, "boss")
	if status, _, ui := srv.userinfo(btok.AccessToken); status != http.StatusOK || ui["team"] != nil || ui["boss"] != nil {
		t.Errorf("userinfo: team was asked for in the ID token only, boss goes in access tokens only: %d %v", status, ui)
	}
}

// A bad mapping in config.toml stops serve, with the TOML key first.
func TestCustomClaimsConfigRefusedAtStartup(t *testing.T) {
	dir := t.TempDir()
	file := cliWriteFile(t, "bad.toml", `[[clients]]
id = "intranet"
secret = "intranet-secret-0123456789"
redirect_uris = ["https://intranet.example.com/cb"]

[[clients.custom_claims]]
claim = "department"
source = "app_metadata.department"
scope = "org"

[[clients.custom_claims]]
claim = "aud"
source = "roles"
scope = "org"
`)
	env := map[string]string{"KEYPORT_DATA_DIR": dir, "KEYPORT_LISTEN": "127.0.0.1:0"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errb := &testlog.Buffer{}
	var out bytes.Buffer
	code := run(ctx, []string{"serve", "--config", file}, strings.NewReader(""), &out, errb, func(k string) string { return env[k] })
	want := "clients[0].custom_claims[1].claim: This claim is registered or filled by Keyport itself"
	if ctx.Err() != nil || code != 1 || !strings.Contains(errb.String(), want) {
		t.Errorf("serve with a protected claim mapped: exit %d, ctx %v, want %q in\n%s", code, ctx.Err(), want, errb.String())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a refused config still wrote to the data dir: %v", entries)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func mustUser(t *testing.T, srv *testServer, username string) storage.User {
	t.Helper()
	u, err := srv.Main.Store.GetUserByLogin(context.Background(), username)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// An app's custom scope is its own at every grant that takes a scope from
// the app, as at /authorize (where zitadel keeps only the standard scopes
// and those IsScopeAllowed lets through): the device flow and an
// app-password exchange do not grant another app's custom scope, which a
// resource server may take as that app's permission. The app's own custom
// scope they grant, with its claims.
func TestCustomScopesOfAnotherAppRefusedAtEveryGrant(t *testing.T) {
	d := startDeviceServer(t)
	ctx := context.Background()
	alice := d.createUser("alice", false)
	if _, err := d.Main.Store.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
		u.AppMetadata = map[string]string{"band": "B3", "desk": "4.12"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	d.createClient(account.NewClient{ID: "payroll", Name: "Payroll", CustomClaims: []storage.ClaimMapping{{Claim: "salary_band", Source: "app_metadata.band", Scope: "payroll"}}})
	grants := []string{account.GrantDeviceCode, account.GrantTokenExchange}
	kiosk := d.createClient(account.NewClient{ID: "kiosk", Name: "Kiosk", GrantTypes: grants,
		CustomClaims: []storage.ClaimMapping{{Claim: "desk", Source: "app_metadata.desk", Scope: "office"}}})

	// The device flow.
	kiosk.oauth.Scopes = []string{"openid", "payroll", "office"}
	da := d.start(t, kiosk)
	b := newBrowser(t)
	p := openPage(t, d, b, da.VerificationURIComplete, "alice")
	if shown := postPage(b, p, "/device", url.Values{"user_code": {da.UserCode}}); !strings.Contains(shown.Body, "See further details about you that your administrator set up for this app") || strings.Contains(shown.Body, "payroll") {
		t.Errorf("the device page should describe office as the consent page does, and not offer payroll:\n%s", truncateBody(shown.Body))
	}
	decide(t, b, p, da.UserCode, "approve")
	tok, err := kiosk.oauth.DeviceAccessToken(ctx, da)
	if err != nil {
		t.Fatalf("device access token: %v", err)
	}
	if sc, _ := tok.Extra("scope").(string); sc != "openid office" {
		t.Errorf("device flow granted %q, want openid office (not payroll's scope)", sc)
	}
	if status, _, ui := d.userinfo(tok.AccessToken); status != http.StatusOK || ui["desk"] != "4.12" || ui["salary_band"] != nil {
		t.Errorf("userinfo of the device's token: %d %v", status, ui)
	}

	// An app password limited to the kiosk, exchanged for a token.
	password, _, err := d.Main.Accounts.Credentials.CreateAppPassword(ctx, alice, "kiosk", "kiosk")
	if err != nil {
		t.Fatal(err)
	}
	status, _, m := kiosk.tokenPost(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {"alice:" + password}, "subject_token_type": {"urn:keyport:params:oauth:token-type:app-password"},
		"scope": {"openid payroll office"}}, true)
	if status != http.StatusOK || m["scope"] != "openid office" {
		t.Errorf("app-password exchange: %d %v, want scope openid office (not payroll's scope)", status, m)
	}
}
