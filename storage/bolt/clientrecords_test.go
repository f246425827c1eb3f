package bolt

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// A file written before the client_records index (schema 7) gets it built
// from the tokens, grants and app passwords it holds, so deleting an app
// afterwards removes what was issued before the upgrade too.
func TestMigrateBuildsClientRecords(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyport.db")
	now := time.Now().UTC().Truncate(time.Second)
	d := openTest(t, path, Options{})
	if err := d.CreateClient(ctx, storage.Client{ID: "app", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateUser(ctx, storage.User{ID: "u1", Username: "alice", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	r := storage.RefreshToken{Hash: "h1", ID: "r1", FamilyID: "f1", ClientID: "app", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}
	if err := d.CreateTokens(ctx, storage.AccessToken{ID: "a1", ClientID: "app", UserID: "u1", Subject: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, &r); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateTokens(ctx, storage.AccessToken{ID: "m1", ClientID: "app", Subject: "app", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.PutGrant(ctx, storage.Grant{UserID: "u1", ClientID: "app", CreatedAt: now}, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateCredential(ctx, storage.Credential{ID: "p1", UserID: "u1", Kind: storage.KindAppPassword, Hash: "hp", ClientID: "app", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	// Back to schema 7: no index.
	err := d.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bClientRecords); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kSchemaVersion, []byte("7"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = openTest(t, path, Options{}) // its cleanup checks the index against the records
	if err := d.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{
		"access token":  errOf(d.GetAccessToken(ctx, "a1")),
		"machine token": errOf(d.GetAccessToken(ctx, "m1")),
		"refresh token": errOf(d.GetRefreshTokenByID(ctx, "r1")),
		"grant":         errOf(d.GetGrant(ctx, "u1", "app")),
		"app password":  errOf(d.GetCredentialByHash(ctx, "hp")),
	} {
		if !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("%s of the app stored before the upgrade: %v after the app's deletion", what, err)
		}
	}
}

func errOf[T any](_ T, err error) error { return err }
