// Package health answers the probes of load balancers and orchestrators:
// /healthz (the process is alive and its store works, read from memory)
// and /readyz (it can serve: named checks, each bounded in time, their
// outcome shared by the requests of a short interval so that a flood of
// unauthenticated probes costs one round of checks per interval).
package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"
)

// Live answers /healthz: "ok", or 503 with check's short reason. check
// must be cheap (no I/O): it runs on every request. Nil always answers ok.
func Live(check func() error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if check != nil {
			if err := check(); err != nil {
				w.WriteHeader(http.StatusServiceUnavailable)
				_, _ = w.Write([]byte(err.Error() + "\n"))
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
}

// Check is one condition of readiness. Its error is shown to anyone who
// asks: a short reason, no paths or addresses.
type Check struct {
	Name string
	Run  func(ctx context.Context) error
}

// Readiness runs its checks for /readyz. Add checks before serving.
type Readiness struct {
	checks []Check
	// timeout bounds one round of checks; ttl is how long its outcome
	// answers further requests.
	timeout, ttl time.Duration
	now          func() time.Time

	mu   sync.Mutex
	at   time.Time // of the last round; zero: none yet
	last error
}

// Default bounds of a Readiness.
const (
	DefaultTimeout = 2 * time.Second
	DefaultTTL     = time.Second
)

// NewReadiness returns a Readiness with no checks (ready until some are
// added); timeout and ttl <= 0 take the defaults, now nil time.Now.
func NewReadiness(timeout, ttl time.Duration, now func() time.Time) *Readiness {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Readiness{timeout: timeout, ttl: ttl, now: now}
}

// Add appends a check.
func (r *Readiness) Add(c Check) { r.checks = append(r.checks, c) }

// Check runs the checks in order, stopping at the first that fails, unless
// a round ended less than the TTL ago: then it returns that round's
// outcome. Concurrent callers wait for the round under way (at most the
// timeout) rather than starting their own.
func (r *Readiness) Check(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.at.IsZero() && r.now().Sub(r.at) < r.ttl {
		return r.last
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.timeout)
	defer cancel()
	r.last = nil
	for _, c := range r.checks {
		if err := c.Run(ctx); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				err = fmt.Errorf("no answer within %s", r.timeout)
			}
			r.last = fmt.Errorf("%s: %w", c.Name, err)
			break
		}
	}
	r.at = r.now()
	return r.last
}

// ServeHTTP answers /readyz: 200 {"status":"ready"}, or 503
// {"status":"unavailable","reason":"…"}.
func (r *Readiness) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	body := struct {
		Status string `json:"status"`
		Reason string `json:"reason,omitempty"`
	}{Status: "ready"}
	status := http.StatusOK
	if err := r.Check(req.Context()); err != nil {
		status, body.Status, body.Reason = http.StatusServiceUnavailable, "unavailable", err.Error()
	}
	b, _ := json.Marshal(body)
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// Bounded runs fn (which may not heed ctx, such as a read from a file that
// hangs on a stalled disk) and returns its error, or ctx's when ctx ends
// first. While an earlier run is still under way it does not start
// another: it reports that the earlier one has not returned, so a stalled
// store never piles up goroutines.
type Bounded struct {
	mu      sync.Mutex
	running bool
}

// Run is described at Bounded.
func (b *Bounded) Run(ctx context.Context, fn func() error) error {
	b.mu.Lock()
	if b.running {
		b.mu.Unlock()
		return errors.New("an earlier check has not returned")
	}
	b.running = true
	b.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		err := fn()
		b.mu.Lock()
		b.running = false
		b.mu.Unlock()
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
