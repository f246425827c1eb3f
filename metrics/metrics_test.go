package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyport/keyport/metrics"
	"github.com/keyport/keyport/outbox"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

func openStore(t testing.TB) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "keyport.db"), bolt.Options{})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// scrape serves m and reads every sample back, by
// "name{label="value",…}" (histograms by their _count).
func scrape(t *testing.T, m *metrics.Metrics) map[string]float64 {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, l := range s.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			ls := "{" + strings.Join(labels, ",") + "}"
			switch {
			case s.Counter != nil:
				out[name+ls] = s.GetCounter().GetValue()
			case s.Gauge != nil:
				out[name+ls] = s.GetGauge().GetValue()
			case s.Histogram != nil:
				out[name+"_count"+ls] = float64(s.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestOutboxMetrics runs a real outbox worker on a real store, timed by
// the metrics: one message delivered, one failed for good, one to retry;
// the deliveries counter, the depth gauge and the store timings follow.
func TestOutboxMetrics(t *testing.T) {
	m := metrics.New()
	store := m.Store(openStore(t))
	m.OutboxDepth(store, time.Hour, 1000)
	w := outbox.New(outbox.Options{Store: store, Observe: m.OutboxDelivery, PollInterval: time.Hour})
	var calls atomic.Int32
	w.Handle("mail", outbox.DelivererFunc(func(ctx context.Context, msg storage.OutboxMessage) error {
		calls.Add(1)
		if msg.ID == "later" {
			return errors.New("450 try again later")
		}
		return nil
	}))
	w.Handle("webhook", outbox.DelivererFunc(func(ctx context.Context, msg storage.OutboxMessage) error {
		calls.Add(1)
		return outbox.Permanent(errors.New("410 gone"))
	}))
	now := time.Now()
	if err := store.EnqueueOutbox(t.Context(),
		storage.OutboxMessage{ID: "sent", Kind: "mail", CreatedAt: now},
		storage.OutboxMessage{ID: "gone", Kind: "webhook", CreatedAt: now},
		storage.OutboxMessage{ID: "later", Kind: "mail", CreatedAt: now},
	); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	// Wait for the three outcomes to be recorded (a bound on a hang).
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := scrape(t, m)
		if got[`keyport_outbox_deliveries_total{kind="mail",outcome="delivered"}`]+
			got[`keyport_outbox_deliveries_total{kind="mail",outcome="retry"}`]+
			got[`keyport_outbox_deliveries_total{kind="webhook",outcome="failed"}`] == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outcomes never counted: %v", got)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done
	// The outcomes are counted before they are recorded: wait for the
	// records (Run has returned), then count the depth afresh.
	m2 := metrics.New()
	m2.OutboxDepth(store, time.Hour, 1000)
	got, fresh := scrape(t, m), scrape(t, m2)
	for key, want := range map[string]float64{
		`keyport_outbox_deliveries_total{kind="mail",outcome="delivered"}`:           1,
		`keyport_outbox_deliveries_total{kind="mail",outcome="retry"}`:               1,
		`keyport_outbox_deliveries_total{kind="webhook",outcome="failed"}`:           1,
		`keyport_store_operation_duration_seconds_count{operation="EnqueueOutbox"}`:  1,
		`keyport_store_operation_duration_seconds_count{operation="CompleteOutbox"}`: 1,
		`keyport_store_operation_duration_seconds_count{operation="RetryOutbox"}`:    1,
		`keyport_store_operation_duration_seconds_count{operation="FailOutbox"}`:     1,
	} {
		if got[key] != want {
			t.Errorf("%s = %v, want %v", key, got[key], want)
		}
	}
	if fresh[`keyport_outbox_messages{state="pending"}`] != 1 || fresh[`keyport_outbox_messages{state="failed"}`] != 1 {
		t.Errorf("outbox depth: %v", fresh)
	}
	if got[`keyport_store_operation_duration_seconds_count{operation="ClaimOutbox"}`] < 1 {
		t.Error("ClaimOutbox not timed")
	}
	// Only operations that ran have series.
	if _, ok := got[`keyport_store_operation_duration_seconds_count{operation="CreateUser"}`]; ok {
		t.Error("a series for an operation that never ran")
	}
	if int(calls.Load()) != 3 {
		t.Errorf("%d deliveries", calls.Load())
	}
}

// TestOutboxDepthIsCountedOncePerTTL: scrapes within the TTL reuse the
// count, so a scrape storm does not page through the outbox each time.
func TestOutboxDepthIsCountedOncePerTTL(t *testing.T) {
	m := metrics.New()
	db := openStore(t)
	store := m.Store(db)
	m.OutboxDepth(store, time.Hour, 1000)
	scrape(t, m)
	// Enqueued behind the metrics' back: the cached count stays.
	if err := db.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "x", Kind: "mail", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var got map[string]float64
	for range 5 {
		got = scrape(t, m)
	}
	if got[`keyport_outbox_messages{state="pending"}`] != 0 {
		t.Errorf("pending recounted within the TTL: %v", got[`keyport_outbox_messages{state="pending"}`])
	}
	if n := got[`keyport_store_operation_duration_seconds_count{operation="ListOutbox"}`]; n != 2 {
		t.Errorf("ListOutbox ran %v times for 6 scrapes, want 2 (pending, failed once)", n)
	}
	// A count stops at its limit.
	if err := db.EnqueueOutbox(t.Context(), storage.OutboxMessage{ID: "y", Kind: "mail", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	capped := metrics.New()
	capped.OutboxDepth(db, time.Hour, 1)
	if v := scrape(t, capped)[`keyport_outbox_messages{state="pending"}`]; v != 1 {
		t.Errorf("2 pending messages with a limit of 1 counted as %v", v)
	}
}

// TestSignInMethodsAreAClosedSet: whatever an upstream provider puts in
// its AMR, the label takes one of a few values.
func TestSignInMethodsAreAClosedSet(t *testing.T) {
	m := metrics.New()
	for _, method := range []string{"pwd", "otp", "fed", "fed+mfa+whatever", "fed+x1", "pwd+otp", "passkey", "something-new", "api_token"} {
		m.SignInAttempt(method, true)
	}
	got := scrape(t, m)
	want := map[string]float64{"pwd": 1, "otp": 1, "upstream": 3, "mfa": 1, "passkey": 1, "other": 1, "api_token": 1}
	n := 0
	for key, v := range got {
		if !strings.HasPrefix(key, "keyport_signin_attempts_total{") {
			continue
		}
		n++
		_, rest, _ := strings.Cut(key, `method="`)
		method, _, _ := strings.Cut(rest, `"`)
		if want[method] != v {
			t.Errorf("%s = %v, want %v", key, v, want[method])
		}
	}
	if n != len(want) {
		t.Errorf("%d series, want %d: %v", n, len(want), got)
	}
}
