package storagetest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// The audit events that accompany sign-in records: RecordSignIn's
// w.Audit and RecordAttempt's event are written with the rest, or the
// whole write is refused.

// auditOf lists the whole audit log, newest first.
func auditOf(ctx context.Context, t *testing.T, s storage.Store) []storage.AuditEvent {
	t.Helper()
	return listAll(ctx, t, s, storage.AuditQuery{})
}

// badAuditEvents are events AppendAudit refuses, with the error it gives.
func badAuditEvents(e storage.AuditEvent) map[string]struct {
	e   storage.AuditEvent
	err error
} {
	noType, nulTarget, big := e, e, e
	noType.Type = ""
	nulTarget.TargetUserID = "u1\x00u2"
	big.Reason = strings.Repeat("x", storage.MaxAuditEventBytes)
	return map[string]struct {
		e   storage.AuditEvent
		err error
	}{
		"no type":         {noType, storage.ErrInvalid},
		"NUL in target":   {nulTarget, storage.ErrInvalid},
		"larger than max": {big, storage.ErrTooLarge},
	}
}

var signInAuditTests = []test{
	{"RecordSignInAppendsTheEvent", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create")
		w := signIn("u1", "a1", "s1", now)
		e := auditEvent("ev1", now, "signin.succeeded", "u1", "u1")
		e.UserAgent = strings.Repeat("é", storage.MaxAuditUserAgent) // cut like AppendAudit's
		w.Audit = &e
		_, err := s.RecordSignIn(ctx, w)
		ok(t, err, "record sign-in")
		want := e
		want.UserAgent = strings.Repeat("é", storage.MaxAuditUserAgent/2)
		equal(t, auditOf(ctx, t, s), []storage.AuditEvent{want}, "audit log")
		byTarget, _, err := s.ListAudit(ctx, storage.AuditQuery{TargetUserID: "u1"})
		ok(t, err, "list by target")
		equal(t, auditIDs(byTarget), []string{"ev1"}, "indexed by target")
		byActor, _, err := s.ListAudit(ctx, storage.AuditQuery{ActorID: "u1"})
		ok(t, err, "list by actor")
		equal(t, auditIDs(byActor), []string{"ev1"}, "indexed by actor")
	}},
	{"RecordSignInWithoutEvent", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create")
		_, err := s.RecordSignIn(ctx, signIn("u1", "a1", "s1", c.Now()))
		ok(t, err, "record sign-in")
		equal(t, auditIDs(auditOf(ctx, t, s)), []string{}, "audit log")
	}},
	{"RecordSignInBadEventWritesNothing", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		u := newUser("u1", "alice", "")
		ok(t, s.CreateUser(ctx, u), "create")
		for name, bad := range badAuditEvents(auditEvent("ev1", now, "signin.succeeded", "u1", "u1")) {
			w := signIn("u1", "a1", "s1", now)
			w.Audit = &bad.e
			_, err := s.RecordSignIn(ctx, w)
			isErr(t, err, bad.err, "%s", name)
			wroteNothing(ctx, t, s, u)
			_, err = s.GetSession(ctx, "s1")
			isErr(t, err, storage.ErrNotFound, "%s: the session", name)
		}
		equal(t, auditIDs(auditOf(ctx, t, s)), []string{}, "audit log")
	}},
	{"RecordSignInTakenEventWritesNothing", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		u := newUser("u1", "alice", "")
		ok(t, s.CreateUser(ctx, u), "create")
		first := auditEvent("ev1", now, "user.blocked", "", "u2")
		ok(t, s.AppendAudit(ctx, first), "append")
		w := signIn("u1", "a1", "s1", now)
		e := auditEvent("ev1", now, "signin.succeeded", "u1", "u1")
		w.Audit = &e
		_, err := s.RecordSignIn(ctx, w)
		isErr(t, err, storage.ErrConflict, "an event whose ID and time are taken")
		wroteNothing(ctx, t, s, u)
		_, err = s.GetSession(ctx, "s1")
		isErr(t, err, storage.ErrNotFound, "the session")
		equal(t, auditOf(ctx, t, s), []storage.AuditEvent{first}, "audit log")
		byTarget, _, err := s.ListAudit(ctx, storage.AuditQuery{TargetUserID: "u1"})
		ok(t, err, "list by target")
		equal(t, auditIDs(byTarget), []string{}, "no index entry")
	}},
	{"RecordSignInFailureWritesNoEvent", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		u := newUser("u1", "alice", "")
		ok(t, s.CreateUser(ctx, u), "create")
		w := signIn("u1", "a1", "s1", now)
		w.Update = func(u storage.User) (storage.User, error) { return u, errBoom }
		e := auditEvent("ev1", now, "signin.succeeded", "u1", "u1")
		w.Audit = &e
		_, err := s.RecordSignIn(ctx, w)
		isErr(t, err, errBoom, "an update that fails")
		equal(t, auditIDs(auditOf(ctx, t, s)), []string{}, "audit log")
		// And the event was not spent: it can be written now.
		ok(t, s.AppendAudit(ctx, e), "append the same event")
	}},
	{"RecordAttemptWritesBoth", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		a := attempt("a1", "u1", now)
		a.Success, a.Reason = false, "wrong password"
		e := auditEvent("ev1", now, "signin.failed", "", "u1")
		ok(t, s.RecordAttempt(ctx, a, &e), "record attempt")
		attempts, err := s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "list attempts")
		equal(t, attempts, []storage.LoginAttempt{a}, "sign-in history")
		equal(t, auditOf(ctx, t, s), []storage.AuditEvent{e}, "audit log")
		ok(t, s.RecordAttempt(ctx, attempt("a2", "u1", now), nil), "record attempt without event")
		attempts, err = s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "list attempts")
		equal(t, attemptIDs(attempts), []string{"a2", "a1"}, "sign-in history")
		equal(t, auditIDs(auditOf(ctx, t, s)), []string{"ev1"}, "audit log")
	}},
	{"RecordAttemptBadEventWritesNothing", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		first := auditEvent("ev1", now, "user.blocked", "", "u2")
		ok(t, s.AppendAudit(ctx, first), "append")
		cases := badAuditEvents(auditEvent("ev2", now, "signin.failed", "", "u1"))
		cases["taken"] = struct {
			e   storage.AuditEvent
			err error
		}{auditEvent("ev1", now, "signin.failed", "", "u1"), storage.ErrConflict}
		for name, bad := range cases {
			err := s.RecordAttempt(ctx, attempt("a1", "u1", now), &bad.e)
			isErr(t, err, bad.err, "%s", name)
		}
		attempts, err := s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "list attempts")
		equal(t, attemptIDs(attempts), []string{}, "sign-in history")
		equal(t, auditOf(ctx, t, s), []storage.AuditEvent{first}, "audit log")
	}}, {"PutGrantWritesBoth", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		g := storage.Grant{UserID: "u1", ClientID: "wiki", Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}
		e := auditEvent("ev1", now, "consent.granted", "", "u1")
		ok(t, s.PutGrant(ctx, g, &e), "put grant with event")
		got, err := s.GetGrant(ctx, "u1", "wiki")
		ok(t, err, "get grant")
		equal(t, got.Scopes, g.Scopes, "grant's scopes")
		equal(t, auditOf(ctx, t, s), []storage.AuditEvent{e}, "audit log")
	}},
	{"PutGrantBadEventWritesNothing", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		first := auditEvent("ev1", now, "user.blocked", "", "u2")
		ok(t, s.AppendAudit(ctx, first), "append")
		cases := badAuditEvents(auditEvent("ev2", now, "consent.granted", "", "u1"))
		cases["taken"] = struct {
			e   storage.AuditEvent
			err error
		}{auditEvent("ev1", now, "consent.granted", "", "u1"), storage.ErrConflict}
		for name, bad := range cases {
			g := storage.Grant{UserID: "u1", ClientID: "wiki", Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}
			isErr(t, s.PutGrant(ctx, g, &bad.e), bad.err, "%s", name)
		}
		_, err := s.GetGrant(ctx, "u1", "wiki")
		isErr(t, err, storage.ErrNotFound, "grant after refused events")
		equal(t, auditOf(ctx, t, s), []storage.AuditEvent{first}, "audit log")
	}},
	{"EventsCarryTheirOutboxMessages", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		msg := func(id string) storage.OutboxMessage {
			return storage.OutboxMessage{ID: id, Kind: "webhook", Payload: []byte("{}"), CreatedAt: now}
		}
		claimable := func() []string {
			got, _, err := s.ListOutbox(ctx, storage.OutboxQuery{Limit: 100})
			ok(t, err, "list outbox")
			ids := []string{}
			for _, m := range got {
				ids = append(ids, m.ID)
			}
			slices.Sort(ids)
			return ids
		}
		// AppendAudit: the event and its messages, or neither.
		ok(t, s.AppendAudit(ctx, auditEvent("ev1", now, "user.blocked", "", "u1"), msg("m1"), msg("m2")), "append with messages")
		isErr(t, s.AppendAudit(ctx, auditEvent("ev2", now, "user.blocked", "", "u1"), msg("m1")), storage.ErrConflict, "a taken message ID")
		equal(t, auditIDs(auditOf(ctx, t, s)), []string{"ev1"}, "audit log")
		// RecordSignIn and PutGrant the same.
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create")
		w := signIn("u1", "a1", "s1", now)
		e := auditEvent("ev3", now, "signin.succeeded", "u1", "u1")
		w.Audit, w.Outbox = &e, []storage.OutboxMessage{msg("m3")}
		_, err := s.RecordSignIn(ctx, w)
		ok(t, err, "record sign-in with a message")
		w = signIn("u1", "a2", "s2", now)
		e4 := auditEvent("ev4", now, "signin.succeeded", "u1", "u1")
		w.Audit, w.Outbox = &e4, []storage.OutboxMessage{msg("m3")}
		_, err = s.RecordSignIn(ctx, w)
		isErr(t, err, storage.ErrConflict, "a sign-in with a taken message ID")
		g := storage.Grant{UserID: "u1", ClientID: "wiki", Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}
		e5 := auditEvent("ev5", now, "consent.granted", "u1", "u1")
		ok(t, s.PutGrant(ctx, g, &e5, msg("m5")), "consent with a message")
		equal(t, claimable(), []string{"m1", "m2", "m3", "m5"}, "outbox")
		equal(t, auditIDs(auditOf(ctx, t, s)), []string{"ev5", "ev3", "ev1"}, "audit log")
	}},
}
