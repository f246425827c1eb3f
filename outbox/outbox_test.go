package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

var base = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// openStore opens a bbolt store in a temp dir, closed when the test ends.
func openStore(t testing.TB, path string, now func() time.Time) *bolt.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "keyport.db")
	}
	db, err := bolt.Open(path, bolt.Options{Now: now})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// startWorker runs w until the test ends (or stop is called) and returns
// stop, which cancels Run and waits for it.
func startWorker(t *testing.T, w *Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return stop
}

// message reads one message back from the store.
func message(t *testing.T, s storage.Store, id string) storage.OutboxMessage {
	t.Helper()
	msgs, _, err := s.ListOutbox(context.Background(), storage.OutboxQuery{Limit: storage.MaxOutboxLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("no outbox message %q", id)
	return storage.OutboxMessage{}
}

// waitFor polls the store until cond holds for the message, and fails
// the test after 10 s (a bound on a hang, not a speed requirement).
func waitFor(t *testing.T, s storage.Store, id, what string, cond func(storage.OutboxMessage) bool) storage.OutboxMessage {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m := message(t, s, id)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("message %s: %s never happened; it is %+v", id, what, m)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// flaky fails its first failures deliveries, then succeeds; it reports
// each attempt's time (by the test clock) on attempts.
type flaky struct {
	clock    *testclock.Clock
	failures int
	mu       sync.Mutex
	calls    int
	attempts chan time.Time
}

func (f *flaky) Deliver(ctx context.Context, m storage.OutboxMessage) error {
	f.mu.Lock()
	f.calls++
	n := f.calls
	f.mu.Unlock()
	f.attempts <- f.clock.Now()
	if n <= f.failures {
		return fmt.Errorf("450 try again later (attempt %d)", n)
	}
	return nil
}

func newWorker(s storage.Outbox, clock *testclock.Clock, log *testlog.Buffer) *Worker {
	opts := Options{
		Store: s, Now: clock.Now,
		// Only Notify wakes it: the tests move the clock. No jitter: exact backoff.
		PollInterval: time.Hour,
		Jitter:       func() float64 { return 0.5 },
	}
	if log != nil {
		opts.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	return New(opts)
}

func TestRetriesWithBackoffUntilDelivered(t *testing.T) {
	clock := testclock.At(base)
	s := openStore(t, "", clock.Now)
	logs := &testlog.Buffer{}
	w := newWorker(s, clock, logs)
	d := &flaky{clock: clock, failures: 3, attempts: make(chan time.Time, 10)}
	w.Handle("mail", d)
	if err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "m1", Kind: "mail", Payload: []byte("secret reset link"), CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, w)
	w.Notify()

	// Failures wait 30 s, 60 s, 120 s (the storage tests show a message
	// is not claimed before it is due).
	at := base
	for i, wait := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute} {
		if got := <-d.attempts; !got.Equal(at) {
			t.Fatalf("attempt %d at %v, want %v", i+1, got, at)
		}
		m := waitFor(t, s, "m1", fmt.Sprintf("retry %d recorded", i+1), func(m storage.OutboxMessage) bool { return m.Attempts == i+1 })
		if m.State != storage.OutboxPending || !m.NextAttemptAt.Equal(at.Add(wait)) || m.LastError == "" || !m.LeaseUntil.IsZero() {
			t.Fatalf("after failure %d: %+v, want pending, due at %v", i+1, m, at.Add(wait))
		}
		at = at.Add(wait)
		clock.Set(at)
		w.Notify()
	}
	if got := <-d.attempts; !got.Equal(at) {
		t.Fatalf("last attempt at %v, want %v", got, at)
	}
	m := waitFor(t, s, "m1", "delivery recorded", func(m storage.OutboxMessage) bool { return m.State == storage.OutboxDelivered })
	if m.Attempts != 4 || !m.DeliveredAt.Equal(at) {
		t.Fatalf("delivered message %+v, want 4 attempts, delivered at %v", m, at)
	}
	if got := logs.Count("outbox delivery failed", "kind=mail", "id=m1", "450 try again later"); got != 3 {
		t.Errorf("%d failures logged, want 3:\n%s", got, logs)
	}
	if got := logs.Count("secret reset link"); got != 0 {
		t.Errorf("the payload was logged:\n%s", logs)
	}
}

func TestPermanentErrorFailsAtOnce(t *testing.T) {
	clock := testclock.At(base)
	s := openStore(t, "", clock.Now)
	logs := &testlog.Buffer{}
	w := newWorker(s, clock, logs)
	calls := make(chan struct{}, 10)
	w.Handle("webhook", DelivererFunc(func(ctx context.Context, m storage.OutboxMessage) error {
		calls <- struct{}{}
		return fmt.Errorf("webhook answered: %w", Permanent(errors.New("410 gone")))
	}))
	if err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "m1", Kind: "webhook", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, w)
	w.Notify()
	m := waitFor(t, s, "m1", "failure recorded", func(m storage.OutboxMessage) bool { return m.State != storage.OutboxPending })
	if m.State != storage.OutboxFailed || m.Attempts != 1 || m.LastError != "webhook answered: 410 gone" || !m.DeliveredAt.Equal(base) {
		t.Fatalf("message after a permanent error: %+v", m)
	}
	if len(calls) != 1 {
		t.Fatalf("%d deliveries, want 1", len(calls))
	}
	if logs.Count("failed for good", "kind=webhook", "id=m1", "attempt=1", "410 gone") != 1 {
		t.Errorf("failure not logged:\n%s", logs)
	}
}

func TestUnknownKindFails(t *testing.T) {
	clock := testclock.At(base)
	s := openStore(t, "", clock.Now)
	w := newWorker(s, clock, nil)
	w.Handle("mail", DelivererFunc(func(ctx context.Context, m storage.OutboxMessage) error { return nil }))
	if err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "m1", Kind: "carrier_pigeon", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, w)
	w.Notify()
	m := waitFor(t, s, "m1", "failure recorded", func(m storage.OutboxMessage) bool { return m.State != storage.OutboxPending })
	if m.State != storage.OutboxFailed || m.LastError != `no deliverer for kind "carrier_pigeon"` {
		t.Fatalf("message of an unknown kind: %+v", m)
	}
}

// Retries stop at the message's deadline: the last attempt is at the
// deadline itself, and its failure fails the message.
func TestDeadlineFailsTheMessage(t *testing.T) {
	clock := testclock.At(base)
	s := openStore(t, "", clock.Now)
	w := newWorker(s, clock, nil)
	d := &flaky{clock: clock, failures: 1000, attempts: make(chan time.Time, 10)}
	w.Handle("mail", d)
	deadline := base.Add(time.Minute)
	if err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "m1", Kind: "mail", CreatedAt: base, Deadline: deadline}); err != nil {
		t.Fatal(err)
	}
	startWorker(t, w)
	w.Notify()
	<-d.attempts
	m := waitFor(t, s, "m1", "first retry", func(m storage.OutboxMessage) bool { return m.Attempts == 1 })
	if !m.NextAttemptAt.Equal(base.Add(30 * time.Second)) {
		t.Fatalf("first retry due %v", m.NextAttemptAt)
	}
	clock.Set(base.Add(30 * time.Second))
	w.Notify()
	<-d.attempts
	m = waitFor(t, s, "m1", "second retry", func(m storage.OutboxMessage) bool { return m.Attempts == 2 })
	if !m.NextAttemptAt.Equal(deadline) { // 60 s of backoff would pass the deadline
		t.Fatalf("second retry due %v, want the deadline %v", m.NextAttemptAt, deadline)
	}
	clock.Set(deadline)
	w.Notify()
	<-d.attempts
	m = waitFor(t, s, "m1", "failure", func(m storage.OutboxMessage) bool { return m.State != storage.OutboxPending })
	if m.State != storage.OutboxFailed || m.Attempts != 3 || !m.DeliveredAt.Equal(deadline) {
		t.Fatalf("message past its deadline: %+v", m)
	}
}

// Notify makes a running worker deliver at once; its poll (an hour here)
// would never come within the test.
func TestNotifyDeliversWithoutWaitingForThePoll(t *testing.T) {
	clock := testclock.At(base)
	s := openStore(t, "", clock.Now)
	claims := &countClaims{Outbox: s, done: make(chan int, 10)}
	w := newWorker(claims, clock, nil)
	delivered := make(chan string, 1)
	w.Handle("mail", DelivererFunc(func(ctx context.Context, m storage.OutboxMessage) error {
		delivered <- m.ID
		return nil
	}))
	startWorker(t, w)
	if n := <-claims.done; n != 0 { // the worker's first look finds nothing; it sleeps
		t.Fatalf("first claim got %d messages", n)
	}
	if err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "m1", Kind: "mail", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	w.Notify()
	select {
	case id := <-delivered:
		if id != "m1" {
			t.Fatalf("delivered %q", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a notified worker did not deliver")
	}
	waitFor(t, s, "m1", "delivery recorded", func(m storage.OutboxMessage) bool { return m.State == storage.OutboxDelivered })
}

// countClaims reports how many messages each ClaimOutbox returned, once
// it has returned.
type countClaims struct {
	storage.Outbox
	done chan int
}

func (c *countClaims) ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]storage.OutboxMessage, error) {
	msgs, err := c.Outbox.ClaimOutbox(ctx, now, lease, limit)
	c.done <- len(msgs)
	return msgs, err
}

// A worker stopped mid-delivery records nothing: the message stays leased,
// and a worker started after the lease delivers it (the same ID again).
func TestStopLeavesTheLeaseForTheNextRun(t *testing.T) {
	clock := testclock.At(base)
	path := filepath.Join(t.TempDir(), "keyport.db")
	s := openStore(t, path, clock.Now)
	w := newWorker(s, clock, nil)
	started := make(chan struct{})
	w.Handle("mail", DelivererFunc(func(ctx context.Context, m storage.OutboxMessage) error {
		close(started)
		<-ctx.Done()
		return ctx.Err()
	}))
	if err := s.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "m1", Kind: "mail", CreatedAt: base}); err != nil {
		t.Fatal(err)
	}
	stop := startWorker(t, w)
	w.Notify()
	<-started
	stop()
	m := message(t, s, "m1")
	if m.State != storage.OutboxPending || m.Attempts != 0 || !m.LeaseUntil.Equal(base.Add(w.Lease())) {
		t.Fatalf("message after a stop mid-delivery: %+v, want pending, unattempted, leased until %v", m, base.Add(w.Lease()))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopen, as after a restart.
	s = openStore(t, path, clock.Now)
	w = newWorker(s, clock, nil)
	delivered := make(chan string, 2)
	w.Handle("mail", DelivererFunc(func(ctx context.Context, m storage.OutboxMessage) error {
		delivered <- m.ID
		return nil
	}))
	startWorker(t, w)
	clock.Set(base.Add(w.Lease()))
	w.Notify()
	if id := <-delivered; id != "m1" {
		t.Fatalf("delivered %q", id)
	}
	m = waitFor(t, s, "m1", "delivery recorded", func(m storage.OutboxMessage) bool { return m.State == storage.OutboxDelivered })
	if !m.DeliveredAt.Equal(base.Add(w.Lease())) || len(delivered) != 0 {
		t.Fatalf("message after the lease: %+v, %d more deliveries", m, len(delivered))
	}
}

func TestBackoffDoublesUpToTheCapWithJitter(t *testing.T) {
	lo := New(Options{Jitter: func() float64 { return 0 }})
	hi := New(Options{Jitter: func() float64 { return 0.999999 }})
	mid := New(Options{Jitter: func() float64 { return 0.5 }})
	for attempt, want := range map[int]time.Duration{1: 30 * time.Second, 2: time.Minute, 3: 2 * time.Minute, 7: 32 * time.Minute, 8: time.Hour, 30: time.Hour} {
		if got := mid.Backoff(attempt); got != want {
			t.Errorf("backoff after attempt %d: %v, want %v", attempt, got, want)
		}
		if got, min := lo.Backoff(attempt), want*3/4; got != min {
			t.Errorf("lowest backoff after attempt %d: %v, want %v", attempt, got, min)
		}
		if got, max := hi.Backoff(attempt), want*5/4; got >= max || got < want {
			t.Errorf("highest backoff after attempt %d: %v, want just under %v", attempt, got, max)
		}
	}
}
