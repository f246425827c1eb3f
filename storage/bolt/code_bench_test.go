package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// BenchmarkCodeWrites measures the storage writes of the code part of one
// sign-in on a real file, as the provider makes them: a code issued for a
// completed request, then the exchange (the code redeemed, the tokens
// stored and tied to the code), then the request deleted. Alone and 8 at
// once; run it on one CPU, as the server runs in scripts/bench.sh:
//
//	go test ./storage/bolt -run '^$' -bench CodeWrites -benchtime 3s -cpu 1
func BenchmarkCodeWrites(b *testing.B) {
	for _, parallel := range []int{1, 8} {
		b.Run(fmt.Sprintf("%d-at-once", parallel), func(b *testing.B) {
			d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
			ctx := context.Background()
			var n atomic.Int64
			b.SetParallelism(parallel)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					now := time.Now()
					a := storage.AuthRequest{ID: fmt.Sprintf("ar%d", i), ClientID: "app", RedirectURI: "https://app.example.com/cb",
						State: "state-0123456789abcdef", Nonce: "nonce-0123456789abcdef", Scopes: []string{"openid", "offline_access"},
						ResponseType: "code", UserID: "u1", AMR: []string{"pwd"}, AuthTime: now, Completed: true,
						CreatedAt: now, ExpiresAt: now.Add(30 * time.Minute)}
					if _, err := d.CreateAuthRequest(ctx, a, storage.PendingLimits{}); err != nil {
						b.Error(err)
						return
					}
					if err := codeWrites(ctx, d, a, i, now); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// codeWrites is the provider's storage calls from SaveAuthCode to the end
// of the exchange, for request a.
func codeWrites(ctx context.Context, d *DB, a storage.AuthRequest, i int64, now time.Time) error {
	code := fmt.Sprintf("code%d", i)
	if err := d.IssueCode(ctx, a.ID, code, now.Add(time.Minute)); err != nil {
		return err
	}
	access, refresh := codeTokens(i, now)
	if _, err := d.RedeemCode(ctx, code, a.ClientID, storage.IssuedTokens{AccessTokenID: access.ID, FamilyID: refresh.FamilyID}); err != nil {
		return err
	}
	if err := d.CreateCodeTokens(ctx, code, access, &refresh, ""); err != nil {
		return err
	}
	return d.DeleteAuthRequest(ctx, a.ID)
}

// codeTokens are the tokens exchange i issues.
func codeTokens(i int64, now time.Time) (storage.AccessToken, storage.RefreshToken) {
	refresh := storage.RefreshToken{Hash: fmt.Sprintf("h%d", i), ID: fmt.Sprintf("r%d", i), FamilyID: fmt.Sprintf("f%d", i),
		ClientID: "app", UserID: "u1", Scopes: []string{"openid", "offline_access"}, AuthTime: now, CreatedAt: now,
		ExpiresAt: now.Add(24 * time.Hour), IdleExpiresAt: now.Add(time.Hour)}
	access := storage.AccessToken{ID: fmt.Sprintf("a%d", i), ClientID: "app", UserID: "u1", Subject: "u1",
		Scopes: []string{"openid", "offline_access"}, FamilyID: refresh.FamilyID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	return access, refresh
}
