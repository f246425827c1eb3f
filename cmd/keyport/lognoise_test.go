package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/slapdtest"
	"github.com/keyport/keyport/internal/testlog"
)

// TestLogSaysThingsOnce: a new database logs one line, a directory sync
// one line, and a directory user blocked by the directory one line however
// often they try to sign in.
func TestLogSaysThingsOnce(t *testing.T) {
	ldapSrv := slapdtest.Start(t, directoryFixtures)
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{logs: logs, mutate: func(cfg *config.Config) {
		d := corpDirectory(ldapSrv.URL)
		d.LoginAttributes, d.DisabledFilter = []string{"uid", "mail"}, "(employeeType=disabled)"
		cfg.Directories = []config.Directory{d}
	}})

	// The first sync runs at start.
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(logs.String(), "directory synced"); {
		if time.Now().After(deadline) {
			t.Fatalf("no sync:\n%s", logs)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// erin is disabled in the directory: blocked by the sync, then refused.
	for range 3 {
		b := newBrowser(t)
		p := b.submit(b.get(srv.URL+"/login"), "/login", url.Values{"login": {"erin"}, "password": {testPassword}})
		if p.Status == http.StatusOK || p.Status == http.StatusFound {
			t.Fatalf("erin signed in: %d", p.Status)
		}
	}
	out := logs.String()
	for msg, want := range map[string]int{
		"created database":       1,
		"migrating database":     0,
		"directory synced":       1,
		"directory user blocked": 1,
	} {
		if got := strings.Count(out, "msg=\""+msg+"\""); got != want {
			t.Errorf("%q logged %d times, want %d:\n%s", msg, got, want, out)
		}
	}
}
