package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

func checkThrottleKey(key string) error {
	if key == "" {
		return fmt.Errorf("empty throttle key: %w", storage.ErrInvalid)
	}
	if len(key) > storage.MaxThrottleKey {
		return fmt.Errorf("throttle key of %d bytes is longer than %d: %w", len(key), storage.MaxThrottleKey, storage.ErrInvalid)
	}
	return nil
}

// GetThrottles reads the live records of keys.
func (d *DB) GetThrottles(ctx context.Context, keys ...string) ([]storage.Throttle, error) {
	out := make([]storage.Throttle, len(keys))
	raw := make([][]byte, len(keys))
	for i, k := range keys {
		if err := checkThrottleKey(k); err != nil {
			return nil, fmt.Errorf("get throttles: %w", err)
		}
		out[i].Key, raw[i] = k, []byte(k)
	}
	rows, err := d.pool.Query(ctx, "SELECT key, record FROM throttles WHERE "+live+" AND key = ANY($2)", d.now(), raw)
	if err != nil {
		return nil, dbErr("get throttles", err)
	}
	found := map[string]storage.Throttle{}
	var key, rec []byte
	_, err = pgx.ForEachRow(rows, []any{&key, &rec}, func() error {
		t, err := unmarshal[storage.Throttle](rec)
		found[string(key)] = t
		return err
	})
	if err != nil {
		return nil, dbErr("get throttles", err)
	}
	for i, k := range keys {
		if t, ok := found[k]; ok {
			out[i] = t
		}
	}
	return out, nil
}

// throttleLock is the transaction-scoped advisory lock of a throttle key:
// a key may have no row to lock yet, and concurrent updates of one key
// must each see the other's failures.
func throttleLock(key string) int64 {
	h := fnv.New64a()
	h.Write([]byte("throttle\x00" + key))
	return int64(h.Sum64())
}

// UpdateThrottles applies fn to every key's record in one transaction,
// holding each key's advisory lock (taken in one order, so two updates of
// overlapping keys cannot deadlock).
func (d *DB) UpdateThrottles(ctx context.Context, keys []string, fn func(storage.Throttle) (storage.Throttle, error)) error {
	locks := make([]int64, 0, len(keys))
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := checkThrottleKey(k); err != nil {
			return fmt.Errorf("update throttles: %w", err)
		}
		if seen[k] {
			return fmt.Errorf("update throttles: key %q given twice: %w", k, storage.ErrInvalid)
		}
		seen[k] = true
		locks = append(locks, throttleLock(k))
	}
	slices.Sort(locks)
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		for _, l := range locks {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", l); err != nil {
				return err
			}
		}
		now := d.now()
		for _, k := range keys {
			cur, err := scanRecord[storage.Throttle](tx.QueryRow(ctx, "SELECT record FROM throttles WHERE "+live+" AND key = $2", now, []byte(k)))
			if err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			if errors.Is(err, pgx.ErrNoRows) {
				cur = storage.Throttle{Key: k}
			}
			next, err := fn(cur)
			if err != nil {
				return &callbackError{fmt.Errorf("update throttles: %w", err)}
			}
			if next.Key != k {
				return &callbackError{fmt.Errorf("update throttles: throttle %q: the update changed the key to %q", k, next.Key)}
			}
			if n := len(next.Failures); n > storage.MaxThrottleFailures {
				next.Failures = next.Failures[n-storage.MaxThrottleFailures:]
			}
			if next.Empty() || (!next.ExpiresAt.IsZero() && !now.Before(next.ExpiresAt)) {
				if _, err := tx.Exec(ctx, "DELETE FROM throttles WHERE key = $1", []byte(k)); err != nil {
					return err
				}
				continue
			}
			rec, err := marshal(next)
			if err != nil {
				return err
			}
			_, err = tx.Exec(ctx, `INSERT INTO throttles (key, expires_at, record) VALUES ($1, $2, $3)
				ON CONFLICT (key) DO UPDATE SET expires_at = excluded.expires_at, record = excluded.record`,
				[]byte(k), orNull(next.ExpiresAt), rec)
			if err != nil {
				return err
			}
		}
		return nil
	})
	return dbErr("update throttles", err)
}

func sweepThrottles(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM throttles WHERE expires_at <= $1", now)
	rep.Throttles += int(tag.RowsAffected())
	return err
}
