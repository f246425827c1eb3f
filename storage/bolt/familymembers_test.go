package bolt

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// A file from schema 11 keeps its families' index entries keyed by kind
// first; migration 11 rebuilds them in issue order, and revoking a family
// afterwards still finds every token it issued before the upgrade.
func TestMigrateReordersFamilyMembers(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyport.db")
	now := time.Now().UTC().Truncate(time.Second)
	d := openTest(t, path, Options{})
	link := func(n int) storage.RefreshToken {
		return storage.RefreshToken{Hash: fmt.Sprintf("h%d", n), ID: fmt.Sprintf("r%d", n), FamilyID: "f1", ClientID: "app", UserID: "u1",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}
	}
	access := func(n int) storage.AccessToken {
		return storage.AccessToken{ID: fmt.Sprintf("a%d", n), ClientID: "app", UserID: "u1", Subject: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	first := link(1)
	if err := d.CreateTokens(ctx, access(1), &first); err != nil {
		t.Fatal(err)
	}
	for n := 2; n <= 3; n++ {
		if err := d.RotateRefreshToken(ctx, fmt.Sprintf("h%d", n-1), link(n), access(n)); err != nil {
			t.Fatal(err)
		}
	}
	// Back to schema 11: the entries as that schema wrote them, plus one
	// whose link is gone.
	err := d.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bFamilyMembers); err != nil {
			return err
		}
		m, err := tx.CreateBucket(bFamilyMembers)
		if err != nil {
			return err
		}
		for n := 1; n <= 3; n++ {
			if err := m.Put([]byte(join("f1", memberRefresh, fmt.Sprintf("h%d", n))), emptyValue); err != nil {
				return err
			}
			if err := m.Put([]byte(join("f1", memberAccess, fmt.Sprintf("a%d", n))), emptyValue); err != nil {
				return err
			}
		}
		if err := m.Put([]byte(join("f1", memberRefresh, "gone")), emptyValue); err != nil {
			return err
		}
		return tx.Bucket(bMeta).Put(kSchemaVersion, []byte("11"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}

	d = openTest(t, path, Options{}) // its cleanup checks the index against the records
	var keys []string
	err = d.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bFamilyMembers).ForEach(func(k, _ []byte) error { keys = append(keys, string(k)); return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{join("f1", "a1", "a"), join("f1", "a2", "a"), join("f1", "a3", "a"), join("f1", "r1", "r"), join("f1", "r2", "r"), join("f1", "r3", "r")}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("family members after the migration:\n got %q\nwant %q", keys, want)
	}
	if _, err := d.GetRefreshToken(ctx, "h1"); !errors.Is(err, storage.ErrTokenReused) {
		t.Fatalf("reuse of a link rotated before the upgrade: %v, want ErrTokenReused", err)
	}
	for n := 1; n <= 3; n++ {
		if _, err := d.GetAccessToken(ctx, fmt.Sprintf("a%d", n)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("access token a%d after its family was revoked: %v", n, err)
		}
		if _, err := d.GetRefreshTokenByID(ctx, fmt.Sprintf("r%d", n)); !errors.Is(err, storage.ErrNotFound) {
			t.Errorf("link r%d after its family was revoked: %v", n, err)
		}
	}
}

func memberTestLink(hash, id, fid, uid string, now time.Time) storage.RefreshToken {
	return storage.RefreshToken{Hash: hash, ID: id, FamilyID: fid, ClientID: "app", UserID: uid,
		CreatedAt: now, ExpiresAt: now.Add(24 * time.Hour), IdleExpiresAt: now.Add(24 * time.Hour)}
}

func memberTestAccess(id, fid, uid string, now time.Time) storage.AccessToken {
	return storage.AccessToken{ID: id, FamilyID: fid, ClientID: "app", UserID: uid, Subject: uid, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
}

// cutMemberKey takes the last NUL: an ID holding NUL still parses, and a
// family whose link ID holds NUL is revoked whole.
func TestFamilyMemberKeyWithNUL(t *testing.T) {
	id, kind, ok := cutMemberKey([]byte("x\x00r\x00a"))
	if !ok || id != "x\x00r" || kind != memberAccess {
		t.Fatalf("cutMemberKey = %q %q %v", id, kind, ok)
	}
	if _, _, ok := cutMemberKey([]byte("\x00r")); ok {
		t.Fatal("empty ID parsed")
	}
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{})
	l1 := memberTestLink("h1", "r\x00a", "f1", "u1", now)
	if err := d.CreateTokens(ctx, memberTestAccess("a1", "", "u1", now), &l1); err != nil {
		t.Fatal(err)
	}
	var c revoked
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		c, err = revokeFamilyTx(tx, "f1")
		return err
	})
	if err != nil || c.refresh != 1 || c.live != 1 || c.access != 1 {
		t.Fatalf("revokeFamilyTx = %+v, %v; want one live link and one access token", c, err)
	}
}

// A rotation's two members (the new link, its access token) are pending on
// the family's record until pendingMembersMax are, and then go to
// family_members together, in issue order at the end of the family's
// range; a pending one swept meanwhile gets no entry (openTest's index
// check fails on a stray one). Revocation finds members in both places.
func TestRotationMembersPendingThenIndexed(t *testing.T) {
	ctx := t.Context()
	now := time.Now().UTC()
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{})
	fid := account.NewOrderedID()
	cur := memberTestLink(account.NewOrderedID()[:10]+account.HashSecret(account.NewSecret()), account.NewOrderedID(), fid, "u1", now)
	first := memberTestAccess(account.NewOrderedID(), fid, "u1", now)
	if err := d.CreateTokens(ctx, first, &cur); err != nil {
		t.Fatal(err)
	}
	state := func() (indexed []string, f family) {
		_ = d.db.View(func(tx *bbolt.Tx) error {
			for _, k := range prefixKeys(tx.Bucket(bFamilyMembers), fid+"\x00") {
				id, kind, _ := cutMemberKey(k[len(fid)+1:])
				indexed = append(indexed, kind+id)
			}
			_, err := getJSON(tx.Bucket(bFamilies), fid, &f)
			return err
		})
		return indexed, f
	}
	var issued []string // kind+ID of each member, in issue order
	issued = append(issued, memberRefresh+cur.ID, memberAccess+first.ID)
	swept := ""
	for i := range 20 {
		next := memberTestLink(account.NewOrderedID()[:10]+account.HashSecret(account.NewSecret()), account.NewOrderedID(), "", "", now)
		a := memberTestAccess(account.NewOrderedID(), "", "u1", now)
		if err := d.RotateRefreshToken(ctx, cur.Hash, next, a); err != nil {
			t.Fatal(err)
		}
		cur = next
		issued = append(issued, memberRefresh+next.ID, memberAccess+a.ID)
		if i == 3 {
			// An access token swept while it is pending.
			if err := d.DeleteAccessToken(ctx, a.ID); err != nil {
				t.Fatal(err)
			}
			swept = memberAccess + a.ID
		}
		indexed, f := state()
		flushed := len(issued) / pendingMembersMax * pendingMembersMax
		wantIndexed := slices.DeleteFunc(slices.Clone(issued[:flushed]), func(m string) bool { return m == swept })
		// The index is in token ID order: issue order, but for IDs made in
		// the same instant.
		byID := func(a, b string) int { return strings.Compare(a[1:], b[1:]) }
		slices.SortFunc(wantIndexed, byID)
		if !slices.Equal(indexed, wantIndexed) || !slices.Equal(f.Pending, issued[flushed:]) {
			t.Fatalf("after rotation %d: indexed %v pending %v, want %v then %v", i+1, indexed, f.Pending, wantIndexed, issued[flushed:])
		}
	}
	var c revoked
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		c, err = revokeFamilyTx(tx, fid)
		return err
	})
	if err != nil || c.refresh != 21 || c.live != 1 || c.access != 20 {
		t.Fatalf("revokeFamilyTx = %+v, %v; want 21 links (1 live) and 20 access tokens (one swept)", c, err)
	}
	err = d.db.View(func(tx *bbolt.Tx) error {
		for _, m := range issued {
			if tokenStored(tx, m[:1], m[1:]) {
				t.Errorf("member %s outlived its family's revocation", m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// BenchmarkRotationPages rotates 16 families at once, as the refresh
// benchmark of scripts/bench.sh does, with keys and IDs shaped as the
// provider makes them (a time prefix, then the token's hash: see
// newRefreshToken there), and reports the pages each rotation writes
// (bbolt's count): a commit's fsync takes about 10 µs more per page
// written on this machine's disk, and each page is a pwrite.
//
//	go test ./storage/bolt -run '^$' -bench RotationPages -cpu 1 -benchtime 8000x
func BenchmarkRotationPages(b *testing.B) {
	ctx := context.Background()
	d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
	now := time.Now()
	if err := d.PutGrant(ctx, storage.Grant{UserID: "u1", ClientID: "app", Scopes: []string{"openid", "offline_access"}, CreatedAt: now, UpdatedAt: now}, nil); err != nil {
		b.Fatal(err)
	}
	key := func() string { // provider.refreshKey of a new token
		h := make([]byte, 32)
		_, _ = rand.Read(h)
		return account.NewOrderedID()[:10] + hex.EncodeToString(h)
	}
	link := func(fid string) storage.RefreshToken {
		at := time.Now()
		return storage.RefreshToken{Hash: key(), ID: account.NewOrderedID(), FamilyID: fid, ClientID: "app", UserID: "u1",
			Scopes: []string{"openid", "offline_access"}, AMR: []string{"pwd"}, SID: account.NewID(), AuthTime: now, CreatedAt: at,
			ExpiresAt: now.Add(24 * time.Hour), IdleExpiresAt: at.Add(time.Hour), SealedValue: make([]byte, 115), GraceUntil: at.Add(5 * time.Second)}
	}
	access := func(fid string) storage.AccessToken {
		at := time.Now()
		return storage.AccessToken{ID: account.NewOrderedID(), FamilyID: fid, ClientID: "app", UserID: "u1", Subject: "u1",
			Scopes: []string{"openid", "offline_access"}, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	}
	const families = 16
	before := d.db.db.Stats()
	b.ResetTimer()
	var wg sync.WaitGroup
	for f := range families {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fid := account.NewOrderedID()
			cur := link(fid)
			if err := d.CreateTokens(ctx, access(fid), &cur); err != nil {
				b.Error(err)
				return
			}
			for i := f; i < b.N; i += families {
				next := link(fid)
				if err := d.RotateRefreshToken(ctx, cur.Hash, next, access(fid)); err != nil {
					b.Error(err)
					return
				}
				cur = next
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	after := d.db.db.Stats()
	diff := after.Sub(&before)
	b.ReportMetric(float64(diff.TxStats.GetWrite())/float64(b.N), "pages/op")
}
