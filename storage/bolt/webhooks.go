package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// Webhooks (storage.Webhooks): the records in bWebhooks, an index by owner
// in bWebhooksByOwner, and each webhook's delivery log in
// bWebhookDeliveries under the webhook's ID and a sequence number, so the
// log reads in order and its oldest entries are the first keys.

func (d *DB) CreateWebhook(ctx context.Context, w storage.Webhook) error {
	if w.ID == "" || w.URL == "" {
		return errors.New("create webhook: empty ID or URL")
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bWebhooks)
		if has(b, w.ID) {
			return conflict("create webhook", w.ID)
		}
		if err := tx.Bucket(bWebhooksByOwner).Put([]byte(join(w.OwnerUserID, w.ID)), emptyValue); err != nil {
			return err
		}
		return putJSON(b, w.ID, w)
	})
}

func (d *DB) GetWebhook(ctx context.Context, id string) (storage.Webhook, error) {
	var w storage.Webhook
	err := d.db.View(func(tx *bbolt.Tx) error {
		var err error
		w, err = getWebhookTx(tx, id)
		return err
	})
	return w, err
}

func getWebhookTx(tx *bbolt.Tx, id string) (storage.Webhook, error) {
	var w storage.Webhook
	ok, err := getJSON(tx.Bucket(bWebhooks), id, &w)
	if err == nil && !ok {
		err = notFound("get webhook", id)
	}
	return w, err
}

func (d *DB) ListWebhooks(ctx context.Context) ([]storage.Webhook, error) {
	var out []storage.Webhook
	err := d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bWebhooks).ForEach(func(k, v []byte) error {
			var w storage.Webhook
			if err := json.Unmarshal(v, &w); err != nil {
				return fmt.Errorf("decode webhook %q: %w", k, err)
			}
			out = append(out, w)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks: %w", err)
	}
	sortWebhooks(out)
	return out, nil
}

func (d *DB) ListWebhooksOf(ctx context.Context, owner string) ([]storage.Webhook, error) {
	var out []storage.Webhook
	err := d.db.View(func(tx *bbolt.Tx) error {
		prefix := join(owner, "")
		for _, k := range prefixKeys(tx.Bucket(bWebhooksByOwner), prefix) {
			w, err := getWebhookTx(tx, string(k[len(prefix):]))
			if err != nil {
				return err
			}
			out = append(out, w)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list webhooks of %q: %w", owner, err)
	}
	sortWebhooks(out)
	return out, nil
}

func sortWebhooks(ws []storage.Webhook) {
	slices.SortStableFunc(ws, func(a, b storage.Webhook) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
}

func (d *DB) UpdateWebhook(ctx context.Context, id string, fn func(*storage.Webhook) error) (storage.Webhook, error) {
	var out storage.Webhook
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		out, err = updateWebhookTx(tx, id, fn)
		return err
	})
	return out, err
}

// updateWebhookTx applies fn to the stored webhook id, keeping what fn may
// not change.
func updateWebhookTx(tx *bbolt.Tx, id string, fn func(*storage.Webhook) error) (storage.Webhook, error) {
	old, err := getWebhookTx(tx, id)
	if err != nil {
		return storage.Webhook{}, err
	}
	if fn == nil {
		return old, nil
	}
	w := old
	w.EventTypes = slices.Clone(old.EventTypes)
	w.SealedSecret = bytes.Clone(old.SealedSecret)
	if err := fn(&w); err != nil {
		return storage.Webhook{}, &callbackError{err: err}
	}
	w.ID, w.OwnerUserID, w.CreatedAt = old.ID, old.OwnerUserID, old.CreatedAt
	if w.URL == "" {
		return storage.Webhook{}, fmt.Errorf("update webhook %q: empty URL", id)
	}
	return w, putJSON(tx.Bucket(bWebhooks), id, w)
}

func (d *DB) DeleteWebhook(ctx context.Context, id string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		w, err := getWebhookTx(tx, id)
		if err != nil {
			return err
		}
		return deleteWebhookTx(tx, w)
	})
}

func deleteWebhookTx(tx *bbolt.Tx, w storage.Webhook) error {
	if err := tx.Bucket(bWebhooksByOwner).Delete([]byte(join(w.OwnerUserID, w.ID))); err != nil {
		return err
	}
	logs := tx.Bucket(bWebhookDeliveries)
	if err := deleteKeys(logs, prefixKeys(logs, join(w.ID, ""))); err != nil {
		return err
	}
	return tx.Bucket(bWebhooks).Delete([]byte(w.ID))
}

// deleteUserWebhooksTx deletes the webhooks user id registered for their
// own account (DeleteUser): nobody is left to hear of it.
func deleteUserWebhooksTx(tx *bbolt.Tx, userID string) error {
	for _, k := range prefixKeys(tx.Bucket(bWebhooksByOwner), join(userID, "")) {
		_, hookID, _ := strings.Cut(string(k), "\x00")
		w, err := getWebhookTx(tx, hookID)
		if err != nil {
			return err
		}
		if err := deleteWebhookTx(tx, w); err != nil {
			return err
		}
	}
	return nil
}

func (d *DB) RecordWebhookDelivery(ctx context.Context, id string, del storage.WebhookDelivery, fn func(*storage.Webhook) error) (storage.Webhook, error) {
	if len(del.Error) > storage.MaxOutboxError {
		del.Error = storage.TruncateUTF8(del.Error, storage.MaxOutboxError)
	}
	var out storage.Webhook
	err := d.batch(func(tx *bbolt.Tx) error {
		var err error
		if out, err = updateWebhookTx(tx, id, fn); err != nil {
			return err
		}
		logs := tx.Bucket(bWebhookDeliveries)
		seq, err := logs.NextSequence()
		if err != nil {
			return err
		}
		key := binary.BigEndian.AppendUint64([]byte(join(id, "")), seq)
		if err := putJSON(logs, string(key), del); err != nil {
			return err
		}
		if keys := prefixKeys(logs, join(id, "")); len(keys) > storage.MaxWebhookDeliveries {
			return deleteKeys(logs, keys[:len(keys)-storage.MaxWebhookDeliveries])
		}
		return nil
	})
	if err != nil {
		return storage.Webhook{}, fmt.Errorf("record delivery of webhook %q: %w", id, err)
	}
	return out, nil
}

func (d *DB) ListWebhookDeliveries(ctx context.Context, id string) ([]storage.WebhookDelivery, error) {
	var out []storage.WebhookDelivery
	err := d.db.View(func(tx *bbolt.Tx) error {
		if _, err := getWebhookTx(tx, id); err != nil {
			return err
		}
		prefix := []byte(join(id, ""))
		c := tx.Bucket(bWebhookDeliveries).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var del storage.WebhookDelivery
			if err := json.Unmarshal(v, &del); err != nil {
				return fmt.Errorf("decode delivery %x: %w", k, err)
			}
			out = append(out, del)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries of webhook %q: %w", id, err)
	}
	slices.Reverse(out)
	return out, nil
}
