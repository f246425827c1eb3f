package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// deviceSchema is schema version 2: the device authorizations (RFC 8628),
// by the hash of the device code, with the user code unique. They last
// minutes: a dump leaves them out (notCopiedTables).
const deviceSchema = `CREATE TABLE device_authorizations (
	device_code_hash text COLLATE "C" PRIMARY KEY,
	user_code        text COLLATE "C" NOT NULL UNIQUE,
	kept_until       timestamptz NOT NULL, -- ExpiresAt + storage.DeviceAuthorizationKept
	record           json NOT NULL
);
CREATE INDEX device_authorizations_by_expiry ON device_authorizations (kept_until);`

func applyDeviceSchema(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, deviceSchema)
	return err
}

func keptUntil(a storage.DeviceAuthorization) time.Time {
	return a.ExpiresAt.Add(storage.DeviceAuthorizationKept)
}

// CreateDeviceAuthorization stores a new request. The count and the insert
// are one statement; concurrent creates may pass the bound by a few rows,
// which is all it is for: a bound on what a flood can store.
func (d *DB) CreateDeviceAuthorization(ctx context.Context, a storage.DeviceAuthorization) error {
	if a.DeviceCodeHash == "" || a.UserCode == "" || a.ClientID == "" {
		return fmt.Errorf("create device authorization: no device code, user code or client: %w", storage.ErrInvalid)
	}
	rec, err := marshal(a)
	if err != nil {
		return err
	}
	tag, err := d.pool.Exec(ctx, `INSERT INTO device_authorizations (device_code_hash, user_code, kept_until, record)
		SELECT $1, $2, $3, $4 WHERE (SELECT count(*) FROM device_authorizations) < $5`,
		a.DeviceCodeHash, a.UserCode, keptUntil(a), rec, storage.MaxDeviceAuthorizations)
	if err != nil {
		return dbErr("create device authorization", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create device authorization: %w", storage.ErrLimitReached)
	}
	return nil
}

func (d *DB) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (storage.DeviceAuthorization, error) {
	a, err := scanRecord[storage.DeviceAuthorization](d.pool.QueryRow(ctx,
		"SELECT record FROM device_authorizations WHERE user_code = $1", userCode))
	if err != nil {
		return storage.DeviceAuthorization{}, dbErr("get device authorization", err)
	}
	return a, nil
}

// UpdateDeviceAuthorization locks the row, applies fn once and writes the
// result.
func (d *DB) UpdateDeviceAuthorization(ctx context.Context, hash string, fn func(storage.DeviceAuthorization) (storage.DeviceAuthorization, error)) (storage.DeviceAuthorization, error) {
	var out storage.DeviceAuthorization
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanRecord[storage.DeviceAuthorization](tx.QueryRow(ctx,
			"SELECT record FROM device_authorizations WHERE device_code_hash = $1 FOR UPDATE", hash))
		if err != nil {
			return err
		}
		next, err := fn(old)
		if err != nil {
			return &callbackError{err}
		}
		if next.DeviceCodeHash != old.DeviceCodeHash || next.UserCode != old.UserCode {
			return &callbackError{fmt.Errorf("update device authorization: the codes may not change: %w", storage.ErrInvalid)}
		}
		rec, err := marshal(next)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE device_authorizations SET kept_until = $2, record = $3 WHERE device_code_hash = $1",
			hash, keptUntil(next), rec); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return storage.DeviceAuthorization{}, dbErr("update device authorization", err)
	}
	return out, nil
}

func sweepDeviceAuthorizations(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM device_authorizations WHERE kept_until <= $1", now)
	rep.DeviceAuthorizations += int(tag.RowsAffected())
	return err
}
