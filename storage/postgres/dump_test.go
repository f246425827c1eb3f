package postgres

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/storage/storagetest"
)

func openTestStore(t *testing.T, now func() time.Time) storage.Store { return openTest(t, now) }

func openBolt(t *testing.T, now func() time.Time) storage.Store {
	d, err := bolt.Open(filepath.Join(t.TempDir(), "keyport.db"), bolt.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestCopyBoltToPostgres(t *testing.T) { storagetest.RunCopy(t, openBolt, openTestStore, nil) }

func TestCopyPostgresToBolt(t *testing.T) { storagetest.RunCopy(t, openTestStore, openBolt, nil) }

func TestCopyPostgresToPostgres(t *testing.T) {
	storagetest.RunCopy(t, openTestStore, openTestStore, nil)
}

// A load that fails part of the way (a second user with a taken name,
// which only the COPY finds) leaves nothing behind, and the store takes a
// good dump afterwards.
func TestLoadIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, time.Now)
	rec := func(kind string, v any) storage.Record {
		r, err := storage.NewRecord(kind, v)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	good := []storage.Record{
		rec(storage.DumpSetting, storage.DumpedSetting{Name: "a", Value: []byte("1")}),
		rec(storage.DumpUser, storage.User{ID: "u1", Username: "alice", CreatedAt: at, UpdatedAt: at}),
	}
	bad := append(append([]storage.Record{}, good...), rec(storage.DumpUser, storage.User{ID: "u2", Username: "ALICE", CreatedAt: at, UpdatedAt: at}))
	if err := d.Load(ctx, bad); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("load with a taken name: got %v, want ErrConflict", err)
	}
	if _, err := d.GetSetting(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the failed load left a setting: %v", err)
	}
	orphan := append(append([]storage.Record{}, good...), rec(storage.DumpRefreshFamily, storage.RefreshFamily{ID: "f", UserID: "u1", ClientID: "app", Live: "h-missing"}))
	if err := d.Load(ctx, orphan); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("load of a family without its live link: got %v, want ErrInvalid", err)
	}
	if err := d.Load(ctx, good); err != nil {
		t.Fatalf("load after the failures: %v", err)
	}
	if u, err := d.GetUserByLogin(ctx, "ALICE"); err != nil || u.ID != "u1" {
		t.Fatalf("user by login after the load: %+v, %v", u, err)
	}
	if err := d.Load(ctx, good); !errors.Is(err, storage.ErrNotEmpty) {
		t.Fatalf("second load: got %v, want ErrNotEmpty", err)
	}
}
