package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/webhook"
)

// hookCall is one request a test receiver got.
type hookCall struct {
	Header http.Header
	Body   []byte
	Event  struct {
		ID, Type, Subject string
		Data              map[string]any
	}
}

// hookReceiver is a webhook receiver on loopback that answers with the
// statuses in answers (then 200) and hands each call to calls.
type hookReceiver struct {
	*httptest.Server
	mu      sync.Mutex
	answers []int
	calls   chan hookCall
}

func newHookReceiver(t *testing.T, answers ...int) *hookReceiver {
	rc := &hookReceiver{answers: answers, calls: make(chan hookCall, 100)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var c hookCall
		c.Header = r.Header.Clone()
		c.Body, _ = io.ReadAll(r.Body)
		_ = json.Unmarshal(c.Body, &c.Event)
		rc.mu.Lock()
		status := http.StatusOK
		if len(rc.answers) > 0 {
			status, rc.answers = rc.answers[0], rc.answers[1:]
		}
		rc.mu.Unlock()
		rc.calls <- c
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

// next waits for the next call, waking the outbox worker while it waits
// (retries come due on the server's clock, which the test moves).
func (rc *hookReceiver) next(t *testing.T, srv *testServer) hookCall {
	t.Helper()
	deadline := time.After(15 * time.Second)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case c := <-rc.calls:
			return c
		case <-tick.C:
			srv.Main.Outbox.Notify()
		case <-deadline:
			t.Fatal("the receiver got no call")
		}
	}
}

func allowLoopbackHooks(c *config.Config) { c.Webhooks.AllowNetworks = []string{"127.0.0.0/8"} }

func createHook(t *testing.T, srv *testServer, path, token, body string) (id, secret string) {
	t.Helper()
	status, _, out := apiCall(t, srv, http.MethodPost, path, token, "application/json", body)
	if status != http.StatusCreated {
		t.Fatalf("create webhook %s: %d %v", body, status, out)
	}
	secret, _ = out["secret"].(string)
	hook, _ := out["webhook"].(map[string]any)
	id, _ = hook["id"].(string)
	if id == "" || !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("created webhook: %v", out)
	}
	return id, secret
}

// An admin's hook hears user.created and user.blocked, signed with its
// secret; a receiver that answers 500 gets the same event (same id) again
// once the backoff has passed; each attempt is in the delivery log. A
// user's own hook hears only that user's events.
func TestWebhooksDeliverSignedEvents(t *testing.T) {
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{now: clock.Now, mutate: allowLoopbackHooks})
	rw, _, aliceToken := adminTokens(t, srv)
	ctx := context.Background()
	alice, err := srv.Main.Store.GetUserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	admins := newHookReceiver(t, http.StatusInternalServerError)
	own := newHookReceiver(t)
	hookID, secret := createHook(t, srv, "/api/v1/webhooks", rw, `{"url":"`+admins.URL+`/in","event_types":["user.created","user.blocked"]}`)
	createHook(t, srv, "/api/v1/me/webhooks", aliceToken, `{"url":"`+own.URL+`/mine"}`)

	root, _ := srv.Main.Store.GetUserByLogin(ctx, "root")
	actor := account.Actor{Kind: account.ActorUser, UserID: root.ID}
	bob, _, err := srv.Main.Accounts.Admin.CreateUser(ctx, actor, account.AdminNewUser{Username: "bob", Email: "bob@example.com", Invite: true})
	if err != nil {
		t.Fatal(err)
	}
	first := admins.next(t, srv)
	if first.Event.Type != "user.created" || first.Event.Subject != bob.ID || first.Event.ID == "" {
		t.Fatalf("first call: %s", first.Body)
	}
	if err := webhook.Verify([]byte(secret), first.Header.Get("Keyport-Signature"), first.Body, clock.Now(), time.Minute); err != nil {
		t.Fatalf("signature: %v (%s)", err, first.Header.Get("Keyport-Signature"))
	}
	if first.Header.Get("Webhook-Id") != first.Event.ID || strings.Contains(string(first.Body), "whsec_") {
		t.Errorf("headers %v, body %s", first.Header, first.Body)
	}
	// The receiver answered 500: the same event comes again after the
	// backoff. The clock moves once the failure is recorded (its retry is
	// due from the time it was recorded).
	waitRetried(t, srv, first.Event.ID)
	clock.Add(2 * time.Minute)
	again := admins.next(t, srv)
	if again.Event.ID != first.Event.ID || string(again.Body) != string(first.Body) {
		t.Fatalf("retry: %s, want %s", again.Body, first.Body)
	}
	if _, err := srv.Main.Accounts.Admin.BlockUser(ctx, actor, bob.ID); err != nil {
		t.Fatal(err)
	}
	blocked := admins.next(t, srv)
	if blocked.Event.Type != "user.blocked" || blocked.Event.Subject != bob.ID || webhook.Verify([]byte(secret), blocked.Header.Get("Keyport-Signature"), blocked.Body, clock.Now(), time.Minute) != nil {
		t.Fatalf("blocked call: %s", blocked.Body)
	}
	// The receiver is called before the attempt is logged: wait for it.
	var status int
	var log map[string]any
	var items []any
	for range 100 {
		status, _, log = apiCall(t, srv, http.MethodGet, "/api/v1/webhooks/"+hookID+"/deliveries", rw, "", "")
		if items, _ = log["items"].([]any); len(items) >= 3 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if status != http.StatusOK || len(items) != 3 || items[2].(map[string]any)["status"] != float64(500) || items[0].(map[string]any)["status"] != float64(200) ||
		items[2].(map[string]any)["attempt"] != float64(1) || items[1].(map[string]any)["attempt"] != float64(2) {
		t.Fatalf("delivery log: %d %v", status, log)
	}

	// Alice's own hook heard nothing of bob; an event about her arrives.
	// (Not her blocking: a blocked account's hooks hear nothing, see
	// TestBlockedOwnersHooksHearNothing.)
	name := "Alice A."
	if _, _, err := srv.Main.Accounts.Admin.UpdateUser(ctx, actor, alice.ID, "", account.UserPatch{Name: &name}); err != nil {
		t.Fatal(err)
	}
	for {
		c := own.next(t, srv)
		if c.Event.Subject != alice.ID {
			t.Fatalf("alice's hook got an event about %q: %s", c.Event.Subject, c.Body)
		}
		if c.Event.Type == "user.updated" {
			break
		}
	}
}

// Without [webhooks] allow_networks, a hook to a loopback address is
// refused when registered (400, field url), and one to a name that
// resolves to loopback is refused when called: the receiver hears
// nothing and the log says why. A hook that keeps failing is turned off
// and its owner turns it on again.
func TestWebhooksRefuseInternalAddresses(t *testing.T) {
	srv := startServerWith(t, serverOptions{mutate: func(c *config.Config) { c.Webhooks.MaxFailures = 1 }})
	rw, _, aliceToken := adminTokens(t, srv)
	rc := newHookReceiver(t)
	port := rc.URL[strings.LastIndex(rc.URL, ":")+1:]
	for _, u := range []string{rc.URL, "https://127.0.0.1:" + port + "/", "https://[::1]/", "https://169.254.169.254/", "https://10.0.0.1/", "http://hooks.example.com/"} {
		status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/webhooks", rw, "application/json", `{"url":"`+u+`"}`)
		if status != http.StatusBadRequest || out["field"] != "url" {
			t.Errorf("register %s: %d %v", u, status, out)
		}
	}
	// The refusal names the address and what lets it through, in words
	// (it was the guard's log text: "The URL refused address: 10.0.0.1
	// is a private address.").
	for u, want := range map[string]string{
		"https://10.0.0.1/hook": "The URL's address 10.0.0.1 is not a public one: webhooks call it only when its network is in webhooks.allow_networks.",
		"https://[::1]:8443/":   "The URL's address ::1 is not a public one: webhooks call it only when its network is in webhooks.allow_networks.",
		"https://hooks.example.com/" + strings.Repeat("a", webhook.MaxURLBytes): fmt.Sprintf("The URL must be at most %d bytes.", webhook.MaxURLBytes),
	} {
		status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/webhooks", rw, "application/json", `{"url":"`+u+`"}`)
		if status != http.StatusBadRequest || out["field"] != "url" || out["message"] != want {
			t.Errorf("register %.40s: %d %v, want %q", u, status, out["message"], want)
		}
	}
	id, _ := createHook(t, srv, "/api/v1/webhooks", rw, `{"url":"https://localhost:`+port+`/in"}`)
	srv.createUser("carol", false) // an event
	var hook map[string]any
	for range 150 {
		srv.Main.Outbox.Notify()
		_, _, hook = apiCall(t, srv, http.MethodGet, "/api/v1/webhooks/"+id, rw, "", "")
		if hook["disabled"] == true {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if hook["disabled"] != true || !strings.Contains(hook["disabled_reason"].(string), "refused address") {
		t.Fatalf("the hook to a loopback name: %v", hook)
	}
	_, _, log := apiCall(t, srv, http.MethodGet, "/api/v1/webhooks/"+id+"/deliveries", rw, "", "")
	items, _ := log["items"].([]any)
	if len(items) == 0 || !strings.Contains(items[0].(map[string]any)["error"].(string), "loopback") {
		t.Errorf("delivery log: %v", log)
	}
	select {
	case c := <-rc.calls:
		t.Fatalf("the loopback receiver was called: %s", c.Body)
	default:
	}
	status, _, on := apiCall(t, srv, http.MethodPost, "/api/v1/webhooks/"+id+"/enable", rw, "", "")
	if status != http.StatusOK || on["disabled"] != false || on["consecutive_failures"] != float64(0) {
		t.Fatalf("enable: %d %v", status, on)
	}

	// A user's own hook learns only that the address is not public, not
	// what the name resolved to inside the network.
	userToken := aliceToken
	mine, _ := createHook(t, srv, "/api/v1/me/webhooks", userToken, `{"url":"https://localhost:`+port+`/mine"}`)
	alice, _ := srv.Main.Store.GetUserByLogin(context.Background(), "alice")
	apiCall(t, srv, http.MethodPatch, "/api/v1/users/"+alice.ID, rw, "application/json", `{"name":"Alice A."}`)
	var entries []any
	for range 150 {
		srv.Main.Outbox.Notify()
		_, _, mlog := apiCall(t, srv, http.MethodGet, "/api/v1/me/webhooks/"+mine+"/deliveries", userToken, "", "")
		if entries, _ = mlog["items"].([]any); len(entries) > 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if len(entries) == 0 || entries[0].(map[string]any)["error"] != "The receiver's address is not a public one." {
		t.Errorf("the user's delivery log: %v", entries)
	}
}

// waitRetried waits until the outbox has recorded a failed attempt of a
// webhook call (the message is pending again with an error).
func waitRetried(t *testing.T, srv *testServer, eventID string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		msgs, _, err := srv.Main.Store.ListOutbox(context.Background(), storage.OutboxQuery{State: storage.OutboxPending, Kind: account.OutboxWebhook, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			if m.Attempts > 0 && m.LastError != "" && strings.Contains(string(m.Payload), eventID) {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the failed call of event %s was not recorded", eventID)
}
