package outbox

import (
	"context"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// Throughput of the outbox on a real bbolt file (every commit synced):
//
//	go test ./outbox -run '^$' -bench . -cpu 1
//
// msgs/s is messages committed (Enqueue) or delivered and recorded
// (Deliver) per second.

func benchMessage(i int, created time.Time) storage.OutboxMessage {
	return storage.OutboxMessage{ID: fmt.Sprintf("m%012d", i), Kind: "webhook", Payload: []byte(`{"type":"user.updated","subject":"u1","data":{"fields":["name"]}}`), CreatedAt: created}
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

func BenchmarkEnqueue(b *testing.B) {
	b.Run("one-per-commit", func(b *testing.B) {
		s := openStore(b, "", nil)
		now := time.Now()
		for i := 0; b.Loop(); i++ {
			if err := s.EnqueueOutbox(context.Background(), benchMessage(i, now)); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
	b.Run("16-producers", func(b *testing.B) {
		// Producers commit concurrently (sign-ins, admin actions): the
		// store's group commit shares one fsync among them.
		s := openStore(b, "", nil)
		now := time.Now()
		var next atomic.Int64
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.EnqueueOutbox(context.Background(), benchMessage(int(next.Add(1)), now)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		reportRate(b)
	})
	b.Run("batch-of-100", func(b *testing.B) {
		s := openStore(b, "", nil)
		now := time.Now()
		b.ResetTimer()
		for i := 0; i < b.N; i += 100 {
			var msgs []storage.OutboxMessage
			for j := i; j < min(i+100, b.N); j++ {
				msgs = append(msgs, benchMessage(j, now))
			}
			if err := s.EnqueueOutbox(context.Background(), msgs...); err != nil {
				b.Fatal(err)
			}
		}
		reportRate(b)
	})
}

// countCompletes reports each recorded delivery.
type countCompletes struct {
	storage.Outbox
	done chan struct{}
}

func (c *countCompletes) CompleteOutbox(ctx context.Context, id string, at time.Time) error {
	err := c.Outbox.CompleteOutbox(ctx, id, at)
	c.done <- struct{}{}
	return err
}

// benchDeliver enqueues b.N messages (untimed), then times a worker
// claiming, delivering through d and completing every one.
func benchDeliver(b *testing.B, d Deliverer) {
	s := openStore(b, "", nil)
	now := time.Now()
	for i := 0; i < b.N; i += 500 {
		var msgs []storage.OutboxMessage
		for j := i; j < min(i+500, b.N); j++ {
			msgs = append(msgs, benchMessage(j, now))
		}
		if err := s.EnqueueOutbox(context.Background(), msgs...); err != nil {
			b.Fatal(err)
		}
	}
	counted := &countCompletes{Outbox: s, done: make(chan struct{}, 1024)}
	w := New(Options{Store: counted, PollInterval: time.Hour})
	w.Handle("webhook", d)
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	b.ResetTimer()
	go func() {
		defer close(stopped)
		w.Run(ctx)
	}()
	for range b.N {
		<-counted.done
	}
	b.StopTimer()
	cancel()
	<-stopped
	reportRate(b)
}

func BenchmarkDeliver(b *testing.B) {
	b.Run("in-process", func(b *testing.B) {
		benchDeliver(b, DelivererFunc(func(ctx context.Context, m storage.OutboxMessage) error { return nil }))
	})
	b.Run("loopback-http", func(b *testing.B) {
		_, srv := newReceiver(b)
		benchDeliver(b, &httpDeliverer{url: srv.URL, client: &http.Client{}})
	})
}
