package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// CreateOneTimeToken stores t with the outbox messages carrying its link.
func (d *DB) CreateOneTimeToken(ctx context.Context, t storage.OneTimeToken, out ...storage.OutboxMessage) error {
	if t.Hash == "" {
		return fmt.Errorf("create one-time token: empty hash: %w", storage.ErrInvalid)
	}
	rec, err := marshal(t)
	if err != nil {
		return err
	}
	err = d.inTx(ctx, func(tx pgx.Tx) error {
		// A OnePerUser token takes the place of the user's earlier one, if
		// any (live or not): one statement, so concurrent creates for one
		// user leave exactly one. A taken hash still fails on the key.
		tag, err := tx.Exec(ctx, `INSERT INTO one_time_tokens (hash, purpose, user_id, one_per_user, expires_at, record) VALUES ($1, $2, $3, $4, $5, $6)
			ON CONFLICT (user_id, purpose) WHERE one_per_user
			DO UPDATE SET hash = EXCLUDED.hash, expires_at = EXCLUDED.expires_at, record = EXCLUDED.record
			WHERE one_time_tokens.hash <> EXCLUDED.hash`,
			t.Hash, t.Purpose, t.UserID, t.OnePerUser, orNull(t.ExpiresAt), rec)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 { // the user's token has this hash already
			return storage.ErrConflict
		}
		return enqueueOutboxTx(ctx, tx, out)
	})
	return dbErr(fmt.Sprintf("create one-time token for %q", t.Purpose), err)
}

// ConsumeOneTimeToken deletes the live token of that purpose and returns
// it: one statement, so of concurrent consumers exactly one gets it.
func (d *DB) ConsumeOneTimeToken(ctx context.Context, hash, purpose string) (storage.OneTimeToken, error) {
	t, err := scanRecord[storage.OneTimeToken](d.pool.QueryRow(ctx,
		"DELETE FROM one_time_tokens WHERE "+live+" AND hash = $2 AND purpose = $3 RETURNING record", d.now(), hash, purpose))
	if err != nil {
		return storage.OneTimeToken{}, dbErr(fmt.Sprintf("consume one-time token for %q", purpose), err)
	}
	return t, nil
}

func (d *DB) PeekOneTimeToken(ctx context.Context, hash, purpose string) (storage.OneTimeToken, error) {
	t, err := scanRecord[storage.OneTimeToken](d.pool.QueryRow(ctx,
		"SELECT record FROM one_time_tokens WHERE "+live+" AND hash = $2 AND purpose = $3", d.now(), hash, purpose))
	if err != nil {
		return storage.OneTimeToken{}, dbErr(fmt.Sprintf("peek one-time token for %q", purpose), err)
	}
	return t, nil
}

func (d *DB) UserOneTimeToken(ctx context.Context, userID, purpose string) (storage.OneTimeToken, error) {
	t, err := scanRecord[storage.OneTimeToken](d.pool.QueryRow(ctx,
		"SELECT record FROM one_time_tokens WHERE "+live+" AND one_per_user AND user_id = $2 AND purpose = $3", d.now(), userID, purpose))
	if err != nil {
		return storage.OneTimeToken{}, dbErr(fmt.Sprintf("user one-time token for %q", purpose), err)
	}
	return t, nil
}

func sweepOneTimeTokens(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM one_time_tokens WHERE expires_at <= $1", now)
	rep.OneTimeTokens += int(tag.RowsAffected())
	return err
}
