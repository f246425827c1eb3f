package storagetest

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// addFailure is an update that notes a failure at t and keeps the record
// for ttl after it.
func addFailure(t time.Time, ttl time.Duration) func(storage.Throttle) (storage.Throttle, error) {
	return func(th storage.Throttle) (storage.Throttle, error) {
		th.Failures = append(th.Failures, t)
		th.ExpiresAt = t.Add(ttl)
		return th, nil
	}
}

func getThrottle(t *testing.T, s storage.Store, key string) storage.Throttle {
	t.Helper()
	got, err := s.GetThrottles(t.Context(), key)
	ok(t, err, "get throttle %q", key)
	equal(t, len(got), 1, "records for one key")
	return got[0]
}

var throttleTests = []test{
	{"GetMissing", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		got, err := s.GetThrottles(t.Context(), "a", "b")
		ok(t, err, "get missing")
		equal(t, got, []storage.Throttle{{Key: "a"}, {Key: "b"}}, "missing records")
		got, err = s.GetThrottles(t.Context())
		ok(t, err, "get no keys")
		equal(t, len(got), 0, "records for no keys")
	}},
	{"UpdateAndGet", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		keys := []string{"acct\x00u1", "addr\x00192.0.2.1"}
		ok(t, s.UpdateThrottles(ctx, keys, addFailure(now, time.Hour)), "first failure")
		c.Add(time.Second)
		ok(t, s.UpdateThrottles(ctx, keys[:1], func(th storage.Throttle) (storage.Throttle, error) {
			equal(t, th.Failures, []time.Time{now}, "the update sees the stored record")
			th.Failures = append(th.Failures, c.Now())
			th.Rounds, th.LockedUntil, th.ExpiresAt = 2, c.Now().Add(time.Minute), c.Now().Add(time.Hour)
			return th, nil
		}), "second failure")
		got, err := s.GetThrottles(ctx, keys[1], keys[0], "other")
		ok(t, err, "get")
		equal(t, got, []storage.Throttle{
			{Key: keys[1], Failures: []time.Time{now}, ExpiresAt: now.Add(time.Hour)},
			{Key: keys[0], Failures: []time.Time{now, c.Now()}, Rounds: 2, LockedUntil: c.Now().Add(time.Minute), ExpiresAt: c.Now().Add(time.Hour)},
			{Key: "other"},
		}, "records in the order asked")
	}},
	{"ErrorChangesNothing", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.UpdateThrottles(ctx, []string{"a"}, addFailure(now, time.Hour)), "a")
		calls := 0
		err := s.UpdateThrottles(ctx, []string{"a", "b"}, func(th storage.Throttle) (storage.Throttle, error) {
			calls++
			if th.Key == "b" {
				return th, errBoom
			}
			th.Failures = append(th.Failures, now)
			return th, nil
		})
		isErr(t, err, errBoom, "an update that fails on its second key")
		equal(t, getThrottle(t, s, "a").Failures, []time.Time{now}, "the first key is unchanged")
		equal(t, getThrottle(t, s, "b"), storage.Throttle{Key: "b"}, "the second key was not created")

		for name, fn := range map[string]func(storage.Throttle) (storage.Throttle, error){
			"changed key": func(th storage.Throttle) (storage.Throttle, error) { th.Key = "x"; return th, nil },
		} {
			if err := s.UpdateThrottles(ctx, []string{"a"}, fn); err == nil {
				t.Errorf("%s: no error", name)
			}
		}
		for name, keys := range map[string][]string{
			"empty key":    {""},
			"long key":     {strings.Repeat("k", storage.MaxThrottleKey+1)},
			"repeated key": {"a", "a"},
		} {
			if err := s.UpdateThrottles(ctx, keys, addFailure(now, time.Hour)); err == nil {
				t.Errorf("update with %s: no error", name)
			}
			if _, err := s.GetThrottles(ctx, keys...); err == nil && name != "repeated key" {
				t.Errorf("get with %s: no error", name)
			}
		}
		equal(t, getThrottle(t, s, "a").Failures, []time.Time{now}, "refused updates changed nothing")
	}},
	{"EmptyResultDeletes", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.UpdateThrottles(ctx, []string{"a", "b"}, addFailure(now, time.Hour)), "create")
		ok(t, s.UpdateThrottles(ctx, []string{"a"}, func(th storage.Throttle) (storage.Throttle, error) {
			return storage.Throttle{Key: th.Key, ExpiresAt: th.ExpiresAt}, nil
		}), "forgive a")
		equal(t, getThrottle(t, s, "a"), storage.Throttle{Key: "a"}, "a after forgiving")
		equal(t, len(getThrottle(t, s, "b").Failures), 1, "b is untouched")
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep, storage.SweepReport{}, "a forgiven record leaves nothing to sweep")
	}},
	{"ExpiryAndSweep", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.UpdateThrottles(ctx, []string{"short"}, addFailure(now, time.Minute)), "short")
		ok(t, s.UpdateThrottles(ctx, []string{"long"}, addFailure(now, time.Hour)), "long")
		// A record whose expiry moves later is kept until the later time.
		ok(t, s.UpdateThrottles(ctx, []string{"moved"}, addFailure(now, time.Minute)), "moved")
		ok(t, s.UpdateThrottles(ctx, []string{"moved"}, addFailure(now, time.Hour)), "move")

		c.Add(time.Minute)
		equal(t, getThrottle(t, s, "short"), storage.Throttle{Key: "short"}, "an expired record is not returned")
		ok(t, s.UpdateThrottles(ctx, []string{"short"}, func(th storage.Throttle) (storage.Throttle, error) {
			equal(t, th, storage.Throttle{Key: "short"}, "an update sees no expired record")
			return th, nil
		}), "update an expired record")
		equal(t, len(getThrottle(t, s, "moved").Failures), 2, "a record whose expiry moved")

		ok(t, s.UpdateThrottles(ctx, []string{"gone"}, addFailure(now, time.Minute)), "an update that is expired at once")
		equal(t, getThrottle(t, s, "gone"), storage.Throttle{Key: "gone"}, "a record stored already expired")

		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.Throttles, 0, "the expired record was deleted by the update")
		equal(t, len(getThrottle(t, s, "long").Failures), 1, "live record")

		ok(t, s.UpdateThrottles(ctx, []string{"short"}, addFailure(c.Now(), time.Minute)), "short again")
		c.Add(time.Hour)
		rep, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep, storage.SweepReport{Throttles: 3}, "sweep report")
		for _, k := range []string{"short", "long", "moved"} {
			equal(t, getThrottle(t, s, k), storage.Throttle{Key: k}, "swept record %q", k)
		}
		rep, err = s.Sweep(ctx)
		ok(t, err, "second sweep")
		equal(t, rep, storage.SweepReport{}, "second sweep report")
	}},
	{"FailuresBounded", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		var all []time.Time
		for i := range storage.MaxThrottleFailures + 5 {
			all = append(all, now.Add(time.Duration(i)*time.Millisecond))
		}
		ok(t, s.UpdateThrottles(ctx, []string{"a"}, func(th storage.Throttle) (storage.Throttle, error) {
			th.Failures, th.ExpiresAt = all, now.Add(time.Hour)
			return th, nil
		}), "too many failures")
		equal(t, getThrottle(t, s, "a").Failures, all[5:], "the newest failures are kept")
	}},
	{"ConcurrentUpdatesAllCount", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		const n = 40
		errs := concurrently(n, func(i int) error {
			return s.UpdateThrottles(ctx, []string{"shared", "own" + string(rune('A'+i))}, addFailure(now.Add(time.Duration(i)), time.Hour))
		})
		ok(t, errors.Join(errs...), "concurrent updates")
		equal(t, len(getThrottle(t, s, "shared").Failures), n, "failures counted on the shared key")
	}},
}
