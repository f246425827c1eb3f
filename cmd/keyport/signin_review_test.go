package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// sessionRefusals counts the refusals of an existing session at the
// account's IP allowlist in u's history.
func sessionRefusals(t *testing.T, srv *testServer, userID string) int {
	t.Helper()
	attempts, err := srv.Main.Store.ListLoginAttempts(context.Background(), userID, 50)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, a := range attempts {
		if !a.Success && strings.Contains(a.Reason, "existing session") {
			n++
		}
	}
	return n
}

// TestAllowlistRefusalOfSessionIsInHistory: a browser whose session comes
// from outside the account's allowlist gets the sign-in page instead of a
// code, and the refusal is in the user's history once, as for
// prompt=none (and as before the sign-in record moved to account.Flow).
func TestAllowlistRefusalOfSessionIsInHistory(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	home := newBrowser(t)
	signInPortal(t, srv, home, "alice")
	if _, err := srv.Main.Store.UpdateUser(context.Background(), alice.ID, func(u storage.User) (storage.User, error) {
		u.AllowedNetworks = []string{"127.0.0.1"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	away := browserFrom(t, "127.0.0.5")
	away.client.Jar = home.client.Jar
	p := app.authorize(away, "st-away")
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, "Sign-in from this network is not allowed") {
		t.Fatalf("session outside the allowlist: %d %s", p.Status, truncateBody(p.Body))
	}
	if n := sessionRefusals(t, srv, alice.ID); n != 1 {
		t.Errorf("refusals of the session in the history: %d, want 1", n)
	}
}

// TestSecondStepRecordUselessInAnotherBrowser: the ID of a sign-in record
// that owes a second factor (in the URL of the second step's page) is
// worth nothing in another browser: none of the pages that take it show,
// change or finish the record there, even with a valid code.
func TestSecondStepRecordUselessInAnotherBrowser(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	secret, _ := withTOTP(t, srv, "alice")
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})

	b := newBrowser(t)
	p := b.submit(app.authorize(b, "st"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	id := p.URL.Query().Get("authRequestID")
	if p.URL.Path != "/login/2fa" || id == "" {
		t.Fatalf("second step: %d %s", p.Status, p.URL)
	}

	x := newBrowser(t)
	own := x.get(srv.URL + "/login") // x's own CSRF token
	q := "?authRequestID=" + url.QueryEscape(id)
	if r := x.get(srv.URL + "/login/2fa" + q); r.URL.Path == "/login/2fa" {
		t.Errorf("another browser sees the second step: %d %s", r.Status, r.URL)
	}
	code := totpCode(t, secret, time.Now().Add(30*time.Second))
	if r := x.submit(own, "/login/2fa", url.Values{"authRequestID": {id}, "code": {code}}); r.Status != http.StatusUnauthorized {
		t.Errorf("another browser's second factor: %d %s", r.Status, r.URL)
	}
	if r := x.submit(own, "/login/2fa/cancel", url.Values{"authRequestID": {id}}); r.Status >= 500 {
		t.Errorf("another browser's cancel: %d", r.Status)
	}
	if r := x.submit(own, "/consent", url.Values{"authRequestID": {id}, "decision": {"deny"}}); r.Status != http.StatusNotFound {
		t.Errorf("another browser's consent: %d %s", r.Status, r.URL)
	}
	if r := x.get(srv.URL + "/login" + q); r.Status != http.StatusNotFound {
		t.Errorf("another browser's sign-in page: %d %s", r.Status, r.URL)
	}
	if r := x.get(srv.URL + "/authorize/callback?id=" + url.QueryEscape(id)); r.Status != http.StatusBadRequest || r.Location != "" {
		t.Errorf("another browser at the callback: %d %s", r.Status, r.Location)
	}
	a, err := srv.Main.Store.GetAuthRequest(context.Background(), id)
	if err != nil || a.PendingUserID != alice.ID || a.UserID != "" || a.FailCode != "" || a.Completed {
		t.Fatalf("the record after another browser's tries: %+v %v", a, err)
	}
	// The browser that opened it finishes, with the code x could not use.
	res := landed(t, b.submit(p, "/login/2fa", url.Values{"code": {code}}), app.RedirectURI)
	if res.Code == "" || res.State != "st" {
		t.Errorf("the owner's second step: %+v", res)
	}
}
