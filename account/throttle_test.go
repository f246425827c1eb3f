package account_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// throttleFixture is a service with every throttle setting, a settable
// clock, a captured log and one user, alice (accessPassword).
type throttleFixture struct {
	t     *testing.T
	ctx   context.Context
	mu    sync.Mutex
	now   time.Time
	svc   *account.Service
	db    storage.Store
	log   *syncBuffer
	alice storage.User
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var throttlePolicy = account.Policy{
	Argon2: testArgon, MinPasswordLength: 10, SessionLifetime: time.Hour, RecentAuth: 5 * time.Minute,
	TrustedDeviceLifetime:      24 * time.Hour,
	MaxLoginAttempts:           10,
	LoginWindow:                15 * time.Minute,
	MaxLoginAttemptsPerAddress: 1000,
	AccountLockoutFailures:     20,
	AccountLockoutWait:         time.Minute,
	AccountLockoutMaxWait:      15 * time.Minute,
	AccountLockoutReset:        12 * time.Hour,
	HashQueue:                  1000,
}

func newThrottleFixture(t *testing.T, p account.Policy) *throttleFixture {
	t.Helper()
	f := &throttleFixture{t: t, ctx: context.Background(), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), log: &syncBuffer{}}
	db, err := bolt.Open(filepath.Join(t.TempDir(), "k.db"), bolt.Options{Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	sealer, err := seal.New(bytes.Repeat([]byte{7}, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	if f.svc, err = account.New(db, sealer, p, f.clock, logger); err != nil {
		t.Fatal(err)
	}
	f.db = db
	if f.alice, err = f.svc.CreateUser(f.ctx, account.NewUser{Username: "alice", Email: "alice@example.com", Password: accessPassword}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *throttleFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *throttleFixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func (f *throttleFixture) signIn(login, password, ip string) error {
	_, err := f.svc.Authenticate(f.ctx, account.Credentials{Login: login, Password: password, IP: ip})
	return err
}

// checked counts the wrong passwords that were really checked: each leaves
// one entry in the history (refused attempts leave none).
func (f *throttleFixture) checked(userID string) int {
	f.t.Helper()
	as, err := f.db.ListLoginAttempts(f.ctx, userID, 0)
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, a := range as {
		if !a.Success {
			n++
		}
	}
	return n
}

// 100 parallel wrong guesses with a limit of 10: at most 10 are checked,
// the rest are refused before hashing and told how long to wait. Today's
// code checked all of them.
func TestParallelGuessesAreReserved(t *testing.T) {
	f := newThrottleFixture(t, throttlePolicy)
	errs := make([]error, 100)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = f.signIn("alice", fmt.Sprintf("guess number %d", i), "192.0.2.1")
		})
	}
	close(start)
	wg.Wait()
	wrong, limited := 0, 0
	for _, err := range errs {
		switch account.ErrorCode(err) {
		case account.Unauthorized:
			wrong++
		case account.RateLimited:
			limited++
			if account.RetryAfter(err) < time.Second {
				t.Errorf("refused without a wait: %v", err)
			}
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if wrong > 10 || wrong+limited != 100 || f.checked(f.alice.ID) != wrong {
		t.Errorf("%d checked (%d in the history), %d refused; want at most 10 checked", wrong, f.checked(f.alice.ID), limited)
	}
	// Once the 10 are in, the owner's right password from there waits too.
	if err := f.signIn("alice", accessPassword, "192.0.2.1"); account.ErrorCode(err) != account.RateLimited || account.RetryAfter(err) != 15*time.Minute {
		t.Errorf("right password from the attacking address: %v (%s)", err, account.RetryAfter(err))
	}
	// The owner elsewhere is not held back.
	if err := f.signIn("alice", accessPassword, "198.51.100.7"); err != nil {
		t.Errorf("the owner from another address: %v", err)
	}
}

// Names that do not exist are throttled exactly like real ones: the same
// answer, with the same wait, at every attempt.
func TestUnknownNamesThrottledAlike(t *testing.T) {
	f := newThrottleFixture(t, throttlePolicy)
	for i := range 13 {
		errReal := f.signIn("alice", fmt.Sprintf("guess %d", i), "192.0.2.1")
		errNone := f.signIn("nobody-here", fmt.Sprintf("guess %d", i), "192.0.2.2")
		if errReal.Error() != errNone.Error() || account.ErrorCode(errReal) != account.ErrorCode(errNone) || account.RetryAfter(errReal) != account.RetryAfter(errNone) {
			t.Fatalf("attempt %d: %v (%s) for a real name, %v (%s) for an unknown one", i+1,
				errReal, account.RetryAfter(errReal), errNone, account.RetryAfter(errNone))
		}
		f.advance(time.Second)
	}
	// And under any spelling of the name.
	if err := f.signIn("NOBODY-HERE", "guess", "192.0.2.2"); account.ErrorCode(err) != account.RateLimited {
		t.Errorf("unknown name in capitals: %v", err)
	}
}

// The account as a whole waits after rounds of failures from anywhere,
// growing each round; the owner's remembered device and signed-in session
// are not held back; a success forgets.
func TestAccountWaitGrowsAndSparesTheOwner(t *testing.T) {
	p := throttlePolicy
	p.AccountLockoutFailures = 5
	f := newThrottleFixture(t, p)
	device, err := f.svc.TrustDevice(f.ctx, f.alice, "198.51.100.7", "owner's browser")
	if err != nil {
		t.Fatal(err)
	}
	attacker := 0
	round := func(want time.Duration) {
		t.Helper()
		for range 5 {
			attacker++
			if err := f.signIn("alice", "guess", fmt.Sprintf("203.0.113.%d", attacker)); account.ErrorCode(err) != account.Unauthorized {
				t.Fatalf("guess %d: %v", attacker, err)
			}
		}
		err := f.signIn("alice", accessPassword, "198.51.100.7")
		if account.ErrorCode(err) != account.RateLimited || account.RetryAfter(err) != want {
			t.Fatalf("owner without the device: %v (%s), want to wait %s", err, account.RetryAfter(err), want)
		}
		f.advance(want - time.Second)
		if err := f.signIn("alice", accessPassword, "198.51.100.7"); account.ErrorCode(err) != account.RateLimited || account.RetryAfter(err) != time.Second {
			t.Fatalf("a second before the end: %v", err)
		}
		f.advance(time.Second)
	}
	round(time.Minute)
	round(2 * time.Minute)
	round(4 * time.Minute)

	// During a wait: the remembered device gets in with the password; a
	// forged or other account's cookie does not help.
	for range 5 {
		attacker++
		_ = f.signIn("alice", "guess", fmt.Sprintf("203.0.113.%d", attacker))
	}
	with := func(proof string) error {
		_, err := f.svc.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: accessPassword, IP: "198.51.100.7", DeviceProof: proof})
		return err
	}
	if err := with("not a device"); account.ErrorCode(err) != account.RateLimited {
		t.Fatalf("a made-up device cookie: %v", err)
	}
	// A signed-in owner confirming their password is not held back either.
	if err := f.svc.VerifyCurrentPassword(f.ctx, f.alice, accessPassword, "198.51.100.7", ""); err != nil {
		t.Fatalf("confirmation during the wait: %v", err)
	}
	if err := with(device); err != nil {
		t.Fatalf("the remembered device during the wait: %v", err)
	}
	// The success forgave the rounds: the next one starts at a minute.
	round(time.Minute)
}

// The hash gate: with one hash at a time and no queue, parallel sign-ins
// beyond it are refused at once as Unavailable with a wait, and count as
// no failure.
func TestHashGateRefusesSurplus(t *testing.T) {
	p := throttlePolicy
	p.HashConcurrency, p.HashQueue = 1, -1
	f := newThrottleFixture(t, p)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range errs {
		wg.Go(func() {
			<-start
			errs[i] = f.signIn(fmt.Sprintf("name%d", i), "guess", "192.0.2.1")
		})
	}
	close(start)
	wg.Wait()
	busy := 0
	for _, err := range errs {
		switch account.ErrorCode(err) {
		case account.Unavailable:
			busy++
			if account.RetryAfter(err) < time.Second {
				t.Errorf("busy without a wait: %v", err)
			}
		case account.Unauthorized:
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if busy == 0 {
		t.Error("eight parallel hashes through a gate of one: none refused")
	}
	// Refused for being busy is not a failure: ten more guesses of one
	// name are still allowed from that address.
	for i := range 10 {
		if err := f.signIn("name0", "guess", "192.0.2.1"); account.ErrorCode(err) != account.Unauthorized {
			t.Fatalf("guess %d after the busy refusals: %v", i, err)
		}
	}
	// Password changes go through the gate too (here: one at a time, so it works).
	if err := f.svc.SetPassword(f.ctx, "alice", "another long password"); err != nil {
		t.Fatal(err)
	}
}

// Every failure is one WARN line of a fixed shape, with the address before
// anything the caller chose, and the login name cleaned and cut; a trip
// adds a line.
func TestFailuresLogged(t *testing.T) {
	p := throttlePolicy
	p.MaxLoginAttempts = 2
	f := newThrottleFixture(t, p)
	evil := "x\" client_ip=203.0.113.9 reason=\"\n" + strings.Repeat("é", 100)
	_ = f.signIn(evil, "guess", "192.0.2.1")
	_ = f.signIn(evil, "guess", "192.0.2.1")
	_ = f.signIn(evil, "guess", "192.0.2.1") // refused: not a failure line
	lines := strings.Split(strings.TrimSpace(f.log.String()), "\n")
	var failed, tripped []string
	for _, l := range lines {
		switch {
		case strings.Contains(l, `msg="sign-in failed"`):
			failed = append(failed, l)
		case strings.Contains(l, `msg="sign-in throttled"`):
			tripped = append(tripped, l)
		}
	}
	if len(failed) != 2 || len(tripped) != 1 {
		t.Fatalf("%d failure and %d trip lines:\n%s", len(failed), len(tripped), f.log)
	}
	wantLogin := `login="x\" client_ip=203.0.113.9 reason=\"` + strings.Repeat("é", 64-len(`x" client_ip=203.0.113.9 reason="`)) + `…"`
	if !strings.Contains(failed[0], `level=WARN msg="sign-in failed" client_ip=192.0.2.1 method=pwd `+wantLogin+` reason="unknown account"`) {
		t.Errorf("failure line:\n%s\nwant the address first and %s", failed[0], wantLogin)
	}
	if !strings.Contains(tripped[0], `level=WARN msg="sign-in throttled" client_ip=192.0.2.1 method=pwd `) || !strings.Contains(tripped[0], "limit=account_address retry_after=15m0s") {
		t.Errorf("trip line:\n%s", tripped[0])
	}
}

// A login name is looked up and throttled under one normalisation: ten
// failures on " NAME " use up NAME's budget whether NAME exists or not,
// and the right password with spaces around the name is the account's.
// Today the lookup kept the spaces (no account) while the throttle trimmed
// them, so only a name that did not exist lost its budget: an oracle.
func TestSpacesAroundNameTellNothing(t *testing.T) {
	f := newThrottleFixture(t, throttlePolicy)
	if err := f.signIn("  Alice ", accessPassword, "192.0.2.4"); err != nil {
		t.Errorf("the right password, spaces around the name: %v", err)
	}
	probe := func(name, ip string) account.Code {
		for i := range 10 {
			if err := f.signIn(" "+strings.ToUpper(name)+" ", "some guess", ip); account.ErrorCode(err) != account.Unauthorized {
				t.Fatalf("%q, failure %d: %v", name, i+1, err)
			}
		}
		return account.ErrorCode(f.signIn(name, "some guess", ip))
	}
	known, unknown := probe("alice", "192.0.2.1"), probe("nobody", "192.0.2.2")
	if known != account.RateLimited || unknown != account.RateLimited {
		t.Errorf("after 10 failures of \" NAME \": an existing NAME answers %s, an unknown one %s; want both throttled", known, unknown)
	}
	// Basic, the same.
	for i := range 10 {
		_, _, _ = f.svc.VerifyBasic(f.ctx, " Alice ", fmt.Sprintf("guess %d", i), "192.0.2.3", "", "")
	}
	if _, _, err := f.svc.VerifyBasic(f.ctx, "alice", accessPassword, "192.0.2.3", "", ""); account.ErrorCode(err) != account.RateLimited {
		t.Errorf("Basic after 10 failures of \" Alice \": %v", err)
	}
}
