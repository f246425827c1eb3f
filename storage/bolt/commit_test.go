package bolt

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

// TestGroupCommitIsolatesFailures checks that a write that fails or panics
// in a shared transaction gets its own error back (a panic, too, comes back
// as an error: the caller may be a goroutine without a recover) and does not
// cost the writes that shared the transaction with it.
func TestGroupCommitIsolatesFailures(t *testing.T) {
	bdb, err := bbolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	if err := bdb.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	g := &groupCommit{db: newGuarded(bdb, "g.db", slog.New(slog.DiscardHandler)), maxGather: 0}
	boom := errors.New("boom")

	var wg sync.WaitGroup
	errs := make([]error, 40)
	panics := make([]any, 40)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { panics[i] = recover() }()
			errs[i] = g.do(func(tx *bbolt.Tx) error {
				switch i % 10 {
				case 3:
					return boom
				case 7:
					panic("bad write")
				}
				return tx.Bucket([]byte("b")).Put(fmt.Appendf(nil, "k%02d", i), []byte("v"))
			})
		}()
	}
	wg.Wait()

	for i := range errs {
		switch i % 10 {
		case 3:
			if !errors.Is(errs[i], boom) {
				t.Errorf("write %d: err = %v, want boom", i, errs[i])
			}
		case 7:
			if panics[i] != nil || errs[i] == nil || !strings.Contains(errs[i].Error(), "bad write") {
				t.Errorf("write %d: err = %v, panic = %v; want the panic back as an error", i, errs[i], panics[i])
			}
		default:
			if errs[i] != nil || panics[i] != nil {
				t.Errorf("write %d: err = %v, panic = %v", i, errs[i], panics[i])
			}
		}
	}
	err = bdb.View(func(tx *bbolt.Tx) error {
		for i := range errs {
			got := tx.Bucket([]byte("b")).Get(fmt.Appendf(nil, "k%02d", i))
			if ok := i%10 != 3 && i%10 != 7; ok != (got != nil) {
				t.Errorf("key %d stored = %v, want %v", i, got != nil, ok)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
