package throttle_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/throttle"
)

var t0 = time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)

// countingStore counts writes, to show what costs one, and the keys they
// wrote.
type countingStore struct {
	throttle.Store
	updates atomic.Int64
	mu      sync.Mutex
	written map[string]bool
}

func (s *countingStore) UpdateThrottles(ctx context.Context, keys []string, fn func(storage.Throttle) (storage.Throttle, error)) error {
	s.updates.Add(1)
	return s.Store.UpdateThrottles(ctx, keys, func(t storage.Throttle) (storage.Throttle, error) {
		next, err := fn(t)
		if err == nil && !next.Empty() {
			s.mu.Lock()
			s.written[t.Key] = true
			s.mu.Unlock()
		}
		return next, err
	})
}

// wrote counts the keys with prefix that were written with something in them.
func (s *countingStore) wrote(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k := range s.written {
		if strings.HasPrefix(k, prefix) {
			n++
		}
	}
	return n
}

func openStore(t *testing.T, path string, c *testclock.Clock) *countingStore {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "k.db")
	}
	db, err := bolt.Open(path, bolt.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return &countingStore{Store: db, written: make(map[string]bool)}
}

var policy = throttle.Policy{
	AccountAddress: throttle.Window{Limit: 3, Window: time.Minute},
	Address:        throttle.Window{Limit: 8, Window: time.Minute},
	ClientAddress:  throttle.Window{Limit: 8, Window: time.Minute},
	Account:        throttle.Backoff{Failures: 5, Wait: time.Minute, MaxWait: 4 * time.Minute, Reset: time.Hour},
}

func newLimiter(t *testing.T, p throttle.Policy) (*throttle.Limiter, *testclock.Clock, *countingStore) {
	c := testclock.At(t0)
	s := openStore(t, "", c)
	return throttle.New(s, p, c.Now), c, s
}

func refusal(err error) *throttle.Refused {
	var r *throttle.Refused
	if errors.As(err, &r) {
		return r
	}
	return nil
}

// failAt reserves and fails one password attempt; it fails the test when
// the attempt is refused.
func failAt(t *testing.T, l *throttle.Limiter, s throttle.Subject, addr string) []throttle.Trip {
	t.Helper()
	r, err := l.Password(t.Context(), s, addr, false)
	if err != nil {
		t.Fatalf("attempt refused: %v", err)
	}
	trips, err := r.Fail(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return trips
}

// A failure counts for exactly the window after it happened: not a moment
// longer (the next attempt is allowed at that instant), and not a moment
// shorter (a fixed window would forget everything at its boundary).
func TestWindowSlides(t *testing.T) {
	p := policy
	p.Account.Failures = 100
	l, c, _ := newLimiter(t, p)
	alice := throttle.User("alice")
	var times []time.Time
	for i := range 3 {
		c.Set(t0.Add(time.Duration(i) * 20 * time.Second)) // 0s, 20s, 40s
		times = append(times, c.Now())
		trips := failAt(t, l, alice, "192.0.2.1")
		if wantTrip := i == 2; (len(trips) == 1) != wantTrip {
			t.Fatalf("failure %d: trips %+v", i+1, trips)
		}
	}
	c.Set(t0.Add(50 * time.Second))
	_, err := l.Password(t.Context(), alice, "192.0.2.1", false)
	if r := refusal(err); r == nil || r.Scope != throttle.ScopeAccountAddress || r.RetryAfter != 10*time.Second {
		t.Fatalf("4th attempt at 50s: %v, want refused for 10s", err)
	}
	c.Set(times[0].Add(time.Minute - time.Nanosecond))
	if _, err := l.Password(t.Context(), alice, "192.0.2.1", false); refusal(err) == nil {
		t.Fatal("allowed a moment before the first failure left the window")
	}
	c.Set(times[0].Add(time.Minute))
	failAt(t, l, alice, "192.0.2.1") // exactly when the first failure leaves
	_, err = l.Password(t.Context(), alice, "192.0.2.1", false)
	if r := refusal(err); r == nil || r.RetryAfter != 20*time.Second {
		t.Fatalf("right after: %v, want refused until the second failure leaves (20s)", err)
	}

	// Over any stretch of one window, no more than the limit were checked:
	// in a fixed window, the boundary would have let a second batch in.
	c.Set(times[1].Add(time.Minute))
	failAt(t, l, alice, "192.0.2.1")
	c.Set(times[2].Add(time.Minute))
	failAt(t, l, alice, "192.0.2.1")
	if _, err := l.Password(t.Context(), alice, "192.0.2.1", false); refusal(err) == nil {
		t.Fatal("a fourth failure within one window")
	}
}

// Reservations in flight count: 100 parallel guesses with a limit of 3 get
// exactly 3 in, the rest refused without being checked.
func TestParallelGuessesReserve(t *testing.T) {
	l, _, _ := newLimiter(t, policy)
	var in, refused atomic.Int64
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			<-start
			r, err := l.Password(context.Background(), throttle.Name("bob"), "192.0.2.7", false)
			if err != nil {
				if refusal(err) == nil {
					t.Error(err)
				}
				refused.Add(1)
				return
			}
			in.Add(1)
			time.Sleep(5 * time.Millisecond) // the check takes a while
			if _, err := r.Fail(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	if in.Load() != 3 || refused.Load() != 97 {
		t.Errorf("%d let in, %d refused; want 3 and 97", in.Load(), refused.Load())
	}

	// A refusal caused only by checks in flight asks for a second.
	r1, err := l.Password(t.Context(), throttle.Name("carol"), "192.0.2.7", false)
	if err != nil {
		t.Fatal(err)
	}
	r2, _ := l.Password(t.Context(), throttle.Name("carol"), "192.0.2.7", false)
	r3, _ := l.Password(t.Context(), throttle.Name("carol"), "192.0.2.7", false)
	_, err = l.Password(t.Context(), throttle.Name("carol"), "192.0.2.7", false)
	if r := refusal(err); r == nil || r.RetryAfter != time.Second {
		t.Fatalf("with 3 in flight: %v", err)
	}
	r1.Cancel()
	r1.Cancel() // twice is harmless
	r4, err := l.Password(t.Context(), throttle.Name("carol"), "192.0.2.7", false)
	if err != nil {
		t.Fatalf("after one was cancelled: %v", err)
	}
	for _, r := range []*throttle.Reservation{r2, r3, r4} {
		r.Cancel()
	}
}

// The account as a whole, failures from anywhere, follows Keycloak: below
// the threshold no wait; from it on, every failure brings a wait, growing
// with the rounds (count / threshold) up to the maximum, and the count is
// not forgotten when a wait ends, only after a quiet reset time or on a
// success. A remembered device is not held back. Today each trip cleared
// the count, so every round let another threshold's worth of guesses in.
func TestAccountWaitsGrow(t *testing.T) {
	l, c, _ := newLimiter(t, policy)
	alice := throttle.User("alice")
	addr := 0
	nextAddr := func() string { addr++; return fmt.Sprintf("198.51.%d.%d", addr/250, addr%250+1) }
	free := func() {
		t.Helper()
		for i := range policy.Account.Failures - 1 {
			if trips := failAt(t, l, alice, nextAddr()); len(trips) != 0 {
				t.Fatalf("failure %d, below the threshold: %+v", i+1, trips)
			}
		}
	}
	free()
	// At the threshold, one attempt at a time: parallel guesses cannot all
	// slip in before the wait.
	r, err := l.Password(t.Context(), alice, nextAddr(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Password(t.Context(), alice, nextAddr(), false); refusal(err) == nil || refusal(err).RetryAfter != time.Second {
		t.Fatalf("a second attempt at the threshold while one is in flight: %v", err)
	}
	r.Cancel()
	for n := policy.Account.Failures; n <= 4*policy.Account.Failures+2; n++ {
		round := n / policy.Account.Failures
		want := min(policy.Account.Wait<<(round-1), policy.Account.MaxWait)
		trips := failAt(t, l, alice, nextAddr())
		if len(trips) != 1 || trips[0].Scope != throttle.ScopeAccount || trips[0].Round != round || trips[0].For != want {
			t.Fatalf("failure %d: trips %+v, want round %d and a wait of %s", n, trips, round, want)
		}
		_, err := l.Password(t.Context(), alice, nextAddr(), false)
		if r := refusal(err); r == nil || r.Scope != throttle.ScopeAccount || r.RetryAfter != want {
			t.Fatalf("after failure %d: %v, want refused for %s from any address", n, err, want)
		}
		// A remembered device of the account is not held back.
		r, err := l.Password(t.Context(), alice, nextAddr(), true)
		if err != nil {
			t.Fatalf("after failure %d: a proven attempt was refused: %v", n, err)
		}
		r.Cancel()
		c.Add(want - time.Nanosecond)
		if _, err := l.Password(t.Context(), alice, nextAddr(), false); refusal(err) == nil {
			t.Fatalf("after failure %d: allowed before the wait ended", n)
		}
		c.Add(time.Nanosecond)
	}

	// The reset time without a failure forgets the count.
	c.Add(policy.Account.Reset)
	free()
	if trips := failAt(t, l, alice, nextAddr()); len(trips) != 1 || trips[0].For != policy.Account.Wait {
		t.Fatalf("after the reset time, the threshold again: %+v", trips)
	}
	c.Add(policy.Account.Wait)

	// A success forgives: below the threshold again.
	r, err = l.Password(t.Context(), alice, nextAddr(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Succeed(t.Context()); err != nil {
		t.Fatal(err)
	}
	free()
	if r, err := l.Password(t.Context(), alice, nextAddr(), false); err != nil {
		t.Fatalf("after a success, the old failures still counted: %v", err)
	} else {
		r.Cancel()
	}
}

// How many guesses of one account a day admits, from as many addresses as
// the attacker likes, each guess as soon as it is allowed, under the
// defaults of config.toml (30 failures, waits from a minute doubling to 15
// minutes, reset after 12 hours): the threshold, then one guess per wait.
// The old policy cleared the count at each trip and admitted 30 guesses
// per wait, about 2,900 a day.
func TestAccountGuessesPerDay(t *testing.T) {
	b := throttle.Backoff{Failures: 30, Wait: time.Minute, MaxWait: 15 * time.Minute, Reset: 12 * time.Hour}
	l, c, _ := newLimiter(t, throttle.Policy{Account: b})
	alice := throttle.User("alice")
	end := t0.Add(24 * time.Hour)
	checked := 0
	for c.Now().Before(end) {
		r, err := l.Password(t.Context(), alice, "", false)
		if rf := refusal(err); rf != nil {
			c.Add(rf.RetryAfter)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Fail(t.Context()); err != nil {
			t.Fatal(err)
		}
		checked++
	}
	// The policy as config.toml documents it: failure n (from the 30th on)
	// makes the next one wait a minute doubled for each further 30, at
	// most 15 minutes.
	want, at := 0, time.Duration(0)
	for n := 1; at < 24*time.Hour; n++ {
		want++
		if n >= b.Failures {
			at += min(b.Wait<<(n/b.Failures-1), b.MaxWait)
		}
	}
	t.Logf("guesses of one account checked in a day: %d (the documented policy: %d)", checked, want)
	if checked != want {
		t.Errorf("%d guesses checked in a day, want %d", checked, want)
	}
}

// One address's failures against an account limit that address for that
// account, and the address as a whole for people's sign-ins; not the
// account from elsewhere (until the account-wide round), nor other
// addresses, nor the apps at that address: client authentication has an
// address budget of its own, both ways.
func TestLimitsAreSeparate(t *testing.T) {
	p := policy
	p.Account.Failures = 100
	l, _, _ := newLimiter(t, p)
	alice, bob := throttle.User("alice"), throttle.User("bob")
	for range 3 {
		failAt(t, l, alice, "192.0.2.1")
	}
	if _, err := l.Password(t.Context(), alice, "192.0.2.1", false); refusal(err) == nil {
		t.Fatal("alice from the attacking address")
	}
	for _, try := range []struct {
		who  throttle.Subject
		addr string
	}{{alice, "192.0.2.2"}, {bob, "192.0.2.1"}} {
		r, err := l.Password(t.Context(), try.who, try.addr, false)
		if err != nil {
			t.Fatalf("%s from %s: %v", try.who, try.addr, err)
		}
		r.Cancel()
	}
	// The address limit: 8 failures from one address over several names.
	for i := range 5 {
		failAt(t, l, throttle.Name("user"+string(rune('a'+i))), "192.0.2.1")
	}
	_, err := l.Password(t.Context(), throttle.Name("someone-else"), "192.0.2.1", false)
	if r := refusal(err); r == nil || r.Scope != throttle.ScopeAddress {
		t.Fatalf("9th failure from one address: %v", err)
	}
	// Unknown API tokens from that address are refused too (a token that
	// is found never asks the throttle); client secrets are not: the apps
	// at an address are not stopped by its people's failures.
	if _, err := l.Secret(t.Context(), "192.0.2.1"); refusal(err) == nil {
		t.Error("an API token miss from the throttled address")
	}
	r, err := l.Client(t.Context(), "app", "192.0.2.1")
	if err != nil {
		t.Fatalf("a client secret from the address people's failures throttle: %v", err)
	}
	r.Cancel()
	// Nor the other way round: 8 failures of apps' secrets from another
	// address throttle its client authentications, not its people.
	for i := range 8 {
		r, err := l.Client(t.Context(), "app"+string(rune('a'+i)), "192.0.2.3")
		if err != nil {
			t.Fatalf("client secret %d: %v", i+1, err)
		}
		if _, err := r.Fail(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := l.Client(t.Context(), "another-app", "192.0.2.3"); refusal(err) == nil || refusal(err).Scope != throttle.ScopeClientsAddress {
		t.Errorf("9th failed client authentication from one address: %v", err)
	}
	if r, err := l.Password(t.Context(), throttle.Name("someone"), "192.0.2.3", false); err != nil {
		t.Errorf("a person's sign-in from the address whose apps failed: %v", err)
	} else {
		r.Cancel()
	}
	// A success does not forgive the address: one good password behind a
	// shared address must not wipe out an attacker's failures.
	if _, err := l.Secret(t.Context(), "192.0.2.9"); err != nil {
		t.Error(err)
	}
}

// IPv6 clients are throttled by their /64; IPv4-mapped IPv6 is IPv4.
func TestAddressKeys(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.1":                 "192.0.2.1",
		"::ffff:192.0.2.1":          "192.0.2.1",
		"2001:db8:1:2:3:4:5:6":      "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1":      "2001:db8:1:2::/64",
		"fe80::1%eth0":              "fe80::/64",
		"":                          "",
		"not an address ip=1.2.3.4": "",
	} {
		if got := throttle.Address(in); got != want {
			t.Errorf("Address(%q) = %q, want %q", in, got, want)
		}
	}
	l, _, _ := newLimiter(t, policy)
	for i := range 8 {
		failAt(t, l, throttle.Name("n"+string(rune('a'+i))), "2001:db8:1:2::"+string(rune('1'+i)))
	}
	if _, err := l.Secret(t.Context(), "2001:db8:1:2:dead:beef::1"); refusal(err) == nil {
		t.Error("another address of the same /64 is not throttled")
	}
	if _, err := l.Secret(t.Context(), "2001:db8:1:3::1"); err != nil {
		t.Errorf("the next /64: %v", err)
	}
}

// Login names are chosen by whoever sends them: any length and any bytes
// make a key the store accepts, and names that differ stay apart.
func TestLongNamesBounded(t *testing.T) {
	p := policy
	p.Address.Limit = 20
	l, _, s := newLimiter(t, p)
	long := strings.Repeat("x", 10000)
	for _, name := range []string{long, long + "y", "a\x00b", "#abc", "\x1b[31mred"} {
		failAt(t, l, throttle.Name(name), "192.0.2.1")
		failAt(t, l, throttle.Name(name), "192.0.2.1")
	}
	recs, err := s.GetThrottles(t.Context(), "a\x00192.0.2.1")
	if err != nil || len(recs[0].Failures) != 10 {
		t.Fatalf("address record: %+v %v", recs, err)
	}
	// Each name has its own two failures: the third is allowed.
	if r, err := l.Password(t.Context(), throttle.Name(long+"y"), "192.0.2.2", false); err != nil {
		t.Fatal(err)
	} else {
		r.Cancel()
	}
}

// Failures survive a restart: a new limiter on the same file refuses.
func TestFailuresSurviveRestart(t *testing.T) {
	c := testclock.At(t0)
	path := filepath.Join(t.TempDir(), "k.db")
	db, err := bolt.Open(path, bolt.Options{Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	l := throttle.New(db, policy, c.Now)
	for range 3 {
		failAt(t, l, throttle.User("alice"), "192.0.2.1")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s := openStore(t, path, c)
	l = throttle.New(s, policy, c.Now)
	if _, err := l.Password(t.Context(), throttle.User("alice"), "192.0.2.1", false); refusal(err) == nil {
		t.Fatal("the restart forgave the failures")
	}
}

// A success writes only when there is something to forgive: the sign-in
// path pays for no commit when nobody failed.
func TestCleanSuccessWritesNothing(t *testing.T) {
	l, _, s := newLimiter(t, policy)
	r, err := l.Password(t.Context(), throttle.User("alice"), "192.0.2.1", false)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Succeed(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := s.updates.Load(); n != 0 {
		t.Fatalf("a clean success wrote %d times", n)
	}
	failAt(t, l, throttle.User("alice"), "192.0.2.1")
	r, _ = l.Password(t.Context(), throttle.User("alice"), "192.0.2.1", false)
	if err := r.Succeed(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := s.updates.Load(); n != 2 {
		t.Fatalf("%d writes for a failure and a success after it, want 2", n)
	}
	recs, _ := s.GetThrottles(t.Context(), "pa\x00u\x00alice\x00192.0.2.1", "a\x00192.0.2.1")
	if !recs[0].Empty() || len(recs[1].Failures) != 1 {
		t.Errorf("after the success: %+v", recs)
	}
}

// Failures of made-up names leave no account-wide record in the store:
// below the threshold they are counted in memory only, for real accounts
// and made-up names alike; at the threshold the count is stored (and
// survives restarts from then on). The per-address windows are stored as
// ever, and leave the store with their window. Today every made-up name
// kept an account-wide record for the reset time (12 hours).
func TestBelowThresholdNotStored(t *testing.T) {
	p := policy
	p.Address.Limit = 1000
	l, c, s := newLimiter(t, p)
	for i := range 2000 {
		failAt(t, l, throttle.Name(fmt.Sprintf("made-up-%04d", i)), fmt.Sprintf("2001:db8:%x::1", i/500))
	}
	for i := range policy.Account.Failures - 1 {
		failAt(t, l, throttle.User("alice"), fmt.Sprintf("192.0.2.%d", i+1))
	}
	if n := s.wrote("p\x00"); n != 0 {
		t.Fatalf("%d account-wide records written below the threshold", n)
	}
	// Still counted: the threshold's failure stores the count and waits.
	trips := failAt(t, l, throttle.User("alice"), "192.0.2.99")
	if len(trips) != 1 || trips[0].Scope != throttle.ScopeAccount {
		t.Fatalf("the threshold's failure: %+v", trips)
	}
	recs, err := s.GetThrottles(t.Context(), "p\x00u\x00alice")
	if err != nil || recs[0].Rounds != 1 || !recs[0].LockedUntil.After(c.Now()) {
		t.Fatalf("alice's account-wide record: %+v %v", recs, err)
	}
	if n := s.wrote("p\x00"); n != 1 {
		t.Errorf("%d account-wide records written, want alice's", n)
	}
}

// brokenStore is a store whose throttle writes fail while broken is set
// (a full disk).
type brokenStore struct {
	throttle.Store
	broken atomic.Bool
}

func (s *brokenStore) UpdateThrottles(ctx context.Context, keys []string, fn func(storage.Throttle) (storage.Throttle, error)) error {
	if s.broken.Load() {
		return errors.New("write k.db: no space left on device")
	}
	return s.Store.UpdateThrottles(ctx, keys, fn)
}

// When failures cannot be written, the throttle fails closed: they are
// counted from memory until a write takes them along, so the limits hold
// while the disk is full, and nothing is lost when it is not. Today the
// reservation was released and the failure remembered nowhere: every
// guess was checked.
func TestFailuresCountedWhenWritesFail(t *testing.T) {
	c := testclock.At(t0)
	s := &brokenStore{Store: openStore(t, "", c)}
	l := throttle.New(s, policy, c.Now)
	s.broken.Store(true)
	checked := 0
	for range 50 {
		r, err := l.Password(t.Context(), throttle.User("alice"), "192.0.2.1", false)
		if refusal(err) != nil {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		checked++
		if _, err := r.Fail(t.Context()); err == nil {
			t.Fatal("a failed write reported no error")
		}
	}
	if checked != policy.AccountAddress.Limit {
		t.Fatalf("50 guesses while writes fail: %d checked, want the limit (%d)", checked, policy.AccountAddress.Limit)
	}
	// The account-wide count and the address's hold too.
	for i := range 8 {
		r, err := l.Password(t.Context(), throttle.Name(fmt.Sprintf("n%d", i)), "192.0.2.2", false)
		if err != nil {
			t.Fatalf("name %d: %v", i, err)
		}
		_, _ = r.Fail(t.Context())
	}
	if _, err := l.Password(t.Context(), throttle.Name("another"), "192.0.2.2", false); refusal(err) == nil || refusal(err).Scope != throttle.ScopeAddress {
		t.Fatalf("the 9th name from one address while writes fail: %v", err)
	}
	// The disk has room again: the next failure of a key takes the ones
	// in memory along.
	r, err := l.Password(t.Context(), throttle.User("bob"), "192.0.2.3", false)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = r.Fail(t.Context())
	s.broken.Store(false)
	r, err = l.Password(t.Context(), throttle.User("bob"), "192.0.2.3", false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Fail(t.Context()); err != nil {
		t.Fatal(err)
	}
	recs, err := s.GetThrottles(t.Context(), "pa\x00u\x00bob\x00192.0.2.3", "pa\x00u\x00alice\x00192.0.2.1")
	if err != nil || len(recs[0].Failures) != 2 {
		t.Fatalf("bob's record after the disk recovered: %+v %v, want both failures", recs, err)
	}
	// A restart forgets what was never written, but alice's failures are
	// still in memory here: refused.
	if _, err := l.Password(t.Context(), throttle.User("alice"), "192.0.2.1", false); refusal(err) == nil {
		t.Error("alice's unwritten failures were forgotten")
	}
}

// Retry-After counts whole seconds, rounded up, so a client that waits
// that long is let in; the portal and the token endpoint both say it so.
func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		time.Nanosecond: 1, time.Second: 1, time.Second + time.Nanosecond: 2, 14*time.Minute + 59*time.Second + time.Millisecond: 900,
	} {
		if got := throttle.RetryAfterSeconds(d); got != want {
			t.Errorf("RetryAfterSeconds(%s) = %d, want %d", d, got, want)
		}
	}
}

// hookedStore runs onRead (once) during the next throttle read, after the
// store has answered and before the answer reaches the limiter.
type hookedStore struct {
	throttle.Store
	onRead atomic.Pointer[func()]
}

func (s *hookedStore) GetThrottles(ctx context.Context, keys ...string) ([]storage.Throttle, error) {
	recs, err := s.Store.GetThrottles(ctx, keys...)
	if hook := s.onRead.Swap(nil); hook != nil {
		(*hook)()
	}
	return recs, err
}

// A reservation reads the store without the limiter's lock, so a slow
// read holds up nobody else. Today the read ran under the lock: while
// one reservation waited for the store, every other reservation, and
// every attempt's decision, waited for it.
func TestSlowReadHoldsUpNoOne(t *testing.T) {
	c := testclock.At(t0)
	s := &hookedStore{Store: openStore(t, "", c)}
	l := throttle.New(s, policy, c.Now)
	reading, finish := make(chan struct{}), make(chan struct{})
	hook := func() { close(reading); <-finish }
	s.onRead.Store(&hook)
	slow := make(chan error, 1)
	go func() {
		r, err := l.Password(context.Background(), throttle.User("alice"), "192.0.2.1", false)
		if err == nil {
			r.Cancel()
		}
		slow <- err
	}()
	<-reading
	other := make(chan error, 1)
	go func() {
		r, err := l.Password(context.Background(), throttle.User("bob"), "192.0.2.2", false)
		if err == nil {
			_, err = r.Fail(context.Background())
		}
		other <- err
	}()
	select {
	case err := <-other:
		if err != nil {
			t.Fatalf("bob's attempt during alice's read: %v", err)
		}
	case <-time.After(30 * time.Second): // a hang guard, not a speed limit
		close(finish)
		t.Fatal("bob's reservation waited for alice's store read")
	}
	close(finish)
	if err := <-slow; err != nil {
		t.Fatalf("alice's attempt: %v", err)
	}
}

// A failure that is written and leaves flight while a reservation reads
// the store (outside the lock) is in neither place that reservation
// looks: the read may have missed it, and it is no longer in flight. The
// reservation sees that a failure settled meanwhile and reads again, so
// the limit holds.
func TestFailureSettledDuringReadCounts(t *testing.T) {
	c := testclock.At(t0)
	s := &hookedStore{Store: openStore(t, "", c)}
	p := policy
	p.AccountAddress.Limit = 1
	l := throttle.New(s, p, c.Now)
	first, err := l.Password(t.Context(), throttle.User("alice"), "192.0.2.1", false)
	if err != nil {
		t.Fatal(err)
	}
	var failErr error
	hook := func() { _, failErr = first.Fail(context.Background()) }
	s.onRead.Store(&hook)
	_, err = l.Password(t.Context(), throttle.User("alice"), "192.0.2.1", false)
	if failErr != nil {
		t.Fatal(failErr)
	}
	if r := refusal(err); r == nil || r.Scope != throttle.ScopeAccountAddress {
		t.Fatalf("second guess after the first failed during its read: %v, want refused (%s)", err, throttle.ScopeAccountAddress)
	}
}

// A failure that reaches the account-wide threshold moves its count from
// the tally in memory to the store, and only then leaves flight. A
// reservation whose lock-free read began before that write, and which
// takes the lock back between the two, finds the failure in none of the
// places it looks (not in its read, no longer in the tally, still in
// flight but counted there as one attempt among the threshold's): it must
// read again, or it lets a guess past the wait the failure just imposed.
func TestThresholdFailureDuringReadCounts(t *testing.T) {
	c := testclock.At(t0)
	s := &hookedStore{Store: openStore(t, "", c)}
	p := throttle.Policy{Account: throttle.Backoff{Failures: 2, Wait: time.Minute, MaxWait: time.Hour, Reset: time.Hour}}
	l := throttle.New(s, p, c.Now)
	subj := throttle.Name("mallory")
	failAt(t, l, subj, "") // one below the threshold: the tally's
	second, err := l.Password(t.Context(), subj, "", false)
	if err != nil {
		t.Fatal(err)
	}
	// While the third reservation reads (without the lock), the second
	// fails: its write lands, its count leaves the tally, and it stops
	// just before leaving flight until the third has decided.
	written, decided := make(chan struct{}), make(chan struct{})
	defer throttle.SetBeforeFailReleased(func() { close(written); <-decided })()
	failed := make(chan error, 1)
	hook := func() {
		go func() { _, err := second.Fail(context.Background()); failed <- err }()
		<-written
	}
	s.onRead.Store(&hook)
	third, err := l.Password(t.Context(), subj, "", false)
	close(decided)
	if ferr := <-failed; ferr != nil {
		t.Fatal(ferr)
	}
	if err == nil {
		third.Cancel()
		t.Fatal("a guess was let in while the account waits after its threshold failure")
	}
	if r := refusal(err); r == nil || r.Scope != throttle.ScopeAccount {
		t.Fatalf("third guess: %v, want refused (%s)", err, throttle.ScopeAccount)
	}
}
