// Package nginxtest starts a real nginx for tests: one server block on a
// free loopback port, its files in a temp dir, stopped when the test ends.
// Tests put it in front of Keyport as the reverse proxy production uses.
//
// When nginx is not installed the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package nginxtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Server is a running nginx.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Addr string
	dir  string
}

func binary(t testing.TB) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
		t.Fatal("nginx is not installed (apt-get install nginx); KEYPORT_REQUIRE_INTEGRATION=1 requires the proxy tests")
	}
	t.Skip("nginx is not installed (apt-get install nginx): skipping the reverse-proxy tests")
	return ""
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
	bin := binary(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
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
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nginx: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	})
	for i := 0; i < 250; i++ {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
			t.Fatalf("nginx exited at start (%v): %s", err, log)
		default:
		}
		if c, err := net.Dial("tcp", addr); err == nil {
			c.Close()
			return &Server{URL: "http://" + addr, Addr: addr, dir: dir}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("nginx did not start listening")
	return nil
}

// ErrorLog returns what nginx has logged so far, for failure messages.
func (s *Server) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "error.log"))
	return string(b)
}
