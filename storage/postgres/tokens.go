package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// Refresh-token families: every operation on a family's links locks the
// link's row and then the family's (SELECT … FOR UPDATE, always in that
// order), so two rotations of one link, or a rotation and a retry, run one
// after the other: the second finds the link rotated.

// ns is t in Unix nanoseconds; NULL for the zero time (never).
func ns(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	n := t.UnixNano()
	return &n
}

func expired(t, now time.Time) bool { return !t.IsZero() && !now.Before(t) }

func liveRefresh(r storage.RefreshToken, now time.Time) bool {
	return r.RotatedAt.IsZero() && !expired(r.End(), now)
}

// staleSeal tells whether r holds a sealed value its grace no longer lets
// anyone use.
func staleSeal(r storage.RefreshToken, now time.Time) bool {
	return len(r.SealedValue) > 0 && !now.Before(r.GraceUntil)
}

func withoutStaleSeal(r storage.RefreshToken, now time.Time) storage.RefreshToken {
	if staleSeal(r, now) {
		r.SealedValue, r.GraceUntil = nil, time.Time{}
	}
	return r
}

// inherit fills an empty *field from the old link and refuses a different one.
func inherit(field *string, old, what string) error {
	switch *field {
	case "":
		*field = old
	case old:
	default:
		return fmt.Errorf("%s %q is not the old link's %q: %w", what, *field, old, storage.ErrInvalid)
	}
	return nil
}

func putAccessTx(ctx context.Context, tx pgx.Tx, a storage.AccessToken) error {
	rec, err := marshal(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, "INSERT INTO access_tokens (id, client_id, user_id, family_id, expires_ns, record) VALUES ($1, $2, $3, $4, $5, $6)",
		a.ID, a.ClientID, a.UserID, a.FamilyID, ns(a.ExpiresAt), rec)
	if err != nil {
		return err
	}
	return touchGrantTx(ctx, tx, a)
}

// putRefreshTx inserts link r (create) or rewrites the stored one.
func putRefreshTx(ctx context.Context, tx pgx.Tx, r storage.RefreshToken, create bool) error {
	rec, err := marshal(r)
	if err != nil {
		return err
	}
	var grace *int64
	if len(r.SealedValue) > 0 {
		grace = ns(r.GraceUntil)
	}
	args := []any{r.Hash, r.ID, r.FamilyID, !r.RotatedAt.IsZero(), grace, rec}
	if create {
		_, err = tx.Exec(ctx, "INSERT INTO refresh_tokens (hash, id, family_id, rotated, grace_ns, record) VALUES ($1, $2, $3, $4, $5, $6)", args...)
	} else {
		_, err = tx.Exec(ctx, "UPDATE refresh_tokens SET id = $2, family_id = $3, rotated = $4, grace_ns = $5, record = $6 WHERE hash = $1", args...)
	}
	return err
}

// CreateTokens stores access and, when refresh is not nil, the first link
// of a new family. access joins the new family (its FamilyID is filled in
// when empty); without refresh, an access token naming a family joins
// that existing family.
func (d *DB) CreateTokens(ctx context.Context, access storage.AccessToken, refresh *storage.RefreshToken) error {
	var err error
	if refresh == nil {
		err = d.createAccess(ctx, access)
	} else {
		err = d.inTx(ctx, func(tx pgx.Tx) error { return createTokensTx(ctx, tx, access, refresh) })
	}
	return dbErr(fmt.Sprintf("create tokens %q", access.ID), err)
}

// createAccess stores an access token alone (a client-credentials grant,
// a refresh's access token in the grace period) as one statement: one
// round trip and one commit instead of BEGIN, the checks, the insert and
// COMMIT. The family check and the grant's last use, which createTokensTx
// does in separate statements, ride along in it: the insert happens only
// if the family exists (none found: ErrNotFound, and nothing changes).
func (d *DB) createAccess(ctx context.Context, a storage.AccessToken) error {
	if a.ID == "" {
		return fmt.Errorf("empty access token ID: %w", storage.ErrInvalid)
	}
	rec, err := marshal(a)
	if err != nil {
		return err
	}
	tag, err := d.pool.Exec(ctx, `WITH family AS (
			SELECT $4::text = '' OR EXISTS (SELECT 1 FROM refresh_families WHERE id = $4) AS ok
		), touched AS (
			UPDATE grants SET last_used_at = $7
			WHERE $3::text <> '' AND $2::text <> '' AND user_id = $3 AND client_id = $2
				AND (last_used_at IS NULL OR last_used_at < $7) AND (SELECT ok FROM family)
			RETURNING 1
		)
		INSERT INTO access_tokens (id, client_id, user_id, family_id, expires_ns, record)
		SELECT $1, $2, $3, $4, $5, $6 WHERE (SELECT ok FROM family)`,
		a.ID, a.ClientID, a.UserID, a.FamilyID, ns(a.ExpiresAt), rec, a.CreatedAt)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return pgx.ErrNoRows // the family is gone
	}
	return nil
}

// createTokensTx is CreateTokens in tx (also for CreateCodeTokens).
func createTokensTx(ctx context.Context, tx pgx.Tx, access storage.AccessToken, refresh *storage.RefreshToken) error {
	if access.ID == "" {
		return fmt.Errorf("empty access token ID: %w", storage.ErrInvalid)
	}
	if refresh == nil {
		if access.FamilyID != "" {
			var one int
			if err := tx.QueryRow(ctx, "SELECT 1 FROM refresh_families WHERE id = $1", access.FamilyID).Scan(&one); err != nil {
				return err
			}
		}
		return putAccessTx(ctx, tx, access)
	}
	r := *refresh
	if r.Hash == "" || r.ID == "" || r.FamilyID == "" || !r.RotatedAt.IsZero() {
		return fmt.Errorf("the refresh token needs a hash, an ID and a family, and cannot be rotated already: %w", storage.ErrInvalid)
	}
	if err := inherit(&access.FamilyID, r.FamilyID, "access token family"); err != nil {
		return err
	}
	if err := putAccessTx(ctx, tx, access); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, "INSERT INTO refresh_families (id, user_id, client_id, live_hash, end_ns) VALUES ($1, $2, $3, $4, $5)",
		r.FamilyID, r.UserID, r.ClientID, r.Hash, ns(r.End()))
	if err != nil {
		return err
	}
	return putRefreshTx(ctx, tx, r, true)
}

func (d *DB) GetAccessToken(ctx context.Context, id string) (storage.AccessToken, error) {
	a, err := scanRecord[storage.AccessToken](d.pool.QueryRow(ctx,
		"SELECT record FROM access_tokens WHERE id = $2 AND (expires_ns IS NULL OR expires_ns > $1)", d.now().UnixNano(), id))
	if err != nil {
		return storage.AccessToken{}, dbErr(fmt.Sprintf("get access token %q", id), err)
	}
	return a, nil
}

func (d *DB) GetAccessTokenAndUser(ctx context.Context, id string) (storage.AccessToken, storage.User, storage.Credential, error) {
	var arec, urec, crec []byte
	now := d.now()
	// The credential is joined by the key GetCredential reads it by, live
	// as GetCredential sees it: an app password's token is checked on
	// every use, and this keeps that to the one query.
	err := d.pool.QueryRow(ctx, `SELECT a.record, u.record, c.record FROM access_tokens a
		LEFT JOIN users u ON u.id = a.user_id
		LEFT JOIN credentials c ON c.user_id = a.user_id AND c.id = a.record->>'credential_id' AND (c.expires_at IS NULL OR c.expires_at > $3)
		WHERE a.id = $2 AND (a.expires_ns IS NULL OR a.expires_ns > $1)`, now.UnixNano(), id, now).Scan(&arec, &urec, &crec)
	if err != nil {
		return storage.AccessToken{}, storage.User{}, storage.Credential{}, dbErr(fmt.Sprintf("get access token %q", id), err)
	}
	a, err := unmarshal[storage.AccessToken](arec)
	if err != nil {
		return storage.AccessToken{}, storage.User{}, storage.Credential{}, fmt.Errorf("get access token %q: %w", id, err)
	}
	var u storage.User
	if urec != nil {
		if u, err = unmarshal[storage.User](urec); err != nil {
			return storage.AccessToken{}, storage.User{}, storage.Credential{}, fmt.Errorf("get access token %q: its user: %w", id, err)
		}
	}
	var c storage.Credential
	if crec != nil && urec != nil { // as on bbolt: a gone user's token has neither
		if c, err = unmarshal[storage.Credential](crec); err != nil {
			return storage.AccessToken{}, storage.User{}, storage.Credential{}, fmt.Errorf("get access token %q: its credential: %w", id, err)
		}
	}
	return a, u, c, nil
}

// lockLinkTx reads and locks the link stored under hash.
func lockLinkTx(ctx context.Context, tx pgx.Tx, hash string) (storage.RefreshToken, error) {
	return scanRecord[storage.RefreshToken](tx.QueryRow(ctx, "SELECT record FROM refresh_tokens WHERE hash = $1 FOR UPDATE", hash))
}

// retryOfTx returns the successor that presenting the rotated link r again
// hands out, if that is a retry: r is the link the live link replaced,
// and the live link is unused, within its grace and still has its sealed
// value. It locks the family.
func retryOfTx(ctx context.Context, tx pgx.Tx, r storage.RefreshToken, now time.Time) (storage.RefreshToken, bool, error) {
	var liveHash string
	var prevHash *string
	err := tx.QueryRow(ctx, "SELECT live_hash, prev_hash FROM refresh_families WHERE id = $1 FOR UPDATE", r.FamilyID).Scan(&liveHash, &prevHash)
	if errors.Is(err, pgx.ErrNoRows) || (err == nil && (prevHash == nil || *prevHash != r.Hash)) {
		return storage.RefreshToken{}, false, nil
	}
	if err != nil {
		return storage.RefreshToken{}, false, err
	}
	live, err := scanRecord[storage.RefreshToken](tx.QueryRow(ctx, "SELECT record FROM refresh_tokens WHERE hash = $1", liveHash))
	if errors.Is(err, pgx.ErrNoRows) {
		return storage.RefreshToken{}, false, nil
	}
	if err != nil || !liveRefresh(live, now) || len(live.SealedValue) == 0 || !now.Before(live.GraceUntil) {
		return storage.RefreshToken{}, false, err
	}
	return live, true, nil
}

// revokeFamilyTx deletes a family's links and access tokens and tells
// whether there was such a family.
func revokeFamilyTx(ctx context.Context, tx pgx.Tx, familyID string) (bool, error) {
	if _, err := tx.Exec(ctx, "DELETE FROM access_tokens WHERE family_id = $1", familyID); err != nil {
		return false, err
	}
	tag, err := tx.Exec(ctx, "DELETE FROM refresh_families WHERE id = $1", familyID)
	return tag.RowsAffected() > 0, err
}

// errReused is what a transaction that revoked a family for reuse returns
// after it has committed.
func (d *DB) reused(r storage.RefreshToken) error {
	d.log.Warn("refresh token reused; family revoked",
		"token_id", r.ID, "family_id", r.FamilyID, "client_id", r.ClientID, "user_id", r.UserID)
	return fmt.Errorf("refresh token %s of family %s: %w", r.ID, r.FamilyID, storage.ErrTokenReused)
}

// GetRefreshToken returns the live link with that hash; a retry of its
// predecessor within the grace gives the live link; any other rotated
// link is reuse, which revokes the family (committed) and gives
// ErrTokenReused.
func (d *DB) GetRefreshToken(ctx context.Context, hash string) (storage.RefreshToken, error) {
	now := d.now()
	var out, reusedLink storage.RefreshToken
	isReuse := false
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		r, err := lockLinkTx(ctx, tx, hash)
		if err != nil {
			return err
		}
		if expired(r.ExpiresAt, now) || (r.RotatedAt.IsZero() && expired(r.IdleExpiresAt, now)) {
			return pgx.ErrNoRows
		}
		if r.RotatedAt.IsZero() {
			// A seal past its grace is not handed out; the rotation that
			// follows drops it.
			out = withoutStaleSeal(r, now)
			return nil
		}
		successor, retry, err := retryOfTx(ctx, tx, r, now)
		if err != nil {
			return err
		}
		if retry {
			out = successor
			return nil
		}
		isReuse, reusedLink = true, r
		_, err = revokeFamilyTx(ctx, tx, r.FamilyID)
		return err
	})
	if err != nil {
		return storage.RefreshToken{}, dbErr("get refresh token", err)
	}
	if isReuse {
		return storage.RefreshToken{}, d.reused(reusedLink)
	}
	return out, nil
}

// RetryRefreshToken answers a retry of rotated link hash: in one
// transaction it checks again that it is one, stores access in the
// successor's family and returns the successor; if it no longer is, that
// is reuse.
func (d *DB) RetryRefreshToken(ctx context.Context, hash string, access storage.AccessToken) (storage.RefreshToken, error) {
	now := d.now()
	var out, reusedLink storage.RefreshToken
	isReuse := false
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		r, err := lockLinkTx(ctx, tx, hash)
		if err != nil {
			return err
		}
		if r.RotatedAt.IsZero() || expired(r.ExpiresAt, now) {
			return pgx.ErrNoRows
		}
		successor, retry, err := retryOfTx(ctx, tx, r, now)
		if err != nil {
			return err
		}
		if !retry {
			isReuse, reusedLink = true, r
			_, err = revokeFamilyTx(ctx, tx, r.FamilyID)
			return err
		}
		a := access
		if err := inherit(&a.FamilyID, successor.FamilyID, "access token family"); err != nil {
			return err
		}
		out = successor
		return putAccessTx(ctx, tx, a)
	})
	if err != nil {
		return storage.RefreshToken{}, dbErr("retry refresh token", err)
	}
	if isReuse {
		return storage.RefreshToken{}, d.reused(reusedLink)
	}
	return out, nil
}

// readLive returns the live link where (on refresh_tokens) holds, without
// a seal past its grace, which it also deletes: the reads that are not a
// refresh (a refresh is followed by a rotation, which drops it).
func (d *DB) readLive(ctx context.Context, what, where string, arg any) (storage.RefreshToken, error) {
	now := d.now()
	var out storage.RefreshToken
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		r, err := scanRecord[storage.RefreshToken](tx.QueryRow(ctx, "SELECT record FROM refresh_tokens WHERE "+where, arg))
		if err != nil {
			return err
		}
		if !liveRefresh(r, now) {
			return pgx.ErrNoRows
		}
		out = withoutStaleSeal(r, now)
		if staleSeal(r, now) {
			return putRefreshTx(ctx, tx, out, false)
		}
		return nil
	})
	if err != nil {
		return storage.RefreshToken{}, dbErr(what, err)
	}
	return out, nil
}

// PeekRefreshToken returns the live link with that hash; rotated links
// are not found (looking at one is not reuse).
func (d *DB) PeekRefreshToken(ctx context.Context, hash string) (storage.RefreshToken, error) {
	return d.readLive(ctx, "peek refresh token", "hash = $1", hash)
}

func (d *DB) GetRefreshTokenByID(ctx context.Context, id string) (storage.RefreshToken, error) {
	return d.readLive(ctx, fmt.Sprintf("get refresh token %q", id), "id = $1", id)
}

// RotateRefreshToken supersedes the live link oldHash with next and
// stores access. A link that is no longer live (a concurrent rotation
// won: it held the row lock first) gives ErrNotFound.
func (d *DB) RotateRefreshToken(ctx context.Context, oldHash string, next storage.RefreshToken, access storage.AccessToken) error {
	switch {
	case next.Hash == "" || next.ID == "":
		return fmt.Errorf("rotate refresh token: next token needs a hash and an ID: %w", storage.ErrInvalid)
	case next.Hash == oldHash:
		return fmt.Errorf("rotate refresh token: next token has the old token's hash: %w", storage.ErrInvalid)
	case access.ID == "":
		return fmt.Errorf("rotate refresh token: empty access token ID: %w", storage.ErrInvalid)
	case !next.RotatedAt.IsZero():
		return fmt.Errorf("rotate refresh token: next token is already rotated: %w", storage.ErrInvalid)
	}
	now := d.now()
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		old, err := lockLinkTx(ctx, tx, oldHash)
		if err != nil {
			return err
		}
		if !liveRefresh(old, now) {
			return pgx.ErrNoRows
		}
		var one int
		if err := tx.QueryRow(ctx, "SELECT 1 FROM refresh_families WHERE id = $1 FOR UPDATE", old.FamilyID).Scan(&one); err != nil {
			return err
		}
		n, a := next, access
		for _, f := range []struct {
			field     *string
			old, what string
		}{{&n.FamilyID, old.FamilyID, "family"}, {&n.UserID, old.UserID, "user"}, {&n.ClientID, old.ClientID, "client"}, {&a.FamilyID, old.FamilyID, "access token family"}} {
			if err := inherit(f.field, f.old, f.what); err != nil {
				return err
			}
		}
		if err := putAccessTx(ctx, tx, a); err != nil {
			return err
		}
		if err := putRefreshTx(ctx, tx, n, true); err != nil {
			return err
		}
		old.RotatedAt = now
		old.SealedValue, old.GraceUntil = nil, time.Time{}
		if err := putRefreshTx(ctx, tx, old, false); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE refresh_families SET live_hash = $2, prev_hash = $3, end_ns = $4 WHERE id = $1",
			old.FamilyID, n.Hash, oldHash, ns(n.End()))
		return err
	})
	return dbErr("rotate refresh token", err)
}

func (d *DB) DeleteAccessToken(ctx context.Context, id string) error {
	tag, err := d.pool.Exec(ctx, "DELETE FROM access_tokens WHERE id = $1", id)
	return deleted("delete access token", id, tag, err)
}

// RevokeFamily deletes every link of the family and its access tokens.
func (d *DB) RevokeFamily(ctx context.Context, familyID string) error {
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		found, err := revokeFamilyTx(ctx, tx, familyID)
		if err == nil && !found {
			err = pgx.ErrNoRows
		}
		return err
	})
	return dbErr(fmt.Sprintf("revoke family %q", familyID), err)
}

// revokeTokensTx deletes the families and access tokens that families
// and accessTokens select ($1 and $2 are the statement's arguments) and
// counts the standing tokens that went: access tokens and unrotated links.
func revokeTokensTx(ctx context.Context, tx pgx.Tx, families, accessTokens string, args ...any) (int, error) {
	var links int
	err := tx.QueryRow(ctx, "SELECT count(*) FROM refresh_tokens WHERE NOT rotated AND family_id IN (SELECT id FROM refresh_families WHERE "+families+")", args...).Scan(&links)
	if err != nil {
		return 0, err
	}
	tag, err := tx.Exec(ctx, "DELETE FROM access_tokens WHERE ("+accessTokens+") OR family_id IN (SELECT id FROM refresh_families WHERE "+families+")", args...)
	if err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, "DELETE FROM refresh_families WHERE "+families, args...); err != nil {
		return 0, err
	}
	return links + int(tag.RowsAffected()), nil
}

// RevokeUserClient revokes every family and access token of a user at a
// client ("" for all clients) and counts the standing tokens that went.
func (d *DB) RevokeUserClient(ctx context.Context, userID, clientID string) (int, error) {
	if userID == "" {
		return 0, fmt.Errorf("revoke user client: empty user ID: %w", storage.ErrInvalid)
	}
	var n int
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		match := "user_id = $1 AND ($2 = '' OR client_id = $2)"
		n, err = revokeTokensTx(ctx, tx, match, match, userID, clientID)
		return err
	})
	if err != nil {
		return 0, dbErr(fmt.Sprintf("revoke tokens of %q at %q", userID, clientID), err)
	}
	return n, nil
}

// revokeClientTokensTx deletes, in tx, every access token and
// refresh-token family issued to client id (for UpdateClientRevokingTokens)
// and counts the standing tokens that went.
func revokeClientTokensTx(ctx context.Context, tx pgx.Tx, id string) (int, error) {
	return revokeTokensTx(ctx, tx, "client_id = $1", "client_id = $1", id)
}

// sweepTokens deletes expired access tokens and the families whose
// absolute or idle deadline has passed, with every link and access token.
func sweepTokens(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	at := now.UnixNano()
	tag, err := q.Exec(ctx, "DELETE FROM access_tokens WHERE expires_ns <= $1", at)
	if err != nil {
		return err
	}
	rep.AccessTokens += int(tag.RowsAffected())
	var links, access int
	err = q.QueryRow(ctx, `WITH gone AS (DELETE FROM refresh_families WHERE end_ns <= $1 RETURNING id),
		links AS (SELECT count(*) AS n FROM refresh_tokens WHERE family_id IN (SELECT id FROM gone)),
		access AS (DELETE FROM access_tokens WHERE family_id IN (SELECT id FROM gone) RETURNING 1)
		SELECT (SELECT n FROM links), (SELECT count(*) FROM access)`, at).Scan(&links, &access)
	rep.RefreshTokens += links
	rep.AccessTokens += access
	return err
}

// sweepSeals drops the sealed values whose grace is over.
func sweepSeals(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	rows, err := q.Query(ctx, "SELECT record FROM refresh_tokens WHERE grace_ns <= $1", now.UnixNano())
	if err != nil {
		return err
	}
	links, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.RefreshToken, error) { return scanRecord[storage.RefreshToken](r) })
	if err != nil {
		return err
	}
	for _, r := range links {
		r.SealedValue, r.GraceUntil = nil, time.Time{}
		rec, err := marshal(r)
		if err != nil {
			return err
		}
		if _, err := q.Exec(ctx, "UPDATE refresh_tokens SET grace_ns = NULL, record = $2 WHERE hash = $1 AND grace_ns <= $3", r.Hash, rec, now.UnixNano()); err != nil {
			return err
		}
	}
	return nil
}
