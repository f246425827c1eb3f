package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage/bolt"
)

// kidsByAlgorithm maps each algorithm to the kids of the server's JWKS.
func kidsByAlgorithm(t *testing.T, srv *testServer) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for kid, kind := range publishedKeys(t, srv) { // "kty/crv/alg/use"
		parts := strings.Split(kind, "/")
		out[parts[2]] = append(out[parts[2]], kid)
	}
	for _, kids := range out {
		slices.Sort(kids)
	}
	return out
}

// checkSigned checks, as a relying party that accepts only alg, that the
// ID token verifies through discovery and JWKS (go-oidc) and carries alg
// and kid in its header.
func checkSigned(t *testing.T, app *testClient, what, idToken, alg, kid string) *oidc.IDToken {
	t.Helper()
	idt, err := app.provider.Verifier(&oidc.Config{ClientID: app.ID, SupportedSigningAlgs: []string{alg}}).Verify(context.Background(), idToken)
	if err != nil {
		t.Fatalf("%s of %s: go-oidc accepting only %s: %v", what, app.ID, alg, err)
	}
	if gotAlg, gotKid := jwtHeader(t, idToken); gotAlg != alg || gotKid != kid {
		t.Errorf("%s of %s signed with %s by %q, want %s by %q", what, app.ID, gotAlg, gotKid, alg, kid)
	}
	return idt
}

// The per-app signing algorithm end to end, on a server whose [keys]
// algorithm is RS256: an app with id_token_signed_response_alg = ES256
// and one with EdDSA each get ID tokens (from the code and from a
// refresh), JWT access tokens and logout tokens of their algorithm, with
// the kid of that algorithm's key, which go-oidc verifies through JWKS;
// an app without one keeps RS256. Discovery and JWKS list the three
// algorithms. A rotation replaces the three keys and the tokens signed
// before still verify. The management API changes an app's algorithm,
// which its next token follows, and refuses an unknown one, changing
// nothing.
func TestPerAppSigningAlgorithms(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, _, _ := adminTokens(t, srv)
	ines := srv.createUser("ines", false)
	ctx := context.Background()
	apps := map[string]*testClient{}
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		n := account.NewClient{ID: "app-" + alg, SkipConsent: true, AccessTokenJWT: true}
		if alg != "RS256" {
			n.IDTokenSignedResponseAlg = alg
		}
		apps[alg] = srv.createClient(n)
	}
	// The keys were made when the apps were registered: JWKS and
	// discovery list them before any token.
	if got := discoveredAlgorithms(t, srv); !slices.Equal(got, []string{"RS256", "ES256", "EdDSA"}) {
		t.Errorf("discovery lists %v, want [RS256 ES256 EdDSA]", got)
	}
	kids := kidsByAlgorithm(t, srv)
	if len(kids) != 3 || len(kids["RS256"]) != 1 || len(kids["ES256"]) != 1 || len(kids["EdDSA"]) != 1 {
		t.Fatalf("JWKS kids by algorithm %v, want one of each", kids)
	}

	type issued struct{ id, refreshed string }
	before := map[string]issued{}
	for alg, app := range apps {
		// A relying party built now, from discovery.
		app = srv.rp(app.ID, app.Secret, app.RedirectURI)
		app.oauth.Scopes = append(app.oauth.Scopes, oidc.ScopeOfflineAccess)
		apps[alg] = app
		kid := kids[alg][0]
		tok := app.tokens("ines")
		idToken, _ := tok.Extra("id_token").(string)
		idt := checkSigned(t, app, "code ID token", idToken, alg, kid)
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Errorf("at_hash of the %s ID token: %v", alg, err)
		}
		if gotAlg, gotKid := jwtHeader(t, tok.AccessToken); gotAlg != alg || gotKid != kid {
			t.Errorf("JWT access token of %s signed with %s by %q, want %s by %q", app.ID, gotAlg, gotKid, alg, kid)
		}
		if status, _, body := srv.userinfo(tok.AccessToken); status != http.StatusOK || body["sub"] != ines.ID {
			t.Errorf("userinfo with the %s access token: %d %v", alg, status, body)
		}
		refreshed, err := app.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: tok.RefreshToken, Expiry: time.Now().Add(-time.Minute)}).Token()
		if err != nil {
			t.Fatalf("refresh %s: %v", app.ID, err)
		}
		refreshedID, _ := refreshed.Extra("id_token").(string)
		checkSigned(t, app, "refreshed ID token", refreshedID, alg, kid)
		before[alg] = issued{idToken, refreshedID}

		// The logout token goes with the app's ID tokens (Back-Channel
		// Logout 1.0 §2.4).
		logout, err := srv.Main.Provider.LogoutToken(ctx, app.ID, ines.ID, "")
		if err != nil {
			t.Fatal(err)
		}
		if gotAlg, gotKid := jwtHeader(t, logout); gotAlg != alg || gotKid != kid {
			t.Errorf("logout token for %s signed with %s by %q, want %s by %q", app.ID, gotAlg, gotKid, alg, kid)
		}
		if _, err := oidc.NewRemoteKeySet(ctx, srv.URL+"/keys").VerifySignature(ctx, logout); err != nil {
			t.Errorf("logout token for %s does not verify against JWKS: %v", app.ID, err)
		}
	}

	// Rotation replaces every algorithm's key; what was signed before
	// still verifies, for a relying party that starts now too.
	if err := srv.Main.Keys.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rotated := kidsByAlgorithm(t, srv)
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		if len(rotated[alg]) != 2 || !slices.Contains(rotated[alg], kids[alg][0]) {
			t.Fatalf("JWKS kids of %s after the rotation %v, want the old %s and a new one", alg, rotated[alg], kids[alg][0])
		}
		fresh := srv.rp(apps[alg].ID, apps[alg].Secret, apps[alg].RedirectURI)
		checkSigned(t, fresh, "code ID token from before the rotation", before[alg].id, alg, kids[alg][0])
		checkSigned(t, fresh, "refreshed ID token from before the rotation", before[alg].refreshed, alg, kids[alg][0])
		newKid := rotated[alg][0]
		if newKid == kids[alg][0] {
			newKid = rotated[alg][1]
		}
		idToken, _ := fresh.tokens("ines").Extra("id_token").(string)
		checkSigned(t, fresh, "ID token after the rotation", idToken, alg, newKid)
		kids[alg] = []string{newKid}
	}

	// The API: an unknown algorithm is refused and changes nothing; a
	// known one applies to the app's next token; "" is the default again.
	es := apps["ES256"]
	for _, bad := range []string{`"HS256"`, `"none"`, `"es256"`, `7`} {
		status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/"+es.ID, rw, "application/json", `{"id_token_signed_response_alg":`+bad+`}`)
		if status < 400 || status > 499 || (bad != `7` && body["field"] != "id_token_signed_response_alg") {
			t.Errorf("patch with %s: %d %v", bad, status, body)
		}
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/clients", rw, "application/json",
		`{"id":"bad-alg","redirect_uris":["https://app.example/cb"],"id_token_signed_response_alg":"PS256"}`); status != http.StatusBadRequest || body["field"] != "id_token_signed_response_alg" {
		t.Errorf("create with PS256: %d %v", status, body)
	}
	if _, err := srv.Main.Store.GetClient(ctx, "bad-alg"); err == nil {
		t.Error("the app with PS256 was stored")
	}
	if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/clients/"+es.ID, rw, "", ""); status != http.StatusOK || body["id_token_signed_response_alg"] != "ES256" {
		t.Fatalf("after the refused patches: %d %v", status, body)
	}
	for _, alg := range []string{"EdDSA", ""} {
		status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/"+es.ID, rw, "application/json", `{"id_token_signed_response_alg":"`+alg+`"}`)
		if status != http.StatusOK || body["id_token_signed_response_alg"] != alg {
			t.Fatalf("patch to %q: %d %v", alg, status, body)
		}
		want := alg
		if want == "" {
			want = "RS256"
		}
		idToken, _ := es.tokens("ines").Extra("id_token").(string)
		checkSigned(t, es, "ID token after the patch", idToken, want, kids[want][0])
	}

	// The console's app form shows the algorithm, keeps it when saved
	// unchanged, refuses an unknown one and changes it.
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	page := srv.URL + "/admin/apps/app-EdDSA"
	stored := func() string {
		c, err := srv.Main.Store.GetClient(ctx, "app-EdDSA")
		if err != nil {
			t.Fatal(err)
		}
		return c.IDTokenSignedResponseAlg
	}
	shown := b.get(page)
	if sel, ok := parsePage(t, shown.Body).byID("a-id_token_signed_response_alg"); !ok || len(sel.selectedOptions()) != 1 || sel.selectedOptions()[0].optionValue() != "EdDSA" {
		t.Fatalf("the form does not show EdDSA chosen: %d\n%s", shown.Status, shown.Body)
	}
	if saved := submitForm(t, b, shown, "/admin/apps/app-EdDSA/edit", nil); saved.Status != http.StatusOK || stored() != "EdDSA" {
		t.Errorf("saved unchanged: %d, stored %q", saved.Status, stored())
	}
	bad := submitForm(t, b, b.get(page), "/admin/apps/app-EdDSA/edit", url.Values{"id_token_signed_response_alg": {"HS256"}})
	if invalid, ok := parsePage(t, bad.Body).first("select", "aria-invalid", "true"); bad.Status != http.StatusBadRequest || !ok || invalid.attr("name") != "id_token_signed_response_alg" || stored() != "EdDSA" {
		t.Errorf("HS256 in the form: %d, stored %q\n%s", bad.Status, stored(), truncateBody(bad.Body))
	}
	if saved := submitForm(t, b, b.get(page), "/admin/apps/app-EdDSA/edit", url.Values{"id_token_signed_response_alg": {"ES256"}}); saved.Status != http.StatusOK || stored() != "ES256" {
		t.Errorf("ES256 in the form: %d, stored %q", saved.Status, stored())
	}
}

// The command line sets an app's signing algorithm, with the API's rules:
// an unknown one is refused and stores nothing.
func TestCLIClientSigningAlgorithm(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	cliMust(t, env, "", "client", "create", "--id", "web", "--redirect-uri", "https://web.example.com/cb", "--id-token-signed-response-alg", "ES256")
	cliFail(t, env, "", 1, "id_token_signed_response_alg", "client", "create", "--id", "bad", "--redirect-uri", "https://web.example.com/cb", "--id-token-signed-response-alg", "HS256")
	cliFail(t, env, "", 1, "id_token_signed_response_alg", "client", "update", "--id", "web", "--id-token-signed-response-alg", "RS512")
	stored := func(id string) (string, error) {
		db, err := bolt.Open(filepath.Join(dir, "keyport.db"), bolt.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		c, err := db.GetClient(context.Background(), id)
		return c.IDTokenSignedResponseAlg, err
	}
	if alg, err := stored("web"); err != nil || alg != "ES256" {
		t.Errorf("stored algorithm %q, %v; want ES256", alg, err)
	}
	if _, err := stored("bad"); err == nil {
		t.Error("the refused app was stored")
	}
	cliMust(t, env, "", "client", "update", "--id", "web", "--id-token-signed-response-alg", "")
	if alg, err := stored("web"); err != nil || alg != "" {
		t.Errorf("stored algorithm %q, %v after clearing it", alg, err)
	}
}

// Signed userinfo (OpenID Connect Core 1.0 §5.3.2): an app that registered
// userinfo_signed_response_alg gets application/jwt from /userinfo, signed
// with that algorithm's key, whose claims are the JSON answer's plus iss
// and aud (the app); it verifies through JWKS. An app without it gets
// JSON. Discovery lists the algorithms for userinfo as for ID tokens. An
// unknown algorithm is refused by the API and changes nothing.
func TestSignedUserinfo(t *testing.T) {
	srv := startServer(t, "", nil)
	rw, _, _ := adminTokens(t, srv)
	ulla := srv.createUser("ulla", false)
	ctx := context.Background()
	signed := srv.createClient(account.NewClient{ID: "signed", SkipConsent: true, IDTokenSignedResponseAlg: "ES256", UserinfoSignedResponseAlg: "EdDSA"})
	plain := srv.createClient(account.NewClient{ID: "plain", SkipConsent: true})
	kids := kidsByAlgorithm(t, srv)
	if len(kids["EdDSA"]) != 1 {
		t.Fatalf("JWKS kids %v: no EdDSA key for the signed userinfo", kids)
	}
	resp, err := http.Get(srv.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Userinfo []string `json:"userinfo_signing_alg_values_supported"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !slices.Equal(doc.Userinfo, []string{"RS256", "ES256", "EdDSA"}) {
		t.Errorf("userinfo_signing_alg_values_supported %v", doc.Userinfo)
	}

	userinfo := func(accessToken string) (string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/userinfo", nil)
		req.Header.Set("Authorization", "Bearer "+accessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("userinfo: %d %q %s", resp.StatusCode, resp.Header.Get("Cache-Control"), body)
		}
		return resp.Header.Get("Content-Type"), string(body)
	}
	tok := signed.tokens("ulla")
	ctype, jwt := userinfo(tok.AccessToken)
	if ctype != "application/jwt" {
		t.Fatalf("Content-Type %q, want application/jwt: %s", ctype, jwt)
	}
	if alg, kid := jwtHeader(t, jwt); alg != "EdDSA" || kid != kids["EdDSA"][0] {
		t.Errorf("signed userinfo with %s by %q, want EdDSA by %q", alg, kid, kids["EdDSA"][0])
	}
	payload, err := oidc.NewRemoteKeySet(ctx, srv.URL+"/keys").VerifySignature(ctx, jwt)
	if err != nil {
		t.Fatalf("signed userinfo does not verify against JWKS: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims["iss"] != srv.URL || claims["aud"] != "signed" || claims["sub"] != ulla.ID || claims["email"] != "ulla@example.com" {
		t.Errorf("signed userinfo claims %v", claims)
	}
	// The app's ID tokens keep their own algorithm.
	idToken, _ := tok.Extra("id_token").(string)
	checkSigned(t, signed, "ID token", idToken, "ES256", kids["ES256"][0])

	ctype, body := userinfo(plain.tokens("ulla").AccessToken)
	var plainClaims map[string]any
	if !strings.HasPrefix(ctype, "application/json") || json.Unmarshal([]byte(body), &plainClaims) != nil || plainClaims["sub"] != ulla.ID || plainClaims["iss"] != nil {
		t.Errorf("plain userinfo: %q %s", ctype, body)
	}

	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/signed", rw, "application/json", `{"userinfo_signed_response_alg":"HS256"}`); status != http.StatusBadRequest || body["field"] != "userinfo_signed_response_alg" {
		t.Errorf("patch to HS256: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/clients/signed", rw, "application/json", `{"userinfo_signed_response_alg":""}`); status != http.StatusOK || body["userinfo_signed_response_alg"] != "" {
		t.Fatalf("patch to plain JSON: %d %v", status, body)
	}
	if ctype, body := userinfo(tok.AccessToken); !strings.HasPrefix(ctype, "application/json") {
		t.Errorf("after going back to JSON: %q %s", ctype, body)
	}
}
