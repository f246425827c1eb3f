package postgres

// SCAFFOLDING, NOT DONE: the storage.OneTimeTokens methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateOneTimeToken(ctx context.Context, t storage.OneTimeToken, out ...storage.OutboxMessage) (err error) {
	err = unsupported("CreateOneTimeToken")
	return
}

func (d *DB) ConsumeOneTimeToken(ctx context.Context, hash, purpose string) (_ storage.OneTimeToken, err error) {
	err = unsupported("ConsumeOneTimeToken")
	return
}

func (d *DB) PeekOneTimeToken(ctx context.Context, hash, purpose string) (_ storage.OneTimeToken, err error) {
	err = unsupported("PeekOneTimeToken")
	return
}
