package postgres

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// auditScanBudget bounds the events one ListAudit call reads, so a query
// whose filters rarely match cannot make one call walk the whole log; the
// caller follows the cursor instead.
const auditScanBudget = 20 * storage.MaxAuditLimit

// auditSweepChunk is how many events one SweepAudit transaction deletes.
const auditSweepChunk = 1000

// AppendAudit stores e with the outbox messages it causes.
func (d *DB) AppendAudit(ctx context.Context, e storage.AuditEvent, out ...storage.OutboxMessage) error {
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		if err := appendAuditTx(ctx, tx, &e); err != nil {
			return err
		}
		return enqueueOutboxTx(ctx, tx, out)
	})
	return dbErr(fmt.Sprintf("append audit event %q", e.ID), err)
}

// appendAuditTx appends e (nil: nothing), checked as AppendAudit checks
// it, in tx: for the methods that write an audit event with their change
// (PutGrant, RecordAttempt, RecordSignIn). A taken (time, ID) is a unique
// violation, which refuses the whole change.
func appendAuditTx(ctx context.Context, tx pgx.Tx, e *storage.AuditEvent) error {
	if e == nil {
		return nil
	}
	ev := *e
	raw, err := storage.EncodeAuditEvent(&ev)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `INSERT INTO audit_events (at_ns, id, type, actor_id, target_user_id, record)
		VALUES ($1, $2, $3, $4, $5, $6)`, ev.Time.UnixNano(), ev.ID, ev.Type, ev.ActorID, ev.TargetUserID, raw)
	return err
}

// auditFingerprint identifies a query's filters (not its page size), so a
// cursor only continues the query it came from.
func auditFingerprint(q storage.AuditQuery) []byte {
	types := slices.Clone(q.Types)
	slices.Sort(types)
	types = slices.Compact(types)
	h := sha256.New()
	for _, part := range []string{q.ActorID, q.TargetUserID, strings.Join(types, "\x00"), timeKey(q.From), timeKey(q.To)} {
		binary.Write(h, binary.BigEndian, uint64(len(part))) //nolint:errcheck // hash writes never fail
		h.Write([]byte(part))
	}
	return h.Sum(nil)[:8]
}

func timeKey(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return strconv.FormatInt(t.UnixNano(), 10)
}

// auditCursor is fingerprint(8) at_ns(8) id.
func encodeAuditCursor(q storage.AuditQuery, atNS int64, id string) string {
	b := binary.BigEndian.AppendUint64(auditFingerprint(q), uint64(atNS))
	return base64.RawURLEncoding.EncodeToString(append(b, id...))
}

func decodeAuditCursor(q storage.AuditQuery) (int64, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil || len(raw) <= 16 || len(raw) > 16+storage.MaxAuditID {
		return 0, "", fmt.Errorf("audit cursor is malformed: %w", storage.ErrInvalid)
	}
	if !bytes.Equal(raw[:8], auditFingerprint(q)) {
		return 0, "", fmt.Errorf("audit cursor belongs to another query: %w", storage.ErrInvalid)
	}
	return int64(binary.BigEndian.Uint64(raw[8:16])), string(raw[16:]), nil
}

// ListAudit reads the events in range newest first, through the target's
// index when the query names a target, else the actor's, else the log;
// the other filters are tested on what is read, at most auditScanBudget
// events a call.
func (d *DB) ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEvent, string, error) {
	limit := q.Limit
	if limit <= 0 {
		limit = storage.DefaultAuditLimit
	}
	limit = min(limit, storage.MaxAuditLimit)
	var where, match []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	switch {
	case q.TargetUserID != "":
		where = append(where, "target_user_id = "+arg(q.TargetUserID))
		if q.ActorID != "" {
			match = append(match, "actor_id = "+arg(q.ActorID))
		}
	case q.ActorID != "":
		where = append(where, "actor_id = "+arg(q.ActorID))
	}
	if len(q.Types) > 0 {
		match = append(match, "type = ANY("+arg(q.Types)+")")
	}
	if !q.From.IsZero() {
		where = append(where, "at_ns >= "+arg(q.From.UnixNano()))
	}
	if !q.To.IsZero() {
		where = append(where, "at_ns < "+arg(q.To.UnixNano()))
	}
	if q.Cursor != "" {
		at, id, err := decodeAuditCursor(q)
		if err != nil {
			return nil, "", fmt.Errorf("list audit events: %w", err)
		}
		where = append(where, fmt.Sprintf("(at_ns, id) < (%s, %s)", arg(at), arg(id)))
	}
	matches := "true"
	if len(match) > 0 {
		matches = strings.Join(match, " AND ")
	}
	sql := fmt.Sprintf("SELECT at_ns, id, %s, CASE WHEN %s THEN record END FROM audit_events", matches, matches)
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += " ORDER BY at_ns DESC, id DESC LIMIT " + arg(auditScanBudget+1)

	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", dbErr("list audit events", err)
	}
	defer rows.Close()
	var out []storage.AuditEvent
	next := ""
	var lastAt int64
	var lastID string
	scanned := 0
	for rows.Next() {
		var at int64
		var id string
		var ok bool
		var rec []byte
		if err := rows.Scan(&at, &id, &ok, &rec); err != nil {
			return nil, "", dbErr("list audit events", err)
		}
		if len(out) == limit || scanned == auditScanBudget {
			// More events lie in range: the next page starts below the last one read.
			next = encodeAuditCursor(q, lastAt, lastID)
			break
		}
		scanned++
		lastAt, lastID = at, id
		if !ok {
			continue
		}
		e, err := unmarshal[storage.AuditEvent](rec)
		if err != nil {
			return nil, "", fmt.Errorf("list audit events: decode %q: %w", id, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, "", dbErr("list audit events", err)
	}
	return out, next, nil
}

// SweepAudit deletes the events older than before, auditSweepChunk a
// transaction, so appends never wait long behind it.
func (d *DB) SweepAudit(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		tag, err := d.pool.Exec(ctx, `DELETE FROM audit_events WHERE (at_ns, id) IN (
			SELECT at_ns, id FROM audit_events WHERE at_ns < $1 ORDER BY at_ns, id LIMIT $2)`, before.UnixNano(), auditSweepChunk)
		if err != nil {
			return total, dbErr("sweep audit events", err)
		}
		n := int(tag.RowsAffected())
		total += n
		if n < auditSweepChunk {
			return total, nil
		}
	}
}
