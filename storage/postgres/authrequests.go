package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyport/keyport/storage"
)

// Authorization requests (storage.AuthRequests): the requests with their
// pending-limit columns, their codes and the codes redeemed lately
// (schema/180_authrequests.sql).
//
// CreateAuthRequest counts and evicts under transaction-scoped advisory
// locks (one for the total, one per origin), so that replicas creating
// requests at once see each other's: without them two creates could both
// find room for one. Updates, deletions and code exchanges lock only the
// rows they touch; an eviction deletes a request only while it may still
// be evicted (class < 2), so a code issued meanwhile keeps it.

// classIssued is storage.PendingIssued as the class column holds it (the
// SQL below writes it as 2: "class < 2" is a request that may be evicted).
const classIssued = int(storage.PendingIssued)

// createdNS orders requests by creation; the zero time is 0.
func createdNS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// advisoryKey is the transaction-scoped advisory lock key named s.
func advisoryKey(s string) int64 {
	h := fnv.New64a()
	h.Write([]byte(s))
	return int64(h.Sum64())
}

// pendingTotalLock is held while a create counts all requests;
// pendingOriginLock(o) while it counts those of origin o.
var pendingTotalLock = advisoryKey("pending sign-ins")

func pendingOriginLock(origin string) int64 { return advisoryKey("pending sign-ins\x00" + origin) }

// liveRequest is the condition of a request whose expiry has not come at
// $1 (Unix nanoseconds).
const liveRequest = "(expires_ns IS NULL OR expires_ns > $1)"

// CreateAuthRequest stores a new request, after evicting requests until it
// fits within limits (storage.PendingLimits): of a.Origin for PerOrigin, of
// the largest group for Total. A refusal rolls the evictions back.
func (d *DB) CreateAuthRequest(ctx context.Context, a storage.AuthRequest, limits storage.PendingLimits) (int, error) {
	if a.ID == "" {
		return 0, fmt.Errorf("create auth request: empty ID: %w", storage.ErrInvalid)
	}
	rec, err := storage.EncodeAuthRequest(a)
	if err != nil {
		return 0, fmt.Errorf("create auth request: %w", err)
	}
	var evicted int
	err = d.flowTx(ctx, func(tx pgx.Tx) error {
		evicted = 0
		if done, err := createAuthRequestFast(ctx, tx, a, rec, limits); done || err != nil {
			return err
		}
		// Always in this order, so two creates cannot deadlock.
		if limits.Total > 0 {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pendingTotalLock); err != nil {
				return err
			}
		}
		byOrigin := limits.PerOrigin > 0 && a.Origin != ""
		if byOrigin {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", pendingOriginLock(a.Origin)); err != nil {
				return err
			}
		}
		// A taken ID is refused before anything is evicted (an eviction
		// could otherwise make room for the duplicate itself).
		var taken bool
		if err := tx.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM auth_requests WHERE id = $1)", a.ID).Scan(&taken); err != nil {
			return err
		}
		if taken {
			return fmt.Errorf("ID taken: %w", storage.ErrConflict)
		}
		if byOrigin {
			n, err := evictForOrigin(ctx, tx, a.Origin, limits.PerOrigin)
			evicted += n
			if err != nil {
				return err
			}
		}
		if limits.Total > 0 {
			n, err := evictForTotal(ctx, tx, limits.Total)
			evicted += n
			if err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `INSERT INTO auth_requests (id, client_id, origin, origin_group, class, created_ns, expires_ns, record)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			a.ID, a.ClientID, a.Origin, a.EvictionGroup(), int(a.PendingClass()), createdNS(a.CreatedAt), ns(a.ExpiresAt), rec)
		return err
	})
	if err != nil {
		return 0, dbErr(fmt.Sprintf("create auth request %q", a.ID), err)
	}
	return evicted, nil
}

// createAuthRequestFast is CreateAuthRequest's common case in one round
// trip: under the same locks, in the same order, it inserts the request
// when its ID is free and both counts are below their limits, and reports
// done. Otherwise it inserts nothing, and the caller goes the long way
// (which takes the locks again: they are the transaction's already),
// finding the taken ID or evicting.
func createAuthRequestFast(ctx context.Context, tx pgx.Tx, a storage.AuthRequest, rec []byte, limits storage.PendingLimits) (bool, error) {
	perOrigin := 0
	if limits.PerOrigin > 0 && a.Origin != "" {
		perOrigin = limits.PerOrigin
	}
	b := &pgx.Batch{}
	if limits.Total > 0 {
		b.Queue("SELECT pg_advisory_xact_lock($1)", pendingTotalLock)
	}
	if perOrigin > 0 {
		b.Queue("SELECT pg_advisory_xact_lock($1)", pendingOriginLock(a.Origin))
	}
	b.Queue(`INSERT INTO auth_requests (id, client_id, origin, origin_group, class, created_ns, expires_ns, record)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8
		WHERE NOT EXISTS (SELECT 1 FROM auth_requests WHERE id = $1)
			AND ($9 = 0 OR (SELECT count(*) FROM auth_requests WHERE origin = $3) < $9)
			AND ($10 = 0 OR (SELECT count(*) FROM auth_requests) < $10)`,
		a.ID, a.ClientID, a.Origin, a.EvictionGroup(), int(a.PendingClass()), createdNS(a.CreatedAt), ns(a.ExpiresAt), rec,
		perOrigin, max(limits.Total, 0))
	br := tx.SendBatch(ctx, b)
	var tag pgconn.CommandTag
	var err error
	for range b.Len() {
		if tag, err = br.Exec(); err != nil {
			break
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err == nil && tag.RowsAffected() == 1, err
}

// evictForOrigin deletes requests of origin, those no browser opened
// first, each oldest first, until fewer than limit are left. It gives
// ErrLimitReached when only requests whose code went out are left.
func evictForOrigin(ctx context.Context, tx pgx.Tx, origin string, limit int) (int, error) {
	n := 0
	for {
		var count int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM auth_requests WHERE origin = $1", origin).Scan(&count); err != nil {
			return n, err
		}
		if count < limit {
			return n, nil
		}
		var id string
		var class int
		err := tx.QueryRow(ctx, "SELECT id, class FROM auth_requests WHERE origin = $1 ORDER BY class, created_ns, id LIMIT 1", origin).Scan(&id, &class)
		if errors.Is(err, pgx.ErrNoRows) {
			return n, nil // deleted meanwhile
		}
		if err != nil {
			return n, err
		}
		if class == classIssued {
			return n, fmt.Errorf("evict a pending sign-in of %s: %d pending, all with a code issued: %w", origin, count, storage.ErrLimitReached)
		}
		gone, err := evictTx(ctx, tx, id)
		if err != nil {
			return n, err
		}
		n += gone
	}
}

// evictForTotal deletes requests of the group holding the most requests
// that may be evicted, until fewer than limit are left in all. On a tie
// (many addresses with one request each), the group whose first request
// no browser has opened goes first, then the one whose first request is
// oldest: as every request would be ranked without groups. Within the
// group, those no browser opened go first, each oldest first. It gives
// ErrLimitReached when only requests whose code went out are left.
func evictForTotal(ctx context.Context, tx pgx.Tx, limit int) (int, error) {
	n := 0
	for {
		var count int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM auth_requests").Scan(&count); err != nil {
			return n, err
		}
		if count < limit {
			return n, nil
		}
		var id string
		err := tx.QueryRow(ctx, `SELECT id FROM auth_requests WHERE class < 2 AND origin_group = (
				SELECT origin_group FROM auth_requests WHERE class < 2 GROUP BY origin_group
				ORDER BY count(*) DESC, min(class),
					CASE WHEN min(class) = 0 THEN min(created_ns) FILTER (WHERE class = 0) ELSE min(created_ns) END,
					origin_group DESC
				LIMIT 1)
			ORDER BY class, created_ns, id LIMIT 1`).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			return n, fmt.Errorf("evict a pending sign-in: %d pending, all with a code issued: %w", count, storage.ErrLimitReached)
		}
		if err != nil {
			return n, err
		}
		gone, err := evictTx(ctx, tx, id)
		if err != nil {
			return n, err
		}
		n += gone
	}
}

// evictTx deletes request id if it may still be evicted (its code was not
// issued since it was chosen) and counts it.
func evictTx(ctx context.Context, tx pgx.Tx, id string) (int, error) {
	tag, err := tx.Exec(ctx, "DELETE FROM auth_requests WHERE id = $1 AND class < 2", id)
	return int(tag.RowsAffected()), err
}

func (d *DB) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	a, err := scanRecord[storage.AuthRequest](d.pool.QueryRow(ctx,
		"SELECT record FROM auth_requests WHERE "+liveRequest+" AND id = $2", d.now().UnixNano(), id))
	if err != nil {
		return storage.AuthRequest{}, dbErr(fmt.Sprintf("get auth request %q", id), err)
	}
	return a, nil
}

// lockLiveRequestTx reads the live request id in tx and locks its row.
func lockLiveRequestTx(ctx context.Context, tx pgx.Tx, id string, now time.Time) (storage.AuthRequest, error) {
	return scanRecord[storage.AuthRequest](tx.QueryRow(ctx,
		"SELECT record FROM auth_requests WHERE "+liveRequest+" AND id = $2 FOR UPDATE", now.UnixNano(), id))
}

// putRequestTx rewrites the stored request a.ID with its columns.
func putRequestTx(ctx context.Context, tx pgx.Tx, a storage.AuthRequest) error {
	rec, err := storage.EncodeAuthRequest(a)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE auth_requests SET client_id = $2, origin = $3, origin_group = $4, class = $5,
		created_ns = $6, expires_ns = $7, record = $8 WHERE id = $1`,
		a.ID, a.ClientID, a.Origin, a.EvictionGroup(), int(a.PendingClass()), createdNS(a.CreatedAt), ns(a.ExpiresAt), rec)
	return err
}

// UpdateAuthRequest applies fn to the live request, locked, in one
// transaction; fn runs once.
func (d *DB) UpdateAuthRequest(ctx context.Context, id string, fn func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error) {
	var out storage.AuthRequest
	err := d.flowTx(ctx, func(tx pgx.Tx) error {
		old, err := lockLiveRequestTx(ctx, tx, id, d.now())
		if err != nil {
			return err
		}
		na, err := fn(old)
		if err != nil {
			return &callbackError{fmt.Errorf("update auth request %q: %w", id, err)}
		}
		if na.ID != id {
			return fmt.Errorf("the ID cannot change (got %q): %w", na.ID, storage.ErrInvalid)
		}
		if err := putRequestTx(ctx, tx, na); err != nil {
			return err
		}
		out = na
		return nil
	})
	if err != nil {
		return storage.AuthRequest{}, dbErr(fmt.Sprintf("update auth request %q", id), err)
	}
	return out, nil
}

// DeleteAuthRequest deletes the request, expired or not, and its code
// (by the foreign key), committing as flowTx does (synchronous_commit
// off) in one round trip: the setting and the statement go as one
// pipeline, which the server runs as one implicit transaction. Every code
// exchange ends with one, for the request its redemption deleted already
// (RedeemCode): flowTx's BEGIN, DELETE and COMMIT made that three round
// trips for nothing (TestDeleteAuthRequestInOneRoundTrip).
func (d *DB) DeleteAuthRequest(ctx context.Context, id string) error {
	b := &pgx.Batch{}
	b.Queue("SELECT set_config('synchronous_commit', 'off', true)")
	var tag pgconn.CommandTag
	b.Queue("DELETE FROM auth_requests WHERE id = $1", id).Exec(func(ct pgconn.CommandTag) error {
		tag = ct
		return nil
	})
	err := d.pool.SendBatch(ctx, b).Close()
	return deleted("delete auth request", id, tag, err)
}

// IssueCode gives the live request its one code: marked issued, its expiry
// brought forward to expires, codeHash linked to it, in one transaction.
func (d *DB) IssueCode(ctx context.Context, authRequestID, codeHash string, expires time.Time) error {
	if authRequestID == "" || codeHash == "" {
		return fmt.Errorf("issue code: empty auth request ID or code hash: %w", storage.ErrInvalid)
	}
	err := d.flowTx(ctx, func(tx pgx.Tx) error {
		a, err := lockLiveRequestTx(ctx, tx, authRequestID, d.now())
		if err != nil {
			return err
		}
		if a.CodeIssued {
			return fmt.Errorf("the request has its code already: %w", storage.ErrConflict)
		}
		// A hash linked to another request is a unique violation: ErrConflict.
		if _, err := tx.Exec(ctx, "INSERT INTO auth_codes (hash, auth_request_id) VALUES ($1, $2)", codeHash, a.ID); err != nil {
			return err
		}
		a.CodeIssued = true
		if a.ExpiresAt.IsZero() || expires.Before(a.ExpiresAt) {
			a.ExpiresAt = expires
		}
		return putRequestTx(ctx, tx, a)
	})
	return dbErr(fmt.Sprintf("issue code for auth request %q", authRequestID), err)
}

// redeemedCodeMemory is how long a redeemed code is remembered.
const redeemedCodeMemory = 10 * time.Minute

// redeemedCode is the record of a redeemed code: what a replay is told and
// what it revokes.
type redeemedCode struct {
	AuthRequestID       string               `json:"auth_request_id"`
	UserID              string               `json:"user_id"`
	ClientID            string               `json:"client_id"`
	CodeChallenge       string               `json:"code_challenge,omitempty"`
	CodeChallengeMethod string               `json:"code_challenge_method,omitempty"`
	Issued              storage.IssuedTokens `json:"issued,omitzero"`
}

// RedeemCode returns the request codeHash belongs to and unlinks the code,
// remembering the redemption, in one transaction. The code's row is locked
// first: of concurrent redemptions one gets it, and the others, once it
// commits, find the code gone and its redemption remembered.
func (d *DB) RedeemCode(ctx context.Context, codeHash, clientID string, issue storage.IssuedTokens) (storage.AuthRequest, error) {
	var out storage.AuthRequest
	var outcome error // an answer that still commits what the transaction did
	now := d.now()
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		out, outcome = storage.AuthRequest{}, nil
		var id string
		err := tx.QueryRow(ctx, "SELECT auth_request_id FROM auth_codes WHERE hash = $1 FOR UPDATE", codeHash).Scan(&id)
		if errors.Is(err, pgx.ErrNoRows) {
			rec, err := redeemedTx(ctx, tx, codeHash, clientID, now)
			if err != nil {
				return err
			}
			out = storage.AuthRequest{ID: rec.AuthRequestID, UserID: rec.UserID, ClientID: rec.ClientID,
				CodeChallenge: rec.CodeChallenge, CodeChallengeMethod: rec.CodeChallengeMethod}
			return fmt.Errorf("code of auth request %q: %w", rec.AuthRequestID, storage.ErrTokenReused)
		}
		if err != nil {
			return err
		}
		a, err := scanRecord[storage.AuthRequest](tx.QueryRow(ctx,
			"SELECT record FROM auth_requests WHERE "+liveRequest+" AND id = $2", now.UnixNano(), id))
		if errors.Is(err, pgx.ErrNoRows) {
			// The request expired: its code is useless, and goes.
			outcome = notFound("redeem code for auth request", id)
			_, err := tx.Exec(ctx, "DELETE FROM auth_codes WHERE hash = $1", codeHash)
			return err
		}
		if err != nil {
			return err
		}
		if a.ClientID != clientID {
			// Another client's code: it does not exist for this caller,
			// and stays usable for its own client.
			return pgx.ErrNoRows
		}
		if _, err := tx.Exec(ctx, "DELETE FROM auth_codes WHERE hash = $1", codeHash); err != nil {
			return err
		}
		// Remember the redemption for a while, so a replayed code can be
		// told apart from a made-up one and its tokens revoked (RFC 6749
		// §4.1.2), and with it the PKCE challenge a public client's
		// replay must meet.
		rec, err := marshal(redeemedCode{AuthRequestID: a.ID, UserID: a.UserID, ClientID: a.ClientID,
			CodeChallenge: a.CodeChallenge, CodeChallengeMethod: a.CodeChallengeMethod, Issued: issue})
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `INSERT INTO redeemed_codes (hash, client_id, replayed, expires_ns, record) VALUES ($1, $2, false, $3, $4)
			ON CONFLICT (hash) DO UPDATE SET client_id = excluded.client_id, replayed = false, expires_ns = excluded.expires_ns, record = excluded.record`,
			codeHash, a.ClientID, now.Add(redeemedCodeMemory).UnixNano(), rec)
		if err != nil {
			return err
		}
		// The request has done its job: the redemption keeps what a
		// replay needs. Deleting it here spares the exchange a commit of
		// its own when zitadel deletes it after the tokens.
		if _, err := tx.Exec(ctx, "DELETE FROM auth_requests WHERE id = $1", a.ID); err != nil {
			return err
		}
		out = a
		return nil
	})
	if errors.Is(err, storage.ErrTokenReused) {
		return out, err
	}
	if err == nil {
		err = outcome
	}
	if err != nil {
		return storage.AuthRequest{}, dbErr("redeem code", err)
	}
	return out, nil
}

// redeemedTx reads the remembered redemption of codeHash by clientID.
func redeemedTx(ctx context.Context, tx pgx.Tx, codeHash, clientID string, now time.Time) (redeemedCode, error) {
	return scanRecord[redeemedCode](tx.QueryRow(ctx,
		"SELECT record FROM redeemed_codes WHERE hash = $1 AND client_id = $2 AND expires_ns > $3", codeHash, clientID, now.UnixNano()))
}

// MarkCodeReplayed marks a redeemed code replayed and returns what its
// exchange issues. The update waits for an exchange of the code that is
// storing its tokens (CreateCodeTokens holds the redemption's row), so
// what it returns is there to revoke once it returns.
func (d *DB) MarkCodeReplayed(ctx context.Context, codeHash, clientID string) (storage.IssuedTokens, error) {
	rc, err := scanRecord[redeemedCode](d.pool.QueryRow(ctx,
		"UPDATE redeemed_codes SET replayed = true WHERE hash = $1 AND client_id = $2 AND expires_ns > $3 RETURNING record",
		codeHash, clientID, d.now().UnixNano()))
	if err != nil {
		return storage.IssuedTokens{}, dbErr("mark a redeemed code replayed", err)
	}
	return rc.Issued, nil
}

// CreateCodeTokens stores the tokens of a code's exchange and records the
// app on the session, in one transaction that first takes a share lock on
// the code's redemption: a replay marked before it is seen here (and
// nothing is stored), and one marked after waits for the commit, then
// finds the tokens to revoke. A code no longer remembered leaves the
// tokens standing.
func (d *DB) CreateCodeTokens(ctx context.Context, codeHash string, access storage.AccessToken, refresh *storage.RefreshToken, sessionID string) error {
	now := d.now()
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var replayed bool
		var rec []byte
		err := tx.QueryRow(ctx, "SELECT replayed, record FROM redeemed_codes WHERE hash = $1 FOR SHARE", codeHash).Scan(&replayed, &rec)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if replayed {
			rc, err := unmarshal[redeemedCode](rec)
			if err != nil {
				return err
			}
			return fmt.Errorf("the code of auth request %q was replayed: %w", rc.AuthRequestID, storage.ErrTokenReused)
		}
		if err := createTokensTx(ctx, tx, access, refresh); err != nil {
			return err
		}
		if sessionID == "" {
			return nil
		}
		// A session that ended meanwhile does not cost the exchange.
		if err := addSessionClientTx(ctx, tx, sessionID, access.ClientID, now); err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		return nil
	})
	return dbErr(fmt.Sprintf("create the tokens %q of a code", access.ID), err)
}

func sweepAuthRequests(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM auth_requests WHERE expires_ns <= $1", now.UnixNano())
	rep.AuthRequests += int(tag.RowsAffected())
	return err
}

// sweepRedeemedCodes forgets redemptions past their memory; the report
// does not count them (nor does storage/bolt's).
func sweepRedeemedCodes(ctx context.Context, q querier, now time.Time, _ *storage.SweepReport) error {
	_, err := q.Exec(ctx, "DELETE FROM redeemed_codes WHERE expires_ns <= $1", now.UnixNano())
	return err
}
