package bolt

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// TestBackgroundCheckWithWrites: a check that outlasts check_timeout goes
// on in its read transaction while the server writes. It must find a
// healthy file healthy (bbolt's check, run there, read the live freelist:
// pages freed by later commits looked "reachable freed", and the file was
// marked damaged) and must not race the writers (under -race, bbolt's check
// raced the freelist's maps).
func TestBackgroundCheckWithWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyport.db")
	populate(t, path, 600)
	started, release := make(chan struct{}), make(chan struct{})
	checkStarting = func() { close(started); <-release }
	t.Cleanup(func() { checkStarting = nil })
	var mu sync.Mutex
	var logs strings.Builder
	d, err := Open(path, Options{CheckTimeout: time.Millisecond, Logger: slog.New(slog.NewTextHandler(lockedBuilder{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.db.db.NoSync = true
	<-started

	ctx := context.Background()
	write := func(i int) {
		id := fmt.Sprintf("u%04d", 1+i%599)
		_, err := d.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
			u.LoginsCount++
			u.Name = strings.Repeat("x", i%300) // values of changing size move between pages
			return u, nil
		})
		if err != nil && !strings.Contains(err.Error(), "not found") {
			t.Errorf("write %d: %v", i, err)
		}
	}
	// Writes before the check reads anything, and all the while it reads.
	for i := range 300 {
		write(i)
	}
	var stop atomic.Bool
	var writes sync.WaitGroup
	writes.Go(func() {
		for i := 300; !stop.Load(); i++ {
			write(i)
		}
	})
	close(release)
	checked := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), `msg="checked database"`)
	}
	for deadline := time.Now().Add(time.Minute); !checked() && d.Health() == nil; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the check did not finish")
		}
	}
	stop.Store(true)
	writes.Wait()
	if err := d.Health(); err != nil {
		t.Errorf("a healthy file, written during the check: %v (%v)", err, d.db.Damaged())
	}
	// And it is healthy indeed.
	if err := d.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt's check, no writers: %v", err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// TestCheckHealthyShapes: the check passes healthy files of every shape
// bbolt writes: nested and inline buckets, buckets in buckets, values that
// overflow pages, deep and wide trees, much deletion (a long freelist),
// and page sizes other than 4 KiB.
func TestCheckHealthyShapes(t *testing.T) {
	for _, pageSize := range []int{1024, 4096, 16384, 65536} {
		path := filepath.Join(t.TempDir(), fmt.Sprintf("p%d.db", pageSize))
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{PageSize: pageSize, NoSync: true})
		if err != nil {
			t.Fatal(err)
		}
		big := bytes.Repeat([]byte{7}, 1<<20+123)
		for round := range 3 {
			err = db.Update(func(tx *bbolt.Tx) error {
				top, err := tx.CreateBucketIfNotExists([]byte("top"))
				if err != nil {
					return err
				}
				for i := range 300 {
					nb, err := top.CreateBucketIfNotExists(fmt.Appendf(nil, "nested%03d", i))
					if err != nil {
						return err
					}
					n := 2 // stays inline
					if i%10 == 0 {
						n = 400
						deeper, err := nb.CreateBucketIfNotExists([]byte("deeper"))
						if err != nil {
							return err
						}
						if _, err := deeper.CreateBucketIfNotExists([]byte("inline")); err != nil {
							return err
						}
					}
					for j := range n {
						if err := nb.Put(fmt.Appendf(nil, "%d-%05d", round, j), fmt.Appendf(nil, "value %d", j)); err != nil {
							return err
						}
					}
				}
				bb, err := tx.CreateBucketIfNotExists([]byte("big"))
				if err != nil {
					return err
				}
				if err := bb.Put(fmt.Appendf(nil, "big%d", round), big); err != nil {
					return err
				}
				flat, err := tx.CreateBucketIfNotExists([]byte("flat"))
				if err != nil {
					return err
				}
				for j := range 20000 {
					if err := flat.Put(fmt.Appendf(nil, "%d-%07d", round, j), []byte("yyyyyyyyyyyyyyyyyyyyyyyyyyyyyy")); err != nil {
						return err
					}
				}
				_, err = tx.CreateBucketIfNotExists([]byte("empty"))
				return err
			})
			if err == nil {
				err = db.Update(func(tx *bbolt.Tx) error {
					c := tx.Bucket([]byte("flat")).Cursor()
					i := 0
					for k, _ := c.First(); k != nil; k, _ = c.Next() {
						if i%3 != 0 {
							if err := c.Delete(); err != nil {
								return err
							}
						}
						i++
					}
					for i := 0; i < 300; i += 4 {
						if err := tx.Bucket([]byte("top")).DeleteBucket(fmt.Appendf(nil, "nested%03d", i)); err != nil && round == 0 {
							return err
						}
					}
					return tx.Bucket([]byte("big")).Delete(fmt.Appendf(nil, "big%d", round-1))
				})
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		db.Close()
		reason, err := checkFile(context.Background(), path, time.Second)
		if reason != "" || err != nil {
			t.Errorf("page size %d: a healthy file fails the check: %q %v", pageSize, reason, err)
		}
		if fi, err := os.Stat(path); err == nil {
			t.Logf("page size %d: %.1f MiB checked", pageSize, float64(fi.Size())/(1<<20))
		}
	}
}
