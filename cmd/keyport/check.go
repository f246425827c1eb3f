package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage/postgres"
)

// `keyport check` checks the configured store as keyport serve would open
// it, and changes nothing. Its use is after a restore that did not go
// through keyport restore: a pg_restore, a point-in-time recovery, a copy
// of keyport.db made by hand. With bbolt it makes the checks of backup
// --check on the data directory's database (the server stopped); with
// PostgreSQL it compares the tables with the ones this keyport builds and
// checks the sealing key against the database's check value.
func (c *cli) check(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("check")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	cfg, err := c.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Storage.Type != config.StoragePostgres {
		if err := noServer(cfg, "check reads the database file it holds open (keyport backup --to FILE copies it online, and backup --check checks the copy)"); err != nil {
			return err
		}
		return c.backupCheck(ctx, cfg, cfg.DBPath(), "store")
	}
	rep, err := postgres.Check(ctx, cfg.Storage.DSN, settingSealCheck)
	if err != nil {
		return fmt.Errorf("check the PostgreSQL store (storage.dsn): %w", err)
	}
	var problems, notes []string
	switch {
	case rep.SchemaVersion == 0:
		return errors.New("the PostgreSQL database holds no keyport schema: it is empty, or the restore went into another database or schema; keyport serve would start afresh on it")
	case rep.SchemaVersion < rep.Latest:
		notes = append(notes, fmt.Sprintf("the database has schema version %d; keyport serve migrates it to %d when it starts", rep.SchemaVersion, rep.Latest))
	}
	if !rep.Compared {
		// The comparison is what finds what a restore lost: without it
		// the check has not been made.
		problems = append(problems, fmt.Sprintf("the tables could not be compared with the ones this keyport builds: %v", rep.CompareErr))
	}
	for _, m := range rep.Missing {
		problems = append(problems, "missing "+m)
	}
	for _, i := range rep.Invalid {
		problems = append(problems, "index "+i+" is not valid (an interrupted build): drop it and create it again")
	}
	for _, e := range rep.Extra {
		notes = append(notes, "not in keyport's schema (kept; harmless unless it constrains keyport's rows): "+e)
	}
	keyNote, keyErr := checkSealingKey(cfg, rep.Setting, "the PostgreSQL database", "the database's backup")
	if keyErr != nil {
		problems = append(problems, keyErr.Error())
	}
	if len(problems) > 0 {
		return fmt.Errorf("the PostgreSQL database is not as keyport needs it (nothing was changed):\n  %s", strings.Join(problems, "\n  "))
	}
	fmt.Fprintf(c.stdout, "the PostgreSQL database is a consistent keyport store: schema %d, users: %d, apps: %d, signing keys: %d, sessions: %d, token families: %d\n",
		rep.SchemaVersion, rep.Rows["users"], rep.Rows["clients"], rep.Rows["signing_keys"], rep.Rows["sessions"], rep.Rows["refresh_families"])
	if rep.Compared {
		fmt.Fprintln(c.stdout, "its tables, columns, indexes and constraints are the ones this keyport builds")
	}
	if keyNote == "" {
		fmt.Fprintf(c.stdout, "its secrets open with the sealing key %s\n", cfg.SecretKeyPath())
	} else {
		notes = append(notes, keyNote)
	}
	for _, n := range notes {
		fmt.Fprintln(c.stdout, n)
	}
	return nil
}
