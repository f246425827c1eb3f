// Package caddytest starts a real Caddy for tests: one plain-HTTP site on a
// free loopback port, its state in a temp dir, stopped when the test ends.
//
// When caddy is not installed the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package caddytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keyport/keyport/internal/daemontest"
)

// Server is a running Caddy.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Addr string
	log  *os.File
}

// Start runs Caddy with one site, http://ADDR { body }, on a free loopback
// port.
func Start(t testing.TB, body string) *Server {
	t.Helper()
	bin := daemontest.Binary(t, "caddy", "Caddy tests", "caddy")
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
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
	s := &Server{URL: "http://" + addr, Addr: addr, log: logf}
	t.Cleanup(func() { logf.Close() })
	t.Cleanup(daemontest.Start(t, cmd, addr, s.Log).Stop)
	return s
}

// Log returns what Caddy has logged so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.log.Name())
	return string(b)
}
