package storagetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// signIn is the write of a successful sign-in of userID at now: the
// sign-in fields, history entry id and, when sessionID is not "", a session
// of an hour.
func signIn(userID, id, sessionID string, now time.Time) storage.SignInWrite {
	w := storage.SignInWrite{
		UserID: userID,
		Update: func(u storage.User) (storage.User, error) {
			u.LastIP = "192.0.2.1"
			u.LastLogin = now
			u.LoginsCount++
			return u, nil
		},
		Attempt: attempt(id, userID, now),
	}
	if sessionID != "" {
		sess := newSession(sessionID, userID, now, time.Hour)
		w.Session = &sess
	}
	return w
}

// wroteNothing fails unless u1 is still want, with no sign-in history and
// no sessions.
func wroteNothing(ctx context.Context, t *testing.T, s storage.Store, want storage.User) {
	t.Helper()
	got, err := s.GetUser(ctx, want.ID)
	ok(t, err, "get %s", want.ID)
	equal(t, got, want, "the user is unchanged")
	attempts, err := s.ListLoginAttempts(ctx, want.ID, 0)
	ok(t, err, "list attempts")
	equal(t, attemptIDs(attempts), []string{}, "sign-in history")
	sessions, err := s.ListUserSessions(ctx, want.ID)
	ok(t, err, "list sessions")
	equal(t, len(sessions), 0, "sessions")
}

var signInTests = []test{
	{"AllThreeWritten", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		u := newUser("u1", "alice", "alice@example.org")
		ok(t, s.CreateUser(ctx, u), "create")
		w := signIn("u1", "a1", "s1", now)
		got, err := s.RecordSignIn(ctx, w)
		ok(t, err, "record sign-in")
		want := u
		want.LastIP, want.LastLogin, want.LoginsCount = "192.0.2.1", now, 1
		equal(t, got, want, "returned user")
		stored, err := s.GetUser(ctx, "u1")
		ok(t, err, "get")
		equal(t, stored, want, "stored user")
		attempts, err := s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "list attempts")
		equal(t, attempts, []storage.LoginAttempt{w.Attempt}, "sign-in history")
		sess, err := s.GetSession(ctx, "s1")
		ok(t, err, "get session")
		equal(t, sess, *w.Session, "session")
		sessions, err := s.ListUserSessions(ctx, "u1")
		ok(t, err, "list sessions")
		equal(t, sessions, []storage.Session{*w.Session}, "the user's sessions")

		// Both expire like records written on their own.
		c.Add(90*24*time.Hour + time.Minute)
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep, storage.SweepReport{Sessions: 1, LoginAttempts: 1}, "sweep report")
		_, err = s.GetUser(ctx, "u1")
		ok(t, err, "the user stays")
	}},
	{"WithoutSession", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create")
		got, err := s.RecordSignIn(ctx, signIn("u1", "a1", "", now))
		ok(t, err, "record sign-in")
		equal(t, got.LoginsCount, 1, "sign-ins counted")
		attempts, err := s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "list attempts")
		equal(t, attemptIDs(attempts), []string{"a1"}, "sign-in history")
		sessions, err := s.ListUserSessions(ctx, "u1")
		ok(t, err, "list sessions")
		equal(t, len(sessions), 0, "sessions")
	}},
	{"UpdateErrorWritesNothing", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		u := newUser("u1", "alice", "")
		ok(t, s.CreateUser(ctx, u), "create")
		w := signIn("u1", "a1", "s1", c.Now())
		w.Update = func(u storage.User) (storage.User, error) {
			u.LoginsCount = 99
			return u, errBoom
		}
		_, err := s.RecordSignIn(ctx, w)
		isErr(t, err, errBoom, "an update that fails")
		wroteNothing(ctx, t, s, u)
		_, err = s.GetSession(ctx, "s1")
		isErr(t, err, storage.ErrNotFound, "the session")
	}},
	{"UnknownUser", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		ran := false
		w := signIn("gone", "a1", "s1", c.Now())
		w.Update = func(u storage.User) (storage.User, error) { ran = true; return u, nil }
		_, err := s.RecordSignIn(ctx, w)
		isErr(t, err, storage.ErrNotFound, "sign-in of an unknown user")
		equal(t, ran, false, "update ran")
		attempts, err := s.ListLoginAttempts(ctx, "gone", 0)
		ok(t, err, "list attempts")
		equal(t, attemptIDs(attempts), []string{}, "sign-in history")
		_, err = s.GetSession(ctx, "s1")
		isErr(t, err, storage.ErrNotFound, "the session")
		// The IDs stay free.
		ok(t, s.CreateSession(ctx, newSession("s1", "u2", c.Now(), time.Hour)), "the session ID is free")
	}},
	{"TakenSessionIDWritesNothing", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		u := newUser("u1", "alice", "")
		ok(t, s.CreateUser(ctx, u), "create")
		ok(t, s.CreateSession(ctx, newSession("s1", "u2", now, time.Hour)), "another user's session")
		_, err := s.RecordSignIn(ctx, signIn("u1", "a1", "s1", now))
		isErr(t, err, storage.ErrConflict, "a session ID that is taken")
		wroteNothing(ctx, t, s, u)
		sess, err := s.GetSession(ctx, "s1")
		ok(t, err, "the other session")
		equal(t, sess.UserID, "u2", "the other session's user")
	}},
	{"AnotherUsersRecordsRefused", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		u := newUser("u1", "alice", "")
		ok(t, s.CreateUser(ctx, u), "create")
		ok(t, s.CreateUser(ctx, newUser("u2", "bob", "")), "create u2")
		w := signIn("u1", "a1", "s1", now)
		w.Attempt.UserID = "u2"
		_, err := s.RecordSignIn(ctx, w)
		if err == nil {
			t.Fatal("a sign-in with another user's history entry was written")
		}
		w = signIn("u1", "a2", "s2", now)
		w.Session.UserID = "u2"
		_, err = s.RecordSignIn(ctx, w)
		if err == nil {
			t.Fatal("a sign-in with another user's session was written")
		}
		wroteNothing(ctx, t, s, u)
		for _, id := range []string{"s1", "s2"} {
			_, err = s.GetSession(ctx, id)
			isErr(t, err, storage.ErrNotFound, "session %s", id)
		}
		attempts, err := s.ListLoginAttempts(ctx, "u2", 0)
		ok(t, err, "list attempts of u2")
		equal(t, attemptIDs(attempts), []string{}, "u2's sign-in history")
	}},
	{"HistoryCapped", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create")
		for i := range 98 {
			ok(t, s.AddLoginAttempt(ctx, attempt(fmt.Sprintf("a%03d", i), "u1", now.Add(time.Duration(i)*time.Second))), "add a%03d", i)
		}
		for i := 98; i < 105; i++ {
			_, err := s.RecordSignIn(ctx, signIn("u1", fmt.Sprintf("a%03d", i), "", now.Add(time.Duration(i)*time.Second)))
			ok(t, err, "sign-in a%03d", i)
		}
		got, err := s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "list")
		equal(t, len(got), 100, "attempts kept")
		equal(t, got[0].ID, "a104", "newest kept")
		equal(t, got[99].ID, "a005", "oldest kept")
	}},
	{"Concurrent", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create")
		ok(t, s.CreateUser(ctx, newUser("u2", "bob", "")), "create u2")
		const n = 24
		errs := concurrently(n, func(i int) error {
			uid := []string{"u1", "u2"}[i%2]
			_, err := s.RecordSignIn(ctx, signIn(uid, fmt.Sprintf("a%02d", i), fmt.Sprintf("s%02d", i), now.Add(time.Duration(i)*time.Millisecond)))
			return err
		})
		for i, err := range errs {
			ok(t, err, "sign-in %d", i)
		}
		for _, uid := range []string{"u1", "u2"} {
			u, err := s.GetUser(ctx, uid)
			ok(t, err, "get %s", uid)
			equal(t, u.LoginsCount, n/2, "sign-ins of %s counted", uid)
			attempts, err := s.ListLoginAttempts(ctx, uid, 0)
			ok(t, err, "list attempts of %s", uid)
			equal(t, len(attempts), n/2, "history of %s", uid)
			sessions, err := s.ListUserSessions(ctx, uid)
			ok(t, err, "list sessions of %s", uid)
			equal(t, len(sessions), n/2, "sessions of %s", uid)
		}
	}},
}
