package main

import (
	"os"
	"runtime"
	"testing"
	"time"
)

func TestProcessCPU(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// Spin until the count moves by five clock ticks; a broken reading
	// (a wrong field, say) never does.
	deadline := time.Now().Add(10 * time.Second)
	for {
		for i := 0; i < 1e6; i++ {
			_ = i * i
		}
		after, err := processCPU(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if after-before >= 50*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s of spinning counted as %v of CPU", after-before)
		}
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Error("no error for a process that does not exist")
	}
	if d, err := processCPU(0); d != 0 || err != nil {
		t.Errorf("no PID: %v, %v; want nothing measured and no error", d, err)
	}
}

func TestJWTAlg(t *testing.T) {
	for _, c := range []struct{ jws, want string }{
		// {"alg":"ES256","kid":"k1","typ":"JWT"}
		{"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiSldUIn0.e30.sig", "ES256"},
		// {"alg":"EdDSA"}
		{"eyJhbGciOiJFZERTQSJ9.e30.sig", "EdDSA"},
		{"opaque-token", "?"},
		{"!!!.e30.sig", "?"},
		{"e30.e30.sig", "?"}, // {} has no alg
	} {
		if got := jwtAlg(c.jws); got != c.want {
			t.Errorf("jwtAlg(%q) = %q, want %q", c.jws, got, c.want)
		}
	}
}
