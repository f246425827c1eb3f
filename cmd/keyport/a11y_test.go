package main

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/directory/ldap"
	"github.com/keyport/keyport/storage"
)

// What screen readers get from the markup, read with x/net/html.

// stackedTableRoles are the ARIA roles a stacked table states on each of
// its parts: on a phone its CSS makes them blocks, and Safari (VoiceOver)
// then no longer reads them as a table unless the markup says so.
var stackedTableRoles = map[string]string{"table": "table", "thead": "rowgroup", "tbody": "rowgroup", "tr": "row", "th": "columnheader", "td": "cell"}

// Every table that stacks on a phone keeps its table semantics in the
// markup: role="table", "rowgroup", "row", "columnheader" and "cell".
func TestStackedTablesStateTheirRoles(t *testing.T) {
	srv := startServerWith(t, serverOptions{localhost: true})
	ctx := context.Background()
	alice := srv.createUser("alice", false)
	srv.createUser("root", true)
	acct := srv.Main.Accounts
	if _, _, err := acct.Credentials.CreateAppPassword(ctx, alice, "Mail", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := acct.Credentials.CreateAPIToken(ctx, alice, account.NewAPIToken{Name: "backup", Scope: account.ScopeReadOnly}); err != nil {
		t.Fatal(err)
	}
	if _, err := acct.Credentials.TrustDevice(ctx, alice, "192.0.2.7", firefoxOnLinux); err != nil {
		t.Fatal(err)
	}
	if err := acct.Directories.SaveDirectory(ctx, ldap.Config{ID: "corp", Name: "Corporate LDAP", URL: "ldap://127.0.0.1:1", UserBaseDN: "dc=example,dc=org"}, true); err != nil {
		t.Fatal(err)
	}
	if err := srv.Main.Store.PutGrant(ctx, storage.Grant{UserID: alice.ID, ClientID: "wiki", Scopes: []string{"openid", "email"}, CreatedAt: time.Now(), UpdatedAt: time.Now()}, nil); err != nil {
		t.Fatal(err) // a connected app (deleted since: no such client)
	}
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	registerPasskey(t, srv, b, newPasskeyDevice(t, srv.URL), "Laptop")
	admin := newBrowser(t)
	signInPortal(t, srv, admin, "root")

	tables := 0
	for _, c := range []struct {
		b    *browser
		path string
	}{{b, "/security/access"}, {b, "/security/activity"}, {b, "/security"}, {b, "/security/passkeys"}, {admin, "/admin/directories"}, {admin, "/admin"}} {
		p := c.b.get(srv.URL + c.path)
		if p.Status != http.StatusOK {
			t.Fatalf("%s: %d", c.path, p.Status)
		}
		for _, table := range parsePage(t, p.Body).all("table", "class", "table-stack") {
			tables++
			var wrong []string
			for _, el := range append([]htmlNode{table}, table.all("")...) {
				if want, ok := stackedTableRoles[el.Data]; ok && el.attr("role") != want {
					wrong = append(wrong, "<"+el.Data+" role="+strconv.Quote(el.attr("role"))+">")
				}
			}
			if len(wrong) > 0 {
				t.Errorf("%s, table #%s: %d parts without their role, such as %s", c.path, table.attr("id"), len(wrong), wrong[0])
			}
		}
	}
	if tables < 8 {
		t.Errorf("%d stacked tables found on the pages, want all 8", tables)
	}
}

// Each "Source and who sees it" on the profile names its field to a
// screen reader, in visually hidden text, so a list of the page's
// disclosures is not fifteen identical entries.
func TestProfileDisclosuresNameTheirField(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	b := newBrowser(t)
	signInPortal(t, srv, b, "alice")
	doc := parsePage(t, b.get(srv.URL+"/profile").Body)
	seen := map[string]bool{}
	summaries := 0
	for _, details := range doc.all("details", "class", "field-meta") {
		summary, _ := details.first("summary")
		hidden, ok := summary.first("", "class", "sr-only")
		summaries++
		// The field: the label beside the disclosure, or for the avatar
		// (a section of its own) the section's heading.
		around, name := htmlNode{details.Parent}, "label"
		if around.Data == "section" {
			name = "h2"
		}
		el, _ := around.first(name)
		field := el.text()
		switch {
		case field == "":
			t.Errorf("a disclosure %q belongs to no field", summary.text())
		case !ok || !strings.Contains(hidden.text(), field):
			t.Errorf("the disclosure of %s reads %q, with no hidden mention of the field", field, summary.text())
		case seen[summary.text()]:
			t.Errorf("two disclosures read %q", summary.text())
		}
		seen[summary.text()] = true
	}
	if summaries < 15 {
		t.Errorf("%d disclosures on the profile, want at least 15", summaries)
	}
}
