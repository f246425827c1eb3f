package main

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/slapdtest"
)

// The LDAP users' password is the harness's testPassword, so the OIDC
// helpers sign them in like local users.
const directoryFixtures = `dn: cn=keyport,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
cn: keyport
sn: service
userPassword: service-secret

dn: uid=alice,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: alice
cn: Alice Liddell
givenName: Alice
sn: Liddell
mail: alice@corp.example
userPassword: correct horse battery

dn: uid=dave,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: dave
cn: Dave Gone
sn: Gone
mail: dave@corp.example
userPassword: correct horse battery

dn: uid=erin,ou=people,dc=example,dc=org
objectClass: inetOrgPerson
uid: erin
cn: Erin Locked
sn: Locked
mail: erin@corp.example
employeeType: disabled
userPassword: correct horse battery

dn: cn=staff,ou=groups,dc=example,dc=org
objectClass: groupOfNames
cn: staff
member: uid=alice,ou=people,dc=example,dc=org
member: uid=dave,ou=people,dc=example,dc=org
`

// corpDirectory is the directory entry for a slapd with directoryFixtures
// at url: its service account, its people and a daily sync. Tests add what
// they are about.
func corpDirectory(url string) config.Directory {
	return config.Directory{
		ID: "corp", Name: "Corporate LDAP", Type: "ldap", URL: url,
		BindDN: "cn=keyport,ou=people,dc=example,dc=org", BindPassword: "service-secret",
		UserBaseDN: "ou=people,dc=example,dc=org", UserFilter: "(&(objectClass=inetOrgPerson)(mail=*))",
		SyncInterval: config.Duration{Duration: 24 * time.Hour},
	}
}

func startWithDirectory(t *testing.T) (*testServer, *slapdtest.Server) {
	t.Helper()
	ldapSrv := slapdtest.Start(t, directoryFixtures)
	srv := startServer(t, "", func(c *config.Config) {
		d := corpDirectory(ldapSrv.URL)
		d.LoginAttributes, d.DisabledFilter = []string{"uid", "mail"}, "(employeeType=disabled)"
		d.GroupBaseDN, d.GroupFilter = "ou=groups,dc=example,dc=org", "(objectClass=groupOfNames)"
		c.Directories = []config.Directory{d}
	})
	return srv, ldapSrv
}

func TestLDAPSignInThroughOIDC(t *testing.T) {
	srv, _ := startWithDirectory(t)
	rp := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, GrantTypes: []string{"authorization_code", "refresh_token"}})
	b := newBrowser(t)
	code, verifier := rp.signIn(b, "alice", oauth2.SetAuthURLParam("scope", "openid profile email groups offline_access"))
	tok, err := rp.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	claims := idTokenClaims(t, rp, tok)
	local, err := srv.Main.Store.GetUserByLogin(context.Background(), "alice")
	if err != nil {
		t.Fatal(err)
	}
	groups, _ := claims["groups"].([]any)
	if claims["sub"] != local.ID || claims["preferred_username"] != "alice" || claims["given_name"] != "Alice" || claims["family_name"] != "Liddell" ||
		claims["email"] != "alice@corp.example" || claims["email_verified"] != true || !slices.Equal(groups, []any{"staff"}) {
		t.Fatalf("claims of an LDAP user: %v", claims)
	}
	if local.Source != "corp" || len(local.Identities) != 1 || local.Identities[0].Provider != "ldap" || local.PasswordHash != "" {
		t.Fatalf("local record: %+v", local)
	}
	// The sub is stable: a second sign-in finds the same account.
	code, verifier = rp.signIn(newBrowser(t), "alice@corp.example")
	tok2, err := rp.exchange(code, verifier)
	if err != nil || idTokenClaims(t, rp, tok2)["sub"] != local.ID {
		t.Fatalf("second sign-in: %v", err)
	}

	// Wrong password, filter tricks, a disabled account: refused.
	for name, c := range map[string][2]string{
		"wrong password": {"alice", "not the password"},
		"wildcard":       {"*", testPassword},
		"injection":      {"*)(uid=*", testPassword},
		"empty password": {"alice", ""},
	} {
		bb := newBrowser(t)
		lp := bb.get(srv.URL + "/login")
		lp = bb.submit(lp, "/login", url.Values{"login": {c[0]}, "password": {c[1]}})
		if lp.Status != http.StatusUnauthorized && !(name == "empty password" && lp.Status == http.StatusBadRequest) {
			t.Errorf("%s: %d", name, lp.Status)
		}
	}
	bb := newBrowser(t)
	lp := bb.submit(bb.get(srv.URL+"/login"), "/login", url.Values{"login": {"erin"}, "password": {testPassword}})
	if lp.Status != http.StatusForbidden || !strings.Contains(lp.Body, "disabled") {
		t.Errorf("disabled LDAP user: %d", lp.Status)
	}

	// The directory's fields are locked on the page and the API.
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/profile")
	if strings.Contains(p.Body, `name="given_name"`) || !strings.Contains(p.Body, "Managed by Corporate LDAP") {
		t.Errorf("profile of an LDAP user: %s", truncateBody(p.Body))
	}
	if r := postPage(b, p, "/profile", url.Values{"family_name": {"Other"}}); r.Status != http.StatusForbidden {
		t.Errorf("crafted post to an LDAP-owned field: %d", r.Status)
	}
	api := createOnPage(t, srv, b, "/security/api-tokens", url.Values{"name": {"rw"}, "scope": {"read-write"}})
	if status, _, body := apiCall(t, srv, http.MethodPatch, "/api/v1/me", api, "application/json", `{"email":"x@y.example"}`); status != http.StatusForbidden {
		t.Errorf("PATCH of an LDAP-owned field: %d %v", status, body)
	}
	if status, _, _ := apiCall(t, srv, http.MethodPatch, "/api/v1/me", api, "application/json", `{"zoneinfo":"Europe/Berlin"}`); status != http.StatusOK {
		t.Errorf("PATCH of a field LDAP does not own: %d", status)
	}
}

func TestLDAPSyncBlocksRemovedUsers(t *testing.T) {
	srv, ldapSrv := startWithDirectory(t)
	ctx := context.Background()
	rep, err := srv.Main.Accounts.Directories.SyncDirectory(ctx, "corp")
	if err != nil {
		t.Fatal(err)
	}
	if rep.Created+rep.Updated != 3 || rep.Failed != 0 {
		t.Fatalf("first sync: %+v", rep)
	}
	erin, err := srv.Main.Store.GetUserByLogin(ctx, "erin")
	if err != nil || !erin.Blocked {
		t.Fatalf("a disabled directory user is not blocked after sync: %v %+v", err, erin)
	}
	rp := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, GrantTypes: []string{"authorization_code", "refresh_token"}})
	b := newBrowser(t)
	code, verifier := rp.signIn(b, "dave", oauth2.SetAuthURLParam("scope", "openid offline_access"))
	tok, err := rp.exchange(code, verifier)
	if err != nil {
		t.Fatal(err)
	}
	// dave leaves the directory.
	ldapSrv.Delete(t, "uid=dave,ou=people,dc=example,dc=org")
	rep, err = srv.Main.Accounts.Directories.SyncDirectory(ctx, "corp")
	if err != nil || rep.Blocked != 1 {
		t.Fatalf("sync after removal: %v %+v", err, rep)
	}
	if dave, _ := srv.Main.Store.GetUserByLogin(ctx, "dave"); !dave.Blocked {
		t.Fatal("a removed user is not blocked")
	}
	if r := b.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Error("the removed user's session survived")
	}
	if status, _, _ := rp.tokenPost(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, true); status != http.StatusBadRequest {
		t.Errorf("the removed user's refresh token: %d", status)
	}
}

func TestLDAPDownGivesClearError(t *testing.T) {
	srv, ldapSrv := startWithDirectory(t)
	srv.createUser("local", false)
	ldapSrv.Stop()
	b := newBrowser(t)
	p := b.submit(b.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if p.Status != http.StatusServiceUnavailable || !strings.Contains(p.Body, "cannot be reached") {
		t.Errorf("sign-in with slapd down: %d %s", p.Status, truncateBody(p.Body))
	}
	// Local accounts are not affected.
	signInPortal(t, srv, newBrowser(t), "local")
	if _, err := srv.Main.Accounts.Directories.SyncDirectory(context.Background(), "corp"); account.ErrorCode(err) != account.Unavailable {
		t.Errorf("sync with slapd down: %v", err)
	}
	ldapSrv.Restart(t)
	b2 := newBrowser(t)
	p = b2.submit(b2.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}})
	if p.Status != http.StatusOK || hasForm(p.Body, "/login") {
		t.Errorf("after slapd is back: %d", p.Status)
	}
}

func TestDirectoryCLI(t *testing.T) {
	ldapSrv := slapdtest.Start(t, directoryFixtures)
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "keyport.toml")
	toml := `[[directories]]
id = "corp"
name = "Corporate LDAP"
type = "ldap"
url = "` + ldapSrv.URL + `"
bind_dn = "cn=keyport,ou=people,dc=example,dc=org"
bind_password = "service-secret"
user_base_dn = "ou=people,dc=example,dc=org"
user_filter = "(&(objectClass=inetOrgPerson)(mail=*))"
group_base_dn = "ou=groups,dc=example,dc=org"
`
	if err := os.WriteFile(cfgFile, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	env := cliEnv(dir)
	if r := cliMust(t, env, "", "directory", "list", "--config", cfgFile); !strings.Contains(r.Stdout, "corp") || !strings.Contains(r.Stdout, ldapSrv.URL) {
		t.Errorf("list: %s", r)
	}
	if r := cliMust(t, env, "", "directory", "test", "--config", cfgFile, "--id", "corp"); !strings.Contains(r.Stdout, "finds 3 users") {
		t.Errorf("test: %s", r)
	}
	if r := cliMust(t, env, "", "directory", "sync", "--config", cfgFile, "--id", "corp"); !strings.Contains(r.Stdout, "3 created") {
		t.Errorf("sync: %s", r)
	}
	if r := cliMust(t, env, "", "user", "list", "--config", cfgFile); !strings.Contains(r.Stdout, "dave") {
		t.Errorf("synced users are not listed: %s", r)
	}
	cliFail(t, env, "", 2, "no directory", "directory", "test", "--config", cfgFile, "--id", "nope")

	// add and update go through the management API, with its rules: a
	// bad setting is named and nothing is stored; the password comes on
	// stdin and is kept by an update that leaves it out.
	add := []string{"directory", "add", "--config", cfgFile, "--id", "branch", "--provider", "ldap", "--name", "Branch office",
		"--url", ldapSrv.URL, "--bind-dn", "cn=keyport,ou=people,dc=example,dc=org", "--user-base-dn", "ou=people,dc=example,dc=org",
		"--user-filter", "(uid=dave)", "--login-attributes", "uid, mail", "--secret-stdin"}
	cliFail(t, env, "service-secret\n", 1, "url", append(slices.Clone(add), "--url", "http://not-ldap")...)
	cliFail(t, env, "", 1, "configuration file", "directory", "add", "--config", cfgFile, "--id", "corp", "--provider", "ldap", "--url", ldapSrv.URL, "--user-base-dn", "dc=x")
	if r := cliMust(t, env, "service-secret\n", add...); !strings.Contains(r.Stdout, "directory branch (Branch office, ldap) added") {
		t.Errorf("add: %s", r)
	}
	if r := cliMust(t, env, "", "directory", "test", "--config", cfgFile, "--id", "branch"); !strings.Contains(r.Stdout, "finds 1 users") {
		t.Errorf("test the added directory: %s", r)
	}
	if r := cliMust(t, env, "", "directory", "update", "--config", cfgFile, "--id", "branch", "--user-filter", "(&(objectClass=inetOrgPerson)(mail=*))", "--disabled=false"); !strings.Contains(r.Stdout, "directory branch (Branch office, ldap) updated; it is on") {
		t.Errorf("update: %s", r)
	}
	if r := cliMust(t, env, "", "directory", "test", "--config", cfgFile, "--id", "branch"); !strings.Contains(r.Stdout, "finds 3 users") {
		t.Errorf("test after the update (password kept): %s", r)
	}
	cliFail(t, env, "", 1, "user_filter", "directory", "update", "--config", cfgFile, "--id", "branch", "--user-filter", "(uid=")
	cliFail(t, env, "", 2, "say what to change", "directory", "update", "--config", cfgFile, "--id", "branch")
	if r := cliMust(t, env, "", "directory", "list", "--config", cfgFile); !strings.Contains(r.Stdout, "branch") {
		t.Errorf("list after add: %s", r)
	}
	ldapSrv.Stop()
	cliFail(t, env, "", 1, "dial", "directory", "test", "--config", cfgFile, "--id", "corp")
}

func TestDirectoryHandlesSecondFactor(t *testing.T) {
	ldapSrv := slapdtest.Start(t, directoryFixtures)
	srv := startServer(t, "", func(c *config.Config) {
		c.Accounts.Require2FA = true
		d := corpDirectory(ldapSrv.URL)
		d.HandlesSecondFactor = true
		c.Directories = []config.Directory{d}
	})
	b := newBrowser(t)
	// require_2fa does not send a directory user who has 2FA at the source to enrol.
	signInPortal(t, srv, b, "alice")
	p := b.get(srv.URL + "/security")
	if p.URL.Path != "/security" || !strings.Contains(p.Body, `id="second-factor-by-directory"`) || hasForm(p.Body, "/security/totp/begin") {
		t.Fatalf("security page of a directory-2FA user: %s", truncateBody(p.Body))
	}
	if r := postPage(b, p, "/security/totp/begin", url.Values{}); r.Status != http.StatusForbidden {
		t.Errorf("TOTP enrolment by a crafted post: %d", r.Status)
	}
	if pk := b.get(srv.URL + "/security/passkeys"); strings.Contains(pk.Body, `id="passkey-register"`) {
		t.Error("passkey enrolment offered")
	}
	// A local user is still sent to enrol.
	srv.createUser("local", false)
	lb := newBrowser(t)
	lp := lb.submit(lb.get(srv.URL+"/login"), "/login", url.Values{"login": {"local"}, "password": {testPassword}})
	if r := lb.get(srv.URL + "/profile"); r.URL.Path != "/security" {
		t.Errorf("a local user without 2FA reached %s (login ended at %s)", r.URL, lp.URL)
	}
}

func TestAdminDirectoriesPage(t *testing.T) {
	srv, ldapSrv := startWithDirectory(t)
	srv.createUser("root", true)
	srv.createUser("plain", false)

	pb := newBrowser(t)
	signInPortal(t, srv, pb, "plain")
	if r := pb.get(srv.URL + "/admin/directories"); r.Status != http.StatusForbidden {
		t.Errorf("non-admin: %d", r.Status)
	}
	p := pb.get(srv.URL + "/profile")
	if r := postPage(pb, p, "/admin/directories/corp/sync", url.Values{}); r.Status != http.StatusForbidden {
		t.Errorf("non-admin sync: %d", r.Status)
	}

	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	p = b.get(srv.URL + "/admin/directories")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, "Corporate LDAP") || !strings.Contains(p.Body, `href="/admin/directories"`) {
		t.Fatalf("admin page: %d %s", p.Status, truncateBody(p.Body))
	}
	r := postPage(b, p, "/admin/directories/corp/test", url.Values{})
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "finds 3 users") {
		t.Errorf("test connection: %d %s", r.Status, truncateBody(r.Body))
	}
	r = postPage(b, p, "/admin/directories/corp/sync", url.Values{})
	if r.Status != http.StatusOK || !strings.Contains(r.Body, "failed") || !strings.Contains(r.Body, "created") {
		t.Errorf("sync now: %d %s", r.Status, truncateBody(r.Body))
	}
	// Turned off: its users cannot sign in; on again: they can.
	postPage(b, p, "/admin/directories/corp/toggle", url.Values{"disabled": {"1"}})
	ab := newBrowser(t)
	if lp := ab.submit(ab.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}}); lp.Status != http.StatusUnauthorized {
		t.Errorf("sign-in through a turned-off directory: %d", lp.Status)
	}
	postPage(b, p, "/admin/directories/corp/toggle", url.Values{"disabled": {"0"}})
	signInPortal(t, srv, newBrowser(t), "alice")
	// A failing test names the step.
	ldapSrv.Stop()
	r = postPage(b, p, "/admin/directories/corp/test", url.Values{})
	if r.Status != http.StatusBadGateway || !strings.Contains(r.Body, "dial") {
		t.Errorf("test with slapd down: %d %s", r.Status, truncateBody(r.Body))
	}
	if r := postPage(b, p, "/admin/directories/nope/test", url.Values{}); r.Status != http.StatusNotFound {
		t.Errorf("unknown directory: %d", r.Status)
	}
	for _, action := range []string{"/admin/directories/nope/toggle", "/admin/directories/nope/delete", "/admin/directories/nope/sync"} {
		if r := postPage(b, p, action, url.Values{"disabled": {"1"}}); r.Status != http.StatusNotFound {
			t.Errorf("%s: %d", action, r.Status)
		}
	}
	// A directory from config.toml cannot be overwritten, edited or removed here.
	clash := url.Values{"id": {"corp"}, "url": {"ldap://127.0.0.1:1"}, "user_base_dn": {"dc=x"}}
	if r := postPage(b, p, "/admin/directories/new", clash); r.Status != http.StatusConflict || !strings.Contains(r.Body, "configuration file") {
		t.Errorf("overwriting a configured directory: %d", r.Status)
	}
	if r := b.get(srv.URL + "/admin/directories/corp/edit"); r.Status != http.StatusNotFound {
		t.Errorf("editing a configured directory: %d", r.Status)
	}
	if r := postPage(b, p, "/admin/directories/corp/delete", url.Values{}); r.Status != http.StatusNotFound {
		t.Errorf("removing a configured directory: %d", r.Status)
	}
	if r := b.post(srv.URL+"/admin/directories/corp/toggle", url.Values{"disabled": {"1"}}); r.Status != http.StatusForbidden {
		t.Errorf("toggle without CSRF token: %d", r.Status)
	}
	if srv.Main.Accounts.Directories.DirectoryDisabled("corp") {
		t.Error("a refused toggle turned the directory off")
	}
}

func TestAdminAddsDirectory(t *testing.T) {
	ldapSrv := slapdtest.Start(t, directoryFixtures)
	dir := t.TempDir()
	srv := startServer(t, dir, nil)
	srv.createUser("root", true)
	b := newBrowser(t)
	signInPortal(t, srv, b, "root")
	p := b.get(srv.URL + "/admin/directories/new")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="bind_password"`) {
		t.Fatalf("new directory form: %d", p.Status)
	}
	form := url.Values{"id": {"branch"}, "name": {"Branch office"}, "url": {ldapSrv.URL},
		"bind_dn": {"cn=keyport,ou=people,dc=example,dc=org"}, "bind_password": {"service-secret"},
		"user_base_dn": {"ou=people,dc=example,dc=org"}, "user_filter": {"(&(objectClass=inetOrgPerson)(mail=*))"},
		"login_attributes": {"uid, mail"}, "group_base_dn": {"ou=groups,dc=example,dc=org"}, "group_filter": {"(objectClass=groupOfNames)"}, "member_attribute": {"member"}}
	// Bad settings: a clear message, nothing stored.
	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("url", "http://not-ldap")
	if r := postPage(b, p, "/admin/directories/new", bad); r.Status != http.StatusBadRequest || !strings.Contains(r.Body, "url") {
		t.Errorf("bad URL: %d %s", r.Status, truncateBody(r.Body))
	}
	if ds, _ := srv.Main.Store.ListDirectories(context.Background()); len(ds) != 0 {
		t.Fatalf("a refused directory was stored: %+v", ds)
	}
	if r := postPage(b, p, "/admin/directories/new", form); r.Status != http.StatusOK || !strings.Contains(r.Body, "Branch office") {
		t.Fatalf("add directory: %d %s", r.Status, truncateBody(r.Body))
	}
	stored, err := srv.Main.Store.GetDirectory(context.Background(), "branch")
	if err != nil || strings.Contains(string(stored.Settings), "service-secret") || strings.Contains(string(stored.SealedSecret), "service-secret") || len(stored.SealedSecret) == 0 {
		t.Fatalf("stored directory (password must be sealed): %v %s", err, stored.Settings)
	}
	// It works at once: an LDAP user signs in through it.
	signInPortal(t, srv, newBrowser(t), "alice")
	if u, _ := srv.Main.Store.GetUserByLogin(context.Background(), "alice"); u.Source != "branch" {
		t.Errorf("alice's source: %q", u.Source)
	}
	// Editing without a password keeps the stored one.
	ep := b.get(srv.URL + "/admin/directories/branch/edit")
	if ep.Status != http.StatusOK || strings.Contains(ep.Body, "service-secret") || !strings.Contains(ep.Body, "keep the stored password") {
		t.Fatalf("edit form: %d", ep.Status)
	}
	edit := url.Values{}
	for k, v := range form {
		edit[k] = v
	}
	edit.Del("bind_password")
	edit.Set("name", "Branch office (renamed)")
	if r := postPage(b, ep, "/admin/directories/branch/edit", edit); r.Status != http.StatusOK || !strings.Contains(r.Body, "renamed") {
		t.Fatalf("edit: %d", r.Status)
	}
	r := postPage(b, ep, "/admin/directories/branch/test", url.Values{})
	if !strings.Contains(r.Body, "finds 3 users") {
		t.Errorf("test after edit (stored password kept): %s", truncateBody(r.Body))
	}
	// After a restart it is still there.
	srv = srv.restart()
	signInPortal(t, srv, newBrowser(t), "dave")
	// Non-admins cannot add or remove directories.
	srv.createUser("plain", false)
	pb := newBrowser(t)
	signInPortal(t, srv, pb, "plain")
	pp := pb.get(srv.URL + "/profile")
	if r := postPage(pb, pp, "/admin/directories/new", form); r.Status != http.StatusForbidden {
		t.Errorf("non-admin add: %d", r.Status)
	}
	if r := postPage(pb, pp, "/admin/directories/branch/delete", url.Values{"confirm": {"yes"}}); r.Status != http.StatusForbidden {
		t.Errorf("non-admin delete: %d", r.Status)
	}
	// Removed: its users can no longer sign in through it.
	b2 := newBrowser(t)
	signInPortal(t, srv, b2, "root")
	if r := postPage(b2, b2.get(srv.URL+"/admin/directories"), "/admin/directories/branch/delete", url.Values{"confirm": {"yes"}}); r.Status != http.StatusOK || r.URL.Query().Get("done") != "removed" {
		t.Errorf("remove the directory: %d at %s", r.Status, r.URL)
	}
	lb := newBrowser(t)
	if lp := lb.submit(lb.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {testPassword}}); lp.Status != http.StatusUnauthorized {
		t.Errorf("sign-in through a removed directory: %d", lp.Status)
	}
}

func TestLDAPUserRemovedIsStoppedAtSignIn(t *testing.T) {
	srv, ldapSrv := startWithDirectory(t)
	b := newBrowser(t)
	signInPortal(t, srv, b, "dave")
	ldapSrv.Delete(t, "uid=dave,ou=people,dc=example,dc=org")
	// No sync has run: the next sign-in finds out, fails, and ends the
	// account's other sessions.
	lb := newBrowser(t)
	if lp := lb.submit(lb.get(srv.URL+"/login"), "/login", url.Values{"login": {"dave"}, "password": {testPassword}}); lp.Status != http.StatusForbidden {
		t.Errorf("sign-in of a removed user: %d", lp.Status)
	}
	if dave, _ := srv.Main.Store.GetUserByLogin(context.Background(), "dave"); !dave.Blocked {
		t.Error("the removed user is not blocked")
	}
	if r := b.get(srv.URL + "/profile"); !isLoginPage(r) {
		t.Error("the removed user's session survived")
	}
	// A wrong password of a user the directory still knows blocks nothing.
	lb2 := newBrowser(t)
	lb2.submit(lb2.get(srv.URL+"/login"), "/login", url.Values{"login": {"alice"}, "password": {"wrong password"}})
	signInPortal(t, srv, newBrowser(t), "alice")
}
