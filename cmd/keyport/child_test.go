package main

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testlog"
)

// envRunMain makes the test binary run as the keyport command itself (see
// TestMain), so tests can start `keyport serve` as a process of its own:
// one they can kill, and whose memory they can read from /proc, without
// building a second binary.
const envRunMain = "KEYPORT_TEST_RUN_MAIN"

// childServer is `keyport serve` running in a child process.
type childServer struct {
	t    *testing.T
	URL  string
	Addr string
	Dir  string
	cmd  *exec.Cmd
	logs *testlog.Buffer
	done chan error
}

// startChild runs `keyport serve` in a child process with its data in dir (a
// fresh temp dir when empty) and configTOML (may be empty) as its
// configuration file; the issuer and listen address are a free loopback
// port. It returns once the server answers /healthz. The process is stopped
// with SIGTERM when the test ends, unless the test killed it.
func startChild(t *testing.T, dir, configTOML string, env ...string) *childServer {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfgPath := filepath.Join(t.TempDir(), "keyport.toml")
	if err := os.WriteFile(cfgPath, []byte(configTOML), 0o600); err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	c := &childServer{t: t, URL: "http://" + addr, Addr: addr, Dir: dir, logs: &testlog.Buffer{}, done: make(chan error, 1)}
	c.cmd = exec.Command(self, "serve", "--config", cfgPath)
	c.cmd.Env = append(os.Environ(), envRunMain+"=1",
		"KEYPORT_DATA_DIR="+dir, "KEYPORT_ISSUER=http://"+addr, "KEYPORT_LISTEN="+addr)
	c.cmd.Env = append(c.cmd.Env, env...)
	c.cmd.Stdout, c.cmd.Stderr = c.logs, c.logs
	if err := c.cmd.Start(); err != nil {
		t.Fatalf("start keyport serve: %v", err)
	}
	go func() { c.done <- c.cmd.Wait() }()
	t.Cleanup(func() { _ = c.stop() })
	for i := 0; i < 500; i++ {
		select {
		case err := <-c.done:
			c.done <- err
			t.Fatalf("keyport serve exited at start (%v):\n%s", err, c.logs)
		default:
		}
		if resp, err := http.Get(c.URL + "/healthz"); err == nil {
			resp.Body.Close()
			return c
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("keyport serve did not answer:\n%s", c.logs)
	return nil
}

// stop ends the server gracefully (SIGTERM), waits for it and returns how
// it exited. Once it has exited, stop only returns that.
func (c *childServer) stop() error {
	select {
	case err := <-c.done:
		c.done <- err
		return err
	default:
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-c.done:
		c.done <- err
		return err
	case <-time.After(15 * time.Second):
		_ = c.cmd.Process.Kill()
		err := <-c.done
		c.done <- err
		c.t.Errorf("keyport serve did not stop on SIGTERM:\n%s", c.logs)
		return err
	}
}

// kill ends the server as a crash would (SIGKILL) and waits for it.
func (c *childServer) kill() {
	c.t.Helper()
	_ = c.cmd.Process.Kill()
	c.done <- <-c.done
}

// Logs returns what the server has written so far.
func (c *childServer) Logs() string { return c.logs.String() }

// memory reads the server's resident memory now and at its peak
// (VmRSS and VmHWM in /proc/PID/status), in bytes.
func (c *childServer) memory() (rss, peak int64) {
	c.t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		c.t.Fatalf("read memory of keyport serve: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (k != "VmRSS" && k != "VmHWM") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			c.t.Fatalf("parse %s of keyport serve: %q", k, v)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			peak = kb << 10
		}
	}
	if rss == 0 || peak == 0 {
		c.t.Fatal("no VmRSS/VmHWM in /proc status")
	}
	return rss, peak
}

// runAsMain is called by TestMain: when the test binary was started by
// startChild, it is the keyport command and never runs tests.
func runAsMain() {
	if os.Getenv(envRunMain) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() { // as main does: a second signal ends the process at once
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// The child harness itself: a real process that answers, has memory to read,
// and stops cleanly on SIGTERM.
func TestChildServer(t *testing.T) {
	c := startChild(t, "", "log_level = \"debug\"\n")
	rss, peak := c.memory()
	if rss <= 0 || peak < rss {
		t.Errorf("memory: rss %d, peak %d", rss, peak)
	}
	if err := c.stop(); err != nil {
		t.Errorf("keyport serve exited with %v after SIGTERM:\n%s", err, c.Logs())
	}
	if !strings.Contains(c.Logs(), "shutting down") {
		t.Errorf("no shutdown in the log:\n%s", c.Logs())
	}
}
