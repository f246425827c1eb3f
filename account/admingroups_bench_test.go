package account_test

import (
	"fmt"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// fillMembers stores n users straight into the store (no hashing), each a
// member of group.
func fillMembers(b *testing.B, f *adminFixture, n int, group string) {
	b.Helper()
	now := f.clock.Now()
	users := make([]storage.User, 0, n)
	for i := range n {
		name := fmt.Sprintf("member%06d", i)
		users = append(users, storage.User{ID: account.NewID(), Username: name, Email: name + "@example.com", Groups: []string{group}, CreatedAt: now, UpdatedAt: now})
	}
	if err := f.db.CreateUsers(f.ctx, users); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkAdminGroupMembersPage measures one page (100, the console's)
// of a group's members, with the users read, among benchUsers members.
func BenchmarkAdminGroupMembersPage(b *testing.B) {
	f := newAdminFixture(b)
	g, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, "staff", "")
	if err != nil {
		b.Fatal(err)
	}
	fillMembers(b, f, benchUsers(b), "staff")
	b.ResetTimer()
	for b.Loop() {
		page, err := f.svc.Admin.GroupMembers(f.ctx, f.actor, g.ID, "", 100)
		if err != nil || len(page.Users) != 100 {
			b.Fatal(err, len(page.Users))
		}
	}
}

// BenchmarkAdminGroupRename measures a rename, which renames the group in
// every member's record in one transaction.
func BenchmarkAdminGroupRename(b *testing.B) {
	f := newAdminFixture(b)
	g, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, "staff", "")
	if err != nil {
		b.Fatal(err)
	}
	fillMembers(b, f, benchUsers(b), "staff")
	names := [2]string{"crew", "staff"}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		if _, err := f.svc.Admin.UpdateGroup(f.ctx, f.actor, g.ID, "", account.GroupPatch{Name: &names[i%2]}); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
