package postgres

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/storage/storagetest"
)

func openTestStore(t *testing.T, now func() time.Time) storage.Store { return openTest(t, now) }

func openBolt(t *testing.T, now func() time.Time) storage.Store {
	d, err := bolt.Open(filepath.Join(t.TempDir(), "keyport.db"), bolt.Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func TestCopyBoltToPostgres(t *testing.T) { storagetest.RunCopy(t, openBolt, openTestStore, nil) }

func TestCopyPostgresToBolt(t *testing.T) { storagetest.RunCopy(t, openTestStore, openBolt, nil) }

func TestCopyPostgresToPostgres(t *testing.T) {
	storagetest.RunCopy(t, openTestStore, openTestStore, nil)
}

// A load that fails part of the way (a second user with a taken name,
// which only the COPY finds) leaves nothing behind, and the store takes a
// good dump afterwards.
func TestLoadIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	d := openTest(t, time.Now)
	rec := func(kind string, v any) storage.Record {
		r, err := storage.NewRecord(kind, v)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	good := []storage.Record{
		rec(storage.DumpSetting, storage.DumpedSetting{Name: "a", Value: []byte("1")}),
		rec(storage.DumpUser, storage.User{ID: "u1", Username: "alice", CreatedAt: at, UpdatedAt: at}),
	}
	bad := append(append([]storage.Record{}, good...), rec(storage.DumpUser, storage.User{ID: "u2", Username: "ALICE", CreatedAt: at, UpdatedAt: at}))
	if err := d.Load(ctx, bad); !errors.Is(err, storage.ErrConflict) {
		t.Fatalf("load with a taken name: got %v, want ErrConflict", err)
	}
	if _, err := d.GetSetting(ctx, "a"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the failed load left a setting: %v", err)
	}
	orphan := append(append([]storage.Record{}, good...), rec(storage.DumpRefreshFamily, storage.RefreshFamily{ID: "f", UserID: "u1", ClientID: "app", Live: "h-missing"}))
	if err := d.Load(ctx, orphan); !errors.Is(err, storage.ErrInvalid) {
		t.Fatalf("load of a family without its live link: got %v, want ErrInvalid", err)
	}
	if err := d.Load(ctx, good); err != nil {
		t.Fatalf("load after the failures: %v", err)
	}
	if u, err := d.GetUserByLogin(ctx, "ALICE"); err != nil || u.ID != "u1" {
		t.Fatalf("user by login after the load: %+v, %v", u, err)
	}
	if err := d.Load(ctx, good); !errors.Is(err, storage.ErrNotEmpty) {
		t.Fatalf("second load: got %v, want ErrNotEmpty", err)
	}
}

// copyBenchStore is a bbolt store of 2,000 users, each with a session, a
// rotated refresh-token family (two links, two access tokens), a grant
// and an audit event: 18,000 records.
func copyBenchStore(b *testing.B) *bolt.DB {
	ctx := context.Background()
	const users = 2000
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	src, err := bolt.Open(filepath.Join(b.TempDir(), "keyport.db"), bolt.Options{Now: func() time.Time { return at }})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { src.Close() })
	var us []storage.User
	for i := range users {
		us = append(us, storage.User{ID: fmt.Sprintf("u%05d", i), Username: fmt.Sprintf("user%05d", i), Email: fmt.Sprintf("user%05d@example.com", i),
			Groups: []string{"staff"}, CreatedAt: at, UpdatedAt: at, PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"})
	}
	if err := src.CreateUsers(ctx, us); err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		if err != nil {
			b.Fatal(err)
		}
	}
	for _, u := range us {
		id := u.ID
		must(src.CreateSession(ctx, storage.Session{ID: "s-" + id, UserID: id, AuthTime: at, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}))
		must(src.PutGrant(ctx, storage.Grant{UserID: id, ClientID: "app", Scopes: []string{"openid"}, CreatedAt: at, UpdatedAt: at}, nil))
		r := storage.RefreshToken{Hash: "h1-" + id, ID: "r1-" + id, FamilyID: "f-" + id, ClientID: "app", UserID: id, CreatedAt: at, ExpiresAt: at.Add(720 * time.Hour)}
		must(src.CreateTokens(ctx, storage.AccessToken{ID: "a1-" + id, ClientID: "app", UserID: id, Subject: id, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}, &r))
		must(src.RotateRefreshToken(ctx, r.Hash, storage.RefreshToken{Hash: "h2-" + id, ID: "r2-" + id, CreatedAt: at, ExpiresAt: at.Add(720 * time.Hour)},
			storage.AccessToken{ID: "a2-" + id, ClientID: "app", UserID: id, Subject: id, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}))
		must(src.AppendAudit(ctx, storage.AuditEvent{ID: "e-" + id, Time: at, Type: "user.created", ActorKind: "cli", TargetUserID: id}))
	}
	return src
}

// benchCopy measures src's Dump and a Load into a fresh store from
// newDst (made outside the timer) per op.
func benchCopy(b *testing.B, src storage.Dumper, newDst func() (storage.Loader, func())) {
	ctx := context.Background()
	records := 0
	for b.Loop() {
		b.StopTimer()
		dst, done := newDst()
		b.StartTimer()
		var recs []storage.Record
		if err := src.Dump(ctx, func(r storage.Record) error { recs = append(recs, r); return nil }); err != nil {
			b.Fatal(err)
		}
		if err := dst.Load(ctx, recs); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		records = len(recs)
		done()
		b.StartTimer()
	}
	b.ReportMetric(float64(records), "records/op")
}

func newPostgresTarget(b *testing.B) func() (storage.Loader, func()) {
	return func() (storage.Loader, func()) {
		d, err := Open(context.Background(), schema.Database(b), Options{})
		if err != nil {
			b.Fatal(err)
		}
		return d, func() { d.Close() }
	}
}

// BenchmarkCopyBoltToPostgres: keyport migrate --from bolt --to postgres
// of copyBenchStore, without the verification.
func BenchmarkCopyBoltToPostgres(b *testing.B) {
	benchCopy(b, copyBenchStore(b), newPostgresTarget(b))
}

// BenchmarkCopyPostgresToBolt: the way back.
func BenchmarkCopyPostgresToBolt(b *testing.B) {
	ctx := context.Background()
	src, done := newPostgresTarget(b)()
	defer done()
	var recs []storage.Record
	if err := copyBenchStore(b).Dump(ctx, func(r storage.Record) error { recs = append(recs, r); return nil }); err != nil {
		b.Fatal(err)
	}
	if err := src.Load(ctx, recs); err != nil {
		b.Fatal(err)
	}
	benchCopy(b, src.(*DB), func() (storage.Loader, func()) {
		d, err := bolt.Open(filepath.Join(b.TempDir(), "keyport.db"), bolt.Options{})
		if err != nil {
			b.Fatal(err)
		}
		return d, func() { d.Close() }
	})
}

// TestEveryTableIsCopied: a table added to the schema must be copied by
// Load (and Dump), or left out on purpose (notCopiedTables), or keyport
// migrate would lose its rows silently.
func TestEveryTableIsCopied(t *testing.T) {
	d := openTest(t, time.Now)
	rows, err := d.pool.Query(t.Context(), "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename")
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{}
	for _, lt := range loadedTables {
		known[lt.table] = true
	}
	for _, name := range notCopiedTables {
		known[name] = true
	}
	for _, name := range tables {
		if !known[name] {
			t.Errorf("table %s is neither copied (load.go's loadedTables and dump.go) nor in notCopiedTables", name)
		}
		delete(known, name)
	}
	for name := range known {
		t.Errorf("load.go names table %s, which the schema lacks", name)
	}
}

// BenchmarkSummarize: what keyport migrate's verification costs per side
// (a dump and a digest of every record) for copyBenchStore.
func BenchmarkSummarize(b *testing.B) {
	src := copyBenchStore(b)
	for b.Loop() {
		if _, err := storage.Summarize(context.Background(), src); err != nil {
			b.Fatal(err)
		}
	}
}
