package postgres

import (
	"bytes"
	"context"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateWebhook(ctx context.Context, w storage.Webhook) error {
	if w.ID == "" || w.URL == "" {
		return fmt.Errorf("create webhook %q: empty ID or URL: %w", w.ID, storage.ErrInvalid)
	}
	rec, err := marshal(w)
	if err != nil {
		return err
	}
	_, err = d.execNotify(ctx, storage.ChangeWebhooks, "INSERT INTO webhooks (id, owner_user_id, created_at, record) VALUES ($1, $2, $3, $4)",
		w.ID, w.OwnerUserID, w.CreatedAt, rec)
	return dbErr(fmt.Sprintf("create webhook %q", w.ID), err)
}

func (d *DB) GetWebhook(ctx context.Context, id string) (storage.Webhook, error) {
	w, err := scanRecord[storage.Webhook](d.pool.QueryRow(ctx, "SELECT record FROM webhooks WHERE id = $1", id))
	if err != nil {
		return storage.Webhook{}, dbErr(fmt.Sprintf("get webhook %q", id), err)
	}
	return w, nil
}

func (d *DB) listWebhooks(ctx context.Context, what, where string, args ...any) ([]storage.Webhook, error) {
	rows, err := d.pool.Query(ctx, "SELECT record FROM webhooks "+where+" ORDER BY created_at, id", args...)
	if err != nil {
		return nil, dbErr(what, err)
	}
	ws, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Webhook, error) { return scanRecord[storage.Webhook](r) })
	return ws, dbErr(what, err)
}

// ListWebhooks returns every webhook, oldest first.
func (d *DB) ListWebhooks(ctx context.Context) ([]storage.Webhook, error) {
	return d.listWebhooks(ctx, "list webhooks", "")
}

// ListWebhooksOf returns one owner's webhooks ("" for the admins'), oldest first.
func (d *DB) ListWebhooksOf(ctx context.Context, ownerUserID string) ([]storage.Webhook, error) {
	return d.listWebhooks(ctx, fmt.Sprintf("list webhooks of %q", ownerUserID), "WHERE owner_user_id = $1", ownerUserID)
}

func (d *DB) UpdateWebhook(ctx context.Context, id string, fn func(*storage.Webhook) error) (storage.Webhook, error) {
	var out storage.Webhook
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if out, err = updateWebhookTx(ctx, tx, id, fn); err != nil {
			return err
		}
		return notifyTx(ctx, tx, storage.ChangeWebhooks)
	})
	if err != nil {
		return storage.Webhook{}, dbErr(fmt.Sprintf("update webhook %q", id), err)
	}
	return out, nil
}

// updateWebhookTx applies fn (nil: no change) to the locked webhook; ID,
// owner and creation time stay as stored.
func updateWebhookTx(ctx context.Context, tx pgx.Tx, id string, fn func(*storage.Webhook) error) (storage.Webhook, error) {
	old, err := scanRecord[storage.Webhook](tx.QueryRow(ctx, "SELECT record FROM webhooks WHERE id = $1 FOR UPDATE", id))
	if err != nil || fn == nil {
		return old, err
	}
	w := old
	w.EventTypes = slices.Clone(old.EventTypes)
	w.SealedSecret = bytes.Clone(old.SealedSecret)
	if err := fn(&w); err != nil {
		return storage.Webhook{}, &callbackError{fmt.Errorf("update webhook %q: %w", id, err)}
	}
	w.ID, w.OwnerUserID, w.CreatedAt = old.ID, old.OwnerUserID, old.CreatedAt
	if w.URL == "" {
		return storage.Webhook{}, fmt.Errorf("empty URL: %w", storage.ErrInvalid)
	}
	rec, err := marshal(w)
	if err != nil {
		return storage.Webhook{}, err
	}
	_, err = tx.Exec(ctx, "UPDATE webhooks SET record = $2 WHERE id = $1", id, rec)
	return w, err
}

// DeleteWebhook removes the webhook; its log goes by the foreign key.
func (d *DB) DeleteWebhook(ctx context.Context, id string) error {
	tag, err := d.execNotify(ctx, storage.ChangeWebhooks, "DELETE FROM webhooks WHERE id = $1", id)
	return deleted("delete webhook", id, tag, err)
}

// RecordWebhookDelivery appends d to the webhook's log, keeping the newest
// storage.MaxWebhookDeliveries, and applies fn, in one transaction.
func (d *DB) RecordWebhookDelivery(ctx context.Context, id string, delivery storage.WebhookDelivery, fn func(*storage.Webhook) error) (storage.Webhook, error) {
	delivery.Error = storage.TruncateUTF8(delivery.Error, storage.MaxOutboxError)
	var out storage.Webhook
	disabledChanged := false // processes that deliver keep the Disabled switch in memory
	watched := fn
	if fn != nil {
		watched = func(w *storage.Webhook) error {
			before := w.Disabled
			err := fn(w)
			disabledChanged = w.Disabled != before
			return err
		}
	}
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if out, err = updateWebhookTx(ctx, tx, id, watched); err != nil {
			return err
		}
		if disabledChanged {
			if err := notifyTx(ctx, tx, storage.ChangeWebhooks); err != nil {
				return err
			}
		}
		rec, err := marshal(delivery)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "INSERT INTO webhook_deliveries (webhook_id, record) VALUES ($1, $2)", id, rec); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM webhook_deliveries WHERE webhook_id = $1 AND seq < (
			SELECT seq FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC OFFSET $2 LIMIT 1)`,
			id, storage.MaxWebhookDeliveries-1)
		return err
	})
	if err != nil {
		return storage.Webhook{}, dbErr(fmt.Sprintf("record delivery of webhook %q", id), err)
	}
	return out, nil
}

// ListWebhookDeliveries returns the webhook's log, newest first.
func (d *DB) ListWebhookDeliveries(ctx context.Context, id string) ([]storage.WebhookDelivery, error) {
	var out []storage.WebhookDelivery
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM webhooks WHERE id = $1", id).Scan(&one); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, "SELECT record FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY seq DESC", id)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.WebhookDelivery, error) {
			return scanRecord[storage.WebhookDelivery](r)
		})
		return err
	})
	if err != nil {
		return nil, dbErr(fmt.Sprintf("list deliveries of webhook %q", id), err)
	}
	return out, nil
}
