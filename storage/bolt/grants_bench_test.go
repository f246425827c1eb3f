package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/internal/cputime"
	"github.com/keyport/keyport/storage"
)

// BenchmarkRefreshWithGrant is the refresh path's storage write when the
// user has consented to the app, so that storing the access token also
// records the grant's last use (touchGrantTx): each of 1 or 8 callers
// rotates its own family of one user at one app. Compare with a tree
// without the last use (the grant is then stored but never written):
//
//	go test ./storage/bolt -run '^$' -bench RefreshWithGrant -benchtime 3s -cpu 1
//
// The nosync case leaves out the fsync of each commit, which dominates the
// others and varies with the disk, to show the CPU the write costs.
func BenchmarkRefreshWithGrant(b *testing.B) {
	for _, c := range []struct {
		name     string
		parallel int
		noSync   bool
	}{{"1-at-once", 1, false}, {"8-at-once", 8, false}, {"nosync-1-at-once", 1, true}} {
		parallel := c.parallel
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
			d.db.db.NoSync = c.noSync
			now := time.Now()
			if err := d.PutGrant(ctx, storage.Grant{UserID: "u1", ClientID: "app", Scopes: []string{"openid", "profile", "email", "offline_access"}, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
				b.Fatal(err)
			}
			var families, links atomic.Int64
			b.SetParallelism(parallel)
			b.ReportAllocs()
			b.ResetTimer()
			defer reportCPU(b, cputime.Process())
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

// BenchmarkTouchGrant is what recording the last use adds to a token
// write, alone: the grant read, decoded, encoded and put, inside a write
// transaction that is open already (the commit is the token write's own).
//
//	go test ./storage/bolt -run '^$' -bench TouchGrant -benchtime 2s -cpu 1
func BenchmarkTouchGrant(b *testing.B) {
	ctx := context.Background()
	d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
	now := time.Now()
	if err := d.PutGrant(ctx, storage.Grant{UserID: "u1", ClientID: "app", Scopes: []string{"openid", "profile", "email", "offline_access"}, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		b.Fatal(err)
	}
	err := d.db.Update(func(tx *bbolt.Tx) error {
		for i := 0; b.Loop(); i++ {
			a := storage.AccessToken{ID: "a", ClientID: "app", UserID: "u1", CreatedAt: now.Add(time.Duration(i) * time.Millisecond)}
			if err := touchGrantTx(tx, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConsentWrite is the consent step's write to the main file: the
// grant and its consent.granted audit event, in one commit (PutGrant with
// the event, as account.Flow.Consented writes them now) or in two (the
// grant, then AppendAudit, as it did before the event joined the grant's
// transaction). One run shows both:
//
//	go test ./storage/bolt -run '^$' -bench ConsentWrite -benchtime 400x -cpu 1
func BenchmarkConsentWrite(b *testing.B) {
	for _, c := range []struct {
		name      string
		oneCommit bool
	}{{"grant-then-audit", false}, {"grant-with-audit", true}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
			for i := 0; b.Loop(); i++ {
				now := time.Now()
				g := storage.Grant{UserID: fmt.Sprintf("u%d", i), ClientID: "app", Scopes: []string{"openid", "profile", "email"}, CreatedAt: now, UpdatedAt: now}
				e := storage.AuditEvent{ID: fmt.Sprintf("%020d", i), Type: "consent.granted", Time: now, ActorKind: "user", ActorID: g.UserID, TargetUserID: g.UserID, ClientID: "app",
					Changes: []storage.AuditChange{{Field: "scopes", After: "openid profile email"}}}
				var err error
				if c.oneCommit {
					err = d.PutGrant(ctx, g, &e)
				} else if err = d.PutGrant(ctx, g, nil); err == nil {
					err = d.AppendAudit(ctx, e)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
