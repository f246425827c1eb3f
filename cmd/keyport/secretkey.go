package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/keyport/keyport/seal"
)

// newSealingKey writes a new sealing key to --to, for replicas that share one
// PostgreSQL database: serve generates the key itself only for a bbolt
// file, whose one process owns it. An existing file is never replaced (it
// may be the only key that opens a database's secrets).
func (c *cli) newSealingKey(_ context.Context, args []string) error {
	fs, _ := c.flags("keys new-sealing-key")
	to := fs.String("to", "", "file to write the new key to (must not exist)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return usageError{"keys new-sealing-key needs --to FILE"}
	}
	if _, err := os.Stat(*to); err == nil {
		return fmt.Errorf("%s exists: a sealing key is never overwritten (it may be the only one that opens a database's secrets)", *to)
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if _, _, err := seal.LoadOrCreateKey(*to, true); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "wrote a new sealing key to %s (mode 0600): give every replica this file (secret_key_file or KEYPORT_SECRET_KEY_FILE), and back it up apart from the database\n", *to)
	return nil
}
