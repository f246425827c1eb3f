package postgres

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

func benchRequest(i int64, now time.Time, origin string) storage.AuthRequest {
	return storage.AuthRequest{ID: fmt.Sprintf("ar%d", i), ClientID: "app", RedirectURI: "https://app.example.com/cb",
		State: "state-0123456789abcdef", Nonce: "nonce-0123456789abcdef", Scopes: []string{"openid", "offline_access"},
		ResponseType: "code", UserID: "u1", AMR: []string{"pwd"}, AuthTime: now, Completed: true,
		CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute), Origin: origin}
}

// BenchmarkCodeWrites measures the storage writes of the code part of one
// sign-in, as storage/bolt's benchmark of the same name does: the request
// created (under the default pending limits), its code issued, the
// exchange (redeemed, tokens stored) and the request deleted. Without
// pending limits (as storage/bolt's) and with the default ones, alone and
// 8 at once:
//
//	KEYPORT_REQUIRE_INTEGRATION=1 go test ./storage/postgres -run '^$' -bench CodeWrites -benchtime 3s -cpu 1
func BenchmarkCodeWrites(b *testing.B) {
	for _, parallel := range []int{1, 8} {
		for name, limits := range map[string]storage.PendingLimits{"no-limits": {}, "limits": {PerOrigin: 100, Total: 5000}} {
			b.Run(fmt.Sprintf("%s/%d-at-once", name, parallel), func(b *testing.B) {
				benchCodeWrites(b, parallel, limits)
			})
		}
	}
}

func benchCodeWrites(b *testing.B, parallel int, limits storage.PendingLimits) {
	d := openBench(b)
	ctx := context.Background()
	var n atomic.Int64
	b.SetParallelism(parallel)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			i := n.Add(1)
			now := time.Now()
			a := benchRequest(i, now, fmt.Sprintf("192.0.2.%d", i%200))
			if _, err := d.CreateAuthRequest(ctx, a, limits); err != nil {
				b.Error(err)
				return
			}
			code := fmt.Sprintf("code%d", i)
			if err := d.IssueCode(ctx, a.ID, code, now.Add(time.Minute)); err != nil {
				b.Error(err)
				return
			}
			refresh := storage.RefreshToken{Hash: fmt.Sprintf("h%d", i), ID: fmt.Sprintf("r%d", i), FamilyID: fmt.Sprintf("f%d", i),
				ClientID: "app", UserID: "u1", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), IdleExpiresAt: now.Add(time.Hour)}
			access := storage.AccessToken{ID: fmt.Sprintf("a%d", i), ClientID: "app", UserID: "u1", Subject: "u1",
				FamilyID: refresh.FamilyID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if _, err := d.RedeemCode(ctx, code, "app", storage.IssuedTokens{AccessTokenID: access.ID, FamilyID: refresh.FamilyID}); err != nil {
				b.Error(err)
				return
			}
			if err := d.CreateCodeTokens(ctx, code, access, &refresh, ""); err != nil {
				b.Error(err)
				return
			}
			if err := d.DeleteAuthRequest(ctx, a.ID); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkPendingFlood measures CreateAuthRequest at the default limits
// when they are reached: 5000 requests pending from 200 addresses, and
// every new one evicts one (the total's largest group).
//
//	KEYPORT_REQUIRE_INTEGRATION=1 go test ./storage/postgres -run '^$' -bench PendingFlood -benchtime 3s -cpu 1
func BenchmarkPendingFlood(b *testing.B) {
	limits := storage.PendingLimits{PerOrigin: 100, Total: 5000}
	for _, parallel := range []int{1, 8} {
		b.Run(fmt.Sprintf("%d-at-once", parallel), func(b *testing.B) {
			d := openBench(b)
			ctx := context.Background()
			now := time.Now()
			if _, err := d.pool.Exec(ctx, `INSERT INTO auth_requests (id, client_id, origin, origin_group, class, created_ns, expires_ns, record)
				SELECT 'seed' || i, 'app', '198.51.100.' || (i % 200), '198.51.100.' || (i % 200), 0, $1::bigint + i, $2::bigint, '{}'
				FROM generate_series(1, $3) i`, now.UnixNano(), now.Add(time.Hour).UnixNano(), limits.Total); err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(parallel)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					evicted, err := d.CreateAuthRequest(ctx, benchRequest(i, time.Now(), fmt.Sprintf("203.0.113.%d", i%200)), limits)
					if err != nil || evicted != 1 {
						b.Errorf("create %d: evicted %d: %v", i, evicted, err)
						return
					}
				}
			})
		})
	}
}

func openBench(b *testing.B) *DB {
	b.Helper()
	d, err := Open(b.Context(), schema.Database(b), Options{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Close() })
	return d
}
