package storagetest

import (
	"errors"
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
		ok(t, s.CreateDeviceAuthorization(ctx, d), "create")
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
		ok(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h1", "BCDFGHJK")), "create")
		isErr(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h1", "BCDFGHJL")), storage.ErrConflict, "taken device code")
		isErr(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h2", "BCDFGHJK")), storage.ErrConflict, "taken user code")
		isErr(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "", "BCDFGHJM")), storage.ErrInvalid, "no device code")
		isErr(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h3", "")), storage.ErrInvalid, "no user code")
		noClient := newDeviceAuth(now, "h4", "BCDFGHJN")
		noClient.ClientID = ""
		isErr(t, s.CreateDeviceAuthorization(ctx, noClient), storage.ErrInvalid, "no client")
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
		ok(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(c.Now(), "h1", "BCDFGHJK")), "create")
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
		ok(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(now, "h1", "BCDFGHJK")), "create")
		later := newDeviceAuth(now, "h2", "BCDFGHJL")
		later.ExpiresAt = now.Add(time.Hour)
		ok(t, s.CreateDeviceAuthorization(ctx, later), "create later")

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
		ok(t, s.CreateDeviceAuthorization(ctx, newDeviceAuth(c.Now(), "h3", "BCDFGHJK")), "the user code is free again")

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
}
