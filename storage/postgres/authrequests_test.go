package postgres

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// Redeemers of one code on connections already open (as on replicas that
// have been running a while), so they reach the database together: one
// wins, the others get ErrTokenReused. The conformance suite's
// ConcurrentRedeem opens its connections as it goes, which spreads the
// redeemers out.
func TestRedeemRaceOnWarmConnections(t *testing.T) {
	const racers, rounds = 8, 20
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	d := openWarm(t, now, racers)
	ctx := t.Context()
	var wg sync.WaitGroup
	for round := range rounds {
		id, code := fmt.Sprintf("ar%d", round), fmt.Sprintf("code%d", round)
		if _, err := d.CreateAuthRequest(ctx, storage.AuthRequest{ID: id, ClientID: "app", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}, storage.PendingLimits{}); err != nil {
			t.Fatal(err)
		}
		if err := d.IssueCode(ctx, id, code, now.Add(time.Minute)); err != nil {
			t.Fatal(err)
		}
		errs := make([]error, racers)
		var start sync.WaitGroup
		start.Add(1)
		for i := range racers {
			wg.Go(func() {
				start.Wait()
				_, errs[i] = d.RedeemCode(ctx, code, "app", storage.IssuedTokens{AccessTokenID: fmt.Sprintf("a%d-%d", round, i)})
			})
		}
		start.Done()
		wg.Wait()
		wins := 0
		for i, err := range errs {
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, storage.ErrTokenReused):
				t.Fatalf("round %d: redeemer %d: %v, want ErrTokenReused", round, i, err)
			}
		}
		if wins != 1 {
			t.Fatalf("round %d: %d redeemers won", round, wins)
		}
	}
}

// openWarm opens a fresh database with a pool of n connections, all open.
func openWarm(t *testing.T, now time.Time, n int) *DB {
	t.Helper()
	d, err := Open(t.Context(), schema.Database(t), Options{Now: func() time.Time { return now }, MaxConns: int32(n)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := d.pool.Exec(t.Context(), "SELECT pg_sleep(0.05)"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	return d
}

// Creates under pending limits on connections already open, two at once
// where each alone would find room for itself, from an empty table each
// round: only one may stay, whichever limit it is (the advisory locks;
// without them both count before either commits, and both store theirs).
func TestPendingLimitsRaceOnWarmConnections(t *testing.T) {
	const rounds = 60
	now := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	d := openWarm(t, now, 2)
	for name, c := range map[string]struct {
		limits  storage.PendingLimits
		origins [2]string
	}{
		"total":      {storage.PendingLimits{Total: 1}, [2]string{"192.0.2.1", "192.0.2.2"}},
		"per origin": {storage.PendingLimits{PerOrigin: 1}, [2]string{"192.0.2.1", "192.0.2.1"}},
	} {
		t.Run(name, func(t *testing.T) { raceCreates(t, d, c.limits, c.origins, rounds) })
	}
}

// raceCreates creates two requests at once, of origins, from an empty
// table, rounds times, and checks that one stays.
func raceCreates(t *testing.T, d *DB, limits storage.PendingLimits, origins [2]string, rounds int) {
	ctx := t.Context()
	now := d.now()
	for round := range rounds {
		if _, err := d.pool.Exec(ctx, "DELETE FROM auth_requests"); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var start sync.WaitGroup
		start.Add(1)
		errs := make([]error, 2)
		for i := range 2 {
			wg.Go(func() {
				start.Wait()
				a := storage.AuthRequest{ID: fmt.Sprintf("ar%d-%d", round, i), ClientID: "app", Origin: origins[i], CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				_, errs[i] = d.CreateAuthRequest(ctx, a, limits)
			})
		}
		start.Done()
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: create %d: %v", round, i, err)
			}
		}
		var n int
		if err := d.pool.QueryRow(ctx, "SELECT count(*) FROM auth_requests").Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 1 {
			t.Fatalf("round %d: %d requests pending, the limit is 1", round, n)
		}
	}
}
