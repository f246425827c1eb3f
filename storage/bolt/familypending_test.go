package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// A pending member that no token of its family claims can only be an
// access token swept since: checkIndexes flags another family's token
// (which revoking this family would delete) and a link (links go with
// their family only).
func TestCheckIndexesFlagsStrayPendingMembers(t *testing.T) {
	ctx := t.Context()
	now := time.Now().UTC()
	d, err := Open(filepath.Join(t.TempDir(), "keyport.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	mk := func() (string, storage.AccessToken) {
		fid := account.NewOrderedID()
		r := memberTestLink(account.NewOrderedID()[:10]+account.HashSecret(account.NewSecret()), account.NewOrderedID(), fid, "u1", now)
		a := memberTestAccess(account.NewOrderedID(), fid, "u1", now)
		if err := d.CreateTokens(ctx, a, &r); err != nil {
			t.Fatal(err)
		}
		return fid, a
	}
	fa, _ := mk()
	_, other := mk()
	err = d.db.Update(func(tx *bbolt.Tx) error {
		var f family
		if _, err := getJSON(tx.Bucket(bFamilies), fa, &f); err != nil {
			return err
		}
		f.Pending = append(f.Pending, memberAccess+other.ID, memberRefresh+"no-such-link")
		return putJSON(tx.Bucket(bFamilies), fa, f)
	})
	if err != nil {
		t.Fatal(err)
	}
	var errs []error
	_ = d.db.View(func(tx *bbolt.Tx) error {
		return d.flow.View(func(ftx *bbolt.Tx) error { errs = checkIndexes(tx, ftx); return nil })
	})
	if len(errs) != 2 || !strings.Contains(fmt.Sprint(errs), "stray pending member") {
		t.Errorf("checkIndexes = %v, want the two stray pending members", errs)
	}
}

// Every public revocation path takes a family whose members are partly in
// family_members, partly pending and one straight in the index (token
// exchange), with access tokens swept among them.
func TestRevocationTakesIndexedAndPendingMembers(t *testing.T) {
	for _, path := range []string{"reuse", "retry-reuse", "user", "user-all", "client-update", "client-delete", "family", "sweep"} {
		t.Run(path, func(t *testing.T) {
			ctx := t.Context()
			now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
			clock := testclock.At(now)
			d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Now: clock.Now})
			if err := d.CreateClient(ctx, storage.Client{ID: "app", Name: "App", RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
				t.Fatal(err)
			}
			fid := "f1"
			link := func(n int) storage.RefreshToken {
				return storage.RefreshToken{Hash: fmt.Sprintf("h%02d", n), ID: fmt.Sprintf("r%02d", n), FamilyID: fid, ClientID: "app", UserID: "u1",
					CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}
			}
			access := func(n int) storage.AccessToken {
				return storage.AccessToken{ID: fmt.Sprintf("a%02d", n), FamilyID: fid, ClientID: "app", UserID: "u1", Subject: "u1", CreatedAt: now, ExpiresAt: now.Add(2 * time.Hour)}
			}
			first := link(0)
			if err := d.CreateTokens(ctx, access(0), &first); err != nil {
				t.Fatal(err)
			}
			const rotations = 9 // 20 members: 16 indexed, 4 pending
			for n := 1; n <= rotations; n++ {
				if err := d.RotateRefreshToken(ctx, link(n-1).Hash, link(n), access(n)); err != nil {
					t.Fatal(err)
				}
				if n == 2 || n == 9 { // one swept while pending and indexed later, one still pending
					if err := d.DeleteAccessToken(ctx, access(n).ID); err != nil {
						t.Fatal(err)
					}
				}
			}
			// One more by token exchange (straight to the index).
			x := access(99)
			if err := d.CreateTokens(ctx, x, nil); err != nil {
				t.Fatal(err)
			}
			var err error
			switch path {
			case "reuse":
				_, err = d.GetRefreshToken(ctx, link(3).Hash)
				if errors.Is(err, storage.ErrTokenReused) {
					err = nil
				}
			case "retry-reuse":
				_, err = d.RetryRefreshToken(ctx, link(3).Hash, storage.AccessToken{ID: "ax", ClientID: "app", UserID: "u1", ExpiresAt: now.Add(time.Hour)})
				if errors.Is(err, storage.ErrTokenReused) {
					err = nil
				}
			case "user":
				_, err = d.RevokeUserClient(ctx, "u1", "app")
			case "user-all":
				_, err = d.RevokeUserClient(ctx, "u1", "")
			case "client-update":
				_, _, err = d.UpdateClientRevokingTokens(ctx, "app", func(c storage.Client) (storage.Client, error) { return c, nil })
			case "client-delete":
				err = d.DeleteClient(ctx, "app")
			case "family":
				err = d.RevokeFamily(ctx, fid)
			case "sweep":
				clock.Add(90 * time.Minute) // the family's end, not its access tokens'
				_, err = d.Sweep(ctx)
			}
			if err != nil {
				t.Fatal(err)
			}
			_ = d.db.View(func(tx *bbolt.Tx) error {
				for n := 0; n <= rotations; n++ {
					if tokenStored(tx, memberRefresh, link(n).ID) || tokenStored(tx, memberAccess, access(n).ID) {
						t.Errorf("member %d outlived the revocation", n)
					}
				}
				if tokenStored(tx, memberAccess, x.ID) {
					t.Errorf("exchanged token outlived the revocation")
				}
				if k, _ := tx.Bucket(bFamilyMembers).Cursor().First(); k != nil {
					t.Errorf("family_members not empty: %q", k)
				}
				return nil
			})
		})
	}
}
