package provider

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// Custom claims cost no store read of their own: the ID token, the JWT
// access token and userinfo of an app with mappings read the user and the
// app as often as those of an app without, once per request (the memo),
// and an app without mappings gets no custom claim.
func TestCustomClaimsReadNothingMore(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
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
		at := storage.AccessToken{ID: "at-" + app, Subject: "u1", UserID: "u1", ClientID: app, Scopes: scopes, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
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
