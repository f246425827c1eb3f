package outbox

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// The crash test runs the worker in a child process (this test binary run
// again, see TestMain) that it can kill -9.
const (
	envChildDB       = "OUTBOX_TEST_CHILD_DB"
	envChildReceiver = "OUTBOX_TEST_CHILD_RECEIVER"
	envChildAhead    = "OUTBOX_TEST_CHILD_AHEAD" // how far the child's clock runs ahead
	childConcurrency = 4
)

func TestMain(m *testing.M) {
	if path := os.Getenv(envChildDB); path != "" {
		os.Exit(runChild(path))
	}
	os.Exit(m.Run())
}

// runChild delivers the outbox of the database at path to the receiver
// until SIGTERM (or SIGKILL).
func runChild(path string) int {
	ahead, err := time.ParseDuration(os.Getenv(envChildAhead))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	now := func() time.Time { return time.Now().Add(ahead) }
	db, err := bolt.Open(path, bolt.Options{Now: now})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer db.Close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	w := New(Options{Store: db, Now: now, Concurrency: childConcurrency, PollInterval: 20 * time.Millisecond})
	w.Handle("webhook", &httpDeliverer{url: os.Getenv(envChildReceiver), client: &http.Client{}})
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx)
	}()
	// Exit once the outbox holds nothing pending.
	for ctx.Err() == nil {
		pending, _, err := db.ListOutbox(ctx, storage.OutboxQuery{State: storage.OutboxPending, Limit: 1})
		if err == nil && len(pending) == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
	return 0
}

// httpDeliverer POSTs a message's payload with its ID: the shape of a
// webhook delivery, for the crash test and the benchmarks.
type httpDeliverer struct {
	url    string
	client *http.Client
}

func (h *httpDeliverer) Deliver(ctx context.Context, m storage.OutboxMessage) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, bytes.NewReader(m.Payload))
	if err != nil {
		return Permanent(err)
	}
	req.Header.Set("Webhook-Id", m.ID)
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch {
	case resp.StatusCode/100 == 2:
		return nil
	case resp.StatusCode/100 == 4:
		return Permanent(fmt.Errorf("receiver answered %s", resp.Status))
	}
	return fmt.Errorf("receiver answered %s", resp.Status)
}

// receiver counts the deliveries of each message ID.
type receiver struct {
	mu    sync.Mutex
	got   map[string]int
	total int
}

func newReceiver(t testing.TB) (*receiver, *httptest.Server) {
	r := &receiver{got: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.mu.Lock()
		r.got[req.Header.Get("Webhook-Id")]++
		r.total++
		r.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) counts() (distinct, total int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got), r.total
}

// waitUntil polls cond every few milliseconds and fails after limit (a
// bound on a hang, not a speed requirement).
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(limit); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("%s never happened", what)
		}
	}
}

// startChildWorker runs the worker in a child process on the database at path.
func startChildWorker(t *testing.T, path, receiverURL string, ahead time.Duration) (*exec.Cmd, *testlog.Buffer) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testlog.Buffer{}
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), envChildDB+"="+path, envChildReceiver+"="+receiverURL, envChildAhead+"="+ahead.String())
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return cmd, logs
}

// Messages enqueued and not yet delivered when the worker's process is
// killed (kill -9) are delivered after a restart: every one arrives, and
// only those whose delivery was under way at the kill (the crash window:
// the receiver had them, the store had not recorded it) arrive twice,
// with the same ID.
func TestKilledWorkerLosesNothing(t *testing.T) {
	const n = 300
	path := filepath.Join(t.TempDir(), "keyport.db")
	created := time.Now()
	db, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var msgs []storage.OutboxMessage
	for i := range n {
		msgs = append(msgs, storage.OutboxMessage{ID: fmt.Sprintf("m%04d", i), Kind: "webhook", Payload: []byte(`{"type":"user.created"}`), CreatedAt: created})
	}
	if err := db.EnqueueOutbox(t.Context(), msgs...); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	recv, srv := newReceiver(t)

	child, logs := startChildWorker(t, path, srv.URL, 0)
	waitUntil(t, 60*time.Second, "a third of the deliveries", func() bool { _, total := recv.counts(); return total >= n/3 })
	if err := child.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	before, _ := recv.counts()
	if before >= n {
		t.Fatalf("every message was delivered before the kill; nothing was tested")
	}

	// Restarted with its clock past the leases the killed worker held (as
	// if a restart took that long): those messages are due again.
	ahead := 2 * New(Options{}).Lease()
	child, logs2 := startChildWorker(t, path, srv.URL, ahead)
	exited := make(chan error, 1)
	go func() { exited <- child.Wait() }()
	select { // it exits once nothing is pending
	case err := <-exited:
		if err != nil {
			t.Fatalf("restarted worker: %v\n%s%s", err, logs, logs2)
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("the restarted worker did not deliver everything:\n%s", logs2)
	}

	db, err = bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	delivered := 0
	for q := (storage.OutboxQuery{State: storage.OutboxDelivered}); ; {
		page, next, err := db.ListOutbox(t.Context(), q)
		if err != nil {
			t.Fatal(err)
		}
		delivered += len(page)
		if next == "" {
			break
		}
		q.Cursor = next
	}
	if delivered != n {
		t.Errorf("%d messages recorded delivered, want %d", delivered, n)
	}
	twice := 0
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for id, c := range recv.got {
		switch {
		case c == 2:
			twice++
		case c != 1:
			t.Errorf("message %s arrived %d times", id, c)
		}
	}
	// At most the deliveries under way at the kill repeat: the worker
	// holds childConcurrency at a time.
	if twice > childConcurrency {
		t.Errorf("%d messages arrived twice; at most %d were under way at the kill", twice, childConcurrency)
	}
	t.Logf("%d of %d delivered before the kill; %d arrived twice (the crash window)", before, n, twice)
}
