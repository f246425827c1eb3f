package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/keyport/keyport/health"
	"github.com/keyport/keyport/provider"
	"github.com/keyport/keyport/requestlog"
)

// The outbox depth gauge pages through the store's messages, so a count
// serves the scrapes of outboxDepthTTL and stops at outboxDepthLimit
// messages per state.
const (
	outboxDepthTTL   = 15 * time.Second
	outboxDepthLimit = 100_000
)

// quietRoutes are logged at DEBUG: probes and scrapes every few seconds
// would drown the log (config.toml, log_format).
var quietRoutes = []string{"/healthz", "/readyz", "/metrics"}

// logRequests gives every request an id and logs it once (requestlog),
// and counts it when metrics are on.
func (m *Main) logRequests(next http.Handler) http.Handler {
	o := requestlog.Options{Logger: m.Logger, Quiet: quietRoutes}
	if m.Metrics != nil {
		o.Observe = m.Metrics.Request
	}
	return requestlog.Middleware(o, next)
}

// providerObserver is what the provider tells of tokens: the metrics, or
// nil (an interface holding no *metrics.Metrics).
func (m *Main) providerObserver() provider.Observer {
	if m.Metrics == nil {
		return nil
	}
	return m.Metrics
}

// readiness is what /readyz checks: the database answers a read within
// the bound (a stalled disk shows here, not as a hung probe), and a
// signing key is loaded. Migrations need no check of their own: bolt
// applies them in Open, before serve listens, and a failed one stops
// start-up; a backend that migrates while serving adds a check here.
func (m *Main) readiness() *health.Readiness {
	r := health.NewReadiness(health.DefaultTimeout, health.DefaultTTL, nil)
	var read health.Bounded
	r.Add(health.Check{Name: "database", Run: func(ctx context.Context) error {
		if err := m.storeHealth(); err != nil {
			return err
		}
		return read.Run(ctx, func() error {
			if _, err := m.Store.GetSetting(ctx, settingSealCheck); err != nil {
				return errors.New("a read failed")
			}
			return nil
		})
	}})
	r.Add(health.Check{Name: "signing keys", Run: func(context.Context) error {
		if m.Keys == nil || m.Keys.SigningKeyID() == "" {
			return errors.New("not loaded")
		}
		return nil
	}})
	return r
}

// serveMetrics starts the metrics listener ([metrics] listen): /metrics,
// and /healthz and /readyz for probes that should not pass the proxy.
// It returns nil when metrics are off. public is the public listener,
// which the metrics must never share.
func (m *Main) serveMetrics(public net.Listener) (*http.Server, error) {
	if m.Metrics == nil {
		return nil, nil
	}
	ln := m.MetricsListener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", m.Config.Metrics.Listen); err != nil {
			public.Close()
			return nil, fmt.Errorf("metrics.listen: listen on %s: %w", m.Config.Metrics.Listen, err)
		}
	}
	addr := ln.Addr().String()
	m.metricsAddr.Store(&addr)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", requestlog.Route("/metrics", m.Metrics.Handler()))
	mux.Handle("GET /healthz", requestlog.Route("/healthz", health.Live(m.storeHealth)))
	mux.Handle("GET /readyz", requestlog.Route("/readyz", m.Ready))
	if m.Config.Metrics.Profiling {
		// Registered by hand rather than through the package's init on
		// http.DefaultServeMux, which nothing here serves.
		mux.HandleFunc("GET /debug/pprof/", pprof.Index)
		mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)
	}
	srv := &http.Server{
		Handler:           m.logRequests(mux),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(m.Logger.Handler(), slog.LevelWarn),
	}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("metrics listener stopped", "err", err)
		}
	}()
	m.Logger.Info("metrics are served", "listen", addr)
	return srv, nil
}

// MetricsAddr is where the metrics listener listens ("" before Run has
// opened it, or with metrics off).
func (m *Main) MetricsAddr() string {
	if a := m.metricsAddr.Load(); a != nil {
		return *a
	}
	return ""
}
