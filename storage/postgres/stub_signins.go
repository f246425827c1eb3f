package postgres

// SCAFFOLDING, NOT DONE: the storage.SignIns methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/keyport/keyport/storage"
)

func (d *DB) RecordSignIn(ctx context.Context, w storage.SignInWrite) (_ storage.User, err error) {
	err = unsupported("RecordSignIn")
	return
}
