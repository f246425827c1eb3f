package account_test

import (
	"fmt"
	"os"
	"strconv"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// benchUsers is how many users the admin benchmarks put beside the one
// they act on (KEYPORT_BENCH_USERS; 10,000 by default: the store is
// filled one transaction per user).
func benchUsers(b *testing.B) int {
	if v := os.Getenv("KEYPORT_BENCH_USERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			b.Fatal(err)
		}
		return n
	}
	return 10_000
}

// fillUsers stores n users straight into the store (no hashing).
func fillUsers(b *testing.B, f *adminFixture, n int) {
	b.Helper()
	now := f.clock.Now()
	for i := range n {
		name := fmt.Sprintf("user%06d", i)
		if err := f.db.CreateUser(f.ctx, storage.User{ID: account.NewID(), Username: name, Email: name + "@example.com", Admin: i%1000 == 0, CreatedAt: now, UpdatedAt: now}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdminUserDetail measures the detail page's read: the user with
// history, sessions, consents, credentials and factors, among many users.
func BenchmarkAdminUserDetail(b *testing.B) {
	f := newAdminFixture(b)
	fillUsers(b, f, benchUsers(b))
	u := f.user("alice", false)
	f.signInEverywhere(u)
	f.enrolFactors(u)
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.svc.Admin.User(f.ctx, f.actor, u.ID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAdminDemote measures an edit that takes an admin flag away,
// which counts the administrators (today by reading every user).
func BenchmarkAdminDemote(b *testing.B) {
	f := newAdminFixture(b)
	fillUsers(b, f, benchUsers(b))
	u := f.user("alice", true)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, _, err := f.svc.Admin.UpdateUser(f.ctx, f.actor, u.ID, "", account.UserPatch{Admin: ptr(i%2 == 1)}); err != nil {
			b.Fatal(err)
		}
	}
}
