// Package postgres stores Keyport's records in PostgreSQL (15 or newer),
// through github.com/jackc/pgx/v5, so that several Keyport processes can
// share one database.
//
// It implements every storage interface and passes the whole conformance
// suite (storage/storagetest), as storage/bolt does. Sign-ins in progress
// (authorization requests, their codes and redemptions: authrequests.go)
// live here too, so a browser may start at one replica and finish at
// another. Backup writes a consistent logical copy that Restore loads into
// a new database (backup.go describes the format).
//
// Layout. Each area (users, groups, clients, …) has its tables in one SQL
// file, schema/NNN_area.sql, and its methods in area.go. A record is kept
// as its JSON (the record column, as storage/bolt keeps it, so every field
// round-trips exactly and a field nobody queries needs no migration) next
// to the columns the store looks records up by, sorts by and constrains:
// uniqueness (usernames and emails, identities, group names, token hashes)
// is the database's, through primary keys and unique indexes, never a read
// before a write. A unique violation (SQLSTATE 23505) becomes
// storage.ErrConflict (see dbErr).
//
// Adding an area: write schema/NNN_area.sql (the number orders the files;
// take a free number) and area.go with the methods, and conformance tests
// for them in storage/storagetest. If a user's or a client's deletion must
// take the area's records along, add the statement to userRecords
// (users.go) or clientRecords (clients.go); if its records expire, add a
// step to sweepSteps (sweep.go). Backup copies every table of the schema
// by itself; give the round trip's fixture (fillEveryTable in
// backup_test.go) a record of each new table. So that keyport migrate
// copies its rows, add the table to loadedTables and a case to Load
// (load.go) and to Dump (dump.go), with a storage.Dump* kind; a table whose
// rows are not worth copying (sign-ins in progress) goes in
// notCopiedTables instead (TestEveryTableIsCopied holds every table to one
// of the two).
//
// Writes that span areas go through helpers that take the caller's
// transaction (pgx.Tx), so one change commits whole or not at all:
// appendAuditTx (audit.go), enqueueOutboxTx (outbox.go), createSessionTx
// and addSessionClientTx (sessions.go), addLoginAttemptTx
// (loginattempts.go), touchGrantTx (grants.go), createTokensTx and
// revokeClientTokensTx (tokens.go). The auth requests area's
// CreateCodeTokens is createTokensTx plus addSessionClientTx in one
// transaction, which holds a share lock on the code's redemption so a
// replay marked meanwhile waits for it (authrequests.go).
//
// Several processes on one database (storage.Shared, shared.go): a job's
// lead is a session-level advisory lock on a connection held out of the
// pool; a write to records that processes keep in memory (the topics of
// storage.Change*) announces itself in its own transaction, through
// execNotify or notifyTx, so a new write of such records must too.
//
// Read-modify-write methods (UpdateUser, UpdateGroup, UpdateCredential, …)
// run in READ COMMITTED and lock the row they read (SELECT … FOR UPDATE):
// the caller's fn runs once, concurrent updates of one record queue, and
// uniqueness is left to the indexes. Where there may be no row to lock
// (throttles) a transaction-scoped advisory lock per key does the same;
// CreateAuthRequest counts the pending sign-ins under such locks (one for
// the total, one per origin), so replicas keep the limits together.
//
// Schema files are applied, in name order, as migration 1 (see migrate.go)
// while the backend has not shipped, so areas land in parallel without
// renumbering. Once a release has shipped, version 1 is frozen and every
// change is a new migration.
//
// Time: the store reads the clock only through Options.Now. Times are kept
// as timestamptz, to the microsecond (PostgreSQL's resolution), and read
// back in UTC; tokens and sign-ins in progress compare their deadlines as
// Unix nanoseconds (bigint), to the nanosecond their records hold.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/keyport/keyport/storage"
)

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Now is the clock used for expiry and reservations. Default time.Now.
	Now func() time.Time
	// MaxConns bounds the connection pool. Default: pgxpool's (the
	// larger of 4 and the number of CPUs), or pool_max_conns in the DSN.
	MaxConns int32
	// Logger receives migration messages. Default: discard.
	Logger *slog.Logger
	// LeadCheck is how often a held lead's connection and a change
	// watch's connection are pinged (see shared.go). Default
	// DefaultLeadCheck.
	LeadCheck time.Duration
}

// DB is a PostgreSQL-backed storage.Store.
type DB struct {
	pool      *pgxpool.Pool
	now       func() time.Time
	log       *slog.Logger
	leadCheck time.Duration

	// clients caches clients read (clientcache.go), kept honest by a
	// watch of the changes channel started with the first read.
	clients         clientCache
	clientWatchOnce sync.Once
	stopClientWatch context.CancelFunc
	clientWatchDone sync.WaitGroup
}

var _ storage.Store = (*DB)(nil)

// Open connects to the database dsn names (a PostgreSQL URL or keyword/value
// string), brings its schema to this version (see migrate) and returns the
// store. A database whose schema is newer than this binary knows is refused
// with ErrSchemaTooNew.
func Open(ctx context.Context, dsn string, opts Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres: parse dsn: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	d := &DB{pool: pool, now: opts.Now, log: opts.Logger, leadCheck: opts.LeadCheck}
	if d.leadCheck <= 0 {
		d.leadCheck = DefaultLeadCheck
	}
	if d.now == nil {
		d.now = time.Now
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if err := d.migrate(ctx, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres: %w", err)
	}
	return d, nil
}

// Close stops the client cache's watch and closes the pool's connections.
func (d *DB) Close() error {
	d.clientWatchOnce.Do(func() {}) // no watch starts after this
	if d.stopClientWatch != nil {
		d.stopClientWatch()
		d.clientWatchDone.Wait()
	}
	d.pool.Close()
	return nil
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// inTx runs fn in a READ COMMITTED transaction, committed when fn returns
// nil and rolled back otherwise. Read-modify-write methods lock what they
// read (SELECT … FOR UPDATE) rather than run SERIALIZABLE: the caller's
// fn then runs exactly once, writers of one record queue on its row lock,
// and constraints are the unique indexes, which hold in any isolation.
func (d *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, d.pool, fn)
}

// flowTx is inTx for the records of sign-ins under way (authorization
// requests and their codes, device authorizations): their commits do not
// wait for the WAL to reach the disk (synchronous_commit off, for this
// transaction only). Each sign-in wrote six of them, each one a WAL flush
// (bench.sh PG_WRITES=1 counted 11.5 syncs per code flow). As with bolt's
// flow file, a crash of the database server may lose the last fraction of
// a second of them, which only makes people signing in at that moment
// start again: every such loss fails closed (a request, a code or an
// approval that is gone), and it damages nothing. What spends a code (its
// redemption) is no such write: it waits for its sync (RedeemCode is
// inTx's; a device code's redemption calls syncThisCommit), so a code
// that issued tokens is never usable again after a crash.
func (d *DB) flowTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return pgx.BeginTxFunc(ctx, d.pool, flowTxOptions, fn)
}

// flowTxOptions begins a READ COMMITTED transaction (inTx's) whose commit
// does not wait for the WAL flush, in one round trip.
var flowTxOptions = pgx.TxOptions{BeginQuery: "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit TO OFF"}

// syncThisCommit makes the commit of a flowTx transaction wait for its
// WAL sync after all.
func syncThisCommit(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SET LOCAL synchronous_commit TO ON")
	return err
}

// callbackError marks an error from a caller's fn, returned as it is (not
// mapped by dbErr).
type callbackError struct{ err error }

func (e *callbackError) Error() string { return e.err.Error() }
func (e *callbackError) Unwrap() error { return e.err }

// dbErr maps PostgreSQL's errors to the storage package's and adds what
// was done: no rows is ErrNotFound, a unique violation ErrConflict, a
// value PostgreSQL cannot hold (a NUL, invalid UTF-8, an index entry too
// large) ErrInvalid.
func dbErr(what string, err error) error {
	if err == nil {
		return nil
	}
	var cb *callbackError
	if errors.As(err, &cb) {
		return cb.err
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "23505": // unique_violation
			return fmt.Errorf("%s: %w (%s)", what, storage.ErrConflict, pe.ConstraintName)
		case "22021", "22P05", "54000": // NUL or bad UTF-8 in text; index row too large
			return fmt.Errorf("%s: %w: %s", what, storage.ErrInvalid, pe.Message)
		}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isUniqueViolation tells whether err is a unique violation of constraint
// ("" for any).
func isUniqueViolation(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

// notFound is ErrNotFound for the record key.
func notFound(what, key string) error {
	return fmt.Errorf("%s %q: %w", what, key, storage.ErrNotFound)
}

// utc reads a timestamptz as storage keeps times: in UTC, and the zero
// time as Go's zero time.
func utc(t time.Time) time.Time { return t.UTC() }

// marshal encodes a record for its record column.
func marshal(v any) ([]byte, error) { return json.Marshal(v) }

// unmarshal decodes a record column.
func unmarshal[T any](b []byte) (T, error) {
	var v T
	err := json.Unmarshal(b, &v)
	return v, err
}
