package throttle_test

import (
	"testing"

	"github.com/keyport/keyport/throttle"
)

// A person's user codes (the device flow) are limited per person, apart
// from their one-time codes, and a right code forgives nothing: the
// person's own device's code typed between guesses must not wipe them out.
func TestUserCodes(t *testing.T) {
	l, _, _ := newLimiter(t, policy)
	guess := func(user, addr string, right bool) error {
		t.Helper()
		r, err := l.UserCode(t.Context(), user, addr)
		if err != nil {
			return err
		}
		if right {
			return r.Succeed(t.Context())
		}
		_, err = r.Fail(t.Context())
		return err
	}
	for i := range 3 {
		if err := guess("alice", "192.0.2.1", false); err != nil {
			t.Fatalf("wrong code %d: %v", i+1, err)
		}
		if i == 1 {
			if err := guess("alice", "192.0.2.1", true); err != nil {
				t.Fatalf("right code: %v", err)
			}
		}
	}
	err := guess("alice", "192.0.2.2", true)
	if r := refusal(err); r == nil || r.Scope != throttle.ScopeUserCodes {
		t.Fatalf("after 3 wrong codes, from another address too: %v, want refused for the person", err)
	}
	// Not her second factor's codes, and not someone else's user codes.
	r, err := l.Code(t.Context(), "alice", "192.0.2.2")
	if err != nil {
		t.Fatalf("alice's one-time code: %v", err)
	}
	r.Cancel()
	if err := guess("bob", "192.0.2.2", false); err != nil {
		t.Fatalf("bob's user code: %v", err)
	}
}
