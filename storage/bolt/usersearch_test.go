package bolt

import (
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// A database written before the user search index (schema 6) gets it
// built at open, with the passkeys, groups and admins it already holds.
func TestMigrateBuildsUserSearchIndex(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyport.db")
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	users := []storage.User{
		{ID: "u1", Username: "alice", Email: "alice@example.com", Name: "Alice Ärger", Groups: []string{"Staff"}, Admin: true, CreatedAt: at},
		{ID: "u2", Username: "bob", Groups: []string{"staff", "ops"}, CreatedAt: at.Add(time.Hour), LastLogin: at},
		{ID: "u3", Username: "carol", TOTPSecret: []byte("sealed"), Admin: true, Blocked: true, CreatedAt: at.Add(2 * time.Hour)},
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		for v := range 6 { // the schema before this one
			if err := migrations[v](tx); err != nil {
				return err
			}
		}
		meta, err := tx.CreateBucket(bMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(kSchemaVersion, []byte("6")); err != nil {
			return err
		}
		for _, u := range users { // as schema 6 wrote them: record and name indexes only
			if err := tx.Bucket(bUsersByUsername).Put([]byte(u.Username), []byte(u.ID)); err != nil {
				return err
			}
			if u.Email != "" {
				if err := tx.Bucket(bUsersByEmail).Put([]byte(u.Email), []byte(u.ID)); err != nil {
					return err
				}
			}
			if err := putJSON(tx.Bucket(bUsers), u.ID, u); err != nil {
				return err
			}
		}
		c := storage.Credential{ID: "p1", UserID: "u2", Kind: storage.KindPasskey, WebAuthnID: []byte{1}, CreatedAt: at}
		if err := putJSON(tx.Bucket(bCredentials), credentialKey(c.UserID, c.ID), c); err != nil {
			return err
		}
		return tx.Bucket(bCredentialsByWebAuthn).Put([]byte("01"), []byte(credentialKey(c.UserID, c.ID)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	d := openTest(t, path, Options{Now: func() time.Time { return at }}) // its cleanup compares every index with a rebuild
	for _, c := range []struct {
		q    storage.UserQuery
		want []string
	}{
		{storage.UserQuery{}, []string{"u3", "u2", "u1"}},
		{storage.UserQuery{Search: "ÄRGER"}, []string{"u1"}},
		{storage.UserQuery{Group: "STAFF"}, []string{"u2", "u1"}},
		{storage.UserQuery{TwoFactor: ptrTo(true)}, []string{"u3", "u2"}},
		{storage.UserQuery{Sort: storage.UserSortLastSignIn}, []string{"u2", "u3", "u1"}},
	} {
		page, err := d.SearchUsers(ctx, c.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := userIDsOf(page.Users); !slices.Equal(got, c.want) {
			t.Errorf("%+v after the migration: %v, want %v", c.q, got, c.want)
		}
	}
	if n, err := d.CountAdmins(ctx); err != nil || n != 1 {
		t.Errorf("admins after the migration: %d, %v; want 1", n, err)
	}
}

// A group filter reads a small group's members, and filters a large one
// while walking the sort order; both give the same pages.
func TestGroupFilterEitherWay(t *testing.T) {
	ctx := t.Context()
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{})
	at := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	for i := range 60 {
		u := storage.User{ID: fmt.Sprintf("u%02d", i), Username: fmt.Sprintf("user%02d", i), CreatedAt: at.Add(time.Duration(i%9) * time.Second)}
		if i%3 != 0 {
			u.Groups = []string{"Crew"}
		}
		if i%4 != 0 {
			u.LastLogin = at.Add(time.Duration(i*37%60) * time.Minute)
		}
		u.Blocked = i%5 == 0
		if err := d.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	pages := func(q storage.UserQuery) [][]string {
		var out [][]string
		for {
			page, err := d.SearchUsers(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, userIDsOf(page.Users))
			if page.Next == "" {
				return out
			}
			q.Cursor = page.Next
		}
	}
	defer func(was int) { groupPathMax = was }(groupPathMax)
	for _, q := range []storage.UserQuery{
		{Group: "crew", Limit: 7},
		{Group: "CREW", Limit: 7, Sort: storage.UserSortLastSignIn},
		{Group: "crew", Limit: 5, Blocked: ptrTo(false), Search: "user1"},
	} {
		groupPathMax = 5000
		members := pages(q)
		groupPathMax = 10
		walked := pages(q)
		if len(members) < 2 || !slices.EqualFunc(members, walked, slices.Equal) {
			t.Errorf("%+v: from the group %v, walking %v", q, members, walked)
		}
	}
}
