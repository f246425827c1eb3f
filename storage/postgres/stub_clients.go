package postgres

// SCAFFOLDING, NOT DONE: the storage.Clients methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateClient(ctx context.Context, c storage.Client) (err error) {
	err = unsupported("CreateClient")
	return
}

func (d *DB) GetClient(ctx context.Context, id string) (_ storage.Client, err error) {
	err = unsupported("GetClient")
	return
}

func (d *DB) ListClients(ctx context.Context) (_ []storage.Client, err error) {
	err = unsupported("ListClients")
	return
}

func (d *DB) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) (_ storage.Client, err error) {
	err = unsupported("UpdateClient")
	return
}

func (d *DB) UpdateClientRevokingTokens(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) (_ storage.Client, _ int, err error) {
	err = unsupported("UpdateClientRevokingTokens")
	return
}

func (d *DB) DeleteClient(ctx context.Context, id string) (err error) {
	err = unsupported("DeleteClient")
	return
}
