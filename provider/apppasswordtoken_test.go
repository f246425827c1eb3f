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

// An app password's token issued before tokens named their app password
// (storage.AccessToken.CredentialID) cannot show that its app password is
// still live, so it ends: introspection reports it inactive and userinfo
// refuses it. One that names a live app password works; once that app
// password is revoked, it ends too.
func TestAppPasswordTokenWithoutCredentialEnds(t *testing.T) {
	db := openTestDB(t)
	ctx := context.Background()
	now := time.Now()
	seedAliceAndApp(t, db, now)
	if err := db.CreateCredential(ctx, storage.Credential{ID: "apw", UserID: "u1", Kind: storage.KindAppPassword, Hash: "h-apw", ClientID: "app", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	s := &opStorage{store: db, issuer: "https://id.example.com", now: time.Now}
	active := func(id string) bool {
		resp := &oidc.IntrospectionResponse{}
		return s.SetIntrospectionFromToken(withReadMemo(ctx), resp, id, "u1", "") == nil
	}
	for _, tok := range []storage.AccessToken{
		{ID: "legacy", AppPassword: true},
		{ID: "named", AppPassword: true, CredentialID: "apw"},
	} {
		tok.ClientID, tok.UserID, tok.Subject, tok.Audience = "app", "u1", "u1", []string{"app"}
		tok.CreatedAt, tok.ExpiresAt = now, now.Add(time.Hour)
		if err := db.CreateTokens(ctx, tok, nil); err != nil {
			t.Fatal(err)
		}
	}
	if active("legacy") {
		t.Error("an app password's token that names no app password is active")
	}
	if !active("named") {
		t.Fatal("an app password's token naming its live app password is inactive")
	}
	if err := db.DeleteCredential(ctx, "u1", "apw"); err != nil {
		t.Fatal(err)
	}
	if active("named") {
		t.Error("an app password's token is active after its app password was deleted")
	}
}

// openTestDB opens a bbolt store in the test's directory, closed when the
// test ends.
func openTestDB(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keyport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// seedAliceAndApp stores user u1 (alice) and app "app", created at now.
func seedAliceAndApp(t *testing.T, db *bolt.DB, now time.Time) {
	t.Helper()
	ctx := context.Background()
	if err := db.CreateUser(ctx, storage.User{ID: "u1", Username: "alice", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, storage.Client{ID: "app", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
}
