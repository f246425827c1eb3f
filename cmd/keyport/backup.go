package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keyport/keyport/control"
	"github.com/keyport/keyport/storage/bolt"
)

// backup writes a consistent copy of the database to --to: through the
// running server's control socket, or straight from the file when no
// server runs. The copy goes to a temporary file beside the target, is
// checked as start-up would check it, and only then takes the target's
// name; an existing file is replaced only with --force.
func (c *cli) backup(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("backup")
	to := fs.String("to", "", "file to write the backup to")
	force := fs.Bool("force", false, "replace the file if it exists")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *to == "" {
		return usageError{"backup needs --to FILE"}
	}
	cfg, err := c.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(*to); err == nil && !*force {
		return fmt.Errorf("%s exists; add --force to replace it", *to)
	}
	start := time.Now()
	tmp, err := os.CreateTemp(filepath.Dir(*to), "."+filepath.Base(*to)+".tmp-*")
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing left to remove
	how := "through the running server"
	err = control.Backup(ctx, filepath.Join(cfg.DataDir, control.SocketName), tmp)
	if errors.Is(err, control.ErrNoServer) {
		how = "from the file (no server running)"
		err = bolt.CopyFile(ctx, cfg.DBPath(), tmp, 300*time.Millisecond)
		if errors.Is(err, bolt.ErrLocked) {
			err = fmt.Errorf("the database %s is in use, but no server answers on %s: is it another program?", cfg.DBPath(), filepath.Join(cfg.DataDir, control.SocketName))
		}
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("backup of %s: %w", cfg.DBPath(), err)
	}
	rep, err := bolt.Verify(ctx, tmp.Name())
	if err != nil {
		var de *bolt.DamagedError
		if errors.As(err, &de) {
			return fmt.Errorf("the copy of %s fails the consistency check (%s), so the database itself is damaged; nothing was written to %s", cfg.DBPath(), de.Reason, *to)
		}
		return fmt.Errorf("check the copy of %s: %w", cfg.DBPath(), err)
	}
	if err := place(tmp.Name(), *to, *force); err != nil {
		return err
	}
	took := time.Since(start)
	fmt.Fprintf(c.stdout, "backup of %s written to %s %s in %s: %.1f MiB, consistent; schema %d, users: %d, apps: %d, signing keys: %d, sessions: %d, token families: %d\n",
		cfg.DBPath(), *to, how, took.Round(time.Millisecond), float64(rep.Size)/(1<<20), rep.SchemaVersion, rep.Users, rep.Clients, rep.SigningKeys, rep.Sessions, rep.TokenFamilies)
	fmt.Fprintf(c.stdout, "keep %s with it: the secrets sealed in the database cannot be opened without it\n", cfg.SecretKeyPath())
	return nil
}

// place gives the finished copy its name: a hard link, which fails when
// the name is taken, unless force allows a rename over it. The directory is
// synced so the name survives a crash.
func place(tmp, to string, force bool) error {
	if force {
		if err := os.Rename(tmp, to); err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	} else {
		err := os.Link(tmp, to)
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; add --force to replace it", to)
		}
		if err != nil {
			return fmt.Errorf("backup: %w", err)
		}
	}
	dir, err := os.Open(filepath.Dir(to))
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	defer dir.Close()
	if err := dir.Sync(); err != nil {
		return fmt.Errorf("backup: sync %s: %w", filepath.Dir(to), err)
	}
	return nil
}
