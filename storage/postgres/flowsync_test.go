package postgres

import (
	"fmt"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
)

// TestFlowWritesDoNotWaitForTheWAL: the writes of a sign-in under way
// (flowTx) commit without a WAL flush each, while what spends a code (its
// redemption, a device code's too) and the tokens still wait for theirs.
// The test cluster runs without fsync and with synchronous_commit off; the
// test's connection turns synchronous commit on, as a production server
// has it, and PostgreSQL counts the WAL writes (pg_stat_wal.wal_write): a
// synchronous commit writes the WAL out itself, an asynchronous one leaves
// it to the WAL writer. With every write synchronous, each round of a code
// flow's seven writes and its tokens made seven; now two, the redemption's
// and the tokens', which take the flow writes before them to the disk too.
func TestFlowWritesDoNotWaitForTheWAL(t *testing.T) {
	ctx := t.Context()
	d, err := Open(ctx, schema.Database(t)+" synchronous_commit=on", Options{MaxConns: 1})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	walWrites := func() int64 {
		t.Helper()
		// A backend reports its counts when it next goes idle after this,
		// rather than within the second it otherwise may take.
		if _, err := d.pool.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
			t.Fatal(err)
		}
		var n int64
		if err := d.pool.QueryRow(ctx, "SELECT wal_write FROM pg_stat_wal").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	const rounds = 20
	now := time.Now().UTC().Truncate(time.Millisecond)
	before := walWrites()
	for i := range rounds {
		id, code := fmt.Sprintf("ar%d", i), fmt.Sprintf("code%d", i)
		a := storage.AuthRequest{ID: id, ClientID: "app", RedirectURI: "https://app.example/cb", ResponseType: "code",
			Scopes: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
		if _, err := d.CreateAuthRequest(ctx, a, storage.PendingLimits{}); err != nil {
			t.Fatalf("round %d: create: %v", i, err)
		}
		for _, change := range []func(*storage.AuthRequest){
			func(a *storage.AuthRequest) { a.BrowserID = "b1" },
			func(a *storage.AuthRequest) { a.UserID, a.Completed = "u1", true },
		} {
			if _, err := d.UpdateAuthRequest(ctx, id, func(a storage.AuthRequest) (storage.AuthRequest, error) {
				change(&a)
				return a, nil
			}); err != nil {
				t.Fatalf("round %d: update: %v", i, err)
			}
		}
		if err := d.IssueCode(ctx, id, code, now.Add(time.Minute)); err != nil {
			t.Fatalf("round %d: issue code: %v", i, err)
		}
		issue := storage.IssuedTokens{AccessTokenID: fmt.Sprintf("a%d", i)}
		if _, err := d.RedeemCode(ctx, code, "app", issue); err != nil {
			t.Fatalf("round %d: redeem: %v", i, err)
		}
		access := storage.AccessToken{ID: issue.AccessTokenID, ClientID: "app", UserID: "u1", Subject: "u1",
			Scopes: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := d.CreateCodeTokens(ctx, code, access, nil, ""); err != nil {
			t.Fatalf("round %d: tokens: %v", i, err)
		}
		if err := d.DeleteAuthRequest(ctx, id); err == nil {
			t.Fatalf("round %d: the request outlived the redemption of its code", i)
		}
	}
	got := walWrites() - before
	// The redemptions' and the tokens' writes, and not one per commit. The
	// WAL writer adds its own, woken by the asynchronous commits: 46 to 48
	// for 20 rounds on an idle machine, where 2*rounds+rounds/2 (50) failed
	// now and then under load. Every write synchronous makes six a round
	// (120: the last deletion finds nothing), so the bound sits well
	// between the two.
	if got < 2*rounds || got > 4*rounds {
		t.Errorf("%d rounds of a code flow's writes made %d WAL writes, want about %d (two per round: the redemption's and the tokens')", rounds, got, 2*rounds)
	}

	// A device authorization: created, approved and polled without a sync
	// of their own; its redemption waits for one.
	dev := storage.DeviceAuthorization{DeviceCodeHash: "dh", UserCode: "BCDFGHJK", ClientID: "tv", Scopes: []string{"openid"},
		State: storage.DevicePending, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Interval: 5 * time.Second}
	set := func(state string) func(storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
		return func(a storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
			if state != "" {
				a.State, a.UserID = state, "u1"
			}
			a.LastPoll = now
			return a, nil
		}
	}
	before = walWrites()
	if err := d.CreateDeviceAuthorization(ctx, dev, 0); err != nil {
		t.Fatal(err)
	}
	for _, state := range []string{"", storage.DeviceApproved, "", ""} {
		if _, err := d.UpdateDeviceAuthorization(ctx, "dh", set(state)); err != nil {
			t.Fatal(err)
		}
	}
	if got := walWrites() - before; got > 2 {
		t.Errorf("a device authorization's creation, approval and polls made %d WAL writes, want none of their own", got)
	}
	before = walWrites()
	if _, err := d.UpdateDeviceAuthorization(ctx, "dh", set(storage.DeviceRedeemed)); err != nil {
		t.Fatal(err)
	}
	if got := walWrites() - before; got < 1 {
		t.Error("a device code's redemption committed without writing the WAL out")
	}
}
