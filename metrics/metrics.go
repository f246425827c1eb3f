// Package metrics defines Keyport's Prometheus metrics on a registry of
// its own (with the Go runtime's and the process's collectors) and serves
// them. Only cmd/keyport imports it: the packages that see the events
// (account, provider, outbox, requestlog) tell it through their small
// observer hooks, and the store is timed by wrapping it (Store), so no
// lower package depends on Prometheus.
//
// Every label comes from a closed set: route templates (never raw paths;
// requestlog.Unmatched for the rest), methods and status codes, sign-in
// methods mapped onto known values, grant types Keyport offers,
// directory IDs an admin configured, outbox kinds, store operations.
package metrics

//go:generate go run ./internal/genstore store_gen.go

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyport/keyport/requestlog"
	"github.com/keyport/keyport/storage"
)

// Metrics holds the collectors. Its methods are the observer hooks of the
// lower packages; all are safe for concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	requests         *prometheus.CounterVec
	requestDuration  *prometheus.HistogramVec
	signIns          *prometheus.CounterVec
	throttled        *prometheus.CounterVec
	tokensIssued     *prometheus.CounterVec
	refreshReuse     prometheus.Counter
	directorySyncs   *prometheus.CounterVec
	directorySyncDur *prometheus.HistogramVec
	storeDuration    *prometheus.HistogramVec
	outboxDeliveries *prometheus.CounterVec

	// storeOps are storeDuration's observers by operation, made on first
	// use (so only operations that ran have series) and kept, so that a
	// timed call costs no label lookup.
	storeOps [numOps]atomic.Pointer[prometheus.Observer]
}

// New returns metrics registered on a new registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyport_http_requests_total",
			Help: "HTTP requests answered, by method, route (the path template; \"unmatched\" for paths no route takes) and status code.",
		}, []string{"method", "route", "code"}),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyport_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyport_signin_attempts_total",
			Help: "Sign-in attempts recorded in users' histories, by method (pwd, otp, passkey, app_password, api_token, recovery_code, upstream, other) and outcome (success, failure).",
		}, []string{"method", "outcome"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyport_throttled_attempts_total",
			Help: "Attempts refused by the throttle before they were checked, by method (as keyport_signin_attempts_total, and client_secret).",
		}, []string{"method"}),
		tokensIssued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyport_tokens_issued_total",
			Help: "Successful token endpoint responses, by grant type.",
		}, []string{"grant_type"}),
		refreshReuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyport_refresh_token_reuse_total",
			Help: "Rotated refresh tokens presented again after their grace; each revoked its token family.",
		}),
		directorySyncs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyport_directory_syncs_total",
			Help: "Directory syncs that ran, by directory and result (ok, partial: some users failed, error).",
		}, []string{"directory", "result"}),
		directorySyncDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyport_directory_sync_duration_seconds",
			Help:    "Time a directory sync took, by directory.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8), // 10ms … 164s
		}, []string{"directory"}),
		storeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "keyport_store_operation_duration_seconds",
			Help: "Time of each database operation (a storage.Store method), by operation.",
			// 50µs … 820ms: bbolt reads take microseconds, commits an fsync.
			Buckets: prometheus.ExponentialBuckets(0.00005, 4, 8),
		}, []string{"operation"}),
		outboxDeliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyport_outbox_deliveries_total",
			Help: "Outbox delivery attempts, by kind (mail, webhook, backchannel_logout) and outcome (delivered, retry, failed).",
		}, []string{"kind", "outcome"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDuration, m.signIns, m.throttled, m.tokensIssued, m.refreshReuse,
		m.directorySyncs, m.directorySyncDur, m.storeDuration, m.outboxDeliveries,
	)
	return m
}

// Registry is where the metrics are registered, for collectors of more.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the metrics in Prometheus' text format (or OpenMetrics
// when asked), at most a few scrapes at once.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{MaxRequestsInFlight: 4, Timeout: 10 * time.Second})
}

// Request observes an answered HTTP request (requestlog.Options.Observe).
func (m *Metrics) Request(r requestlog.Request) {
	m.requests.WithLabelValues(r.Method, r.Route, strconv.Itoa(r.Status)).Inc()
	m.requestDuration.WithLabelValues(r.Route).Observe(r.Duration.Seconds())
}

// SignInAttempt implements account.Observer.
func (m *Metrics) SignInAttempt(method string, success bool) {
	outcome := "failure"
	if success {
		outcome = "success"
	}
	m.signIns.WithLabelValues(signInMethod(method), outcome).Inc()
}

// Throttled implements account.Observer and provider.Observer.
func (m *Metrics) Throttled(method string) {
	m.throttled.WithLabelValues(signInMethod(method)).Inc()
}

// DirectorySynced implements account.Observer.
func (m *Metrics) DirectorySynced(directory, result string, took time.Duration) {
	m.directorySyncs.WithLabelValues(directory, result).Inc()
	m.directorySyncDur.WithLabelValues(directory).Observe(took.Seconds())
}

// TokenIssued implements provider.Observer.
func (m *Metrics) TokenIssued(grantType string) {
	m.tokensIssued.WithLabelValues(grantType).Inc()
}

// RefreshTokenReused implements provider.Observer.
func (m *Metrics) RefreshTokenReused() { m.refreshReuse.Inc() }

// OutboxDelivery observes an outbox attempt (outbox.Options.Observe).
func (m *Metrics) OutboxDelivery(kind, outcome string) {
	m.outboxDeliveries.WithLabelValues(kind, outcome).Inc()
}

// signInMethod maps a sign-in attempt's method onto a closed set: the
// methods Keyport records, with second factors joined by "+" kept apart
// only as "mfa" (pwd+otp, pwd+hwk…), and upstream sign-ins ("fed…",
// whatever their upstream reported) as "upstream".
func signInMethod(m string) string {
	switch m {
	case "pwd", "otp", "passkey", "app_password", "api_token", "recovery_code", "client_secret", "hwk", "swk":
		return m
	}
	switch {
	case strings.HasPrefix(m, "fed"):
		return "upstream"
	case strings.Contains(m, "+"):
		return "mfa"
	}
	return "other"
}

// Store returns s with every operation timed into
// keyport_store_operation_duration_seconds.
func (m *Metrics) Store(s storage.Store) storage.Store { return &timedStore{next: s, m: m} }

// timedStore is the wrapper store_gen.go implements.
type timedStore struct {
	next storage.Store
	m    *Metrics
}

var _ storage.Store = (*timedStore)(nil)

func (s *timedStore) observe(op int, start time.Time) {
	d := time.Since(start).Seconds()
	if o := s.m.storeOps[op].Load(); o != nil {
		(*o).Observe(d)
		return
	}
	o := s.m.storeDuration.WithLabelValues(opNames[op])
	s.m.storeOps[op].Store(&o)
	o.Observe(d)
}

// OutboxDepth counts the outbox's pending and failed messages for
// keyport_outbox_messages. Counting pages through the store, so a
// count is kept for ttl and made at scrape time only when it is older;
// each count stops at limit messages per state (the gauge then says
// limit: "at least").
func (m *Metrics) OutboxDepth(store storage.Outbox, ttl time.Duration, limit int) {
	m.reg.MustRegister(&outboxDepth{store: store, ttl: ttl, limit: limit, desc: prometheus.NewDesc(
		"keyport_outbox_messages",
		"Outbox messages by state (pending: waiting or being delivered; failed: given up), counted at most every "+ttl.String()+" and up to "+strconv.Itoa(limit)+" per state.",
		[]string{"state"}, nil)})
}

type outboxDepth struct {
	store storage.Outbox
	ttl   time.Duration
	limit int
	desc  *prometheus.Desc

	mu              sync.Mutex
	at              time.Time
	pending, failed int
	err             error
}

func (o *outboxDepth) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

func (o *outboxDepth) Collect(ch chan<- prometheus.Metric) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.at.IsZero() || time.Since(o.at) >= o.ttl {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		o.pending, o.err = o.count(ctx, storage.OutboxPending)
		if o.err == nil {
			o.failed, o.err = o.count(ctx, storage.OutboxFailed)
		}
		cancel()
		o.at = time.Now()
	}
	if o.err != nil {
		ch <- prometheus.NewInvalidMetric(o.desc, o.err)
		return
	}
	ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(o.pending), storage.OutboxPending)
	ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(o.failed), storage.OutboxFailed)
}

// count pages through the messages in state, up to limit.
func (o *outboxDepth) count(ctx context.Context, state string) (int, error) {
	n, cursor := 0, ""
	for n < o.limit {
		msgs, next, err := o.store.ListOutbox(ctx, storage.OutboxQuery{State: state, Cursor: cursor, Limit: storage.MaxOutboxLimit})
		if err != nil {
			return 0, err
		}
		n += len(msgs)
		if next == "" {
			break
		}
		cursor = next
	}
	return min(n, o.limit), nil
}
