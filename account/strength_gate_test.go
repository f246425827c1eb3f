package account

import (
	"context"
	"testing"
)

// The strength estimate costs about what a hash does, so it takes a place
// at the hash gate: with every place taken, a new password is answered
// "busy" (503 with Retry-After) at once instead of adding to the load.
func TestStrengthEstimateWaitsForTheHashGate(t *testing.T) {
	svc, _ := NewTestService(t, TestServiceOptions{NoSealer: true, Policy: Policy{Argon2: Argon2Params{MemoryKiB: 7168, Iterations: 1, Parallelism: 1},
		MinPasswordScore: 3, HashConcurrency: 1, HashQueue: -1}})
	running, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- svc.core.hashes.do(context.Background(), func() { close(running); <-release })
	}()
	<-running
	err := svc.Users.CheckPassword(t.Context(), "zebra kettle lantern 1987", "alice", "alice@example.com")
	if ErrorCode(err) != Unavailable || RetryAfter(err) == 0 {
		t.Errorf("estimate with the gate full: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := svc.Users.CheckPassword(t.Context(), "zebra kettle lantern 1987", "alice", "alice@example.com"); err != nil {
		t.Errorf("estimate with the gate free: %v", err)
	}
}
