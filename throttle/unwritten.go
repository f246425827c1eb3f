package throttle

import (
	"slices"
	"time"

	"github.com/keyport/keyport/storage"
)

// When a failure cannot be written (a full disk, a broken database), the
// throttle fails closed: the failure is kept in memory and counted like a
// stored one until a later write of its key takes it along. Were it merely
// dropped, every guess would be checked while writes fail. The memory is
// bounded: when it is full, every attempt is refused until the longest
// limit has passed, for Keyport cannot tell then whom it should refuse.

// maxUnwritten bounds the keys whose failures wait in memory for a write
// (a few MB at most: each holds at most a window's failure times).
const maxUnwritten = 10_000

// unwritten is what a key's stored record lacks: failures that could not
// be written.
type unwritten struct {
	failures    []time.Time // a window's, in order
	rounds      int         // account-wide failures past the threshold
	lockedUntil time.Time
	expiresAt   time.Time
	gen         uint64 // tells a new entry from one that was forgiven and made again
}

// onto is t with u's failures added.
func (u unwritten) onto(t storage.Throttle) storage.Throttle {
	if len(u.failures) > 0 {
		t.Failures = slices.Concat(t.Failures, u.failures)
		slices.SortFunc(t.Failures, time.Time.Compare)
		if n := len(t.Failures); n > storage.MaxThrottleFailures {
			t.Failures = t.Failures[n-storage.MaxThrottleFailures:]
		}
	}
	t.Rounds += u.rounds
	t.LockedUntil = laterOf(t.LockedUntil, u.lockedUntil)
	t.ExpiresAt = laterOf(t.ExpiresAt, u.expiresAt)
	return t
}

// withUnwritten is t with the failures of its key that wait in memory.
// The caller holds l.mu.
func (l *Limiter) withUnwritten(t storage.Throttle, now time.Time) storage.Throttle {
	u, ok := l.unwritten[t.Key]
	if !ok {
		return t
	}
	if !u.expiresAt.After(now) {
		delete(l.unwritten, t.Key) // its time has passed: the store would have dropped it
		return t
	}
	return u.onto(t)
}

// keepUnwritten remembers that next, the result of a failure on base,
// could not be written. It tells false when memory is full: then every
// attempt is refused until the longest limit has passed. The caller holds
// l.mu.
func (l *Limiter) keepUnwritten(base, next storage.Throttle, now time.Time) bool {
	u, ok := l.unwritten[next.Key]
	if !ok {
		if len(l.unwritten) >= l.maxUnwritten {
			for k, v := range l.unwritten {
				if !v.expiresAt.After(now) {
					delete(l.unwritten, k)
				}
			}
		}
		if len(l.unwritten) >= l.maxUnwritten {
			l.closedUntil = laterOf(l.closedUntil, now.Add(l.rules().longest()))
			return false
		}
		l.gen++
		u.gen = l.gen
	}
	if next.Rounds > base.Rounds {
		u.rounds += next.Rounds - base.Rounds
	} else if len(next.Failures) > 0 {
		u.failures = append(u.failures, now)
		if n := len(u.failures); n > storage.MaxThrottleFailures {
			u.failures = slices.Clone(u.failures[n-storage.MaxThrottleFailures:])
		}
	}
	u.lockedUntil = laterOf(u.lockedUntil, next.LockedUntil)
	u.expiresAt = laterOf(u.expiresAt, next.ExpiresAt)
	l.unwritten[next.Key] = u
	return true
}

// written forgets what a successful write took along (taken, as it was
// when the write began); what was added meanwhile waits for the next. The
// caller holds l.mu.
func (l *Limiter) written(taken map[string]unwritten) {
	for k, was := range taken {
		u, ok := l.unwritten[k]
		if !ok || u.gen != was.gen {
			continue
		}
		u.failures = u.failures[min(len(was.failures), len(u.failures)):]
		u.rounds -= was.rounds
		if len(u.failures) == 0 && u.rounds == 0 {
			delete(l.unwritten, k)
			continue
		}
		l.unwritten[k] = u
	}
}

// longest is the longest any limit of p can hold an attempt back.
func (p Policy) longest() time.Duration {
	return max(p.AccountAddress.Window, p.Address.Window, p.ClientAddress.Window, p.Account.MaxWait, minRetry)
}
