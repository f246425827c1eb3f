package requestlog_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyport/keyport/metrics"
	"github.com/keyport/keyport/requestlog"
)

// TestOneLinePerRequest: the line names the route template (or
// "unmatched"), the final status and the id sent back; quiet routes go
// to DEBUG; invented methods are "OTHER".
func TestOneLinePerRequest(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var seen []requestlog.Request
	mux := http.NewServeMux()
	mux.Handle("/users/{id}", requestlog.Route("/users/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusEarlyHints) // interim: not the status
		w.WriteHeader(http.StatusCreated)
	})))
	mux.Handle("/healthz", requestlog.Route("/healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	})))
	h := requestlog.Middleware(requestlog.Options{Logger: log, Quiet: []string{"/healthz"}, Observe: func(r requestlog.Request) { seen = append(seen, r) }}, mux)

	var ids []string
	for _, c := range []struct{ method, path string }{{"GET", "/users/x7q9z"}, {"GET", "/healthz"}, {"BREW", "/nowhere/x7q9z"}} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(c.method, c.path, nil))
		ids = append(ids, rec.Header().Get(requestlog.Header))
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	for i, want := range [][]string{
		{"level=INFO", "method=GET", "route=/users/{id}", "status=201", "request_id=" + ids[0]},
		{"level=DEBUG", "route=/healthz", "status=200"},
		{"level=INFO", "method=OTHER", "route=unmatched", "status=404"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i], w) {
				t.Errorf("line %d %q lacks %q", i, lines[i], w)
			}
		}
		if strings.Contains(lines[i], "x7q9z") {
			t.Errorf("line %d shows the raw path: %s", i, lines[i])
		}
	}
	if ids[0] == "" || ids[0] == ids[1] || len(seen) != 3 || seen[0].Route != "/users/{id}" || seen[0].Status != 201 || seen[2].Route != requestlog.Unmatched {
		t.Errorf("ids %q, observed %+v", ids, seen)
	}
}

// TestHandlerAddsTheRequestID: records logged with a request's context
// carry its id; others do not.
func TestHandlerAddsTheRequestID(t *testing.T) {
	var out bytes.Buffer
	log := slog.New(requestlog.Handler(slog.NewTextHandler(&out, nil))).With("component", "test")
	var id string
	h := requestlog.Middleware(requestlog.Options{}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id = requestlog.ID(r.Context())
		log.InfoContext(r.Context(), "inside")
	}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	log.InfoContext(context.Background(), "outside")
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], "request_id="+id) || !strings.Contains(lines[0], "component=test") || strings.Contains(lines[1], "request_id") {
		t.Errorf("lines:\n%s", out.String())
	}
}

// BenchmarkRequestLogging measures what the request middleware adds to
// a request, in one run: no middleware, the middleware logging at INFO
// as text and as JSON (to io.Discard: formatting, not disk), and with
// the metrics observing too.
//
//	go test ./requestlog -run '^$' -bench RequestLogging -benchmem -count 5
func BenchmarkRequestLogging(b *testing.B) {
	inner := http.NewServeMux()
	inner.Handle("/users/{id}", requestlog.Route("/users/{id}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("hello"))
	})))
	text := slog.New(slog.NewTextHandler(io.Discard, nil))
	jsonLog := slog.New(slog.NewJSONHandler(io.Discard, nil))
	met := metrics.New()
	for _, c := range []struct {
		name string
		h    http.Handler
	}{
		{"bare", inner},
		{"text", requestlog.Middleware(requestlog.Options{Logger: text}, inner)},
		{"json", requestlog.Middleware(requestlog.Options{Logger: jsonLog}, inner)},
		{"text+metrics", requestlog.Middleware(requestlog.Options{Logger: text, Observe: met.Request}, inner)},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			req := httptest.NewRequest("GET", "/users/42", nil)
			w := &sink{h: http.Header{}}
			for b.Loop() {
				clear(w.h)
				c.h.ServeHTTP(w, req)
			}
		})
	}
}

type sink struct{ h http.Header }

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(b []byte) (int, error) { return len(b), nil }
func (s *sink) WriteHeader(int)             {}
