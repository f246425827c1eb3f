// Package requestlog gives every HTTP request an id and one log line. The
// id goes back to the caller in the X-Request-Id header and onto error
// pages (ID), and into every log record written with the request's context
// (Handler), so a user who quotes it leads an admin to the lines that
// matter. The line names the route (the path template the router matched,
// never the raw path), and the same facts go to an observer (metrics).
//
// It is a leaf: the routers below it (portal's route table, the provider's
// paths) tell it the route through SetRoute, and it imports none of them.
package requestlog

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"time"

	"github.com/keyport/keyport/clientip"
)

// Header carries the request id back to the caller.
const Header = "X-Request-Id"

// Unmatched is the route of a request no route took (a page that does not
// exist, a method no route accepts): every such path counts as one route,
// so anyone inventing paths cannot grow the metrics or the log's routes.
const Unmatched = "unmatched"

// Request is what is known of a request once it is answered.
type Request struct {
	// Method is the request's method when it is one Keyport serves, else
	// "OTHER" (see Method).
	Method   string
	Route    string
	Status   int
	Duration time.Duration
}

// Options configure Middleware.
type Options struct {
	// Logger gets one record per request: at INFO, or at DEBUG for the
	// Quiet routes. Nil logs nothing.
	Logger *slog.Logger
	// Quiet routes (probes, scrapes) are logged at DEBUG: a load balancer
	// asking every few seconds would drown the log.
	Quiet []string
	// Observe, when set, is told of every request once it is answered.
	Observe func(Request)
	// Now is the clock for durations; default time.Now.
	Now func() time.Time
}

// state is one request's: its id, and the route the router reports.
type state struct {
	id    string
	route string
}

type ctxKey struct{}

// Middleware gives each request an id (a fresh random one: Keyport has no
// trusted source of ids upstream), sets the X-Request-Id response header,
// and logs and observes the request once it is answered.
func Middleware(o Options, next http.Handler) http.Handler {
	if o.Now == nil {
		o.Now = time.Now
	}
	quiet := make(map[string]bool, len(o.Quiet))
	for _, r := range o.Quiet {
		quiet[r] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := o.Now()
		st := &state{id: rand.Text()}
		w.Header().Set(Header, st.id)
		sw := &statusWriter{ResponseWriter: w}
		next.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), ctxKey{}, st)))

		req := Request{Method: Method(r.Method), Route: st.route, Status: sw.status, Duration: o.Now().Sub(start)}
		if req.Route == "" {
			req.Route = Unmatched
		}
		if req.Status == 0 {
			req.Status = http.StatusOK // nothing written: net/http answers 200
		}
		if o.Logger != nil {
			level := slog.LevelInfo
			if quiet[req.Route] {
				level = slog.LevelDebug
			}
			// Background: the request's context would add the id a second
			// time (Handler).
			ctx := context.Background()
			if o.Logger.Enabled(ctx, level) {
				o.Logger.LogAttrs(ctx, level, "request",
					slog.String("method", req.Method),
					slog.String("route", req.Route),
					slog.Int("status", req.Status),
					slog.Duration("duration", req.Duration),
					slog.String("client_ip", clientip.String(r)),
					slog.String("request_id", st.id))
			}
		}
		if o.Observe != nil {
			o.Observe(req)
		}
	})
}

// Method names a request method for logs and metrics: one of the methods
// Keyport serves, or "OTHER", so that invented methods add no label values.
func Method(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return m
	}
	return "OTHER"
}

// SetRoute records the route (the path template) that took the request;
// routers call it before their handler runs. Without Middleware it does
// nothing.
func SetRoute(ctx context.Context, route string) {
	if st, ok := ctx.Value(ctxKey{}).(*state); ok {
		st.route = route
	}
}

// Route wraps next so that the requests it takes are recorded as route.
func Route(route string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r.Context(), route)
		next.ServeHTTP(w, r)
	})
}

// ID returns the id of the request ctx belongs to, or "".
func ID(ctx context.Context) string {
	if st, ok := ctx.Value(ctxKey{}).(*state); ok {
		return st.id
	}
	return ""
}

// statusWriter remembers the status a handler answered with.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 && code >= 200 { // 1xx are interim; the final status follows
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection (flushes,
// deadlines).
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Flush passes a flush on to the connection.
func (w *statusWriter) Flush() {
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Handler adds the request id (request_id) to every record logged with a
// request's context, wrapping next.
func Handler(next slog.Handler) slog.Handler { return &idHandler{next: next} }

type idHandler struct{ next slog.Handler }

func (h *idHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *idHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := ID(ctx); id != "" {
		r = r.Clone()
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.next.Handle(ctx, r)
}

func (h *idHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &idHandler{next: h.next.WithAttrs(attrs)}
}

func (h *idHandler) WithGroup(name string) slog.Handler {
	return &idHandler{next: h.next.WithGroup(name)}
}
