package bolt

import (
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateAuthRequest(ctx context.Context, a storage.AuthRequest) error {
	if a.ID == "" {
		return fmt.Errorf("create auth request: empty ID")
	}
	return d.flowBatch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bAuthRequests)
		if has(b, a.ID) {
			return conflict("create auth request", a.ID)
		}
		if err := putJSON(b, a.ID, a); err != nil {
			return err
		}
		return putExpiry(tx, expAuthRequest, a.ExpiresAt, a.ID)
	})
}

func (d *DB) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	var a storage.AuthRequest
	err := d.flow.View(func(tx *bbolt.Tx) error {
		var err error
		a, err = d.liveAuthRequest(tx, id, "get auth request")
		return err
	})
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return a, nil
}

// UpdateAuthRequest applies fn to the stored request in one transaction.
// Because the write is batched with concurrent ones, fn may be called more
// than once; it must not have side effects.
func (d *DB) UpdateAuthRequest(ctx context.Context, id string, fn func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error) {
	var out storage.AuthRequest
	err := d.flowBatch(func(tx *bbolt.Tx) error {
		old, err := d.liveAuthRequest(tx, id, "update auth request")
		if err != nil {
			return err
		}
		arg, _ := d.liveAuthRequest(tx, id, "update auth request") // a copy fn may scribble on
		na, err := fn(arg)
		if err != nil {
			return &callbackError{fmt.Errorf("update auth request %q: %w", id, err)}
		}
		if na.ID != id {
			return fmt.Errorf("update auth request %q: the ID cannot change (got %q)", id, na.ID)
		}
		if err := putJSON(tx.Bucket(bAuthRequests), id, na); err != nil {
			return err
		}
		if err := moveExpiry(tx, expAuthRequest, old.ExpiresAt, na.ExpiresAt, id); err != nil {
			return err
		}
		out = na
		return nil
	})
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return out, nil
}

// DeleteAuthRequest removes the request and any code that points at it.
// It runs after every code exchange, so it shares commits with other writes.
func (d *DB) DeleteAuthRequest(ctx context.Context, id string) error {
	return d.flowBatch(func(tx *bbolt.Tx) error {
		found, err := deleteAuthRequestTx(tx, id)
		if err == nil && !found {
			err = notFound("delete auth request", id)
		}
		return err
	})
}

// SaveCode links codeHash to the live request authRequestID, replacing the
// request's previous code if it had one. A hash already linked to another
// request gives ErrConflict.
func (d *DB) SaveCode(ctx context.Context, authRequestID, codeHash string) error {
	if authRequestID == "" || codeHash == "" {
		return fmt.Errorf("save code: empty auth request ID or code hash")
	}
	return d.flowBatch(func(tx *bbolt.Tx) error {
		if _, err := d.liveAuthRequest(tx, authRequestID, "save code for auth request"); err != nil {
			return err
		}
		codes, byReq := tx.Bucket(bCodes), tx.Bucket(bCodesByRequest)
		if owner := codes.Get([]byte(codeHash)); owner != nil {
			if string(owner) == authRequestID {
				return nil
			}
			return fmt.Errorf("save code for auth request %q: code: %w", authRequestID, storage.ErrConflict)
		}
		if prev := byReq.Get([]byte(authRequestID)); prev != nil {
			if err := codes.Delete(prev); err != nil {
				return err
			}
		}
		if err := codes.Put([]byte(codeHash), []byte(authRequestID)); err != nil {
			return err
		}
		return byReq.Put([]byte(authRequestID), []byte(codeHash))
	})
}

// RedeemCode returns the request codeHash belongs to and unlinks the code in
// the same transaction. Only the first of concurrent redemptions succeeds.
func (d *DB) RedeemCode(ctx context.Context, codeHash string) (storage.AuthRequest, error) {
	var out storage.AuthRequest
	err := d.flowBatch(func(tx *bbolt.Tx) error {
		out = storage.AuthRequest{}
		codes, byReq := tx.Bucket(bCodes), tx.Bucket(bCodesByRequest)
		raw := codes.Get([]byte(codeHash))
		if raw == nil {
			var rc redeemedCode
			if ok, err := getJSON(tx.Bucket(bRedeemedCodes), codeHash, &rc); err != nil {
				return err
			} else if ok && !expired(rc.ExpiresAt, d.now()) {
				out = storage.AuthRequest{ID: rc.AuthRequestID, UserID: rc.UserID, ClientID: rc.ClientID}
				return fmt.Errorf("redeem code of auth request %q: %w", rc.AuthRequestID, storage.ErrTokenReused)
			}
			return fmt.Errorf("redeem code: %w", storage.ErrNotFound)
		}
		id := string(raw)
		// The code goes whatever happens next: a code whose request is gone
		// or expired is useless. Deleting it before returning ErrNotFound is
		// the one write batch() lets commit together with an outcome.
		if err := codes.Delete([]byte(codeHash)); err != nil {
			return err
		}
		if string(byReq.Get([]byte(id))) == codeHash {
			if err := byReq.Delete([]byte(id)); err != nil {
				return err
			}
		}
		a, err := d.liveAuthRequest(tx, id, "redeem code for auth request")
		if err != nil {
			return err
		}
		// Remember the redemption for a while, so a replayed code can be told
		// apart from a made-up one and its tokens revoked (RFC 6749 §4.1.2).
		rc := redeemedCode{AuthRequestID: a.ID, UserID: a.UserID, ClientID: a.ClientID, ExpiresAt: d.now().Add(redeemedCodeMemory)}
		if err := putJSON(tx.Bucket(bRedeemedCodes), codeHash, rc); err != nil {
			return err
		}
		if err := putExpiry(tx, expRedeemedCode, rc.ExpiresAt, codeHash); err != nil {
			return err
		}
		out = a
		return nil
	})
	if errors.Is(err, storage.ErrTokenReused) {
		return out, err
	}
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return out, nil
}

// redeemedCodeMemory is how long a redeemed code is remembered.
const redeemedCodeMemory = 10 * time.Minute

type redeemedCode struct {
	AuthRequestID string    `json:"auth_request_id"`
	UserID        string    `json:"user_id"`
	ClientID      string    `json:"client_id"`
	ExpiresAt     time.Time `json:"expires_at"`
}

// liveAuthRequest reads an unexpired request; op names the caller in errors.
func (d *DB) liveAuthRequest(tx *bbolt.Tx, id, op string) (storage.AuthRequest, error) {
	var a storage.AuthRequest
	ok, err := getJSON(tx.Bucket(bAuthRequests), id, &a)
	if err != nil {
		return storage.AuthRequest{}, err
	}
	if !ok || expired(a.ExpiresAt, d.now()) {
		return storage.AuthRequest{}, notFound(op, id)
	}
	return a, nil
}

// deleteAuthRequestTx removes a request, its code and its expiry entry.
func deleteAuthRequestTx(tx *bbolt.Tx, id string) (bool, error) {
	b := tx.Bucket(bAuthRequests)
	var a storage.AuthRequest
	ok, err := getJSON(b, id, &a)
	if err != nil || !ok {
		return false, err
	}
	byReq := tx.Bucket(bCodesByRequest)
	if code := byReq.Get([]byte(id)); code != nil {
		if err := tx.Bucket(bCodes).Delete(code); err != nil {
			return false, err
		}
		if err := byReq.Delete([]byte(id)); err != nil {
			return false, err
		}
	}
	if err := deleteExpiry(tx, expAuthRequest, a.ExpiresAt, id); err != nil {
		return false, err
	}
	return true, b.Delete([]byte(id))
}
