package control

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

type fakeStore struct {
	data []byte
	fail error // after writing data
}

func (f fakeStore) Backup(_ context.Context, w io.Writer) error {
	if _, err := w.Write(f.data); err != nil {
		return err
	}
	return f.fail
}

func listen(t *testing.T, b Backuper) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), SocketName)
	s, err := Listen(path, b, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	go s.Serve()
	t.Cleanup(func() {
		s.Close()
		if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("socket left after Close: %v", err)
		}
	})
	return path
}

func TestBackupStream(t *testing.T) {
	data := bytes.Repeat([]byte("keyport"), 100000)
	path := listen(t, fakeStore{data: data})
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Fatalf("socket: %v %v", fi.Mode(), err)
	}
	var got bytes.Buffer
	if err := Backup(context.Background(), path, &got); err != nil || !bytes.Equal(got.Bytes(), data) {
		t.Fatalf("backup: %v, %d bytes", err, got.Len())
	}
}

// A failure after the stream began reaches the client (a trailer), so a
// short copy is never taken for a whole one.
func TestBackupFailureMidStream(t *testing.T) {
	path := listen(t, fakeStore{data: []byte("half a file"), fail: errors.New("disk on fire")})
	err := Backup(context.Background(), path, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("backup: %v", err)
	}
}

func TestNoServer(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, SocketName)
	if err := Backup(context.Background(), missing, io.Discard); !errors.Is(err, ErrNoServer) {
		t.Errorf("no socket: %v", err)
	}
	// A socket file left by a server that died: nobody listens.
	s, err := Listen(missing, fakeStore{}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	s.ln.(*peerCheckedListener).Listener.(interface{ SetUnlinkOnClose(bool) }).SetUnlinkOnClose(false)
	s.ln.Close()
	if _, err := os.Stat(missing); err != nil {
		t.Fatalf("the stale socket should still be there: %v", err)
	}
	if err := Backup(context.Background(), missing, io.Discard); !errors.Is(err, ErrNoServer) {
		t.Errorf("stale socket: %v", err)
	}
	// The next server replaces it.
	s, err = Listen(missing, fakeStore{data: []byte("x")}, nil, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("listen over a stale socket: %v", err)
	}
	go s.Serve()
	defer s.Close()
	var got bytes.Buffer
	if err := Backup(context.Background(), missing, &got); err != nil || got.String() != "x" {
		t.Errorf("backup from the new server: %v %q", err, got.String())
	}
}
