package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// sweeper deletes the record behind one expiry entry (key is the record's
// key) with its indexes, adds what it removed to rep, and returns how many
// records it deleted.
type sweeper func(tx *bbolt.Tx, key string, rep *storage.SweepReport) (int, error)

// Sweep deletes what has expired as of now: auth requests with their codes,
// access tokens, refresh-token families whose absolute or idle deadline has
// passed (every link, rotated ones included, and their access tokens),
// sessions, one-time tokens, expired credentials and throttle records,
// ended reservations of deleted users' names, login attempts older
// than 90 days, and delivered or failed outbox messages older than
// storage.OutboxRetention. It works
// in transactions of about 1000 deletions so writers never wait long.
//
// The report counts records: RefreshTokens includes rotated links, and
// AccessTokens includes those that went with their family.
func (d *DB) Sweep(ctx context.Context) (storage.SweepReport, error) {
	now := d.now()
	steps := []struct {
		db     *guardedDB
		kind   byte
		cutoff time.Time
		del    sweeper
	}{
		{d.flow, expAuthRequest, now, sweepAuthRequest},
		{d.db, expAccessToken, now, sweepAccessToken},
		{d.db, expFamily, now, sweepFamily},
		{d.db, expSession, now, sweepSession},
		{d.db, expOneTimeToken, now, sweepOneTimeToken},
		{d.flow, expRedeemedCode, now, sweepRedeemedCode},
		{d.db, expLoginAttempt, now.Add(-loginAttemptsAge), sweepLoginAttempt},
		{d.db, expCredential, now, sweepCredential},
		{d.db, expThrottle, now, sweepThrottle},
		{d.db, expRefreshGrace, now, sweepRefreshGrace},
		{d.db, expReservedName, now, sweepReservedName},
		{d.db, expOutbox, now, sweepOutbox},
		{d.flow, expDeviceAuth, now, sweepDeviceAuth},
	}
	var rep storage.SweepReport
	for _, s := range steps {
		if err := d.sweepKind(ctx, s.db, s.kind, s.cutoff, s.del, &rep); err != nil {
			return rep, fmt.Errorf("sweep: %w", err)
		}
	}
	d.log.Debug("swept expired records",
		"auth_requests", rep.AuthRequests, "access_tokens", rep.AccessTokens, "refresh_tokens", rep.RefreshTokens,
		"sessions", rep.Sessions, "one_time_tokens", rep.OneTimeTokens, "login_attempts", rep.LoginAttempts, "credentials", rep.Credentials, "throttles", rep.Throttles, "reserved_names", rep.ReservedNames, "outbox", rep.Outbox, "device_authorizations", rep.DeviceAuthorizations)
	return rep, nil
}

// sweepKind deletes every record of one kind whose expiry entry is at or
// before cutoff, a chunk per transaction.
func (d *DB) sweepKind(ctx context.Context, db *guardedDB, kind byte, cutoff time.Time, del sweeper, total *storage.SweepReport) error {
	limit := nanos(cutoff)
	prefix := []byte{kind}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var part storage.SweepReport
		more := false
		err := db.Update(func(tx *bbolt.Tx) error {
			part, more = storage.SweepReport{}, false
			exp := tx.Bucket(bExpiry)
			deleted := 0
			for {
				k, _ := exp.Cursor().Seek(prefix)
				if k == nil || !bytes.HasPrefix(k, prefix) || len(k) < 9 || binary.BigEndian.Uint64(k[1:9]) > limit {
					return nil
				}
				if deleted >= sweepChunk {
					more = true
					return nil
				}
				k = bytes.Clone(k)
				if err := exp.Delete(k); err != nil {
					return err
				}
				n, err := del(tx, string(k[9:]), &part)
				if err != nil {
					return err
				}
				deleted += 1 + n
			}
		})
		if err != nil {
			return err
		}
		total.AuthRequests += part.AuthRequests
		total.AccessTokens += part.AccessTokens
		total.RefreshTokens += part.RefreshTokens
		total.Sessions += part.Sessions
		total.OneTimeTokens += part.OneTimeTokens
		total.LoginAttempts += part.LoginAttempts
		total.Credentials += part.Credentials
		total.Throttles += part.Throttles
		total.ReservedNames += part.ReservedNames
		total.Outbox += part.Outbox
		total.DeviceAuthorizations += part.DeviceAuthorizations
		if !more {
			return nil
		}
	}
}

func count(found bool) int {
	if found {
		return 1
	}
	return 0
}

func sweepAuthRequest(tx *bbolt.Tx, id string, rep *storage.SweepReport) (int, error) {
	found, err := deleteAuthRequestTx(tx, id)
	rep.AuthRequests += count(found)
	return count(found), err
}

func sweepAccessToken(tx *bbolt.Tx, id string, rep *storage.SweepReport) (int, error) {
	found, err := deleteAccessTx(tx, id)
	rep.AccessTokens += count(found)
	return count(found), err
}

func sweepFamily(tx *bbolt.Tx, id string, rep *storage.SweepReport) (int, error) {
	c, err := revokeFamilyTx(tx, id)
	rep.RefreshTokens += c.refresh
	rep.AccessTokens += c.access
	return c.refresh + c.access, err
}

func sweepSession(tx *bbolt.Tx, id string, rep *storage.SweepReport) (int, error) {
	found, err := deleteSessionTx(tx, id)
	rep.Sessions += count(found)
	return count(found), err
}

func sweepOneTimeToken(tx *bbolt.Tx, hash string, rep *storage.SweepReport) (int, error) {
	b := tx.Bucket(bOneTimeTokens)
	var t storage.OneTimeToken
	found, err := getJSON(b, hash, &t)
	if err != nil { // unreadable: it goes all the same, and its index entry with the next token
		found = true
	} else if found {
		if err := forgetUserOneTimeToken(tx, t); err != nil {
			return 0, err
		}
	}
	rep.OneTimeTokens += count(found)
	return count(found), b.Delete([]byte(hash))
}

func sweepLoginAttempt(tx *bbolt.Tx, key string, rep *storage.SweepReport) (int, error) {
	b := tx.Bucket(bLoginAttempts)
	found := has(b, key)
	rep.LoginAttempts += count(found)
	return count(found), b.Delete([]byte(key))
}

func sweepRedeemedCode(tx *bbolt.Tx, hash string, _ *storage.SweepReport) (int, error) {
	b := tx.Bucket(bRedeemedCodes)
	found := has(b, hash)
	return count(found), b.Delete([]byte(hash))
}

// sweepRefreshGrace drops the sealed value of a refresh token whose reuse
// grace is over: it is kept only while a retry may need it. sweepKind has
// deleted the expiry entry that led here before calling it (no cursor is
// open on the expiry bucket meanwhile), so dropGraceTx finds that entry
// gone already.
func sweepRefreshGrace(tx *bbolt.Tx, hash string, _ *storage.SweepReport) (int, error) {
	found, err := dropGraceOf(tx, hash, func(r storage.RefreshToken) bool { return len(r.SealedValue) > 0 })
	return count(found), err
}
