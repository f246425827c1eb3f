package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"

	"github.com/keyport/keyport/account"
)

// userExport writes every user as JSON Lines to --out, or to standard
// output, through the management API (GET /users/export). The file holds
// password hashes: it is created for its owner only, and never over an
// existing file.
func (c *cli) userExport(ctx context.Context, args []string) error {
	return c.export(ctx, args, "user export", "/users/export", "users")
}

// importReport is the answer of POST /users/import.
type importReport struct {
	Users    int  `json:"users"`
	Created  int  `json:"created"`
	DryRun   bool `json:"dry_run"`
	Problems []struct {
		Line    int    `json:"line"`
		Field   string `json:"field"`
		Message string `json:"message"`
	} `json:"problems"`
	Message string `json:"message"`
}

// userImport creates the users of a JSON Lines file (FILE, or - for
// standard input), all or nothing, through the management API (POST
// /users/import); --dry-run only checks it. Every problem goes to
// standard error with its line number.
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
	api, err := c.connect(*cfgPath)
	if err != nil {
		return err
	}
	defer api.close()
	path := "/users/import"
	if *dryRun {
		path += "?dry_run=true"
	}
	resp, err := api.do(ctx, http.MethodPost, path, "application/x-ndjson", r)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnprocessableEntity {
		return readAPIError(resp)
	}
	var rep importReport
	if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
		return fmt.Errorf("read the import report: %w", err)
	}
	for _, p := range rep.Problems {
		fmt.Fprintf(c.stderr, "%s: %s\n", file, account.ImportProblem{Line: p.Line, Field: p.Field, Message: p.Message})
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New(rep.Message)
	}
	if *dryRun {
		fmt.Fprintf(c.stdout, "dry run: %d users checked, no problems; nothing was written\n", rep.Users)
		return nil
	}
	fmt.Fprintf(c.stdout, "imported %d users; their passwords are upgraded to argon2id at their next sign-in\n", rep.Created)
	return nil
}
