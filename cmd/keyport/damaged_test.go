package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/bolttest"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage/bolt"
)

// damagedStart is a data dir whose keyport.db has one damaged byte.
type damagedStart struct {
	what string
	dir  string
	db   []byte
}

// damagedDatabases writes a real database (a server that signed people in
// and issued tokens), then returns copies of it with one byte damaged in
// each kind of page: the meta pages' fields, and the header (page number,
// flags, count), the first element (position, size, child page) and the
// data of the freelist, branch and leaf pages.
func damagedDatabases(t *testing.T) (pristine string, app *testClient, starts []damagedStart) {
	t.Helper()
	pristine = t.TempDir()
	srv := startServer(t, pristine, nil)
	for i := range 12 {
		srv.createUser(fmt.Sprintf("user%02d", i), false)
	}
	app = srv.createClient(account.NewClient{ID: "app", SkipConsent: true, GrantTypes: []string{"authorization_code", "refresh_token"}})
	for i := range 4 {
		signInOffline(app, fmt.Sprintf("user%02d", i))
	}
	srv.stop()
	dbPath := filepath.Join(pristine, "keyport.db")
	raw, err := os.ReadFile(dbPath)
	if err != nil {
		t.Fatal(err)
	}
	pages, pageSize := bolttest.Pages(t, dbPath)
	perKind := map[string]int{}
	for _, p := range pages {
		if p.Kind == "free" || perKind[p.Kind] >= 2 {
			continue
		}
		perKind[p.Kind]++
		offs := []int{0, 8, 10, 16, 20, 24, pageSize - 1}
		if p.Kind == "meta" {
			offs = []int{16, 24, 32, 56} // magic, page size, root, high water mark
		}
		for _, off := range offs {
			b := append([]byte(nil), raw...)
			b[p.ID*pageSize+off] ^= 0xff
			starts = append(starts, damagedStart{what: fmt.Sprintf("%s page %d byte %d", p.Kind, p.ID, off), db: b})
		}
	}
	return pristine, app, starts
}

// prepare writes the damaged copy and the pristine key into a new data dir.
func (d *damagedStart) prepare(t *testing.T, pristine string) string {
	t.Helper()
	d.dir = t.TempDir()
	if err := os.WriteFile(filepath.Join(d.dir, "keyport.db"), d.db, 0o600); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(pristine, "secret.key"), filepath.Join(d.dir, "secret.key"))
	return d.dir
}

// TestStartOnDamagedDatabase starts Keyport (Load, in-process) on each
// damaged copy, with the check and without it. It either refuses with one
// line, or it runs: then sign-ins, tokens, refreshes and userinfo read and
// write the damaged file, and nothing may crash the process (a panic in a
// goroutine without a recover, like the group commit's, would end the
// test binary) or take the server down.
func TestStartOnDamagedDatabase(t *testing.T) {
	pristine, app, starts := damagedDatabases(t)
	outcomes := map[string]int{}
	for _, d := range starts {
		outcome := startDamaged(t, d.what+", checked", d.prepare(t, pristine), true, app)
		outcomes["checked: "+outcome]++
		if outcome != "refused as damaged" {
			continue // without the check it would run the same
		}
		// Without the check (database.check = false), the damage the check
		// found reaches requests.
		dir := d.prepare(t, pristine)
		if _, err := bolt.Verify(context.Background(), filepath.Join(dir, "keyport.db")); err != nil && (strings.Contains(err.Error(), "referenced twice") || strings.Contains(err.Error(), "listed as free")) {
			// Pages in a loop make bbolt recurse until the stack
			// overflows, and a freelist listing pages in use makes writes
			// overwrite them, which can build such loops: neither panics,
			// and only the check stops them.
			outcomes["unchecked not tried: a loop or a bad freelist"]++
			continue
		}
		outcomes["unchecked: "+startDamaged(t, d.what+", unchecked", dir, false, app)]++
	}
	t.Logf("%d damaged copies: %v", len(starts), outcomes)
	if outcomes["checked: refused as damaged"] == 0 || outcomes["checked: ran"] == 0 {
		t.Errorf("the damaged copies did not exercise both refusal and serving: %v", outcomes)
	}
}

// startDamaged loads and, when that works, exercises one damaged start.
func startDamaged(t *testing.T, what, dir string, check bool, app *testClient) string {
	t.Helper()
	ln := listenLoopback(t)
	addr := ln.Addr().String()
	cfg, _ := testConfig(t, &serverOptions{dir: dir, ln: ln, mutate: func(c *config.Config) { c.Database.Check = check }})
	logs := &testlog.Buffer{}
	m, err := Load(cfg, slog.New(slog.NewTextHandler(logs, nil)), nil)
	if err != nil {
		ln.Close()
		msg := err.Error()
		if strings.Contains(msg, "\n") || strings.Contains(msg, "panic") {
			t.Errorf("%s: refused with %q", what, msg)
		}
		if errors.Is(err, bolt.ErrDamaged) {
			if !strings.Contains(msg, cfg.DBPath()) || !strings.Contains(msg, "restore it from a backup") {
				t.Errorf("%s: the refusal does not name the file and the remedy: %q", what, msg)
			}
			return "refused as damaged"
		}
		// A damaged record that only Load reads (the signing key) stops
		// start-up with its own one-line error.
		return "refused: " + firstWords(msg)
	}
	m.Listener = ln
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	defer m.Close()
	defer func() {
		if strings.Contains(logs.String(), "panic") {
			t.Errorf("%s: the log shows a panic:\n%s", what, logs)
		}
	}()
	s := &testServer{t: t, Main: m, URL: "http://" + addr, dir: dir, addr: addr}
	for i := 0; ; i++ {
		select {
		case err := <-done:
			// Run reads the store before it serves (are there users yet?).
			cancel()
			if err == nil || strings.Contains(err.Error(), "\n") {
				t.Errorf("%s: run ended with %v", what, err)
			}
			return "refused at run: " + firstWords(err.Error())
		default:
		}
		resp, err := healthClient.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i > 250 {
			t.Fatalf("%s: the server does not answer: %v", what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: run: %v", what, err)
		}
	}()
	exerciseDamaged(t, s, app)
	// The server is still there, and /healthz says whether it is well.
	resp, err := healthClient.Get(s.URL + "/healthz")
	if err != nil {
		t.Fatalf("%s: the server is gone: %v", what, err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusServiceUnavailable {
		return "ran, then reported damage"
	}
	return "ran"
}

func firstWords(s string) string {
	if f := strings.Fields(s); len(f) > 3 {
		return strings.Join(f[:3], " ")
	}
	return s
}

// healthClient gives up on a listener nobody serves.
var healthClient = &http.Client{Timeout: 2 * time.Second}

// exerciseDamaged signs a user in through the app, exchanges the code,
// refreshes and calls userinfo, accepting any answer: what it checks is that
// the server answers at all.
func exerciseDamaged(t *testing.T, s *testServer, app *testClient) {
	t.Helper()
	rp := s.rp(app.ID, app.Secret, app.RedirectURI)
	b := newBrowser(t)
	verifier, challenge := pkce()
	p := rp.authorize(b, "st", oauthScope("openid profile offline_access"),
		oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256"))
	p = rp.finish(b, p, "user05")
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, rp.RedirectURI) {
		return
	}
	u, err := url.Parse(p.Location)
	if err != nil || u.Query().Get("code") == "" {
		return
	}
	tok, err := rp.exchange(u.Query().Get("code"), verifier)
	if err != nil {
		return
	}
	s.userinfo(tok.AccessToken)
	if tok.RefreshToken != "" {
		_, _ = refreshWith(s.URL, app.ID, app.Secret, tok.RefreshToken)
	}
}

// TestServeOnDamagedDatabase runs `keyport serve` as a child process on
// damaged copies: it exits at start with one line and status 1, or it
// serves and stops cleanly; its output never holds a Go panic or a
// goroutine dump.
func TestServeOnDamagedDatabase(t *testing.T) {
	pristine, app, starts := damagedDatabases(t)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	outcomes := map[string]int{}
	// Two damaged bytes of each kind of page: in its header (in the meta
	// pages, the magic number) and in its data (the high water mark).
	seen := map[string]bool{}
	for _, d := range starts {
		f := strings.Fields(d.what) // kind, "page", id, "byte", offset
		if off := f[4]; off != "0" && off != "16" && off != "56" && off != "4095" {
			continue
		}
		if kind := f[0] + " " + f[4]; seen[kind] {
			continue
		} else {
			seen[kind] = true
		}
		dir := d.prepare(t, pristine)
		var cmd *exec.Cmd
		var addr string
		var out *testlog.Buffer
		var exited chan error
		start := func() {
			// The port is free when chosen; another test may take it
			// before the child binds it, which the child then reports.
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr = ln.Addr().String()
			ln.Close()
			cmd = exec.Command(self, "serve")
			cmd.Env = append(os.Environ(), envRunMain+"=1", "KEYPORT_DATA_DIR="+dir, "KEYPORT_ISSUER=http://"+addr, "KEYPORT_LISTEN="+addr)
			out = &testlog.Buffer{}
			cmd.Stdout, cmd.Stderr = out, out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited = make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
		}
		start()
		outcome := ""
		for attempt := 0; outcome == ""; {
			select {
			case err := <-exited:
				if strings.Contains(out.String(), "address already in use") && attempt < 3 {
					attempt++
					start()
					continue
				}
				var ee *exec.ExitError
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				last := lines[len(lines)-1]
				if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.HasPrefix(last, "keyport: ") {
					t.Errorf("%s: serve ended with %v:\n%s", d.what, err, out)
				}
				outcome = "refused"
				if strings.Contains(last, "is damaged") && strings.Contains(last, "restore it from a backup") {
					outcome = "refused as damaged"
				}
				// The refusal is the one line that says what is wrong.
				if strings.Contains(out.String(), "level=ERROR") {
					t.Errorf("%s: more than the refusal:\n%s", d.what, out)
				}
			default:
				if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					s := &testServer{t: t, URL: "http://" + addr, dir: dir, addr: addr}
					exerciseDamaged(t, s, app)
					_ = cmd.Process.Signal(os.Interrupt)
					if err := <-exited; err != nil {
						t.Errorf("%s: serve did not stop cleanly: %v\n%s", d.what, err, out)
					}
					outcome = "ran"
				} else {
					time.Sleep(20 * time.Millisecond)
				}
			}
		}
		for _, bad := range []string{"panic:", "goroutine ", "fatal error"} {
			if strings.Contains(out.String(), bad) {
				t.Errorf("%s: the output holds %q:\n%s", d.what, bad, out)
			}
		}
		outcomes[outcome]++
	}
	t.Logf("%d kinds of damage: %v", len(seen), outcomes)
	if outcomes["refused as damaged"] == 0 {
		t.Errorf("no start was refused as damaged: %v", outcomes)
	}
}
