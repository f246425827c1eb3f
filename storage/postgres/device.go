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

// deviceOriginSchema is schema version 3: each device authorization's
// origin, for the per-origin limit, with its requests in the order their
// keeping ends ("" for requests that count under no origin, as those
// stored by version 2 do).
const deviceOriginSchema = `ALTER TABLE device_authorizations ADD COLUMN origin text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX device_authorizations_by_origin ON device_authorizations (origin, kept_until) WHERE origin <> '';`

func applyDeviceOriginSchema(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, deviceOriginSchema)
	return err
}

// deviceOriginLock(o) is held while a create counts the requests of
// origin o, so concurrent creates never pass the per-origin limit.
func deviceOriginLock(origin string) int64 { return advisoryKey("device authorizations\x00" + origin) }

// CreateDeviceAuthorization stores a new request. Under the origin's
// advisory lock it counts the origin's requests that have not expired (a
// request expires DeviceAuthorizationKept before its kept_until). The
// total's count and the insert are one statement; concurrent creates may
// pass that bound by a few rows, which is all it is for: a bound on what
// a flood can store. At the bound, the request whose keeping ends first
// is deleted if it has expired, and the insert tried once more.
func (d *DB) CreateDeviceAuthorization(ctx context.Context, a storage.DeviceAuthorization, perOrigin int) error {
	if a.DeviceCodeHash == "" || a.UserCode == "" || a.ClientID == "" {
		return fmt.Errorf("create device authorization: no device code, user code or client: %w", storage.ErrInvalid)
	}
	rec, err := marshal(a)
	if err != nil {
		return err
	}
	// A request is live while its kept_until is after liveAfter.
	liveAfter := d.now().Add(storage.DeviceAuthorizationKept)
	err = d.flowTx(ctx, func(tx pgx.Tx) error {
		if perOrigin > 0 && a.Origin != "" {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", deviceOriginLock(a.Origin)); err != nil {
				return err
			}
			var n int
			var first *time.Time
			if err := tx.QueryRow(ctx, `SELECT count(*), min(kept_until) FROM (SELECT kept_until FROM device_authorizations
				WHERE origin = $1 AND kept_until > $2 ORDER BY kept_until LIMIT $3) AS live`,
				a.Origin, liveAfter, perOrigin).Scan(&n, &first); err != nil {
				return err
			}
			if n >= perOrigin && first != nil {
				return &callbackError{&storage.DeviceOriginLimitError{Origin: a.Origin, Limit: perOrigin, FreeAt: first.Add(-storage.DeviceAuthorizationKept)}}
			}
		}
		for try := 0; ; try++ {
			tag, err := tx.Exec(ctx, `INSERT INTO device_authorizations (device_code_hash, user_code, kept_until, origin, record)
				SELECT $1, $2, $3, $4, $5 WHERE (SELECT count(*) FROM device_authorizations) < $6`,
				a.DeviceCodeHash, a.UserCode, keptUntil(a), a.Origin, rec, storage.MaxDeviceAuthorizations)
			if err != nil || tag.RowsAffected() == 1 {
				return err
			}
			if try > 0 {
				return &callbackError{fmt.Errorf("create device authorization: %w", storage.ErrLimitReached)}
			}
			tag, err = tx.Exec(ctx, `DELETE FROM device_authorizations WHERE device_code_hash =
				(SELECT device_code_hash FROM device_authorizations WHERE kept_until <= $1 ORDER BY kept_until LIMIT 1)`, liveAfter)
			if err != nil {
				return err
			}
			if tag.RowsAffected() == 0 {
				return &callbackError{fmt.Errorf("create device authorization: none expired: %w", storage.ErrLimitReached)}
			}
		}
	})
	return dbErr("create device authorization", err)
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
	err := d.flowTx(ctx, func(tx pgx.Tx) error {
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
		if next.State == storage.DeviceRedeemed && old.State != storage.DeviceRedeemed {
			// The redemption spends the code, and the tokens it issues
			// may write nothing that would take it to the disk after
			// (stateless access tokens): it waits for its own sync.
			if err := syncThisCommit(ctx, tx); err != nil {
				return err
			}
		}
		rec, err := marshal(next)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE device_authorizations SET kept_until = $2, record = $3, origin = $4 WHERE device_code_hash = $1",
			hash, keptUntil(next), rec, next.Origin); err != nil {
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
