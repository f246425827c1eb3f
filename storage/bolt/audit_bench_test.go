package bolt

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// BenchmarkListAuditByTarget measures the first page (100 events) of one
// user's audit events with 100,000 events in the log, 1 in 1,000 of them
// about that user, and the same for a user with 10% of the log:
//
//	go test ./storage/bolt -run '^$' -bench ListAuditByTarget -benchtime 3s -cpu 1
func BenchmarkListAuditByTarget(b *testing.B) {
	d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
	const total = 100_000
	start := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	// Filled in a few large transactions: AppendAudit's sync per commit
	// would make the setup, not the query, take the time.
	for chunk := 0; chunk < total; chunk += 10_000 {
		err := d.db.Update(func(tx *bbolt.Tx) error {
			for i := chunk; i < chunk+10_000; i++ {
				target := fmt.Sprintf("user%d", i%1000)
				if i%10 == 0 {
					target = "busy"
				}
				e := storage.AuditEvent{
					ID: fmt.Sprintf("e%07d", i), Time: start.Add(time.Duration(i) * time.Second), Type: "signin.failed",
					ActorKind: "user", ActorID: target, TargetUserID: target, IP: "192.0.2.1", UserAgent: "Mozilla/5.0", Reason: "wrong password",
				}
				raw, err := json.Marshal(e)
				if err != nil {
					return err
				}
				if err := appendAuditTx(tx, e, raw); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, target := range []string{"user7", "busy"} {
		b.Run(target, func(b *testing.B) {
			ctx := context.Background()
			for b.Loop() {
				page, _, err := d.ListAudit(ctx, storage.AuditQuery{TargetUserID: target})
				if err != nil || len(page) == 0 {
					b.Fatal(len(page), err)
				}
			}
		})
	}
}
