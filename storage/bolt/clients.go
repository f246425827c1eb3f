package bolt

import (
	"context"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

func (d *DB) CreateClient(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return fmt.Errorf("create client: empty ID")
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bClients)
		if has(b, c.ID) {
			return conflict("create client", c.ID)
		}
		return putJSON(b, c.ID, c)
	})
}

func (d *DB) GetClient(ctx context.Context, id string) (storage.Client, error) {
	var c storage.Client
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bClients), id, &c)
		if err == nil && !ok {
			err = notFound("get client", id)
		}
		return err
	})
	if err != nil {
		return storage.Client{}, err
	}
	return c, nil
}

// ListClients returns every stored client ordered by ID.
func (d *DB) ListClients(ctx context.Context) ([]storage.Client, error) {
	var clients []storage.Client
	err := d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bClients).ForEach(func(k, _ []byte) error {
			var c storage.Client
			if _, err := getJSON(tx.Bucket(bClients), string(k), &c); err != nil {
				return err
			}
			clients = append(clients, c)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list clients: %w", err)
	}
	return clients, nil
}

func (d *DB) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	var out storage.Client
	err := d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bClients)
		var c storage.Client
		ok, err := getJSON(b, id, &c)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("update client", id)
		}
		nc, err := fn(c)
		if err != nil {
			return fmt.Errorf("update client %q: %w", id, err)
		}
		if nc.ID != id {
			return fmt.Errorf("update client %q: the ID cannot change (got %q)", id, nc.ID)
		}
		out = nc
		return putJSON(b, id, nc)
	})
	if err != nil {
		return storage.Client{}, err
	}
	return out, nil
}

func (d *DB) DeleteClient(ctx context.Context, id string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bClients)
		if !has(b, id) {
			return notFound("delete client", id)
		}
		return b.Delete([]byte(id))
	})
}
