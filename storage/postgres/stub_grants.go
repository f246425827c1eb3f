package postgres

// SCAFFOLDING, NOT DONE: the storage.Grants methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/keyport/keyport/storage"
)

func (d *DB) GetGrant(ctx context.Context, userID, clientID string) (_ storage.Grant, err error) {
	err = unsupported("GetGrant")
	return
}

func (d *DB) PutGrant(ctx context.Context, g storage.Grant, e *storage.AuditEvent, out ...storage.OutboxMessage) (err error) {
	err = unsupported("PutGrant")
	return
}

func (d *DB) ListGrants(ctx context.Context, userID string) (_ []storage.Grant, err error) {
	err = unsupported("ListGrants")
	return
}

func (d *DB) DeleteGrant(ctx context.Context, userID, clientID string) (err error) {
	err = unsupported("DeleteGrant")
	return
}
