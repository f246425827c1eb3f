package postgres

// SCAFFOLDING, NOT DONE: the storage.Webhooks methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateWebhook(ctx context.Context, w storage.Webhook) (err error) {
	err = unsupported("CreateWebhook")
	return
}

func (d *DB) GetWebhook(ctx context.Context, id string) (_ storage.Webhook, err error) {
	err = unsupported("GetWebhook")
	return
}

func (d *DB) ListWebhooks(ctx context.Context) (_ []storage.Webhook, err error) {
	err = unsupported("ListWebhooks")
	return
}

func (d *DB) ListWebhooksOf(ctx context.Context, ownerUserID string) (_ []storage.Webhook, err error) {
	err = unsupported("ListWebhooksOf")
	return
}

func (d *DB) UpdateWebhook(ctx context.Context, id string, fn func(*storage.Webhook) error) (_ storage.Webhook, err error) {
	err = unsupported("UpdateWebhook")
	return
}

func (d *DB) DeleteWebhook(ctx context.Context, id string) (err error) {
	err = unsupported("DeleteWebhook")
	return
}

func (d *DB) RecordWebhookDelivery(ctx context.Context, id string, delivery storage.WebhookDelivery, fn func(*storage.Webhook) error) (_ storage.Webhook, err error) {
	err = unsupported("RecordWebhookDelivery")
	return
}

func (d *DB) ListWebhookDeliveries(ctx context.Context, id string) (_ []storage.WebhookDelivery, err error) {
	err = unsupported("ListWebhookDeliveries")
	return
}
