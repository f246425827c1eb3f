package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

const (
	loginAttemptsCap = 100                 // kept per user
	loginAttemptsAge = 90 * 24 * time.Hour // kept for
)

// AddLoginAttempt records an attempt and drops the user's oldest beyond
// the newest loginAttemptsCap. Attempts that matched no user share the
// user ID "".
func (d *DB) AddLoginAttempt(ctx context.Context, a storage.LoginAttempt) error {
	return d.RecordAttempt(ctx, a, nil)
}

// RecordAttempt adds an attempt and its audit event in one transaction.
func (d *DB) RecordAttempt(ctx context.Context, a storage.LoginAttempt, e *storage.AuditEvent) error {
	if a.ID == "" {
		return fmt.Errorf("record attempt: empty ID: %w", storage.ErrInvalid)
	}
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		if err := addLoginAttemptTx(ctx, tx, a); err != nil {
			return err
		}
		return appendAuditTx(ctx, tx, e)
	})
	return dbErr(fmt.Sprintf("record attempt %q", a.ID), err)
}

// addLoginAttemptTx stores a in tx (also for RecordSignIn) and trims the
// user's history.
func addLoginAttemptTx(ctx context.Context, tx pgx.Tx, a storage.LoginAttempt) error {
	rec, err := marshal(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO login_attempts (user_id, at, id, record) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id, at, id) DO UPDATE SET record = excluded.record`, a.UserID, a.Time, a.ID, rec)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `DELETE FROM login_attempts WHERE user_id = $1 AND (at, id) < (
		SELECT at, id FROM login_attempts WHERE user_id = $1 ORDER BY at DESC, id DESC OFFSET $2 LIMIT 1)`,
		a.UserID, loginAttemptsCap-1)
	return err
}

// ListLoginAttempts returns the user's attempts newest first, at most limit
// of them (all when limit <= 0).
func (d *DB) ListLoginAttempts(ctx context.Context, userID string, limit int) ([]storage.LoginAttempt, error) {
	sql := "SELECT record FROM login_attempts WHERE user_id = $1 ORDER BY at DESC, id DESC"
	args := []any{userID}
	if limit > 0 {
		sql += " LIMIT $2"
		args = append(args, limit)
	}
	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, dbErr(fmt.Sprintf("list login attempts of %q", userID), err)
	}
	as, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.LoginAttempt, error) { return scanRecord[storage.LoginAttempt](r) })
	return as, dbErr(fmt.Sprintf("list login attempts of %q", userID), err)
}

func sweepLoginAttempts(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM login_attempts WHERE at <= $1", now.Add(-loginAttemptsAge))
	rep.LoginAttempts += int(tag.RowsAffected())
	return err
}
