package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// The audit log. Every event is stored under its sort key, nanos(Time)(8)
// followed by its ID, so the log is in time order and a time range is a
// key range. The two indexes map actor NUL sort key and target NUL sort
// key to nothing, so a query by user reads only that user's events.

// auditScanBudget bounds the entries one ListAudit call reads, so a query
// whose filters match rarely (a type nobody triggers) cannot make a single
// call walk the whole log; the caller follows the cursor instead. A
// variable so tests can make it small.
var auditScanBudget = 20 * storage.MaxAuditLimit

// auditFingerprintLen is the prefix of a cursor that ties it to its query.
const auditFingerprintLen = 8

func auditSortKey(e storage.AuditEvent) []byte {
	return append(appendNanos(nil, e.Time), e.ID...)
}

func auditIndexKey(owner string, sortKey []byte) []byte {
	return append(append([]byte(owner), 0), sortKey...)
}

// AppendAudit stores one event with its index entries.
func (d *DB) AppendAudit(ctx context.Context, e storage.AuditEvent, out ...storage.OutboxMessage) error {
	raw, err := storage.EncodeAuditEvent(&e)
	if err != nil {
		return err
	}
	w, err := newOutboxWrite(out)
	if err != nil {
		return fmt.Errorf("append audit event %q: %w", e.ID, err)
	}
	err = d.batch(func(tx *bbolt.Tx) error {
		if err := auditFreeTx(tx, e); err != nil {
			return err
		}
		if err := w.free(tx); err != nil {
			return err
		}
		if err := appendAuditTx(tx, e, raw); err != nil {
			return err
		}
		return w.put(tx)
	})
	if err != nil {
		return fmt.Errorf("append audit event %q: %w", e.ID, err)
	}
	return nil
}

// auditFreeTx refuses an event whose key is taken. It writes nothing, so
// a transaction that shares its commit calls it before its first write
// (see batch) and stays all-or-nothing.
func auditFreeTx(tx *bbolt.Tx, e storage.AuditEvent) error {
	if tx.Bucket(bAudit).Get(auditSortKey(e)) != nil {
		return conflict("audit event", e.ID)
	}
	return nil
}

// appendAuditTx writes an event checked by encodeAudit and auditFreeTx.
func appendAuditTx(tx *bbolt.Tx, e storage.AuditEvent, raw []byte) error {
	key := auditSortKey(e)
	if err := tx.Bucket(bAudit).Put(key, raw); err != nil {
		return err
	}
	if e.ActorID != "" {
		if err := tx.Bucket(bAuditByActor).Put(auditIndexKey(e.ActorID, key), emptyValue); err != nil {
			return err
		}
	}
	if e.TargetUserID != "" {
		if err := tx.Bucket(bAuditByTarget).Put(auditIndexKey(e.TargetUserID, key), emptyValue); err != nil {
			return err
		}
	}
	return nil
}

// signInAudit is RecordSignIn's share of the audit log: its event checked
// and encoded before the transaction (nil raw for none), then checked
// free (free) before the transaction's first write and written (put)
// with the rest.
type signInAudit struct {
	e   storage.AuditEvent
	raw []byte
}

func newSignInAudit(e *storage.AuditEvent) (signInAudit, error) {
	if e == nil {
		return signInAudit{}, nil
	}
	a := signInAudit{e: *e}
	raw, err := storage.EncodeAuditEvent(&a.e)
	a.raw = raw
	return a, err
}

func (a signInAudit) free(tx *bbolt.Tx) error {
	if a.raw == nil {
		return nil
	}
	return auditFreeTx(tx, a.e)
}

func (a signInAudit) put(tx *bbolt.Tx) error {
	if a.raw == nil {
		return nil
	}
	return appendAuditTx(tx, a.e, a.raw)
}

// RecordAttempt adds a sign-in attempt and its audit event in one shared
// commit, so recording a failure (or a forward-auth sign-in) costs one
// fsync, as it did before the audit log.
func (d *DB) RecordAttempt(ctx context.Context, a storage.LoginAttempt, e *storage.AuditEvent) error {
	if a.ID == "" {
		return errors.New("record attempt: empty ID")
	}
	audit, err := newSignInAudit(e)
	if err != nil {
		return fmt.Errorf("record attempt %q: %w", a.ID, err)
	}
	err = d.batch(func(tx *bbolt.Tx) error {
		if err := audit.free(tx); err != nil {
			return err
		}
		if err := addLoginAttemptTx(tx, a); err != nil {
			return err
		}
		return audit.put(tx)
	})
	if err != nil {
		return fmt.Errorf("record attempt %q: %w", a.ID, err)
	}
	return nil
}

// auditFingerprint identifies a query's filters (not its page size), so a
// cursor only continues the query it came from.
func auditFingerprint(q storage.AuditQuery) []byte {
	types := slices.Clone(q.Types)
	slices.Sort(types)
	types = slices.Compact(types)
	h := sha256.New()
	for _, part := range []string{q.ActorID, q.TargetUserID, strings.Join(types, "\x00")} {
		binary.Write(h, binary.BigEndian, uint64(len(part))) //nolint:errcheck // hash writes never fail
		h.Write([]byte(part))
	}
	h.Write(appendNanos(appendNanos(nil, q.From), q.To))
	return h.Sum(nil)[:auditFingerprintLen]
}

func encodeAuditCursor(q storage.AuditQuery, sortKey []byte) string {
	return base64.RawURLEncoding.EncodeToString(append(auditFingerprint(q), sortKey...))
}

// decodeAuditCursor returns the sort key a page continues below.
func decodeAuditCursor(q storage.AuditQuery) ([]byte, error) {
	raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil || len(raw) <= auditFingerprintLen+8 || len(raw) > auditFingerprintLen+8+storage.MaxAuditID {
		return nil, fmt.Errorf("audit cursor is malformed: %w", storage.ErrInvalid)
	}
	if !bytes.Equal(raw[:auditFingerprintLen], auditFingerprint(q)) {
		return nil, fmt.Errorf("audit cursor belongs to another query: %w", storage.ErrInvalid)
	}
	return raw[auditFingerprintLen:], nil
}

// ListAudit walks one bucket backwards (newest first): the target index
// when the query names a target, else the actor index, else the log.
func (d *DB) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEvent, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = storage.DefaultAuditLimit
	}
	limit = min(limit, storage.MaxAuditLimit)
	var after []byte // the sort key this page continues below
	if q.Cursor != "" {
		var err error
		if after, err = decodeAuditCursor(q); err != nil {
			return nil, "", fmt.Errorf("list audit events: %w", err)
		}
	}
	source, prefix := bAudit, []byte(nil)
	switch {
	case q.TargetUserID != "":
		source, prefix = bAuditByTarget, auditIndexKey(q.TargetUserID, nil)
	case q.ActorID != "":
		source, prefix = bAuditByActor, auditIndexKey(q.ActorID, nil)
	}
	// Keys run from prefix+nanos(From) (inclusive) to upper (exclusive).
	lower := appendNanos(bytes.Clone(prefix), q.From)
	var upper []byte
	switch {
	case after != nil && (q.To.IsZero() || bytes.Compare(after, appendNanos(nil, q.To)) < 0):
		upper = append(bytes.Clone(prefix), after...)
	case !q.To.IsZero():
		upper = appendNanos(bytes.Clone(prefix), q.To)
	case prefix != nil:
		upper = append(bytes.Clone(prefix[:len(prefix)-1]), 1) // past every key of the owner
	}
	types := map[string]bool{}
	for _, t := range q.Types {
		types[t] = true
	}

	var out []storage.AuditEvent
	next := ""
	err := d.db.View(func(tx *bbolt.Tx) error {
		events := tx.Bucket(bAudit)
		c := tx.Bucket(source).Cursor()
		var k, lastRead []byte
		if upper == nil {
			k, _ = c.Last()
		} else if k, _ = c.Seek(upper); k == nil {
			k, _ = c.Last()
		} else {
			k, _ = c.Prev()
		}
		for scanned := 0; k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, lower) >= 0; k, _ = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			sortKey := k[len(prefix):]
			if len(out) == limit || scanned == auditScanBudget {
				// More keys lie in range: the next page starts below the last one read.
				next = encodeAuditCursor(q, lastRead)
				return nil
			}
			scanned++
			raw := events.Get(sortKey)
			if raw == nil {
				return fmt.Errorf("audit index entry %q has no event", k)
			}
			var e storage.AuditEvent
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("decode audit event %x: %w", sortKey, err)
			}
			lastRead = auditSortKey(e)
			if (len(types) > 0 && !types[e.Type]) || (q.ActorID != "" && e.ActorID != q.ActorID) {
				continue
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list audit events: %w", err)
	}
	return out, next, nil
}

// SweepAudit deletes events older than before, oldest first, a chunk per
// transaction so appends never wait long behind it.
func (d *DB) SweepAudit(ctx context.Context, before time.Time) (int, error) {
	limit := appendNanos(nil, before)
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, fmt.Errorf("sweep audit events: %w", err)
		}
		n := 0
		err := d.db.Update(func(tx *bbolt.Tx) error {
			n = 0
			events := tx.Bucket(bAudit)
			var keys [][]byte // collected first: deleting under a cursor skips keys
			c := events.Cursor()
			for k, _ := c.First(); k != nil && bytes.Compare(k[:8], limit) < 0 && len(keys) < sweepChunk; k, _ = c.Next() {
				keys = append(keys, bytes.Clone(k))
			}
			for _, k := range keys {
				var e storage.AuditEvent
				if _, err := getJSON(events, string(k), &e); err != nil {
					return err
				}
				if e.ActorID != "" {
					if err := tx.Bucket(bAuditByActor).Delete(auditIndexKey(e.ActorID, k)); err != nil {
						return err
					}
				}
				if e.TargetUserID != "" {
					if err := tx.Bucket(bAuditByTarget).Delete(auditIndexKey(e.TargetUserID, k)); err != nil {
						return err
					}
				}
				if err := events.Delete(k); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sweep audit events: %w", err)
		}
		total += n
		if n < sweepChunk {
			return total, nil
		}
	}
}
