package bolt

import (
	"bytes"
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
		ok, err := getMemo(tx.Bucket(bClients), d.memos.clients, id, &c)
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
		var err error
		out, err = updateClientTx(tx, id, fn)
		return err
	})
	if err != nil {
		return storage.Client{}, err
	}
	return out, nil
}

// UpdateClientRevokingTokens applies fn to the client and deletes every
// token issued to it, in one transaction.
func (d *DB) UpdateClientRevokingTokens(ctx context.Context, id string, fn func(storage.Client) (storage.Client, error)) (storage.Client, int, error) {
	var out storage.Client
	var n int
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		if out, err = updateClientTx(tx, id, fn); err != nil {
			return err
		}
		n, err = deleteClientRecordsTx(tx, id, clientScope{tokens: true})
		if err != nil {
			return fmt.Errorf("revoke the tokens of client %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return storage.Client{}, 0, err
	}
	return out, n, nil
}

func updateClientTx(tx *bbolt.Tx, id string, fn func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	b := tx.Bucket(bClients)
	var c storage.Client
	ok, err := getJSON(b, id, &c)
	if err != nil {
		return storage.Client{}, err
	}
	if !ok {
		return storage.Client{}, notFound("update client", id)
	}
	nc, err := fn(c)
	if err != nil {
		return storage.Client{}, fmt.Errorf("update client %q: %w", id, err)
	}
	if nc.ID != id {
		return storage.Client{}, fmt.Errorf("update client %q: the ID cannot change (got %q)", id, nc.ID)
	}
	return nc, putJSON(b, id, nc)
}

// DeleteClient deletes the client, its tokens, the grants to it and the
// credentials restricted to it in one transaction of the main file, then
// its authorization requests (with their codes) and remembered code
// redemptions in the flow file. The flow file cannot share the first
// transaction; what a failure there leaves behind expires within minutes,
// and the provider refuses a request whose client is gone.
func (d *DB) DeleteClient(ctx context.Context, id string) error {
	err := d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bClients)
		if !has(b, id) {
			return notFound("delete client", id)
		}
		if _, err := deleteClientRecordsTx(tx, id, clientScope{tokens: true, bound: true}); err != nil {
			return fmt.Errorf("delete client %q: %w", id, err)
		}
		return b.Delete([]byte(id))
	})
	if err != nil {
		return err
	}
	if err := d.deleteClientFlows(id); err != nil {
		return fmt.Errorf("delete client %q: its pending sign-ins: %w", id, err)
	}
	return nil
}

// deleteClientFlows deletes the client's authorization requests and
// remembered redemptions. The flow file holds at most the pending limits'
// requests (and the codes redeemed in the last minutes), so reading all of
// it is bounded work.
func (d *DB) deleteClientFlows(id string) error {
	return d.flow.Update(func(tx *bbolt.Tx) error {
		var requests, redeemed [][]byte
		err := tx.Bucket(bAuthRequests).ForEach(func(k, v []byte) error {
			var a storage.AuthRequest
			if err := unmarshalJSON(k, v, &a); err != nil {
				return err
			}
			if a.ClientID == id {
				requests = append(requests, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bRedeemedCodes).ForEach(func(k, v []byte) error {
			var rc redeemedCode
			if err := unmarshalJSON(k, v, &rc); err != nil {
				return err
			}
			if rc.ClientID == id {
				redeemed = append(redeemed, bytes.Clone(k))
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, k := range requests {
			if _, err := deleteAuthRequestTx(tx, string(k)); err != nil {
				return err
			}
		}
		for _, k := range redeemed {
			var rc redeemedCode
			if _, err := getJSON(tx.Bucket(bRedeemedCodes), string(k), &rc); err != nil {
				return err
			}
			if err := deleteExpiry(tx, expRedeemedCode, rc.ExpiresAt, string(k)); err != nil {
				return err
			}
			if err := tx.Bucket(bRedeemedCodes).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}
