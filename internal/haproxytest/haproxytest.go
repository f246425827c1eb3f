// Package haproxytest starts a real HAProxy for tests: one HTTP frontend
// on a free loopback port balancing round robin, without stickiness, over
// the given backends, stopped when the test ends. Tests put it in front of
// several Keyport replicas as a load balancer in production would.
//
// A backend that stops answering is taken out after one failed health
// check (GET /healthz every 200 ms), and a request whose connection to a
// backend fails is sent to another: what a production balancer does so
// that a replica's crash costs no request that had not reached it.
//
// When haproxy is not installed the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package haproxytest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyport/keyport/internal/daemontest"
)

// Server is a running HAProxy.
type Server struct {
	URL  string // http://127.0.0.1:PORT
	Addr string
	dir  string
}

// Start runs HAProxy balancing round robin over backends (host:port each).
func Start(t testing.TB, backends ...string) *Server {
	t.Helper()
	return StartOn(t, daemontest.FreeAddr(t), backends...)
}

// StartOn is Start listening on addr: for backends that must know the
// balancer's address (their issuer) before it starts.
func StartOn(t testing.TB, addr string, backends ...string) *Server {
	t.Helper()
	bin := daemontest.Binary(t, "haproxy", "load-balancer tests", "haproxy", "/usr/sbin/haproxy")
	dir := t.TempDir()
	var servers strings.Builder
	for i, b := range backends {
		fmt.Fprintf(&servers, "\tserver replica%d %s check inter 200ms fall 1 rise 2\n", i+1, b)
	}
	conf := fmt.Sprintf(`global
	log stderr format short local0 warning
	maxconn 1024
	pidfile %[1]s/haproxy.pid

defaults
	mode http
	log global
	timeout connect 2s
	timeout client 30s
	timeout server 30s
	retries 2
	option redispatch
	retry-on conn-failure empty-response

frontend keyport
	bind %[2]s
	default_backend replicas

backend replicas
	balance roundrobin
	option httpchk GET /healthz
%[3]s`, dir, addr, servers.String())
	confPath := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "haproxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	// -db: stay in the foreground, one process that stops with a signal.
	cmd := exec.Command(bin, "-db", "-f", confPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	s := &Server{URL: "http://" + addr, Addr: addr, dir: dir}
	t.Cleanup(daemontest.Start(t, cmd, addr, s.Log).Stop)
	return s
}

// Log returns what HAProxy has logged so far, for failure messages.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "haproxy.log"))
	return string(b)
}
