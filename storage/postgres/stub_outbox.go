package postgres

// SCAFFOLDING, NOT DONE: the storage.Outbox methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/jackc/pgx/v5"
	"time"

	"github.com/keyport/keyport/storage"
)

func (d *DB) EnqueueOutbox(ctx context.Context, msgs ...storage.OutboxMessage) (err error) {
	err = unsupported("EnqueueOutbox")
	return
}

func (d *DB) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) (_ []storage.OutboxMessage, err error) {
	err = unsupported("ClaimOutbox")
	return
}

func (d *DB) CompleteOutbox(ctx context.Context, id string, at time.Time) (err error) {
	err = unsupported("CompleteOutbox")
	return
}

func (d *DB) RetryOutbox(ctx context.Context, id string, next time.Time, lastErr string) (err error) {
	err = unsupported("RetryOutbox")
	return
}

func (d *DB) FailOutbox(ctx context.Context, id string, at time.Time, lastErr string) (err error) {
	err = unsupported("FailOutbox")
	return
}

func (d *DB) ListOutbox(ctx context.Context, q storage.OutboxQuery) (_ []storage.OutboxMessage, _ string, err error) {
	err = unsupported("ListOutbox")
	return
}

func (d *DB) RetryFailedOutbox(ctx context.Context, id string, now time.Time) (_ storage.OutboxMessage, err error) {
	err = unsupported("RetryFailedOutbox")
	return
}

// enqueueOutboxTx stores msgs, checked as EnqueueOutbox checks them, in
// tx: for the methods that commit outbox messages with their change
// (UpdateCredential, and AppendAudit, PutGrant, CreateOneTimeToken,
// RecordSignIn when they land). Until the outbox area is written it
// refuses any message, so such a change is refused whole rather than
// committed without what it causes.
func enqueueOutboxTx(ctx context.Context, tx pgx.Tx, msgs []storage.OutboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	return unsupported("EnqueueOutbox")
}
