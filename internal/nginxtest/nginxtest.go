// Package nginxtest starts a real nginx for tests: one server block on a
// free loopback port, its files in a temp dir, stopped when the test ends.
// Tests put it in front of Keyport as the reverse proxy production uses.
//
// When nginx is not installed the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package nginxtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/keyport/keyport/internal/daemontest"
)

// Server is a running nginx.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Addr string
	dir  string
}

// Start runs nginx with one server block listening on a free loopback port;
// body is what goes inside the block after its listen line (locations,
// proxy_pass and so on).
func Start(t testing.TB, body string) *Server {
	t.Helper()
	return StartWith(t, "", body)
}

// StartWith is Start with directives for the http block too (map, upstream).
func StartWith(t testing.TB, httpBlock, body string) *Server {
	t.Helper()
	bin := daemontest.Binary(t, "nginx", "reverse-proxy tests", "nginx", "/usr/sbin/nginx")
	dir := t.TempDir()
	addr := daemontest.FreeAddr(t)
	// master_process off: one process, running as the test's user, that
	// stops with a signal; every path nginx writes to is in dir.
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 512; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	%[4]s
	server {
		listen %[2]s;
		%[3]s
	}
}
`, dir, addr, body, httpBlock)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", confPath, "-e", filepath.Join(dir, "error.log"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	s := &Server{URL: "http://" + addr, Addr: addr, dir: dir}
	t.Cleanup(daemontest.Start(t, cmd, addr, s.ErrorLog).Stop)
	return s
}

// ErrorLog returns what nginx has logged so far, for failure messages.
func (s *Server) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
	return string(b)
}
