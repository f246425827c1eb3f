package daemontest

import (
	"net"
	"os"
	"os/exec"
	"testing"
	"time"
)

// The test binary doubles as the daemon: with DAEMONTEST_LISTEN set it
// listens there, after a pause, until it is stopped.
func TestMain(m *testing.M) {
	if addr := os.Getenv("DAEMONTEST_LISTEN"); addr != "" {
		time.Sleep(200 * time.Millisecond) // Start must wait for the listener
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			os.Exit(3)
		}
		for {
			c, err := ln.Accept()
			if err != nil {
				os.Exit(4)
			}
			c.Close()
		}
	}
	os.Exit(m.Run())
}

func TestStartWaitsForTheListenerAndStopEndsIt(t *testing.T) {
	for _, stop := range []struct {
		name string
		fn   func(*Process)
	}{{"Stop", (*Process).Stop}, {"Kill", (*Process).Kill}} {
		t.Run(stop.name, func(t *testing.T) {
			addr := FreeAddr(t)
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "DAEMONTEST_LISTEN="+addr)
			p := Start(t, cmd, addr, func() string { return "" })
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatalf("Start returned before the program listened: %v", err)
			}
			c.Close()
			stop.fn(p)
			if c, err := net.Dial("tcp", addr); err == nil {
				c.Close()
				t.Fatal("the program still listens after it was stopped")
			}
			stop.fn(p) // a second stop is harmless
		})
	}
}

func TestBinaryFindsInstalledPrograms(t *testing.T) {
	sh := Binary(t, "dash", "shell tests", "no-such-program-here", "sh")
	if _, err := os.Stat(sh); err != nil {
		t.Fatalf("Binary returned %q: %v", sh, err)
	}
}
