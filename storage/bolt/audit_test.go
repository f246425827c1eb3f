package bolt

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// TestListAuditScanBudget: a filter that matches rarely ends a page early
// with a cursor instead of reading on, and following the cursors still
// finds every match once.
func TestListAuditScanBudget(t *testing.T) {
	defer func(old int) { auditScanBudget = old }(auditScanBudget)
	auditScanBudget = 10
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{})
	ctx := t.Context()
	base := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	var want []string
	for i := range 95 {
		e := storage.AuditEvent{ID: fmt.Sprintf("e%03d", i), Time: base.Add(time.Duration(i) * time.Second), Type: "signin.succeeded", ActorKind: "system"}
		if i%30 == 0 {
			e.Type = "user.blocked"
			want = append([]string{e.ID}, want...)
		}
		if err := d.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	q := storage.AuditQuery{Types: []string{"user.blocked"}}
	var got []string
	calls := 0
	for {
		page, next, err := d.ListAudit(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		calls++
		for _, e := range page {
			got = append(got, e.ID)
		}
		if next == "" {
			break
		}
		q.Cursor = next
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if calls != 10 { // 95 entries read 10 at a time
		t.Fatalf("%d calls, want 10: each reads at most the budget", calls)
	}
}
