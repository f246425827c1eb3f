package main

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// connectedApps reads the connected apps of an App access page: the text
// of each row by the client ID its Revoke form sends.
func connectedApps(t *testing.T, p page) map[string]string {
	t.Helper()
	out := map[string]string{}
	section, ok := parsePage(t, p.Body).byID("connected-apps")
	if !ok {
		t.Fatalf("no connected apps on %s:\n%s", p.URL, truncateBody(p.Body))
	}
	for _, row := range section.all("tr", "role", "row") {
		f, ok := row.formByAction("/security/connected-apps/revoke")
		if !ok {
			continue
		}
		out[f.formValues().Get("app")] = row.text()
	}
	return out
}

// browserRow is a row of the Activity page's signed-in browsers.
type browserRow struct {
	Handle  string // what its Sign out form sends
	Current bool   // marked "this browser"
}

func signedInBrowsers(t *testing.T, p page) []browserRow {
	t.Helper()
	table, ok := parsePage(t, p.Body).byID("sessions")
	if !ok {
		t.Fatalf("no sessions on %s:\n%s", p.URL, truncateBody(p.Body))
	}
	var out []browserRow
	for _, row := range table.all("tr", "role", "row") {
		f, ok := row.formByAction("/security/activity/sessions/end")
		if !ok {
			continue
		}
		out = append(out, browserRow{Handle: f.formValues().Get("session"), Current: strings.Contains(row.text(), "this browser")})
	}
	return out
}

// auditTypes lists a user's audit events of the kinds these tests make
// (consents and sessions), as "type client"; sign-ins are left out.
func auditTypes(t *testing.T, srv *testServer, userID string) []string {
	t.Helper()
	events, _, err := srv.Main.Store.ListAudit(context.Background(), storage.AuditQuery{TargetUserID: userID, Types: []string{"consent.revoked", "session.ended"}})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range events {
		out = append(out, e.Type+" "+e.ClientID)
	}
	return out
}

// TestConnectedAppsRevoke: a real relying party signs alice in with her
// consent; the App access page lists it with the scopes and the last use;
// revoking it makes its refresh token fail and its next sign-in ask for
// consent again, while her other app and another user of the same app
// keep working. An app gone since (its consent still on record, as one
// removed from config.toml leaves it) is shown as such and can be revoked.
func TestConnectedAppsRevoke(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	srv.createUser("bob", false)
	wiki := srv.createClient(account.NewClient{ID: "wiki", Name: "Team Wiki"})
	wiki.oauth.Scopes = []string{oidc.ScopeOpenID, "email", oidc.ScopeOfflineAccess}
	chat := srv.createClient(account.NewClient{ID: "chat", Name: "Team Chat"})
	chat.oauth.Scopes = []string{oidc.ScopeOpenID, oidc.ScopeOfflineAccess}
	old := srv.createClient(account.NewClient{ID: "old", Name: "Old Tool"})

	aliceWiki, aliceChat, bobWiki := wiki.tokens("alice"), chat.tokens("alice"), wiki.tokens("bob")
	old.tokens("alice")
	if err := srv.Main.Accounts.Clients.DeleteClient(context.Background(), account.SystemActor, "old"); err != nil {
		t.Fatal(err)
	}
	// Deleting an app takes its consents with it; an app removed from
	// config.toml leaves them on record (Keyport never owned it), and
	// that is the deleted app this page shows.
	if _, err := srv.Main.Store.GetGrant(context.Background(), alice.ID, "old"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("alice's consent to the deleted app: %v", err)
	}
	if err := srv.Main.Store.PutGrant(context.Background(), storage.Grant{UserID: alice.ID, ClientID: "old", Scopes: []string{oidc.ScopeOpenID}, CreatedAt: time.Now(), UpdatedAt: time.Now(), LastUsedAt: time.Now()}, nil); err != nil {
		t.Fatal(err)
	}
	refresh := func(c *testClient, rt string) (int, string) {
		status, _, body := c.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, true)
		code, _ := body["error"].(string)
		return status, code
	}

	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/security/access")
	apps := connectedApps(t, p)
	if len(apps) != 3 {
		t.Fatalf("connected apps: %q, want wiki, chat and old", apps)
	}
	for _, want := range []string{"Team Wiki", "See your email address", "email", "offline_access"} {
		if !strings.Contains(apps["wiki"], want) {
			t.Errorf("wiki's row %q does not say %q", apps["wiki"], want)
		}
	}
	if strings.Contains(apps["chat"], "email") || !strings.Contains(apps["chat"], "Team Chat") {
		t.Errorf("chat's row: %q", apps["chat"])
	}
	// Consent given and last use are both shown, as dates, not "—".
	if strings.Count(apps["wiki"], "—") != 0 || strings.Contains(apps["wiki"], "Not since the consent") {
		t.Errorf("wiki's row lacks the consent or the last use: %q", apps["wiki"])
	}
	if !strings.Contains(apps["old"], "deleted app") {
		t.Errorf("the deleted app's row: %q", apps["old"])
	}

	// A crafted revocation of an app alice never consented to: 404.
	if r := postPage(b, p, "/security/connected-apps/revoke", url.Values{"app": {"portal-nope"}}); r.Status != http.StatusNotFound {
		t.Errorf("revoke an unknown app: %d", r.Status)
	}

	r := submitForm(t, b, p, "/security/connected-apps/revoke", url.Values{"app": {"wiki"}})
	if r.Status != http.StatusOK || r.URL.Path != "/security/access" || !strings.Contains(r.Body, "access was revoked") {
		t.Fatalf("revoke wiki: %d at %s\n%s", r.Status, r.URL, truncateBody(r.Body))
	}
	if _, listed := connectedApps(t, r)["wiki"]; listed {
		t.Error("wiki is still listed")
	}
	if status, code := refresh(wiki, aliceWiki.RefreshToken); status != http.StatusBadRequest || code != "invalid_grant" {
		t.Errorf("alice's wiki refresh after the revocation: %d %s, want 400 invalid_grant", status, code)
	}
	if status, code := refresh(chat, aliceChat.RefreshToken); status != http.StatusOK {
		t.Errorf("alice's chat refresh: %d %s", status, code)
	}
	if status, code := refresh(wiki, bobWiki.RefreshToken); status != http.StatusOK {
		t.Errorf("bob's wiki refresh: %d %s", status, code)
	}
	// The next sign-in to wiki, in the browser signed in to the portal,
	// asks for consent again; chat's does not.
	if next := wiki.authorize(b, "again"); !isConsentPage(next) {
		t.Errorf("wiki's next sign-in: %d at %s, want the consent page\n%s", next.Status, next.URL, truncateBody(next.Body))
	}
	if next := chat.authorize(b, "again"); next.Status != http.StatusFound || !strings.HasPrefix(next.Location, chat.RedirectURI) {
		t.Errorf("chat's next sign-in: %d %s, want straight back to chat", next.Status, next.Location)
	}

	// The deleted app goes the same way.
	p = b.get(srv.URL + "/security/access")
	if r := submitForm(t, b, p, "/security/connected-apps/revoke", url.Values{"app": {"old"}}); r.Status != http.StatusOK {
		t.Errorf("revoke the deleted app: %d", r.Status)
	}
	got := connectedApps(t, b.get(srv.URL+"/security/access"))
	if len(got) != 1 || got["chat"] == "" {
		t.Errorf("connected apps at the end: %q, want chat only", got)
	}
	if types := auditTypes(t, srv, alice.ID); strings.Join(types, ",") != "consent.revoked old,consent.revoked wiki" {
		t.Errorf("alice's audit events: %q", types)
	}
}

// TestSignOutOneBrowser: alice signed in twice signs the other browser
// out from the Activity page, and then this one; bob's crafted post with
// one of alice's sessions changes nothing.
func TestSignOutOneBrowser(t *testing.T) {
	srv := startServer(t, "", nil)
	alice := srv.createUser("alice", false)
	bob := srv.createUser("bob", false)
	laptop, phone, bobs := newBrowser(t), newBrowser(t), newBrowser(t)
	signInPortal(t, srv, laptop, "alice")
	signInPortal(t, srv, phone, "alice")
	signInPortal(t, srv, bobs, "bob")

	p := laptop.get(srv.URL + "/security/activity")
	rows := signedInBrowsers(t, p)
	if len(rows) != 2 || rows[0].Current == rows[1].Current {
		t.Fatalf("alice's browsers: %+v, want two, one of them this one", rows)
	}
	var here, there string
	for _, r := range rows {
		if r.Current {
			here = r.Handle
		} else {
			there = r.Handle
		}
	}

	// bob posts alice's phone's session, with his own page's token.
	bp := bobs.get(srv.URL + "/security/activity")
	if r := postPage(bobs, bp, "/security/activity/sessions/end", url.Values{"session": {there}}); r.Status != http.StatusNotFound {
		t.Errorf("bob ends alice's session: %d, want 404", r.Status)
	}
	if !signedIn(srv, phone) || !signedIn(srv, laptop) || !signedIn(srv, bobs) {
		t.Fatal("bob's crafted post signed someone out")
	}

	r := submitForm(t, laptop, p, "/security/activity/sessions/end", url.Values{"session": {there}})
	if r.Status != http.StatusOK || r.URL.Path != "/security/activity" || !strings.Contains(r.Body, "That browser was signed out.") {
		t.Fatalf("sign out the phone: %d at %s\n%s", r.Status, r.URL, truncateBody(r.Body))
	}
	if signedIn(srv, phone) {
		t.Error("the phone is still signed in")
	}
	if !signedIn(srv, laptop) || !signedIn(srv, bobs) {
		t.Error("signing the phone out signed the laptop or bob out")
	}
	if rows := signedInBrowsers(t, r); len(rows) != 1 || rows[0].Handle != here {
		t.Errorf("alice's browsers after: %+v", rows)
	}

	// Signing this browser out from the list signs it out here.
	r = submitForm(t, laptop, r, "/security/activity/sessions/end", url.Values{"session": {here}})
	if r.Status != http.StatusOK || r.URL.Path != "/logged-out" {
		t.Errorf("sign out this browser: %d at %s", r.Status, r.URL)
	}
	if signedIn(srv, laptop) || !signedIn(srv, bobs) {
		t.Error("after signing this browser out: laptop signed in, or bob not")
	}
	if types := auditTypes(t, srv, alice.ID); strings.Join(types, ",") != "session.ended ,session.ended " {
		t.Errorf("alice's audit events: %q", types)
	}
	if types := auditTypes(t, srv, bob.ID); len(types) != 0 {
		t.Errorf("bob's audit events: %q", types)
	}
}
