package main

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/storage"
)

// TestAuditSignInThroughPortal: a wrong and then the right password for an
// app, through the real portal, leave a signin.failed and a
// signin.succeeded event naming the app and the browser's address.
func TestAuditSignInThroughPortal(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	wiki := srv.createClient(newConfidentialClient("wiki"))

	b := newBrowser(t)
	p := wiki.authorize(b, "st-audit")
	p = b.submit(p, "/login", url.Values{"login": {"Alice"}, "password": {"wrong password here"}})
	if !isLoginPage(p) {
		t.Fatalf("a wrong password: %d %s", p.Status, p.URL)
	}
	p = b.submit(p, "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if res := landed(t, p, wiki.RedirectURI); res.Code == "" {
		t.Fatalf("sign-in: %+v", res)
	}

	events, _, err := srv.Main.Store.ListAudit(context.Background(), storage.AuditQuery{TargetUserID: alice.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 2 {
		t.Fatalf("%d events about alice, want 2: %+v", len(events), events)
	}
	succeeded, failed := events[0], events[1] // newest first
	for _, c := range []struct {
		e           storage.AuditEvent
		typ, reason string
	}{
		{failed, account.EventSignInFailed, "wrong password"},
		{succeeded, account.EventSignInSucceeded, ""},
	} {
		e := c.e
		if e.Type != c.typ || e.Reason != c.reason || e.ClientID != "wiki" || e.IP != "127.0.0.1" ||
			!strings.HasPrefix(e.UserAgent, "Go-http-client/") || e.Method != "pwd" {
			t.Errorf("%s event: %+v", c.typ, e)
		}
	}
	if failed.Login != "Alice" || failed.ActorKind != account.ActorAnonymous {
		t.Errorf("the failure names %q, acted by %q", failed.Login, failed.ActorKind)
	}
	if succeeded.ActorKind != account.ActorUser || succeeded.ActorID != alice.ID {
		t.Errorf("the success is by %s %q", succeeded.ActorKind, succeeded.ActorID)
	}
}

// TestAuditRetentionSweep: the periodic sweep deletes the audit events
// older than audit.retention and keeps the rest.
func TestAuditRetentionSweep(t *testing.T) {
	srv := startServer(t, "", func(c *config.Config) { c.Audit.Retention = config.Duration{Duration: 24 * time.Hour} })
	ctx := context.Background()
	now := time.Now()
	for id, age := range map[string]time.Duration{"old": 25 * time.Hour, "older": 30 * 24 * time.Hour, "recent": 23 * time.Hour, "new": 0} {
		e := storage.AuditEvent{ID: id, Time: now.Add(-age), Type: account.EventUserBlocked, ActorKind: account.ActorCLI, TargetUserID: "u1"}
		if err := srv.Main.Store.AppendAudit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	srv.Main.sweepOnce(ctx)
	events, _, err := srv.Main.Store.ListAudit(ctx, storage.AuditQuery{TargetUserID: "u1"})
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, e := range events {
		kept = append(kept, e.ID)
	}
	if strings.Join(kept, " ") != "new recent" {
		t.Fatalf("kept %v, want new and recent", kept)
	}
}
