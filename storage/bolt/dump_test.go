package bolt

import (
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/storagetest"
)

// TestCopyBoltToBolt copies a bbolt store into another one; the loaded
// file's indexes are checked right after the load. (The copies between
// backends run in storage/postgres, beside the server they need.)
func TestCopyBoltToBolt(t *testing.T) {
	open := func(t *testing.T, now func() time.Time) storage.Store {
		return openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Now: now})
	}
	storagetest.RunCopy(t, open, open, func(t *testing.T, s storage.Store) {
		checkLoaded(t, s.(*DB))
	})
}

// checkLoaded runs bbolt's check and the index check on a loaded store.
func checkLoaded(t *testing.T, d *DB) {
	t.Helper()
	err := d.db.View(func(tx *bbolt.Tx) error {
		return d.flow.View(func(ftx *bbolt.Tx) error {
			for err := range tx.Check() {
				t.Errorf("bbolt check after load: %v", err)
			}
			for _, err := range checkIndexes(tx, ftx) {
				t.Errorf("index check after load: %v", err)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestEveryBucketIsCopiedOrRebuilt: a bucket added to the schema must be
// dumped or rebuilt by Load, or keyport migrate would lose it silently.
func TestEveryBucketIsCopiedOrRebuilt(t *testing.T) {
	seen := map[string]string{}
	note := func(b []byte, how string) {
		if prev, ok := seen[string(b)]; ok {
			t.Errorf("bucket %s is both %s and %s", b, prev, how)
		}
		seen[string(b)] = how
	}
	for _, b := range dumpBuckets {
		note(b.bucket, "dumped")
	}
	for _, b := range dumpedElsewhere {
		note(b, "dumped")
	}
	for _, b := range rebuiltBuckets {
		note(b, "rebuilt")
	}
	for _, b := range allDataBuckets {
		if seen[string(b)] == "" {
			t.Errorf("bucket %s is neither dumped (dump.go) nor rebuilt by Load (load.go's rebuiltBuckets)", b)
		}
	}
	if len(seen) != len(allDataBuckets) {
		t.Errorf("dump.go and load.go name %d buckets, the schema has %d", len(seen), len(allDataBuckets))
	}
}
