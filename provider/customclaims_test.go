package provider

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/storage"
)

// Custom claims cost no store read of their own: the ID token, the JWT
// access token and userinfo of an app with mappings read the user and the
// app as often as those of an app without, once per request (the memo),
// and an app without mappings gets no custom claim.
func TestCustomClaimsReadNothingMore(t *testing.T) {
	db := openTestDB(t)
	bg := context.Background()
	now := time.Now()
	if err := db.CreateUser(bg, storage.User{ID: "u1", Username: "alice", Email: "alice@example.com", CreatedAt: now, UpdatedAt: now,
		AppMetadata: map[string]string{"department": "R&D"}, Roles: []string{"editor"}}); err != nil {
		t.Fatal(err)
	}
	mappings := []storage.ClaimMapping{
		{Claim: "department", Source: "app_metadata.department", Scope: "org", In: []string{"id_token", "userinfo"}},
		{Claim: "app_roles", Source: "roles", Scope: "org", In: []string{"access_token"}},
	}
	for _, c := range []storage.Client{{ID: "mapped", CustomClaims: mappings}, {ID: "plain"}} {
		c.RedirectURIs, c.CreatedAt = []string{"https://app.example.com/cb"}, now
		if err := db.CreateClient(bg, c); err != nil {
			t.Fatal(err)
		}
	}
	cs := &countingStore{DB: db}
	s := &opStorage{store: cs, issuer: "https://id.example.com", now: time.Now}
	scopes := []string{oidc.ScopeOpenID, "org"}

	for _, app := range []string{"mapped", "plain"} {
		cs.users.Store(0)
		cs.clients.Store(0)
		// A refresh: the app is authenticated, the ID token's claims are
		// filled, the JWT access token's private claims asked for.
		ctx := withReadMemo(bg)
		req := &refreshRequest{rt: storage.RefreshToken{UserID: "u1", ClientID: app, Scopes: scopes}, scopes: scopes}
		if _, err := s.getClient(ctx, app); err != nil {
			t.Fatal(err)
		}
		info := &oidc.UserInfo{}
		if err := s.SetUserinfoFromScopes(ctx, info, "u1", app, scopes); err != nil {
			t.Fatal(err)
		}
		if err := s.SetUserinfoFromRequest(ctx, info, req, scopes); err != nil {
			t.Fatal(err)
		}
		private, err := s.GetPrivateClaimsFromRequest(ctx, req, scopes)
		if err != nil {
			t.Fatal(err)
		}
		if u, c := cs.users.Load(), cs.clients.Load(); u != 1 || c != 1 {
			t.Errorf("%s: a refresh read the user %d times and the app %d times, want 1 and 1", app, u, c)
		}
		wantID, wantAT := app == "mapped", app == "mapped"
		if got := info.Claims["department"] == "R&D"; got != wantID {
			t.Errorf("%s: ID token claims %v", app, info.Claims)
		}
		if _, got := private["app_roles"]; got != wantAT {
			t.Errorf("%s: access token claims %v", app, private)
		}
		if _, leaked := info.Claims["app_roles"]; leaked {
			t.Errorf("%s: an access-token-only claim in the ID token", app)
		}

		// Userinfo: the token and its user in one read; the app once,
		// for the claims and for signed userinfo alike.
		at := storage.AccessToken{ID: "at-" + app, Subject: "u1", UserID: "u1", ClientID: app, Audience: []string{app}, Scopes: scopes, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := db.CreateTokens(bg, at, nil); err != nil {
			t.Fatal(err)
		}
		cs.users.Store(0)
		cs.clients.Store(0)
		ctx = withReadMemo(bg)
		ui := &oidc.UserInfo{}
		if err := s.SetUserinfoFromToken(ctx, ui, at.ID, "u1", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := s.getClient(ctx, app); err != nil { // signUserinfo
			t.Fatal(err)
		}
		if u, c := cs.users.Load(), cs.clients.Load(); u != 0 || c != 1 {
			t.Errorf("%s: userinfo read the user %d more times and the app %d times, want 0 and 1", app, u, c)
		}
		if got := ui.Claims["department"] == "R&D"; got != wantID {
			t.Errorf("%s: userinfo claims %v", app, ui.Claims)
		}
	}
}

// Custom claims asked for by name add at most maxCustomClaimBytes to a
// stored request, however many long ones an app maps.
func TestBoundCustomClaims(t *testing.T) {
	c := storage.Client{ID: "app"}
	var names []string
	for i := range 32 {
		n := fmt.Sprintf("c%02d%s", i, strings.Repeat("x", 125))
		names = append(names, n)
		c.CustomClaims = append(c.CustomClaims, storage.ClaimMapping{Claim: n, Source: "roles", Scope: fmt.Sprintf("s%02d%s", i, strings.Repeat("y", 61)), In: []string{"id_token", "userinfo"}})
	}
	id, ui, scopes := boundCustomClaims(c, names, names)
	cost := 0
	for _, s := range slices.Concat(id, ui, scopes) {
		cost += len(s) + 3
	}
	if cost > maxCustomClaimBytes || len(id) == 0 || len(scopes) != len(id) {
		t.Errorf("kept %d + %d claims and %d scopes, %d bytes (bound %d)", len(id), len(ui), len(scopes), cost, maxCustomClaimBytes)
	}
	short := []string{"team"}
	c.CustomClaims = append(c.CustomClaims, storage.ClaimMapping{Claim: "team", Source: "roles", Scope: "crm", In: []string{"id_token"}})
	if id, ui, scopes := boundCustomClaims(c, short, short); !slices.Equal(id, short) || !slices.Equal(ui, short) || !slices.Equal(scopes, []string{"crm"}) {
		t.Errorf("a short claim in both members: %v %v %v", id, ui, scopes)
	}
}

// An exchanged token (RFC 8693: delegation, or an app password) carries
// the same custom claims in its JWT as introspection reports for it: the
// claims of its app (the requesting app) by its scopes, as for every
// other grant. A resource server that verifies the JWT and one that
// introspects the token see one token.
func TestCustomClaimsOfExchangedTokensAgree(t *testing.T) {
	db := openTestDB(t)
	bg := context.Background()
	now := time.Now()
	if err := db.CreateUser(bg, storage.User{ID: "u1", Username: "alice", CreatedAt: now, UpdatedAt: now, Roles: []string{"editor"}}); err != nil {
		t.Fatal(err)
	}
	app := storage.Client{ID: "mapped", RedirectURIs: []string{"https://app.example.com/cb"}, CreatedAt: now,
		CustomClaims: []storage.ClaimMapping{{Claim: "app_roles", Source: "roles", Scope: "org", In: []string{"access_token"}}}}
	if err := db.CreateClient(bg, app); err != nil {
		t.Fatal(err)
	}
	s := &opStorage{store: db, issuer: "https://id.example.com", now: time.Now}
	if err := db.CreateCredential(bg, storage.Credential{ID: "apw", UserID: "u1", Kind: storage.KindAppPassword, Hash: "h-apw", ClientID: "mapped", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	for name, tok := range map[string]storage.AccessToken{
		"delegated":    {ID: "at-delegated", Actors: []string{"mapped"}, Audience: []string{"orders-api"}},
		"app password": {ID: "at-app-password", AppPassword: true, CredentialID: "apw", Audience: []string{"mapped"}},
	} {
		tok.ClientID, tok.UserID, tok.Subject, tok.Scopes = "mapped", "u1", "u1", []string{oidc.ScopeOpenID, "org"}
		tok.CreatedAt, tok.ExpiresAt = now, now.Add(time.Hour)
		if err := db.CreateTokens(bg, tok, nil); err != nil {
			t.Fatal(err)
		}
		jwt, err := s.GetPrivateClaimsFromRequest(withReadMemo(bg), exchangeRequest{t: tok, app: app}, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp := &oidc.IntrospectionResponse{}
		if err := s.SetIntrospectionFromToken(withReadMemo(bg), resp, tok.ID, "u1", ""); err != nil {
			t.Fatal(err)
		}
		// scope is the token's own (RFC 9068 §2.2.3), which introspection
		// has in its own field.
		if jwt["scope"] != "openid org" {
			t.Errorf("%s: the JWT's scope %v, want \"openid org\"", name, jwt["scope"])
		}
		delete(jwt, "scope")
		if fmt.Sprint(jwt) != fmt.Sprint(resp.Claims) || fmt.Sprint(jwt["app_roles"]) != "[editor]" {
			t.Errorf("%s: the JWT's custom claims %v, introspection's %v; want app_roles [editor] in both", name, jwt, resp.Claims)
		}
	}
	// An app without mappings: no read for them, and only the scope.
	cs := &countingStore{DB: db}
	counted := &opStorage{store: cs, issuer: s.issuer, now: time.Now}
	plain := exchangeRequest{t: storage.AccessToken{ClientID: "plain", UserID: "u1", Subject: "u1", Scopes: []string{oidc.ScopeOpenID, "org"}}, app: storage.Client{ID: "plain"}}
	if jwt, err := counted.GetPrivateClaimsFromRequest(withReadMemo(bg), plain, nil); err != nil || len(jwt) != 1 || jwt["scope"] == nil || cs.users.Load() != 0 || cs.clients.Load() != 0 {
		t.Errorf("an app without mappings: claims %v (%v), %d user and %d app reads, want none", jwt, err, cs.users.Load(), cs.clients.Load())
	}
}
