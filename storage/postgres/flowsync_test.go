package postgres

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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

// sentCounter counts what a pool sends to the server: statements on their
// own and batches (one pipeline each).
type sentCounter struct{ sent atomic.Int64 }

func (c *sentCounter) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.sent.Add(1)
	return ctx
}
func (c *sentCounter) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *sentCounter) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.sent.Add(1)
	return ctx
}
func (c *sentCounter) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *sentCounter) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// TestDeleteAuthRequestInOneRoundTrip: every code exchange ends with a
// DeleteAuthRequest of the request its redemption deleted already
// (zitadel's), so deleting costs one round trip, not flowTx's three
// (BEGIN, DELETE, COMMIT), and a request that is there still goes without
// a WAL flush of its own, as flowTx's writes.
func TestDeleteAuthRequestInOneRoundTrip(t *testing.T) {
	ctx := t.Context()
	dsn := schema.Database(t) + " synchronous_commit=on"
	d, err := Open(ctx, dsn, Options{MaxConns: 1})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	counter := &sentCounter{}
	cfg.MaxConns, cfg.ConnConfig.Tracer = 1, counter
	traced, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	d.pool.Close()
	d.pool = traced

	now := time.Now().UTC().Truncate(time.Millisecond)
	const n = 20
	for i := range n {
		a := storage.AuthRequest{ID: fmt.Sprintf("ar%d", i), ClientID: "app", RedirectURI: "https://app.example/cb", ResponseType: "code",
			CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
		if _, err := d.CreateAuthRequest(ctx, a, storage.PendingLimits{}); err != nil {
			t.Fatalf("create %s: %v", a.ID, err)
		}
	}
	walWrites := func() int64 {
		t.Helper()
		if _, err := d.pool.Exec(ctx, "SELECT pg_stat_force_next_flush()"); err != nil {
			t.Fatal(err)
		}
		var w int64
		if err := d.pool.QueryRow(ctx, "SELECT wal_write FROM pg_stat_wal").Scan(&w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	before := walWrites()
	sent := counter.sent.Load()
	for i := range n {
		if err := d.DeleteAuthRequest(ctx, fmt.Sprintf("ar%d", i)); err != nil {
			t.Fatalf("delete ar%d: %v", i, err)
		}
	}
	if got := counter.sent.Load() - sent; got != n {
		t.Errorf("%d deletions sent %d statements or batches, want %d", n, got, n)
	}
	// The WAL writer may write a few; synchronous commits would be n.
	if got := walWrites() - before; got >= n/2 {
		t.Errorf("%d deletions made %d WAL writes, want hardly any (asynchronous commits)", n, got)
	}

	sent = counter.sent.Load()
	for i := range n {
		err := d.DeleteAuthRequest(ctx, fmt.Sprintf("ar%d", i))
		if !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("delete the gone ar%d: %v, want ErrNotFound", i, err)
		}
	}
	if got := counter.sent.Load() - sent; got != n {
		t.Errorf("%d deletions of gone requests sent %d statements or batches, want %d", n, got, n)
	}
	var left int
	if err := d.pool.QueryRow(ctx, "SELECT count(*) FROM auth_requests").Scan(&left); err != nil || left != 0 {
		t.Errorf("%d requests left (%v)", left, err)
	}
	// The setting was the deletions' own: the pool's one connection
	// commits what comes next (tokens) synchronously again.
	var setting string
	if err := d.pool.QueryRow(ctx, "SHOW synchronous_commit").Scan(&setting); err != nil || setting != "on" {
		t.Errorf("synchronous_commit after the deletions: %q (%v), want on", setting, err)
	}
}
