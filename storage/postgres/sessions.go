package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// live is the condition of a row whose expires_at has not come at $1.
const live = "(expires_at IS NULL OR expires_at > $1)"

func (d *DB) CreateSession(ctx context.Context, s storage.Session) error {
	err := d.inTx(ctx, func(tx pgx.Tx) error { return createSessionTx(ctx, tx, s) })
	return dbErr(fmt.Sprintf("create session %q", s.ID), err)
}

// createSessionTx stores a new session in tx (also for RecordSignIn).
func createSessionTx(ctx context.Context, tx pgx.Tx, s storage.Session) error {
	if s.ID == "" {
		return fmt.Errorf("empty ID: %w", storage.ErrInvalid)
	}
	rec, err := marshal(s)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "INSERT INTO sessions (id, user_id, created_at, expires_at, record) VALUES ($1, $2, $3, $4, $5)",
		s.ID, s.UserID, s.CreatedAt, orNull(s.ExpiresAt), rec)
	return err
}

func scanRecord[T any](r pgx.Row) (T, error) {
	var b []byte
	if err := r.Scan(&b); err != nil {
		var zero T
		return zero, err
	}
	return unmarshal[T](b)
}

func (d *DB) GetSession(ctx context.Context, id string) (storage.Session, error) {
	s, err := scanRecord[storage.Session](d.pool.QueryRow(ctx, "SELECT record FROM sessions WHERE "+live+" AND id = $2", d.now(), id))
	if err != nil {
		return storage.Session{}, dbErr(fmt.Sprintf("get session %q", id), err)
	}
	return s, nil
}

func (d *DB) DeleteSession(ctx context.Context, id string) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM sessions WHERE id = $1", id)
	return deleted("delete session", id, tag, err)
}

// DeleteUserSessions ends every session of the user, expired ones
// included, and counts them.
func (d *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	if userID == "" {
		return 0, fmt.Errorf("delete user sessions: empty user ID: %w", storage.ErrInvalid)
	}
	tag, err := d.pool.Exec(ctx, "DELETE FROM sessions WHERE user_id = $1", userID)
	if err != nil {
		return 0, dbErr(fmt.Sprintf("delete sessions of %q", userID), err)
	}
	return int(tag.RowsAffected()), nil
}

// ListUserSessions returns the user's live sessions, newest first.
func (d *DB) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	if userID == "" {
		return nil, fmt.Errorf("list user sessions: empty user ID: %w", storage.ErrInvalid)
	}
	rows, err := d.pool.Query(ctx, "SELECT record FROM sessions WHERE "+live+" AND user_id = $2 ORDER BY created_at DESC, id", d.now(), userID)
	if err != nil {
		return nil, dbErr(fmt.Sprintf("list sessions of %q", userID), err)
	}
	ss, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Session, error) { return scanRecord[storage.Session](r) })
	return ss, dbErr(fmt.Sprintf("list sessions of %q", userID), err)
}

// AddSessionClient records that clientID was issued tokens in session id.
func (d *DB) AddSessionClient(ctx context.Context, id, clientID string) error {
	if id == "" || clientID == "" {
		return fmt.Errorf("add session client: empty session or client ID: %w", storage.ErrInvalid)
	}
	err := d.inTx(ctx, func(tx pgx.Tx) error { return addSessionClientTx(ctx, tx, id, clientID, d.now()) })
	return dbErr(fmt.Sprintf("add client %q to session %q", clientID, id), err)
}

// addSessionClientTx appends clientID to the live session's ClientIDs in
// tx (also for CreateCodeTokens); the session row is locked meanwhile.
func addSessionClientTx(ctx context.Context, tx pgx.Tx, id, clientID string, now time.Time) error {
	s, err := scanRecord[storage.Session](tx.QueryRow(ctx, "SELECT record FROM sessions WHERE "+live+" AND id = $2 FOR UPDATE", now, id))
	if err != nil {
		return err
	}
	if slices.Contains(s.ClientIDs, clientID) {
		return nil
	}
	s.ClientIDs = append(s.ClientIDs, clientID)
	rec, err := marshal(s)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "UPDATE sessions SET record = $2 WHERE id = $1", id, rec)
	return err
}

func sweepSessions(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM sessions WHERE expires_at <= $1", now)
	rep.Sessions += int(tag.RowsAffected())
	return err
}
