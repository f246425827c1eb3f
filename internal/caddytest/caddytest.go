// Package caddytest starts a real Caddy for tests: one plain-HTTP site on a
// free loopback port, its state in a temp dir, stopped when the test ends.
//
// When caddy is not installed the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package caddytest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Server is a running Caddy.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Addr string
	log  *os.File
}

func binary(t testing.TB) string {
	t.Helper()
	if path, err := exec.LookPath("caddy"); err == nil {
		return path
	}
	if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("caddy is not installed (apt-get install caddy); KEYPORT_REQUIRE_INTEGRATION=1 requires the proxy tests")
	}
	t.Skip("caddy is not installed (apt-get install caddy): skipping the Caddy tests")
	return ""
}

// Start runs Caddy with one site, http://ADDR { body }, on a free loopback
// port.
func Start(t testing.TB, body string) *Server {
	t.Helper()
	bin := binary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := fmt.Sprintf("{\n\tadmin off\n\tauto_https off\n}\nhttp://%s {\n%s\n}\n", addr, body)
	confPath := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "caddy.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "run", "--config", confPath, "--adapter", "caddyfile")
	// Caddy keeps state under $HOME and the XDG directories: keep it in dir.
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start caddy: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	s := &Server{URL: "http://" + addr, Addr: addr, log: logf}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
		logf.Close()
	})
	for i := 0; i < 250; i++ {
		select {
		case err := <-exited:
			t.Fatalf("caddy exited at start (%v): %s", err, s.Log())
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return s
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("caddy did not start listening: %s", s.Log())
	return nil
}

// Log returns what Caddy has logged so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log.Name())
	return string(b)
}
