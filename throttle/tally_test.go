package throttle

import (
	"fmt"
	"testing"
	"time"
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
