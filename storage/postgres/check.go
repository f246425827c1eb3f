package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// A database restored by pg_restore, recovered to a point in time or
// copied by hand is checked before replicas are pointed at it (`keyport
// check`): Open would migrate it and serve would start on whatever it
// holds. Check looks without changing anything: it reads the schema
// version, builds the tables that version has in a scratch schema inside
// its own transaction (rolled back: nothing is left behind) and compares
// columns, indexes and constraints with the database's, so an index that a
// restore failed to build (a unique one refused by duplicate rows) or a
// table it skipped is named; and it counts every table's rows.

// CountedTables are the tables whose rows Check counts: the ones `keyport
// check` reports. Only Keyport's, and few: a count reads the whole table.
var CountedTables = []string{"users", "clients", "signing_keys", "sessions", "refresh_families"}

// CheckReport is what Check found.
type CheckReport struct {
	SchemaVersion int // the database's; 0 when it has none (an empty database)
	Latest        int // the newest this keyport knows
	// Missing is what the schema of SchemaVersion has and the database
	// lacks ("index users_email_key: CREATE UNIQUE INDEX …"), Extra what
	// the database has beyond it (an index an administrator added).
	Missing, Extra []string
	// Invalid names indexes PostgreSQL holds as not valid (an interrupted
	// CREATE INDEX CONCURRENTLY): never used, never checked for
	// uniqueness.
	Invalid []string
	// Compared tells whether the structure was compared: it needs the
	// right to create a schema (granted to the database's owner).
	Compared   bool
	CompareErr error
	Rows       map[string]int64 // rows of CountedTables
	// Setting is the value of the setting Check was asked for (nil when
	// it is not stored).
	Setting []byte
}

// Check looks at the database dsn names as Open would use it, changing
// nothing, and returns the setting named setting along with what it found.
// A database newer than this keyport is an error wrapping ErrSchemaTooNew;
// one with no Keyport schema at all reports SchemaVersion 0.
func Check(ctx context.Context, dsn, setting string) (CheckReport, error) {
	rep := CheckReport{Latest: migrations[len(migrations)-1].version, Rows: map[string]int64{}}
	// Parsed as Open parses it: a DSN may carry pgxpool's own settings
	// (pool_max_conns …), which pgx.Connect would send to the server as
	// unknown parameters.
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return rep, fmt.Errorf("check: parse dsn: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return rep, fmt.Errorf("check: connect: %w", err)
	}
	defer closeConn(conn)
	tx, err := conn.Begin(ctx)
	if err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	defer tx.Rollback(context.WithoutCancel(ctx)) //nolint:errcheck // everything it did is undone
	// A check must not hold up a server: it waits at most a few seconds
	// for a lock (a migration's), and gives up on a statement that runs
	// for minutes.
	if _, err := tx.Exec(ctx, "SET LOCAL lock_timeout = '5s'; SET LOCAL statement_timeout = '5min'"); err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	// In current_schema(), where Open builds (and creates schema_version
	// when that schema lacks it), not wherever search_path finds one: a
	// schema_version in a later schema of the path is not what serve
	// would use.
	var hasVersions bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_tables WHERE schemaname = current_schema() AND tablename = 'schema_version')`).Scan(&hasVersions); err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	if !hasVersions {
		return rep, nil
	}
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&rep.SchemaVersion); err != nil {
		return rep, fmt.Errorf("check: read the schema version: %w", err)
	}
	if rep.SchemaVersion > rep.Latest {
		return rep, fmt.Errorf("check: the database is at schema version %d, this keyport knows up to %d: %w", rep.SchemaVersion, rep.Latest, ErrSchemaTooNew)
	}
	have, err := catalog(ctx, tx)
	if err != nil {
		return rep, fmt.Errorf("check: read the database's tables: %w", err)
	}
	if rep.Invalid, err = invalidIndexes(ctx, tx); err != nil {
		return rep, fmt.Errorf("check: %w", err)
	}
	tables := tablesOf(have)
	for _, t := range CountedTables {
		if !slices.Contains(tables, t) {
			continue
		}
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{t}.Sanitize()).Scan(&n); err != nil {
			return rep, fmt.Errorf("check: count the rows of %s: %w", t, err)
		}
		rep.Rows[t] = n
	}
	if slices.Contains(tables, "settings") {
		err := tx.QueryRow(ctx, "SELECT value FROM settings WHERE name = $1", setting).Scan(&rep.Setting)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return rep, fmt.Errorf("check: read setting %q: %w", setting, err)
		}
	}
	// Last, as it may fail for want of a right: the schema as this
	// keyport builds it, in a scratch schema of this transaction.
	want, err := scratchCatalog(ctx, tx, rep.SchemaVersion)
	if err != nil {
		rep.CompareErr = err
		return rep, nil
	}
	rep.Compared = true
	for k, v := range want {
		switch got, ok := have[k]; {
		case !ok:
			rep.Missing = append(rep.Missing, k+": "+v)
		case got != v:
			rep.Missing = append(rep.Missing, k+": "+v+" (the database has: "+got+")")
		}
	}
	for k, v := range have {
		if _, ok := want[k]; !ok {
			rep.Extra = append(rep.Extra, k+": "+v)
		}
	}
	slices.Sort(rep.Missing)
	slices.Sort(rep.Extra)
	return rep, nil
}

// scratchCatalog builds the schema of version in a new schema of tx (under
// a savepoint, so a refusal leaves tx usable) and returns its catalog.
func scratchCatalog(ctx context.Context, tx pgx.Tx, version int) (map[string]string, error) {
	sp, err := tx.Begin(ctx)
	if err != nil {
		return nil, err
	}
	// A name no one else uses: nothing of this schema outlives the
	// transaction.
	var suffix [6]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return nil, err
	}
	scratch := "keyport_check_" + hex.EncodeToString(suffix[:])
	if _, err := sp.Exec(ctx, "CREATE SCHEMA "+scratch); err != nil {
		_ = sp.Rollback(ctx)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42501" {
			return nil, fmt.Errorf("compare the tables with this keyport's: the role may not create a schema in this database (run the check as the database's owner): %w", err)
		}
		return nil, fmt.Errorf("compare the tables with this keyport's: %w", err)
	}
	if _, err := sp.Exec(ctx, "SET LOCAL search_path TO "+scratch); err != nil {
		_ = sp.Rollback(ctx)
		return nil, err
	}
	for _, m := range migrations {
		if m.version > version {
			break
		}
		if err := m.apply(ctx, sp); err != nil {
			_ = sp.Rollback(ctx)
			return nil, fmt.Errorf("build schema version %d to compare with: %w", m.version, err)
		}
	}
	want, err := catalog(ctx, sp)
	if rerr := sp.Rollback(ctx); err == nil {
		err = rerr
	}
	return want, err
}

// catalog describes the tables of the current schema, keyed by what each
// entry is: "column users.email" → its type and whether it may be NULL,
// "index users_email_key" → its definition, "constraint …" → its
// definition. Names are printed without the schema (search_path is the
// schema being described), so two schemas compare as equal when they are.
// Keyport's own bookkeeping table, schema_version, is left out.
func catalog(ctx context.Context, q querier) (map[string]string, error) {
	out := map[string]string{}
	add := func(sql string) error {
		rows, err := q.Query(ctx, sql)
		if err != nil {
			return err
		}
		var k, v string
		_, err = pgx.ForEachRow(rows, []any{&k, &v}, func() error {
			out[k] = v
			return nil
		})
		return err
	}
	err := add(`SELECT 'column ' || c.relname || '.' || a.attname,
			format_type(a.atttypid, a.atttypmod)
			|| CASE WHEN a.attnotnull THEN ' NOT NULL' ELSE '' END
			|| coalesce(' COLLATE ' || nullif(co.collname, 'default'), '')
			|| coalesce(' DEFAULT ' || pg_get_expr(d.adbin, d.adrelid), '')
			|| CASE WHEN a.attidentity <> '' THEN ' IDENTITY' ELSE '' END
		FROM pg_attribute a
		JOIN pg_class c ON c.oid = a.attrelid
		LEFT JOIN pg_collation co ON co.oid = a.attcollation
		LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')
			AND c.relname <> 'schema_version' AND a.attnum > 0 AND NOT a.attisdropped`)
	if err == nil {
		err = add(`SELECT 'index ' || indexname, replace(indexdef, ' ' || quote_ident(schemaname) || '.', ' ')
			FROM pg_indexes WHERE schemaname = current_schema() AND tablename <> 'schema_version'`)
	}
	if err == nil {
		err = add(`SELECT 'constraint ' || c.relname || '.' || k.conname, pg_get_constraintdef(k.oid)
			FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
			WHERE k.connamespace = current_schema()::regnamespace AND c.relname <> 'schema_version'`)
	}
	return out, err
}

// tablesOf lists the tables a catalog names, sorted.
func tablesOf(cat map[string]string) []string {
	var ts []string
	for k := range cat {
		if col, ok := strings.CutPrefix(k, "column "); ok {
			t, _, _ := strings.Cut(col, ".")
			if !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
	}
	slices.Sort(ts)
	return ts
}

// invalidIndexes names the current schema's indexes PostgreSQL does not
// use.
func invalidIndexes(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE c.relnamespace = current_schema()::regnamespace AND NOT (i.indisvalid AND i.indisready)
		ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
