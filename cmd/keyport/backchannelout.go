package main

import (
	"context"
	"errors"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/outbox"
	"github.com/keyport/keyport/provider"
	"github.com/keyport/keyport/storage"
)

// backChannelDeliverer sends the outbox's back-channel logouts
// (account.OutboxBackChannelLogout): it signs a fresh logout token at each
// attempt and posts it to the app. An app that answers with a client error
// other than 429, or no longer exists, is not asked again.
type backChannelDeliverer struct {
	provider *provider.Provider
}

func (d backChannelDeliverer) Deliver(ctx context.Context, m storage.OutboxMessage) error {
	l, err := account.OpenBackChannelLogout(m.Payload)
	if err != nil {
		return outbox.Permanent(err)
	}
	err = d.provider.BackChannelLogout(ctx, l)
	var de *provider.LogoutDeliveryError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &de) && !de.Retry:
		return outbox.Permanent(err)
	case errors.Is(err, storage.ErrNotFound):
		return outbox.Permanent(err) // the app or the user is gone
	default:
		return err
	}
}

// enableBackChannelLogout registers the deliverer and has account queue
// a logout for the apps whenever sessions end.
func (m *Main) enableBackChannelLogout() {
	m.Outbox.Handle(account.OutboxBackChannelLogout, backChannelDeliverer{provider: m.Provider})
	m.Accounts.EnableBackChannelLogout(m.Store)
}

// enableLinkExpiry has the outbox report an administrator's link that
// expired unused (account.LinkExpired): its message is due when the link
// expires.
func (m *Main) enableLinkExpiry() {
	m.Outbox.Handle(account.OutboxLinkExpiry, outbox.DelivererFunc(func(ctx context.Context, msg storage.OutboxMessage) error {
		return m.Accounts.Admin.LinkExpired(ctx, msg.Payload)
	}))
}
