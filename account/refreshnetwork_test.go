package account_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/testlog"
	"github.com/keyport/keyport/storage"
)

// The IP allowlist at refresh: a public client's refresh from outside the
// list is refused and recorded in the user's history each time, and logged
// at WARN once per user and app every few minutes; a confidential client's
// refresh is not checked (its server's address says nothing about the
// person), nor is anyone's without a list.
func TestCheckRefreshNetwork(t *testing.T) {
	ctx := context.Background()
	clock := testclock.At(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	logs := &testlog.Buffer{}
	svc, db := account.NewTestService(t, account.TestServiceOptions{Now: clock.Now, Log: slog.New(slog.NewTextHandler(logs, nil)), NoSealer: true})
	for _, c := range []account.NewClient{
		{ID: "cli", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}},
		{ID: "spa", Public: true, RedirectURIs: []string{"http://127.0.0.1/spa"}},
		{ID: "web", RedirectURIs: []string{"https://web.example.com/cb"}},
	} {
		if _, _, err := svc.Clients.RegisterClient(ctx, account.SystemActor, c); err != nil {
			t.Fatal(err)
		}
	}
	alice := newProfileUser(t, svc, "alice")
	if err := svc.SignIn.CheckRefreshNetwork(ctx, alice, "cli", "203.0.113.9"); err != nil {
		t.Errorf("refresh without an allowlist: %v", err)
	}
	alice, err := db.UpdateUser(ctx, alice.ID, func(u storage.User) (storage.User, error) {
		u.AllowedNetworks = []string{"192.0.2.0/24"}
		return u, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.SignIn.CheckRefreshNetwork(ctx, alice, "cli", "192.0.2.7"); err != nil {
		t.Errorf("public client inside the list: %v", err)
	}
	if err := svc.SignIn.CheckRefreshNetwork(ctx, alice, "web", "203.0.113.9"); err != nil {
		t.Errorf("confidential client outside the list: %v", err)
	}
	if err := svc.SignIn.CheckRefreshNetwork(ctx, alice, "gone", "203.0.113.9"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("deleted client: %v", err)
	}
	logs.Take()

	refuse := func(client string) {
		t.Helper()
		if err := svc.SignIn.CheckRefreshNetwork(ctx, alice, client, "203.0.113.9"); account.ErrorCode(err) != account.Forbidden {
			t.Errorf("public client %s outside the list: %v", client, err)
		}
	}
	for range 5 {
		refuse("cli")
		clock.Add(30 * time.Second)
	}
	refuse("spa")
	warns := func() int { return strings.Count(logs.Take(), "refresh refused outside the user's IP allowlist") }
	if n := warns(); n != 2 {
		t.Errorf("five refusals for one app and one for another logged %d WARN lines, want 2", n)
	}
	clock.Add(5 * time.Minute)
	refuse("cli")
	if n := warns(); n != 1 {
		t.Errorf("a refusal five minutes later logged %d WARN lines, want 1", n)
	}

	hist, err := svc.SignIn.History(ctx, alice.ID, 20)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, a := range hist {
		if !a.Success && a.Method == account.MethodRefresh && a.IP == "203.0.113.9" && a.Reason == "network not allowed (refresh)" {
			refused++
		}
	}
	if refused != 7 {
		t.Errorf("%d refused refreshes in the history, want 7: %+v", refused, hist)
	}
}
