package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/keyport/keyport/account"
)

// cliActor is the command line as the audit log names it.
var cliActor = account.Actor{Kind: account.ActorCLI}

// userExport writes every user as JSON Lines to --out, or to standard
// output. The file holds password hashes: it is created for its owner
// only, and never over an existing file.
func (c *cli) userExport(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("user export")
	out := fs.String("out", "", "write to this file (created, mode 0600) instead of standard output")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	m, err := c.open(*cfgPath)
	if err != nil {
		return err
	}
	defer m.Close()
	w := c.stdout
	var f *os.File
	if *out != "" {
		if f, err = os.OpenFile(*out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600); err != nil {
			return fmt.Errorf("user export: %w", err)
		}
		w = f
	}
	n, err := m.Accounts.Users.ExportUsers(ctx, cliActor, w)
	if f != nil {
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(*out) // half an export is worse than none
			return err
		}
		fmt.Fprintf(c.stdout, "exported %d users to %s\n", n, *out)
	}
	return err
}

// userImport creates the users of a JSON Lines file (FILE, or - for
// standard input), all or nothing; --dry-run only checks it. Every
// problem goes to standard error with its line number.
func (c *cli) userImport(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("user import")
	dryRun := fs.Bool("dry-run", false, "check every line and report problems; write nothing")
	// FILE may come before or after the flags.
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() == 0 {
		return usageError{"user import needs a FILE (- for standard input)"}
	}
	file := fs.Arg(0)
	if err := c.parse(fs, fs.Args()[1:]); err != nil {
		return err
	}
	var r io.Reader = c.stdin
	if file != "-" {
		f, err := os.Open(file)
		if err != nil {
			return fmt.Errorf("user import: %w", err)
		}
		defer f.Close()
		r = f
	}
	m, err := c.open(*cfgPath)
	if err != nil {
		return err
	}
	defer m.Close()
	rep, err := m.Accounts.Users.ImportUsers(ctx, cliActor, r, account.ImportOptions{DryRun: *dryRun})
	for _, p := range rep.Problems {
		fmt.Fprintf(c.stderr, "%s: %s\n", file, p)
	}
	if err != nil {
		return err
	}
	if *dryRun {
		fmt.Fprintf(c.stdout, "dry run: %d users checked, no problems; nothing was written\n", rep.Users)
		return nil
	}
	fmt.Fprintf(c.stdout, "imported %d users; their passwords are upgraded to argon2id at their next sign-in\n", rep.Created)
	return nil
}
