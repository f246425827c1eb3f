package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// CopyFile writes a consistent copy of the database at path to w when no
// server holds it (a running server copies through DB.Backup instead). It
// opens the file read-only, waiting at most lockWait for the lock, and
// changes nothing in it.
func CopyFile(ctx context.Context, path string, w io.Writer, lockWait time.Duration) error {
	db, err := openBolt(path, &bbolt.Options{ReadOnly: true, Timeout: lockWait})
	if err != nil {
		return err
	}
	defer db.Close()
	err = newGuarded(db, path, slog.New(slog.DiscardHandler)).View(func(tx *bbolt.Tx) error {
		_, err := tx.WriteTo(ctxWriter{ctx: ctx, w: w})
		return err
	})
	if cerr := ctx.Err(); err != nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("copy database %s: %w", path, err)
	}
	return nil
}

// Report describes a database file that passed the check.
type Report struct {
	Size          int64
	SchemaVersion int
	Users         int
	Clients       int
	SigningKeys   int
	Sessions      int
	TokenFamilies int
	// Settings are the file's stored settings (GetSetting), among them
	// what a restore checks before it puts the file in place (the
	// sealing key's check value).
	Settings map[string][]byte
}

// Verify checks the database file at path as Open does (the header, then
// every page: checkSnapshot), read-only, and counts its main records. A
// file that fails gets a DamagedError.
func Verify(ctx context.Context, path string) (Report, error) {
	var rep Report
	fi, err := os.Stat(path)
	if err != nil {
		return rep, fmt.Errorf("verify %s: %w", path, err)
	}
	rep.Size = fi.Size()
	db, err := openBolt(path, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return rep, err
	}
	defer db.Close()
	err = newGuarded(db, path, slog.New(slog.DiscardHandler)).View(func(tx *bbolt.Tx) error {
		reason, err := checkTx(ctx, tx, path)
		if reason != "" {
			return &DamagedError{Path: path, Reason: reason}
		}
		if err != nil {
			return err
		}
		if rep.SchemaVersion, err = readSchemaVersion(tx); err != nil {
			return &DamagedError{Path: path, Reason: err.Error()}
		}
		for _, c := range []struct {
			n      *int
			bucket []byte
		}{
			{&rep.Users, bUsers}, {&rep.Clients, bClients}, {&rep.SigningKeys, bSigningKeys},
			{&rep.Sessions, bSessions}, {&rep.TokenFamilies, bFamilies},
		} {
			b := tx.Bucket(c.bucket)
			if b == nil {
				return &DamagedError{Path: path, Reason: fmt.Sprintf("bucket %s is missing", c.bucket)}
			}
			*c.n = b.Stats().KeyN
		}
		if b := tx.Bucket(bSettings); b != nil {
			rep.Settings = map[string][]byte{}
			err := b.ForEach(func(k, v []byte) error {
				rep.Settings[string(k)] = bytes.Clone(v)
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	return rep, err
}

// LockFile takes the exclusive lock on the database file at path that a
// server takes when it opens it, waiting at most timeout (ErrLocked when
// a server holds it), so that no server opens the file while a restore
// replaces it. A file that does not exist needs no lock. release gives it
// up.
func LockFile(path string, timeout time.Duration) (release func(), err error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return func() {}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("lock database %s: %w", path, err)
	}
	if err := lockFile(f, true, timeout); err != nil {
		_ = f.Close()
		if errors.Is(err, bolterrors.ErrTimeout) {
			return nil, &lockedError{path: path}
		}
		return nil, fmt.Errorf("lock database %s: %w", path, err)
	}
	return func() {
		unlock(f)
		_ = f.Close()
	}, nil
}
