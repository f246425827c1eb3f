package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/keyport/keyport/config"
)

// Backup and restore with storage.type "postgres": the copy is Keyport's
// own logical dump (postgres.DB.Backup: every table in one read-only
// snapshot, taken online while replicas serve), and restore loads it into
// an empty database (postgres.DB.Restore refuses one that holds records,
// another schema version, or a damaged copy, and then changes nothing).
// pg_dump remains the tool for whole-cluster backups.

// postgresBackup writes the copy to a temporary file beside to, then
// gives it its name.
func (c *cli) postgresBackup(ctx context.Context, cfg *config.Config, to string) error {
	db, err := openPostgres(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	tmp, err := os.CreateTemp(filepath.Dir(to), "."+filepath.Base(to)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after the rename there is nothing left to remove
	err = db.Backup(ctx, tmp)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), to)
	}
	if err != nil {
		return fmt.Errorf("backup of the PostgreSQL store: %w", err)
	}
	fi, err := os.Stat(to)
	if err != nil {
		return err
	}
	version, _ := db.SchemaVersion(ctx)
	fmt.Fprintf(c.stdout, "backup of the PostgreSQL store written to %s in %s: %.1f MiB, one consistent snapshot, schema %d; restore it into an empty database with keyport restore --from %s (keep %s with it)\n",
		to, time.Since(start).Round(time.Millisecond), float64(fi.Size())/(1<<20), version, to, cfg.SecretKeyPath())
	return nil
}

// postgresRestore loads the copy at from into the configured database,
// which must be empty (a new database: the replicas stopped, or pointed
// at it afterwards).
func (c *cli) postgresRestore(ctx context.Context, cfg *config.Config, from string) error {
	f, err := os.Open(from)
	if err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	defer f.Close()
	db, err := openPostgres(ctx, cfg, nil, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	start := time.Now()
	if err := db.Restore(ctx, f); err != nil {
		return fmt.Errorf("restore %s: %w; the database was not changed", from, err)
	}
	fmt.Fprintf(c.stdout, "restored %s into the PostgreSQL store in %s; start the replicas with the sealing key kept with this backup (serve refuses another)\n",
		from, time.Since(start).Round(time.Millisecond))
	return nil
}
