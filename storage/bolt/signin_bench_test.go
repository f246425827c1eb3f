package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// BenchmarkSignInWrite measures the writes of one successful browser
// sign-in on a real file: the three writes as separate calls run at once
// (how account made them before RecordSignIn, relying on the group commit
// to share their sync) against RecordSignIn, for a lone sign-in and for 8
// at once. Run it on one CPU, as the server runs in scripts/bench.sh (with
// more, RunParallel starts that many times the goroutines):
//
//	go test ./storage/bolt -run '^$' -bench SignInWrite -benchtime 3s -cpu 1
func BenchmarkSignInWrite(b *testing.B) {
	ways := []struct {
		name  string
		write func(ctx context.Context, d *DB, w storage.SignInWrite) error
	}{
		{"separate", func(ctx context.Context, d *DB, w storage.SignInWrite) error {
			var wg sync.WaitGroup
			var updErr error
			wg.Go(func() { _, updErr = d.UpdateUser(ctx, w.UserID, w.Update) })
			wg.Go(func() { _ = d.AddLoginAttempt(ctx, w.Attempt) })
			sesErr := d.CreateSession(ctx, *w.Session)
			wg.Wait()
			if updErr != nil {
				return updErr
			}
			return sesErr
		}},
		{"RecordSignIn", func(ctx context.Context, d *DB, w storage.SignInWrite) error {
			_, err := d.RecordSignIn(ctx, w)
			return err
		}},
	}
	for _, parallel := range []int{1, 8} {
		for _, way := range ways {
			b.Run(fmt.Sprintf("%s/%d-at-once", way.name, parallel), func(b *testing.B) {
				d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
				ctx := context.Background()
				for i := range parallel {
					u := storage.User{ID: fmt.Sprintf("u%d", i), Username: fmt.Sprintf("user%d", i), CreatedAt: time.Now()}
					if err := d.CreateUser(ctx, u); err != nil {
						b.Fatal(err)
					}
				}
				var n atomic.Int64
				signIn := func(uid string) storage.SignInWrite {
					i := n.Add(1)
					now := time.Now()
					sess := storage.Session{ID: fmt.Sprintf("s%d", i), UserID: uid, AMR: []string{"pwd"}, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
					return storage.SignInWrite{
						UserID:  uid,
						Update:  func(u storage.User) (storage.User, error) { u.LastLogin = now; u.LoginsCount++; return u, nil },
						Attempt: storage.LoginAttempt{ID: fmt.Sprintf("a%d", i), UserID: uid, Login: uid, Time: now, Method: "pwd", Success: true},
						Session: &sess,
					}
				}
				b.SetParallelism(parallel) // goroutines per GOMAXPROCS
				var worker atomic.Int64
				b.RunParallel(func(pb *testing.PB) {
					uid := fmt.Sprintf("u%d", (worker.Add(1)-1)%int64(parallel))
					for pb.Next() {
						if err := way.write(ctx, d, signIn(uid)); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}
