package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

const grantColumns = "user_id, client_id, scopes, created_at, updated_at, last_used_at"

func scanGrant(r pgx.Row) (storage.Grant, error) {
	var g storage.Grant
	var lastUsed *time.Time
	err := r.Scan(&g.UserID, &g.ClientID, &g.Scopes, &g.CreatedAt, &g.UpdatedAt, &lastUsed)
	g.CreatedAt, g.UpdatedAt, g.LastUsedAt = utc(g.CreatedAt), utc(g.UpdatedAt), fromNull(lastUsed)
	return g, err
}

func (d *DB) GetGrant(ctx context.Context, userID, clientID string) (storage.Grant, error) {
	g, err := scanGrant(d.pool.QueryRow(ctx, "SELECT "+grantColumns+" FROM grants WHERE user_id = $1 AND client_id = $2", userID, clientID))
	if err != nil {
		return storage.Grant{}, dbErr(fmt.Sprintf("get grant of %q to %q", userID, clientID), err)
	}
	return g, nil
}

// PutGrant creates or replaces the grant, with its audit event and the
// event's outbox messages in the same transaction.
func (d *DB) PutGrant(ctx context.Context, g storage.Grant, e *storage.AuditEvent, out ...storage.OutboxMessage) error {
	if g.UserID == "" || g.ClientID == "" {
		return fmt.Errorf("put grant: empty user or client ID: %w", storage.ErrInvalid)
	}
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO grants (`+grantColumns+`) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, created_at = excluded.created_at,
				updated_at = excluded.updated_at, last_used_at = excluded.last_used_at`,
			g.UserID, g.ClientID, g.Scopes, g.CreatedAt, g.UpdatedAt, orNull(g.LastUsedAt))
		if err != nil {
			return err
		}
		if err := appendAuditTx(ctx, tx, e); err != nil {
			return err
		}
		return enqueueOutboxTx(ctx, tx, out)
	})
	return dbErr(fmt.Sprintf("put grant of %q to %q", g.UserID, g.ClientID), err)
}

// ListGrants returns the user's grants by client ID.
func (d *DB) ListGrants(ctx context.Context, userID string) ([]storage.Grant, error) {
	if userID == "" {
		return nil, fmt.Errorf("list grants: empty user ID: %w", storage.ErrInvalid)
	}
	rows, err := d.pool.Query(ctx, "SELECT "+grantColumns+" FROM grants WHERE user_id = $1 ORDER BY client_id", userID)
	if err != nil {
		return nil, dbErr(fmt.Sprintf("list grants of %q", userID), err)
	}
	gs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Grant, error) { return scanGrant(r) })
	return gs, dbErr(fmt.Sprintf("list grants of %q", userID), err)
}

func (d *DB) DeleteGrant(ctx context.Context, userID, clientID string) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM grants WHERE user_id = $1 AND client_id = $2", userID, clientID)
	return deleted("delete grant to "+clientID+" of", userID, tag, err)
}

// touchGrantTx moves the LastUsedAt of a's user's grant to the app to a's
// creation, never back, in the transaction that stores a (for the tokens
// area: CreateTokens, RotateRefreshToken, …). Without a grant it changes
// nothing.
func touchGrantTx(ctx context.Context, tx pgx.Tx, a storage.AccessToken) error {
	if a.UserID == "" || a.ClientID == "" {
		return nil
	}
	_, err := tx.Exec(ctx, `UPDATE grants SET last_used_at = $3
		WHERE user_id = $1 AND client_id = $2 AND (last_used_at IS NULL OR last_used_at < $3)`, a.UserID, a.ClientID, a.CreatedAt)
	return err
}
