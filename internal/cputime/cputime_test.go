package cputime

import (
	"runtime"
	"testing"
)

// Work on the CPU moves the reading forward; on systems without it, the
// reading stays zero.
func TestProcessAdvancesWithWork(t *testing.T) {
	before := Process()
	x := 0
	for i := range 50_000_000 {
		x += i % 7
	}
	after := Process()
	if runtime.GOOS == "windows" || runtime.GOOS == "plan9" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		if before != 0 || after != 0 {
			t.Errorf("not measured here, but read %v then %v", before, after)
		}
		return
	}
	if after <= before {
		t.Errorf("CPU time did not advance over a busy loop: %v then %v (x=%d)", before, after, x)
	}
}
