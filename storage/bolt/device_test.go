package bolt

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// The store holds at most storage.MaxDeviceAuthorizations device
// authorizations: the count is the bucket's sequence, which the sweep
// brings down again. (Filling the store for real takes 10,000 commits, so
// the count is set as if it had been.)
func TestDeviceAuthorizationLimit(t *testing.T) {
	clock := testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Now: clock.Now})
	ctx := t.Context()
	a := storage.DeviceAuthorization{DeviceCodeHash: "h1", UserCode: "BCDFGHJK", ClientID: "tv", State: storage.DevicePending,
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(10 * time.Minute), Interval: 5 * time.Second}
	if err := d.CreateDeviceAuthorization(ctx, a); err != nil {
		t.Fatal(err)
	}
	setCount := func(n uint64) {
		t.Helper()
		if err := d.flow.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bDeviceAuths).SetSequence(n) }); err != nil {
			t.Fatal(err)
		}
	}
	setCount(storage.MaxDeviceAuthorizations)
	b := a
	b.DeviceCodeHash, b.UserCode = "h2", "BCDFGHJL"
	if err := d.CreateDeviceAuthorization(ctx, b); !errors.Is(err, storage.ErrLimitReached) {
		t.Fatalf("create past the limit: %v", err)
	}
	// The sweep forgets the one stored and counts it off.
	clock.Add(10*time.Minute + storage.DeviceAuthorizationKept)
	if rep, err := d.Sweep(ctx); err != nil || rep.DeviceAuthorizations != 1 {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	if err := d.CreateDeviceAuthorization(ctx, b); err != nil {
		t.Fatalf("create after the sweep made room: %v", err)
	}
	setCount(1) // as stored, for the index check at cleanup
}
