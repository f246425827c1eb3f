package testclock

import (
	"testing"
	"time"
)

func TestStoppedClockMovesOnlyByHand(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := At(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now = %v, want %v", got, t0)
	}
	c.Add(90 * time.Second)
	if got := c.Now(); !got.Equal(t0.Add(90 * time.Second)) {
		t.Errorf("after Add: %v", got)
	}
	c.Set(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Errorf("after Set: %v", got)
	}
}

func TestRunningClockFollowsTheWallClock(t *testing.T) {
	c := Running()
	before := time.Now()
	c.Add(time.Hour)
	got := c.Now()
	if got.Before(before.Add(time.Hour)) || got.After(time.Now().Add(time.Hour)) {
		t.Errorf("Now = %v, want the wall clock plus an hour (from %v)", got, before.Add(time.Hour))
	}
	c.Set(before.Add(-time.Hour))
	if got := c.Now(); got.After(time.Now().Add(-time.Hour + time.Minute)) {
		t.Errorf("after Set an hour back: %v", got)
	}
}
