package postgres

// SCAFFOLDING, NOT DONE: the storage.LoginAttempts methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/keyport/keyport/storage"
)

func (d *DB) AddLoginAttempt(ctx context.Context, a storage.LoginAttempt) (err error) {
	err = unsupported("AddLoginAttempt")
	return
}

func (d *DB) RecordAttempt(ctx context.Context, a storage.LoginAttempt, audit *storage.AuditEvent) (err error) {
	err = unsupported("RecordAttempt")
	return
}

func (d *DB) ListLoginAttempts(ctx context.Context, userID string, limit int) (_ []storage.LoginAttempt, err error) {
	err = unsupported("ListLoginAttempts")
	return
}
