package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
)

// A system account's workflows call its own webhooks back: the block it
// made, the invitation it sent that was accepted, and the one that
// expired unused (reported by the outbox when the link's time is up).
func TestSystemAccountWorkflowCallbacks(t *testing.T) {
	clock := testclock.Running()
	srv := startServerWith(t, serverOptions{now: clock.Now, mutate: allowLoopbackHooks})
	rw, _, _ := adminTokens(t, srv)
	ctx := context.Background()
	body := func(v any) string { b, _ := json.Marshal(v); return string(b) }

	status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users", rw, "application/json",
		body(map[string]any{"username": "provisioner", "email": "provisioner@example.com", "system": true, "admin": true}))
	if status != http.StatusCreated {
		t.Fatalf("create the system account: %d %v", status, out)
	}
	bot := out["user"].(map[string]any)["id"].(string)
	status, _, out = apiCall(t, srv, http.MethodPost, "/api/v1/users/"+bot+"/api-tokens", rw, "application/json",
		body(map[string]any{"name": "job", "scope": "read-write", "expires_at": clock.Now().Add(90 * 24 * time.Hour).UTC().Format(time.RFC3339)}))
	token, _ := out["token"].(string)
	if status != http.StatusCreated || token == "" {
		t.Fatalf("issue its token: %d %v", status, out)
	}
	recv := newHookReceiver(t)
	createHook(t, srv, "/api/v1/me/webhooks", token, body(map[string]any{"url": recv.URL + "/cb",
		"event_types": []string{"user.blocked", "user.invitation_accepted", "user.invitation_expired"}}))

	invite := func(name string) (id, link string) {
		t.Helper()
		status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users", token, "application/json",
			body(map[string]any{"username": name, "email": name + "@example.com", "invite": true}))
		if status != http.StatusCreated {
			t.Fatalf("invite %s: %d %v", name, status, out)
		}
		return out["user"].(map[string]any)["id"].(string), out["invitation"].(map[string]any)["url"].(string)
	}
	ines, link := invite("ines")
	ivan, _ := invite("ivan")
	alice, err := srv.Main.Store.GetUserByLogin(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+alice.ID+"/block", token, "", ""); status != http.StatusOK {
		t.Fatalf("block: %d %v", status, out)
	}
	if c := recv.next(t, srv); c.Event.Type != "user.blocked" || c.Event.Subject != alice.ID {
		t.Errorf("first callback: %s", c.Body)
	}

	b := newBrowser(t)
	const pw = "the invited person's passphrase 9"
	submitForm(t, b, b.get(link), account.InvitationPath, url.Values{"password": {pw}, "password_confirm": {pw}})
	if c := recv.next(t, srv); c.Event.Type != "user.invitation_accepted" || c.Event.Subject != ines {
		t.Errorf("second callback: %s", c.Body)
	}

	// Another administrator blocks ida before she accepts: the workflow the
	// system account started is cut short, and it hears so.
	ida, _ := invite("ida")
	if status, _, out := apiCall(t, srv, http.MethodPost, "/api/v1/users/"+ida+"/block", rw, "", ""); status != http.StatusOK {
		t.Fatalf("block ida: %d %v", status, out)
	}
	if c := recv.next(t, srv); c.Event.Type != "user.blocked" || c.Event.Subject != ida {
		t.Errorf("third callback: %s", c.Body)
	}

	// A week later ivan's and ida's invitations have expired unused;
	// ines's was used.
	clock.Add(account.InvitationTTL + 2*time.Minute)
	expired := map[string]bool{}
	for range 2 {
		if c := recv.next(t, srv); c.Event.Type == "user.invitation_expired" {
			expired[c.Event.Subject] = true
		} else {
			t.Errorf("an expiry callback: %s", c.Body)
		}
	}
	if !expired[ivan] || !expired[ida] {
		t.Errorf("expired invitations reported: %v, want ivan's %s and ida's %s", expired, ivan, ida)
	}
	select {
	case c := <-recv.calls:
		t.Errorf("an extra callback: %s", c.Body)
	case <-time.After(500 * time.Millisecond):
	}
}
