package postgres

// SCAFFOLDING, NOT DONE: the storage.Sessions methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateSession(ctx context.Context, s storage.Session) (err error) {
	err = unsupported("CreateSession")
	return
}

func (d *DB) GetSession(ctx context.Context, id string) (_ storage.Session, err error) {
	err = unsupported("GetSession")
	return
}

func (d *DB) DeleteSession(ctx context.Context, id string) (err error) {
	err = unsupported("DeleteSession")
	return
}

func (d *DB) DeleteUserSessions(ctx context.Context, userID string) (_ int, err error) {
	err = unsupported("DeleteUserSessions")
	return
}

func (d *DB) ListUserSessions(ctx context.Context, userID string) (_ []storage.Session, err error) {
	err = unsupported("ListUserSessions")
	return
}

func (d *DB) AddSessionClient(ctx context.Context, id, clientID string) (err error) {
	err = unsupported("AddSessionClient")
	return
}
