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
