package testlog

import (
	"fmt"
	"sync"
	"testing"
)

func TestBufferCountsTakesAndIsSafeForGoroutines(t *testing.T) {
	var l Buffer
	var wg sync.WaitGroup
	for i := range 20 {
		wg.Go(func() { fmt.Fprintf(&l, "level=INFO msg=hello n=%d\n", i) })
	}
	wg.Wait()
	fmt.Fprintln(&l, "level=WARN msg=hello")
	if n := l.Count("msg=hello"); n != 21 {
		t.Errorf("Count(msg=hello) = %d, want 21", n)
	}
	if n := l.Count("level=WARN", "msg=hello"); n != 1 {
		t.Errorf("Count(level=WARN, msg=hello) = %d, want 1", n)
	}
	if got := l.Take(); len(got) == 0 || l.String() != "" || l.Take() != "" {
		t.Errorf("Take returned %q and left %q", got, l.String())
	}
}
