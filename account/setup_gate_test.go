package account

import (
	"context"
	"testing"
)

// A setup link is spent only once the administrator can be stored: with
// the hash gate full, the answer is "busy" (503, try again) and the link
// still works afterwards. Before, the link was consumed first, and a busy
// gate left no administrator and a dead link.
func TestSetupLinkSurvivesABusyHashGate(t *testing.T) {
	// No strength estimate (min score 0), so only the hash takes the gate.
	svc, _ := NewTestService(t, TestServiceOptions{NoSealer: true, Policy: Policy{Argon2: Argon2Params{MemoryKiB: 7168, Iterations: 1, Parallelism: 1},
		HashConcurrency: 1, HashQueue: -1}})
	ctx := t.Context()
	link, err := svc.Users.CreateSetupToken(ctx)
	if err != nil {
		t.Fatal(err)
	}
	admin := NewUser{Username: "ada", Email: "ada@example.com", Password: "correct horse battery staple"}

	running, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() {
		done <- svc.core.hashes.do(context.Background(), func() { close(running); <-release })
	}()
	<-running
	_, err = svc.Users.CompleteSetup(ctx, link, admin)
	close(release)
	if gerr := <-done; gerr != nil {
		t.Fatal(gerr)
	}
	if ErrorCode(err) != Unavailable || RetryAfter(err) == 0 {
		t.Fatalf("setup with the hash gate full: %v, want busy with a wait", err)
	}
	if err := svc.Users.CheckSetupToken(ctx, link); err != nil {
		t.Fatalf("the link after a busy answer: %v", err)
	}
	u, err := svc.Users.CompleteSetup(ctx, link, admin)
	if err != nil || !u.Admin {
		t.Fatalf("setup once the gate is free: %+v %v", u, err)
	}
	if err := svc.Users.CheckSetupToken(ctx, link); err == nil {
		t.Error("the link still works after the administrator was created")
	}
}
