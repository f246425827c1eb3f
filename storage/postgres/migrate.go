package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"github.com/jackc/pgx/v5"
)

// ErrSchemaTooNew is returned by Open (wrapped) when the database was
// migrated by a newer Keyport, whose schema this one does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this version of keyport understands")

// schemaFiles are the tables of schema version 1, one file per area,
// applied in name order (010_users.sql, 020_groups.sql, …). Each area adds
// its own file, so areas are built in parallel without touching each
// other's; the numbers leave room between them.
//
//go:embed schema/*.sql
var schemaFiles embed.FS

// migration brings the schema from version-1 to version.
type migration struct {
	version int
	name    string
	apply   func(ctx context.Context, tx pgx.Tx) error
}

// migrations are every schema version, oldest first. Version 1 is the
// schema files; a change after the backend ships is a new entry here,
// never an edit of a file version 1 applied.
var migrations = []migration{
	{1, "initial schema", applySchemaFiles},
	{2, "device authorizations", applyDeviceSchema},
	{3, "device authorizations by origin", applyDeviceOriginSchema},
}

// applySchemaFiles runs every schema file, in name order.
func applySchemaFiles(ctx context.Context, tx pgx.Tx) error {
	names, err := fs.Glob(schemaFiles, "schema/*.sql")
	if err != nil {
		return err
	}
	slices.Sort(names)
	for _, name := range names {
		sql, err := schemaFiles.ReadFile(name)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, string(sql)); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// migrationLock is the advisory lock key replicas take while they look
// at and change the schema: one migrates, the others wait and then find
// nothing left to do. (Keyport's advisory lock keys are small constants;
// this is "keyport migrate" in ASCII, shortened.)
const migrationLock int64 = 0x6b70_6d69_6772_6174

// migrate applies the migrations the database lacks, each in a
// transaction of its own that holds the advisory lock and records the new
// version in schema_version: a migration that fails leaves the database
// at the version before it, and two replicas starting at once apply each
// migration once. A database at a version newer than the last of ms is
// refused.
func (d *DB) migrate(ctx context.Context, ms []migration) error {
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	for {
		done := false
		err := d.inTx(ctx, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLock); err != nil {
				return fmt.Errorf("take the migration lock: %w", err)
			}
			if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_version (
				version    integer NOT NULL,
				applied_at timestamptz NOT NULL DEFAULT now(),
				name       text NOT NULL
			)`); err != nil {
				return fmt.Errorf("create schema_version: %w", err)
			}
			var current int
			if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&current); err != nil {
				return fmt.Errorf("read the schema version: %w", err)
			}
			if current > latest {
				return fmt.Errorf("the database is at schema version %d, this keyport knows up to %d: run a keyport at least as new as the one that migrated it: %w", current, latest, ErrSchemaTooNew)
			}
			i := slices.IndexFunc(ms, func(m migration) bool { return m.version > current })
			if i < 0 {
				done = true
				return nil
			}
			m := ms[i]
			d.log.Info("migrating the database schema", "from", current, "to", m.version, "migration", m.name)
			if err := m.apply(ctx, tx); err != nil {
				return fmt.Errorf("migrate to schema version %d (%s): %w", m.version, m.name, err)
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_version (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil || done {
			return err
		}
	}
}

// SchemaVersion returns the database's schema version.
func (d *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := d.pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_version").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("read the schema version: %w", err)
	}
	return v, nil
}
