package bolt

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/internal/cputime"
	"github.com/keyport/keyport/storage"
)

// benchUsers is the size of the user search fixture: the 100,000.
const benchUsers = 100_000

// fillBenchUsers stores n users that look like a real directory: names
// from a few lists, a phone for half, 1–2 of 40 groups, 5% admins, 2%
// blocked, 30% with TOTP, 20% from a directory, 70% signed in at some
// point. Ten of them (every 10,000th) are called "Zyxwvut", for a search
// that matches few. It fills in large transactions without syncs: the
// fixture's writes are not what is measured.
func fillBenchUsers(b *testing.B, d *DB, n int) {
	b.Helper()
	first := []string{"Anna", "Jörg", "Mila", "Sven", "Ines", "Paul", "Zoë", "Omar", "Lena", "Kai", "Ruth", "Timo"}
	last := []string{"Müller", "Schmidt", "Meyer", "Weiß", "Nguyen", "Kowalski", "Smith", "García", "Öztürk", "Larsen"}
	rng := rand.New(rand.NewPCG(1, 2))
	start := time.Date(2020, time.January, 1, 0, 0, 0, 0, time.UTC)
	d.db.db.NoSync = true
	defer func() { d.db.db.NoSync = false }()
	const chunk = 5000
	for from := 0; from < n; from += chunk {
		err := d.db.Update(func(tx *bbolt.Tx) error {
			for i := from; i < min(from+chunk, n); i++ {
				given, family := first[rng.IntN(len(first))], last[rng.IntN(len(last))]
				if i%10_000 == 0 {
					family = "Zyxwvut"
				}
				u := storage.User{
					ID: fmt.Sprintf("%016x", rng.Uint64()), Username: fmt.Sprintf("user%06d", i), Email: fmt.Sprintf("user%06d@example.com", i),
					EmailVerified: true, Name: given + " " + family, GivenName: given, FamilyName: family,
					Groups:    []string{fmt.Sprintf("group%02d", rng.IntN(40))},
					CreatedAt: start.Add(time.Duration(i) * time.Minute), UpdatedAt: start.Add(time.Duration(i) * time.Minute),
					PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g",
					Admin:        rng.IntN(100) < 5, Blocked: rng.IntN(100) < 2,
				}
				if rng.IntN(2) == 0 {
					u.PhoneNumber = fmt.Sprintf("+49 170 %07d", rng.IntN(10_000_000))
				}
				if rng.IntN(2) == 0 {
					u.Groups = append(u.Groups, fmt.Sprintf("group%02d", rng.IntN(40)))
				}
				if i%200 == 0 {
					u.Groups = append(u.Groups, "small") // 0.5%
				}
				if rng.IntN(100) < 30 {
					u.TOTPSecret = []byte("sealed-secret")
				}
				if rng.IntN(100) < 20 {
					u.Source = "ldap"
				}
				if rng.IntN(100) < 70 {
					u.LastLogin = start.Add(time.Duration(rng.IntN(6*365*24)) * time.Hour)
					u.LoginsCount = 1 + rng.IntN(500)
				}
				if err := createUserTx(tx, u, start); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUserSearch measures the first page (50 users) of the admin
// console's user list with 100,000 users in the store, for each kind of
// query, and GetUser; each also reports its median (p50-ns) and the CPU
// time it took (cpu-ns/op), which on a busy machine is the better guide to
// what it costs on a core of its own. The fixture is built once per run
// (it takes a while):
//
//	go test ./storage/bolt -run '^$' -bench UserSearch -benchtime 200x -cpu 1
func BenchmarkUserSearch(b *testing.B) {
	d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{SkipCheck: true})
	fillBenchUsers(b, d, benchUsers)
	ctx := context.Background()
	reportIndexSize(b, d, benchUsers)
	reportIndexBuild(b, d)

	first, err := d.SearchUsers(ctx, storage.UserQuery{})
	if err != nil || first.Next == "" {
		b.Fatal(first.Next, err)
	}
	queries := []struct {
		name string
		q    storage.UserQuery
	}{
		{"all/created", storage.UserQuery{}},
		{"all/last-sign-in", storage.UserQuery{Sort: storage.UserSortLastSignIn}},
		{"second-page/created", storage.UserQuery{Cursor: first.Next}},
		{"substring-few/created", storage.UserQuery{Search: "YXWV"}},
		{"substring-few/last-sign-in", storage.UserQuery{Search: "yxwv", Sort: storage.UserSortLastSignIn}},
		{"substring-none/created", storage.UserQuery{Search: "no such person"}},
		{"substring-many/created", storage.UserQuery{Search: "müller"}},
		{"prefix-username/created", storage.UserQuery{Search: "user0421"}},
		{"phone/created", storage.UserQuery{Search: "170 12"}},
		{"group-small/created", storage.UserQuery{Group: "small"}},
		{"group-small/last-sign-in", storage.UserQuery{Group: "small", Sort: storage.UserSortLastSignIn}},
		{"group-large/created", storage.UserQuery{Group: "group07"}},
		{"admins-with-2fa/last-sign-in", storage.UserQuery{Admin: ptrTo(true), TwoFactor: ptrTo(true), Sort: storage.UserSortLastSignIn}},
		{"blocked-ldap-substring/created", storage.UserQuery{Blocked: ptrTo(true), Source: ptrTo("ldap"), Search: "schmidt"}},
	}
	for _, c := range queries {
		b.Run(c.name, func(b *testing.B) {
			var took []time.Duration
			defer reportCPU(b, cputime.Process())
			for b.Loop() {
				t0 := time.Now()
				page, err := d.SearchUsers(ctx, c.q)
				took = append(took, time.Since(t0))
				if err != nil || len(page.Users) == 0 && c.q.Search != "no such person" {
					b.Fatal(len(page.Users), err)
				}
			}
			reportMedian(b, took)
		})
	}
	b.Run("GetUser", func(b *testing.B) {
		ids := userIDsOf(first.Users)
		var took []time.Duration
		i := 0
		defer reportCPU(b, cputime.Process())
		for b.Loop() {
			t0 := time.Now()
			if _, err := d.GetUser(ctx, ids[i%len(ids)]); err != nil {
				b.Fatal(err)
			}
			took = append(took, time.Since(t0))
			i++
		}
		reportMedian(b, took)
	})
	b.Run("CountAdmins", func(b *testing.B) {
		for b.Loop() {
			if n, err := d.CountAdmins(ctx); err != nil || n == 0 {
				b.Fatal(n, err)
			}
		}
	})
	// A sign-in's write with the index to keep, without the disk sync
	// (which BenchmarkSignInWrite measures, and which dwarfs it).
	b.Run("RecordSignIn-nosync", func(b *testing.B) {
		d.db.db.NoSync = true
		defer func() { d.db.db.NoSync = false }()
		ids := userIDsOf(first.Users)
		i := 0
		defer reportCPU(b, cputime.Process())
		for b.Loop() {
			now := time.Now()
			uid := ids[i%len(ids)]
			_, err := d.RecordSignIn(ctx, storage.SignInWrite{
				UserID:  uid,
				Update:  func(u storage.User) (storage.User, error) { u.LastLogin = now; u.LoginsCount++; return u, nil },
				Attempt: storage.LoginAttempt{ID: fmt.Sprintf("bench%d", i), UserID: uid, Login: uid, Time: now, Method: "pwd", Success: true},
			})
			if err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
}

func ptrTo[T any](v T) *T { return &v }

func userIDsOf(users []storage.User) []string {
	var ids []string
	for _, u := range users {
		ids = append(ids, u.ID)
	}
	return ids
}

// reportCPU reports the process's CPU time per operation since start
// (cpu-ns/op): on a machine shared with other work, ns/op and p50-ns
// include the time spent waiting for a core, this does not.
func reportCPU(b *testing.B, start time.Duration) {
	if used := cputime.Process() - start; used > 0 && b.N > 0 {
		b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}

func reportMedian(b *testing.B, took []time.Duration) {
	if len(took) == 0 {
		return
	}
	slices.Sort(took)
	b.ReportMetric(float64(took[len(took)/2].Nanoseconds()), "p50-ns")
}

// reportIndexBuild logs how long the schema step that builds the index
// (buildUserIndexes) takes for the fixture: it empties the index buckets
// and builds them again in a transaction it then rolls back.
func reportIndexBuild(b *testing.B, d *DB) {
	b.Helper()
	errRollBack := errors.New("roll back")
	var took, cpu time.Duration
	err := d.db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bUserSearchCreated, bUserSearchSignIn, bUsersByGroup, bAdmins} {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		t0, c0 := time.Now(), cputime.Process()
		if err := buildUserIndexes(tx); err != nil {
			return err
		}
		took, cpu = time.Since(t0), cputime.Process()-c0
		return errRollBack
	})
	if !errors.Is(err, errRollBack) {
		b.Fatal(err)
	}
	b.Logf("building the index of %d users (schema step 7, before its commit): %v, %v of CPU", benchUsers, took.Round(time.Millisecond), cpu.Round(time.Millisecond))
}

// reportIndexSize logs the bytes the index buckets take per user (their
// pages in use, as bbolt counts them) and the file's size.
func reportIndexSize(b *testing.B, d *DB, users int) {
	b.Helper()
	err := d.db.View(func(tx *bbolt.Tx) error {
		total := 0
		for _, name := range [][]byte{bUserSearchCreated, bUserSearchSignIn, bUsersByGroup, bAdmins, bUsers} {
			st := tx.Bucket(name).Stats()
			inuse := st.LeafInuse + st.BranchInuse
			alloc := st.LeafAlloc + st.BranchAlloc
			b.Logf("%-20s %6.1f bytes/user in use, %6.1f allocated", name, float64(inuse)/float64(users), float64(alloc)/float64(users))
			if string(name) != string(bUsers) {
				total += alloc
			}
		}
		b.Logf("index pages in all: %.1f bytes/user; file %d MiB", float64(total)/float64(users), tx.Size()>>20)
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}
