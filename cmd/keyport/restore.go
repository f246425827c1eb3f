package main

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/control"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage/bolt"
)

// restore replaces the database with a backup (`keyport backup --to`).
//
// It asks nothing: it is meant for scripts and runbooks. It refuses while
// a server runs on the data directory (the control socket answers, or the
// file lock is held), and it changes nothing until the backup has passed
// every check start-up would make and the ones start-up could only make
// too late: a copy in the data directory is checked page by page, its
// schema must not be newer than this keyport's, and the data directory's
// sealing key must be the one the backup's secrets were sealed with. Then
// the current database is kept under a new name (a hard link, so the
// database's own name never goes missing) and the copy is renamed over it.
//
// A backup older in schema than the current database is restored, not
// refused: that is how an upgrade is rolled back (the older keyport with
// the backup taken before the upgrade), and a newer keyport migrates the
// file forward at start, as it does any older database. Nothing is lost
// either way: the replaced database stays beside it.
func (c *cli) restore(ctx context.Context, args []string) error {
	fs, cfgPath := c.flags("restore")
	from := fs.String("from", "", "backup file to restore (written by keyport backup --to)")
	if err := c.parse(fs, args); err != nil {
		return err
	}
	if *from == "" {
		return usageError{"restore needs --from FILE"}
	}
	cfg, err := c.loadConfig(*cfgPath)
	if err != nil {
		return err
	}
	if cfg.Storage.Type == config.StoragePostgres {
		return c.postgresRestore(ctx, cfg, *from)
	}
	db := cfg.DBPath()
	if sameName(*from, db) {
		return fmt.Errorf("%s is the database itself; restore from a backup written by keyport backup --to", *from)
	}
	if _, err := os.Stat(*from); err != nil {
		return fmt.Errorf("restore: %w", err)
	}
	if err := noServer(cfg, "restore replaces the database it has open"); err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
	}
	// Held to the end: a server started meanwhile waits, then finds the
	// restored file.
	release, err := bolt.LockFile(db, 300*time.Millisecond)
	if errors.Is(err, bolt.ErrLocked) {
		return fmt.Errorf("the database %s is in use: stop keyport serve first (restore replaces the file a running server has open); nothing was changed", db)
	}
	if err != nil {
		return err
	}
	defer release()

	start := time.Now()
	tmp, err := copyToTemp(ctx, *from, cfg.DataDir)
	if err != nil {
		return err
	}
	defer os.Remove(tmp) // after the rename there is nothing left to remove
	// The checks read the copy: what is put in place is what was checked.
	rep, note, err := checkBackup(ctx, cfg, tmp, *from, "backup")
	if err != nil {
		return err
	}
	kept, err := keepReplaced(db, start)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, db); err != nil {
		return fmt.Errorf("restore: put the backup in place of %s: %w", db, err)
	}
	if err := syncDir(cfg.DataDir); err != nil {
		return err
	}
	// Sign-ins in progress and codes not yet redeemed belong to the
	// database that was replaced.
	flows := bolt.FlowPath(db)
	if err := os.Remove(flows); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("restored %s, but could not remove the flow database %s of the database it replaced (remove it before starting keyport): %w", db, flows, err)
	}
	fmt.Fprintf(c.stdout, "restored %s from %s in %s: schema %d, users: %d, apps: %d, signing keys: %d, sessions: %d, token families: %d\n",
		db, *from, time.Since(start).Round(time.Millisecond), rep.SchemaVersion, rep.Users, rep.Clients, rep.SigningKeys, rep.Sessions, rep.TokenFamilies)
	if kept != "" {
		fmt.Fprintf(c.stdout, "the database it replaced is kept as %s (remove it once the restored one serves)\n", kept)
	}
	if note != "" {
		fmt.Fprintln(c.stdout, note)
	}
	fmt.Fprintln(c.stdout, "sign-ins that were in progress must start again; start keyport serve")
	return nil
}

// backupCheck is `keyport backup --check FILE`: every check restore makes,
// without restoring.
// what is what file is: "backup", or "store" for keyport check.
func (c *cli) backupCheck(ctx context.Context, cfg *config.Config, file, what string) error {
	rep, note, err := checkBackup(ctx, cfg, file, file, what)
	if err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s is a consistent keyport %s: %.1f MiB, schema %d, users: %d, apps: %d, signing keys: %d, sessions: %d, token families: %d\n",
		file, what, float64(rep.Size)/(1<<20), rep.SchemaVersion, rep.Users, rep.Clients, rep.SigningKeys, rep.Sessions, rep.TokenFamilies)
	if note != "" {
		fmt.Fprintln(c.stdout, note)
	} else {
		fmt.Fprintf(c.stdout, "its secrets open with the sealing key %s\n", cfg.SecretKeyPath())
	}
	return nil
}

// noServer refuses when a server answers on the data directory's control
// socket (the file lock, taken next, catches one that runs without it).
func noServer(cfg *config.Config, why string) error {
	sock := filepath.Join(cfg.DataDir, control.SocketName)
	conn, err := net.DialTimeout("unix", sock, time.Second)
	if err != nil {
		return nil
	}
	conn.Close()
	return fmt.Errorf("keyport serve is running on %s (it answers on %s): stop it first, %s; nothing was changed", cfg.DataDir, sock, why)
}

// copyToTemp copies the backup to a new file in dir, synced, and returns
// its name. The caller removes it unless it renames it.
func copyToTemp(ctx context.Context, from, dir string) (string, error) {
	src, err := os.Open(from)
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(dir, ".keyport.db.restore-*")
	if err != nil {
		return "", fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(ctxWriter{ctx: ctx, w: tmp}, src)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(tmp.Name())
		return "", fmt.Errorf("restore: copy %s into %s: %w", from, dir, err)
	}
	return tmp.Name(), nil
}

// ctxWriter stops a long copy when its context ends.
type ctxWriter struct {
	ctx context.Context
	w   io.Writer
}

func (c ctxWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.w.Write(p)
}

// checkBackup checks the backup file at path (named name to the operator)
// as restore needs it: consistent page by page (bolt.Verify, the check
// start-up makes), a schema this keyport understands, and secrets sealed
// with the data directory's key. note says what could not be checked, or
// what start-up will do.
func checkBackup(ctx context.Context, cfg *config.Config, path, name, what string) (rep bolt.Report, note string, err error) {
	rep, err = bolt.Verify(ctx, path)
	if err != nil {
		var de *bolt.DamagedError
		if errors.As(err, &de) {
			return rep, "", fmt.Errorf("%s is not a usable %s: it fails the consistency check (%s); nothing was changed", name, what, de.Reason)
		}
		return rep, "", fmt.Errorf("check the %s %s: %w", what, name, err)
	}
	if rep.SchemaVersion > bolt.SchemaVersion() {
		return rep, "", fmt.Errorf("%s has schema version %d, but this keyport understands up to %d: restore it with the keyport that wrote it (or a newer one); nothing was changed",
			name, rep.SchemaVersion, bolt.SchemaVersion())
	}
	if rep.SchemaVersion < bolt.SchemaVersion() {
		note = fmt.Sprintf("the %s has schema version %d; keyport serve migrates it to %d when it starts", what, rep.SchemaVersion, bolt.SchemaVersion())
	}
	keyNote, err := checkSealingKey(cfg, rep.Settings[settingSealCheck], name, "the "+what)
	return rep, joinNotes(note, keyNote), err
}

// checkSealingKey checks that the configured sealing key is the one whose
// check value, stored, the copy called name (what: "the backup") holds. A
// copy that stores none gives a note: start-up proves the key against a
// sealed secret instead (openSealingKey).
func checkSealingKey(cfg *config.Config, stored []byte, name, what string) (note string, err error) {
	keyPath := cfg.SecretKeyPath()
	if stored == nil {
		return fmt.Sprintf("%s does not record which sealing key its secrets need; keyport serve checks %s against them when it starts", what, keyPath), nil
	}
	key, _, err := seal.LoadOrCreateKey(keyPath, false)
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("the secrets in %s are sealed with a key, and the sealing key %s does not exist: put the secret.key kept with %s there first; nothing was changed", name, keyPath, what)
	}
	if err != nil {
		return "", fmt.Errorf("read the sealing key: %w", err)
	}
	if subtle.ConstantTimeCompare(seal.Check(key), stored) != 1 {
		return "", fmt.Errorf("the sealing key %s is not the key the secrets in %s were sealed with: put the secret.key kept with %s at %s first; nothing was changed",
			keyPath, name, what, keyPath)
	}
	return "", nil
}

func joinNotes(a, b string) string {
	if a == "" {
		return b
	}
	return a + "\n" + b
}

// keepReplaced gives the current database a second name,
// keyport.db.before-restore-TIMESTAMP, and returns it ("" when there is no
// database). A hard link: the database keeps its own name until the
// restored file is renamed over it; where links are refused, a copy.
func keepReplaced(db string, at time.Time) (string, error) {
	if _, err := os.Lstat(db); errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	base := db + ".before-restore-" + at.UTC().Format("20060102T150405Z")
	for i := 1; ; i++ {
		kept := base
		if i > 1 {
			kept = base + "-" + strconv.Itoa(i)
		}
		err := os.Link(db, kept)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			err = copyExclusive(db, kept)
		}
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("restore: keep the current database as %s: %w; nothing was changed", kept, err)
		}
		return kept, nil
	}
}

// copyExclusive copies from to to, a file it creates (failing when to
// exists), synced.
func copyExclusive(from, to string) (err error) {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := dst.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(to)
		}
	}()
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	return dst.Sync()
}

// syncDir makes the renames in dir survive a crash.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
