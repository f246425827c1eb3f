package postgres

// SCAFFOLDING, NOT DONE: the storage.Audit methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"
	"time"

	"github.com/keyport/keyport/storage"
)

func (d *DB) AppendAudit(ctx context.Context, e storage.AuditEvent, out ...storage.OutboxMessage) (err error) {
	err = unsupported("AppendAudit")
	return
}

func (d *DB) ListAudit(ctx context.Context, q storage.AuditQuery) (_ []storage.AuditEvent, _ string, err error) {
	err = unsupported("ListAudit")
	return
}

func (d *DB) SweepAudit(ctx context.Context, before time.Time) (_ int, err error) {
	err = unsupported("SweepAudit")
	return
}
