package main

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDiskFullHealth fills the disk under a running `keyport serve` (a
// child process) and checks that it says so: /healthz answers 503 with the
// reason while writes fail and 200 again once they work, the log holds back
// the flood of identical errors, and the process survives.
//
// The full disk is a file-size limit (RLIMIT_FSIZE, set with prlimit on the
// child) at the database's current size: needing no mount, it works for
// any user and in any container. Growing a file past the limit fails with
// EFBIG, as growing it on a full disk fails with ENOSPC. The kernel also
// sends SIGXFSZ, whose default action ends a process, but the Go runtime
// catches it and ignores it (os/signal: SIGXFSZ is among the signals that
// "otherwise cause no action"), so the write returns the error instead;
// the server staying up through this test checks exactly that.
func TestDiskFullHealth(t *testing.T) {
	dir := t.TempDir()
	r := cliMust(t, cliEnv(dir), "", "client", "create", "--id", "filler", "--grant", "client_credentials")
	_, secret, ok := strings.Cut(r.Stdout, "store it now): ")
	if !ok {
		t.Fatalf("no secret: %s", r)
	}
	secret = strings.TrimSpace(secret)
	c := startChild(t, dir, "log_level = \"debug\"\n")
	pid := c.cmd.Process.Pid

	token := func() int {
		req, _ := http.NewRequest(http.MethodPost, c.URL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("filler", secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("token request: %v\n%s", err, c.Logs())
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	get := func(path string) (int, string) {
		resp, err := http.Get(c.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v\n%s", path, err, c.Logs())
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("healthz before: %d %s", code, body)
	}

	fi, err := os.Stat(filepath.Join(dir, "keyport.db"))
	if err != nil {
		t.Fatal(err)
	}
	full := &unix.Rlimit{Cur: uint64(fi.Size()), Max: unix.RLIM_INFINITY}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, full, nil); err != nil {
		if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("prlimit on the server: %v; KEYPORT_REQUIRE_INTEGRATION=1 requires the full-disk test", err)
		}
		t.Skipf("cannot limit the server's file size (prlimit: %v): skipping the full-disk test", err)
	}

	// Tokens until the file must grow and cannot.
	issued := 0
	for ; token() == 200; issued++ {
		if issued > 50000 {
			t.Fatalf("50000 tokens and no write failed under a %d-byte file-size limit", fi.Size())
		}
	}
	code, body := get("/healthz")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "database writes are failing (file too large)") {
		t.Fatalf("healthz with writes failing: %d %q\n%s", code, body, c.Logs())
	}
	// Not ready either, with the reason in JSON.
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || body != `{"status":"unavailable","reason":"database: database writes are failing (file too large)"}`+"\n" {
		t.Errorf("readyz with writes failing: %d %q", code, body)
	}
	// Reads still work.
	if code, _ := get("/.well-known/openid-configuration"); code != 200 {
		t.Errorf("discovery with a full disk: %d", code)
	}
	// The flood: 300 failing requests do not make 300 error lines.
	before := strings.Count(c.Logs(), "level=ERROR")
	for range 300 {
		if code := token(); code == 200 {
			t.Fatal("a write worked on the full disk")
		}
	}
	if n := strings.Count(c.Logs(), "level=ERROR") - before; n > 30 {
		t.Errorf("300 failing requests wrote %d error lines", n)
	}
	// A probe does not clear the failure while the file cannot grow.
	probed := `msg="probed database writes" path=` + filepath.Join(dir, "keyport.db")
	seen := strings.Count(c.Logs(), probed)
	for deadline := time.Now().Add(4 * probeInterval); strings.Count(c.Logs(), probed) == seen; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no probe:\n%s", c.Logs())
		}
	}
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable {
		t.Errorf("healthz after probes on the full disk: %d %q", code, body)
	}

	// Room again: the next probe says so, and writes work.
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}, nil); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(4 * probeInterval); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := get("/healthz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz stays failing after the disk has room:\n%s", c.Logs())
		}
	}
	if code := token(); code != 200 {
		t.Errorf("token after the disk has room: %d", code)
	}
	for deadline := time.Now().Add(4 * probeInterval); ; time.Sleep(50 * time.Millisecond) {
		if code, _ := get("/readyz"); code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("readyz stays failing after the disk has room:\n%s", c.Logs())
		}
	}
	if err := c.stop(); err != nil {
		var ee interface{ Sys() any }
		if errors.As(err, &ee) {
			if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
				t.Fatalf("the server died of %v:\n%s", ws.Signal(), c.Logs())
			}
		}
		t.Fatalf("the server exited with %v:\n%s", err, c.Logs())
	}
	logs := c.Logs()
	for _, bad := range []string{"panic:", "goroutine "} {
		if strings.Contains(logs, bad) {
			t.Errorf("the log has %q:\n%s", bad, logs)
		}
	}
	if !strings.Contains(logs, "similar messages") || !strings.Contains(logs, "database writes work again") {
		t.Errorf("the log lacks the suppressed count or the recovery:\n%s", logs)
	}
	t.Logf("%d tokens fitted; %d error lines in all", issued, strings.Count(logs, "level=ERROR"))
}
