package bolt

import (
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// A database at schema 9 (before webhooks) gets the webhook buckets when
// it opens, and keeps them working.
func TestMigrateAddsWebhooks(t *testing.T) {
	path := fileAtSchema(t, 9)
	at := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	d := openTest(t, path, Options{Now: func() time.Time { return at }})
	w := storage.Webhook{ID: "w1", URL: "https://hooks.example/", CreatedAt: at}
	if err := d.CreateWebhook(t.Context(), w); err != nil {
		t.Fatalf("create webhook after migration: %v", err)
	}
	if _, err := d.RecordWebhookDelivery(t.Context(), "w1", storage.WebhookDelivery{MessageID: "m1", At: at}, nil); err != nil {
		t.Fatalf("record delivery after migration: %v", err)
	}
	if ws, err := d.ListWebhooksOf(t.Context(), ""); err != nil || len(ws) != 1 {
		t.Fatalf("list after migration: %+v, %v", ws, err)
	}
}
