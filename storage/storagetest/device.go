package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

func newDeviceAuth(now time.Time, hash, userCode string) storage.DeviceAuthorization {
	return storage.DeviceAuthorization{
		DeviceCodeHash: hash, UserCode: userCode, ClientID: "tv", Scopes: []string{"openid", "profile"},
		State: storage.DevicePending, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second,
	}
}

// approve is an update that approves a pending request for u1.
func approve(at time.Time) func(storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
	return func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
		if d.State != storage.DevicePending {
			return d, errors.New("not pending")
		}
		d.State, d.UserID, d.AMR, d.AuthTime = storage.DeviceApproved, "u1", []string{"pwd"}, at
		return d, nil
	}
}

var deviceTests = []test{
	{"CreateGetUpdate", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		d := newDeviceAuth(now, "h1", "BCDFGHJK")
		ok(t, s.CreateDeviceAuthorization(ctx, d, 0), "create")
		got, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
		ok(t, err, "get")
		equal(t, got, d, "stored request")
		_, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJL")
		isErr(t, err, storage.ErrNotFound, "another user code")

		c.Add(time.Minute)
		upd, err := s.UpdateDeviceAuthorization(ctx, "h1", approve(c.Now()))
		ok(t, err, "approve")
		want := d
		want.State, want.UserID, want.AMR, want.AuthTime = storage.DeviceApproved, "u1", []string{"pwd"}, c.Now()
		equal(t, upd, want, "update's result")
		got, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
		ok(t, err, "get after update")
		equal(t, got, want, "updated request")

		_, err = s.UpdateDeviceAuthorization(ctx, "h2", approve(now))
		isErr(t, err, storage.ErrNotFound, "update a missing request")
	}},
	{"Refusals", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h1", "BCDFGHJK"), 0), "create")
		isErr(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h1", "BCDFGHJL"), 0), storage.ErrConflict, "taken device code")
		isErr(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h2", "BCDFGHJK"), 0), storage.ErrConflict, "taken user code")
		isErr(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "", "BCDFGHJM"), 0), storage.ErrInvalid, "no device code")
		isErr(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h3", ""), 0), storage.ErrInvalid, "no user code")
		noClient := newDeviceAuth(now, "h4", "BCDFGHJN")
		noClient.ClientID = ""
		isErr(t, s.CreateDeviceAuthorization(ctx, noClient, 0), storage.ErrInvalid, "no client")
		_, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJL")
		isErr(t, err, storage.ErrNotFound, "a refused create stored nothing")

		// An error from fn changes nothing, and the codes cannot change.
		boom := errors.New("boom")
		_, err = s.UpdateDeviceAuthorization(ctx, "h1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
			d.State = storage.DeviceDenied
			return d, boom
		})
		isErr(t, err, boom, "fn's error")
		_, err = s.UpdateDeviceAuthorization(ctx, "h1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
			d.UserCode, d.State = "ZZZZZZZZ", storage.DeviceDenied
			return d, nil
		})
		isErr(t, err, storage.ErrInvalid, "changed user code")
		got, err := s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
		ok(t, err, "get")
		equal(t, got.State, storage.DevicePending, "state after refused updates")
	}},
	{"OneRedemption", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Of devices polling an approved request at once, exactly one
		// redeems it: the update is a transaction.
		ctx := t.Context()
		ok(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(c.Now(), "h1", "BCDFGHJK"), 0), "create")
		_, err := s.UpdateDeviceAuthorization(ctx, "h1", approve(c.Now()))
		ok(t, err, "approve")
		var wg sync.WaitGroup
		var mu sync.Mutex
		redeemed := 0
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := s.UpdateDeviceAuthorization(ctx, "h1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
					if d.State != storage.DeviceApproved {
						return d, errors.New("spent")
					}
					d.State = storage.DeviceRedeemed
					return d, nil
				})
				if err == nil {
					mu.Lock()
					redeemed++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		equal(t, redeemed, 1, "redemptions")
	}},
	{"Sweep", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h1", "BCDFGHJK"), 0), "create")
		later := newDeviceAuth(now, "h2", "BCDFGHJL")
		later.ExpiresAt = now.Add(time.Hour)
		ok(t, s.CreateDeviceAuthorization(ctx, later, 0), "create later")

		// Expired, but kept a while so a late poll hears expired_token.
		c.Add(10*time.Minute + time.Second)
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.DeviceAuthorizations, 0, "swept before DeviceAuthorizationKept")
		_, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
		ok(t, err, "expired request still there")

		c.Add(storage.DeviceAuthorizationKept)
		rep, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.DeviceAuthorizations, 1, "swept")
		_, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJK")
		isErr(t, err, storage.ErrNotFound, "swept request")
		_, err = s.UpdateDeviceAuthorization(ctx, "h1", approve(c.Now()))
		isErr(t, err, storage.ErrNotFound, "swept request by device code")
		ok(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(c.Now(), "h3", "BCDFGHJK"), 0), "the user code is free again")

		// An update that moves the expiry moves the sweep.
		_, err = s.UpdateDeviceAuthorization(ctx, "h2", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
			d.ExpiresAt = c.Now()
			return d, nil
		})
		ok(t, err, "shorten")
		c.Add(storage.DeviceAuthorizationKept + time.Second)
		rep, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.DeviceAuthorizations, 1, "swept after the shortened expiry")
		_, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJL")
		isErr(t, err, storage.ErrNotFound, "shortened request swept")
	}},
	{"OriginLimit", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, t0 := t.Context(), c.Now()
		from := func(origin, hash, userCode string, life time.Duration) storage.DeviceAuthorization {
			d := newDeviceAuth(c.Now(), hash, userCode)
			d.Origin, d.ExpiresAt = origin, c.Now().Add(life)
			return d
		}
		const limit = 3
		// The first expires soonest, though created last.
		ok(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a1", "BCDFGHJA", 10*time.Minute), limit), "create a1")
		ok(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a2", "BCDFGHJB", 10*time.Minute), limit), "create a2")
		ok(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a3", "BCDFGHJC", 5*time.Minute), limit), "create a3")
		err := s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a4", "BCDFGHJD", 10*time.Minute), limit)
		isErr(t, err, storage.ErrLimitReached, "a fourth of one origin")
		var lim *storage.DeviceOriginLimitError
		if !errors.As(err, &lim) {
			t.Fatalf("a fourth of one origin: %v, want a *storage.DeviceOriginLimitError", err)
		}
		equal(t, lim.Origin, "192.0.2.1", "refused origin")
		equal(t, lim.Limit, limit, "refused limit")
		equal(t, lim.FreeAt.Equal(t0.Add(5*time.Minute)), true, "room at %v, want when a3 expires", lim.FreeAt)
		_, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJD")
		isErr(t, err, storage.ErrNotFound, "the refused request")

		// Other origins, requests without one and creates without a limit
		// are not counted against it.
		ok(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.2", "b1", "BCDFGHJF", 10*time.Minute), limit), "another origin")
		ok(t, s.CreateDeviceAuthorization(ctx, from("", "n1", "BCDFGHJG", 10*time.Minute), limit), "no origin")
		ok(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "u1", "BCDFGHJH", 10*time.Minute), 0), "no limit")
		isErr(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a5", "BCDFGHJJ", 10*time.Minute), limit), storage.ErrLimitReached, "still at the limit")

		// A decision does not free a place; expiry does, though the
		// expired request is kept (and swept later).
		_, err = s.UpdateDeviceAuthorization(ctx, "a3", approve(c.Now()))
		ok(t, err, "approve a3")
		isErr(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a5", "BCDFGHJJ", 10*time.Minute), limit), storage.ErrLimitReached, "after an approval")
		c.Add(5 * time.Minute)
		_, err = s.GetDeviceAuthorizationByUserCode(ctx, "BCDFGHJC")
		ok(t, err, "a3, expired, still kept")
		// u1 (made without a limit) counts: a1, a2 and u1 are live.
		isErr(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a5", "BCDFGHJJ", 10*time.Minute), limit), storage.ErrLimitReached, "three live")
		ok(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a5", "BCDFGHJJ", 10*time.Minute), limit+1), "under a higher limit")

		// An update that moves the expiry moves the count with it.
		_, err = s.UpdateDeviceAuthorization(ctx, "a1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
			d.ExpiresAt = c.Now()
			return d, nil
		})
		ok(t, err, "expire a1")
		ok(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "a6", "BCDFGHJK", 10*time.Minute), limit+1), "in a1's place")

		c.Add(10*time.Minute + storage.DeviceAuthorizationKept)
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.DeviceAuthorizations, 8, "swept")
		for i, code := range []string{"BCDFGHJL", "BCDFGHJM", "BCDFGHJN"} {
			ok(t, s.CreateDeviceAuthorization(ctx, from("192.0.2.1", "c"+code, code, 10*time.Minute), limit), "create %d after the sweep", i)
		}
	}},
	{"OriginLimitConcurrent", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		// Many creates of one origin at once: exactly the limit succeed.
		ctx := t.Context()
		const limit, tries = 5, 24
		var wg sync.WaitGroup
		errs := make([]error, tries)
		for i := range tries {
			wg.Add(1)
			go func() {
				defer wg.Done()
				d := newDeviceAuth(c.Now(), fmt.Sprintf("h%02d", i), fmt.Sprintf("BCDFGH%02d", i))
				d.Origin = "2001:db8:1:2::/64"
				errs[i] = s.CreateDeviceAuthorization(ctx, d, limit)
			}()
		}
		wg.Wait()
		created := 0
		for i, err := range errs {
			var lim *storage.DeviceOriginLimitError
			switch {
			case err == nil:
				created++
			case !errors.As(err, &lim):
				t.Fatalf("create %d: %v", i, err)
			}
		}
		equal(t, created, limit, "created of %d at once", tries)
	}},
	{"OriginMovesWithUpdate", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		d := newDeviceAuth(c.Now(), "h1", "BCDFGHJK")
		d.Origin = "192.0.2.1"
		ok(t, s.CreateDeviceAuthorization(ctx, d, 1), "create")
		_, err := s.UpdateDeviceAuthorization(ctx, "h1", func(d storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
			d.Origin = "192.0.2.2"
			return d, nil
		})
		ok(t, err, "move to another origin")
		e := newDeviceAuth(c.Now(), "h2", "BCDFGHJL")
		e.Origin = "192.0.2.1"
		ok(t, s.CreateDeviceAuthorization(ctx, e, 1), "the first origin, free again")
		e.DeviceCodeHash, e.UserCode, e.Origin = "h3", "BCDFGHJM", "192.0.2.2"
		isErr(t, s.CreateDeviceAuthorization(ctx, e, 1), storage.ErrLimitReached, "the origin it moved to")
	}},
}
