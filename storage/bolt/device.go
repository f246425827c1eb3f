package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// Device authorizations (RFC 8628) live in the flow file beside the
// sign-ins in progress: they last minutes, and a machine crash that loses
// one only makes the device start again. bDeviceAuths keeps the count of
// stored requests in its sequence, for storage.MaxDeviceAuthorizations;
// bDeviceByOrigin lists each origin's requests in the order they expire,
// for the per-origin limit.

func checkDeviceAuthorization(d storage.DeviceAuthorization) error {
	if d.DeviceCodeHash == "" || d.UserCode == "" || d.ClientID == "" {
		return fmt.Errorf("device authorization without device code, user code or client: %w", storage.ErrInvalid)
	}
	return nil
}

// CreateDeviceAuthorization stores a new request with its user-code index
// and its expiry entry.
// The per-origin limit counts the origin's entries from now on in
// bDeviceByOrigin; at storage.MaxDeviceAuthorizations, the request whose
// keeping ends first goes if it has expired (a late poll of it is told
// invalid_grant rather than expired_token), so a flood holds the store
// only while its requests live, not the time they are kept after.
func (d *DB) CreateDeviceAuthorization(ctx context.Context, a storage.DeviceAuthorization, perOrigin int) error {
	if err := checkDeviceAuthorization(a); err != nil {
		return fmt.Errorf("create device authorization: %w", err)
	}
	return d.flowBatch(func(tx *bbolt.Tx) error {
		b, byCode := tx.Bucket(bDeviceAuths), tx.Bucket(bDeviceByUserCode)
		if has(b, a.DeviceCodeHash) || has(byCode, a.UserCode) {
			return conflict("create device authorization", a.UserCode)
		}
		now := d.now()
		if perOrigin > 0 && a.Origin != "" {
			if n, first := liveOfOrigin(tx, a.Origin, now, perOrigin); n >= perOrigin {
				return &storage.DeviceOriginLimitError{Origin: a.Origin, Limit: perOrigin, FreeAt: first}
			}
		}
		if b.Sequence() >= storage.MaxDeviceAuthorizations {
			if err := dropExpiredDeviceAuth(tx, now); err != nil {
				return fmt.Errorf("create device authorization: %d stored: %w", b.Sequence(), err)
			}
		}
		if err := putJSON(b, a.DeviceCodeHash, a); err != nil {
			return err
		}
		if err := b.SetSequence(b.Sequence() + 1); err != nil {
			return err
		}
		if err := byCode.Put([]byte(a.UserCode), []byte(a.DeviceCodeHash)); err != nil {
			return err
		}
		if err := putDeviceOrigin(tx, a); err != nil {
			return err
		}
		return putExpiry(tx, expDeviceAuth, a.ExpiresAt.Add(storage.DeviceAuthorizationKept), a.DeviceCodeHash)
	})
}

func (d *DB) GetDeviceAuthorizationByUserCode(ctx context.Context, userCode string) (storage.DeviceAuthorization, error) {
	var a storage.DeviceAuthorization
	err := d.flow.View(func(tx *bbolt.Tx) error {
		hash := tx.Bucket(bDeviceByUserCode).Get([]byte(userCode))
		if hash == nil {
			return notFound("device authorization", userCode)
		}
		ok, err := getJSON(tx.Bucket(bDeviceAuths), string(hash), &a)
		if err == nil && !ok {
			err = notFound("device authorization", userCode)
		}
		return err
	})
	if err != nil {
		return storage.DeviceAuthorization{}, fmt.Errorf("get device authorization: %w", err)
	}
	return a, nil
}

func (d *DB) UpdateDeviceAuthorization(ctx context.Context, hash string, fn func(storage.DeviceAuthorization) (storage.DeviceAuthorization, error)) (storage.DeviceAuthorization, error) {
	var out storage.DeviceAuthorization
	err := d.flowBatch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bDeviceAuths)
		var old storage.DeviceAuthorization
		ok, err := getJSON(b, hash, &old)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("device authorization", hash)
		}
		next, err := fn(old)
		if err != nil {
			return &callbackError{err}
		}
		if next.DeviceCodeHash != old.DeviceCodeHash || next.UserCode != old.UserCode {
			return &callbackError{fmt.Errorf("update device authorization: the codes may not change: %w", storage.ErrInvalid)}
		}
		if err := putJSON(b, hash, next); err != nil {
			return err
		}
		if next.Origin != old.Origin || !next.ExpiresAt.Equal(old.ExpiresAt) {
			if err := dropDeviceOrigin(tx, old); err != nil {
				return err
			}
			if err := putDeviceOrigin(tx, next); err != nil {
				return err
			}
		}
		if err := moveExpiry(tx, expDeviceAuth, old.ExpiresAt.Add(storage.DeviceAuthorizationKept), next.ExpiresAt.Add(storage.DeviceAuthorizationKept), hash); err != nil {
			return err
		}
		out = next
		return nil
	})
	if err != nil {
		return storage.DeviceAuthorization{}, fmt.Errorf("update device authorization: %w", err)
	}
	return out, nil
}

// deleteDeviceAuthTx deletes a request and its index entry (not its expiry
// entry: the sweep that calls it has deleted that).
func deleteDeviceAuthTx(tx *bbolt.Tx, hash string) (bool, error) {
	b := tx.Bucket(bDeviceAuths)
	var a storage.DeviceAuthorization
	ok, err := getJSON(b, hash, &a)
	if err != nil || !ok {
		return false, err
	}
	if n := b.Sequence(); n > 0 {
		if err := b.SetSequence(n - 1); err != nil {
			return false, err
		}
	}
	if err := tx.Bucket(bDeviceByUserCode).Delete([]byte(a.UserCode)); err != nil {
		return false, err
	}
	if err := dropDeviceOrigin(tx, a); err != nil {
		return false, err
	}
	return true, b.Delete([]byte(hash))
}

func deviceOriginKey(a storage.DeviceAuthorization) []byte {
	k := appendNanos([]byte(a.Origin+"\x00"), a.ExpiresAt)
	return append(k, a.DeviceCodeHash...)
}

func putDeviceOrigin(tx *bbolt.Tx, a storage.DeviceAuthorization) error {
	if a.Origin == "" {
		return nil
	}
	return tx.Bucket(bDeviceByOrigin).Put(deviceOriginKey(a), emptyValue)
}

func dropDeviceOrigin(tx *bbolt.Tx, a storage.DeviceAuthorization) error {
	if a.Origin == "" {
		return nil
	}
	return tx.Bucket(bDeviceByOrigin).Delete(deviceOriginKey(a))
}

// rebuildDeviceOrigins rebuilds bDeviceByOrigin from the requests, at
// every open (at most storage.MaxDeviceAuthorizations of them), so that
// entries left by a version that did not keep it cannot count against an
// origin.
func rebuildDeviceOrigins(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bDeviceByOrigin); err != nil {
		return fmt.Errorf("delete bucket %s: %w", bDeviceByOrigin, err)
	}
	if _, err := tx.CreateBucket(bDeviceByOrigin); err != nil {
		return fmt.Errorf("create bucket %s: %w", bDeviceByOrigin, err)
	}
	return tx.Bucket(bDeviceAuths).ForEach(func(k, v []byte) error {
		var a storage.DeviceAuthorization
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("device authorization %q: %w", k, err)
		}
		return putDeviceOrigin(tx, a)
	})
}

// liveOfOrigin counts origin's requests that expire after now, up to
// limit, and tells when the first of them expires.
func liveOfOrigin(tx *bbolt.Tx, origin string, now time.Time, limit int) (int, time.Time) {
	prefix := []byte(origin + "\x00")
	c := tx.Bucket(bDeviceByOrigin).Cursor()
	n, first := 0, time.Time{}
	for k, _ := c.Seek(appendNanos(bytes.Clone(prefix), now.Add(time.Nanosecond))); k != nil && bytes.HasPrefix(k, prefix) && n < limit; k, _ = c.Next() {
		if n == 0 && len(k) >= len(prefix)+8 {
			first = time.Unix(0, int64(binary.BigEndian.Uint64(k[len(prefix):])))
		}
		n++
	}
	return n, first
}

// dropExpiredDeviceAuth deletes the request whose keeping ends first if
// it has expired at now, and gives ErrLimitReached if it has not. Expiry
// entries without their request (none are expected) are deleted on the
// way.
func dropExpiredDeviceAuth(tx *bbolt.Tx, now time.Time) error {
	prefix := []byte{expDeviceAuth}
	for {
		k, _ := tx.Bucket(bExpiry).Cursor().Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) || len(k) < 9 {
			return storage.ErrLimitReached
		}
		keptUntil := time.Unix(0, int64(binary.BigEndian.Uint64(k[1:9])))
		if keptUntil.Add(-storage.DeviceAuthorizationKept).After(now) {
			return storage.ErrLimitReached
		}
		k = bytes.Clone(k)
		if err := tx.Bucket(bExpiry).Delete(k); err != nil {
			return err
		}
		found, err := deleteDeviceAuthTx(tx, string(k[9:]))
		if err != nil || found {
			return err
		}
	}
}

func sweepDeviceAuth(tx *bbolt.Tx, hash string, rep *storage.SweepReport) (int, error) {
	found, err := deleteDeviceAuthTx(tx, hash)
	rep.DeviceAuthorizations += count(found)
	return count(found), err
}
