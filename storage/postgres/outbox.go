package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// outboxScanBudget bounds the messages one ListOutbox call reads when a
// Kind filter skips some (as auditScanBudget for the audit log).
const outboxScanBudget = 20 * storage.MaxOutboxLimit

func validOutboxName(s string) bool {
	return s != "" && len(s) <= storage.MaxOutboxID && !strings.ContainsRune(s, 0)
}

// newOutboxMessages checks msgs as EnqueueOutbox does and fills the
// defaults of a zero NextAttemptAt and Deadline.
func newOutboxMessages(msgs []storage.OutboxMessage) ([]storage.OutboxMessage, error) {
	out := make([]storage.OutboxMessage, len(msgs))
	seen := make(map[string]bool, len(msgs))
	for i, m := range msgs {
		if !validOutboxName(m.ID) || !validOutboxName(m.Kind) || m.CreatedAt.IsZero() {
			return nil, fmt.Errorf("outbox message %q: missing or malformed ID, kind or creation time: %w",
				storage.TruncateUTF8(m.ID, storage.MaxOutboxID), storage.ErrInvalid)
		}
		if (m.State != "" && m.State != storage.OutboxPending) || m.Attempts != 0 || !m.LeaseUntil.IsZero() || !m.DeliveredAt.IsZero() {
			return nil, fmt.Errorf("outbox message %q is not new (state %q, %d attempts, lease or delivery set): %w",
				m.ID, m.State, m.Attempts, storage.ErrInvalid)
		}
		if len(m.Payload) > storage.MaxOutboxPayloadBytes {
			return nil, fmt.Errorf("outbox message %q: payload of %d bytes is more than %d: %w",
				m.ID, len(m.Payload), storage.MaxOutboxPayloadBytes, storage.ErrTooLarge)
		}
		if seen[m.ID] {
			return nil, fmt.Errorf("outbox message %q given twice: %w", m.ID, storage.ErrConflict)
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
		out[i] = m
	}
	return out, nil
}

func outboxDue(m storage.OutboxMessage) int64 {
	if m.LeaseUntil.After(m.NextAttemptAt) {
		return m.LeaseUntil.UnixNano()
	}
	return m.NextAttemptAt.UnixNano()
}

// enqueueOutboxTx stores msgs, checked as EnqueueOutbox checks them, in
// tx: for the methods that commit outbox messages with their change
// (UpdateCredential, AppendAudit, PutGrant, CreateOneTimeToken,
// RecordSignIn). A taken ID is a unique violation, which refuses the
// whole change.
func enqueueOutboxTx(ctx context.Context, tx pgx.Tx, msgs []storage.OutboxMessage) error {
	if len(msgs) == 0 {
		return nil
	}
	ms, err := newOutboxMessages(msgs)
	if err != nil {
		return err
	}
	for _, m := range ms {
		if err := putOutboxTx(ctx, tx, m, true); err != nil {
			return err
		}
	}
	return nil
}

// putOutboxTx inserts m (create) or replaces the stored message.
func putOutboxTx(ctx context.Context, tx pgx.Tx, m storage.OutboxMessage, create bool) error {
	rec, err := marshal(m)
	if err != nil {
		return err
	}
	args := []any{m.ID, m.Kind, m.State, outboxDue(m), orNull(m.DeliveredAt), rec}
	if create {
		_, err = tx.Exec(ctx, "INSERT INTO outbox (id, kind, state, due_ns, ended_at, record) VALUES ($1, $2, $3, $4, $5, $6)", args...)
	} else {
		_, err = tx.Exec(ctx, "UPDATE outbox SET kind = $2, state = $3, due_ns = $4, ended_at = $5, record = $6 WHERE id = $1", args...)
	}
	return err
}

func (d *DB) EnqueueOutbox(ctx context.Context, msgs ...storage.OutboxMessage) error {
	if _, err := newOutboxMessages(msgs); err != nil {
		return fmt.Errorf("enqueue outbox: %w", err)
	}
	err := d.inTx(ctx, func(tx pgx.Tx) error { return enqueueOutboxTx(ctx, tx, msgs) })
	return dbErr("enqueue outbox", err)
}

// ClaimOutbox leases the earliest due pending messages. SKIP LOCKED lets
// concurrent claims (other replicas' workers) pass each other's rows
// instead of waiting for them: no message goes to two claims.
func (d *DB) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMessage, error) {
	if lease <= 0 {
		return nil, fmt.Errorf("claim outbox: lease %v is not positive: %w", lease, storage.ErrInvalid)
	}
	if limit <= 0 {
		limit = storage.DefaultOutboxLimit
	}
	limit = min(limit, storage.MaxOutboxLimit)
	var out []storage.OutboxMessage
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT record FROM outbox WHERE state = 'pending' AND due_ns <= $1
			ORDER BY due_ns, id LIMIT $2 FOR UPDATE SKIP LOCKED`, now.UnixNano(), limit)
		if err != nil {
			return err
		}
		ms, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.OutboxMessage, error) {
			return scanRecord[storage.OutboxMessage](r)
		})
		if err != nil {
			return err
		}
		for _, m := range ms {
			m.LeaseUntil = now.Add(lease)
			if err := putOutboxTx(ctx, tx, m, false); err != nil {
				return err
			}
			out = append(out, m)
		}
		return nil
	})
	if err != nil {
		return nil, dbErr("claim outbox", err)
	}
	return out, nil
}

// outboxInStateTx locks message id, which must be in state.
func outboxInStateTx(ctx context.Context, tx pgx.Tx, id, state string) (storage.OutboxMessage, error) {
	m, err := scanRecord[storage.OutboxMessage](tx.QueryRow(ctx, "SELECT record FROM outbox WHERE id = $1 FOR UPDATE", id))
	if err != nil {
		return m, err
	}
	if m.State != state {
		return m, fmt.Errorf("outbox message %q is %s, not %s: %w", id, m.State, state, storage.ErrConflict)
	}
	return m, nil
}

func (d *DB) finishOutbox(ctx context.Context, what, id string, change func(*storage.OutboxMessage)) error {
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		m, err := outboxInStateTx(ctx, tx, id, storage.OutboxPending)
		if err != nil {
			return err
		}
		m.Attempts++
		m.LeaseUntil = time.Time{}
		change(&m)
		return putOutboxTx(ctx, tx, m, false)
	})
	return dbErr(fmt.Sprintf("%s outbox message %q", what, id), err)
}

func (d *DB) CompleteOutbox(ctx context.Context, id string, at time.Time) error {
	return d.finishOutbox(ctx, "complete", id, func(m *storage.OutboxMessage) {
		m.State, m.DeliveredAt = storage.OutboxDelivered, at
	})
}

func (d *DB) RetryOutbox(ctx context.Context, id string, next time.Time, lastErr string) error {
	return d.finishOutbox(ctx, "retry", id, func(m *storage.OutboxMessage) {
		m.NextAttemptAt, m.LastError = next, storage.TruncateUTF8(lastErr, storage.MaxOutboxError)
	})
}

func (d *DB) FailOutbox(ctx context.Context, id string, at time.Time, lastErr string) error {
	return d.finishOutbox(ctx, "fail", id, func(m *storage.OutboxMessage) {
		m.State, m.DeliveredAt, m.LastError = storage.OutboxFailed, at, storage.TruncateUTF8(lastErr, storage.MaxOutboxError)
	})
}

func (d *DB) RetryFailedOutbox(ctx context.Context, id string, now time.Time) (storage.OutboxMessage, error) {
	var out storage.OutboxMessage
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		m, err := outboxInStateTx(ctx, tx, id, storage.OutboxFailed)
		if err != nil {
			return err
		}
		m.State = storage.OutboxPending
		m.NextAttemptAt, m.Deadline = now, now.Add(storage.DefaultOutboxLifetime)
		m.DeliveredAt, m.LeaseUntil = time.Time{}, time.Time{}
		out = m
		return putOutboxTx(ctx, tx, m, false)
	})
	if err != nil {
		return storage.OutboxMessage{}, dbErr(fmt.Sprintf("retry failed outbox message %q", id), err)
	}
	return out, nil
}

func outboxFingerprint(q storage.OutboxQuery) []byte {
	h := sha256.New()
	for _, part := range []string{q.State, q.Kind} {
		binary.Write(h, binary.BigEndian, uint64(len(part))) //nolint:errcheck // hash writes never fail
		h.Write([]byte(part))
	}
	return h.Sum(nil)[:8]
}

// ListOutbox reads messages newest first (by ID), through the state index
// when the query names a state; a Kind filter is tested on what is read,
// at most outboxScanBudget messages a call.
func (d *DB) ListOutbox(ctx context.Context, q storage.OutboxQuery) ([]storage.OutboxMessage, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = storage.DefaultOutboxLimit
	}
	limit = min(limit, storage.MaxOutboxLimit)
	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || len(raw) <= 8 || len(raw) > 8+storage.MaxOutboxID {
			return nil, "", fmt.Errorf("list outbox: cursor is malformed: %w", storage.ErrInvalid)
		}
		if !bytes.Equal(raw[:8], outboxFingerprint(q)) {
			return nil, "", fmt.Errorf("list outbox: cursor belongs to another query: %w", storage.ErrInvalid)
		}
		where = append(where, "id < "+arg(string(raw[8:])))
	}
	if q.State != "" {
		where = append(where, "state = "+arg(q.State))
	}
	matches := "true"
	if q.Kind != "" {
		matches = "kind = " + arg(q.Kind)
	}
	sql := fmt.Sprintf("SELECT id, %s, CASE WHEN %s THEN record END FROM outbox", matches, matches)
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY id DESC LIMIT " + arg(outboxScanBudget+1)
	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", dbErr("list outbox", err)
	}
	defer rows.Close()
	var out []storage.OutboxMessage
	next, lastRead := "", ""
	scanned := 0
	for rows.Next() {
		var id string
		var ok bool
		var rec []byte
		if err := rows.Scan(&id, &ok, &rec); err != nil {
			return nil, "", dbErr("list outbox", err)
		}
		if len(out) == limit || scanned == outboxScanBudget {
			next = base64.RawURLEncoding.EncodeToString(append(outboxFingerprint(q), lastRead...))
			break
		}
		scanned++
		lastRead = id
		if !ok {
			continue
		}
		m, err := unmarshal[storage.OutboxMessage](rec)
		if err != nil {
			return nil, "", fmt.Errorf("list outbox: decode %q: %w", id, err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbErr("list outbox", err)
	}
	return out, next, nil
}

func sweepOutbox(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM outbox WHERE state <> 'pending' AND ended_at <= $1", now.Add(-storage.OutboxRetention))
	rep.Outbox += int(tag.RowsAffected())
	return err
}
