package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/testlog"
)

// TestRefusedRefreshRecorded: a public app refreshing from outside its
// user's IP allowlist is refused each time, each refusal is in the user's
// sign-in history like a refused authorization, and the log has one WARN
// line for the user and app, not one per retry.
func TestRefusedRefreshRecorded(t *testing.T) {
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{logs: logs, mutate: func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.1"} }})
	alice := srv.createUser("alice", false)
	cli := srv.createClient(account.NewClient{ID: "cli", Public: true, SkipConsent: true})
	cli.oauth.Scopes = append(cli.oauth.Scopes, "offline_access")
	code, verifier := cli.signIn(newBrowser(t), "alice")
	tok, err := cli.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := srv.Main.Accounts.SignIn.SetAllowedNetworks(context.Background(), alice, "127.0.0.1", "127.0.0.1", false); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if status, body := refreshVia(t, cli, http.DefaultClient, tok.RefreshToken, "203.0.113.9"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
			t.Fatalf("refresh %d from outside the allowlist: %d %v", i, status, body)
		}
	}
	warns := 0
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=WARN") && strings.Contains(line, "refresh refused outside the user's IP allowlist") {
			warns++
		}
	}
	if warns != 1 {
		t.Errorf("three refused refreshes logged %d WARN lines, want 1", warns)
	}
	attempts, err := srv.Main.Store.ListLoginAttempts(context.Background(), alice.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, a := range attempts {
		if !a.Success && a.Method == account.MethodRefresh && a.IP == "203.0.113.9" && strings.Contains(a.Reason, "network not allowed") {
			refused++
		}
	}
	if refused != 3 {
		t.Errorf("%d refused refreshes in alice's history, want 3: %+v", refused, attempts)
	}
}
