package health_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/health"
)

func get(t *testing.T, h http.Handler) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	return rec
}

// TestReadinessNamesTheFailingCheck: 503 with the first failing check's
// name and reason in JSON; later checks do not run.
func TestReadinessNamesTheFailingCheck(t *testing.T) {
	r := health.NewReadiness(time.Second, time.Nanosecond, nil)
	ran := false
	r.Add(health.Check{Name: "database", Run: func(context.Context) error { return nil }})
	r.Add(health.Check{Name: "signing keys", Run: func(context.Context) error { return errors.New("not loaded") }})
	r.Add(health.Check{Name: "later", Run: func(context.Context) error { ran = true; return nil }})
	rec := get(t, r)
	if rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"status":"unavailable","reason":"signing keys: not loaded"}`+"\n" ||
		rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Type") != "application/json" {
		t.Errorf("%d %q %v", rec.Code, rec.Body, rec.Header())
	}
	if ran {
		t.Error("a check after the failing one ran")
	}
}

// TestReadinessIsBoundedAndShared: a check that hangs answers 503 after
// the timeout; requests within the TTL share one round of checks; a
// stalled store is not asked again while its first read hangs.
func TestReadinessIsBoundedAndShared(t *testing.T) {
	var now time.Time
	clock := func() time.Time { return now }
	now = time.Unix(1000, 0)
	release := make(chan struct{})
	defer close(release)
	var rounds, reads int
	var mu sync.Mutex
	var bounded health.Bounded
	r := health.NewReadiness(50*time.Millisecond, time.Second, clock)
	r.Add(health.Check{Name: "database", Run: func(ctx context.Context) error {
		mu.Lock()
		rounds++
		mu.Unlock()
		return bounded.Run(ctx, func() error {
			mu.Lock()
			reads++
			mu.Unlock()
			<-release // a read stuck on a stalled disk
			return nil
		})
	}})
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if rec := get(t, r); rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"status":"unavailable","reason":"database: no answer within 50ms"}`+"\n" {
				t.Errorf("hanging check: %d %q", rec.Code, rec.Body)
			}
		})
	}
	wg.Wait()
	now = now.Add(2 * time.Second) // the TTL is over: a new round
	if rec := get(t, r); rec.Code != http.StatusServiceUnavailable || rec.Body.String() != `{"status":"unavailable","reason":"database: an earlier check has not returned"}`+"\n" {
		t.Errorf("while the first read hangs: %d %q", rec.Code, rec.Body)
	}
	mu.Lock()
	defer mu.Unlock()
	if rounds != 2 || reads != 1 {
		t.Errorf("21 requests made %d rounds and %d reads, want 2 and 1", rounds, reads)
	}
}

func TestLive(t *testing.T) {
	failing := errors.New("database writes are failing (file too large)")
	var err error
	h := health.Live(func() error { return err })
	if rec := get(t, h); rec.Code != 200 || rec.Body.String() != "ok\n" || rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("%d %q", rec.Code, rec.Body)
	}
	err = failing
	if rec := get(t, h); rec.Code != 503 || rec.Body.String() != failing.Error()+"\n" {
		t.Errorf("%d %q", rec.Code, rec.Body)
	}
}
