// Package loglimit keeps a flood of identical log records from burying the
// log: a slog.Handler that lets the first few records with the same level
// and message through in an interval, counts the rest, and at the end of
// the interval writes one line saying how many it held back.
//
// With the disk full, every request that writes fails and logs the same
// error: 129,199 lines in 90 seconds before this handler. Records differ
// in their attributes (request, user), so only the level and the message
// decide what is "the same": the first records of each interval show the
// attributes, the summary the count.
package loglimit

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Options tune the handler. The zero value is ready to use.
type Options struct {
	// Level is the least severe level that is limited; less severe records
	// always pass (a warning per failed sign-in is what fail2ban counts).
	// Default slog.LevelError.
	Level slog.Leveler
	// Burst is how many identical records pass in an interval. Default 5.
	Burst int
	// Interval is the length of an interval, which starts at the first of
	// the identical records. Default 10s.
	Interval time.Duration
	// Messages are limited whatever their level: lines of their own that an
	// unauthenticated caller can repeat at will (a refused sign-in at INFO).
	Messages []string
}

// maxKinds bounds the messages tracked at once; records of further kinds
// pass unlimited rather than being held back unseen.
const maxKinds = 1000

// Handler limits identical records; see the package comment. Handlers
// derived with WithAttrs and WithGroup share the limits of their parent.
type Handler struct {
	next slog.Handler
	st   *state
}

type state struct {
	level    slog.Leveler
	messages map[string]bool
	burst    int
	interval time.Duration
	out      slog.Handler // where summaries go: the handler New was given
	// afterFunc is time.AfterFunc; tests replace it.
	afterFunc func(time.Duration, func()) *time.Timer

	mu    sync.Mutex
	kinds map[kind]*window
}

type kind struct {
	level slog.Level
	msg   string
}

type window struct {
	passed, held int
	timer        *time.Timer
}

// New wraps next.
func New(next slog.Handler, o Options) *Handler {
	if o.Level == nil {
		o.Level = slog.LevelError
	}
	if o.Burst <= 0 {
		o.Burst = 5
	}
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	messages := make(map[string]bool, len(o.Messages))
	for _, m := range o.Messages {
		messages[m] = true
	}
	return &Handler{next: next, st: &state{
		level: o.Level, messages: messages, burst: o.Burst, interval: o.Interval, out: next,
		afterFunc: time.AfterFunc, kinds: map[kind]*window{},
	}}
}

// Enabled reports what the wrapped handler reports.
func (h *Handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

// Handle passes r on unless it is one too many of its kind.
func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	if (r.Level >= h.st.level.Level() || h.st.messages[r.Message]) && !h.st.admit(kind{r.Level, r.Message}) {
		return nil
	}
	return h.next.Handle(ctx, r)
}

// WithAttrs returns a handler with attrs that shares h's limits.
func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Handler{next: h.next.WithAttrs(attrs), st: h.st}
}

// WithGroup returns a handler with a group that shares h's limits.
func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{next: h.next.WithGroup(name), st: h.st}
}

// Flush ends every interval now, writing the summaries of what was held
// back; call it before the program exits.
func (h *Handler) Flush() {
	h.st.mu.Lock()
	kinds := make([]kind, 0, len(h.st.kinds))
	for k, w := range h.st.kinds {
		w.timer.Stop()
		kinds = append(kinds, k)
	}
	h.st.mu.Unlock()
	for _, k := range kinds {
		h.st.end(k)
	}
}

// admit counts a record of kind k and tells whether it may pass.
func (st *state) admit(k kind) bool {
	st.mu.Lock()
	defer st.mu.Unlock()
	w := st.kinds[k]
	if w == nil {
		if len(st.kinds) >= maxKinds {
			return true
		}
		w = &window{}
		st.kinds[k] = w
		w.timer = st.afterFunc(st.interval, func() { st.end(k) })
	}
	if w.passed < st.burst {
		w.passed++
		return true
	}
	w.held++
	return false
}

// end closes k's interval and writes its summary when records were held.
func (st *state) end(k kind) {
	st.mu.Lock()
	w := st.kinds[k]
	delete(st.kinds, k)
	st.mu.Unlock()
	if w == nil || w.held == 0 {
		return
	}
	r := slog.NewRecord(time.Now(), k.level, fmt.Sprintf("suppressed %d similar messages", w.held), 0)
	r.AddAttrs(slog.String("repeated", k.msg), slog.Duration("within", st.interval))
	_ = st.out.Handle(context.Background(), r)
}
