package throttle

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// The tally never holds more than its size; when full, the entry with the
// fewest failures (the oldest among equals) makes room, so a flood of
// names with one failure each cannot push out a count close to its
// threshold; counts end after the reset time without a failure.
func TestTallyBounded(t *testing.T) {
	t0 := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	const reset = time.Hour
	ty := newTally(100)
	for range 3 {
		ty.add("target", t0, reset)
	}
	for i := range 10_000 {
		ty.add(fmt.Sprintf("made-up-%05d", i), t0.Add(time.Duration(i)*time.Millisecond), reset)
		if ty.len() > 100 {
			t.Fatalf("%d entries after %d names, size 100", ty.len(), i+1)
		}
	}
	if n := ty.count("target", t0.Add(time.Minute), reset); n != 3 {
		t.Errorf("the target's count after a flood of 10,000 names: %d, want 3", n)
	}
	// Among equals the oldest went first: the newest names are there.
	if ty.count("made-up-09999", t0.Add(time.Minute), reset) != 1 || ty.count("made-up-00000", t0.Add(time.Minute), reset) != 0 {
		t.Error("the oldest of equal counts was not the one to go")
	}
	// Names with more failures than the target push it out: that costs
	// the flood as many guesses as the target has.
	for i := range 100 {
		for range 4 {
			ty.add(fmt.Sprintf("persistent-%03d", i), t0.Add(2*time.Minute), reset)
		}
	}
	if n := ty.count("target", t0.Add(2*time.Minute), reset); n != 0 {
		t.Errorf("the target's count after 100 names with 4 failures each: %d, want 0 (pushed out)", n)
	}
	// The reset time without a failure forgets.
	if n := ty.count("persistent-000", t0.Add(2*time.Minute+reset), reset); n != 0 {
		t.Errorf("a count after the reset time: %d", n)
	}
	if n := ty.add("persistent-001", t0.Add(2*time.Minute+reset), reset); n != 1 {
		t.Errorf("a failure after the reset time counts %d, want 1", n)
	}
}

// brokenWrites fails every throttle write.
type brokenWrites struct{ Store }

func (brokenWrites) UpdateThrottles(context.Context, []string, func(storage.Throttle) (storage.Throttle, error)) error {
	return errors.New("no space left on device")
}

// When the failures that could not be written fill the memory kept for
// them, every attempt is refused (with the wait of the longest limit):
// Keyport can no longer tell whom to refuse.
func TestUnwrittenBounded(t *testing.T) {
	t0 := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	db, err := bolt.Open(filepath.Join(t.TempDir(), "k.db"), bolt.Options{Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	p := Policy{AccountAddress: Window{Limit: 3, Window: time.Minute}, Address: Window{Limit: 100, Window: 2 * time.Minute}}
	l := New(brokenWrites{db}, p, func() time.Time { return t0 })
	l.maxUnwritten = 10
	for i := range 9 { // 9 per-name records and the address's: full
		r, err := l.Password(t.Context(), Name(fmt.Sprintf("n%d", i)), "192.0.2.1", false)
		if err != nil {
			t.Fatalf("name %d: %v", i, err)
		}
		_, _ = r.Fail(t.Context())
	}
	if len(l.unwritten) != 10 {
		t.Fatalf("%d unwritten records, want 10", len(l.unwritten))
	}
	r, err := l.Password(t.Context(), Name("n9"), "192.0.2.1", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fail(t.Context()); err == nil || !strings.Contains(err.Error(), "every attempt refused") {
		t.Fatalf("the failure with no memory left: %v", err)
	}
	_, err = l.Password(t.Context(), Name("someone-else"), "198.51.100.1", false)
	var refused *Refused
	if !errors.As(err, &refused) || refused.Scope != ScopeStore || refused.RetryAfter != 2*time.Minute {
		t.Fatalf("an attempt from elsewhere once memory is full: %v", err)
	}
	if len(l.unwritten) > 10 {
		t.Errorf("%d unwritten records, bound 10", len(l.unwritten))
	}
}
