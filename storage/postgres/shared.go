package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/keyport/keyport/storage"
)

// Several keyport processes on one database work together through
// storage.Shared: the lead of a job is a session-level advisory lock held
// on a connection of its own, and changes to records that processes keep
// in memory are announced on one NOTIFY channel, in the transaction that
// makes them (PostgreSQL delivers a notice when, and only if, its
// transaction commits).

var _ storage.Shared = (*DB)(nil)

const (
	// DefaultLeadCheck is how often a lead's connection is pinged (the
	// Options.LeadCheck default): a process notices that it lost a lead
	// within LeadCheck plus pingTimeout.
	DefaultLeadCheck = 5 * time.Second
	// pingTimeout bounds one ping of a lead's or a watch's connection.
	pingTimeout = 2 * time.Second
	// changesChannel is the NOTIFY channel of storage.Change* topics.
	changesChannel = "keyport_changes"
)

// leadKey is the advisory lock of the job called name: a 64-bit hash of
// the name, split into the two-int4 form of the advisory lock functions.
// That form is a key space of its own (pg_locks.objsubid 2), apart from
// the single-bigint keys of the migration and throttle locks, so a lead
// never waits on those. Two job names whose hashes collide would share
// one lead (never both led at the same time, by any two processes); with
// a 64-bit hash and a handful of fixed names the odds are about n²/2⁶⁵.
func leadKey(name string) (int32, int32) {
	sum := sha256.Sum256([]byte("keyport lead\x00" + name))
	return int32(binary.BigEndian.Uint32(sum[0:4])), int32(binary.BigEndian.Uint32(sum[4:8]))
}

// idleLimit is the idle_session_timeout of a lead's connection: the
// server ends the session, and so frees the lead for another process,
// when the holder has not pinged for that long (a process that hangs, or
// is cut off from the database without its connection closing). It is
// well past the ping interval, and past the time in which the holder
// itself notices the failure (LeadCheck plus pingTimeout), so the old
// holder has stopped before another can start.
func idleLimit(check time.Duration) time.Duration {
	return max(3*check, check+2*pingTimeout)
}

// TryLead takes the lead of the job called name on a connection taken out
// of the pool (it does not count against the pool's size) and held until
// Release or until a ping of it fails.
func (d *DB) TryLead(ctx context.Context, name string) (storage.Lead, error) {
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("take the lead of %q: %w", name, err)
	}
	k1, k2 := leadKey(name)
	var got bool
	err = pc.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", k1, k2).Scan(&got)
	if err == nil && !got {
		pc.Release() // it holds nothing: back to the pool
		return nil, fmt.Errorf("take the lead of %q: %w", name, storage.ErrLeadTaken)
	}
	conn := pc.Hijack()
	if err == nil {
		_, err = conn.Exec(ctx, "SELECT set_config('idle_session_timeout', $1, false)",
			fmt.Sprint(idleLimit(d.leadCheck).Milliseconds()))
	}
	if err != nil {
		// Closing the session frees the lock, should it hold it.
		closeConn(conn)
		return nil, fmt.Errorf("take the lead of %q: %w", name, err)
	}
	l := &lead{conn: conn, k1: k1, k2: k2, lost: make(chan struct{}), stop: make(chan struct{}), checked: make(chan struct{})}
	go l.check(d.leadCheck)
	return l, nil
}

// lead is a held lead: its connection, which only the checker uses until
// it stops, and then only Release.
type lead struct {
	conn    *pgx.Conn
	k1, k2  int32
	lost    chan struct{} // closed when a ping failed
	stop    chan struct{} // closed to stop the checker
	checked chan struct{} // closed when the checker has stopped
	halt    sync.Once
	release sync.Once
}

func (l *lead) Lost() <-chan struct{} { return l.lost }

// check pings the connection every interval; on the first failure it
// closes the connection, which ends the session and so the lock on the
// server, and then Lost.
func (l *lead) check(interval time.Duration) {
	defer close(l.checked)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			closeConn(l.conn)
			close(l.lost)
			return
		}
	}
}

// stopChecking stops the checker and waits for it (at most one ping).
func (l *lead) stopChecking() {
	l.halt.Do(func() { close(l.stop) })
	<-l.checked
}

// Release unlocks before it closes, so that the lead is free when Release
// returns (a closed session's locks go a moment later, when the server
// has noticed).
func (l *lead) Release() {
	l.release.Do(func() {
		l.stopChecking()
		select {
		case <-l.lost: // the connection is closed already
			return
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
		defer cancel()
		_, _ = l.conn.Exec(ctx, "SELECT pg_advisory_unlock($1, $2)", l.k1, l.k2)
		_ = l.conn.Close(ctx)
	})
}

func closeConn(conn *pgx.Conn) {
	ctx, cancel := context.WithTimeout(context.Background(), pingTimeout)
	defer cancel()
	_ = conn.Close(ctx)
}

// WatchChanges listens on the changes channel on a connection taken out of
// the pool. It pings that connection when no notice came for LeadCheck,
// so a connection that died without closing is noticed too.
func (d *DB) WatchChanges(ctx context.Context, ready func(), fn func(topic string)) error {
	pc, err := d.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("watch changes: %w", err)
	}
	conn := pc.Hijack()
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, "LISTEN "+changesChannel); err != nil {
		return fmt.Errorf("watch changes: listen: %w", err)
	}
	ready()
	for {
		waitCtx, cancel := context.WithTimeout(ctx, d.leadCheck)
		n, err := conn.WaitForNotification(waitCtx)
		cancel()
		switch {
		case err == nil:
			fn(n.Payload)
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed():
			pingCtx, cancel := context.WithTimeout(ctx, pingTimeout)
			err := conn.Ping(pingCtx)
			cancel()
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("watch changes: ping: %w", err)
			}
		default:
			return fmt.Errorf("watch changes: %w", err)
		}
	}
}

// notifyTx announces a change of topic (storage.Change*) with tx's commit.
func notifyTx(ctx context.Context, tx pgx.Tx, topic string) error {
	_, err := tx.Exec(ctx, "SELECT pg_notify($1, $2)", changesChannel, topic)
	return err
}

// execNotify runs one write and, when it changed rows, announces topic,
// in one transaction.
func (d *DB) execNotify(ctx context.Context, topic, sql string, args ...any) (tag pgconn.CommandTag, err error) {
	err = d.inTx(ctx, func(tx pgx.Tx) error {
		if tag, err = tx.Exec(ctx, sql, args...); err != nil || tag.RowsAffected() == 0 {
			return err
		}
		return notifyTx(ctx, tx, topic)
	})
	return tag, err
}
