package main

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/smtptest"
)

// `keyport serve` killed (SIGKILL) with mail in its outbox loses none of
// it: five invitations are committed while the SMTP server cannot be
// reached (each attempt fails and waits for its retry), the server is
// killed, and after a restart that can reach the SMTP server every
// invitation arrives, once.
func TestServeKilledWithPendingMailLosesNothing(t *testing.T) {
	smtp := smtptest.Start(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, refusedPort, _ := strings.Cut(ln.Addr().String(), ":")
	ln.Close() // nothing listens there now: connections are refused
	mailTo := func(port string) string {
		return "[mail]\nhost = \"127.0.0.1\"\nport = " + port + "\ntls = \"none\"\nfrom = \"Keyport <keyport@example.com>\"\n"
	}
	dir := t.TempDir()
	child := startChild(t, dir, mailTo(refusedPort))
	env := cliEnv(dir)
	var addrs []string
	for i := range 5 {
		addr := smtptest.NewAddress(fmt.Sprintf("crash%d", i))
		cliMust(t, env, "", "user", "create", "--username", fmt.Sprintf("crash%d", i), "--email", addr, "--invite")
		addrs = append(addrs, addr)
	}
	// Let the first attempts fail (a refused connection takes a moment),
	// so no delivery is under way, then crash.
	time.Sleep(300 * time.Millisecond)
	child.kill()

	_, port, _ := strings.Cut(smtp.PlainAddr, ":")
	startChild(t, dir, mailTo(port))
	// A failed attempt is retried 30 s (±25%) after it failed.
	for _, addr := range addrs {
		m := smtp.WaitForNthWithin(t, addr, 1, 60*time.Second)
		if !strings.Contains(m.Text, "/invite?token=") {
			t.Errorf("the invitation to %s:\n%s", addr, m.Text)
		}
	}
	time.Sleep(time.Second) // a duplicate would come now
	for _, addr := range addrs {
		if got := smtp.Received(t, addr); len(got) != 1 {
			t.Errorf("%s got %d messages, want 1", addr, len(got))
		}
	}
}
