package account_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
)

// throttleFixture is a service with every throttle setting, a settable
// clock, a captured log and one user, alice (accessPassword).
type throttleFixture struct {
	t     *testing.T
	ctx   context.Context
	clock *testclock.Clock
	svc   *account.Service
	db    storage.Store
	log   *testlog.Buffer
	alice storage.User
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
	f := &throttleFixture{t: t, ctx: context.Background(), clock: testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)), log: &testlog.Buffer{}}
	logger := slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelInfo}))
	f.svc, f.db = account.NewTestService(t, account.TestServiceOptions{Policy: p, Now: f.clock.Now, Log: logger})
	var err error
	if f.alice, err = f.svc.Users.CreateUser(f.ctx, account.NewUser{Username: "alice", Email: "alice@example.com", Password: accessPassword}); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *throttleFixture) advance(d time.Duration) { f.clock.Add(d) }

func (f *throttleFixture) signIn(login, password, ip string) error {
	_, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: login, Password: password, IP: ip})
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

// The account as a whole waits once it has failed the threshold's number
// of times from anywhere, after every further failure, longer each round;
// the owner's remembered device and signed-in session are not held back;
// a success forgets.
func TestAccountWaitGrowsAndSparesTheOwner(t *testing.T) {
	p := throttlePolicy
	p.AccountLockoutFailures = 5
	f := newThrottleFixture(t, p)
	device, err := f.svc.Credentials.TrustDevice(f.ctx, f.alice, "198.51.100.7", "owner's browser")
	if err != nil {
		t.Fatal(err)
	}
	bob, err := f.svc.Users.CreateUser(f.ctx, account.NewUser{Username: "bob", Email: "bob@example.com", Password: accessPassword})
	if err != nil {
		t.Fatal(err)
	}
	bobsDevice, err := f.svc.Credentials.TrustDevice(f.ctx, bob, "198.51.100.8", "bob's browser")
	if err != nil {
		t.Fatal(err)
	}
	attacker := 0
	guess := func() {
		t.Helper()
		attacker++
		if err := f.signIn("alice", "guess", fmt.Sprintf("203.0.113.%d", attacker)); account.ErrorCode(err) != account.Unauthorized {
			t.Fatalf("guess %d: %v", attacker, err)
		}
	}
	ownerWaits := func(want time.Duration) {
		t.Helper()
		err := f.signIn("alice", accessPassword, "198.51.100.7")
		if account.ErrorCode(err) != account.RateLimited || account.RetryAfter(err) != want {
			t.Fatalf("owner without the device after guess %d: %v (%s), want to wait %s", attacker, err, account.RetryAfter(err), want)
		}
		f.advance(want - time.Second)
		if err := f.signIn("alice", accessPassword, "198.51.100.7"); account.ErrorCode(err) != account.RateLimited || account.RetryAfter(err) != time.Second {
			t.Fatalf("a second before the end: %v", err)
		}
		f.advance(time.Second)
	}
	for range 4 {
		guess()
	}
	guess()
	ownerWaits(time.Minute) // the threshold: round 1
	for range 4 {
		guess()
		ownerWaits(time.Minute) // every failure past it: still round 1
	}
	guess()
	ownerWaits(2 * time.Minute) // 10 failures: round 2

	// During a wait: the remembered device gets in with the password; a
	// made-up cookie or another account's real one does not help.
	guess()
	with := func(proof string) error {
		_, err := f.svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: accessPassword, IP: "198.51.100.7", DeviceProof: proof})
		return err
	}
	if err := with("not a device"); account.ErrorCode(err) != account.RateLimited {
		t.Fatalf("a made-up device cookie: %v", err)
	}
	if err := with(bobsDevice); account.ErrorCode(err) != account.RateLimited {
		t.Fatalf("another account's remembered device: %v", err)
	}
	// A signed-in owner confirming their password is not held back either.
	if err := f.svc.Credentials.VerifyCurrentPassword(f.ctx, f.alice, accessPassword, "198.51.100.7", ""); err != nil {
		t.Fatalf("confirmation during the wait: %v", err)
	}
	if err := with(device); err != nil {
		t.Fatalf("the remembered device during the wait: %v", err)
	}
	// The success forgave the count: the threshold again, then a minute.
	for range 4 {
		guess()
	}
	if err := f.signIn("alice", accessPassword, "198.51.100.7"); err != nil {
		t.Fatalf("below the threshold after the success: %v", err)
	}
	for range 5 {
		guess()
	}
	ownerWaits(time.Minute)
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
	busy, refusedName := 0, ""
	for i, err := range errs {
		switch account.ErrorCode(err) {
		case account.Unavailable:
			busy++
			refusedName = fmt.Sprintf("name%d", i)
			if account.RetryAfter(err) < time.Second {
				t.Errorf("busy without a wait: %v", err)
			}
		case account.Unauthorized:
		default:
			t.Errorf("unexpected: %v", err)
		}
	}
	if busy == 0 {
		t.Fatal("eight parallel hashes through a gate of one: none refused")
	}
	// Refused for being busy is not a failure: ten more guesses of a name
	// that was refused are still allowed from that address.
	for i := range 10 {
		if err := f.signIn(refusedName, "guess", "192.0.2.1"); account.ErrorCode(err) != account.Unauthorized {
			t.Fatalf("guess %d after the busy refusals: %v", i, err)
		}
	}
	// Password changes go through the gate too (here: one at a time, so it works).
	if err := f.svc.Users.SetPassword(f.ctx, "alice", "another long password"); err != nil {
		t.Fatal(err)
	}
}

// Every failure is one WARN line of a fixed shape, with the address and
// the network it is throttled as (the /64 of an IPv6 address) before
// anything the caller chose, and the login name cleaned and cut; a trip
// adds a line; a refusal is one INFO line of its own, its message
// constant. Today refusals were logged only at DEBUG, and no line said
// which /64 was throttled.
func TestFailuresLogged(t *testing.T) {
	p := throttlePolicy
	p.MaxLoginAttempts = 2
	f := newThrottleFixture(t, p)
	evil := "x\" client_ip=203.0.113.9 reason=\"\n" + strings.Repeat("é", 100)
	_ = f.signIn(evil, "guess", "192.0.2.1")
	_ = f.signIn(evil, "guess", "192.0.2.1")
	_ = f.signIn(evil, "guess", "192.0.2.1") // refused: not a failure line
	_ = f.signIn("alice", "guess", "2001:db8:1:2::7")
	lines := strings.Split(strings.TrimSpace(f.log.String()), "\n")
	var failed, tripped, refused []string
	for _, l := range lines {
		switch {
		case strings.Contains(l, `msg="sign-in failed"`):
			failed = append(failed, l)
		case strings.Contains(l, `msg="sign-in throttled"`):
			tripped = append(tripped, l)
		case strings.Contains(l, `msg="sign-in refused: throttled"`):
			refused = append(refused, l)
		}
	}
	if len(failed) != 3 || len(tripped) != 1 || len(refused) != 1 {
		t.Fatalf("%d failure, %d trip and %d refusal lines:\n%s", len(failed), len(tripped), len(refused), f.log)
	}
	wantLogin := `login="x\" client_ip=203.0.113.9 reason=\"` + strings.Repeat("é", 64-len(`x" client_ip=203.0.113.9 reason="`)) + `…"`
	if !strings.Contains(failed[0], `level=WARN msg="sign-in failed" client_ip=192.0.2.1 client_net=192.0.2.1 method=pwd `+wantLogin+` reason="unknown account"`) {
		t.Errorf("failure line:\n%s\nwant the address first and %s", failed[0], wantLogin)
	}
	if !strings.Contains(tripped[0], `level=WARN msg="sign-in throttled" client_ip=192.0.2.1 client_net=192.0.2.1 method=pwd `) || !strings.Contains(tripped[0], "limit=account_address retry_after=15m0s") {
		t.Errorf("trip line:\n%s", tripped[0])
	}
	if !strings.Contains(refused[0], `level=INFO msg="sign-in refused: throttled" client_ip=192.0.2.1 client_net=192.0.2.1 method=pwd `+wantLogin+` limit=account_address retry_after=15m0s`) {
		t.Errorf("refusal line:\n%s", refused[0])
	}
	if !strings.Contains(failed[2], `level=WARN msg="sign-in failed" client_ip=2001:db8:1:2::7 client_net=2001:db8:1:2::/64 method=pwd login=alice reason="wrong password"`) {
		t.Errorf("IPv6 failure line:\n%s", failed[2])
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
		_, _, _ = f.svc.SignIn.VerifyBasic(f.ctx, " Alice ", fmt.Sprintf("guess %d", i), "192.0.2.3", "", "")
	}
	if _, _, err := f.svc.SignIn.VerifyBasic(f.ctx, "alice", accessPassword, "192.0.2.3", "", ""); account.ErrorCode(err) != account.RateLimited {
		t.Errorf("Basic after 10 failures of \" Alice \": %v", err)
	}
}

// parallelCodes runs n calls at once and counts their answers by code
// ("ok" for no error).
func parallelCodes(n int, call func(i int) error) map[account.Code]int {
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = call(i)
		})
	}
	close(start)
	wg.Wait()
	byCode := map[account.Code]int{}
	for _, err := range errs {
		if err == nil {
			byCode["ok"]++
		} else {
			byCode[account.ErrorCode(err)]++
		}
	}
	return byCode
}

// The right secret on many parallel requests from one address is never
// refused: app passwords and API tokens (looked up first, accepted
// whatever the throttle says), and the account password through Basic and
// the form (parallel checks of one password are one guess, hashed once,
// so neither the reservations nor the hash gate turn the owner away).
// Today 85-90% of parallel right app passwords were refused as throttled.
func TestParallelRightSecretsNotRefused(t *testing.T) {
	p := throttlePolicy
	p.MaxLoginAttemptsPerAddress = 100                                               // the default
	p.HashConcurrency, p.HashQueue = 1, -1                                           // one hash at a time, no queue
	p.Argon2 = account.Argon2Params{MemoryKiB: 1024, Iterations: 20, Parallelism: 1} // a hash that takes a while
	f := newThrottleFixture(t, p)
	appPassword, _, err := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "dav", "")
	if err != nil {
		t.Fatal(err)
	}
	token, _, err := f.svc.Credentials.CreateAPIToken(f.ctx, f.alice, account.NewAPIToken{Name: "ci", Scope: account.ScopeReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	const ip = "198.51.100.7"
	for _, try := range []struct {
		what string
		n    int
		call func() error
	}{
		{"app password (Basic)", 200, func() error {
			_, _, err := f.svc.SignIn.VerifyBasic(f.ctx, "alice", appPassword, ip, "", "")
			return err
		}},
		{"API token", 400, func() error {
			_, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, token, ip, "")
			return err
		}},
		{"account password (Basic)", 40, func() error {
			_, _, err := f.svc.SignIn.VerifyBasic(f.ctx, "alice", accessPassword, ip, "", "")
			return err
		}},
		{"account password (form)", 40, func() error { return f.signIn("alice", accessPassword, ip) }},
	} {
		got := parallelCodes(try.n, func(int) error { return try.call() })
		t.Logf("%d parallel requests, %s: %v", try.n, try.what, got)
		if got["ok"] != try.n {
			t.Errorf("%d parallel requests with the right %s: %v", try.n, try.what, got)
		}
	}
}

// Misses of secrets nobody can guess are still counted and refused once
// over the limit: 100 parallel made-up app passwords or API tokens from
// one address, at most the limit counted (logged), the rest refused.
func TestParallelMissesLimited(t *testing.T) {
	p := throttlePolicy
	p.MaxLoginAttemptsPerAddress = 20
	f := newThrottleFixture(t, p)
	got := parallelCodes(100, func(i int) error {
		_, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, fmt.Sprintf("%smade-up-%03d", account.APITokenPrefix, i), "192.0.2.9", "")
		return err
	})
	logged := strings.Count(f.log.String(), `msg="sign-in failed" client_ip=192.0.2.9 client_net=192.0.2.9 method=api_token`)
	if got[account.Unauthorized] > 20 || got[account.Unauthorized] != logged || got[account.Unauthorized]+got[account.RateLimited] != 100 {
		t.Errorf("100 parallel made-up API tokens, 20 allowed per address: %v, %d logged", got, logged)
	}
	got = parallelCodes(100, func(i int) error {
		_, _, err := f.svc.SignIn.VerifyBasic(f.ctx, "alice", fmt.Sprintf("made-up-app-password-%03d", i), "192.0.2.10", "", "")
		return err
	})
	logged = strings.Count(f.log.String(), `msg="sign-in failed" client_ip=192.0.2.10 client_net=192.0.2.10 method=pwd login=alice reason="wrong password"`)
	if got[account.Unauthorized] > 10 || got[account.Unauthorized] != logged || got[account.Unauthorized]+got[account.RateLimited] != 100 {
		t.Errorf("100 parallel made-up app passwords, 10 allowed per account and address: %v, %d logged", got, logged)
	}
}

// During an account-wide wait, app-password guesses through Basic are
// counted and logged like any failure, so one address gets at most its
// limit of them; the right app password still gets in. Today they were
// looked up but never counted nor logged: 199 guesses from one address.
func TestAppPasswordMissesCountedDuringWait(t *testing.T) {
	p := throttlePolicy
	p.AccountLockoutFailures = 5
	f := newThrottleFixture(t, p)
	secret, _, err := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "dav", "")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		_ = f.signIn("alice", "guess", fmt.Sprintf("203.0.113.%d", i+1))
	}
	const attacker = "198.51.100.99"
	got := map[account.Code]int{}
	for i := range 199 {
		_, _, err := f.svc.SignIn.VerifyBasic(f.ctx, "alice", fmt.Sprintf("wrong-app-password-%03d", i), attacker, "", "")
		got[account.ErrorCode(err)]++
		if account.RetryAfter(err) <= 0 {
			t.Fatalf("guess %d during the wait: %v without a wait", i+1, err)
		}
	}
	warn := strings.Count(f.log.String(), `level=WARN msg="sign-in failed" client_ip=`+attacker+` client_net=`+attacker+` method=app_password login=alice reason="wrong app password"`)
	t.Logf("199 app-password guesses from one address during the account-wide wait: %v, %d logged as failures", got, warn)
	if got[account.RateLimited] != 199 || warn != p.MaxLoginAttempts {
		t.Errorf("%v; %d failures logged, want the limit (%d)", got, warn, p.MaxLoginAttempts)
	}
	if recs := f.checked(f.alice.ID); recs != 5+p.MaxLoginAttempts {
		t.Errorf("%d failures in the history, want %d", recs, 5+p.MaxLoginAttempts)
	}
	if _, method, err := f.svc.SignIn.VerifyBasic(f.ctx, "alice", secret, attacker, "", ""); err != nil || method != "app_password" {
		t.Errorf("the right app password during the wait: %s %v", method, err)
	}
}

// People's failed passwords behind one address (an office's NAT) use up
// that address's budget for sign-ins, but a valid API token and the right
// app password from there still get in: they are found, and nobody
// guesses them. Today both were refused with the address.
func TestOfficeAddressKeepsItsTokens(t *testing.T) {
	p := throttlePolicy
	p.MaxLoginAttemptsPerAddress = 20
	f := newThrottleFixture(t, p)
	token, _, err := f.svc.Credentials.CreateAPIToken(f.ctx, f.alice, account.NewAPIToken{Name: "ci", Scope: account.ScopeReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	appPassword, _, err := f.svc.Credentials.CreateAppPassword(f.ctx, f.alice, "dav", "")
	if err != nil {
		t.Fatal(err)
	}
	const office = "192.0.2.50"
	for i := range 20 {
		if err := f.signIn(fmt.Sprintf("colleague%d", i), "mistyped", office); account.ErrorCode(err) != account.Unauthorized {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if err := f.signIn("someone", "mistyped", office); account.ErrorCode(err) != account.RateLimited {
		t.Fatalf("the 21st failure from the office: %v", err)
	}
	if _, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, token, office, ""); err != nil {
		t.Errorf("a valid API token from the office: %v", err)
	}
	if _, _, err := f.svc.SignIn.VerifyBasic(f.ctx, "alice", appPassword, office, "", ""); err != nil {
		t.Errorf("the right app password from the office: %v", err)
	}
	if _, _, err := f.svc.Credentials.AuthenticateAPIToken(f.ctx, account.APITokenPrefix+"made-up", office, ""); account.ErrorCode(err) != account.RateLimited {
		t.Errorf("a made-up API token from the office: %v", err)
	}
}

// failingThrottleWrites is a store whose throttle writes fail (a full
// disk); everything else works.
type failingThrottleWrites struct {
	account.Store
}

func (failingThrottleWrites) UpdateThrottles(context.Context, []string, func(storage.Throttle) (storage.Throttle, error)) error {
	return errors.New("write /data/keyport.db: no space left on device")
}

// When failures cannot be written, the throttle fails closed: 50 wrong
// passwords from one address while the disk is full, at most the limit
// checked. Today every one of them was checked (the reservation was let
// go, and the failure remembered nowhere).
func TestFailClosedWhenWritesFail(t *testing.T) {
	f := newThrottleFixture(t, throttlePolicy)
	svc, _ := account.NewTestService(t, account.TestServiceOptions{Policy: throttlePolicy, Now: f.clock.Now, Store: f.db,
		Wrap: func(st account.Store) account.Store { return failingThrottleWrites{st} }})
	got := map[account.Code]int{}
	for i := range 50 {
		_, err := svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: fmt.Sprintf("guess %d", i), IP: "192.0.2.1"})
		got[account.ErrorCode(err)]++
	}
	t.Logf("50 wrong passwords from one address while throttle writes fail: %v", got)
	if got[account.Unauthorized] != throttlePolicy.MaxLoginAttempts || got[account.RateLimited] != 50-throttlePolicy.MaxLoginAttempts {
		t.Errorf("%v; want the limit (%d) checked, the rest refused", got, throttlePolicy.MaxLoginAttempts)
	}
}

// failingThrottleReads is a store whose throttle reads fail (a damaged
// file, a lost database connection); everything else works.
type failingThrottleReads struct {
	account.Store
}

func (failingThrottleReads) GetThrottles(context.Context, ...string) ([]storage.Throttle, error) {
	return nil, errors.New("read /data/keyport.db: input/output error")
}

// When the throttle cannot read what failed before, it cannot tell
// whether a guess is allowed: the sign-in is refused before the password
// is checked (fail closed), the right password as well as a wrong one,
// and the answer is Internal, not "wrong password", which would tell the
// guesser that the password was checked.
func TestFailClosedWhenThrottleReadFails(t *testing.T) {
	f := newThrottleFixture(t, throttlePolicy)
	svc, _ := account.NewTestService(t, account.TestServiceOptions{Policy: throttlePolicy, Now: f.clock.Now, Store: f.db,
		Wrap: func(st account.Store) account.Store { return failingThrottleReads{st} }})
	for name, password := range map[string]string{"right": accessPassword, "wrong": "a wrong password"} {
		_, err := svc.SignIn.Authenticate(f.ctx, account.Credentials{Login: "alice", Password: password, IP: "192.0.2.1"})
		if err == nil || account.ErrorCode(err) != account.Internal || !strings.Contains(err.Error(), "input/output error") {
			t.Errorf("%s password while throttle reads fail: %v, want Internal with the cause", name, err)
		}
	}
	if n := f.checked(f.alice.ID); n != 0 {
		t.Errorf("%d passwords checked while throttle reads fail, want none", n)
	}
	u, err := f.db.GetUser(f.ctx, f.alice.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.LoginsCount != 0 || !u.LastLogin.IsZero() {
		t.Errorf("alice signed in while throttle reads fail: %d sign-ins, last %s", u.LoginsCount, u.LastLogin)
	}
}

// countingDeviceReads counts the lookups of credentials by hash (how a
// remembered-device cookie is found).
type countingDeviceReads struct {
	account.Store
	mu    sync.Mutex
	reads int
}

func (s *countingDeviceReads) GetCredentialByHash(ctx context.Context, hash string) (storage.Credential, error) {
	s.mu.Lock()
	s.reads++
	s.mu.Unlock()
	return s.Store.GetCredentialByHash(ctx, hash)
}

func (s *countingDeviceReads) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reads
}

// A browser sign-in with a remembered device reads the device once, when
// the second factor is decided (DeviceTrusted): the password step looks
// it up only when the account-wide wait would refuse the attempt, the one
// case where the device changes anything there. Today the password step
// read it on every sign-in, and DeviceTrusted read it again.
func TestRememberedDeviceReadOncePerSignIn(t *testing.T) {
	f := newThrottleFixture(t, throttlePolicy)
	proof, err := f.svc.Credentials.TrustDevice(f.ctx, f.alice, "198.51.100.7", "test")
	if err != nil {
		t.Fatal(err)
	}
	st := &countingDeviceReads{Store: f.db.(account.Store)}
	svc, _ := account.NewTestService(t, account.TestServiceOptions{Policy: throttlePolicy, Now: f.clock.Now, Store: f.db,
		Wrap: func(account.Store) account.Store { return st }})
	c := account.Credentials{Login: "alice", Password: accessPassword, IP: "198.51.100.7", DeviceProof: proof}
	u, _, err := svc.SignIn.PasswordStep(f.ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	if !svc.Credentials.DeviceTrusted(f.ctx, u, proof, c.IP) {
		t.Fatal("the remembered device is not trusted")
	}
	if n := st.count(); n != 1 {
		t.Errorf("a sign-in with a remembered device read it %d times, want once", n)
	}
}
