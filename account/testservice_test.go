package account

import (
	"bytes"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// The one constructor of the account tests, inside and outside the
// package: a Service on a real bbolt file in the test's temp dir, with a
// sealer and fast hashing. Tests say only how theirs differs.

// TestArgon is hashing cheap enough for tests (the production cost is
// what makes a password test slow, not what it tests).
var TestArgon = Argon2Params{MemoryKiB: 7168, Iterations: 5, Parallelism: 1}

// TestServiceOptions is how a test's service differs from the default.
type TestServiceOptions struct {
	// Policy is the service's policy; Argon2 is TestArgon and
	// MinPasswordLength 10 when they are zero.
	Policy Policy
	// Now is the clock of the store and the service (a
	// testclock.Clock's Now); nil is the wall clock.
	Now func() time.Time
	// Log is the service's logger; nil is New's default.
	Log *slog.Logger
	// Store is the store to build on, for a second service over the same
	// data; nil opens a new bbolt file.
	Store storage.Store
	// Wrap, when set, wraps the store the service uses (failing writes,
	// counters); the store returned is the unwrapped one.
	Wrap func(Store) Store
	// NoSealer leaves the service without a sealer.
	NoSealer bool
}

// TestSealKey is the key of every test service's sealer.
var TestSealKey = bytes.Repeat([]byte{7}, seal.KeySize)

// NewTestService builds a service as o says and returns it with its store.
func NewTestService(tb testing.TB, o TestServiceOptions) (*Service, storage.Store) {
	tb.Helper()
	db := o.Store
	if db == nil {
		bdb, err := bolt.Open(filepath.Join(tb.TempDir(), "k.db"), bolt.Options{Now: o.Now})
		if err != nil {
			tb.Fatal(err)
		}
		tb.Cleanup(func() { bdb.Close() })
		db = bdb
	}
	var st Store = db
	if o.Wrap != nil {
		st = o.Wrap(st)
	}
	var sealer Sealer
	if !o.NoSealer {
		s, err := seal.New(TestSealKey)
		if err != nil {
			tb.Fatal(err)
		}
		sealer = s
	}
	p := o.Policy
	if p.Argon2 == (Argon2Params{}) {
		p.Argon2 = TestArgon
	}
	if p.MinPasswordLength == 0 {
		p.MinPasswordLength = 10
	}
	svc, err := New(st, sealer, p, o.Now, o.Log)
	if err != nil {
		tb.Fatal(err)
	}
	return svc, db
}
