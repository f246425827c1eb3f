package bolt

import (
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Closing a file known to be damaged returns even while bbolt's writer
// lock is held, as a transaction whose rollback panicked on the damage
// leaves it: shutting down must not hang on it. A healthy file's Close
// still waits for its writer, as bbolt's does.
func TestCloseDamagedDoesNotWaitForeverOnItsLocks(t *testing.T) {
	bdb, err := bbolt.Open(filepath.Join(t.TempDir(), "d.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	g := newGuarded(bdb, "d.db", slog.New(slog.DiscardHandler))
	g.opening.Store(false)

	// A writer that never lets go stands for the transaction that
	// panicked while rolling back.
	holding, release := make(chan struct{}), make(chan struct{})
	go func() {
		_ = bdb.Update(func(*bbolt.Tx) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	defer close(release)
	g.setDamaged("test: pages out of range")

	closed := make(chan error, 1)
	go func() { closed <- g.Close() }()
	select {
	case err := <-closed:
		if err == nil {
			t.Error("closing a damaged file whose lock is still held reported success")
		}
	case <-time.After(time.Minute):
		t.Fatal("Close of a damaged file waited for a lock no one will release")
	}
}
