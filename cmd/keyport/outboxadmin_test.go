package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/smtptest"
	"github.com/keyport/keyport/storage"
)

// Failed deliveries are visible to administrators and can be tried again:
// a reset mail the SMTP server refuses (550) is listed as failed with the
// server's answer and one that it defers (451) as pending with its error,
// through GET /api/v1/outbox (never with the sealed payload) and on the
// console's Deliveries page (and the overview warns of it); POST /api/v1/outbox/{id}/retry (or the page's
// button) makes the failed one pending again with a fresh deadline, the
// audit log records it, and the worker tries it once more at once.
// Read-only credentials may list but not retry; bad input is a clear 4xx.
func TestOutboxForAdmins(t *testing.T) {
	smtp := smtptest.Start(t)
	srv := startServer(t, "", withTestMail(smtp))
	ctx := context.Background()
	rw, ro, _ := adminTokens(t, srv)
	for _, name := range []string{"reject", "tempfail"} {
		if _, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: name, Email: smtptest.NewAddress(name), Password: testPassword}); err != nil {
			t.Fatal(err)
		}
		if err := srv.Main.Accounts.Mail.RequestPasswordReset(ctx, name, "127.0.0.1", "en"); err != nil {
			t.Fatal(err)
		}
	}
	srv.Main.Accounts.Mail.Wait()

	// waitFor lists the messages in state until one matches, and returns it.
	waitFor := func(state string, match func(map[string]any) bool) map[string]any {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/outbox?state="+state+"&kind=mail", ro, "", "")
			if status != http.StatusOK {
				t.Fatalf("list %s: %d %v", state, status, body)
			}
			items, _ := body["items"].([]any)
			for _, it := range items {
				m := it.(map[string]any)
				if _, ok := m["payload"]; ok {
					t.Fatalf("the API shows a payload: %v", m)
				}
				if match(m) {
					return m
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s message matched within 15s: %v", state, items)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	failed := waitFor("failed", func(m map[string]any) bool { return strings.Contains(m["last_error"].(string), "550") })
	id := failed["id"].(string)
	if failed["attempts"] != 1.0 || failed["kind"] != "mail" || failed["delivered_at"] == nil {
		t.Errorf("the failed message: %v", failed)
	}
	deferred := waitFor("pending", func(m map[string]any) bool {
		e, _ := m["last_error"].(string)
		return strings.Contains(e, "451")
	})

	// Bad input changes nothing and says what is wrong.
	for _, q := range []string{"state=lost", "limit=0", "limit=501", "cursor=!!", "kind=" + strings.Repeat("k", 200)} {
		if status, _, body := apiCall(t, srv, http.MethodGet, "/api/v1/outbox?"+q, rw, "", ""); status != http.StatusBadRequest {
			t.Errorf("GET /outbox?%s: %d %v", q, status, body)
		}
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/outbox/"+id+"/retry", ro, "", ""); status != http.StatusForbidden {
		t.Errorf("retry with a read-only token: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/outbox/no-such-message/retry", rw, "", ""); status != http.StatusNotFound {
		t.Errorf("retry an unknown message: %d %v", status, body)
	}
	if status, _, body := apiCall(t, srv, http.MethodPost, "/api/v1/outbox/"+deferred["id"].(string)+"/retry", rw, "", ""); status != http.StatusConflict {
		t.Errorf("retry a pending message: %d %v", status, body)
	}
	if m := outboxMessage(t, srv, id); m.State != storage.OutboxFailed || m.Attempts != 1 {
		t.Fatalf("refused retries changed the message: %+v", m)
	}

	before := time.Now()
	status, _, retried := apiCall(t, srv, http.MethodPost, "/api/v1/outbox/"+id+"/retry", rw, "", "")
	if status != http.StatusOK || retried["id"] != id || retried["state"] != storage.OutboxPending || retried["delivered_at"] != nil {
		t.Fatalf("retry: %d %v", status, retried)
	}
	if deadline, err := time.Parse(time.RFC3339Nano, retried["deadline"].(string)); err != nil || deadline.Before(before.Add(storage.DefaultOutboxLifetime-time.Minute)) {
		t.Errorf("the retried message's deadline %v is not a fresh day", retried["deadline"])
	}
	events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{Types: []string{account.EventOutboxRetried}})
	if err != nil || len(events) != 1 || events[0].TargetID != id || events[0].ActorKind != account.ActorUser {
		t.Errorf("audit events of the retry: %+v (%v)", events, err)
	}
	// The worker tries it again; the server still refuses it.
	waitFor("failed", func(m map[string]any) bool { return m["id"] == id && m["attempts"] == 2.0 })

	// The console lists both, with their errors, and its button retries.
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	if o := b.get(srv.URL + "/admin"); !strings.Contains(o.Body, `id="failed-deliveries"`) || !strings.Contains(o.Body, "could not be delivered: 1.") {
		t.Errorf("the overview does not warn of the failed delivery:\n%s", truncateBody(o.Body))
	}
	p := b.get(srv.URL + "/admin/deliveries")
	if p.Status != http.StatusOK {
		t.Fatalf("/admin/deliveries: %d", p.Status)
	}
	doc := parsePage(t, p.Body)
	failedTable, ok := doc.byID("deliveries-failed")
	if !ok || !strings.Contains(failedTable.text(), id) || !strings.Contains(failedTable.text(), "550") {
		t.Fatalf("the failed table does not show %s with its error:\n%s", id, truncateBody(p.Body))
	}
	pendingTable, ok := doc.byID("deliveries-pending")
	if !ok || !strings.Contains(pendingTable.text(), deferred["id"].(string)) || !strings.Contains(pendingTable.text(), "451") {
		t.Fatalf("the pending table does not show %s with its error:\n%s", deferred["id"], truncateBody(p.Body))
	}
	done := submitForm(t, b, p, "/admin/deliveries/"+id+"/retry", nil)
	if done.Status != http.StatusOK || !strings.Contains(done.URL.String(), "done=retried") || notice(t, done) == "" {
		t.Fatalf("the console's retry: %d at %s", done.Status, done.URL)
	}
	waitFor("failed", func(m map[string]any) bool { return m["id"] == id && m["attempts"] == 3.0 })
}

// outboxMessage reads one message from the store.
func outboxMessage(t *testing.T, srv *testServer, id string) storage.OutboxMessage {
	t.Helper()
	msgs, _, err := srv.Main.Store.ListOutbox(context.Background(), storage.OutboxQuery{Limit: storage.MaxOutboxLimit})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		if m.ID == id {
			return m
		}
	}
	t.Fatalf("no outbox message %s", id)
	return storage.OutboxMessage{}
}
