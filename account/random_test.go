package account

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestOrderedIDsSortByTime(t *testing.T) {
	start := time.UnixMilli(1_700_000_000_000)
	var ids []string
	seen := map[string]bool{}
	// Steps of 1 ms to about 10 years cover carries through every time byte.
	for _, step := range []time.Duration{time.Millisecond, 255 * time.Millisecond, time.Hour, 97 * 24 * time.Hour} {
		for i := range 40 {
			id := newOrderedID(start.Add(time.Duration(i) * step))
			if len(id) != 26 || strings.Trim(id, "0123456789abcdefghijklmnopqrstuv") != "" {
				t.Fatalf("ID %q: want 26 characters of lower-case base32hex", id)
			}
			if seen[id] {
				t.Fatalf("ID %q issued twice", id)
			}
			seen[id] = true
		}
	}
	for i := range 300 {
		// Time order: each ID is generated strictly later than the last.
		ids = append(ids, newOrderedID(start.Add(time.Duration(i)*time.Millisecond*7919)))
	}
	if !slices.IsSorted(ids) {
		t.Fatal("IDs made at increasing times do not sort in that order")
	}
	// Within one millisecond the random part decides; it must differ.
	a, b := newOrderedID(start), newOrderedID(start)
	if a == b || a[:9] != b[:9] {
		t.Fatalf("same-millisecond IDs %q and %q: want a shared time prefix and different random parts", a, b)
	}
	if now := NewOrderedID(); now <= newOrderedID(time.Now().Add(-time.Second)) {
		t.Fatalf("NewOrderedID %q sorts before an ID from a second ago", now)
	}
}
