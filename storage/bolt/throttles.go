package bolt

import (
	"context"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// Throttle records live in the main file, not the flow file: they must
// survive a crash of the machine, or an attacker could reset them by
// crashing it.

func checkThrottleKey(key string) error {
	if key == "" {
		return errors.New("empty throttle key")
	}
	if len(key) > storage.MaxThrottleKey {
		return fmt.Errorf("throttle key of %d bytes is longer than %d", len(key), storage.MaxThrottleKey)
	}
	return nil
}

// GetThrottles reads the live records of keys in one read transaction.
func (d *DB) GetThrottles(ctx context.Context, keys ...string) ([]storage.Throttle, error) {
	out := make([]storage.Throttle, len(keys))
	for i, k := range keys {
		if err := checkThrottleKey(k); err != nil {
			return nil, fmt.Errorf("get throttles: %w", err)
		}
		out[i].Key = k
	}
	now := d.now()
	err := d.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bThrottles)
		for i, k := range keys {
			var t storage.Throttle
			ok, err := getJSON(b, k, &t)
			if err != nil {
				return err
			}
			if ok && !expired(t.ExpiresAt, now) {
				out[i] = t
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("get throttles: %w", err)
	}
	return out, nil
}

// UpdateThrottles applies fn to every key's record in one (batched) write
// transaction, so a failure counted on several keys costs one commit.
func (d *DB) UpdateThrottles(ctx context.Context, keys []string, fn func(storage.Throttle) (storage.Throttle, error)) error {
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if err := checkThrottleKey(k); err != nil {
			return fmt.Errorf("update throttles: %w", err)
		}
		if seen[k] {
			return fmt.Errorf("update throttles: key %q given twice", k)
		}
		seen[k] = true
	}
	err := d.batch(func(tx *bbolt.Tx) error {
		now := d.now()
		b := tx.Bucket(bThrottles)
		// fn runs for every key before anything is written, so an error
		// from it leaves the batch's transaction untouched.
		olds := make([]storage.Throttle, len(keys))
		news := make([]storage.Throttle, len(keys))
		for i, k := range keys {
			var old storage.Throttle
			ok, err := getJSON(b, k, &old)
			if err != nil {
				return err
			}
			olds[i] = old
			cur := old
			if !ok || expired(old.ExpiresAt, now) {
				cur = storage.Throttle{Key: k}
			}
			next, err := fn(cur)
			if err != nil {
				return &callbackError{err}
			}
			if next.Key != k {
				return &callbackError{fmt.Errorf("throttle %q: the update changed the key to %q", k, next.Key)}
			}
			if n := len(next.Failures); n > storage.MaxThrottleFailures {
				next.Failures = next.Failures[n-storage.MaxThrottleFailures:]
			}
			news[i] = next
		}
		for i, k := range keys {
			old, next := olds[i], news[i]
			if old.Key != "" {
				if err := deleteExpiry(tx, expThrottle, old.ExpiresAt, k); err != nil {
					return err
				}
			}
			if next.Empty() || expired(next.ExpiresAt, now) {
				if err := b.Delete([]byte(k)); err != nil {
					return err
				}
				continue
			}
			if err := putJSON(b, k, next); err != nil {
				return err
			}
			if err := putExpiry(tx, expThrottle, next.ExpiresAt, k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update throttles: %w", err)
	}
	return nil
}

func sweepThrottle(tx *bbolt.Tx, key string, rep *storage.SweepReport) (int, error) {
	b := tx.Bucket(bThrottles)
	found := has(b, key)
	rep.Throttles += count(found)
	return count(found), b.Delete([]byte(key))
}
