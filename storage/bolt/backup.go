package bolt

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	bbolt "go.etcd.io/bbolt"
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
		return nil
	})
	return rep, err
}
