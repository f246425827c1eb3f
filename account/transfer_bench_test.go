package account_test

import (
	"bytes"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// benchHash is a bcrypt hash: imports store hashes as they are, so its
// cost does not matter here.
const benchHash = "$2b$10$S1u/uFzQEaWS0YWTEk1i4u3sZbYzsdM7T9zV8HGIiF9m/eoLZh9vW"

// benchUser is a user with the fields a migrated account typically has.
func benchUser(prefix string, i int) storage.User {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	return storage.User{
		ID: fmt.Sprintf("%s-%07d", prefix, i), Username: fmt.Sprintf("%s%07d", prefix, i), Email: fmt.Sprintf("%s%07d@example.com", prefix, i),
		EmailVerified: true, Name: "Some Person", GivenName: "Some", FamilyName: "Person", Locale: "en",
		Groups: []string{"staff"}, Roles: []string{"reader"}, AppMetadata: map[string]string{"plan": "basic"},
		CreatedAt: now, UpdatedAt: now, PasswordHash: benchHash,
	}
}

// fillTransferUsers stores n users in batches.
func fillTransferUsers(b *testing.B, db storage.Store, prefix string, n int) {
	b.Helper()
	for start := 0; start < n; start += 10_000 {
		var batch []storage.User
		for i := start; i < min(n, start+10_000); i++ {
			batch = append(batch, benchUser(prefix, i))
		}
		if err := db.CreateUsers(b.Context(), batch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkImportUsers imports files of 10,000 users (hashes imported as
// they are: no hashing) into a store holding 100,000 users.
//
//	go test ./account -run '^$' -bench ImportUsers -benchtime 5x -cpu 1
func BenchmarkImportUsers(b *testing.B) {
	const perFile = 10_000
	svc, db := account.NewTestService(b, account.TestServiceOptions{})
	fillTransferUsers(b, db, "existing", 100_000)
	var files [][]byte
	for f := range b.N {
		var buf bytes.Buffer
		for i := range perFile {
			buf.WriteString(importLines(b, account.ExportedUserOf(benchUser(fmt.Sprintf("imp%d_", f), i))))
		}
		files = append(files, buf.Bytes())
	}
	b.ResetTimer()
	for f := range b.N {
		rep, err := svc.Users.ImportUsers(b.Context(), cliActor, bytes.NewReader(files[f]), account.ImportOptions{})
		if err != nil || rep.Created != perFile {
			b.Fatalf("import: %+v %v", rep, err)
		}
	}
	b.ReportMetric(float64(perFile*b.N)/b.Elapsed().Seconds(), "users/s")
}

// BenchmarkExportUsers exports 100,000 users: paged (bolt's
// ListUsersPage), and all at once as on a store that cannot page
// (ListUsers), to compare the heap they need.
//
//	go test ./account -run '^$' -bench ExportUsers -benchtime 5x -cpu 1
func BenchmarkExportUsers(b *testing.B) {
	const users = 100_000
	for _, paged := range []bool{true, false} {
		b.Run(map[bool]string{true: "paged", false: "all-at-once"}[paged], func(b *testing.B) {
			o := account.TestServiceOptions{}
			if !paged {
				o.Wrap = func(s account.Store) account.Store { return struct{ account.Store }{s} }
			}
			svc, db := account.NewTestService(b, o)
			fillTransferUsers(b, db, "user", users)
			runtime.GC()
			w := &heapWatch{}
			b.ResetTimer()
			for range b.N {
				n, err := svc.Users.ExportUsers(b.Context(), cliActor, w)
				if err != nil || n != users {
					b.Fatalf("export: %d %v", n, err)
				}
			}
			b.ReportMetric(float64(users*b.N)/b.Elapsed().Seconds(), "users/s")
			b.ReportMetric(float64(w.peak)/(1<<20), "peak-heap-MiB")
		})
	}
}

// heapWatch discards what is written and samples the live heap every
// 4 MiB, so the benchmark shows that the export holds a page, not the
// users.
type heapWatch struct {
	written, next int
	peak          uint64
}

func (h *heapWatch) Write(p []byte) (int, error) {
	h.written += len(p)
	if h.written >= h.next {
		h.next = h.written + 4<<20
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		h.peak = max(h.peak, ms.HeapAlloc)
	}
	return len(p), nil
}
