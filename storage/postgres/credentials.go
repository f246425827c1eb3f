package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// Credentials: the record as JSON beside the columns they are found by.
// The unique hash and webauthn_id columns (NULL when unset) make a taken
// secret or passkey a unique violation.

// orNullString stores "" as NULL, which a unique column lets repeat.
func orNullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func orNullBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func (d *DB) CreateCredential(ctx context.Context, c storage.Credential) error {
	if c.ID == "" || c.UserID == "" || c.Kind == "" {
		return fmt.Errorf("create credential %q: empty ID, user ID or kind: %w", c.ID, storage.ErrInvalid)
	}
	rec, err := marshal(c)
	if err != nil {
		return err
	}
	_, err = d.pool.Exec(ctx, `INSERT INTO credentials (id, user_id, kind, hash, webauthn_id, client_id, created_at, expires_at, valid_until, warned, record)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		c.ID, c.UserID, c.Kind, orNullString(c.Hash), orNullBytes(c.WebAuthnID), c.ClientID, c.CreatedAt,
		orNull(c.ExpiresAt), orNull(c.ValidUntil), !c.ExpiryWarnedAt.IsZero(), rec)
	return dbErr(fmt.Sprintf("create credential %q", c.ID), err)
}

func scanCredential(r pgx.Row) (storage.Credential, error) {
	var b []byte
	if err := r.Scan(&b); err != nil {
		return storage.Credential{}, err
	}
	return unmarshal[storage.Credential](b)
}

func (d *DB) getCredential(ctx context.Context, what, where string, args ...any) (storage.Credential, error) {
	c, err := scanCredential(d.pool.QueryRow(ctx, "SELECT record FROM credentials WHERE "+live+" AND "+where, append([]any{d.now()}, args...)...))
	if err != nil {
		return storage.Credential{}, dbErr(what, err)
	}
	return c, nil
}

func (d *DB) GetCredential(ctx context.Context, userID, id string) (storage.Credential, error) {
	return d.getCredential(ctx, fmt.Sprintf("get credential %q of %q", id, userID), "user_id = $2 AND id = $3", userID, id)
}

func (d *DB) GetCredentialByHash(ctx context.Context, hash string) (storage.Credential, error) {
	if hash == "" {
		return storage.Credential{}, fmt.Errorf("get credential by hash: %w", storage.ErrNotFound)
	}
	return d.getCredential(ctx, "get credential by hash", "hash = $2", hash)
}

func (d *DB) GetCredentialByWebAuthnID(ctx context.Context, webauthnID []byte) (storage.Credential, error) {
	if len(webauthnID) == 0 {
		return storage.Credential{}, fmt.Errorf("get passkey: %w", storage.ErrNotFound)
	}
	return d.getCredential(ctx, "get passkey", "webauthn_id = $2", webauthnID)
}

func (d *DB) listCredentials(ctx context.Context, what, where string, args ...any) ([]storage.Credential, error) {
	rows, err := d.pool.Query(ctx, "SELECT record FROM credentials WHERE "+live+" AND "+where, append([]any{d.now()}, args...)...)
	if err != nil {
		return nil, dbErr(what, err)
	}
	cs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Credential, error) { return scanCredential(r) })
	return cs, dbErr(what, err)
}

// ListCredentials returns a user's live credentials of kind ("" for all),
// oldest first.
func (d *DB) ListCredentials(ctx context.Context, userID, kind string) ([]storage.Credential, error) {
	if userID == "" {
		return nil, fmt.Errorf("list credentials: empty user ID: %w", storage.ErrInvalid)
	}
	return d.listCredentials(ctx, fmt.Sprintf("list credentials of %q", userID),
		"user_id = $2 AND ($3 = '' OR kind = $3) ORDER BY created_at, id", userID, kind)
}

// UpdateCredential applies fn to the locked credential and commits the
// outbox messages with the change.
func (d *DB) UpdateCredential(ctx context.Context, userID, id string, fn func(storage.Credential) (storage.Credential, error), msgs ...storage.OutboxMessage) (storage.Credential, error) {
	var out storage.Credential
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var rec []byte
		err := tx.QueryRow(ctx, "SELECT record FROM credentials WHERE "+live+" AND user_id = $2 AND id = $3 FOR UPDATE",
			d.now(), userID, id).Scan(&rec)
		if err != nil {
			return err
		}
		old, err := unmarshal[storage.Credential](rec)
		if err != nil {
			return err
		}
		arg, _ := unmarshal[storage.Credential](rec) // a second copy, so fn cannot alias old's slices
		nc, err := fn(arg)
		if err != nil {
			return &callbackError{fmt.Errorf("update credential %q: %w", id, err)}
		}
		if nc.ID != old.ID || nc.UserID != old.UserID || nc.Kind != old.Kind || nc.Hash != old.Hash || !slices.Equal(nc.WebAuthnID, old.WebAuthnID) {
			return fmt.Errorf("ID, user, kind, hash and WebAuthn ID cannot change: %w", storage.ErrInvalid)
		}
		if rec, err = marshal(nc); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE credentials SET client_id = $3, created_at = $4, expires_at = $5, valid_until = $6, warned = $7, record = $8
			WHERE user_id = $1 AND id = $2`,
			userID, id, nc.ClientID, nc.CreatedAt, orNull(nc.ExpiresAt), orNull(nc.ValidUntil), !nc.ExpiryWarnedAt.IsZero(), rec)
		if err != nil {
			return err
		}
		if err := enqueueOutboxTx(ctx, tx, msgs); err != nil {
			return err
		}
		out = nc
		return nil
	})
	if err != nil {
		return storage.Credential{}, dbErr(fmt.Sprintf("update credential %q of %q", id, userID), err)
	}
	return out, nil
}

// ListExpiringTokens reads the partial index of unwarned API tokens.
func (d *DB) ListExpiringTokens(ctx context.Context, from, before time.Time, limit int) ([]storage.Credential, error) {
	where := "kind = $2 AND NOT warned AND valid_until >= $3 AND valid_until < $4 ORDER BY valid_until, user_id, id"
	args := []any{storage.KindAPIToken, from, before}
	if limit > 0 {
		where += " LIMIT $5"
		args = append(args, limit)
	}
	return d.listCredentials(ctx, "list expiring API tokens", where, args...)
}

func (d *DB) DeleteCredential(ctx context.Context, userID, id string) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM credentials WHERE user_id = $1 AND id = $2", userID, id)
	return deleted("delete credential", id, tag, err)
}

// DeleteCredentials deletes a user's credentials of kind ("" for all),
// expired ones too, and counts them.
func (d *DB) DeleteCredentials(ctx context.Context, userID, kind string) (int, error) {
	if userID == "" {
		return 0, fmt.Errorf("delete credentials: empty user ID: %w", storage.ErrInvalid)
	}
	tag, err := d.pool.Exec(ctx, "DELETE FROM credentials WHERE user_id = $1 AND ($2 = '' OR kind = $2)", userID, kind)
	if err != nil {
		return 0, dbErr(fmt.Sprintf("delete credentials of %q", userID), err)
	}
	return int(tag.RowsAffected()), nil
}

func sweepCredentials(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM credentials WHERE expires_at <= $1", now)
	rep.Credentials += int(tag.RowsAffected())
	return err
}
