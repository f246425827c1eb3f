package postgres

// SCAFFOLDING, NOT DONE: the storage.Throttles methods not written yet. Each
// returns an error wrapping errors.ErrUnsupported. The engineer who
// writes the area deletes them from this file (and the file when it is
// empty); see the package doc.

import (
	"context"

	"github.com/keyport/keyport/storage"
)

func (d *DB) GetThrottles(ctx context.Context, keys ...string) (_ []storage.Throttle, err error) {
	err = unsupported("GetThrottles")
	return
}

func (d *DB) UpdateThrottles(ctx context.Context, keys []string, fn func(storage.Throttle) (storage.Throttle, error)) (err error) {
	err = unsupported("UpdateThrottles")
	return
}
