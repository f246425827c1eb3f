package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/control"
	"github.com/keyport/keyport/storage/bolt"
)

// backup writes a consistent copy of the database to --to: through the
// running server's control socket, or straight from the file when no
// server runs. The copy goes to a temporary file beside the target, is
// checked as start-up would check it, and only then takes the target's
// name; an existing file is replaced only with --force. With --check it
// checks a backup instead, as restore would.
func (c *cli) backup(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("backup")
	to := fs.String("to", "", "file to write the backup to")
	force := fs.Bool("force", false, "replace the file if it exists")
	check := fs.String("check", "", "check a backup file as keyport restore would, without restoring it")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if (*to == "") == (*check == "") {
		return usageError{"backup needs --to FILE (or --check FILE)"}
	}
	cfg, err := c.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Storage.Type == config.StoragePostgres {
		if *check != "" {
			return usageError{"backup --check checks a bbolt copy; a PostgreSQL copy is checked as it is restored (keyport restore refuses a damaged one and changes nothing), and keyport check checks the database itself"}
		}
		if _, err := os.Lstat(*to); err == nil && !*force {
			return fmt.Errorf("%s exists; add --force to replace it", *to)
		}
		return c.postgresBackup(ctx, cfg, *to)
	}
	if *check != "" {
		return c.backupCheck(ctx, cfg, *check, "backup")
	}
	if err := notKeyportsOwn(cfg, *cfgPath, *to); err != nil {
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
	if noServer := err; errors.Is(err, control.ErrNoServer) {
		how = "from the file (no server running)"
		err = bolt.CopyFile(ctx, cfg.DBPath(), tmp, 300*time.Millisecond)
		if errors.Is(err, bolt.ErrLocked) {
			// Say why the server could not be asked: a socket path too
			// long for the data directory, say, and not only "none".
			err = fmt.Errorf("the database %s is in use, but it cannot be copied through a server (%w): is keyport serve running without its control socket (see its log), or is it another program?", cfg.DBPath(), noServer)
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

// notKeyportsOwn refuses a target that is one of the running Keyport's
// own files: --force would rename the copy over the live database (whose
// server then writes to a file no longer there), the key or the socket.
func notKeyportsOwn(cfg *config.Config, cfgPath, to string) error {
	own := []struct{ path, what string }{
		{cfg.DBPath(), "database"},
		{bolt.FlowPath(cfg.DBPath()), "flow database"},
		{cfg.SecretKeyPath(), "sealing key"},
		{filepath.Join(cfg.DataDir, control.SocketName), "control socket"},
	}
	if cfgPath != "" {
		own = append(own, struct{ path, what string }{cfgPath, "configuration file"})
	}
	for _, o := range own {
		if sameName(to, o.path) {
			return fmt.Errorf("%s is keyport's %s; write the backup elsewhere, best outside %s, so that it is not lost with the data", to, o.what, cfg.DataDir)
		}
	}
	return nil
}

// sameName reports whether a and b name the same entry of the same
// directory, however the directory is spelled (symbolic links, ".."), or
// the same file (b a symbolic link to a, say: a database moved to another
// disk with a link left in the data directory, or a hard link).
func sameName(a, b string) bool {
	if fa, err := os.Stat(a); err == nil {
		if fb, err := os.Stat(b); err == nil && os.SameFile(fa, fb) {
			return true
		}
	}
	if filepath.Base(a) != filepath.Base(b) {
		return false
	}
	da, err := os.Stat(filepath.Dir(a))
	if err != nil {
		return false
	}
	db, err := os.Stat(filepath.Dir(b))
	return err == nil && os.SameFile(da, db)
}

// place gives the finished copy its name: a rename that fails when the
// name is taken (see renameNoReplace), unless force allows a rename over
// it. The directory is synced so the name survives a crash.
func place(tmp, to string, force bool) error {
	var err error
	if force {
		err = os.Rename(tmp, to)
	} else {
		err = renameNoReplace(tmp, to)
		if errors.Is(err, errors.ErrUnsupported) {
			err = copyNew(tmp, to)
		}
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; add --force to replace it", to)
		}
	}
	if err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	if err := syncDir(filepath.Dir(to)); err != nil {
		return fmt.Errorf("backup: %w", err)
	}
	return nil
}

// copyNew copies tmp to to, a file it creates (failing when to exists),
// syncs it and removes tmp: the way to place a copy where the file system
// can neither rename without replacing nor make hard links (FAT, some
// network file systems).
func copyNew(tmp, to string) error {
	if err := copyExclusive(tmp, to); err != nil {
		return err
	}
	return os.Remove(tmp)
}
