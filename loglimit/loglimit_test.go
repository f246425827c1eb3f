package loglimit

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTimers replaces time.AfterFunc: the test ends intervals by hand.
type fakeTimers struct {
	mu  sync.Mutex
	fns []func()
}

func (f *fakeTimers) afterFunc(_ time.Duration, fn func()) *time.Timer {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fns = append(f.fns, fn)
	return time.NewTimer(time.Hour) // stopped by Flush; never fires in a test
}

func (f *fakeTimers) fire() {
	f.mu.Lock()
	fns := f.fns
	f.fns = nil
	f.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

func newTest(o Options) (*slog.Logger, *Handler, *bytes.Buffer, *fakeTimers) {
	var buf bytes.Buffer
	h := New(slog.NewTextHandler(&buf, nil), o)
	ft := &fakeTimers{}
	h.st.afterFunc = ft.afterFunc
	return slog.New(h), h, &buf, ft
}

func lines(buf *bytes.Buffer) []string {
	return strings.Split(strings.TrimSpace(buf.String()), "\n")
}

func TestLimitsIdenticalRecords(t *testing.T) {
	log, _, buf, timers := newTest(Options{Burst: 3})
	for i := range 1000 {
		// Attributes differ; level and message make records identical.
		log.Error("write failed", "request", i)
	}
	log.Error("another failure")
	got := lines(buf)
	if len(got) != 4 || !strings.Contains(got[0], "request=0") || !strings.Contains(got[2], "request=2") || !strings.Contains(got[3], "another failure") {
		t.Fatalf("within the interval: %q", got)
	}
	timers.fire()
	got = lines(buf)
	if len(got) != 5 || !strings.Contains(got[4], `msg="suppressed 997 similar messages" repeated="write failed" within=10s`) || !strings.Contains(got[4], "level=ERROR") {
		t.Fatalf("end of the interval: %q", got)
	}
	// The next interval lets records through again.
	log.Error("write failed", "request", 1000)
	if got := lines(buf); len(got) != 6 || !strings.Contains(got[5], "request=1000") {
		t.Fatalf("next interval: %q", got)
	}
	// An interval that held nothing back ends without a summary.
	timers.fire()
	if got := lines(buf); len(got) != 6 {
		t.Fatalf("summary without suppressed records: %q", got)
	}
}

func TestLevelsBelowPass(t *testing.T) {
	log, _, buf, _ := newTest(Options{Burst: 1})
	for range 50 {
		log.Warn("sign-in failed", "ip", "192.0.2.1")
	}
	log.Error("boom")
	log.Error("boom")
	if got := lines(buf); len(got) != 51 {
		t.Fatalf("%d lines, want 50 warnings and 1 error:\n%s", len(got), buf)
	}
	// A different level is a different kind.
	log2, _, buf2, _ := newTest(Options{Burst: 1, Level: slog.LevelWarn})
	log2.Warn("x")
	log2.Warn("x")
	log2.Error("x")
	if got := lines(buf2); len(got) != 2 {
		t.Fatalf("levels share a limit: %q", got)
	}
}

func TestDerivedHandlersShareLimits(t *testing.T) {
	log, h, buf, _ := newTest(Options{Burst: 2})
	a := log.With("component", "a")
	b := log.WithGroup("g").With("component", "b")
	for range 5 {
		a.Error("disk full")
		b.Error("disk full")
	}
	if got := lines(buf); len(got) != 2 || !strings.Contains(got[0], "component=a") || !strings.Contains(got[1], "g.component=b") {
		t.Fatalf("%q", got)
	}
	// Flush writes what is pending, through the handler New was given.
	h.Flush()
	got := lines(buf)
	if len(got) != 3 || !strings.Contains(got[2], "suppressed 8 similar messages") || strings.Contains(got[2], "component") {
		t.Fatalf("after Flush: %q", got)
	}
}

func TestConcurrentUse(t *testing.T) {
	log, h, buf, _ := newTest(Options{Burst: 5})
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 500 {
				log.Error("same")
			}
		}()
	}
	wg.Wait()
	h.Flush()
	got := lines(buf)
	if len(got) != 6 || !strings.Contains(got[5], "suppressed 3995 similar messages") {
		t.Fatalf("%q", got)
	}
}

// With the real clock, the summary comes by itself when the interval ends.
func TestIntervalEndsByItself(t *testing.T) {
	var mu sync.Mutex
	var buf bytes.Buffer
	h := New(slog.NewTextHandler(lockedWriter{&mu, &buf}, nil), Options{Burst: 1, Interval: 20 * time.Millisecond})
	log := slog.New(h)
	log.Error("again")
	log.Error("again")
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		mu.Lock()
		s := buf.String()
		mu.Unlock()
		if strings.Contains(s, "suppressed 1 similar messages") {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("no summary after the interval:\n%s", buf.String())
}

type lockedWriter struct {
	mu  *sync.Mutex
	buf *bytes.Buffer
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.Write(p)
}

// Messages named in Options are limited below the level too; other records
// at their level still pass.
func TestNamedMessagesLimitedAtAnyLevel(t *testing.T) {
	log, _, buf, timers := newTest(Options{Burst: 2, Messages: []string{"sign-in refused: throttled"}})
	for i := range 100 {
		log.Info("sign-in refused: throttled", "attempt", i)
		log.Warn("sign-in failed", "attempt", i)
	}
	log.Info("profile updated")
	log.Info("profile updated")
	log.Info("profile updated")
	got := lines(buf)
	refused, failed := 0, 0
	for _, l := range got {
		switch {
		case strings.Contains(l, `msg="sign-in refused: throttled"`):
			refused++
		case strings.Contains(l, `msg="sign-in failed"`):
			failed++
		}
	}
	if refused != 2 || failed != 100 || !strings.HasSuffix(buf.String(), "msg=\"profile updated\"\n") || len(got) != 105 {
		t.Fatalf("refused %d (want 2), failed %d (want 100), %d lines (want 105):\n%s", refused, failed, len(got), buf)
	}
	timers.fire()
	if last := lines(buf)[len(lines(buf))-1]; !strings.Contains(last, `msg="suppressed 98 similar messages" repeated="sign-in refused: throttled"`) || !strings.Contains(last, "level=INFO") {
		t.Errorf("summary: %q", last)
	}
}

// TestKindsBounded: the messages tracked at once are bounded (maxKinds), so
// a flood of distinct messages cannot grow the limiter without end; records
// beyond the bound pass rather than vanish unseen, and once intervals end
// the bound frees up again.
func TestKindsBounded(t *testing.T) {
	log, h, buf, timers := newTest(Options{Burst: 1})
	for i := range maxKinds + 50 {
		log.Error(fmt.Sprintf("failure %d", i))
	}
	h.st.mu.Lock()
	tracked := len(h.st.kinds)
	h.st.mu.Unlock()
	if tracked != maxKinds {
		t.Fatalf("%d kinds tracked, want the bound %d", tracked, maxKinds)
	}
	// Beyond the bound, repeats are not held back.
	for range 3 {
		log.Error(fmt.Sprintf("failure %d", maxKinds+10))
	}
	if n := strings.Count(buf.String(), fmt.Sprintf(`"failure %d"`, maxKinds+10)); n != 4 {
		t.Errorf("an untracked kind passed %d times, want all 4", n)
	}
	// Within the bound, repeats are held back.
	log.Error("failure 7")
	if n := strings.Count(buf.String(), `"failure 7"`); n != 1 {
		t.Errorf("a tracked kind passed %d times, want 1", n)
	}
	timers.fire()
	h.st.mu.Lock()
	tracked = len(h.st.kinds)
	h.st.mu.Unlock()
	if tracked != 0 {
		t.Errorf("%d kinds still tracked after their intervals ended", tracked)
	}
}
