package bolt

import (
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// Buckets whose keys grow with time keep their pages nearly full: a page
// that overflows at the end is split at appendFill, not in half, so the
// records written one after another leave the leaves about 90% used.
// Split in half (bbolt's default), they were about half used (40% for
// refresh links).
func TestAppendBucketsFillTheirPages(t *testing.T) {
	ctx := t.Context()
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{})
	now := time.Now()
	for range 1500 {
		at := time.Now()
		a := storage.AccessToken{ID: account.NewOrderedID(), ClientID: "app", Subject: "app", Scopes: []string{"api"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		// A link keyed as the provider keys it: a time prefix, then the hash.
		id := account.NewOrderedID()
		r := storage.RefreshToken{Hash: id[:10] + account.HashSecret(account.NewSecret()), ID: id, FamilyID: account.NewOrderedID(), ClientID: "app",
			UserID: "u1", CreatedAt: at, ExpiresAt: at.Add(24 * time.Hour), IdleExpiresAt: at.Add(time.Hour)}
		if err := d.CreateTokens(ctx, a, &r); err != nil {
			t.Fatal(err)
		}
		e := storage.AuditEvent{ID: account.NewOrderedID(), Time: at, Type: "client.updated", ActorKind: "system"}
		if err := d.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	err := d.db.View(func(tx *bbolt.Tx) error {
		for _, b := range []struct {
			name []byte
			want float64
		}{
			{bAccessTokens, 0.8}, {bExpiry, 0.8}, {bRefreshByID, 0.8}, {bAudit, 0.8},
			// Links issued in the same step of the time prefix sort by
			// their hashes, so some go into the middle of the last pages:
			// about two thirds used, 40% when split in half.
			{bRefreshTokens, 0.6},
		} {
			st := tx.Bucket(b.name).Stats()
			if st.LeafPageN < 10 {
				t.Fatalf("%s: %d leaf pages, too few to tell", b.name, st.LeafPageN)
			}
			used := float64(st.LeafInuse) / float64(st.LeafPageN*d.db.db.Info().PageSize)
			if used < b.want {
				t.Errorf("%s: leaves %.0f%% used over %d pages, want at least %.0f%%", b.name, 100*used, st.LeafPageN, 100*b.want)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
