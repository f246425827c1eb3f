package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/slapdtest"
	"github.com/keyport/keyport/requestlog"
)

// syncBuffer is a log destination tests read while the server writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// scrape reads the metrics listener's /metrics: every sample by
// "name{label="value",…}" (labels sorted), histograms by their _count.
func scrape(t *testing.T, addr string) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse the scrape: %v", err)
	}
	out := map[string]float64{}
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			slices.Sort(labels)
			key := name + "{" + strings.Join(labels, ",") + "}"
			switch {
			case m.Counter != nil:
				out[key] = m.GetCounter().GetValue()
			case m.Gauge != nil:
				out[key] = m.GetGauge().GetValue()
			case m.Histogram != nil:
				out[name+"_count{"+strings.Join(labels, ",")+"}"] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

// TestMetricsCountARealCodeFlow signs in through the portal and a go-oidc
// relying party (a wrong password, a throttled one, a code flow, a
// refresh, the reuse of the rotated refresh token) and checks that each
// counter moved by exactly what happened, with route templates as labels.
// It also checks the request log, the request id on error pages and the
// probes, on the public and the metrics listener.
func TestMetricsCountARealCodeFlow(t *testing.T) {
	logs := &syncBuffer{}
	srv := startServerWith(t, serverOptions{logs: logs, mutate: func(c *config.Config) {
		c.Metrics.Listen = "127.0.0.1:0"
		c.Limits.MaxLoginAttempts = 2
		c.Tokens.RefreshReuseGrace = config.Duration{} // reuse revokes at once
	}})
	addr := srv.Main.MetricsAddr()
	if addr == "" {
		t.Fatal("no metrics listener")
	}
	srv.createUser("alice", false)
	srv.createUser("bob", false)
	app := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki", SkipConsent: true})
	app.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	before := scrape(t, addr)

	// bob: two wrong passwords, then the throttle refuses the third.
	b := newBrowser(t)
	p := b.get(srv.URL + "/login")
	for i, want := range []int{http.StatusUnauthorized, http.StatusUnauthorized, http.StatusTooManyRequests} {
		p = b.submit(p, "/login", url.Values{"login": {"bob"}, "password": {"wrong password!"}})
		if p.Status != want {
			t.Fatalf("bob's attempt %d: %d, want %d", i+1, p.Status, want)
		}
	}
	// alice: a code flow, a refresh, and the rotated token again.
	tok := app.tokens("alice")
	status, _, fresh := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true)
	if status != http.StatusOK || fresh["refresh_token"] == nil {
		t.Fatalf("refresh: %d %v", status, fresh)
	}
	if status, _, body := app.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Fatalf("reuse: %d %v", status, body)
	}
	// A path nobody serves, with an id in it: one label for them all.
	missing := b.get(srv.URL + "/no/such/page/4711")
	if missing.Status != http.StatusNotFound {
		t.Fatalf("missing page: %d", missing.Status)
	}

	after := scrape(t, addr)
	moved := func(key string) float64 { return after[key] - before[key] }
	for key, want := range map[string]float64{
		`keyport_signin_attempts_total{method="pwd",outcome="failure"}`:              2,
		`keyport_signin_attempts_total{method="pwd",outcome="success"}`:              1,
		`keyport_throttled_attempts_total{method="pwd"}`:                             1,
		`keyport_tokens_issued_total{grant_type="authorization_code"}`:               1,
		`keyport_tokens_issued_total{grant_type="refresh_token"}`:                    1,
		`keyport_refresh_token_reuse_total{}`:                                        1,
		`keyport_http_requests_total{code="401",method="POST",route="/login"}`:       2,
		`keyport_http_requests_total{code="429",method="POST",route="/login"}`:       1,
		`keyport_http_requests_total{code="200",method="POST",route="/oauth/token"}`: 2,
		`keyport_http_requests_total{code="400",method="POST",route="/oauth/token"}`: 1,
		`keyport_http_requests_total{code="404",method="GET",route="unmatched"}`:     1,
		`keyport_http_request_duration_seconds_count{route="/oauth/token"}`:          3,
		`keyport_http_request_duration_seconds_count{route="/authorize"}`:            1,
	} {
		if got := moved(key); got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	for _, op := range []string{"RecordSignIn", "GetUser", "CreateCodeTokens"} {
		if key := `keyport_store_operation_duration_seconds_count{operation="` + op + `"}`; moved(key) < 1 {
			t.Errorf("%s did not move", key)
		}
	}
	for _, key := range []string{`keyport_outbox_messages{state="pending"}`, `keyport_outbox_messages{state="failed"}`, `go_goroutines{}`, `process_resident_memory_bytes{}`} {
		if _, ok := after[key]; !ok {
			t.Errorf("no %s", key)
		}
	}
	for key := range after {
		if strings.Contains(key, "4711") || strings.Contains(key, "/no/such") {
			t.Errorf("a raw path became a label: %s", key)
		}
	}

	// The request id: in the header, on the error page, once in the log.
	id := missing.Header.Get(requestlog.Header)
	if len(id) < 20 {
		t.Fatalf("X-Request-Id %q", id)
	}
	if !strings.Contains(missing.Body, id) {
		t.Errorf("the error page does not show the request id %s:\n%s", id, truncateBody(missing.Body))
	}
	if again := b.get(srv.URL + "/no/such/page/4711").Header.Get(requestlog.Header); again == id || again == "" {
		t.Errorf("request ids %q and %q", id, again)
	}
	var lines []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "request_id="+id) {
			lines = append(lines, line)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("log lines with the request id: %q", lines)
	}
	for _, want := range []string{"level=INFO", "msg=request", "method=GET", "route=unmatched", "status=404", "duration=", "client_ip=127.0.0.1"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("request line %q lacks %q", lines[0], want)
		}
	}
	if !strings.Contains(logs.String(), "route=/oauth/token status=200") {
		t.Error("no request line for the token endpoint")
	}

	// Probes: on both listeners, no-store; metrics only on their own.
	for _, base := range []string{srv.URL, "http://" + addr} {
		for path, want := range map[string]string{"/healthz": "ok\n", "/readyz": `{"status":"ready"}` + "\n"} {
			resp, err := http.Get(base + path)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(body) != want || resp.Header.Get("Cache-Control") != "no-store" {
				t.Errorf("%s%s: %d %q cache %q", base, path, resp.StatusCode, body, resp.Header.Get("Cache-Control"))
			}
		}
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || strings.Contains(string(body), "keyport_") {
		t.Errorf("public /metrics: %d %.200s", resp.StatusCode, body)
	}
	// Probes are logged at DEBUG, never INFO.
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "msg=request") && (strings.Contains(line, "route=/healthz") || strings.Contains(line, "route=/readyz") || strings.Contains(line, "route=/metrics")) && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("a probe logged above DEBUG: %s", line)
		}
	}
}

// TestMetricsOffByDefault: without [metrics] listen nothing listens and
// the store is not wrapped.
func TestMetricsOffByDefault(t *testing.T) {
	srv := startServer(t, "", nil)
	if srv.Main.Metrics != nil || srv.Main.MetricsAddr() != "" {
		t.Fatalf("metrics on by default: %v %q", srv.Main.Metrics, srv.Main.MetricsAddr())
	}
	if _, raw := srv.Main.Store.(interface {
		Backup(context.Context, io.Writer) error
	}); !raw {
		t.Fatal("store lost a method")
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("/metrics: %d", resp.StatusCode)
	}
}

// TestProfilingOnlyWhenAsked: [metrics] profiling serves Go's profiles on
// the metrics listener, never on the public one, and not at all unless
// turned on.
func TestProfilingOnlyWhenAsked(t *testing.T) {
	get := func(u string) (int, string) {
		t.Helper()
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	for _, on := range []bool{false, true} {
		srv := startServerWith(t, serverOptions{mutate: func(c *config.Config) {
			c.Metrics.Listen = "127.0.0.1:0"
			c.Metrics.Profiling = on
		}})
		status, body := get("http://" + srv.Main.MetricsAddr() + "/debug/pprof/goroutine?debug=1")
		switch {
		case on && (status != http.StatusOK || !strings.Contains(body, "goroutine profile")):
			t.Errorf("profiling on: %d %.200q", status, body)
		case !on && status != http.StatusNotFound:
			t.Errorf("profiling off: %d", status)
		}
		if status, _ := get(srv.URL + "/debug/pprof/goroutine?debug=1"); status != http.StatusNotFound {
			t.Errorf("profiling %v: public listener answers /debug/pprof/ with %d", on, status)
		}
	}
}

// TestJSONLogFormat: log_format = "json" writes one JSON object a line,
// with the request id added to records logged with a request's context,
// while the limiter still folds a flood of refusals.
func TestJSONLogFormat(t *testing.T) {
	var out syncBuffer
	log := newFormatLogger("info", "json", &out)
	var seen string
	h := requestlog.Middleware(requestlog.Options{Logger: log}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requestlog.SetRoute(r.Context(), "/users/{id}")
		seen = requestlog.ID(r.Context())
		log.WarnContext(r.Context(), "inside the handler")
		for range 20 {
			log.InfoContext(r.Context(), account.LogRefused, "login", "bob")
		}
		w.WriteHeader(http.StatusTeapot)
	}))
	req, _ := http.NewRequest(http.MethodGet, "http://keyport.test/users/123", nil)
	req.RemoteAddr = "192.0.2.7:4711"
	h.ServeHTTP(newDiscardWriter(), req)
	flushLog(log)

	var warn, request, refused int
	for line := range strings.Lines(out.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON line: %q", line)
		}
		switch rec["msg"] {
		case "inside the handler":
			warn++
			if rec["request_id"] != seen {
				t.Errorf("handler's line: request_id %v, want %s", rec["request_id"], seen)
			}
		case "request":
			request++
			if rec["route"] != "/users/{id}" || rec["status"] != float64(418) || rec["request_id"] != seen || rec["client_ip"] != "192.0.2.7" || rec["method"] != "GET" {
				t.Errorf("request line: %v", rec)
			}
		case account.LogRefused:
			refused++
		}
	}
	if warn != 1 || request != 1 || refused == 0 || refused >= 20 {
		t.Errorf("lines: %d handler, %d request, %d of 20 refusals (the limiter should fold them)", warn, request, refused)
	}
}

type discardWriter struct{ h http.Header }

func newDiscardWriter() *discardWriter               { return &discardWriter{h: http.Header{}} }
func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

// TestMetricsCountDirectorySyncs: a sync that runs through and one with
// the directory down, by result, with their durations; a directory that
// does not exist adds no label.
func TestMetricsCountDirectorySyncs(t *testing.T) {
	ldapSrv := slapdtest.Start(t, directoryFixtures)
	srv := startServer(t, "", func(c *config.Config) {
		c.Directories = []config.Directory{corpDirectory(ldapSrv.URL)}
		c.Metrics.Listen = "127.0.0.1:0"
	})
	addr := srv.Main.MetricsAddr()
	ok := `keyport_directory_syncs_total{directory="corp",result="ok"}`
	// The scheduled sync at start-up runs on its own; wait for it.
	deadline := time.Now().Add(10 * time.Second)
	for scrape(t, addr)[ok] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the start-up sync was never counted")
		}
		time.Sleep(20 * time.Millisecond)
	}
	before := scrape(t, addr)
	ctx := context.Background()
	if _, err := srv.Main.Accounts.Directories.SyncDirectory(ctx, "corp"); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Main.Accounts.Directories.SyncDirectory(ctx, "no-such-directory"); account.ErrorCode(err) != account.NotFound {
		t.Fatalf("sync of a directory that does not exist: %v", err)
	}
	ldapSrv.Stop()
	if _, err := srv.Main.Accounts.Directories.SyncDirectory(ctx, "corp"); account.ErrorCode(err) != account.Unavailable {
		t.Fatalf("sync with the directory down: %v", err)
	}
	after := scrape(t, addr)
	for key, want := range map[string]float64{
		ok: 1,
		`keyport_directory_syncs_total{directory="corp",result="error"}`:  1,
		`keyport_directory_sync_duration_seconds_count{directory="corp"}`: 2,
	} {
		if got := after[key] - before[key]; got != want {
			t.Errorf("%s moved by %v, want %v", key, got, want)
		}
	}
	for key := range after {
		if strings.Contains(key, "no-such-directory") {
			t.Errorf("an unknown directory became a label: %s", key)
		}
	}
}
