package bolt

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// Credentials live under "userID NUL credentialID", so a user's credentials
// are one prefix scan. Two unique indexes point back at that key: the hash
// of a secret (API tokens, app passwords, trusted devices) and a passkey's
// WebAuthn credential ID (hex).

func credentialKey(userID, id string) string { return join(userID, id) }

func (d *DB) CreateCredential(ctx context.Context, c storage.Credential) error {
	if c.ID == "" || c.UserID == "" || c.Kind == "" {
		return errors.New("create credential: empty ID, user ID or kind")
	}
	key := credentialKey(c.UserID, c.ID)
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bCredentials)
		if has(b, key) {
			return conflict("create credential", c.ID)
		}
		if c.Hash != "" && has(tx.Bucket(bCredentialsByHash), c.Hash) {
			return fmt.Errorf("create credential %q: secret hash: %w", c.ID, storage.ErrConflict)
		}
		wid := hex.EncodeToString(c.WebAuthnID)
		if wid != "" && has(tx.Bucket(bCredentialsByWebAuthn), wid) {
			return fmt.Errorf("create credential %q: webauthn ID: %w", c.ID, storage.ErrConflict)
		}
		if err := putJSON(b, key, c); err != nil {
			return err
		}
		if err := indexClientRecord(tx, c.ClientID, clientCredential, key); err != nil {
			return err
		}
		if c.Hash != "" {
			if err := tx.Bucket(bCredentialsByHash).Put([]byte(c.Hash), []byte(key)); err != nil {
				return err
			}
		}
		if wid != "" {
			if err := tx.Bucket(bCredentialsByWebAuthn).Put([]byte(wid), []byte(key)); err != nil {
				return err
			}
		}
		if !c.ExpiresAt.IsZero() {
			if err := putExpiry(tx, expCredential, c.ExpiresAt, key); err != nil {
				return err
			}
		}
		if c.Kind == storage.KindPasskey {
			return setPasskeyFlagTx(tx, c.UserID) // the user's two-factor flag
		}
		return nil
	})
}

// liveCredential reads the credential at key; an expired one is not found.
func (d *DB) liveCredential(tx *bbolt.Tx, key, op string) (storage.Credential, error) {
	var c storage.Credential
	ok, err := getJSON(tx.Bucket(bCredentials), key, &c)
	if err != nil {
		return c, fmt.Errorf("%s: %w", op, err)
	}
	if !ok || expired(c.ExpiresAt, d.now()) {
		return storage.Credential{}, notFound(op, strings.ReplaceAll(key, "\x00", "/"))
	}
	return c, nil
}

func (d *DB) GetCredential(ctx context.Context, userID, id string) (storage.Credential, error) {
	var c storage.Credential
	err := d.db.View(func(tx *bbolt.Tx) error {
		var err error
		c, err = d.liveCredential(tx, credentialKey(userID, id), "get credential")
		return err
	})
	return c, err
}

func (d *DB) getCredentialBy(index []byte, key, op string) (storage.Credential, error) {
	var c storage.Credential
	err := d.db.View(func(tx *bbolt.Tx) error {
		ref := tx.Bucket(index).Get([]byte(key))
		if ref == nil {
			return fmt.Errorf("%s: %w", op, storage.ErrNotFound)
		}
		var err error
		c, err = d.liveCredential(tx, string(ref), op)
		return err
	})
	return c, err
}

func (d *DB) GetCredentialByHash(ctx context.Context, hash string) (storage.Credential, error) {
	if hash == "" {
		return storage.Credential{}, fmt.Errorf("get credential by hash: %w", storage.ErrNotFound)
	}
	return d.getCredentialBy(bCredentialsByHash, hash, "get credential by hash")
}

func (d *DB) GetCredentialByWebAuthnID(ctx context.Context, webauthnID []byte) (storage.Credential, error) {
	if len(webauthnID) == 0 {
		return storage.Credential{}, fmt.Errorf("get passkey: %w", storage.ErrNotFound)
	}
	return d.getCredentialBy(bCredentialsByWebAuthn, hex.EncodeToString(webauthnID), "get passkey")
}

func (d *DB) ListCredentials(ctx context.Context, userID, kind string) ([]storage.Credential, error) {
	if userID == "" {
		return nil, errors.New("list credentials: empty user ID")
	}
	var out []storage.Credential
	now := d.now()
	err := d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bCredentials).Cursor()
		prefix := []byte(userID + "\x00")
		for k, v := c.Seek(prefix); k != nil && strings.HasPrefix(string(k), string(prefix)); k, v = c.Next() {
			var cr storage.Credential
			if err := json.Unmarshal(v, &cr); err != nil {
				return fmt.Errorf("decode credential %q: %w", k, err)
			}
			if (kind == "" || cr.Kind == kind) && !expired(cr.ExpiresAt, now) {
				out = append(out, cr)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list credentials of %q: %w", userID, err)
	}
	slices.SortStableFunc(out, func(a, b storage.Credential) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out, nil
}

func (d *DB) UpdateCredential(ctx context.Context, userID, id string, fn func(storage.Credential) (storage.Credential, error), msgs ...storage.OutboxMessage) (storage.Credential, error) {
	key := credentialKey(userID, id)
	w, err := newOutboxWrite(msgs)
	if err != nil {
		return storage.Credential{}, fmt.Errorf("update credential %q: %w", id, err)
	}
	var out storage.Credential
	err = d.db.Update(func(tx *bbolt.Tx) error {
		old, err := d.liveCredential(tx, key, "update credential")
		if err != nil {
			return err
		}
		if err := w.free(tx); err != nil {
			return err
		}
		arg, _ := d.liveCredential(tx, key, "update credential") // a second copy, so fn cannot alias old's slices
		nc, err := fn(arg)
		if err != nil {
			return fmt.Errorf("update credential %q: %w", id, err)
		}
		if nc.ID != old.ID || nc.UserID != old.UserID || nc.Kind != old.Kind || nc.Hash != old.Hash || !slices.Equal(nc.WebAuthnID, old.WebAuthnID) {
			return fmt.Errorf("update credential %q: ID, user, kind, hash and WebAuthn ID cannot change", id)
		}
		if !nc.ExpiresAt.Equal(old.ExpiresAt) {
			if err := moveExpiry(tx, expCredential, old.ExpiresAt, nc.ExpiresAt, key); err != nil {
				return err
			}
		}
		if nc.ClientID != old.ClientID {
			if err := unindexClientRecord(tx, old.ClientID, clientCredential, key); err != nil {
				return err
			}
			if err := indexClientRecord(tx, nc.ClientID, clientCredential, key); err != nil {
				return err
			}
		}
		out = nc
		if err := putJSON(tx.Bucket(bCredentials), key, nc); err != nil {
			return err
		}
		return w.put(tx)
	})
	if err != nil {
		return storage.Credential{}, err
	}
	return out, nil
}

// apiTokenKind is how an API token's kind reads in its JSON: the scan of
// ListExpiringTokens decodes only the records that hold it.
var apiTokenKind = []byte(`"kind":"` + storage.KindAPIToken + `"`)

// ListExpiringTokens scans every credential: it runs once a day, and the
// records that are not API tokens are skipped undecoded.
func (d *DB) ListExpiringTokens(ctx context.Context, from, before time.Time, limit int) ([]storage.Credential, error) {
	var out []storage.Credential
	now := d.now()
	err := d.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bCredentials).Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				return nil
			}
			if !bytes.Contains(v, apiTokenKind) {
				continue
			}
			var cr storage.Credential
			if err := json.Unmarshal(v, &cr); err != nil {
				return fmt.Errorf("decode credential %q: %w", k, err)
			}
			if cr.Kind != storage.KindAPIToken || cr.ValidUntil.IsZero() || !cr.ExpiryWarnedAt.IsZero() || expired(cr.ExpiresAt, now) {
				continue
			}
			if !cr.ValidUntil.Before(from) && cr.ValidUntil.Before(before) {
				out = append(out, cr)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list expiring API tokens: %w", err)
	}
	return out, nil
}

func (d *DB) DeleteCredential(ctx context.Context, userID, id string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		found, err := deleteCredentialTx(tx, credentialKey(userID, id))
		if err == nil && !found {
			err = notFound("delete credential", id)
		}
		return err
	})
}

func (d *DB) DeleteCredentials(ctx context.Context, userID, kind string) (int, error) {
	if userID == "" {
		return 0, errors.New("delete credentials: empty user ID")
	}
	n := 0
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		n, err = deleteUserCredentialsTx(tx, userID, kind)
		return err
	})
	return n, err
}

func deleteUserCredentialsTx(tx *bbolt.Tx, userID, kind string) (int, error) {
	b := tx.Bucket(bCredentials)
	n := 0
	for _, k := range prefixKeys(b, userID+"\x00") {
		if kind != "" {
			var c storage.Credential
			if _, err := getJSON(b, string(k), &c); err != nil {
				return n, err
			}
			if c.Kind != kind {
				continue
			}
		}
		found, err := deleteCredentialTx(tx, string(k))
		if err != nil {
			return n, err
		}
		n += count(found)
	}
	return n, nil
}

// deleteCredentialTx removes a credential with its index and expiry entries.
func deleteCredentialTx(tx *bbolt.Tx, key string) (bool, error) {
	b := tx.Bucket(bCredentials)
	var c storage.Credential
	ok, err := getJSON(b, key, &c)
	if err != nil || !ok {
		return false, err
	}
	if c.Hash != "" && string(tx.Bucket(bCredentialsByHash).Get([]byte(c.Hash))) == key {
		if err := tx.Bucket(bCredentialsByHash).Delete([]byte(c.Hash)); err != nil {
			return false, err
		}
	}
	if wid := hex.EncodeToString(c.WebAuthnID); wid != "" && string(tx.Bucket(bCredentialsByWebAuthn).Get([]byte(wid))) == key {
		if err := tx.Bucket(bCredentialsByWebAuthn).Delete([]byte(wid)); err != nil {
			return false, err
		}
	}
	if !c.ExpiresAt.IsZero() {
		if err := deleteExpiry(tx, expCredential, c.ExpiresAt, key); err != nil {
			return false, err
		}
	}
	if err := unindexClientRecord(tx, c.ClientID, clientCredential, key); err != nil {
		return false, err
	}
	if err := b.Delete([]byte(key)); err != nil {
		return false, err
	}
	if c.Kind == storage.KindPasskey {
		return true, setPasskeyFlagTx(tx, c.UserID) // the user's two-factor flag
	}
	return true, nil
}

func sweepCredential(tx *bbolt.Tx, key string, rep *storage.SweepReport) (int, error) {
	found, err := deleteCredentialTx(tx, key)
	rep.Credentials += count(found)
	return count(found), err
}

// Avatars.

func (d *DB) PutAvatar(ctx context.Context, a storage.Avatar) error {
	if a.UserID == "" {
		return errors.New("put avatar: empty user ID")
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		return putJSON(tx.Bucket(bAvatars), a.UserID, a)
	})
}

func (d *DB) GetAvatar(ctx context.Context, userID string) (storage.Avatar, error) {
	var a storage.Avatar
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bAvatars), userID, &a)
		if err == nil && !ok {
			err = notFound("get avatar", userID)
		}
		return err
	})
	if err != nil {
		return storage.Avatar{}, err
	}
	return a, nil
}

func (d *DB) DeleteAvatar(ctx context.Context, userID string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bAvatars)
		if !has(b, userID) {
			return notFound("delete avatar", userID)
		}
		return b.Delete([]byte(userID))
	})
}
