// Package throttle refuses guesses of secrets (passwords, one-time codes,
// client secrets, tokens) before they are checked, once too many have failed.
//
// The policy follows Keycloak's brute-force detection and Authelia's
// regulation, arranged so that throttling cannot be turned against the
// people it protects:
//
//   - one account (or login name) from one client address, and one client
//     address whatever it tries, each get a sliding window: at most Limit
//     failures in any stretch of Window, every failure counting for exactly
//     Window after it happened (Authelia's max_retries and find_time, per
//     user and per IP as in its regulation modes);
//   - the account as a whole, failures from anywhere, gets Keycloak's
//     brute-force detection: once it has failed a number of times (failure
//     factor), every further failure brings a wait (growing with the count,
//     up to a max wait), until a quiet period (failure reset time) or a
//     success forgets the count. That checks about one guess per max wait,
//     instead of one long lockout that anyone could trigger;
//   - whoever proves they hold something of the account's (a remembered
//     device) is not held back by that account-wide wait.
//
// Failures live in the store, so they survive restarts and are shared by
// replicas; only account-wide counts below their threshold are kept in a
// bounded tally in memory (tally.go), so that names nobody has leave
// nothing in the database. Checks in flight are reserved in memory on top
// of them: a check must reserve its attempt first, so parallel guesses
// cannot all slip in before the first failure is written.
package throttle

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"

	"github.com/keyport/keyport/storage"
)

// Store is the part of storage the throttle needs.
type Store interface {
	storage.Throttles
}

// Window allows at most Limit failures in any stretch of Window. Limit 0
// turns it off.
type Window struct {
	Limit  int
	Window time.Duration
}

// Backoff makes a key wait once it has Failures failures, as Keycloak's
// brute-force detection does: every failure at or past that threshold
// imposes a wait, so from then on one guess is checked per wait. The wait
// grows with the rounds of failures (the count divided by Failures): Wait
// in the first round, doubling with each further round up to MaxWait. The
// count goes on until Reset passes without a failure, or a success; a
// wait ending does not forget it. Failures 0 turns it off.
type Backoff struct {
	Failures int
	Wait     time.Duration
	MaxWait  time.Duration
	Reset    time.Duration
}

// count is the key's failures: from the threshold on, the stored record
// has them (Failures-1, plus one per wait imposed: Rounds); below it,
// only the tally in memory does (below).
func (b Backoff) count(t storage.Throttle, below int) int {
	if t.Rounds == 0 {
		return below
	}
	return b.Failures - 1 + t.Rounds
}

// wait is the wait imposed by round n (1, 2, …).
func (b Backoff) wait(round int) time.Duration {
	w := b.Wait
	for i := 1; i < round && w < b.MaxWait; i++ {
		w *= 2
	}
	return min(w, b.MaxWait)
}

// Policy is every limit in force.
type Policy struct {
	// AccountAddress limits one account (or login name, or client, or an
	// account's one-time codes) from one client address.
	AccountAddress Window
	// Address limits one client address, whatever people there try
	// (passwords, one-time codes, app passwords, API tokens).
	Address Window
	// ClientAddress limits one client address's client authentications
	// (apps' secrets), apart from people's sign-ins: a busy office's
	// mistyped passwords must not stop its apps.
	ClientAddress Window
	// Account makes an account wait after rounds of failures from anywhere.
	Account Backoff
}

// Scope names what a limit applies to, in refusals and log lines.
type Scope string

const (
	ScopeAccountAddress Scope = "account_address" // an account (or name) from one address
	ScopeAddress        Scope = "address"         // a client address
	ScopeAccount        Scope = "account"         // an account from anywhere
	ScopeCodes          Scope = "codes"           // an account's one-time codes
	ScopeClientAddress  Scope = "client_address"  // a client (app) from one address
	ScopeClientsAddress Scope = "clients_address" // every client (app) from one address
	ScopeStore          Scope = "store"           // everything: failures cannot be remembered
)

// Refused is the error for an attempt that is not allowed now.
type Refused struct {
	Scope      Scope
	RetryAfter time.Duration // at least a second
}

// RetryAfterSeconds is d as Retry-After says it (RFC 9110 §10.2.3): in
// whole seconds, rounded up, so a client that waits that long is let in.
func RetryAfterSeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

func (e *Refused) Error() string {
	return fmt.Sprintf("throttled (%s): retry after %s", e.Scope, e.RetryAfter)
}

// Trip says a limit was reached by the failure just recorded.
type Trip struct {
	Scope Scope
	// For is how long attempts are refused from now on (for a window, until
	// its oldest failure leaves it).
	For time.Duration
	// Round is the account-wide round the failure fell in: its count
	// divided by the threshold (Backoff only).
	Round int
}

// minRetry is the shortest wait announced: Retry-After counts in seconds,
// and checks in flight finish within one.
const minRetry = time.Second

// Limiter reserves attempts against a Policy. One Limiter serves a whole
// process, so reservations made by the portal and the provider see each
// other.
type Limiter struct {
	store Store
	// policy is the rules in force, swapped whole by SetPolicy when an
	// admin changes the sign-in throttling, so reservations never see half
	// of a change.
	policy atomic.Pointer[Policy]
	now    func() time.Time

	mu       sync.Mutex
	inflight map[string]int // reservations not yet decided, by key
	// settled counts the failures written (or kept in memory) and released
	// from flight: a reader of the store that sees it change while it read
	// cannot tell whether its read has them (reserve). A failure counts
	// once its write is accounted for (its count may have left the tally
	// then), and again as it leaves flight.
	settled uint64
	tally   *tally // account-wide failures below the threshold
	// Failures the store could not take (unwritten.go).
	unwritten    map[string]unwritten
	gen          uint64
	maxUnwritten int
	closedUntil  time.Time // memory was full: every attempt refused until then
}

// New returns a Limiter; now may be nil (time.Now).
func New(store Store, p Policy, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{store: store, now: now, inflight: make(map[string]int), tally: newTally(DefaultTallySize),
		unwritten: make(map[string]unwritten), maxUnwritten: maxUnwritten}
	l.policy.Store(&p)
	return l
}

// SetPolicy puts p in force from the next reservation on; the failures
// counted so far stay (the store keeps them by key, not by limit).
func (l *Limiter) SetPolicy(p Policy) { l.policy.Store(&p) }

// rules is the policy in force.
func (l *Limiter) rules() Policy { return *l.policy.Load() }

// Subject is an account as the throttle knows it: by ID when the account
// exists, by the normalised login name when it does not. Both kinds get the
// same limits, so the answers do not tell which names exist.
type Subject string

// User is the subject for an existing account.
func User(id string) Subject { return Subject("u\x00" + part(id)) }

// Name is the subject for a login name that matched no account. name should
// be normalised (case, spaces) by the caller, so every spelling of it counts
// alike.
func Name(name string) Subject { return Subject("n\x00" + part(name)) }

// check is one key an attempt is counted on, and its rule.
type check struct {
	key     string
	scope   Scope
	window  Window
	backoff Backoff
	// enforce: the check may refuse; a check that only counts records
	// failures for others (a remembered device's own failures still count
	// towards the account-wide wait, but do not stop it).
	enforce bool
	// forgive: a success clears the key's failures. Address keys are not
	// forgiven: one good password behind a shared address must not wipe out
	// an attacker's failures from it.
	forgive bool
}

func (c check) active() bool { return c.window.Limit > 0 || c.backoff.Failures > 0 }

// Password reserves one password check for subject from addr (a client IP;
// "" when unknown). proven says the caller showed a remembered device of
// this account, so the account-wide wait does not hold it back.
func (l *Limiter) Password(ctx context.Context, subject Subject, addr string, proven bool) (*Reservation, error) {
	a := Address(addr)
	checks := []check{
		{key: key("pa", string(subject), a), scope: ScopeAccountAddress, window: l.rules().AccountAddress, enforce: true, forgive: true},
		{key: key("p", string(subject)), scope: ScopeAccount, backoff: l.rules().Account, enforce: !proven, forgive: true},
	}
	return l.reserve(ctx, l.withAddress(checks, a))
}

// Code reserves one check of a one-time code (TOTP, recovery code) of the
// account userID, from addr.
func (l *Limiter) Code(ctx context.Context, userID, addr string) (*Reservation, error) {
	a := Address(addr)
	checks := []check{{key: key("c", part(userID)), scope: ScopeCodes, window: l.rules().AccountAddress, enforce: true, forgive: true}}
	return l.reserve(ctx, l.withAddress(checks, a))
}

// Client reserves one check of a client secret of clientID from addr.
// There is no client-wide limit: anyone could then lock an app out. The
// address limit is the clients' own (Policy.ClientAddress), apart from
// people's sign-ins.
func (l *Limiter) Client(ctx context.Context, clientID, addr string) (*Reservation, error) {
	a := Address(addr)
	checks := []check{{key: key("ca", part(clientID), a), scope: ScopeClientAddress, window: l.rules().AccountAddress, enforce: true, forgive: true}}
	if a != "" {
		checks = append(checks, check{key: key("ka", a), scope: ScopeClientsAddress, window: l.rules().ClientAddress, enforce: true})
	}
	return l.reserve(ctx, checks)
}

// Secret reserves one count of a bearer secret that names no account (an
// API token) and was not found, from addr: only the address limit
// applies. Such secrets are long and random, and looked up by hash: one
// that is found is nobody's guess, and is let in without the throttle.
func (l *Limiter) Secret(ctx context.Context, addr string) (*Reservation, error) {
	return l.reserve(ctx, l.withAddress(nil, Address(addr)))
}

func (l *Limiter) withAddress(checks []check, a string) []check {
	if a == "" {
		return checks
	}
	return append(checks, check{key: key("a", a), scope: ScopeAddress, window: l.rules().Address, enforce: true})
}

// Address is the form a client IP is throttled under: IPv4 addresses as
// they are, IPv6 addresses by their /64 (one subscriber's network, which
// hands out addresses freely); "" for what is not an address.
func Address(ip string) string { return ipv6Prefix(ip, 64) }

// AddressGroup is the wider block an address belongs to when the total
// limit on pending sign-ins chooses whom to evict from
// (storage.PendingLimits): an IPv4 address itself, an IPv6 address's /48,
// the most a single site is assigned (RFC 6177), so an attacker with a
// whole block of /64s counts as one; "" for what is not an address.
func AddressGroup(ip string) string { return ipv6Prefix(ip, 48) }

// ipv6Prefix is an IPv4 address as it is, or an IPv6 address's prefix of
// bits; "" for what is not an address.
func ipv6Prefix(ip string, bits int) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, bits).Masked().String()
}

// maxPart bounds one part of a key; longer parts (login names and client
// IDs are chosen by whoever sends them) are replaced by a hash.
const maxPart = 64

func part(s string) string {
	if len(s) <= maxPart && !strings.HasPrefix(s, "#") && !strings.ContainsFunc(s, func(r rune) bool { return r == 0 || !unicode.IsPrint(r) }) {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return "#" + hex.EncodeToString(sum[:16])
}

func key(kind string, parts ...string) string {
	return kind + "\x00" + strings.Join(parts, "\x00")
}

// reserve refuses the attempt when any enforced check is over its limit,
// counting stored failures and the reservations in flight; otherwise it
// reserves the attempt on every check.
func (l *Limiter) reserve(ctx context.Context, all []check) (*Reservation, error) {
	checks := slices.DeleteFunc(all, func(c check) bool { return !c.active() })
	keys := make([]string, len(checks))
	for i, c := range checks {
		keys[i] = c.key
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if r := l.closed(l.now()); r != nil {
		return nil, r
	}
	records, err := l.readThrottles(ctx, keys)
	if err != nil {
		return nil, fmt.Errorf("read throttles: %w", err)
	}
	// Memory for unwritten failures may have filled up during the read.
	now := l.now()
	if r := l.closed(now); r != nil {
		return nil, r
	}
	stored := slices.Clone(records)
	var refused, waived *Refused
	for i, c := range checks {
		records[i] = l.withUnwritten(records[i], now)
		wait, over := c.over(records[i], l.below(c, now), l.inflight[c.key], now)
		if !over {
			continue
		}
		if c.enforce {
			refused = longer(refused, &Refused{Scope: c.scope, RetryAfter: wait})
		} else {
			waived = longer(waived, &Refused{Scope: c.scope, RetryAfter: wait})
		}
	}
	if refused != nil {
		return nil, refused
	}
	r := &Reservation{l: l, checks: checks, records: records, stored: stored, waived: waived}
	for _, c := range checks {
		l.inflight[c.key]++
	}
	return r, nil
}

// closed is the refusal of every attempt while the memory for unwritten
// failures is full (unwritten.go), or nil. The caller holds l.mu.
func (l *Limiter) closed(now time.Time) *Refused {
	if now.Before(l.closedUntil) {
		return &Refused{Scope: ScopeStore, RetryAfter: max(l.closedUntil.Sub(now), minRetry)}
	}
	return nil
}

// lockFreeReads is how many times reserve reads the store without the lock
// before it reads under it (below).
const lockFreeReads = 3

// readThrottles reads the stored records of keys for reserve, which holds
// l.mu and gets it back held. The read itself runs without the lock, so a
// slow store does not hold up every other reservation and decision. That
// is correct because a failure is written (or kept in memory) before its
// reservation leaves flight: an attempt that is in flight when the lock is
// taken again is counted as such, and one that left flight before the read
// began is in the read. Only one written (its count leaving the tally)
// or leaving flight during the read may be in neither; then settled has
// moved, and the store is read again. Should
// failures keep settling during every read, the last read holds the lock,
// so a busy address cannot make its own reservations wait forever.
func (l *Limiter) readThrottles(ctx context.Context, keys []string) ([]storage.Throttle, error) {
	for range lockFreeReads {
		before := l.settled
		l.mu.Unlock()
		records, err := l.store.GetThrottles(ctx, keys...)
		l.mu.Lock()
		if err != nil || l.settled == before {
			return records, err
		}
	}
	return l.store.GetThrottles(ctx, keys...)
}

// below is the check's failures counted in memory (an account-wide count
// below the threshold); 0 for windows. The caller holds l.mu.
func (l *Limiter) below(c check, now time.Time) int {
	if c.backoff.Failures == 0 {
		return 0
	}
	return l.tally.count(c.key, now, c.backoff.Reset)
}

// longer is the refusal with the longer wait.
func longer(a, b *Refused) *Refused {
	if a == nil || b.RetryAfter > a.RetryAfter {
		return b
	}
	return a
}

// over tells whether one more attempt would exceed the check's limit, and
// if so how long until it would not (not counting attempts yet to come).
func (c check) over(t storage.Throttle, below, inflight int, now time.Time) (time.Duration, bool) {
	if c.window.Limit > 0 {
		recent := c.recent(t.Failures, now)
		if n := len(recent) + inflight; n >= c.window.Limit {
			// The attempt is allowed once enough failures have left the
			// window; reservations in flight are decided within a second.
			if drop := n - c.window.Limit + 1; drop <= len(recent) {
				return max(recent[drop-1].Add(c.window.Window).Sub(now), minRetry), true
			}
			return minRetry, true
		}
		return 0, false
	}
	if now.Before(t.LockedUntil) {
		return max(t.LockedUntil.Sub(now), minRetry), true
	}
	// At the threshold every failure brings a wait: one attempt at a
	// time, so parallel guesses cannot all slip in between two waits.
	if inflight > 0 && c.backoff.count(t, below)+inflight >= c.backoff.Failures {
		return minRetry, true
	}
	return 0, false
}

// recent is the failures still inside the window at now: each counts for
// exactly Window after it happened.
func (c check) recent(failures []time.Time, now time.Time) []time.Time {
	cutoff := now.Add(-c.window.Window)
	i, _ := slices.BinarySearchFunc(failures, cutoff, func(f, t time.Time) int {
		if f.After(t) {
			return 1
		}
		return -1
	})
	return failures[i:]
}

// fail adds a failure at now to t under the check's rule and says whether
// that reached the limit. For an account-wide count, tallied is the count
// in memory with this failure, which t takes over at the threshold.
func (c check) fail(t storage.Throttle, tallied int, now time.Time) (storage.Throttle, *Trip) {
	if c.window.Limit > 0 {
		// Kept in order even if the clock stepped back.
		recent := append(slices.Clone(c.recent(t.Failures, now)), now)
		slices.SortFunc(recent, time.Time.Compare)
		if len(recent) > c.window.Limit {
			recent = recent[len(recent)-c.window.Limit:]
		}
		t.Failures, t.ExpiresAt = recent, now.Add(c.window.Window)
		if len(recent) == c.window.Limit {
			return t, &Trip{Scope: c.scope, For: max(recent[0].Add(c.window.Window).Sub(now), minRetry)}
		}
		return t, nil
	}
	b := c.backoff
	n := tallied
	if t.Rounds > 0 {
		n = b.count(t, 0) + 1
	}
	if n < b.Failures {
		return t, nil // below the threshold: the tally's to count
	}
	round := n / b.Failures
	wait := b.wait(round)
	t.Failures, t.Rounds = nil, n-b.Failures+1
	t.LockedUntil = laterOf(t.LockedUntil, now.Add(wait))
	trip := &Trip{Scope: c.scope, For: wait, Round: round}
	// Reset without a failure forgets everything: the store drops the
	// record then.
	t.ExpiresAt = now.Add(b.Reset)
	if t.LockedUntil.After(t.ExpiresAt) {
		t.ExpiresAt = t.LockedUntil
	}
	return t, trip
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Reservation is one attempt allowed in. Exactly one of Fail, Succeed or
// Cancel ends it; later calls do nothing.
type Reservation struct {
	l       *Limiter
	checks  []check
	records []storage.Throttle // as counted when the attempt was let in
	stored  []storage.Throttle // as read from the store then
	waived  *Refused
	mu      sync.Mutex
	done    bool
}

// Waived is the refusal a proven attempt was let past (the account-wide
// wait), or nil. The caller decides what the proof allows: a remembered
// device gets its password checked; an app-password miss, which proves
// nothing, is counted but may not go on to the account password.
func (r *Reservation) Waived() *Refused {
	if r == nil {
		return nil
	}
	return r.waived
}

func (r *Reservation) finish() bool {
	if r == nil {
		return false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done {
		return false
	}
	r.done = true
	return true
}

// release returns the attempt's place in flight. It comes after any write,
// so the attempt is never counted nowhere. failed says the attempt was a
// failure (see readThrottles).
func (r *Reservation) release(failed bool) {
	if failed && beforeFailReleased != nil {
		beforeFailReleased()
	}
	r.l.mu.Lock()
	defer r.l.mu.Unlock()
	if failed {
		r.l.settled++
	}
	for _, c := range r.checks {
		if r.l.inflight[c.key]--; r.l.inflight[c.key] <= 0 {
			delete(r.l.inflight, c.key)
		}
	}
}

// beforeFailReleased, when set (by tests), runs when a failure has been
// written and accounted for, just before it leaves flight.
var beforeFailReleased func()

// Fail records the attempt as a failure on every key and returns the limits
// it reached.
func (r *Reservation) Fail(ctx context.Context) ([]Trip, error) {
	if !r.finish() {
		return nil, nil
	}
	defer r.release(true)
	if len(r.checks) == 0 {
		return nil, nil
	}
	now := r.l.now().Round(0)
	byKey := make(map[string]check, len(r.checks))
	read := make(map[string]storage.Throttle, len(r.checks))
	tallied := make(map[string]int)
	var keys []string
	// What waits in memory for a write goes along with this one.
	taken := make(map[string]unwritten)
	r.l.mu.Lock()
	for i, c := range r.checks {
		byKey[c.key], read[c.key] = c, r.stored[i]
		if u, ok := r.l.unwritten[c.key]; ok {
			taken[c.key] = u
		}
		if c.backoff.Failures > 0 {
			// Counted in memory first; written only from the threshold on
			// (or when the store holds the count already).
			tallied[c.key] = r.l.tally.add(c.key, now, c.backoff.Reset)
			if tallied[c.key] < c.backoff.Failures && r.records[i].Rounds == 0 {
				continue
			}
		}
		keys = append(keys, c.key)
	}
	r.l.mu.Unlock()
	if len(keys) == 0 {
		return nil, nil
	}
	// The store may run the update more than once: the last run counts.
	tripped := make(map[string]*Trip, len(keys))
	stored := make(map[string]bool, len(keys))
	err := r.l.store.UpdateThrottles(ctx, keys, func(t storage.Throttle) (storage.Throttle, error) {
		if u, ok := taken[t.Key]; ok {
			t = u.onto(t)
		}
		next, trip := byKey[t.Key].fail(t, tallied[t.Key], now)
		tripped[t.Key], stored[t.Key] = trip, next.Rounds > 0
		return next, nil
	})
	r.l.mu.Lock()
	// The failure is in the store (or kept in memory) from now on, and
	// may have left the tally: a reservation whose read began before the
	// write must read again (readThrottles), even though the failure is
	// still in flight until release.
	r.l.settled++
	if err != nil {
		// Failing closed: the failure counts from memory until a write
		// takes it along.
		for _, k := range keys {
			base := r.l.withUnwritten(read[k], now)
			next, trip := byKey[k].fail(base, tallied[k], now)
			tripped[k] = trip
			if !next.Empty() && !r.l.keepUnwritten(base, next, now) {
				r.l.mu.Unlock()
				return tripsOf(keys, tripped), fmt.Errorf("record failure (and no memory left for it: every attempt refused for %s): %w", r.l.rules().longest(), err)
			}
		}
		r.l.mu.Unlock()
		return tripsOf(keys, tripped), fmt.Errorf("record failure (counted in memory until a write succeeds): %w", err)
	}
	r.l.written(taken)
	// A count the store holds now is no longer the tally's.
	for k := range tallied {
		if stored[k] {
			r.l.tally.remove(k)
		}
	}
	r.l.mu.Unlock()
	return tripsOf(keys, tripped), nil
}

// tripsOf lists the limits reached, in the order of keys.
func tripsOf(keys []string, tripped map[string]*Trip) []Trip {
	var trips []Trip
	for _, k := range keys {
		if t := tripped[k]; t != nil {
			trips = append(trips, *t)
		}
	}
	return trips
}

// Succeed ends the attempt as a success: it forgives the failures of the
// keys that forgive, writing only when some were stored, so a clean success
// costs no write.
func (r *Reservation) Succeed(ctx context.Context) error {
	if !r.finish() {
		return nil
	}
	defer r.release(false)
	var keys []string
	r.l.mu.Lock()
	for i, c := range r.checks {
		if !c.forgive {
			continue
		}
		r.l.tally.remove(c.key)
		delete(r.l.unwritten, c.key)
		if !r.records[i].Empty() {
			keys = append(keys, c.key)
		}
	}
	r.l.mu.Unlock()
	if len(keys) == 0 {
		return nil
	}
	err := r.l.store.UpdateThrottles(ctx, keys, func(t storage.Throttle) (storage.Throttle, error) {
		return storage.Throttle{Key: t.Key}, nil
	})
	if err != nil {
		return fmt.Errorf("forgive failures: %w", err)
	}
	return nil
}

// Cancel ends the attempt without counting it either way: the secret was
// never checked (the server was too busy), or the attempt turned out not
// to be a guess.
func (r *Reservation) Cancel() {
	if r.finish() {
		r.release(false)
	}
}
