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
// Split in half (bbolt's default), they were about half used.
func TestAppendBucketsFillTheirPages(t *testing.T) {
	ctx := t.Context()
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{})
	now := time.Now()
	for range 1500 {
		a := storage.AccessToken{ID: account.NewOrderedID(), ClientID: "app", Subject: "app", Scopes: []string{"api"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := d.CreateTokens(ctx, a, nil); err != nil {
			t.Fatal(err)
		}
	}
	err := d.db.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bAccessTokens, bExpiry} {
			st := tx.Bucket(name).Stats()
			if st.LeafPageN < 10 {
				t.Fatalf("%s: %d leaf pages, too few to tell", name, st.LeafPageN)
			}
			used := float64(st.LeafInuse) / float64(st.LeafPageN*d.db.db.Info().PageSize)
			if used < 0.8 {
				t.Errorf("%s: leaves %.0f%% used over %d pages, want at least 80%%", name, 100*used, st.LeafPageN)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
