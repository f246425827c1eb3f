// Package outbox delivers the messages that producers commit to the
// store's outbox (storage.Outbox) in the same transaction as the change
// that causes them: mail, webhook calls, back-channel logouts. A Worker
// claims due messages under a lease, hands each to the Deliverer of its
// Kind, and records the outcome: delivered, retried later with
// exponential backoff, or failed for admins to see.
//
// Delivery is at least once. A message stays in the store until its
// delivery is recorded, so a crash (kill -9, a lost machine) loses
// nothing: its lease ends and a worker delivers it again. The crash window
// is the moment between a receiver accepting a message (an SMTP 250, an
// HTTP 2xx) and the store committing CompleteOutbox: a crash there makes
// the message go out a second time, after its lease, with the same ID.
// Receivers de-duplicate on that ID (a webhook's "id", a mail's
// Message-ID); outside that window a message is delivered once.
//
// A second worker (a second replica) never holds a message while another
// does: ClaimOutbox leases in one transaction. The lease is longer than a
// delivery may take (DeliveryTimeout plus a minute), so it ends only when
// its worker is gone.
package outbox

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/keyport/keyport/storage"
)

// Deliverer sends messages of one Kind. Deliver returns nil once the
// receiver has accepted the message; an error wrapped by Permanent fails
// the message at once, any other error is retried. It must return when
// ctx ends (the worker gives each delivery DeliveryTimeout).
type Deliverer interface {
	Deliver(ctx context.Context, m storage.OutboxMessage) error
}

// DelivererFunc adapts a function to Deliverer.
type DelivererFunc func(ctx context.Context, m storage.OutboxMessage) error

// Deliver calls f.
func (f DelivererFunc) Deliver(ctx context.Context, m storage.OutboxMessage) error { return f(ctx, m) }

// permanentError marks an error that retrying cannot cure.
type permanentError struct{ err error }

func (e *permanentError) Error() string { return e.err.Error() }
func (e *permanentError) Unwrap() error { return e.err }

// Permanent marks err as one that retrying cannot cure (a mailbox that
// does not exist, a webhook URL that answers 410): the message fails at
// once.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &permanentError{err: err}
}

// IsPermanent tells whether err (or an error it wraps) was marked by Permanent.
func IsPermanent(err error) bool {
	var p *permanentError
	return errors.As(err, &p)
}

// Defaults of Options.
const (
	// DefaultConcurrency: deliveries mostly wait on the network, and the
	// store shares one commit among the outcomes recorded at the same
	// time, so throughput grows with it (see outbox_bench_test.go: 4
	// deliveries at a time record about 230 messages/s, 16 about 900).
	DefaultConcurrency     = 16
	DefaultDeliveryTimeout = 30 * time.Second
	DefaultPollInterval    = 5 * time.Second
	DefaultMinBackoff      = 30 * time.Second
	DefaultMaxBackoff      = time.Hour
	// leaseMargin is how much longer than a delivery a lease lasts: the
	// time to record the outcome, on a busy disk.
	leaseMargin = time.Minute
)

// Options configures a Worker. Store is required; the rest has defaults.
type Options struct {
	Store  storage.Outbox
	Logger *slog.Logger
	// Now is the clock for due times, backoff and deadlines. Default time.Now.
	Now func() time.Time
	// Concurrency bounds the deliveries under way at once.
	Concurrency int
	// DeliveryTimeout bounds one delivery; the lease is a minute longer.
	DeliveryTimeout time.Duration
	// PollInterval is how often the worker looks for messages that became
	// due (retries) when nothing woke it (Notify).
	PollInterval time.Duration
	// MinBackoff is the wait before the first retry; each further retry
	// waits twice as long, up to MaxBackoff, each wait varied by ±25%
	// (jitter) so that messages that failed together (a receiver down)
	// do not all come back in the same second.
	MinBackoff, MaxBackoff time.Duration
	// Jitter returns a number in [0, 1); default math/rand/v2. Tests fix it.
	Jitter func() float64
	// Observe, when set, is told of each attempt's outcome: "delivered",
	// "retry" (failed, tried again later) or "failed" (given up), for
	// metrics. It must be quick and safe for concurrent use.
	Observe func(kind, outcome string)
}

// Worker delivers outbox messages. Register deliverers with Handle, then
// call Run once.
type Worker struct {
	opts       Options
	log        *slog.Logger
	deliverers map[string]Deliverer
	wake       chan struct{}
	slots      chan struct{}
}

// New returns a worker with no deliverers.
func New(opts Options) *Worker {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.DeliveryTimeout <= 0 {
		opts.DeliveryTimeout = DefaultDeliveryTimeout
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff < opts.MinBackoff {
		opts.MaxBackoff = max(DefaultMaxBackoff, opts.MinBackoff)
	}
	if opts.Jitter == nil {
		opts.Jitter = rand.Float64
	}
	return &Worker{
		opts:       opts,
		log:        opts.Logger,
		deliverers: map[string]Deliverer{},
		wake:       make(chan struct{}, 1),
		slots:      make(chan struct{}, opts.Concurrency),
	}
}

// Handle makes d deliver the messages of kind. Call it before Run.
func (w *Worker) Handle(kind string, d Deliverer) { w.deliverers[kind] = d }

// Notify wakes the worker at once, so a message enqueued just now does not
// wait for the next poll. It never blocks; producers call it after their
// commit.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Lease is how long a claim holds a message: a delivery's timeout plus a
// margin to record the outcome.
func (w *Worker) Lease() time.Duration { return w.opts.DeliveryTimeout + leaseMargin }

// Run delivers messages until ctx ends, then waits for the deliveries
// under way to return. A delivery cut short by the end is not recorded:
// its message stays leased and is delivered again once the lease ends.
// With no deliverers registered, Run only waits for ctx (there is nothing
// it could deliver, and it must not fail messages a later start will
// know how to send).
func (w *Worker) Run(ctx context.Context) {
	if len(w.deliverers) == 0 {
		<-ctx.Done()
		return
	}
	var running sync.WaitGroup
	defer running.Wait()
	poll := time.NewTimer(w.opts.PollInterval)
	defer poll.Stop()
	for {
		// Claim only as many messages as there are free slots, so no
		// message's lease runs while it waits for one.
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		free := 1
		for free < cap(w.slots) && w.tryTakeSlot() {
			free++
		}
		msgs, err := w.opts.Store.ClaimOutbox(ctx, w.opts.Now(), w.Lease(), free)
		if err != nil && ctx.Err() == nil {
			w.log.Error("claim outbox messages", "err", err)
		}
		for range free - len(msgs) {
			<-w.slots
		}
		for _, m := range msgs {
			running.Go(func() {
				defer func() { <-w.slots }()
				w.deliver(ctx, m)
			})
		}
		if err == nil && len(msgs) == free {
			continue // more may be due: claim again as slots free up
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-poll.C:
		}
		poll.Reset(w.opts.PollInterval)
	}
}

func (w *Worker) tryTakeSlot() bool {
	select {
	case w.slots <- struct{}{}:
		return true
	default:
		return false
	}
}

// deliver hands m to its deliverer and records the outcome.
func (w *Worker) deliver(ctx context.Context, m storage.OutboxMessage) {
	d, ok := w.deliverers[m.Kind]
	var err error
	if !ok {
		err = Permanent(fmt.Errorf("no deliverer for kind %q", m.Kind))
	} else {
		dctx, cancel := context.WithTimeout(ctx, w.opts.DeliveryTimeout)
		err = deliverSafely(dctx, d, m)
		cancel()
	}
	// Record even when ctx has ended meanwhile: a delivery that succeeded
	// is not repeated for want of its record.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	now := w.opts.Now()
	attempt := m.Attempts + 1
	if err == nil {
		w.observe(m.Kind, "delivered")
		if cerr := w.opts.Store.CompleteOutbox(rctx, m.ID, now); cerr != nil {
			w.log.Error("outbox message delivered but not recorded; it will go out again after its lease",
				"kind", m.Kind, "id", m.ID, "attempt", attempt, "err", cerr)
		}
		return
	}
	if ctx.Err() != nil && !IsPermanent(err) {
		return // shutting down: the lease ends and another run retries it
	}
	deadline := m.Deadline
	if deadline.IsZero() {
		deadline = m.CreatedAt.Add(storage.DefaultOutboxLifetime)
	}
	var serr error
	switch {
	case IsPermanent(err):
		w.observe(m.Kind, "failed")
		w.log.Warn("outbox message failed for good", "kind", m.Kind, "id", m.ID, "attempt", attempt, "err", err)
		serr = w.opts.Store.FailOutbox(rctx, m.ID, now, err.Error())
	case !now.Before(deadline):
		w.observe(m.Kind, "failed")
		w.log.Warn("outbox message failed: its deadline has passed", "kind", m.Kind, "id", m.ID, "attempt", attempt, "deadline", deadline, "err", err)
		serr = w.opts.Store.FailOutbox(rctx, m.ID, now, err.Error())
	default:
		next := now.Add(w.Backoff(attempt))
		if next.After(deadline) {
			next = deadline // one last attempt at the deadline
		}
		w.observe(m.Kind, "retry")
		w.log.Warn("outbox delivery failed; retrying", "kind", m.Kind, "id", m.ID, "attempt", attempt, "next", next, "err", err)
		serr = w.opts.Store.RetryOutbox(rctx, m.ID, next, err.Error())
	}
	if serr != nil {
		w.log.Error("record outbox delivery failure", "kind", m.Kind, "id", m.ID, "attempt", attempt, "err", serr)
	}
}

func (w *Worker) observe(kind, outcome string) {
	if w.opts.Observe != nil {
		w.opts.Observe(kind, outcome)
	}
}

// deliverSafely turns a deliverer's panic into a retried error, so one bad
// message cannot stop the worker.
func deliverSafely(ctx context.Context, d Deliverer, m storage.OutboxMessage) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("deliverer panicked: %v", p)
		}
	}()
	return d.Deliver(ctx, m)
}

// Backoff is the wait after the attempt-th failed attempt (1 for the
// first): MinBackoff doubled attempt-1 times, at most MaxBackoff, varied
// by ±25%.
func (w *Worker) Backoff(attempt int) time.Duration {
	d := w.opts.MinBackoff
	for i := 1; i < attempt && d < w.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.opts.MaxBackoff)
	return time.Duration(float64(d) * (0.75 + 0.5*w.opts.Jitter()))
}
