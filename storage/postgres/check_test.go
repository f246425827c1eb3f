package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/storage"
)

func mustCheck(t *testing.T, dsn string) CheckReport {
	t.Helper()
	rep, err := Check(t.Context(), dsn, "seal-key-check")
	if err != nil {
		t.Fatalf("check: %v", err)
	}
	return rep
}

// alterableDatabase is a database migrated by Open, of the test's own:
// not one of schema's copies, which are emptied and handed to the next
// test, since these tests change the schema (a dropped constraint, an
// index, a version from the future) and the next test would get it.
func alterableDatabase(t *testing.T) string {
	t.Helper()
	dsn := pgtest.Database(t)
	d, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	return dsn
}

func containing(list []string, part string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, part) })
}

// TestCheckFindsWhatARestoreLost: a database as Open leaves it checks
// clean; one whose restore lost a unique index, or that gained an index,
// is named for it; its rows and the asked-for setting are reported; and
// the check itself changes nothing.
func TestCheckFindsWhatARestoreLost(t *testing.T) {
	dsn := alterableDatabase(t)
	d, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	ctx := t.Context()
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	if err := d.CreateUser(ctx, storage.User{ID: "u1", Username: "alice", Email: "alice@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := d.PutSetting(ctx, "seal-key-check", []byte("sealed check value")); err != nil {
		t.Fatal(err)
	}
	rep := mustCheck(t, dsn)
	if rep.SchemaVersion != rep.Latest || !rep.Compared || len(rep.Missing)+len(rep.Extra)+len(rep.Invalid) != 0 {
		t.Fatalf("a fresh database: %+v", rep)
	}
	if rep.Rows["users"] != 1 || rep.Rows["clients"] != 0 || string(rep.Setting) != "sealed check value" {
		t.Fatalf("rows %v, setting %q", rep.Rows, rep.Setting)
	}

	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, sql := range []string{
		"ALTER TABLE credentials DROP CONSTRAINT credentials_hash_key", // as a restore refused by duplicates leaves it
		"CREATE INDEX users_extra ON users (created_at)",
		"ALTER TABLE clients ALTER COLUMN record DROP NOT NULL",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	rep = mustCheck(t, dsn)
	if !containing(rep.Missing, "index credentials_hash_key: CREATE UNIQUE INDEX credentials_hash_key ON credentials USING btree (hash)") ||
		!containing(rep.Missing, "constraint credentials.credentials_hash_key: UNIQUE (hash)") ||
		!containing(rep.Missing, "column clients.record: json NOT NULL (the database has: json)") || len(rep.Missing) != 3 {
		t.Errorf("missing: %q", rep.Missing)
	}
	if !containing(rep.Extra, "index users_extra") || len(rep.Extra) != 1 {
		t.Errorf("extra: %q", rep.Extra)
	}
	var scratch bool
	if err := admin.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname LIKE 'keyport\\_check\\_%')").Scan(&scratch); err != nil || scratch {
		t.Errorf("the check left its scratch schema behind: %v, %v", scratch, err)
	}
}

// TestCheckOfOtherDatabases: an empty database has schema 0, one migrated
// by a newer keyport is refused, and a role that may not create a schema
// still gets the rest of the report.
func TestCheckOfOtherDatabases(t *testing.T) {
	ctx := t.Context()
	empty := mustCheck(t, pgtest.Database(t))
	if empty.SchemaVersion != 0 || len(empty.Rows) != 0 {
		t.Errorf("empty database: %+v", empty)
	}

	dsn := alterableDatabase(t)
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(ctx)
	for _, sql := range []string{
		"CREATE ROLE keyport_reader LOGIN",
		"GRANT USAGE ON SCHEMA public TO keyport_reader",
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO keyport_reader",
	} {
		if _, err := admin.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	// Not t.Context(): it is canceled before cleanups run, and the role,
	// the cluster's and not the database's, would outlive the test.
	t.Cleanup(func() {
		ctx := context.Background()
		c, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop keyport_reader: %v", err)
			return
		}
		defer c.Close(ctx)
		for _, sql := range []string{"DROP OWNED BY keyport_reader", "DROP ROLE keyport_reader"} {
			if _, err := c.Exec(ctx, sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	})
	reader := strings.Replace(dsn, "user=postgres", "user=keyport_reader", 1)
	rep := mustCheck(t, reader)
	if rep.Compared || rep.CompareErr == nil || !strings.Contains(rep.CompareErr.Error(), "may not create a schema") || rep.SchemaVersion != rep.Latest {
		t.Errorf("a role without CREATE: compared %v (%v), %+v", rep.Compared, rep.CompareErr, rep)
	}

	if _, err := admin.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, 'from the future')", rep.Latest+1); err != nil {
		t.Fatal(err)
	}
	if _, err := Check(ctx, dsn, "seal-key-check"); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("a newer schema: %v, want ErrSchemaTooNew", err)
	}
}

// TestCheckTakesTheDSNOpenTakes: keyport check checks the store "as serve
// would open it", so a DSN that Open accepts must reach the database in
// Check too; pgxpool's own settings (pool_max_conns and the other pool_*
// keys) are part of such a DSN.
func TestCheckTakesTheDSNOpenTakes(t *testing.T) {
	dsn := schema.Database(t) + " pool_max_conns=4"
	d, err := Open(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	d.Close()
	if rep := mustCheck(t, dsn); rep.SchemaVersion != rep.Latest {
		t.Errorf("%+v", rep)
	}
}

// TestCheckLooksWhereOpenBuilds: Open builds in current_schema(), the
// first schema of search_path that exists, and creates schema_version
// there when that schema lacks one. A database whose keyport tables are
// in public while search_path names an existing, empty schema before it
// (a schema named after the role, "$user", as PostgreSQL 15's locked-down
// public schema has administrators create) is a database serve starts
// afresh on; Check must not read public's schema_version and report a
// keyport schema there.
func TestCheckLooksWhereOpenBuilds(t *testing.T) {
	dsn := alterableDatabase(t)
	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close(t.Context())
	if _, err := admin.Exec(t.Context(), "CREATE SCHEMA app"); err != nil {
		t.Fatal(err)
	}
	inApp := dsn + " options='-c search_path=app,public'"
	rep := mustCheck(t, inApp)
	if rep.SchemaVersion != 0 {
		t.Errorf("check reads schema version %d, with the app schema empty (missing %d, rows %v)", rep.SchemaVersion, len(rep.Missing), rep.Rows)
	}
	d, err := Open(t.Context(), inApp, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d.Close()
	var n int
	if err := admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_tables WHERE schemaname = 'app'").Scan(&n); err != nil || n == 0 {
		t.Fatalf("open did not build in schema app: %d tables, %v", n, err)
	}
}
