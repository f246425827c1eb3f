package main

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/smtptest"
)

// `keyport serve` killed (SIGKILL) with mail and webhook calls in its
// outbox loses none of them: five invitations (and their user.created
// events for a webhook) are committed while neither the SMTP server nor
// the webhook's receiver can be reached (each attempt fails and waits for
// its retry), the server is killed, and after a restart that can reach
// both every invitation and every event arrives, once.
func TestServeKilledWithPendingDeliveriesLosesNothing(t *testing.T) {
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
	// The webhook's receiver: its port is taken now and left closed until
	// after the crash, so the first calls are refused.
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hookAddr := hookLn.Addr().String()
	hookLn.Close()
	hooks := "[webhooks]\nallow_networks = [\"127.0.0.0/8\"]\n"
	dir := t.TempDir()
	child := startChild(t, dir, mailTo(refusedPort)+hooks)
	env := cliEnv(dir)
	cliMust(t, env, "", "user", "create", "--username", "hooks", "--email", "hooks@example.com", "--system", "--admin")
	tok := cliMust(t, env, "", "user", "create-token", "--username", "hooks", "--name", "crash", "--expires", "1d").Stdout
	tok = strings.TrimSpace(tok[strings.LastIndex(strings.TrimSpace(tok), "\n")+1:])
	req, err := http.NewRequest(http.MethodPost, child.URL+"/api/v1/webhooks", strings.NewReader(`{"url":"http://`+hookAddr+`/in","event_types":["user.created"]}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	status, _, out := doJSON(t, http.DefaultClient, req)
	if status != http.StatusCreated {
		t.Fatalf("create the webhook: %d %v", status, out)
	}
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

	// The receiver comes up where the webhook points, and keyport again.
	calls := make(chan string, 100)
	recv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- r.Header.Get("Webhook-Id")
	})}
	hookLn, err = net.Listen("tcp", hookAddr)
	if err != nil {
		t.Fatalf("listen where the webhook points again: %v", err)
	}
	go recv.Serve(hookLn)
	t.Cleanup(func() { recv.Close() })
	_, port, _ := strings.Cut(smtp.PlainAddr, ":")
	startChild(t, dir, mailTo(port)+hooks)
	// A failed attempt is retried 30 s (±25%) after it failed.
	for _, addr := range addrs {
		m := smtp.WaitForNthWithin(t, addr, 1, 60*time.Second)
		if !strings.Contains(m.Text, "/invite?token=") {
			t.Errorf("the invitation to %s:\n%s", addr, m.Text)
		}
	}
	seen := map[string]int{}
	for len(seen) < len(addrs) {
		select {
		case id := <-calls:
			seen[id]++
		case <-time.After(60 * time.Second):
			t.Fatalf("the receiver heard %d of %d events", len(seen), len(addrs))
		}
	}
	time.Sleep(time.Second) // a duplicate would come now
	for _, addr := range addrs {
		if got := smtp.Received(t, addr); len(got) != 1 {
			t.Errorf("%s got %d messages, want 1", addr, len(got))
		}
	}
	for len(calls) > 0 {
		seen[<-calls]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Errorf("event %s arrived %d times, want once", id, n)
		}
	}
}
