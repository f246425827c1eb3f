package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// Grants.

func (d *DB) GetGrant(ctx context.Context, userID, clientID string) (storage.Grant, error) {
	var g storage.Grant
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bGrants), join(userID, clientID), &g)
		if err == nil && !ok {
			err = fmt.Errorf("get grant of user %q to client %q: %w", userID, clientID, storage.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return storage.Grant{}, err
	}
	return g, nil
}

func (d *DB) PutGrant(ctx context.Context, g storage.Grant, e *storage.AuditEvent, out ...storage.OutboxMessage) error {
	if g.UserID == "" || g.ClientID == "" {
		return errors.New("put grant: empty user or client ID")
	}
	audit, err := newSignInAudit(e)
	if err != nil {
		return fmt.Errorf("put grant of user %q to client %q: %w", g.UserID, g.ClientID, err)
	}
	msgs, err := newOutboxWrite(out)
	if err != nil {
		return fmt.Errorf("put grant of user %q to client %q: %w", g.UserID, g.ClientID, err)
	}
	// Batched: consents of people signing in at the same moment share a
	// commit, as their sign-ins do.
	err = d.batch(func(tx *bbolt.Tx) error {
		if err := audit.free(tx); err != nil {
			return err
		}
		if err := msgs.free(tx); err != nil {
			return err
		}
		if err := indexClientRecord(tx, g.ClientID, clientGrant, g.UserID); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bGrants), join(g.UserID, g.ClientID), g); err != nil {
			return err
		}
		if err := audit.put(tx); err != nil {
			return err
		}
		return msgs.put(tx)
	})
	if err != nil {
		return fmt.Errorf("put grant of user %q to client %q: %w", g.UserID, g.ClientID, err)
	}
	return nil
}

// Signing keys.

// ListSigningKeys returns every key, oldest first.
func (d *DB) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	var keys []storage.SigningKey
	err := d.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bSigningKeys)
		return b.ForEach(func(k, _ []byte) error {
			var sk storage.SigningKey
			if _, err := getJSON(b, string(k), &sk); err != nil {
				return err
			}
			keys = append(keys, sk)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list signing keys: %w", err)
	}
	slices.SortStableFunc(keys, func(a, b storage.SigningKey) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return keys, nil
}

func (d *DB) PutSigningKey(ctx context.Context, k storage.SigningKey) error {
	if k.ID == "" {
		return errors.New("put signing key: empty ID")
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bSigningKeys), k.ID, k)
	})
}

func (d *DB) DeleteSigningKey(ctx context.Context, id string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bSigningKeys)
		if !has(b, id) {
			return notFound("delete signing key", id)
		}
		return b.Delete([]byte(id))
	})
}

// Settings.

func (d *DB) GetSetting(ctx context.Context, name string) ([]byte, error) {
	var v []byte
	err := d.db.View(func(tx *bbolt.Tx) error {
		// A cursor rather than Get, so a stored empty value is told apart
		// from a missing one.
		k, raw := tx.Bucket(bSettings).Cursor().Seek([]byte(name))
		if k == nil || !bytes.Equal(k, []byte(name)) {
			return notFound("get setting", name)
		}
		v = append([]byte{}, raw...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return v, nil
}

func (d *DB) PutSetting(ctx context.Context, name string, value []byte) error {
	if name == "" {
		return errors.New("put setting: empty name")
	}
	v := append([]byte{}, value...)
	return d.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bSettings).Put([]byte(name), v)
	})
}

// One-time tokens.

func (d *DB) CreateOneTimeToken(ctx context.Context, t storage.OneTimeToken, out ...storage.OutboxMessage) error {
	if t.Hash == "" {
		return errors.New("create one-time token: empty hash")
	}
	w, err := newOutboxWrite(out)
	if err != nil {
		return fmt.Errorf("create one-time token for %q: %w", t.Purpose, err)
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bOneTimeTokens)
		if has(b, t.Hash) {
			return fmt.Errorf("create one-time token for %q: %w", t.Purpose, storage.ErrConflict)
		}
		if err := enqueueOutboxTx(tx, w); err != nil {
			return fmt.Errorf("create one-time token for %q: %w", t.Purpose, err)
		}
		if t.OnePerUser {
			if err := replaceUserOneTimeToken(tx, t); err != nil {
				return fmt.Errorf("create one-time token for %q: %w", t.Purpose, err)
			}
		}
		if err := putJSON(b, t.Hash, t); err != nil {
			return err
		}
		return putExpiry(tx, expOneTimeToken, t.ExpiresAt, t.Hash)
	})
}

func oneTimeByUserKey(userID, purpose string) []byte {
	return []byte(userID + "\x00" + purpose)
}

// replaceUserOneTimeToken deletes t's user's earlier OnePerUser token of
// t's purpose, live or not, and points the index at t.
func replaceUserOneTimeToken(tx *bbolt.Tx, t storage.OneTimeToken) error {
	idx, key := tx.Bucket(bOneTimeByUser), oneTimeByUserKey(t.UserID, t.Purpose)
	if old := idx.Get(key); old != nil {
		var prev storage.OneTimeToken
		b := tx.Bucket(bOneTimeTokens)
		ok, err := getJSON(b, string(old), &prev)
		if err != nil {
			return err
		}
		if ok {
			if err := deleteExpiry(tx, expOneTimeToken, prev.ExpiresAt, prev.Hash); err != nil {
				return err
			}
			if err := b.Delete(old); err != nil {
				return err
			}
		}
	}
	return idx.Put(key, []byte(t.Hash))
}

// forgetUserOneTimeToken drops the index entry of a OnePerUser token that
// goes (spent or swept), unless a newer token took its place.
func forgetUserOneTimeToken(tx *bbolt.Tx, t storage.OneTimeToken) error {
	if !t.OnePerUser {
		return nil
	}
	idx, key := tx.Bucket(bOneTimeByUser), oneTimeByUserKey(t.UserID, t.Purpose)
	if string(idx.Get(key)) != t.Hash {
		return nil
	}
	return idx.Delete(key)
}

// ConsumeOneTimeToken returns the live token with that hash and purpose and
// deletes it in the same transaction. A token of another purpose is left
// alone and gives ErrNotFound.
func (d *DB) ConsumeOneTimeToken(ctx context.Context, hash, purpose string) (storage.OneTimeToken, error) {
	var t storage.OneTimeToken
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if t, err = d.liveOneTimeToken(tx, hash, purpose, "consume"); err != nil {
			return err
		}
		if err := deleteExpiry(tx, expOneTimeToken, t.ExpiresAt, hash); err != nil {
			return err
		}
		if err := forgetUserOneTimeToken(tx, t); err != nil {
			return err
		}
		return tx.Bucket(bOneTimeTokens).Delete([]byte(hash))
	})
	if err != nil {
		return storage.OneTimeToken{}, err
	}
	return t, nil
}

func (d *DB) PeekOneTimeToken(ctx context.Context, hash, purpose string) (storage.OneTimeToken, error) {
	var t storage.OneTimeToken
	err := d.db.View(func(tx *bbolt.Tx) error {
		var err error
		t, err = d.liveOneTimeToken(tx, hash, purpose, "peek")
		return err
	})
	if err != nil {
		return storage.OneTimeToken{}, err
	}
	return t, nil
}

func (d *DB) UserOneTimeToken(ctx context.Context, userID, purpose string) (storage.OneTimeToken, error) {
	var t storage.OneTimeToken
	err := d.db.View(func(tx *bbolt.Tx) error {
		hash := tx.Bucket(bOneTimeByUser).Get(oneTimeByUserKey(userID, purpose))
		if hash == nil {
			return fmt.Errorf("user one-time token for %q: %w", purpose, storage.ErrNotFound)
		}
		var err error
		t, err = d.liveOneTimeToken(tx, string(hash), purpose, "user")
		return err
	})
	if err != nil {
		return storage.OneTimeToken{}, err
	}
	return t, nil
}

func (d *DB) liveOneTimeToken(tx *bbolt.Tx, hash, purpose, op string) (storage.OneTimeToken, error) {
	var t storage.OneTimeToken
	ok, err := getJSON(tx.Bucket(bOneTimeTokens), hash, &t)
	if err != nil {
		return t, err
	}
	if !ok || t.Purpose != purpose || expired(t.ExpiresAt, d.now()) {
		return storage.OneTimeToken{}, fmt.Errorf("%s one-time token for %q: %w", op, purpose, storage.ErrNotFound)
	}
	return t, nil
}

// Login attempts.

// loginAttemptKey orders a user's attempts by time, oldest first.
func loginAttemptKey(a storage.LoginAttempt) []byte {
	k := append([]byte(a.UserID), 0)
	k = appendNanos(k, a.Time)
	return append(k, a.ID...)
}

// AddLoginAttempt records an attempt and drops the user's oldest ones beyond
// the newest 100. Attempts that matched no user share the user ID "".
func (d *DB) AddLoginAttempt(ctx context.Context, a storage.LoginAttempt) error {
	if a.ID == "" {
		return errors.New("add login attempt: empty ID")
	}
	return d.batch(func(tx *bbolt.Tx) error { return addLoginAttemptTx(tx, a) })
}

func addLoginAttemptTx(tx *bbolt.Tx, a storage.LoginAttempt) error {
	key := loginAttemptKey(a)
	b := tx.Bucket(bLoginAttempts)
	if err := putJSON(b, string(key), a); err != nil {
		return err
	}
	if err := putExpiry(tx, expLoginAttempt, a.Time, string(key)); err != nil {
		return err
	}
	keys := prefixKeys(b, a.UserID+"\x00")
	if len(keys) <= loginAttemptsCap {
		return nil
	}
	for _, k := range keys[:len(keys)-loginAttemptsCap] {
		var old storage.LoginAttempt
		if _, err := getJSON(b, string(k), &old); err != nil {
			return err
		}
		if err := deleteExpiry(tx, expLoginAttempt, old.Time, string(k)); err != nil {
			return err
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// ListLoginAttempts returns the user's attempts newest first, at most limit
// of them (all when limit <= 0).
func (d *DB) ListLoginAttempts(ctx context.Context, userID string, limit int) ([]storage.LoginAttempt, error) {
	var out []storage.LoginAttempt
	prefix := append([]byte(userID), 0)
	end := append([]byte(userID), 1) // first key after every key with prefix
	err := d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bLoginAttempts).Cursor()
		// The newest attempt is the last key before end.
		var k, v []byte
		if next, _ := c.Seek(end); next == nil {
			k, v = c.Last()
		} else {
			k, v = c.Prev()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, v = c.Prev() {
			if limit > 0 && len(out) >= limit {
				break
			}
			var a storage.LoginAttempt
			if err := json.Unmarshal(v, &a); err != nil {
				return fmt.Errorf("decode login attempt %q: %w", k, err)
			}
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list login attempts of user %q: %w", userID, err)
	}
	return out, nil
}

// Directories added on the admin page.

func (d *DB) PutDirectory(ctx context.Context, dir storage.Directory) error {
	if dir.ID == "" || dir.Type == "" {
		return errors.New("put directory: empty ID or type")
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bDirectories), dir.ID, dir)
	})
}

func (d *DB) GetDirectory(ctx context.Context, id string) (storage.Directory, error) {
	var dir storage.Directory
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bDirectories), id, &dir)
		if err == nil && !ok {
			err = notFound("get directory", id)
		}
		return err
	})
	if err != nil {
		return storage.Directory{}, err
	}
	return dir, nil
}

// ListDirectories returns every stored directory, oldest first.
func (d *DB) ListDirectories(ctx context.Context) ([]storage.Directory, error) {
	var out []storage.Directory
	err := d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bDirectories).ForEach(func(k, v []byte) error {
			var dir storage.Directory
			if err := json.Unmarshal(v, &dir); err != nil {
				return fmt.Errorf("decode directory %q: %w", k, err)
			}
			out = append(out, dir)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list directories: %w", err)
	}
	slices.SortStableFunc(out, func(a, b storage.Directory) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (d *DB) DeleteDirectory(ctx context.Context, id string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bDirectories)
		if !has(b, id) {
			return notFound("delete directory", id)
		}
		return b.Delete([]byte(id))
	})
}
