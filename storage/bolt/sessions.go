package bolt

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateSession(ctx context.Context, s storage.Session) error {
	if s.ID == "" {
		return errors.New("create session: empty ID")
	}
	return d.batch(func(tx *bbolt.Tx) error {
		if has(tx.Bucket(bSessions), s.ID) {
			return conflict("create session", s.ID)
		}
		return putSessionTx(tx, s)
	})
}

// putSessionTx writes a session whose ID the caller found free.
func putSessionTx(tx *bbolt.Tx, s storage.Session) error {
	if err := putJSON(tx.Bucket(bSessions), s.ID, s); err != nil {
		return err
	}
	if err := tx.Bucket(bUserSessions).Put([]byte(join(s.UserID, s.ID)), emptyValue); err != nil {
		return err
	}
	return putExpiry(tx, expSession, s.ExpiresAt, s.ID)
}

func (d *DB) GetSession(ctx context.Context, id string) (storage.Session, error) {
	var s storage.Session
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bSessions), id, &s)
		if err == nil && (!ok || expired(s.ExpiresAt, d.now())) {
			err = notFound("get session", id)
		}
		return err
	})
	if err != nil {
		return storage.Session{}, err
	}
	return s, nil
}

func (d *DB) DeleteSession(ctx context.Context, id string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		found, err := deleteSessionTx(tx, id)
		if err == nil && !found {
			err = notFound("delete session", id)
		}
		return err
	})
}

// DeleteUserSessions ends every session of the user, expired ones included,
// and counts them.
func (d *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, errors.New("delete user sessions: empty user ID")
	}
	var n int
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		n, err = deleteUserSessionsTx(tx, userID)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

func deleteUserSessionsTx(tx *bbolt.Tx, userID string) (int, error) {
	prefix := userID + "\x00"
	n := 0
	for _, k := range prefixKeys(tx.Bucket(bUserSessions), prefix) {
		found, err := deleteSessionTx(tx, string(k[len(prefix):]))
		if err != nil {
			return n, err
		}
		if found {
			n++
		}
		if err := tx.Bucket(bUserSessions).Delete(k); err != nil {
			return n, err
		}
	}
	return n, nil
}

func deleteSessionTx(tx *bbolt.Tx, id string) (bool, error) {
	b := tx.Bucket(bSessions)
	var s storage.Session
	ok, err := getJSON(b, id, &s)
	if err != nil || !ok {
		return false, err
	}
	if err := tx.Bucket(bUserSessions).Delete([]byte(join(s.UserID, id))); err != nil {
		return false, err
	}
	if err := deleteExpiry(tx, expSession, s.ExpiresAt, id); err != nil {
		return false, err
	}
	return true, b.Delete([]byte(id))
}

// ListUserSessions returns the user's live sessions, newest first.
func (d *DB) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if userID == "" {
		return nil, errors.New("list user sessions: empty user ID")
	}
	var out []storage.Session
	now := d.now()
	err := d.db.View(func(tx *bbolt.Tx) error {
		prefix := userID + "\x00"
		b := tx.Bucket(bSessions)
		for _, k := range prefixKeys(tx.Bucket(bUserSessions), prefix) {
			var s storage.Session
			ok, err := getJSON(b, string(k[len(prefix):]), &s)
			if err != nil {
				return err
			}
			if ok && !expired(s.ExpiresAt, now) {
				out = append(out, s)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	slices.SortStableFunc(out, func(a, b storage.Session) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// AddSessionClient records that clientID was issued tokens in session id.
// The common case, an app already recorded, is a read only.
func (d *DB) AddSessionClient(ctx context.Context, id, clientID string) error {
	if id == "" || clientID == "" {
		return errors.New("add session client: empty session or client ID")
	}
	var s storage.Session
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bSessions), id, &s)
		if err == nil && (!ok || expired(s.ExpiresAt, d.now())) {
			err = notFound("add client to session", id)
		}
		return err
	})
	if err != nil || slices.Contains(s.ClientIDs, clientID) {
		return err
	}
	return d.batch(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bSessions)
		ok, err := getJSON(b, id, &s)
		if err != nil {
			return err
		}
		if !ok || expired(s.ExpiresAt, d.now()) {
			return notFound("add client to session", id)
		}
		return addSessionClientTx(tx, id, clientID, d.now())
	})
}

// addSessionClientTx records clientID on live session id, once; a session
// that is gone or expired is left alone.
func addSessionClientTx(tx *bbolt.Tx, id, clientID string, now time.Time) error {
	var s storage.Session
	b := tx.Bucket(bSessions)
	ok, err := getJSON(b, id, &s)
	if err != nil || !ok || expired(s.ExpiresAt, now) || slices.Contains(s.ClientIDs, clientID) {
		return err
	}
	s.ClientIDs = append(s.ClientIDs, clientID)
	return putJSON(b, id, s)
}
