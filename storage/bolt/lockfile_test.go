package bolt

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// TestLockFileAndSettings: LockFile is refused while a server holds the
// file and keeps a server out while it is held; Verify reports the
// file's settings (what a restore checks the sealing key against).
func TestLockFileAndSettings(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyport.db")
	release, err := LockFile(path, 100*time.Millisecond)
	if err != nil {
		t.Fatalf("lock a file that does not exist: %v", err)
	}
	release()

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.PutSetting(context.Background(), "seal-key-check", []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := LockFile(path, 100*time.Millisecond); !errors.Is(err, ErrLocked) {
		t.Errorf("lock while a server holds the file: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	release, err = LockFile(path, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{Timeout: 100 * time.Millisecond}); !errors.Is(err, ErrLocked) {
		t.Errorf("open while the lock is held: %v", err)
	}
	release()
	rep, err := Verify(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Settings["seal-key-check"]; string(got) != "\x01\x02\x03" {
		t.Errorf("settings in the report: %q", got)
	}
}
