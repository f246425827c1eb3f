// Package daemontest runs the external programs tests put beside Keyport
// (nginx, Caddy, slapd) as children of the test: found or skipped the same
// way, started on a free loopback port, waited for until they listen, and
// stopped when the test ends. nginxtest, caddytest and slapdtest build on it.
//
// When a program is not installed the test is skipped with a message, unless
// KEYPORT_REQUIRE_INTEGRATION=1 (CI and scripts/test.sh), where it fails.
package daemontest

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// Binary returns the path of the first of candidates that is installed (a
// bare name is looked up on PATH). When none is, the test is skipped, or
// fails under KEYPORT_REQUIRE_INTEGRATION=1, with a message that names the
// Debian packages to install and the tests that need them.
func Binary(t testing.TB, packages, tests string, candidates ...string) string {
	t.Helper()
	for _, c := range candidates {
		if path, err := exec.LookPath(c); err == nil {
			return path
		}
	}
	if os.Getenv("KEYPORT_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf("%s is not installed (apt-get install %s); KEYPORT_REQUIRE_INTEGRATION=1 requires the %s", candidates[0], packages, tests)
	}
	t.Skipf("%s is not installed (apt-get install %s): skipping the %s", candidates[0], packages, tests)
	return ""
}

// FreeAddr returns a loopback address whose port was free a moment ago,
// for a program that must be told where to listen.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// Process is a started program.
type Process struct {
	cmd    *exec.Cmd
	exited chan error
}

// Start starts cmd and returns once it accepts connections on addr. log
// reads what the program has logged so far, for the failure message when it
// exits at start or never listens. The caller stops it (Stop), usually in
// t.Cleanup.
func Start(t testing.TB, cmd *exec.Cmd, addr string, log func() string) *Process {
	t.Helper()
	name := cmd.Path
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	p := &Process{cmd: cmd, exited: make(chan error, 1)}
	go func() { p.exited <- cmd.Wait() }()
	for range 250 {
		select {
		case err := <-p.exited:
			p.exited <- err // for Stop
			t.Fatalf("%s exited at start (%v): %s", name, err, log())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, 100*time.Millisecond); err == nil {
			c.Close()
			return p
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Stop()
	t.Fatalf("%s did not start listening on %s: %s", name, addr, log())
	return nil
}

// Stop asks the program to stop (an interrupt), kills it when it has not
// after five seconds, and waits for it. A stopped process stays stopped.
func (p *Process) Stop() {
	if p == nil || p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd = nil
}

// Kill ends the program at once and waits for it: for tests that take a
// server away the way a crash would. A killed process stays stopped.
func (p *Process) Kill() {
	if p == nil || p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}
