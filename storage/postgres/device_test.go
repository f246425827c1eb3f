package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// The store holds at most storage.MaxDeviceAuthorizations device
// authorizations; a create at the limit replaces an expired one, and the
// sweep makes room again.
func TestDeviceAuthorizationLimit(t *testing.T) {
	clock := testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	d := openTest(t, clock.Now)
	ctx := t.Context()
	// Fill the table in one statement, expiring in 10 minutes.
	if _, err := d.pool.Exec(ctx, `INSERT INTO device_authorizations (device_code_hash, user_code, kept_until, record)
		SELECT 'fill' || i, 'U' || i, $1, '{}' FROM generate_series(1, $2) AS i`,
		clock.Now().Add(10*time.Minute+storage.DeviceAuthorizationKept), storage.MaxDeviceAuthorizations); err != nil {
		t.Fatal(err)
	}
	a := storage.DeviceAuthorization{DeviceCodeHash: "h1", UserCode: "BCDFGHJK", ClientID: "tv", State: storage.DevicePending,
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(10 * time.Minute), Interval: 5 * time.Second, Origin: "192.0.2.1"}
	if err := d.CreateDeviceAuthorization(ctx, a, 5); !errors.Is(err, storage.ErrLimitReached) {
		t.Fatalf("create past the limit: %v", err)
	}
	// Once they have expired, a create at the limit takes the place of one.
	clock.Add(10 * time.Minute)
	a.ExpiresAt = clock.Now().Add(10 * time.Minute)
	if err := d.CreateDeviceAuthorization(ctx, a, 5); err != nil {
		t.Fatalf("create at the limit with some expired: %v", err)
	}
	var n int
	if err := d.pool.QueryRow(ctx, "SELECT count(*) FROM device_authorizations").Scan(&n); err != nil || n != storage.MaxDeviceAuthorizations {
		t.Fatalf("%d stored after the replacement (%v), want %d", n, err, storage.MaxDeviceAuthorizations)
	}
	clock.Add(storage.DeviceAuthorizationKept)
	if rep, err := d.Sweep(ctx); err != nil || rep.DeviceAuthorizations != storage.MaxDeviceAuthorizations-1 {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	b := a
	b.DeviceCodeHash, b.UserCode = "h2", "BCDFGHJL"
	if err := d.CreateDeviceAuthorization(ctx, b, 5); err != nil {
		t.Fatalf("create after the sweep made room: %v", err)
	}
}
