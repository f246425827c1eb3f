package bolt

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// BenchmarkOpenCheck measures the check at open on a file with
// KEYPORT_BENCH_USERS users (default 10000), each with a token family, a
// session and a sign-in record, as populate writes them. KEYPORT_BENCH_DB
// names a file to keep (and reuse) instead of a temporary one:
//
//	KEYPORT_BENCH_USERS=100000 KEYPORT_BENCH_DB=/tmp/100k.db go test ./storage/bolt -run '^$' -bench OpenCheck -benchtime 5x -v
func BenchmarkOpenCheck(b *testing.B) {
	users := 10000
	if n, err := strconv.Atoi(os.Getenv("KEYPORT_BENCH_USERS")); err == nil && n > 0 {
		users = n
	}
	path := os.Getenv("KEYPORT_BENCH_DB")
	if path == "" {
		path = filepath.Join(b.TempDir(), "keyport.db")
	}
	if _, err := os.Stat(path); err != nil {
		start := time.Now()
		for done := 0; done < users; done += 2000 {
			populateFrom(b, path, done, min(2000, users-done))
		}
		b.Logf("%d users written in %v", users, time.Since(start).Round(time.Second))
	}
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.Logf("file %.1f MiB", float64(fi.Size())/(1<<20))
	for _, skip := range []bool{true, false} {
		name := "check"
		if skip {
			name = "skip"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				d, err := Open(path, Options{SkipCheck: skip, CheckTimeout: time.Hour})
				if err != nil {
					b.Fatal(err)
				}
				d.Close()
			}
		})
	}
}
