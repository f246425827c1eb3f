package postgres

import (
	"errors"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// The store holds at most storage.MaxDeviceAuthorizations device
// authorizations; the sweep makes room again.
func TestDeviceAuthorizationLimit(t *testing.T) {
	clock := testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	d := openTest(t, clock.Now)
	ctx := t.Context()
	// Fill the table in one statement, expiring at once.
	if _, err := d.pool.Exec(ctx, `INSERT INTO device_authorizations (device_code_hash, user_code, kept_until, record)
		SELECT 'fill' || i, 'U' || i, $1, '{}' FROM generate_series(1, $2) AS i`, clock.Now(), storage.MaxDeviceAuthorizations); err != nil {
		t.Fatal(err)
	}
	a := storage.DeviceAuthorization{DeviceCodeHash: "h1", UserCode: "BCDFGHJK", ClientID: "tv", State: storage.DevicePending,
		CreatedAt: clock.Now(), ExpiresAt: clock.Now().Add(10 * time.Minute), Interval: 5 * time.Second}
	if err := d.CreateDeviceAuthorization(ctx, a); !errors.Is(err, storage.ErrLimitReached) {
		t.Fatalf("create past the limit: %v", err)
	}
	if rep, err := d.Sweep(ctx); err != nil || rep.DeviceAuthorizations != storage.MaxDeviceAuthorizations {
		t.Fatalf("sweep: %+v %v", rep, err)
	}
	if err := d.CreateDeviceAuthorization(ctx, a); err != nil {
		t.Fatalf("create after the sweep made room: %v", err)
	}
}
