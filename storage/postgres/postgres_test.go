package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/storagetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// schema is a database migrated to this version, which every test's
// database copies.
var schema = pgtest.Template{Name: "keyport_schema", Keep: []string{"schema_version"}, Prepare: func(ctx context.Context, dsn string) error {
	d, err := Open(ctx, dsn, Options{})
	if err != nil {
		return err
	}
	return d.Close()
}}

// openTest opens a fresh, migrated database for t, closed when t ends.
func openTest(t *testing.T, now func() time.Time) *DB {
	t.Helper()
	d, err := Open(t.Context(), schema.Database(t), Options{Now: now})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
		return openTest(t, now)
	})
}

func TestOpenMigratesOnceAndAgainIsANoOp(t *testing.T) {
	dsn := pgtest.Database(t)
	ctx := t.Context()
	// Replicas starting together: the advisory lock lets one migrate.
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			d, err := Open(ctx, dsn, Options{})
			if err == nil {
				d.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
	}
	d, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatalf("open a migrated database: %v", err)
	}
	defer d.Close()
	var rows int
	if err := d.pool.QueryRow(ctx, "SELECT count(*) FROM schema_version").Scan(&rows); err != nil {
		t.Fatal(err)
	}
	v, err := d.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := migrations[len(migrations)-1].version
	if v != last || rows != len(migrations) {
		t.Fatalf("schema version %d with %d rows, want %d with one row per migration (%d)", v, rows, last, len(migrations))
	}
}

// A migration that fails half-way leaves the database at the version
// before it, with nothing of the migration in it, and the next start
// tries again.
func TestFailedMigrationLeavesTheDatabaseAsItWas(t *testing.T) {
	dsn := pgtest.Database(t)
	ctx := t.Context()
	d, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	broken := append(slices.Clone(migrations), migration{version: migrations[len(migrations)-1].version + 1, name: "broken",
		apply: func(ctx context.Context, tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "CREATE TABLE half_done (x int); ALTER TABLE users ADD COLUMN half_done int"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "SELECT no_such_column FROM users")
			return err
		}})
	if err := d.migrate(ctx, broken); err == nil {
		t.Fatal("a failing migration succeeded")
	}
	v, err := d.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := migrations[len(migrations)-1].version; v != want {
		t.Fatalf("schema version %d after a failed migration, want %d", v, want)
	}
	var tables, columns int
	if err := d.pool.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'half_done'").Scan(&tables); err != nil {
		t.Fatal(err)
	}
	if err := d.pool.QueryRow(ctx, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'users' AND column_name = 'half_done'").Scan(&columns); err != nil {
		t.Fatal(err)
	}
	if tables != 0 || columns != 0 {
		t.Fatalf("a failed migration left %d tables and %d columns behind", tables, columns)
	}
	// The store still works, and a fixed migration applies.
	if err := d.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatalf("create a user after a failed migration: %v", err)
	}
	fixed := append(slices.Clone(migrations), migration{version: broken[len(broken)-1].version, name: "fixed",
		apply: func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "ALTER TABLE users ADD COLUMN half_done int")
			return err
		}})
	if err := d.migrate(ctx, fixed); err != nil {
		t.Fatalf("the fixed migration: %v", err)
	}
}

func TestNewerSchemaIsRefused(t *testing.T) {
	dsn := pgtest.Database(t)
	ctx := t.Context()
	d, err := Open(ctx, dsn, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.pool.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES (999, 'from the future')"); err != nil {
		t.Fatal(err)
	}
	d.Close()
	_, err = Open(ctx, dsn, Options{})
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("open a database of schema 999: got %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Fatalf("the error does not name the database's version: %v", err)
	}
}
