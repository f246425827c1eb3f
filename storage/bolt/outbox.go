package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// The outbox. Messages live in bOutbox under their ID. Two indexes are
// kept in the same transactions:
//
//   - bOutboxDue: nanos(due) ID → "" for each pending message, where due
//     is the later of NextAttemptAt and LeaseUntil. Claiming a message moves
//     its entry to the end of its lease, so the front of the index holds
//     exactly the messages that may be claimed: ClaimOutbox reads limit
//     entries, never the leased ones or the rest of the outbox.
//   - bOutboxByState: state NUL ID → "", so admins listing the failed
//     messages do not read every delivered one.
//
// A delivered or failed message also gets an expiry entry (expOutbox) at
// DeliveredAt + storage.OutboxRetention, which Sweep follows.

// outboxScanBudget bounds the entries one ListOutbox call reads when a
// Kind filter skips entries (as auditScanBudget does for the audit log).
var outboxScanBudget = 20 * storage.MaxOutboxLimit

// outboxFingerprintLen is the prefix of a cursor that ties it to its query.
const outboxFingerprintLen = 8

func outboxDueAt(m storage.OutboxMessage) time.Time {
	if m.LeaseUntil.After(m.NextAttemptAt) {
		return m.LeaseUntil
	}
	return m.NextAttemptAt
}

func outboxDueKey(m storage.OutboxMessage) []byte {
	return append(appendNanos(nil, outboxDueAt(m)), m.ID...)
}

func outboxStateKey(state, id string) []byte {
	return []byte(join(state, id))
}

// validOutboxName: IDs and kinds form index keys, where a NUL would make
// one entry look like another's.
func validOutboxName(s string) bool {
	return s != "" && len(s) <= storage.MaxOutboxID && !strings.ContainsRune(s, 0)
}

// outboxWrite is a set of new messages checked and encoded before any
// transaction (newOutboxWrite), then checked free (free) before the
// transaction's first write and written (put) with the rest: the pattern
// of the audit log's signInAudit, so a producer's write method can commit
// its change and its messages together, or neither.
type outboxWrite struct {
	msgs []storage.OutboxMessage
	raws [][]byte
}

// newOutboxWrite checks and encodes msgs; a zero Deadline or
// NextAttemptAt gets its default.
func newOutboxWrite(msgs []storage.OutboxMessage) (outboxWrite, error) {
	w := outboxWrite{msgs: make([]storage.OutboxMessage, len(msgs)), raws: make([][]byte, len(msgs))}
	seen := make(map[string]bool, len(msgs))
	for i, m := range msgs {
		if !validOutboxName(m.ID) || !validOutboxName(m.Kind) || m.CreatedAt.IsZero() {
			return outboxWrite{}, fmt.Errorf("outbox message %q: missing or malformed ID, kind or creation time: %w",
				storage.TruncateUTF8(m.ID, storage.MaxOutboxID), storage.ErrInvalid)
		}
		if (m.State != "" && m.State != storage.OutboxPending) || m.Attempts != 0 || !m.LeaseUntil.IsZero() || !m.DeliveredAt.IsZero() {
			return outboxWrite{}, fmt.Errorf("outbox message %q is not new (state %q, %d attempts, lease or delivery set): %w",
				m.ID, m.State, m.Attempts, storage.ErrInvalid)
		}
		if len(m.Payload) > storage.MaxOutboxPayloadBytes {
			return outboxWrite{}, fmt.Errorf("outbox message %q: payload of %d bytes is more than %d: %w",
				m.ID, len(m.Payload), storage.MaxOutboxPayloadBytes, storage.ErrTooLarge)
		}
		if seen[m.ID] {
			return outboxWrite{}, conflict("outbox message (given twice)", m.ID)
		}
		seen[m.ID] = true
		m.State = storage.OutboxPending
		m.LastError = storage.TruncateUTF8(m.LastError, storage.MaxOutboxError)
		if m.NextAttemptAt.IsZero() {
			m.NextAttemptAt = m.CreatedAt
		}
		if m.Deadline.IsZero() {
			m.Deadline = m.CreatedAt.Add(storage.DefaultOutboxLifetime)
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return outboxWrite{}, fmt.Errorf("encode outbox message %q: %w", m.ID, err)
		}
		w.msgs[i], w.raws[i] = m, raw
	}
	return w, nil
}

// free refuses messages whose ID is taken. It writes nothing, so a
// transaction that shares its commit calls it before its first write.
func (w outboxWrite) free(tx *bbolt.Tx) error {
	b := tx.Bucket(bOutbox)
	for _, m := range w.msgs {
		if b.Get([]byte(m.ID)) != nil {
			return conflict("outbox message", m.ID)
		}
	}
	return nil
}

// put writes the messages checked by newOutboxWrite and free, with their
// index entries.
func (w outboxWrite) put(tx *bbolt.Tx) error {
	for i, m := range w.msgs {
		if err := tx.Bucket(bOutbox).Put([]byte(m.ID), w.raws[i]); err != nil {
			return err
		}
		if err := putOutboxIndexes(tx, m); err != nil {
			return err
		}
	}
	return nil
}

// enqueueOutboxTx stores w's messages in tx, all or none: it refuses
// (ErrConflict) before its first write. A write method that must commit
// messages with its own change checks the messages (newOutboxWrite) before
// its transaction and calls w.free before its own first write, then this
// or w.put.
func enqueueOutboxTx(tx *bbolt.Tx, w outboxWrite) error {
	if err := w.free(tx); err != nil {
		return err
	}
	return w.put(tx)
}

func putOutboxIndexes(tx *bbolt.Tx, m storage.OutboxMessage) error {
	if err := tx.Bucket(bOutboxByState).Put(outboxStateKey(m.State, m.ID), emptyValue); err != nil {
		return err
	}
	if m.State == storage.OutboxPending {
		return tx.Bucket(bOutboxDue).Put(outboxDueKey(m), emptyValue)
	}
	return putExpiry(tx, expOutbox, m.DeliveredAt.Add(storage.OutboxRetention), m.ID)
}

func deleteOutboxIndexes(tx *bbolt.Tx, m storage.OutboxMessage) error {
	if err := tx.Bucket(bOutboxByState).Delete(outboxStateKey(m.State, m.ID)); err != nil {
		return err
	}
	if m.State == storage.OutboxPending {
		return tx.Bucket(bOutboxDue).Delete(outboxDueKey(m))
	}
	return deleteExpiry(tx, expOutbox, m.DeliveredAt.Add(storage.OutboxRetention), m.ID)
}

// replaceOutboxTx stores next in place of old, moving the index entries.
func replaceOutboxTx(tx *bbolt.Tx, old, next storage.OutboxMessage) error {
	if err := deleteOutboxIndexes(tx, old); err != nil {
		return err
	}
	if err := putJSON(tx.Bucket(bOutbox), next.ID, next); err != nil {
		return err
	}
	return putOutboxIndexes(tx, next)
}

// EnqueueOutbox stores new messages in one (batched) commit.
func (d *DB) EnqueueOutbox(ctx context.Context, msgs ...storage.OutboxMessage) error {
	w, err := newOutboxWrite(msgs)
	if err != nil {
		return fmt.Errorf("enqueue outbox: %w", err)
	}
	if err := d.batch(func(tx *bbolt.Tx) error { return enqueueOutboxTx(tx, w) }); err != nil {
		return fmt.Errorf("enqueue outbox: %w", err)
	}
	return nil
}

// ClaimOutbox leases the front of the due index.
func (d *DB) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMessage, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("claim outbox: lease %v is not positive: %w", lease, storage.ErrInvalid)
	}
	if limit <= 0 {
		limit = storage.DefaultOutboxLimit
	}
	limit = min(limit, storage.MaxOutboxLimit)
	until := nanos(now)
	var out []storage.OutboxMessage
	err := d.batch(func(tx *bbolt.Tx) error {
		out = nil
		var keys [][]byte // collected first: writing under a cursor skips keys
		c := tx.Bucket(bOutboxDue).Cursor()
		for k, _ := c.First(); k != nil && len(keys) < limit; k, _ = c.Next() {
			if len(k) <= 8 || binary.BigEndian.Uint64(k[:8]) > until {
				break
			}
			keys = append(keys, bytes.Clone(k))
		}
		for _, k := range keys {
			var m storage.OutboxMessage
			found, err := getJSON(tx.Bucket(bOutbox), string(k[8:]), &m)
			if err != nil {
				return err
			}
			if !found || m.State != storage.OutboxPending {
				return fmt.Errorf("outbox due entry %x has no pending message", k)
			}
			next := m
			next.LeaseUntil = now.Add(lease)
			if err := replaceOutboxTx(tx, m, next); err != nil {
				return err
			}
			out = append(out, next)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim outbox: %w", err)
	}
	return out, nil
}

// finishOutbox applies change to a pending message.
func (d *DB) finishOutbox(what, id string, change func(*storage.OutboxMessage)) error {
	err := d.batch(func(tx *bbolt.Tx) error {
		m, err := outboxInStateTx(tx, id, storage.OutboxPending)
		if err != nil {
			return err
		}
		next := m
		next.Attempts++
		next.LeaseUntil = time.Time{}
		change(&next)
		return replaceOutboxTx(tx, m, next)
	})
	if err != nil {
		return fmt.Errorf("%s outbox message %q: %w", what, id, err)
	}
	return nil
}

// CompleteOutbox marks a message delivered.
func (d *DB) CompleteOutbox(ctx context.Context, id string, at time.Time) error {
	return d.finishOutbox("complete", id, func(m *storage.OutboxMessage) {
		m.State, m.DeliveredAt = storage.OutboxDelivered, at
	})
}

// RetryOutbox makes a message due again at next.
func (d *DB) RetryOutbox(ctx context.Context, id string, next time.Time, lastErr string) error {
	return d.finishOutbox("retry", id, func(m *storage.OutboxMessage) {
		m.NextAttemptAt, m.LastError = next, storage.TruncateUTF8(lastErr, storage.MaxOutboxError)
	})
}

// FailOutbox gives a message up.
func (d *DB) FailOutbox(ctx context.Context, id string, at time.Time, lastErr string) error {
	return d.finishOutbox("fail", id, func(m *storage.OutboxMessage) {
		m.State, m.DeliveredAt, m.LastError = storage.OutboxFailed, at, storage.TruncateUTF8(lastErr, storage.MaxOutboxError)
	})
}

// outboxFingerprint identifies a query's filters, so a cursor only
// continues the query it came from.
func outboxFingerprint(q storage.OutboxQuery) []byte {
	h := sha256.New()
	for _, part := range []string{q.State, q.Kind} {
		binary.Write(h, binary.BigEndian, uint64(len(part))) //nolint:errcheck // hash writes never fail
		h.Write([]byte(part))
	}
	return h.Sum(nil)[:outboxFingerprintLen]
}

// ListOutbox walks the state index (a query by State) or the messages
// backwards from the cursor.
func (d *DB) ListOutbox(ctx context.Context, q storage.OutboxQuery) ([]storage.OutboxMessage, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = storage.DefaultOutboxLimit
	}
	limit = min(limit, storage.MaxOutboxLimit)
	var after []byte // the ID this page continues below
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || len(raw) <= outboxFingerprintLen || len(raw) > outboxFingerprintLen+storage.MaxOutboxID {
			return nil, "", fmt.Errorf("list outbox: cursor is malformed: %w", storage.ErrInvalid)
		}
		if !bytes.Equal(raw[:outboxFingerprintLen], outboxFingerprint(q)) {
			return nil, "", fmt.Errorf("list outbox: cursor belongs to another query: %w", storage.ErrInvalid)
		}
		after = raw[outboxFingerprintLen:]
	}
	source, prefix := bOutbox, []byte(nil)
	if q.State != "" {
		source, prefix = bOutboxByState, outboxStateKey(q.State, "")
	}
	var out []storage.OutboxMessage
	next := ""
	err := d.db.View(func(tx *bbolt.Tx) error {
		msgs := tx.Bucket(bOutbox)
		c := tx.Bucket(source).Cursor()
		var k []byte
		switch {
		case after != nil:
			k, _ = c.Seek(append(bytes.Clone(prefix), after...))
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		case prefix != nil:
			// Past every key of the state: its prefix with the NUL raised to 1.
			if k, _ = c.Seek(append(bytes.Clone(prefix[:len(prefix)-1]), 1)); k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		default:
			k, _ = c.Last()
		}
		var lastRead []byte
		for scanned := 0; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Prev() {
			if err := ctx.Err(); err != nil {
				return err
			}
			id := k[len(prefix):]
			if after != nil && bytes.Compare(id, after) >= 0 {
				continue // the message at the cursor itself
			}
			if len(out) == limit || scanned == outboxScanBudget {
				next = base64.RawURLEncoding.EncodeToString(append(outboxFingerprint(q), lastRead...))
				return nil
			}
			scanned++
			var m storage.OutboxMessage
			found, err := getJSON(msgs, string(id), &m)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("outbox state entry %q has no message", k)
			}
			lastRead = bytes.Clone(id)
			if q.Kind != "" && m.Kind != q.Kind {
				continue
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("list outbox: %w", err)
	}
	return out, next, nil
}

// sweepOutbox deletes a delivered or failed message whose retention is
// over, with its state entry (sweepKind deleted its expiry entry).
func sweepOutbox(tx *bbolt.Tx, id string, rep *storage.SweepReport) (int, error) {
	var m storage.OutboxMessage
	found, err := getJSON(tx.Bucket(bOutbox), id, &m)
	if err != nil || !found {
		return 0, err
	}
	if m.State == storage.OutboxPending {
		return 0, nil // never expires; cannot happen, an expiry entry is only made when it ends
	}
	if err := tx.Bucket(bOutboxByState).Delete(outboxStateKey(m.State, m.ID)); err != nil {
		return 0, err
	}
	rep.Outbox++
	return 1, tx.Bucket(bOutbox).Delete([]byte(id))
}

// RetryFailedOutbox makes a failed message pending again, due at now.
func (d *DB) RetryFailedOutbox(ctx context.Context, id string, now time.Time) (storage.OutboxMessage, error) {
	var out storage.OutboxMessage
	err := d.batch(func(tx *bbolt.Tx) error {
		m, err := outboxInStateTx(tx, id, storage.OutboxFailed)
		if err != nil {
			return err
		}
		next := m
		next.State = storage.OutboxPending
		next.NextAttemptAt, next.Deadline = now, now.Add(storage.DefaultOutboxLifetime)
		next.DeliveredAt, next.LeaseUntil = time.Time{}, time.Time{}
		out = next
		return replaceOutboxTx(tx, m, next)
	})
	if err != nil {
		return storage.OutboxMessage{}, fmt.Errorf("retry failed outbox message %q: %w", id, err)
	}
	return out, nil
}

// outboxInStateTx reads message id, which must be in state: ErrNotFound
// when there is none, ErrConflict when it is in another state.
func outboxInStateTx(tx *bbolt.Tx, id, state string) (storage.OutboxMessage, error) {
	var m storage.OutboxMessage
	found, err := getJSON(tx.Bucket(bOutbox), id, &m)
	if err != nil {
		return m, err
	}
	if !found {
		return m, notFound("outbox message", id)
	}
	if m.State != state {
		return m, fmt.Errorf("outbox message %q is %s, not %s: %w", id, m.State, state, storage.ErrConflict)
	}
	return m, nil
}
