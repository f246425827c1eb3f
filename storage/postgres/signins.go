package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// RecordSignIn writes a sign-in (the user's update, the history entry,
// the session, the audit event and its outbox messages) in one
// transaction: the first refusal rolls all of it back.
func (d *DB) RecordSignIn(ctx context.Context, w storage.SignInWrite) (storage.User, error) {
	switch {
	case w.UserID == "" || w.Update == nil:
		return storage.User{}, errors.New("record sign-in: no user or no update")
	case w.Attempt.ID == "" || w.Attempt.UserID != w.UserID:
		return storage.User{}, fmt.Errorf("record sign-in of %q: the attempt has no ID or is another user's (%q): %w", w.UserID, w.Attempt.UserID, storage.ErrInvalid)
	case w.Session != nil && (w.Session.ID == "" || w.Session.UserID != w.UserID):
		return storage.User{}, fmt.Errorf("record sign-in of %q: the session has no ID or is another user's (%q): %w", w.UserID, w.Session.UserID, storage.ErrInvalid)
	}
	if w.Audit != nil {
		// Refuse a bad event before fn runs, as the other checks.
		e := *w.Audit
		if _, err := storage.EncodeAuditEvent(&e); err != nil {
			return storage.User{}, fmt.Errorf("record sign-in of %q: %w", w.UserID, err)
		}
	}
	var out storage.User
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		u, err := updateUserTx(ctx, tx, w.UserID, d.now(), w.Update)
		if err != nil {
			return err
		}
		if err := addLoginAttemptTx(ctx, tx, w.Attempt); err != nil {
			return fmt.Errorf("add login attempt: %w", err)
		}
		if w.Session != nil {
			if err := createSessionTx(ctx, tx, *w.Session); err != nil {
				return fmt.Errorf("create session: %w", err)
			}
		}
		if err := appendAuditTx(ctx, tx, w.Audit); err != nil {
			return fmt.Errorf("append audit event: %w", err)
		}
		if err := enqueueOutboxTx(ctx, tx, w.Outbox); err != nil {
			return fmt.Errorf("outbox: %w", err)
		}
		out = u
		return nil
	})
	if err != nil {
		return storage.User{}, dbErr(fmt.Sprintf("record sign-in of %q", w.UserID), err)
	}
	return out, nil
}
