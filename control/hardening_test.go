package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envChildBackup, when set, makes the test binary run one Backup from the
// socket it names and print the outcome instead of running tests.
const envChildBackup = "KEYPORT_CONTROL_CHILD_BACKUP"

func TestMain(m *testing.M) {
	if path := os.Getenv(envChildBackup); path != "" {
		if err := Backup(context.Background(), path, io.Discard); err != nil {
			fmt.Println("ERROR", err)
		} else {
			fmt.Println("OK")
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// stallingStore streams until the stream fails, then reports how it ended.
type stallingStore struct{ ended chan error }

func (s stallingStore) Backup(_ context.Context, w io.Writer) error {
	chunk := make([]byte, 1<<20)
	for range 1024 {
		if _, err := w.Write(chunk); err != nil {
			s.ended <- err
			return err
		}
	}
	s.ended <- nil
	return nil
}

// TestStalledBackupClient: a client that asks for a backup and stops
// reading must not hold the stream (and with it a database transaction)
// open for ever: each write has a deadline.
func TestStalledBackupClient(t *testing.T) {
	old := backupWriteTimeout
	backupWriteTimeout = 200 * time.Millisecond
	t.Cleanup(func() { backupWriteTimeout = old })
	store := stallingStore{ended: make(chan error, 1)}
	path := listen(t, store)
	c, err := net.Dial("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET /backup HTTP/1.1\r\nHost: keyport\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-store.ended:
		if err == nil {
			t.Fatal("1 GiB went to a client that reads nothing")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the stream to a client that stopped reading never ended")
	}
}

// TestLongSocketPath: a data directory too deep for a Unix socket path
// (108 bytes) means no control socket; the client says there is no server
// (so backup reads the file when it is free) instead of failing.
func TestLongSocketPath(t *testing.T) {
	dir := t.TempDir()
	for len(dir) < 120 {
		dir = filepath.Join(dir, "a-rather-long-directory-name")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, SocketName)
	if _, err := Listen(path, fakeStore{}, nil, slog.New(slog.DiscardHandler)); err == nil || !errors.Is(err, errPathTooLong) {
		t.Errorf("listen on a %d-byte path: %v", len(path), err)
	}
	if err := Backup(context.Background(), path, io.Discard); !errors.Is(err, ErrNoServer) {
		t.Errorf("backup through a %d-byte path: %v", len(path), err)
	}
}

// TestOtherUsersRefused: even with the socket's and the directory's modes
// opened up, a connection from another user (not root) is closed unserved.
func TestOtherUsersRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to connect as another user")
	}
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	child := filepath.Join(dir, "control.test")
	if err := os.WriteFile(child, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for d := dir; d != filepath.Dir(d) && strings.HasPrefix(d, os.TempDir()) && d != os.TempDir(); d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, SocketName)
	s, err := Listen(path, fakeStore{data: []byte("secrets")}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	defer s.Close()
	if err := os.Chmod(path, 0o777); err != nil {
		t.Fatal(err)
	}
	run := func(uid uint32) string {
		cmd := exec.Command(child)
		cmd.Env = append(os.Environ(), envChildBackup+"="+path)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
		out, err := cmd.CombinedOutput()
		if errors.Is(err, os.ErrPermission) {
			// A temp dir under a directory closed to others (TMPDIR).
			t.Skipf("uid %d cannot run the test binary in %s: %v", uid, dir, err)
		}
		if err != nil {
			t.Fatalf("child as uid %d: %v\n%s", uid, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if got := run(65534); !strings.HasPrefix(got, "ERROR") {
		t.Errorf("uid 65534 through an open socket: %s", got)
	}
	if got := run(0); got != "OK" {
		t.Errorf("root: %s", got)
	}
}
