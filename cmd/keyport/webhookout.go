package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/outbox"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/webhook"
)

// webhookDeliverer makes the outbox's webhook calls (account.OutboxWebhook)
// through account.WebhookService.Deliver; a call that retrying cannot cure
// fails at once.
type webhookDeliverer struct {
	hooks *account.WebhookService
}

func (d webhookDeliverer) Deliver(ctx context.Context, m storage.OutboxMessage) error {
	err := d.hooks.Deliver(ctx, m)
	if errors.Is(err, account.ErrWebhookGivenUp) {
		return outbox.Permanent(err)
	}
	return err
}

// enableWebhooks loads the webhooks, turns account events into their calls
// and registers the deliverer.
func (m *Main) enableWebhooks() error {
	guard, err := webhook.NewGuard(m.Config.Webhooks.AllowNetworks)
	if err != nil {
		return err
	}
	hooks, err := m.Accounts.EnableWebhooks(context.Background(), account.WebhookOptions{
		Store: m.Store, Guard: guard, MaxFailures: m.Config.Webhooks.MaxFailures,
	})
	if err != nil {
		return fmt.Errorf("webhooks: %w", err)
	}
	m.Outbox.Handle(account.OutboxWebhook, webhookDeliverer{hooks: hooks})
	return nil
}
