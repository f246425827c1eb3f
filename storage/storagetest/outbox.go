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

var outboxTests = []test{
	{"EnqueueFillsDefaults", testOutboxEnqueueDefaults},
	{"OneTimeTokenWithMessages", testOutboxWithOneTimeToken},
	{"EnqueueAllOrNothing", testOutboxEnqueueAllOrNothing},
	{"EnqueueRefusesBadMessages", testOutboxEnqueueRefuses},
	{"ClaimLeases", testOutboxClaimLeases},
	{"ClaimByDueTime", testOutboxClaimOrder},
	{"RetryMovesDueTime", testOutboxRetry},
	{"CompleteAndFailEndIt", testOutboxCompleteFail},
	{"ListPagesAndFilters", testOutboxList},
	{"SweepAfterRetention", testOutboxSweep},
	{"ConcurrentClaimsShareNothing", testOutboxConcurrentClaims},
	{"RetryFailedRevivesIt", testOutboxRetryFailed},
}

// newOutboxMessage is a message created at created, due then.
func newOutboxMessage(id, kind string, created time.Time) storage.OutboxMessage {
	return storage.OutboxMessage{ID: id, Kind: kind, Payload: []byte(`{"to":"` + id + `"}`), CreatedAt: created}
}

func outboxID(m storage.OutboxMessage) string { return m.ID }

// listAllOutbox reads every message matching q, page by page.
func listAllOutbox(t *testing.T, s storage.Store, q storage.OutboxQuery) []storage.OutboxMessage {
	t.Helper()
	var all []storage.OutboxMessage
	for range 1000 {
		page, next, err := s.ListOutbox(context.Background(), q)
		ok(t, err, "list outbox %+v", q)
		all = append(all, page...)
		if next == "" {
			return all
		}
		q.Cursor = next
	}
	t.Fatal("list outbox never ends")
	return nil
}

func testOutboxEnqueueDefaults(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	m := newOutboxMessage("m1", "mail", base)
	later := newOutboxMessage("m2", "webhook", base)
	later.NextAttemptAt, later.Deadline = base.Add(time.Minute), base.Add(time.Hour)
	ok(t, s.EnqueueOutbox(ctx, m, later), "enqueue")

	got := listAllOutbox(t, s, storage.OutboxQuery{})
	want1 := m
	want1.State, want1.NextAttemptAt, want1.Deadline = storage.OutboxPending, base, base.Add(storage.DefaultOutboxLifetime)
	want2 := later
	want2.State = storage.OutboxPending
	equal(t, got, []storage.OutboxMessage{want2, want1}, "stored messages, newest first")
}

func testOutboxEnqueueAllOrNothing(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	ok(t, s.EnqueueOutbox(ctx, newOutboxMessage("m1", "mail", base)), "enqueue m1")
	isErr(t, s.EnqueueOutbox(ctx, newOutboxMessage("m2", "mail", base), newOutboxMessage("m1", "mail", base)),
		storage.ErrConflict, "enqueue m2 with a taken ID")
	isErr(t, s.EnqueueOutbox(ctx, newOutboxMessage("m3", "mail", base), newOutboxMessage("m3", "webhook", base)),
		storage.ErrConflict, "enqueue one ID twice")
	equal(t, idsOf(listAllOutbox(t, s, storage.OutboxQuery{}), outboxID), []string{"m1"}, "messages after refused batches")
	msgs, err := s.ClaimOutbox(ctx, base, time.Minute, 10)
	ok(t, err, "claim")
	equal(t, idsOf(msgs, outboxID), []string{"m1"}, "claimable after refused batches")
}

func testOutboxEnqueueRefuses(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	good := newOutboxMessage("good", "mail", base)
	cases := []struct {
		name   string
		change func(*storage.OutboxMessage)
		want   error
	}{
		{"empty ID", func(m *storage.OutboxMessage) { m.ID = "" }, storage.ErrInvalid},
		{"long ID", func(m *storage.OutboxMessage) { m.ID = strings.Repeat("x", storage.MaxOutboxID+1) }, storage.ErrInvalid},
		{"NUL in ID", func(m *storage.OutboxMessage) { m.ID = "a\x00b" }, storage.ErrInvalid},
		{"empty kind", func(m *storage.OutboxMessage) { m.Kind = "" }, storage.ErrInvalid},
		{"NUL in kind", func(m *storage.OutboxMessage) { m.Kind = "mail\x00" }, storage.ErrInvalid},
		{"no creation time", func(m *storage.OutboxMessage) { m.CreatedAt = time.Time{} }, storage.ErrInvalid},
		{"delivered", func(m *storage.OutboxMessage) { m.State = storage.OutboxDelivered }, storage.ErrInvalid},
		{"attempted", func(m *storage.OutboxMessage) { m.Attempts = 1 }, storage.ErrInvalid},
		{"leased", func(m *storage.OutboxMessage) { m.LeaseUntil = base.Add(time.Hour) }, storage.ErrInvalid},
		{"payload too large", func(m *storage.OutboxMessage) { m.Payload = make([]byte, storage.MaxOutboxPayloadBytes+1) }, storage.ErrTooLarge},
	}
	for _, c := range cases {
		bad := newOutboxMessage("bad", "mail", base)
		c.change(&bad)
		isErr(t, s.EnqueueOutbox(ctx, good, bad), c.want, "enqueue a good message with one of %s", c.name)
	}
	equal(t, idsOf(listAllOutbox(t, s, storage.OutboxQuery{}), outboxID), []string{}, "messages after refusals")

	largest := newOutboxMessage("largest", "mail", base)
	largest.Payload = make([]byte, storage.MaxOutboxPayloadBytes)
	ok(t, s.EnqueueOutbox(ctx, largest), "enqueue a payload of MaxOutboxPayloadBytes")
	msgs, err := s.ClaimOutbox(ctx, base, time.Minute, 1)
	ok(t, err, "claim")
	equal(t, len(msgs[0].Payload), storage.MaxOutboxPayloadBytes, "payload length read back")
}

func testOutboxClaimLeases(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	for i := range 3 {
		ok(t, s.EnqueueOutbox(ctx, newOutboxMessage(fmt.Sprintf("m%d", i), "mail", base.Add(time.Duration(i)*time.Second))), "enqueue")
	}
	now := base.Add(time.Minute)
	first, err := s.ClaimOutbox(ctx, now, 2*time.Minute, 2)
	ok(t, err, "first claim")
	equal(t, idsOf(first, outboxID), []string{"m0", "m1"}, "first claim")
	for _, m := range first {
		equal(t, m.LeaseUntil, now.Add(2*time.Minute), "lease of %s", m.ID)
		equal(t, m.State, storage.OutboxPending, "state of %s", m.ID)
	}
	second, err := s.ClaimOutbox(ctx, now, 2*time.Minute, 10)
	ok(t, err, "second claim")
	equal(t, idsOf(second, outboxID), []string{"m2"}, "second claim: only what the first left")
	third, err := s.ClaimOutbox(ctx, now.Add(2*time.Minute-time.Nanosecond), 2*time.Minute, 10)
	ok(t, err, "claim before the leases end")
	equal(t, idsOf(third, outboxID), []string{}, "claim while every message is leased")

	// The leases end unfinished (the worker died): the messages are due again.
	again, err := s.ClaimOutbox(ctx, now.Add(2*time.Minute), time.Minute, 10)
	ok(t, err, "claim after the leases end")
	equal(t, idsOf(again, outboxID), []string{"m0", "m1", "m2"}, "claim after the leases end")
	equal(t, again[0].Attempts, 0, "attempts of a message whose lease ended")

	_, err = s.ClaimOutbox(ctx, now, 0, 10)
	isErr(t, err, storage.ErrInvalid, "claim with no lease")
}

func testOutboxClaimOrder(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	// IDs in creation order, due times in another order.
	due := map[string]time.Duration{"a": 3 * time.Minute, "b": time.Minute, "c": 2 * time.Minute, "d": 10 * time.Minute}
	var msgs []storage.OutboxMessage
	for _, id := range []string{"a", "b", "c", "d"} {
		m := newOutboxMessage(id, "mail", base)
		m.NextAttemptAt = base.Add(due[id])
		msgs = append(msgs, m)
	}
	ok(t, s.EnqueueOutbox(ctx, msgs...), "enqueue")
	none, err := s.ClaimOutbox(ctx, base.Add(time.Minute-time.Nanosecond), time.Minute, 10)
	ok(t, err, "claim before any is due")
	equal(t, idsOf(none, outboxID), []string{}, "claim before any is due")
	got, err := s.ClaimOutbox(ctx, base.Add(5*time.Minute), time.Hour, 10)
	ok(t, err, "claim")
	equal(t, idsOf(got, outboxID), []string{"b", "c", "a"}, "claim: due ones, earliest due first")
}

func testOutboxRetry(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	ok(t, s.EnqueueOutbox(ctx, newOutboxMessage("m1", "webhook", base)), "enqueue")
	_, err := s.ClaimOutbox(ctx, base, time.Minute, 10)
	ok(t, err, "claim")
	longErr := strings.Repeat("é", storage.MaxOutboxError) // two bytes each
	ok(t, s.RetryOutbox(ctx, "m1", base.Add(30*time.Second), longErr), "retry")

	got := listAllOutbox(t, s, storage.OutboxQuery{})
	equal(t, got[0].Attempts, 1, "attempts after a retry")
	equal(t, got[0].LeaseUntil, time.Time{}, "lease after a retry")
	equal(t, got[0].NextAttemptAt, base.Add(30*time.Second), "next attempt after a retry")
	equal(t, got[0].LastError, strings.Repeat("é", storage.MaxOutboxError/2), "last error, cut to MaxOutboxError bytes")

	early, err := s.ClaimOutbox(ctx, base.Add(29*time.Second), time.Minute, 10)
	ok(t, err, "claim before the retry is due")
	equal(t, idsOf(early, outboxID), []string{}, "claim before the retry is due")
	due, err := s.ClaimOutbox(ctx, base.Add(30*time.Second), time.Minute, 10)
	ok(t, err, "claim when the retry is due")
	equal(t, idsOf(due, outboxID), []string{"m1"}, "claim when the retry is due")

	// A retry may also bring the due time forward (an earlier next).
	ok(t, s.RetryOutbox(ctx, "m1", base.Add(time.Second), "again"), "retry sooner")
	sooner, err := s.ClaimOutbox(ctx, base.Add(time.Second), time.Minute, 10)
	ok(t, err, "claim the sooner retry")
	equal(t, idsOf(sooner, outboxID), []string{"m1"}, "claim the sooner retry")
	equal(t, sooner[0].Attempts, 2, "attempts after two retries")
}

func testOutboxCompleteFail(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	ok(t, s.EnqueueOutbox(ctx, newOutboxMessage("done", "mail", base), newOutboxMessage("given-up", "mail", base),
		newOutboxMessage("unclaimed", "mail", base)), "enqueue")
	_, err := s.ClaimOutbox(ctx, base, time.Minute, 2)
	ok(t, err, "claim")
	ok(t, s.CompleteOutbox(ctx, "done", base.Add(time.Second)), "complete")
	ok(t, s.FailOutbox(ctx, "given-up", base.Add(2*time.Second), "550 no such user"), "fail")

	byID := map[string]storage.OutboxMessage{}
	for _, m := range listAllOutbox(t, s, storage.OutboxQuery{}) {
		byID[m.ID] = m
	}
	equal(t, []any{byID["done"].State, byID["done"].DeliveredAt, byID["done"].Attempts, byID["done"].LeaseUntil},
		[]any{storage.OutboxDelivered, base.Add(time.Second), 1, time.Time{}}, "delivered message")
	equal(t, []any{byID["given-up"].State, byID["given-up"].DeliveredAt, byID["given-up"].LastError, byID["given-up"].LeaseUntil},
		[]any{storage.OutboxFailed, base.Add(2 * time.Second), "550 no such user", time.Time{}}, "failed message")

	// Finished messages are never claimed again, however late.
	for _, at := range []time.Time{base.Add(time.Hour), base.Add(365 * 24 * time.Hour)} {
		got, err := s.ClaimOutbox(ctx, at, time.Minute, 10)
		ok(t, err, "claim at %v", at)
		equal(t, idsOf(got, outboxID), []string{"unclaimed"}, "claim at %v", at)
		ok(t, s.RetryOutbox(ctx, "unclaimed", base, "again"), "retry the unclaimed one")
	}

	isErr(t, s.CompleteOutbox(ctx, "done", base), storage.ErrConflict, "complete twice")
	isErr(t, s.RetryOutbox(ctx, "done", base, "late"), storage.ErrConflict, "retry a delivered message")
	isErr(t, s.FailOutbox(ctx, "given-up", base, "late"), storage.ErrConflict, "fail twice")
	isErr(t, s.CompleteOutbox(ctx, "given-up", base), storage.ErrConflict, "complete a failed message")
	isErr(t, s.CompleteOutbox(ctx, "nobody", base), storage.ErrNotFound, "complete an unknown message")
	isErr(t, s.RetryOutbox(ctx, "nobody", base, "x"), storage.ErrNotFound, "retry an unknown message")
	isErr(t, s.FailOutbox(ctx, "nobody", base, "x"), storage.ErrNotFound, "fail an unknown message")
	after := map[string]storage.OutboxMessage{}
	for _, m := range listAllOutbox(t, s, storage.OutboxQuery{}) {
		after[m.ID] = m
	}
	equal(t, after["done"], byID["done"], "delivered message after refused changes")
	equal(t, after["given-up"], byID["given-up"], "failed message after refused changes")
}

func testOutboxList(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	kinds := []string{"mail", "webhook", "mail", "backchannel_logout", "mail", "webhook", "mail"}
	var all []string
	for i, kind := range kinds {
		id := fmt.Sprintf("m%02d", i)
		all = append(all, id)
		ok(t, s.EnqueueOutbox(ctx, newOutboxMessage(id, kind, base.Add(time.Duration(i)*time.Second))), "enqueue %s", id)
	}
	claimed, err := s.ClaimOutbox(ctx, base.Add(time.Minute), time.Minute, 10)
	ok(t, err, "claim")
	equal(t, len(claimed), len(kinds), "claimed")
	ok(t, s.FailOutbox(ctx, "m00", base, "x"), "fail m00")
	ok(t, s.FailOutbox(ctx, "m02", base, "x"), "fail m02")
	ok(t, s.FailOutbox(ctx, "m03", base, "x"), "fail m03")
	ok(t, s.CompleteOutbox(ctx, "m05", base), "complete m05")

	newestFirst := slices.Clone(all)
	slices.Reverse(newestFirst)
	cases := []struct {
		q    storage.OutboxQuery
		want []string
	}{
		{storage.OutboxQuery{}, newestFirst},
		{storage.OutboxQuery{Limit: 3}, newestFirst},
		{storage.OutboxQuery{State: storage.OutboxFailed, Limit: 2}, []string{"m03", "m02", "m00"}},
		{storage.OutboxQuery{State: storage.OutboxPending, Limit: 1}, []string{"m06", "m04", "m01"}},
		{storage.OutboxQuery{State: storage.OutboxDelivered}, []string{"m05"}},
		{storage.OutboxQuery{Kind: "mail", Limit: 2}, []string{"m06", "m04", "m02", "m00"}},
		{storage.OutboxQuery{State: storage.OutboxFailed, Kind: "mail", Limit: 1}, []string{"m02", "m00"}},
		{storage.OutboxQuery{Kind: "nothing"}, []string{}},
	}
	for _, c := range cases {
		equal(t, idsOf(listAllOutbox(t, s, c.q), outboxID), c.want, "list %+v", c.q)
	}

	page, next, err := s.ListOutbox(ctx, storage.OutboxQuery{Limit: 3})
	ok(t, err, "first page")
	equal(t, idsOf(page, outboxID), []string{"m06", "m05", "m04"}, "first page")
	if next == "" {
		t.Fatal("first page of 7 messages has no cursor")
	}
	_, _, err = s.ListOutbox(ctx, storage.OutboxQuery{Kind: "mail", Cursor: next})
	isErr(t, err, storage.ErrInvalid, "cursor of another query")
	_, _, err = s.ListOutbox(ctx, storage.OutboxQuery{Cursor: "!!not base64"})
	isErr(t, err, storage.ErrInvalid, "malformed cursor")
	// The cursor continues where the first page ended.
	rest := listAllOutbox(t, s, storage.OutboxQuery{Limit: 3, Cursor: next})
	equal(t, idsOf(rest, outboxID), []string{"m03", "m02", "m01", "m00"}, "pages after the first")
}

func testOutboxSweep(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	ok(t, s.EnqueueOutbox(ctx, newOutboxMessage("done", "mail", base), newOutboxMessage("failed", "mail", base),
		newOutboxMessage("pending", "mail", base), newOutboxMessage("late", "mail", base)), "enqueue")
	_, err := s.ClaimOutbox(ctx, base, time.Minute, 10)
	ok(t, err, "claim")
	ok(t, s.CompleteOutbox(ctx, "done", base), "complete")
	ok(t, s.FailOutbox(ctx, "failed", base, "550"), "fail")
	ok(t, s.CompleteOutbox(ctx, "late", base.Add(time.Hour)), "complete late")

	clock.Set(base.Add(storage.OutboxRetention - time.Second))
	rep, err := s.Sweep(ctx)
	ok(t, err, "sweep within the retention")
	equal(t, rep.Outbox, 0, "messages swept within the retention")
	clock.Set(base.Add(storage.OutboxRetention))
	rep, err = s.Sweep(ctx)
	ok(t, err, "sweep at the end of the retention")
	equal(t, rep.Outbox, 2, "messages swept at the end of the retention")
	equal(t, idsOf(listAllOutbox(t, s, storage.OutboxQuery{}), outboxID), []string{"pending", "late"}, "messages left")
	equal(t, idsOf(listAllOutbox(t, s, storage.OutboxQuery{State: storage.OutboxFailed}), outboxID), []string{}, "failed messages left")
	// The pending message stays claimable, however old.
	got, err := s.ClaimOutbox(ctx, clock.Now(), time.Minute, 10)
	ok(t, err, "claim after the sweep")
	equal(t, idsOf(got, outboxID), []string{"pending"}, "claim after the sweep")
	// An ID swept is free again (the producer's IDs are unique anyway).
	ok(t, s.EnqueueOutbox(ctx, newOutboxMessage("done", "mail", clock.Now())), "enqueue a swept ID again")
}

func testOutboxConcurrentClaims(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	const n, workers = 60, 6
	var msgs []storage.OutboxMessage
	for i := range n {
		msgs = append(msgs, newOutboxMessage(fmt.Sprintf("m%03d", i), "mail", base))
	}
	ok(t, s.EnqueueOutbox(ctx, msgs...), "enqueue")
	claimed := make([][]storage.OutboxMessage, workers)
	errs := concurrently(workers, func(i int) error {
		for range n { // more claims than messages: a store that leases nothing ends too
			got, err := s.ClaimOutbox(ctx, base, time.Minute, 7)
			if err != nil || len(got) == 0 {
				return err
			}
			claimed[i] = append(claimed[i], got...)
		}
		return nil
	})
	seen := map[string]int{}
	for i := range workers {
		ok(t, errs[i], "worker %d", i)
		for _, m := range claimed[i] {
			seen[m.ID]++
		}
	}
	equal(t, len(seen), n, "messages claimed")
	for id, c := range seen {
		equal(t, c, 1, "claims of %s", id)
	}
}

// testOutboxWithOneTimeToken: a one-time token and the mail carrying its
// link are stored together, or neither is.
func testOutboxWithOneTimeToken(t *testing.T, s storage.Store, c *testclock.Clock) {
	ctx, now := t.Context(), c.Now()
	tok := storage.OneTimeToken{Hash: "h1", Purpose: "password_reset", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	ok(t, s.EnqueueOutbox(ctx, storage.OutboxMessage{ID: "taken", Kind: "mail", CreatedAt: now}), "enqueue")
	err := s.CreateOneTimeToken(ctx, tok, storage.OutboxMessage{ID: "taken", Kind: "mail", CreatedAt: now})
	isErr(t, err, storage.ErrConflict, "a token with a taken message ID")
	_, err = s.PeekOneTimeToken(ctx, "h1", "password_reset")
	isErr(t, err, storage.ErrNotFound, "the token of the refused write")
	big := storage.OutboxMessage{ID: "big", Kind: "mail", CreatedAt: now, Payload: make([]byte, storage.MaxOutboxPayloadBytes+1)}
	isErr(t, s.CreateOneTimeToken(ctx, tok, big), storage.ErrTooLarge, "a token with an oversize message")
	_, err = s.PeekOneTimeToken(ctx, "h1", "password_reset")
	isErr(t, err, storage.ErrNotFound, "the token of the refused write")

	ok(t, s.CreateOneTimeToken(ctx, tok, storage.OutboxMessage{ID: "m1", Kind: "mail", Payload: []byte("sealed"), CreatedAt: now}), "token with its mail")
	_, err = s.PeekOneTimeToken(ctx, "h1", "password_reset")
	ok(t, err, "the token")
	got, err := s.ClaimOutbox(ctx, now, time.Minute, 10)
	ok(t, err, "claim")
	ids := []string{}
	for _, m := range got {
		ids = append(ids, m.ID)
	}
	equal(t, ids, []string{"m1", "taken"}, "claimable messages")
}

func testOutboxRetryFailed(t *testing.T, s storage.Store, clock *testclock.Clock) {
	ctx := context.Background()
	ok(t, s.EnqueueOutbox(ctx, newOutboxMessage("failed", "mail", base), newOutboxMessage("done", "mail", base),
		newOutboxMessage("waiting", "mail", base.Add(time.Second))), "enqueue")
	_, err := s.ClaimOutbox(ctx, base, time.Minute, 2)
	ok(t, err, "claim")
	ok(t, s.FailOutbox(ctx, "failed", base.Add(time.Second), "550 mailbox unavailable"), "fail")
	ok(t, s.CompleteOutbox(ctx, "done", base.Add(time.Second)), "complete")

	isErr(t, second(s.RetryFailedOutbox(ctx, "done", base)), storage.ErrConflict, "revive a delivered message")
	isErr(t, second(s.RetryFailedOutbox(ctx, "waiting", base)), storage.ErrConflict, "revive a pending message")
	isErr(t, second(s.RetryFailedOutbox(ctx, "nobody", base)), storage.ErrNotFound, "revive an unknown message")

	// Long after the first deadline: the message gets a fresh one.
	now := base.Add(48 * time.Hour)
	revived, err := s.RetryFailedOutbox(ctx, "failed", now)
	ok(t, err, "revive the failed message")
	isErr(t, second(s.RetryFailedOutbox(ctx, "failed", now)), storage.ErrConflict, "revive it twice")
	got := listAllOutbox(t, s, storage.OutboxQuery{State: storage.OutboxPending})
	equal(t, idsOf(got, outboxID), []string{"waiting", "failed"}, "pending after the revival")
	m := got[1]
	equal(t, revived, m, "the revived message as returned and as listed")
	equal(t, []any{m.State, m.NextAttemptAt, m.Deadline, m.DeliveredAt, m.LeaseUntil, m.Attempts, m.LastError},
		[]any{storage.OutboxPending, now, now.Add(storage.DefaultOutboxLifetime), time.Time{}, time.Time{}, 1, "550 mailbox unavailable"},
		"revived message")
	equal(t, idsOf(listAllOutbox(t, s, storage.OutboxQuery{State: storage.OutboxFailed}), outboxID), []string{}, "failed after the revival")

	// It is due at once, and its retention no longer runs: a sweep after
	// the old one would have ended leaves it.
	claimed, err := s.ClaimOutbox(ctx, now, time.Minute, 10)
	ok(t, err, "claim after the revival")
	equal(t, idsOf(claimed, outboxID), []string{"waiting", "failed"}, "claim after the revival")
	ok(t, s.CompleteOutbox(ctx, "failed", now.Add(time.Second)), "deliver the revived message")
	clock.Set(base.Add(time.Second + storage.OutboxRetention))
	_, err = s.Sweep(ctx)
	ok(t, err, "sweep")
	equal(t, idsOf(listAllOutbox(t, s, storage.OutboxQuery{State: storage.OutboxDelivered}), outboxID), []string{"failed"},
		"delivered after a sweep at the old retention's end")
}

// second is the error of a call that also returns a value.
func second[T any](_ T, err error) error { return err }
