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

// BenchmarkRefreshWithGrant is the refresh path's storage write when the
// user has consented to the app, so that storing the access token also
// records the grant's last use (touchGrantTx): each of 1 or 8 callers
// rotates its own family of one user at one app. Compare with a tree
// without the last use (the grant is then stored but never written):
//
//	go test ./storage/bolt -run '^$' -bench RefreshWithGrant -benchtime 3s -cpu 1
func BenchmarkRefreshWithGrant(b *testing.B) {
	for _, parallel := range []int{1, 8} {
		b.Run(fmt.Sprintf("%d-at-once", parallel), func(b *testing.B) {
			ctx := context.Background()
			d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
			now := time.Now()
			if err := d.PutGrant(ctx, storage.Grant{UserID: "u1", ClientID: "app", Scopes: []string{"openid", "profile", "email", "offline_access"}, CreatedAt: now, UpdatedAt: now}); err != nil {
				b.Fatal(err)
			}
			var families, links atomic.Int64
			b.SetParallelism(parallel)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				fid := fmt.Sprintf("f%d", families.Add(1))
				link := func() storage.RefreshToken {
					n := links.Add(1)
					return storage.RefreshToken{Hash: fmt.Sprintf("h%d", n), ID: fmt.Sprintf("r%d", n), FamilyID: fid, ClientID: "app", UserID: "u1",
						Scopes: []string{"openid", "offline_access"}, AuthTime: now, CreatedAt: time.Now(),
						ExpiresAt: now.Add(24 * time.Hour), IdleExpiresAt: now.Add(time.Hour)}
				}
				access := func() storage.AccessToken {
					n := links.Add(1)
					at := time.Now()
					return storage.AccessToken{ID: fmt.Sprintf("a%d", n), ClientID: "app", UserID: "u1", Subject: "u1", Scopes: []string{"openid"}, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
				}
				cur := link()
				if err := d.CreateTokens(ctx, access(), &cur); err != nil {
					b.Error(err)
					return
				}
				for pb.Next() {
					next := link()
					if err := d.RotateRefreshToken(ctx, cur.Hash, next, access()); err != nil {
						b.Error(err)
						return
					}
					cur = next
				}
			})
		})
	}
}
