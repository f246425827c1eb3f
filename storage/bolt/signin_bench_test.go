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
		// With the sign-in's audit event: in the same commit (how account
		// writes it), and appended after it (a second commit, for
		// comparison).
		{"RecordSignIn+audit", func(ctx context.Context, d *DB, w storage.SignInWrite) error {
			e := signInAuditEvent(w)
			w.Audit = &e
			_, err := d.RecordSignIn(ctx, w)
			return err
		}},
		{"RecordSignIn,AppendAudit", func(ctx context.Context, d *DB, w storage.SignInWrite) error {
			if _, err := d.RecordSignIn(ctx, w); err != nil {
				return err
			}
			return d.AppendAudit(ctx, signInAuditEvent(w))
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

// signInAuditEvent is the audit event of the sign-in w, as account makes it.
func signInAuditEvent(w storage.SignInWrite) storage.AuditEvent {
	return storage.AuditEvent{ID: "ev-" + w.Attempt.ID, Time: w.Attempt.Time, Type: "signin.succeeded", ActorKind: "user", ActorID: w.UserID,
		TargetUserID: w.UserID, ClientID: "bench", IP: "192.0.2.1", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) bench", Method: "pwd", Login: w.Attempt.Login}
}
