package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// The test binary, started with envChildOp set, runs that one operation on
// the file envChildPath names and prints its outcome, instead of running
// tests: damage that crashes a process can then be tested from a parent
// that survives it.
const (
	envChildOp   = "KEYPORT_BOLT_CHILD_OP"
	envChildPath = "KEYPORT_BOLT_CHILD_PATH"
)

func TestMain(m *testing.M) {
	if op := os.Getenv(envChildOp); op != "" {
		childOp(op, os.Getenv(envChildPath))
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// childOp runs op (open, verify, copy) on path and prints one line:
// "OK", "DAMAGED <message>" or "ERROR <message>".
func childOp(op, path string) {
	var err error
	switch op {
	case "open":
		var d *DB
		if d, err = Open(path, Options{Timeout: time.Second}); err == nil {
			err = d.Close()
		}
	case "probe-full":
		// Probe with no room for the file to grow: a file-size limit at
		// its size (the growth probe then fails with EFBIG, as on a full
		// disk with ENOSPC). The log goes to stderr, Health to the last line.
		var d *DB
		if d, err = Open(path, Options{Timeout: time.Second, Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}); err != nil {
			break
		}
		fi, serr := os.Stat(path)
		if serr != nil {
			err = serr
			break
		}
		if err = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(fi.Size()), Max: ^uint64(0)}); err != nil {
			break
		}
		for range 3 {
			_ = d.Probe()
		}
		err = d.Health()
	case "verify":
		_, err = Verify(context.Background(), path)
	case "copy":
		err = CopyFile(context.Background(), path, io.Discard, time.Second)
	default:
		err = fmt.Errorf("unknown operation %q", op)
	}
	switch {
	case err == nil:
		fmt.Println("OK")
	case errors.Is(err, ErrDamaged):
		fmt.Println("DAMAGED", err)
	default:
		fmt.Println("ERROR", err)
	}
}

// inChild runs op on path in a child process and returns its last line of
// output, failing the test when the child crashes or hangs.
func inChild(t *testing.T, what, op, path string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildOp+"="+op, envChildPath+"="+path)
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Errorf("%s, %s: no answer within 2 minutes", what, op)
		return ""
	}
	if err != nil {
		t.Errorf("%s, %s: the process died (%v):\n%s", what, op, err, firstLines(string(out), 5))
		return ""
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return lines[len(lines)-1]
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// bigFreelistFile writes a store whose freelist holds more than 0xFFFF
// pages, so that bbolt stores its count as 0xFFFF followed by the real
// count in the first element. Pages of 1 KiB keep the file at 80 MiB.
func bigFreelistFile(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{PageSize: 1024, NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	populate(t, path, 50)
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("padding"))
		if err != nil {
			return err
		}
		return b.Put([]byte("big"), make([]byte, 72<<20))
	})
	if err == nil {
		err = db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("padding")) })
	}
	if err != nil {
		t.Fatal(err)
	}
}

// freelistPage returns the offset of the freelist page of the closed file
// at path and the file's page size.
func freelistPage(t *testing.T, path string) (off int64, pageSize int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, reason, err := readHeader(f)
	if reason != "" || err != nil {
		t.Fatalf("header of %s: %q %v", path, reason, err)
	}
	return int64(h.meta().freelist) * h.pageSize, int(h.pageSize)
}

// TestDamagedFreelistRefused damages the freelist page, which bbolt reads
// and trusts as it opens a file, and opens, verifies and copies each copy
// in a child process: each must refuse with the one-line damage error,
// never crash (a count with a high bit set made bbolt allocate terabytes:
// "fatal error: runtime: out of memory"), hang (an overflow count with a
// high bit set made bbolt's check loop over 2^28 pages for minutes), or
// accept the file (a count raised by one lists page 0, a meta page, which
// the first write that needs a page overwrites).
func TestDamagedFreelistRefused(t *testing.T) {
	dir := t.TempDir()
	small, big := filepath.Join(dir, "small.db"), filepath.Join(dir, "big.db")
	populate(t, small, 150)
	bigFreelistFile(t, big)

	type damage struct {
		what  string
		from  string
		apply func(raw []byte, fl int64)
		// leak: a page neither in use nor free, which only the full check
		// finds (bbolt merely never reuses it): a plain copy passes.
		leak bool
	}
	ne := binary.NativeEndian
	cases := []damage{
		{"count raised by one", small, func(b []byte, fl int64) { ne.PutUint16(b[fl+10:], ne.Uint16(b[fl+10:])+1) }, false},
		{"count lowered by one", small, func(b []byte, fl int64) { ne.PutUint16(b[fl+10:], ne.Uint16(b[fl+10:])-1) }, true},
		{"overflow's high byte ^ 0x10", small, func(b []byte, fl int64) { b[fl+15] ^= 0x10 }, false},
		{"not a freelist page", small, func(b []byte, fl int64) { b[fl+8] ^= 0x10 }, false},
		{"page number", small, func(b []byte, fl int64) { b[fl] ^= 0x01 }, false},
		{"long list's count field 0xFFFF ^ 0x01", big, func(b []byte, fl int64) { b[fl+10] ^= 0x01 }, false},
		{"long list's count lowered below 0xFFFF", big, func(b []byte, fl int64) { ne.PutUint64(b[fl+16:], 0xFFF0) }, false},
	}
	for i := 2; i < 8; i++ {
		cases = append(cases, damage{fmt.Sprintf("long list's count, byte %d ^ 0x01", i), big, func(b []byte, fl int64) { b[fl+16+int64(i)] ^= 0x01 }, false})
	}
	raws := map[string][]byte{}
	for _, from := range []string{small, big} {
		raw, err := os.ReadFile(from)
		if err != nil {
			t.Fatal(err)
		}
		raws[from] = raw
		// The undamaged files pass: a long list is no damage.
		for _, op := range []string{"open", "verify", "copy"} {
			if got := inChild(t, filepath.Base(from), op, from); got != "OK" {
				t.Errorf("%s, undamaged, %s: %s", filepath.Base(from), op, got)
			}
		}
	}
	bigFreelistOffset, _ := freelistPage(t, big)
	if n := ne.Uint16(raws[big][bigFreelistOffset+10:]); n != bigFreelist {
		t.Fatalf("the big file's freelist count field is %#x, not 0xFFFF", n)
	}
	for _, c := range cases {
		fl, _ := freelistPage(t, c.from)
		raw := bytes.Clone(raws[c.from])
		c.apply(raw, fl)
		path := filepath.Join(t.TempDir(), "keyport.db")
		if err := os.WriteFile(path, raw, 0o600); err != nil {
			t.Fatal(err)
		}
		for _, op := range []string{"open", "verify", "copy"} {
			got := inChild(t, c.what, op, path)
			if got == "" {
				continue // reported
			}
			if c.leak && op == "copy" {
				if got != "OK" {
					t.Errorf("%s, %s: %s", c.what, op, got)
				}
				continue
			}
			if !strings.HasPrefix(got, "DAMAGED database "+path+" is damaged (") || !strings.Contains(got, "restore") {
				t.Errorf("%s, %s: %s", c.what, op, got)
			}
		}
	}
}

// TestHeaderChoosesBboltsMeta: with either meta page damaged, the header
// check reads the meta (and so the freelist) that bbolt goes on to use.
func TestHeaderChoosesBboltsMeta(t *testing.T) {
	dir := t.TempDir()
	pristine, pages, pageSize := pristineFile(t, dir, 20)
	path := filepath.Join(dir, "keyport.db")
	compared := 0
	for _, f := range flipPlan(pages, pageSize) {
		if !strings.HasPrefix(f.what, "meta") {
			continue
		}
		damagedCopy(t, pristine, path, f)
		file, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		h, reason, err := readHeader(file)
		file.Close()
		db, berr := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
		if berr != nil {
			if reason == "" && err == nil {
				t.Errorf("%s: bbolt refuses (%v), the header check does not", f.what, berr)
			}
			continue
		}
		tx, berr := db.Begin(false)
		if berr != nil {
			t.Fatal(berr)
		}
		if reason != "" || err != nil {
			t.Errorf("%s: bbolt opens, the header check refuses: %q %v", f.what, reason, err)
		} else if got, want := h.meta().txid, uint64(tx.ID()); got != want {
			t.Errorf("%s: the header check reads txid %d, bbolt uses %d", f.what, got, want)
		}
		compared++
		tx.Rollback()
		db.Close()
	}
	if compared == 0 {
		t.Fatal("no damaged meta page left a file bbolt opens")
	}
}
