package postgres

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// testLeadCheck is the ping interval of the tests' handles: short, so a
// lost connection is noticed soon.
const testLeadCheck = 50 * time.Millisecond

// eventually is how long a test waits for something that must happen
// (the lead passing, a notice arriving) before it fails.
const eventually = 30 * time.Second

// openProcesses opens n handles on one fresh database: n keyport
// processes sharing it. The last value is a plain connection to the same
// database, for the test's own look at the server (the "third process").
func openProcesses(t *testing.T, n int) ([]*DB, *pgx.Conn) {
	t.Helper()
	return openProcessesChecking(t, n, testLeadCheck)
}

// openProcessesChecking is openProcesses with leads and watches pinged
// every leadCheck.
func openProcessesChecking(t *testing.T, n int, leadCheck time.Duration) ([]*DB, *pgx.Conn) {
	t.Helper()
	dsn := schema.Database(t)
	dbs := make([]*DB, n)
	for i := range dbs {
		d, err := Open(t.Context(), dsn, Options{LeadCheck: leadCheck})
		if err != nil {
			t.Fatalf("open process %d: %v", i, err)
		}
		t.Cleanup(func() { d.Close() })
		dbs[i] = d
	}
	admin, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	return dbs, admin
}

func mustLead(t *testing.T, d *DB, name string) storage.Lead {
	t.Helper()
	l, err := d.TryLead(t.Context(), name)
	if err != nil {
		t.Fatalf("take the lead of %q: %v", name, err)
	}
	return l
}

func leadTaken(t *testing.T, d *DB, name, why string) {
	t.Helper()
	l, err := d.TryLead(t.Context(), name)
	if err == nil {
		l.Release()
		t.Fatalf("%s: took the lead of %q", why, name)
	}
	if !errors.Is(err, storage.ErrLeadTaken) {
		t.Fatalf("%s: %v, want ErrLeadTaken", why, err)
	}
}

// awaitLead asks for the lead until it is granted: the server frees a
// dead session's locks once the session has ended.
func awaitLead(t *testing.T, d *DB, name string) storage.Lead {
	t.Helper()
	deadline := time.Now().Add(eventually)
	for {
		l, err := d.TryLead(t.Context(), name)
		if err == nil {
			return l
		}
		if !errors.Is(err, storage.ErrLeadTaken) {
			t.Fatalf("take the lead of %q: %v", name, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lead of %q did not pass within %v", name, eventually)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// leaderPID is the server process of the session that holds a lead on
// this database (the tests hold one at a time).
func leaderPID(t *testing.T, admin *pgx.Conn) int {
	t.Helper()
	var pid int
	err := admin.QueryRow(t.Context(), `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND objsubid = 2 AND granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&pid)
	if err != nil {
		t.Fatalf("find the leader's session: %v", err)
	}
	return pid
}

func terminate(t *testing.T, admin *pgx.Conn, pid int) {
	t.Helper()
	var ok bool
	if err := admin.QueryRow(t.Context(), "SELECT pg_terminate_backend($1)", pid).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate session %d: %v, %v", pid, ok, err)
	}
}

func TestLeadIsHeldByOneSessionPerName(t *testing.T) {
	dbs, _ := openProcesses(t, 2)
	a, b := dbs[0], dbs[1]

	sweep := mustLead(t, a, "sweep")
	leadTaken(t, b, "sweep", "a second process")
	// A lead is a session's: the same process asking again, on another
	// connection, does not get a second one.
	leadTaken(t, a, "sweep", "the leading process again")
	// Other jobs are other leads.
	dirSync := mustLead(t, b, "directory sync")
	leadTaken(t, a, "directory sync", "the first process, for the second's job")

	sweep.Release()
	sweep.Release() // again: nothing
	if isClosed(sweep.Lost()) {
		t.Fatal("Release closed Lost; it is for a lead that ends without Release")
	}
	// Release unlocks before it returns: no waiting for the server here.
	taken := mustLead(t, b, "sweep")
	leadTaken(t, a, "sweep", "after the lead passed to the second process")
	taken.Release()
	dirSync.Release()
	mustLead(t, a, "directory sync").Release()
}

func TestLeadIsLostWithItsConnection(t *testing.T) {
	dbs, admin := openProcesses(t, 2)
	a, b := dbs[0], dbs[1]
	l := mustLead(t, a, "key rotation")
	leadTaken(t, b, "key rotation", "while the first process leads")

	terminate(t, admin, leaderPID(t, admin))
	select {
	case <-l.Lost():
	case <-time.After(eventually):
		t.Fatalf("Lost not closed %v after the leader's session was ended (ping every %v)", eventually, testLeadCheck)
	}
	next := awaitLead(t, b, "key rotation")
	leadTaken(t, a, "key rotation", "the process that lost the lead, asking again")
	l.Release() // after Lost: nothing to do, and no panic
	next.Release()
}

// A leader that stops pinging without its connection closing (hung, or
// cut off from the database) does not hold the lead for ever: the server
// ends its idle session (idle_session_timeout) and the lead passes.
func TestSilentLeaderLosesTheLeadOnTheServer(t *testing.T) {
	dbs, _ := openProcesses(t, 2)
	a, b := dbs[0], dbs[1]
	l := mustLead(t, a, "outbox").(*lead)
	l.stopChecking() // the process hangs: no more pings
	leadTaken(t, b, "outbox", "right after the leader went silent")
	next := awaitLead(t, b, "outbox")
	next.Release()
	l.Release()
}

func TestLeadKeysAreDistinctPerName(t *testing.T) {
	names := []string{"sweep", "directory sync", "key rotation", "outbox", "webhooks", ""}
	seen := map[[2]int32]string{}
	for _, n := range names {
		k1, k2 := leadKey(n)
		if other, dup := seen[[2]int32{k1, k2}]; dup {
			t.Fatalf("jobs %q and %q share a lead key", n, other)
		}
		seen[[2]int32{k1, k2}] = n
	}
}

// watch runs b's WatchChanges until the test ends and returns the topics
// it reports; it returns once the watch is ready.
type watcher struct {
	topics chan string
	ended  chan struct{} // closed when WatchChanges has returned err
	err    error
	cancel context.CancelFunc
}

func startWatch(t *testing.T, d *DB) *watcher {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	w := &watcher{topics: make(chan string, 100), ended: make(chan struct{}), cancel: cancel}
	ready := make(chan struct{})
	go func() {
		defer close(w.ended)
		w.err = d.WatchChanges(ctx, func() { close(ready) }, func(topic string) { w.topics <- topic })
	}()
	t.Cleanup(func() {
		cancel()
		<-w.ended
	})
	select {
	case <-ready:
	case <-w.ended:
		t.Fatalf("WatchChanges ended before it was ready: %v", w.err)
	case <-time.After(eventually):
		t.Fatal("WatchChanges did not call ready")
	}
	return w
}

// next is the next topic reported.
func (w *watcher) next(t *testing.T, after string) string {
	t.Helper()
	select {
	case topic := <-w.topics:
		return topic
	case <-w.ended:
		t.Fatalf("after %s: WatchChanges ended: %v", after, w.err)
	case <-time.After(eventually):
		t.Fatalf("after %s: no notice within %v", after, eventually)
	}
	return ""
}

func TestWatchChangesReportsOtherProcessesWrites(t *testing.T) {
	dbs, admin := openProcesses(t, 2)
	writer, reader := dbs[0], dbs[1]
	w := startWatch(t, reader)
	ctx := t.Context()
	// The watch outlives quiet spells: it pings its connection when no
	// notice came for LeadCheck, and goes on listening.
	for deadline := time.Now().Add(eventually); ; time.Sleep(10 * time.Millisecond) {
		var pinged bool
		err := admin.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_stat_activity
			WHERE datname = current_database() AND query = '-- ping')`).Scan(&pinged)
		if err != nil {
			t.Fatal(err)
		}
		if pinged {
			break
		}
		select {
		case <-w.ended:
			t.Fatalf("WatchChanges ended in a quiet spell: %v", w.err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the watch did not ping its connection within %v", eventually)
		}
	}
	now := time.Date(2026, time.December, 7, 0, 0, 0, 0, time.UTC)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	putSetting := func() error { return writer.PutSetting(ctx, "session_lifetime", []byte("1h")) }
	failures := func(h *storage.Webhook) error { h.ConsecutiveFailures++; return nil }
	refuse := errors.New("refused")

	steps := []struct {
		what  string
		write func() error
		topic string // "": no notice
	}{
		{"PutSetting", putSetting, storage.ChangeSettings},
		{"CreateWebhook", func() error {
			return writer.CreateWebhook(ctx, storage.Webhook{ID: "w1", URL: "https://example.com/hook", CreatedAt: now})
		}, storage.ChangeWebhooks},
		{"UpdateWebhook", func() error {
			_, err := writer.UpdateWebhook(ctx, "w1", func(h *storage.Webhook) error { h.URL = "https://example.com/other"; return nil })
			return err
		}, storage.ChangeWebhooks},
		{"UpdateWebhook refused by fn", func() error {
			if _, err := writer.UpdateWebhook(ctx, "w1", func(*storage.Webhook) error { return refuse }); !errors.Is(err, refuse) {
				return errors.New("the refused update did not fail")
			}
			return nil
		}, ""},
		{"RecordWebhookDelivery counting a failure", func() error {
			_, err := writer.RecordWebhookDelivery(ctx, "w1", storage.WebhookDelivery{MessageID: "m1", At: now}, failures)
			return err
		}, ""},
		{"RecordWebhookDelivery without fn", func() error {
			_, err := writer.RecordWebhookDelivery(ctx, "w1", storage.WebhookDelivery{MessageID: "m2", At: now}, nil)
			return err
		}, ""},
		{"RecordWebhookDelivery disabling", func() error {
			_, err := writer.RecordWebhookDelivery(ctx, "w1", storage.WebhookDelivery{MessageID: "m3", At: now}, func(h *storage.Webhook) error {
				h.Disabled, h.DisabledReason = true, "too many failures"
				return nil
			})
			return err
		}, storage.ChangeWebhooks},
		{"RecordWebhookDelivery of a disabled hook", func() error {
			_, err := writer.RecordWebhookDelivery(ctx, "w1", storage.WebhookDelivery{MessageID: "m4", At: now}, failures)
			return err
		}, ""},
		{"DeleteWebhook", func() error { return writer.DeleteWebhook(ctx, "w1") }, storage.ChangeWebhooks},
		{"DeleteWebhook of none", func() error {
			if err := writer.DeleteWebhook(ctx, "w1"); !errors.Is(err, storage.ErrNotFound) {
				return errors.New("deleting a missing webhook did not fail")
			}
			return nil
		}, ""},
		{"PutDirectory", func() error {
			return writer.PutDirectory(ctx, storage.Directory{ID: "d1", Type: "ldap", Settings: []byte("{}"), CreatedAt: now, UpdatedAt: now})
		}, storage.ChangeDirectories},
		{"DeleteDirectory", func() error { return writer.DeleteDirectory(ctx, "d1") }, storage.ChangeDirectories},
		{"DeleteDirectory of none", func() error {
			if err := writer.DeleteDirectory(ctx, "d1"); !errors.Is(err, storage.ErrNotFound) {
				return errors.New("deleting a missing directory did not fail")
			}
			return nil
		}, ""},
		{"PutSigningKey", func() error {
			return writer.PutSigningKey(ctx, storage.SigningKey{ID: "k1", Algorithm: "RS256", CreatedAt: now})
		}, storage.ChangeSigningKeys},
		{"DeleteSigningKey", func() error { return writer.DeleteSigningKey(ctx, "k1") }, storage.ChangeSigningKeys},
		{"CreateClient", func() error {
			return writer.CreateClient(ctx, storage.Client{ID: "c1", Name: "One", RedirectURIs: []string{"https://one.example/cb"}})
		}, storage.ChangeClients},
		{"CreateClient of a taken ID", func() error {
			if err := writer.CreateClient(ctx, storage.Client{ID: "c1", Name: "Two"}); !errors.Is(err, storage.ErrConflict) {
				return errors.New("creating a client twice did not fail")
			}
			return nil
		}, ""},
		{"UpdateClient", func() error {
			_, err := writer.UpdateClient(ctx, "c1", func(c storage.Client) (storage.Client, error) { c.Name = "Uno"; return c, nil })
			return err
		}, storage.ChangeClients},
		{"UpdateClient refused by fn", func() error {
			if _, err := writer.UpdateClient(ctx, "c1", func(storage.Client) (storage.Client, error) { return storage.Client{}, refuse }); !errors.Is(err, refuse) {
				return errors.New("the refused update did not fail")
			}
			return nil
		}, ""},
		{"UpdateClientRevokingTokens", func() error {
			_, _, err := writer.UpdateClientRevokingTokens(ctx, "c1", func(c storage.Client) (storage.Client, error) { c.Name = "Eins"; return c, nil })
			return err
		}, storage.ChangeClients},
		{"DeleteClient", func() error { return writer.DeleteClient(ctx, "c1") }, storage.ChangeClients},
		{"DeleteClient of none", func() error {
			if err := writer.DeleteClient(ctx, "c1"); !errors.Is(err, storage.ErrNotFound) {
				return errors.New("deleting a missing client did not fail")
			}
			return nil
		}, ""},
	}
	for _, s := range steps {
		must(s.write())
		if s.topic == "" {
			// Notices arrive in commit order: the marker's comes first
			// only when the step sent none.
			must(putSetting())
			if got := w.next(t, s.what); got != storage.ChangeSettings {
				t.Fatalf("%s sent a notice (%q); want none", s.what, got)
			}
			continue
		}
		if got := w.next(t, s.what); got != s.topic {
			t.Fatalf("%s: notice %q, want %q", s.what, got, s.topic)
		}
	}
	// A writer sees its own notices too (its caches reload once more;
	// nothing lost).
	own := startWatch(t, writer)
	must(putSetting())
	if got := own.next(t, "PutSetting by the watching process"); got != storage.ChangeSettings {
		t.Fatalf("own write: notice %q, want %q", got, storage.ChangeSettings)
	}

	w.cancel()
	select {
	case <-w.ended:
		if !errors.Is(w.err, context.Canceled) {
			t.Fatalf("WatchChanges after cancel: %v, want context.Canceled", w.err)
		}
	case <-time.After(eventually):
		t.Fatal("WatchChanges did not return after its context was canceled")
	}
}

// A watch whose connection fails returns an error (the caller watches
// again and reloads everything).
func TestWatchChangesEndsWhenItsConnectionFails(t *testing.T) {
	dbs, admin := openProcesses(t, 1)
	w := startWatch(t, dbs[0])
	var pid int
	err := admin.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND (query LIKE 'LISTEN%' OR query = '-- ping')`).Scan(&pid)
	if err != nil {
		t.Fatalf("find the watching session: %v", err)
	}
	terminate(t, admin, pid)
	select {
	case <-w.ended:
		if w.err == nil || errors.Is(w.err, context.Canceled) {
			t.Fatalf("WatchChanges on a terminated connection returned %v, want the connection's error", w.err)
		}
	case <-time.After(eventually):
		t.Fatal("WatchChanges did not return after its connection was terminated")
	}
}
