package storagetest

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// auditEvent is event id at, by actor about target (either may be "").
func auditEvent(id string, at time.Time, typ, actor, target string) storage.AuditEvent {
	e := storage.AuditEvent{
		ID: id, Time: at, Type: typ, ActorKind: "system",
		ActorID: actor, TargetUserID: target, ClientID: "app",
		IP: "192.0.2.1", UserAgent: "test", Reason: "because",
	}
	if actor != "" {
		e.ActorKind = "user"
	}
	return e
}

// auditLog appends n events a second apart from base: IDs e0000…, types
// cycling through three, actors a0/a1, targets t0/t1/t2.
func auditLog(ctx context.Context, t *testing.T, s storage.Store, n int) []storage.AuditEvent {
	t.Helper()
	types := []string{"signin.failed", "user.blocked", "client.created"}
	var all []storage.AuditEvent
	for i := range n {
		e := auditEvent(fmt.Sprintf("e%04d", i), base.Add(time.Duration(i)*time.Second), types[i%3],
			fmt.Sprintf("a%d", i%2), fmt.Sprintf("t%d", i%3))
		ok(t, s.AppendAudit(ctx, e), "append %s", e.ID)
		all = append(all, e)
	}
	return all
}

// newestFirst returns the events of all that keep, newest first.
func newestFirst(all []storage.AuditEvent, keep func(storage.AuditEvent) bool) []storage.AuditEvent {
	out := []storage.AuditEvent{}
	for i := len(all) - 1; i >= 0; i-- {
		if keep(all[i]) {
			out = append(out, all[i])
		}
	}
	return out
}

// listAll follows the cursor of q to the end and returns every event.
func listAll(ctx context.Context, t *testing.T, s storage.Store, q storage.AuditQuery) []storage.AuditEvent {
	t.Helper()
	out := []storage.AuditEvent{}
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("the cursor of %+v never ends", q)
		}
		page, next, err := s.ListAudit(ctx, q)
		ok(t, err, "list audit %+v", q)
		if q.Limit > 0 && len(page) > q.Limit {
			t.Fatalf("page of %d events, limit %d", len(page), q.Limit)
		}
		out = append(out, page...)
		if next == "" {
			return out
		}
		q.Cursor = next
	}
}

func auditIDs(events []storage.AuditEvent) []string {
	return idsOf(events, func(e storage.AuditEvent) string { return e.ID })
}

var auditTests = []test{
	{"AppendAndListNewestFirst", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		all := auditLog(ctx, t, s, 5)
		withChanges := auditEvent("e9999", base.Add(time.Hour), "user.updated", "a0", "t0")
		withChanges.Changes = []storage.AuditChange{{Field: "email", Before: "a@example.org", After: "b@example.org"}, {Field: "blocked", After: "true"}}
		ok(t, s.AppendAudit(ctx, withChanges), "append with changes")
		got, next, err := s.ListAudit(ctx, storage.AuditQuery{})
		ok(t, err, "list")
		equal(t, next, "", "cursor of the only page")
		equal(t, got, append([]storage.AuditEvent{withChanges}, newestFirst(all, func(storage.AuditEvent) bool { return true })...), "events")
	}},
	{"EmptyLog", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		got, next, err := s.ListAudit(t.Context(), storage.AuditQuery{TargetUserID: "nobody"})
		ok(t, err, "list")
		equal(t, len(got), 0, "events")
		equal(t, next, "", "cursor")
	}},
	{"Filters", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		all := auditLog(ctx, t, s, 60)
		from, to := base.Add(10*time.Second), base.Add(40*time.Second)
		cases := []struct {
			name string
			q    storage.AuditQuery
			keep func(storage.AuditEvent) bool
		}{
			{"actor", storage.AuditQuery{ActorID: "a1"}, func(e storage.AuditEvent) bool { return e.ActorID == "a1" }},
			{"target", storage.AuditQuery{TargetUserID: "t2"}, func(e storage.AuditEvent) bool { return e.TargetUserID == "t2" }},
			{"one type", storage.AuditQuery{Types: []string{"user.blocked"}}, func(e storage.AuditEvent) bool { return e.Type == "user.blocked" }},
			{"two types", storage.AuditQuery{Types: []string{"user.blocked", "client.created"}}, func(e storage.AuditEvent) bool { return e.Type != "signin.failed" }},
			{"unknown type", storage.AuditQuery{Types: []string{"nothing.happened"}}, func(storage.AuditEvent) bool { return false }},
			{"from", storage.AuditQuery{From: from}, func(e storage.AuditEvent) bool { return !e.Time.Before(from) }},
			{"to", storage.AuditQuery{To: to}, func(e storage.AuditEvent) bool { return e.Time.Before(to) }},
			{"actor and target", storage.AuditQuery{ActorID: "a0", TargetUserID: "t1"}, func(e storage.AuditEvent) bool { return e.ActorID == "a0" && e.TargetUserID == "t1" }},
			{"everything", storage.AuditQuery{ActorID: "a1", TargetUserID: "t0", Types: []string{"signin.failed"}, From: from, To: to},
				func(e storage.AuditEvent) bool {
					return e.ActorID == "a1" && e.TargetUserID == "t0" && e.Type == "signin.failed" && !e.Time.Before(from) && e.Time.Before(to)
				}},
			{"target and time", storage.AuditQuery{TargetUserID: "t1", From: from, To: to},
				func(e storage.AuditEvent) bool {
					return e.TargetUserID == "t1" && !e.Time.Before(from) && e.Time.Before(to)
				}},
			{"actor and type", storage.AuditQuery{ActorID: "a0", Types: []string{"client.created"}},
				func(e storage.AuditEvent) bool { return e.ActorID == "a0" && e.Type == "client.created" }},
		}
		for _, tc := range cases {
			want := newestFirst(all, tc.keep)
			if tc.name != "unknown type" && len(want) == 0 {
				t.Fatalf("%s: the fixture matches nothing", tc.name)
			}
			equal(t, auditIDs(listAll(ctx, t, s, tc.q)), auditIDs(want), "%s", tc.name)
			// The same in pages of 7.
			tc.q.Limit = 7
			equal(t, auditIDs(listAll(ctx, t, s, tc.q)), auditIDs(want), "%s in pages of 7", tc.name)
		}
	}},
	{"TimeRangeEdges", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		at := base.Add(time.Minute)
		for i, d := range []time.Duration{-time.Nanosecond, 0, 0, time.Nanosecond} {
			ok(t, s.AppendAudit(ctx, auditEvent(fmt.Sprintf("e%d", i), at.Add(d), "user.blocked", "a", "t")), "append")
		}
		for _, q := range []storage.AuditQuery{{}, {TargetUserID: "t"}, {ActorID: "a"}} {
			q.From, q.To = at, at.Add(time.Nanosecond)
			equal(t, auditIDs(listAll(ctx, t, s, q)), []string{"e2", "e1"}, "From is in, To is out (%+v)", q)
			q.From, q.To = at.Add(time.Nanosecond), time.Time{}
			equal(t, auditIDs(listAll(ctx, t, s, q)), []string{"e3"}, "from the last (%+v)", q)
			q.From, q.To = time.Time{}, at
			equal(t, auditIDs(listAll(ctx, t, s, q)), []string{"e0"}, "until the middle (%+v)", q)
			q.From, q.To = at, at
			equal(t, auditIDs(listAll(ctx, t, s, q)), []string{}, "empty range (%+v)", q)
		}
	}},
	{"PaginationThroughThousand", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		all := auditLog(ctx, t, s, 1000)
		for _, q := range []storage.AuditQuery{{Limit: 37}, {Limit: storage.MaxAuditLimit}, {TargetUserID: "t1", Limit: 50}, {ActorID: "a0", Limit: 1}} {
			want := newestFirst(all, func(e storage.AuditEvent) bool {
				return (q.TargetUserID == "" || e.TargetUserID == q.TargetUserID) && (q.ActorID == "" || e.ActorID == q.ActorID)
			})
			got := listAll(ctx, t, s, q)
			equal(t, auditIDs(got), auditIDs(want), "every event once, in order (%+v)", q)
		}
		// No limit, and one above the maximum, give bounded pages.
		page, next, err := s.ListAudit(ctx, storage.AuditQuery{})
		ok(t, err, "list")
		equal(t, len(page), storage.DefaultAuditLimit, "default page")
		if next == "" {
			t.Fatal("no cursor after the default page")
		}
		page, _, err = s.ListAudit(ctx, storage.AuditQuery{Limit: 100000})
		ok(t, err, "list")
		equal(t, len(page), storage.MaxAuditLimit, "largest page")
		// Appending meanwhile neither repeats nor skips an event on the next page.
		ok(t, s.AppendAudit(ctx, auditEvent("late", base.Add(time.Hour), "user.blocked", "a0", "t0")), "append")
		rest, _, err := s.ListAudit(ctx, storage.AuditQuery{Cursor: next})
		ok(t, err, "next page")
		equal(t, rest[0].ID, all[len(all)-1-storage.DefaultAuditLimit].ID, "next page starts after the first")
	}},
	{"ForeignOrGarbageCursor", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		auditLog(ctx, t, s, 20)
		_, byTarget, err := s.ListAudit(ctx, storage.AuditQuery{TargetUserID: "t0", Limit: 2})
		ok(t, err, "list")
		_, byType, err := s.ListAudit(ctx, storage.AuditQuery{Types: []string{"user.blocked"}, Limit: 2})
		ok(t, err, "list")
		for _, q := range []storage.AuditQuery{
			{TargetUserID: "t1", Cursor: byTarget},
			{Cursor: byTarget},
			{ActorID: "t0", Cursor: byTarget},
			{TargetUserID: "t0", From: base, Cursor: byTarget},
			{Types: []string{"signin.failed"}, Cursor: byType},
			{Cursor: "garbage!"},
			{Cursor: "AAAA"},
			{Cursor: strings.Repeat("A", 400)},
		} {
			_, _, err := s.ListAudit(ctx, q)
			isErr(t, err, storage.ErrInvalid, "cursor %q in %+v", q.Cursor, q)
		}
		// Types are a set: their order and repeats do not change the query.
		_, two, err := s.ListAudit(ctx, storage.AuditQuery{Types: []string{"user.blocked", "client.created"}, Limit: 2})
		ok(t, err, "list")
		_, _, err = s.ListAudit(ctx, storage.AuditQuery{Types: []string{"client.created", "user.blocked", "client.created"}, Cursor: two})
		ok(t, err, "the same types in another order")
	}},
	{"Sweep", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		all := auditLog(ctx, t, s, 30)
		cut := base.Add(12 * time.Second) // e0000…e0011 are older
		n, err := s.SweepAudit(ctx, cut)
		ok(t, err, "sweep")
		equal(t, n, 12, "swept")
		kept := func(e storage.AuditEvent) bool { return !e.Time.Before(cut) }
		equal(t, auditIDs(listAll(ctx, t, s, storage.AuditQuery{})), auditIDs(newestFirst(all, kept)), "the log")
		for _, q := range []storage.AuditQuery{{TargetUserID: "t0"}, {ActorID: "a1"}, {TargetUserID: "t2", To: cut}, {ActorID: "a0", To: cut}} {
			want := newestFirst(all, func(e storage.AuditEvent) bool {
				return kept(e) && (q.To.IsZero() || e.Time.Before(q.To)) &&
					(q.TargetUserID == "" || e.TargetUserID == q.TargetUserID) && (q.ActorID == "" || e.ActorID == q.ActorID)
			})
			equal(t, auditIDs(listAll(ctx, t, s, q)), auditIDs(want), "index after the sweep (%+v)", q)
		}
		n, err = s.SweepAudit(ctx, cut)
		ok(t, err, "sweep again")
		equal(t, n, 0, "nothing more to sweep")
		// New events for a swept target are found alone.
		ok(t, s.AppendAudit(ctx, auditEvent("new", base.Add(time.Hour), "user.blocked", "a0", "t0")), "append")
		n, err = s.SweepAudit(ctx, base.Add(time.Hour))
		ok(t, err, "sweep all but the new one")
		equal(t, n, 18, "swept")
		for _, q := range []storage.AuditQuery{{}, {TargetUserID: "t0"}, {ActorID: "a0"}} {
			equal(t, auditIDs(listAll(ctx, t, s, q)), []string{"new"}, "after the second sweep (%+v)", q)
		}
		for _, q := range []storage.AuditQuery{{TargetUserID: "t1"}, {ActorID: "a1"}} {
			equal(t, auditIDs(listAll(ctx, t, s, q)), []string{}, "after the second sweep (%+v)", q)
		}
	}},
	{"SweepManyInChunks", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		auditLog(ctx, t, s, 2500)
		n, err := s.SweepAudit(ctx, base.Add(2400*time.Second))
		ok(t, err, "sweep")
		equal(t, n, 2400, "swept")
		equal(t, len(listAll(ctx, t, s, storage.AuditQuery{TargetUserID: "t0"})), 34, "target t0 keeps its third of e2400…e2499")
	}},
	{"RefusedEventsStoreNothing", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		big := auditEvent("big", base, "user.updated", "a", "t")
		big.Changes = []storage.AuditChange{{Field: "custom_data", After: strings.Repeat("x", storage.MaxAuditEventBytes)}}
		isErr(t, s.AppendAudit(ctx, big), storage.ErrTooLarge, "oversized event")
		for name, bad := range map[string]func(*storage.AuditEvent){
			"no ID":         func(e *storage.AuditEvent) { e.ID = "" },
			"no type":       func(e *storage.AuditEvent) { e.Type = "" },
			"no actor kind": func(e *storage.AuditEvent) { e.ActorKind = "" },
			"no time":       func(e *storage.AuditEvent) { e.Time = time.Time{} },
			"NUL in target": func(e *storage.AuditEvent) { e.TargetUserID = "t\x00x" },
			"long actor":    func(e *storage.AuditEvent) { e.ActorID = strings.Repeat("a", storage.MaxAuditID+1) },
		} {
			e := auditEvent("bad", base, "user.updated", "a", "t")
			bad(&e)
			isErr(t, s.AppendAudit(ctx, e), storage.ErrInvalid, "%s", name)
		}
		dup := auditEvent("dup", base, "user.updated", "a", "t")
		ok(t, s.AppendAudit(ctx, dup), "append")
		again := dup
		again.Reason = "other"
		isErr(t, s.AppendAudit(ctx, again), storage.ErrConflict, "same ID and time")
		for _, q := range []storage.AuditQuery{{}, {TargetUserID: "t"}, {ActorID: "a"}} {
			equal(t, listAll(ctx, t, s, q), []storage.AuditEvent{dup}, "only the good event (%+v)", q)
		}
	}},
	{"UserAgentTruncated", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		e := auditEvent("ua", base, "signin.failed", "", "t")
		e.UserAgent = strings.Repeat("x", storage.MaxAuditUserAgent-1) + "€€" // a 3-byte character across the bound
		ok(t, s.AppendAudit(ctx, e), "append")
		got := listAll(ctx, t, s, storage.AuditQuery{})
		equal(t, got[0].UserAgent, strings.Repeat("x", storage.MaxAuditUserAgent-1), "user agent cut before the character")
	}},
	{"ConcurrentAppends", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		const n = 64
		errs := concurrently(n, func(i int) error {
			// Half share one instant: IDs, not times, tell them apart.
			return s.AppendAudit(ctx, auditEvent(fmt.Sprintf("e%02d", i), base.Add(time.Duration(i%2)*time.Second), "signin.failed", "a", fmt.Sprintf("t%d", i%4)))
		})
		for i, err := range errs {
			ok(t, err, "append %d", i)
		}
		got := auditIDs(listAll(ctx, t, s, storage.AuditQuery{Limit: 10}))
		equal(t, len(got), n, "events")
		slices.Sort(got)
		got = slices.Compact(got)
		equal(t, len(got), n, "distinct events")
		equal(t, len(listAll(ctx, t, s, storage.AuditQuery{TargetUserID: "t3"})), n/4, "one target's events")
	}},
}
