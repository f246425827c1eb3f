package metrics_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyport/keyport/metrics"
	"github.com/keyport/keyport/storage"
)

// BenchmarkStoreTiming measures what timing every store operation costs:
// the same read (GetUser, a bbolt View), write (PutSetting, a commit) and
// in-memory lookup (GetClient of a config.toml client, which isolates the
// wrapper's own cost) on the bare store and through the metrics' wrapper,
// in one run.
//
//	go test ./metrics -run '^$' -bench StoreTiming -benchmem -count 5
func BenchmarkStoreTiming(b *testing.B) {
	db := openStore(b)
	ctx := context.Background()
	if err := db.CreateUser(ctx, storage.User{ID: "u1", Username: "alice", Email: "alice@example.com", CreatedAt: time.Now()}); err != nil {
		b.Fatal(err)
	}
	bare := storage.WithStaticClients(db, []storage.Client{{ID: "wiki", Name: "Wiki"}})
	for _, c := range []struct {
		name  string
		store storage.Store
	}{
		{"bare", bare},
		{"timed", metrics.New().Store(bare)},
	} {
		b.Run("GetClient(static)/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.store.GetClient(ctx, "wiki"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("GetUser/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.store.GetUser(ctx, "u1"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("PutSetting/"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := c.store.PutSetting(ctx, "bench", []byte("value")); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
