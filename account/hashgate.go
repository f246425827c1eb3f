package account

import (
	"context"
	"runtime"
	"time"
)

// Password hashing (argon2id: 7 MiB and tens of milliseconds of one core
// each) is the one thing an unauthenticated caller can make Keyport do that
// costs real memory and CPU. Left unbounded, a few hundred parallel sign-ins
// with made-up names push memory towards gigabytes and every other request
// waits for a core. The gate lets as many hashes run as there are cores,
// queues a few more, and refuses the rest at once with 503 and Retry-After:
// the caller is told to come back, never held.

// DefaultHashQueue is how many hashes may wait for a core when the policy
// does not say.
const DefaultHashQueue = 16

// hashGate bounds the password hashes running and waiting.
type hashGate struct {
	running chan struct{} // a token per hash running
	inside  chan struct{} // a token per hash running or waiting
}

// newHashGate lets running hashes run at once (0: one per core) and queued
// more wait (0: DefaultHashQueue; negative: none).
func newHashGate(running, queued int) *hashGate {
	if running <= 0 {
		running = runtime.GOMAXPROCS(0)
	}
	switch {
	case queued == 0:
		queued = DefaultHashQueue
	case queued < 0:
		queued = 0
	}
	return &hashGate{running: make(chan struct{}, running), inside: make(chan struct{}, running+queued)}
}

// errBusy answers a hash the gate has no room for. A second is about what
// the queue ahead needs to drain.
var errBusy = &Error{Code: Unavailable, Message: "Too many sign-ins are being checked right now.", RetryAfter: time.Second}

// do runs fn when a core is free, after waiting in the queue if there is
// room in it; otherwise, or when ctx ends while waiting, it returns errBusy.
func (g *hashGate) do(ctx context.Context, fn func()) error {
	select {
	case g.inside <- struct{}{}:
	default:
		return errBusy
	}
	defer func() { <-g.inside }()
	select {
	case g.running <- struct{}{}:
	case <-ctx.Done():
		return errBusy
	}
	defer func() { <-g.running }()
	fn()
	return nil
}

// verifyPassword is VerifyPassword through the gate.
func (s *core) verifyPassword(ctx context.Context, password, encoded string) (ok, needsRehash bool, err error) {
	if gerr := s.hashes.do(ctx, func() { ok, needsRehash, err = VerifyPassword(password, encoded, s.policy().Argon2) }); gerr != nil {
		return false, false, gerr
	}
	return ok, needsRehash, err
}

// hashPassword is HashPassword with the current parameters, through the gate.
func (s *core) hashPassword(ctx context.Context, password string) (hash string, err error) {
	if gerr := s.hashes.do(ctx, func() { hash, err = HashPassword(password, s.policy().Argon2) }); gerr != nil {
		return "", gerr
	}
	return hash, err
}
