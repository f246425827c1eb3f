package bolt

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// TestFamilyAsDecoded: what putFamily keeps in the memo is exactly what
// decoding the bytes it stored gives, for times with a monotonic reading
// and in another zone, and for an empty pending list, so a rotation that
// reads a family from the memo sees what a decode would have shown it.
func TestFamilyAsDecoded(t *testing.T) {
	zone := time.FixedZone("CEST", 2*3600)
	for _, f := range []family{
		{ID: "f1", UserID: "u", ClientID: "app", Live: "h2", Prev: "h1",
			ExpiresAt: time.Now(), IdleExpiresAt: time.Now().In(zone).Add(time.Minute), Pending: []string{"rA", "aB"}},
		{ID: "f2", ClientID: "app", Live: "h1", Pending: []string{}},
		{ID: "f3", ClientID: "app", Live: "h1", ExpiresAt: time.Unix(1700000000, 123456789).In(zone)},
	} {
		kept := f.asDecoded()
		raw, err := json.Marshal(kept)
		if err != nil {
			t.Fatal(err)
		}
		var decoded family
		if err := json.Unmarshal(raw, &decoded); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(kept, decoded) {
			t.Errorf("family %s: kept %#v\ndecoded %#v", f.ID, kept, decoded)
		}
		if !kept.ExpiresAt.Equal(f.ExpiresAt) || !kept.IdleExpiresAt.Equal(f.IdleExpiresAt) {
			t.Errorf("family %s: asDecoded moved a time: %v %v", f.ID, kept.ExpiresAt, kept.IdleExpiresAt)
		}
	}
}

// TestRecordMemos: users, refresh tokens and families read again come from
// the memos only while their stored bytes are unchanged: a change by any
// writer is seen at once, a caller changing what it got changes nothing for
// the next reader, and a rotation chain reads back the families it wrote.
func TestRecordMemos(t *testing.T) {
	ctx := t.Context()
	d := openTest(t, filepath.Join(t.TempDir(), "k.db"), Options{})
	now := time.Now().UTC().Truncate(time.Second)

	u := storage.User{ID: "u1", Username: "alice", Email: "alice@example.com", Groups: []string{"staff"}, CreatedAt: now}
	if err := d.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	got, err := d.GetUser(ctx, "u1")
	if err != nil {
		t.Fatal(err)
	}
	if d.memos.users.size() != 1 {
		t.Fatalf("users memo holds %d, want 1", d.memos.users.size())
	}
	got.Groups[0] = "admins"
	if again, _ := d.GetUser(ctx, "u1"); !slices.Equal(again.Groups, []string{"staff"}) {
		t.Errorf("a caller's change reached the next reader: %v", again.Groups)
	}
	if byLogin, err := d.GetUserByLogin(ctx, "ALICE"); err != nil || byLogin.ID != "u1" || !slices.Equal(byLogin.Groups, []string{"staff"}) {
		t.Errorf("by login: %+v, %v", byLogin, err)
	}
	if _, err := d.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
		u.Groups = []string{"staff", "ops"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if again, _ := d.GetUser(ctx, "u1"); !slices.Equal(again.Groups, []string{"staff", "ops"}) {
		t.Errorf("after an update the memo answered: %v", again.Groups)
	}
	if _, err := d.GetUser(ctx, "nobody"); err == nil {
		t.Error("an unknown user was found")
	}
	if d.memos.users.size() != 1 {
		t.Errorf("users memo holds %d after a read of an unknown ID, want 1", d.memos.users.size())
	}

	link := func(n int) storage.RefreshToken {
		return storage.RefreshToken{Hash: fmt.Sprintf("h%d", n), ID: fmt.Sprintf("r%d", n), FamilyID: "f1", ClientID: "app", UserID: "u1",
			Scopes: []string{"openid", "offline_access"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}
	}
	access := func(n int) storage.AccessToken {
		return storage.AccessToken{ID: fmt.Sprintf("a%d", n), ClientID: "app", UserID: "u1", Subject: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	}
	first := link(1)
	if err := d.CreateTokens(ctx, access(1), &first); err != nil {
		t.Fatal(err)
	}
	for n := 2; n <= pendingMembersMax+3; n++ { // past a flush of the pending members
		r, err := d.GetRefreshToken(ctx, fmt.Sprintf("h%d", n-1))
		if err != nil {
			t.Fatalf("link %d: %v", n-1, err)
		}
		r.Scopes[0] = "changed by a caller"
		if err := d.RotateRefreshToken(ctx, r.Hash, link(n), access(n)); err != nil {
			t.Fatalf("rotate to link %d: %v", n, err)
		}
		// The family the memo keeps is what its stored bytes decode to.
		err = d.db.View(func(tx *bbolt.Tx) error {
			raw := tx.Bucket(bFamilies).Get([]byte("f1"))
			kept, hit := d.memos.families.get("f1", raw)
			if !hit {
				t.Errorf("link %d: the memo does not hold the family the rotation wrote", n)
				return nil
			}
			var decoded family
			if err := json.Unmarshal(raw, &decoded); err != nil {
				return err
			}
			if !reflect.DeepEqual(kept, decoded) {
				t.Errorf("link %d: memo %#v\ndecoded %#v", n, kept, decoded)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	last := fmt.Sprintf("h%d", pendingMembersMax+3)
	r, err := d.GetRefreshToken(ctx, last)
	if err != nil || !slices.Equal(r.Scopes, []string{"openid", "offline_access"}) {
		t.Fatalf("live link: %+v, %v", r, err)
	}
	// Reuse of a rotated link revokes the family: the memos have nothing
	// that brings any of it back.
	if _, err := d.GetRefreshToken(ctx, "h2"); err == nil {
		t.Fatal("a rotated link was accepted")
	}
	if _, err := d.GetRefreshToken(ctx, last); err == nil {
		t.Error("the live link of a revoked family is still read")
	}
	if err := d.RotateRefreshToken(ctx, last, link(100), access(100)); err == nil {
		t.Error("the live link of a revoked family rotated")
	}
}
