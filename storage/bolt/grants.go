package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// ListGrants returns the user's grants in client ID order (the key order
// of uid NUL cid).
func (d *DB) ListGrants(ctx context.Context, userID string) ([]storage.Grant, error) {
	if userID == "" {
		return nil, errors.New("list grants: empty user ID")
	}
	var out []storage.Grant
	err := d.db.View(func(tx *bbolt.Tx) error {
		prefix := []byte(userID + "\x00")
		c := tx.Bucket(bGrants).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var g storage.Grant
			if err := unmarshalJSON(k, v, &g); err != nil {
				return err
			}
			out = append(out, g)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list grants of user %q: %w", userID, err)
	}
	return out, nil
}

// DeleteGrant removes the grant of a user to a client.
func (d *DB) DeleteGrant(ctx context.Context, userID, clientID string) error {
	if userID == "" || clientID == "" {
		return errors.New("delete grant: empty user or client ID")
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		b, key := tx.Bucket(bGrants), []byte(join(userID, clientID))
		if b.Get(key) == nil {
			return fmt.Errorf("delete grant of user %q to client %q: %w", userID, clientID, storage.ErrNotFound)
		}
		if err := unindexClientRecord(tx, clientID, clientGrant, userID); err != nil {
			return err
		}
		return b.Delete(key)
	})
}

// touchGrantTx moves the LastUsedAt of a's user's grant to the app to a's
// creation, inside the write that stores a. Without a grant (an app that
// skips consent, a machine token) it only looks.
func touchGrantTx(tx *bbolt.Tx, a storage.AccessToken) error {
	if a.UserID == "" || a.ClientID == "" {
		return nil
	}
	b := tx.Bucket(bGrants)
	key := join(a.UserID, a.ClientID)
	var g storage.Grant
	ok, err := getJSON(b, key, &g)
	if err != nil || !ok || !a.CreatedAt.After(g.LastUsedAt) {
		return err
	}
	g.LastUsedAt = a.CreatedAt
	return putJSON(b, key, g)
}

// deleteUserGrantsTx deletes every grant of a user with its client index
// entries.
func deleteUserGrantsTx(tx *bbolt.Tx, userID string) error {
	b := tx.Bucket(bGrants)
	prefix := userID + "\x00"
	for _, k := range prefixKeys(b, prefix) {
		if err := unindexClientRecord(tx, string(k[len(prefix):]), clientGrant, userID); err != nil {
			return err
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

func unmarshalJSON(k, v []byte, into any) error {
	if err := json.Unmarshal(v, into); err != nil {
		return fmt.Errorf("decode %q: %w", k, err)
	}
	return nil
}
