package throttle

import (
	"strconv"
	"testing"
	"time"
)

// CheckRecent keeps only what keep approves, only for ttl, only for the
// same parts, and never more than maxRecent results.
func TestCheckRecentKeepsOnlyApprovedResultsBriefly(t *testing.T) {
	g := NewGuesses[bool]()
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	checks := 0
	check := func(result bool) func() bool {
		return func() bool { checks++; return result }
	}
	keep := func(ok bool) bool { return ok }
	right := []string{"svc", "127.0.0.1", "right"}
	wrong := []string{"svc", "127.0.0.1", "wrong"}

	if !g.CheckRecent(right, now, time.Second, keep, check(true)) || checks != 1 {
		t.Fatalf("first check: %d checks", checks)
	}
	if !g.CheckRecent(right, now.Add(999*time.Millisecond), time.Second, keep, check(false)) || checks != 1 {
		t.Fatalf("within ttl: checked again (%d checks)", checks)
	}
	if g.CheckRecent(right, now.Add(time.Second), time.Second, keep, check(false)) || checks != 2 {
		t.Fatalf("at ttl: not checked again (%d checks)", checks)
	}
	for i := range 3 {
		if g.CheckRecent(wrong, now, time.Second, keep, check(false)) || checks != 3+i {
			t.Fatalf("a rejected result was kept: %d checks", checks)
		}
	}
	if !g.CheckRecent([]string{"svc", "127.0.0.2", "right"}, now, time.Second, keep, check(true)) || checks != 6 {
		t.Fatalf("other parts shared a kept result: %d checks", checks)
	}

	for i := range 2 * maxRecent {
		g.CheckRecent([]string{"svc", "ip", strconv.Itoa(i)}, now, time.Second, keep, check(true))
	}
	if n := len(g.recent); n > maxRecent {
		t.Fatalf("%d results kept, more than %d", n, maxRecent)
	}
}
