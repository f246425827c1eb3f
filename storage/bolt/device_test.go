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
// brings down again, and a create at the limit replaces an expired one.
// (Filling the store for real takes 10,000 commits, so the count is set
// as if it had been.)
func TestDeviceAuthorizationLimit(t *testing.T) {
	clock := testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Now: clock.Now})
	ctx := t.Context()
	a := storage.DeviceAuthorization{DeviceCodeHash: "h1", UserCode: "BCDFGHJK", ClientID: "tv", State: storage.DevicePending,
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(10 * time.Minute), Interval: 5 * time.Second, Origin: "192.0.2.1"}
	if err := d.CreateDeviceAuthorization(ctx, a, 5); err != nil {
		t.Fatal(err)
	}
	setCount := func(n uint64) {
		t.Helper()
		if err := d.flow.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bDeviceAuths).SetSequence(n) }); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n uint64) {
		t.Helper()
		if err := d.flow.View(func(tx *bbolt.Tx) error { n = tx.Bucket(bDeviceAuths).Sequence(); return nil }); err != nil {
			t.Fatal(err)
		}
		return n
	}
	setCount(storage.MaxDeviceAuthorizations)
	b := a
	b.DeviceCodeHash, b.UserCode, b.Origin = "h2", "BCDFGHJL", "192.0.2.2"
	if err := d.CreateDeviceAuthorization(ctx, b, 5); !errors.Is(err, storage.ErrLimitReached) {
		t.Fatalf("create past the limit: %v", err)
	}
	// Once h1 has expired, a create at the limit takes its place.
	clock.Add(10 * time.Minute)
	b.ExpiresAt = clock.Now().Add(10 * time.Minute)
	if err := d.CreateDeviceAuthorization(ctx, b, 5); err != nil {
		t.Fatalf("create at the limit with one expired: %v", err)
	}
	if _, err := d.GetDeviceAuthorizationByUserCode(ctx, a.UserCode); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the expired request, replaced: %v", err)
	}
	if n := count(); n != storage.MaxDeviceAuthorizations {
		t.Fatalf("%d counted after the replacement, want %d", n, storage.MaxDeviceAuthorizations)
	}
	c := b
	c.DeviceCodeHash, c.UserCode = "h3", "BCDFGHJM"
	if err := d.CreateDeviceAuthorization(ctx, c, 5); !errors.Is(err, storage.ErrLimitReached) {
		t.Fatalf("create past the limit, none expired: %v", err)
	}
	// The sweep forgets the one stored and counts it off.
	clock.Add(10*time.Minute + storage.DeviceAuthorizationKept)
	if rep, err := d.Sweep(ctx); err != nil || rep.DeviceAuthorizations != 1 {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	if err := d.CreateDeviceAuthorization(ctx, c, 5); err != nil {
		t.Fatalf("create after the sweep made room: %v", err)
	}
	setCount(1) // as stored, for the index check at cleanup
}

// The origin index is rebuilt at open: a reopened store still counts an
// origin's requests, and an entry without its request (left by a version
// that did not keep the index) counts for nobody.
func TestDeviceOriginsRebuiltAtOpen(t *testing.T) {
	clock := testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	path := filepath.Join(t.TempDir(), "keyport.db")
	d := openTest(t, path, Options{Now: clock.Now})
	ctx := t.Context()
	a := storage.DeviceAuthorization{DeviceCodeHash: "h1", UserCode: "BCDFGHJK", ClientID: "tv", State: storage.DevicePending,
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(10 * time.Minute), Interval: 5 * time.Second, Origin: "192.0.2.1"}
	if err := d.CreateDeviceAuthorization(ctx, a, 2); err != nil {
		t.Fatal(err)
	}
	stale := a
	stale.DeviceCodeHash, stale.Origin = "gone", "192.0.2.2"
	if err := d.flow.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bDeviceByOrigin).Put(deviceOriginKey(stale), emptyValue)
	}); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = openTest(t, path, Options{Now: clock.Now})
	b := a
	b.DeviceCodeHash, b.UserCode = "h2", "BCDFGHJL"
	if err := d.CreateDeviceAuthorization(ctx, b, 2); err != nil {
		t.Fatalf("second of 192.0.2.1: %v", err)
	}
	b.DeviceCodeHash, b.UserCode = "h3", "BCDFGHJM"
	if err := d.CreateDeviceAuthorization(ctx, b, 2); !errors.Is(err, storage.ErrLimitReached) {
		t.Fatalf("third of 192.0.2.1 after a reopen: %v", err)
	}
	c := a
	c.DeviceCodeHash, c.UserCode, c.Origin = "h4", "BCDFGHJN", "192.0.2.2"
	if err := d.CreateDeviceAuthorization(ctx, c, 1); err != nil {
		t.Fatalf("192.0.2.2, whose only entry was stale: %v", err)
	}
}
