package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// clientRecords are the statements DeleteClient runs in its transaction
// to delete what was issued to the client or is bound to it ($1 is the
// client's ID). An area whose records belong to a client adds its
// statement here when its table lands.
var clientRecords = []string{
	"DELETE FROM credentials WHERE client_id = $1",
	"DELETE FROM grants WHERE client_id = $1",
	"DELETE FROM access_tokens WHERE client_id = $1",
	"DELETE FROM refresh_families WHERE client_id = $1",
	"DELETE FROM auth_requests WHERE client_id = $1", // their codes go by the foreign key
	"DELETE FROM redeemed_codes WHERE client_id = $1",
}

func scanClient(r pgx.Row) (storage.Client, error) {
	var b []byte
	if err := r.Scan(&b); err != nil {
		return storage.Client{}, err
	}
	return unmarshal[storage.Client](b)
}

func (d *DB) CreateClient(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return fmt.Errorf("create client: empty ID: %w", storage.ErrInvalid)
	}
	rec, err := marshal(c)
	if err != nil {
		return err
	}
	// The notice drops what other processes may still hold of a client
	// of this ID that was deleted moments ago.
	_, err = d.execNotify(ctx, storage.ChangeClients, "INSERT INTO clients (id, record) VALUES ($1, $2)", c.ID, rec)
	d.clients.drop()
	return dbErr(fmt.Sprintf("create client %q", c.ID), err)
}

// GetClient reads a client, from the cache when it holds it
// (clientcache.go).
func (d *DB) GetClient(ctx context.Context, id string) (storage.Client, error) {
	now := time.Now()
	rec, gen, ok := d.clients.get(id, now)
	if !ok {
		d.startClientWatch()
		if err := d.pool.QueryRow(ctx, "SELECT record FROM clients WHERE id = $1", id).Scan(&rec); err != nil {
			return storage.Client{}, dbErr(fmt.Sprintf("get client %q", id), err)
		}
		d.clients.put(id, rec, gen, now)
	}
	c, err := unmarshal[storage.Client](rec)
	if err != nil {
		return storage.Client{}, fmt.Errorf("get client %q: %w", id, err)
	}
	return c, nil
}

// ListClients returns every stored client ordered by ID.
func (d *DB) ListClients(ctx context.Context) ([]storage.Client, error) {
	rows, err := d.pool.Query(ctx, "SELECT record FROM clients ORDER BY id")
	if err != nil {
		return nil, dbErr("list clients", err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Client, error) { return scanClient(r) })
	return cs, dbErr("list clients", err)
}

func (d *DB) UpdateClient(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	var out storage.Client
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = updateClientTx(ctx, tx, id, fn)
		return err
	})
	d.clients.drop()
	if err != nil {
		return storage.Client{}, dbErr(fmt.Sprintf("update client %q", id), err)
	}
	return out, nil
}

// UpdateClientRevokingTokens is UpdateClient that also deletes every token
// issued to the client, in the same transaction.
func (d *DB) UpdateClientRevokingTokens(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) (storage.Client, int, error) {
	var out storage.Client
	var n int
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		if out, err = updateClientTx(ctx, tx, id, fn); err != nil {
			return err
		}
		n, err = revokeClientTokensTx(ctx, tx, id)
		return err
	})
	d.clients.drop()
	if err != nil {
		return storage.Client{}, 0, dbErr(fmt.Sprintf("update client %q revoking its tokens", id), err)
	}
	return out, n, nil
}

// updateClientTx applies fn to the locked client in tx.
func updateClientTx(ctx context.Context, tx pgx.Tx, id string, fn func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	var rec []byte
	if err := tx.QueryRow(ctx, "SELECT record FROM clients WHERE id = $1 FOR UPDATE", id).Scan(&rec); err != nil {
		return storage.Client{}, err
	}
	arg, err := unmarshal[storage.Client](rec)
	if err != nil {
		return storage.Client{}, err
	}
	nc, err := fn(arg)
	if err != nil {
		return storage.Client{}, &callbackError{fmt.Errorf("update client %q: %w", id, err)}
	}
	if nc.ID != id {
		return storage.Client{}, fmt.Errorf("the ID cannot change (got %q): %w", nc.ID, storage.ErrInvalid)
	}
	if rec, err = marshal(nc); err != nil {
		return storage.Client{}, err
	}
	if _, err := tx.Exec(ctx, "UPDATE clients SET record = $2 WHERE id = $1", id, rec); err != nil {
		return storage.Client{}, err
	}
	return nc, notifyTx(ctx, tx, storage.ChangeClients)
}

// DeleteClient deletes the client with everything issued to it or bound
// to it (clientRecords), in one transaction.
func (d *DB) DeleteClient(ctx context.Context, id string) error {
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, "DELETE FROM clients WHERE id = $1", id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		for _, stmt := range clientRecords {
			if _, err := tx.Exec(ctx, stmt, id); err != nil {
				return err
			}
		}
		return notifyTx(ctx, tx, storage.ChangeClients)
	})
	d.clients.drop()
	return dbErr(fmt.Sprintf("delete client %q", id), err)
}
