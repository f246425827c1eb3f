package provider

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/loglimit"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// A flood of /authorize requests at the pending sign-in limit logs one
// line of each kind, however many run at once, and then how many it held
// back.
func TestPendingFloodLogsOnce(t *testing.T) {
	const flood = 20
	for _, tc := range []struct {
		name, line string
		codeIssued bool // the pending request cannot be evicted: refusals
	}{
		{"refused", "refused a new one", true},
		{"evicted", "evicted some of the busiest address", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			db, err := bolt.Open(filepath.Join(t.TempDir(), "keyport.db"), bolt.Options{Now: func() time.Time { return now }})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = db.Close() })
			if err := db.CreateClient(ctx, storage.Client{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}, CreatedAt: now}); err != nil {
				t.Fatal(err)
			}
			var out testlog.Buffer
			log := slog.New(slog.NewTextHandler(&out, nil))
			s := &opStorage{store: db, now: func() time.Time { return now }, log: log, floodLog: floodLogger(log),
				life: Lifetimes{AuthRequest: time.Hour}, pending: storage.PendingLimits{Total: 1}}
			first := storage.AuthRequest{ID: "first", ClientID: "app", CodeIssued: tc.codeIssued, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if _, err := db.CreateAuthRequest(ctx, first, s.pending); err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for range flood {
				wg.Go(func() {
					_, _ = s.CreateAuthRequest(ctx, &oidc.AuthRequest{ClientID: "app", RedirectURI: "https://app.example.com/cb",
						ResponseType: oidc.ResponseTypeCode, Scopes: oidc.SpaceDelimitedArray{"openid"}}, "")
				})
			}
			wg.Wait()
			s.floodLog.Handler().(*loglimit.Handler).Flush()
			logs := out.String()
			if n := strings.Count(logs, `msg="too many pending sign-ins`); n != 1 || !strings.Contains(logs, tc.line) {
				t.Errorf("%d lines about pending sign-ins, want 1 saying %q:\n%s", n, tc.line, logs)
			}
			if !strings.Contains(logs, fmt.Sprintf(`msg="suppressed %d similar messages"`, flood-1)) {
				t.Errorf("no count of the lines held back:\n%s", logs)
			}
		})
	}
}
