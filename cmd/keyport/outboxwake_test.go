package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/smtptest"
)

// Every producer of outbox messages wakes the worker: with its poll an
// hour long, a mail or a webhook call arrives only if the change that
// made it woke the worker. (The worker looks once when it starts; the
// messages below are all made after that.)
func TestOutboxProducersWakeTheWorker(t *testing.T) {
	old := outboxPollInterval
	outboxPollInterval = time.Hour
	t.Cleanup(func() { outboxPollInterval = old })
	smtp := smtptest.Start(t)
	srv := startServerWith(t, serverOptions{mutate: func(c *config.Config) { withTestMail(smtp)(c); allowLoopbackHooks(c) }})
	rw, _, _ := adminTokens(t, srv)
	ctx := context.Background()
	body := func(v any) string { b, _ := json.Marshal(v); return string(b) }
	recv := newHookReceiver(t)
	createHook(t, srv, "/api/v1/webhooks", rw, body(map[string]any{"url": recv.URL + "/cb", "event_types": []string{"user.blocked"}}))
	wait := func(what string) hookCall {
		t.Helper()
		select {
		case c := <-recv.calls:
			return c
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: no webhook call; the worker was not woken", what)
			return hookCall{}
		}
	}

	// A reactor's webhook message, committed with the audit event.
	alice, err := srv.Main.Store.GetUserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+alice.ID+"/block", rw, "", ""); status != http.StatusOK {
		t.Fatalf("block: %d %v", status, out)
	}
	if c := wait("block"); c.Event.Type != "user.blocked" {
		t.Errorf("the call: %s", c.Body)
	}
	// A mailed link (an invitation), committed with its token.
	invited := smtptest.NewAddress("invited")
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json",
		body(map[string]any{"username": "invited", "email": invited, "invite": true})); status != http.StatusCreated {
		t.Fatalf("invite: %d %v", status, out)
	}
	smtp.WaitForNthWithin(t, invited, 1, 30*time.Second)
	// A security notification (a reactor's mail): a new API token.
	bob, err := srv.Main.Accounts.Users.CreateUser(ctx, account.NewUser{Username: "bob", Email: smtptest.NewAddress("bob"), Password: testPassword})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Main.Accounts.Credentials.CreateAPIToken(ctx, bob, account.NewAPIToken{Name: "script", Scope: account.ScopeReadOnly}); err != nil {
		t.Fatal(err)
	}
	smtp.WaitForNthWithin(t, bob.Email, 1, 30*time.Second)
}
