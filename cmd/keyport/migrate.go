package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"text/tabwriter"
	"time"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// migrateStore is a store keyport migrate copies from or into.
type migrateStore interface {
	storage.Dumper
	storage.Loader
	Close() error
}

// migrate copies every record from one backend to the other (storage.Dumper
// into storage.Loader), then dumps the target and compares the count and
// digest of each kind with the source's. The target must be empty; the
// bbolt file must not be in use (its lock tells that keyport serve runs).
func (c *cli) migrate(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("migrate")
	from := fs.String("from", "", "backend to copy from: bolt or postgres")
	to := fs.String("to", "", "backend to copy into (empty): bolt or postgres")
	dsn := fs.String("dsn", "", "PostgreSQL connection string (default: [storage] dsn, dsn_file or KEYPORT_STORAGE_DSN)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	for _, b := range []struct{ flag, value string }{{"--from", *from}, {"--to", *to}} {
		if b.value != config.StorageBolt && b.value != config.StoragePostgres {
			return usageError{fmt.Sprintf("migrate needs %s bolt or %s postgres", b.flag, b.flag)}
		}
	}
	if *from == *to {
		return usageError{fmt.Sprintf("migrate copies between two backends: --from and --to are both %s", *from)}
	}
	cfg, err := c.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if *dsn != "" {
		cfg.Storage.DSN = *dsn
	}
	if cfg.Storage.DSN == "" {
		return usageError{"migrate needs a PostgreSQL connection string: --dsn, or [storage] dsn, dsn_file or KEYPORT_STORAGE_DSN in the configuration"}
	}
	log := slog.New(slog.DiscardHandler)
	src, err := openMigrateStore(ctx, cfg, *from, true, log)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := openMigrateStore(ctx, cfg, *to, false, log)
	if err != nil {
		return err
	}
	defer dst.Close()

	start := time.Now()
	var recs []storage.Record
	var want storage.Summarizer
	err = src.Dump(ctx, func(r storage.Record) error {
		recs = append(recs, r)
		return want.Add(r)
	})
	if err != nil {
		return fmt.Errorf("read the %s store: %w", *from, err)
	}
	dumped := time.Since(start)
	if err := dst.Load(ctx, recs); err != nil {
		if errors.Is(err, storage.ErrNotEmpty) {
			return fmt.Errorf("the %s store (%s) already holds records, and keyport migrate copies into an empty store only; nothing was changed (%w)",
				*to, describeStore(cfg, *to), err)
		}
		return fmt.Errorf("copy into the %s store (%s); nothing was written: %w", *to, describeStore(cfg, *to), err)
	}
	loaded := time.Since(start) - dumped
	got, err := storage.Summarize(ctx, dst)
	if err != nil {
		return fmt.Errorf("read the copy back from the %s store: %w", *to, err)
	}
	mismatch := printMigration(c.stdout, want.Result(), got)
	fmt.Fprintf(c.stdout, "\nCopied %d records from %s (%s) to %s (%s): read in %s, written in %s.\n",
		len(recs), *from, describeStore(cfg, *from), *to, describeStore(cfg, *to), dumped.Round(time.Millisecond), loaded.Round(time.Millisecond))
	fmt.Fprintln(c.stdout, "Not copied: sign-ins in progress (authorization requests and codes, which live for minutes); people who were signing in start again.")
	if *from == config.StoragePostgres {
		fmt.Fprintln(c.stdout, "The copy is one snapshot of the database: stop every keyport serve on it before switching, or what they write afterwards is not in the copy.")
	}
	if mismatch > 0 {
		return fmt.Errorf("the copy differs from the source in %d kinds of records (see the table); do not switch to it", mismatch)
	}
	fmt.Fprintf(c.stdout, "Sealed values (signing keys, TOTP and directory secrets, webhook secrets) were copied as they are: every keyport on the %s store needs the sealing key %s.\n",
		*to, cfg.SecretKeyPath())
	if *to == config.StoragePostgres {
		fmt.Fprintln(c.stdout, `Next: set [storage] type = "postgres" (with dsn or dsn_file) in the configuration and start keyport serve.`)
	} else {
		fmt.Fprintln(c.stdout, `Next: set [storage] type = "bolt" in the configuration and start keyport serve.`)
	}
	return nil
}

// openMigrateStore opens one side of a migration. A bbolt source must
// exist; a bbolt file that another process holds is refused (serve runs).
func openMigrateStore(ctx context.Context, cfg *config.Config, backend string, source bool, log *slog.Logger) (migrateStore, error) {
	switch backend {
	case config.StorageBolt:
		path := cfg.DBPath()
		if source {
			if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("there is no bbolt database to copy from at %s (data_dir is %s)", path, cfg.DataDir)
			}
		} else if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
			return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
		}
		db, err := bolt.Open(path, bolt.Options{Timeout: 300 * time.Millisecond, Logger: log, MaxPendingSignIns: cfg.Limits.MaxPendingSignIns})
		if errors.Is(err, bolt.ErrLocked) {
			return nil, &inUseError{path: path, err: err}
		}
		if err != nil {
			return nil, err
		}
		return db, nil
	case config.StoragePostgres:
		db, err := openPostgres(ctx, cfg, nil, log)
		if err != nil {
			return nil, err // not a typed nil in the interface
		}
		return db, nil
	}
	return nil, fmt.Errorf("unknown backend %q", backend)
}

// describeStore names a store for messages, never with the DSN (it may
// hold a password).
func describeStore(cfg *config.Config, backend string) string {
	if backend == config.StorageBolt {
		return cfg.DBPath()
	}
	return "the PostgreSQL database of the DSN"
}

// printMigration prints each kind's count in the source and in the copy
// and whether their digests agree, and returns how many kinds differ.
func printMigration(w io.Writer, want, got []storage.KindSummary) int {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "records\tsource\tcopy\tchecksum\t")
	mismatch := 0
	for i, k := range want {
		g := got[i]
		verdict := "ok"
		if g.Count != k.Count || g.Digest != k.Digest {
			verdict = "DIFFERS"
			mismatch++
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t\n", k.Kind, k.Count, g.Count, verdict)
	}
	tw.Flush()
	return mismatch
}
