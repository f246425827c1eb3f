package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// Device authorizations (RFC 8628) live in the flow file beside the
// sign-ins in progress: they last minutes, and a machine crash that loses
// one only makes the device start again. bDeviceAuths keeps the count of
// stored requests in its sequence, for storage.MaxDeviceAuthorizations.

func checkDeviceAuthorization(d storage.DeviceAuthorization) error {
	if d.DeviceCodeHash == "" || d.UserCode == "" || d.ClientID == "" {
		return fmt.Errorf("device authorization without device code, user code or client: %w", storage.ErrInvalid)
	}
	return nil
}

// CreateDeviceAuthorization stores a new request with its user-code index
// and its expiry entry.
func (d *DB) CreateDeviceAuthorization(ctx context.Context, a storage.DeviceAuthorization) error {
	if err := checkDeviceAuthorization(a); err != nil {
		return fmt.Errorf("create device authorization: %w", err)
	}
	return d.flowBatch(func(tx *bbolt.Tx) error {
		b, byCode := tx.Bucket(bDeviceAuths), tx.Bucket(bDeviceByUserCode)
		if has(b, a.DeviceCodeHash) || has(byCode, a.UserCode) {
			return conflict("create device authorization", a.UserCode)
		}
		if b.Sequence() >= storage.MaxDeviceAuthorizations {
			return fmt.Errorf("create device authorization: %d stored: %w", b.Sequence(), storage.ErrLimitReached)
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
	return true, b.Delete([]byte(hash))
}

func sweepDeviceAuth(tx *bbolt.Tx, hash string, rep *storage.SweepReport) (int, error) {
	found, err := deleteDeviceAuthTx(tx, hash)
	rep.DeviceAuthorizations += count(found)
	return count(found), err
}
