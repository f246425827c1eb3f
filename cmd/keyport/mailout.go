package main

import (
	"context"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/mail"
	"github.com/keyport/keyport/outbox"
	"github.com/keyport/keyport/storage"
)

// mailDeliverer sends the outbox's mail messages (account.OutboxMail): it
// opens the sealed message and hands it to the SMTP server. A message that
// cannot be opened, or that the server refuses for good (a 5xx answer),
// fails at once; anything else is retried by the worker.
type mailDeliverer struct {
	sealer account.Sealer
	sender *mail.Sender
}

func (d mailDeliverer) Deliver(ctx context.Context, m storage.OutboxMessage) error {
	msg, err := account.OpenMail(d.sealer, m.Payload)
	if err != nil {
		return outbox.Permanent(err)
	}
	if err := d.sender.Send(ctx, msg); err != nil {
		if mail.IsPermanent(err) {
			return outbox.Permanent(err)
		}
		return err
	}
	return nil
}

// enableMail registers the mail deliverer and turns on the flows that send
// mail, when [mail] is configured.
func (m *Main) enableMail() error {
	if !m.Config.Mail.Enabled() {
		return nil
	}
	sender, err := newMailSender(m.Config)
	if err != nil {
		return err
	}
	templates, err := mailTemplates()
	if err != nil {
		return err
	}
	m.Outbox.Handle(account.OutboxMail, mailDeliverer{sealer: m.sealer, sender: sender})
	m.Accounts.EnableMail(templates)
	return nil
}
