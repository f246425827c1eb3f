package main

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// TestCLIUserAndAuditCommandsWhileServing runs every user and audit
// command (but user list) against a running server, through its control
// socket: each takes effect in the server at once, refuses bad input
// with a clear message, and is in the audit log as the command line's.
func TestCLIUserAndAuditCommandsWhileServing(t *testing.T) {
	srv := startServer(t, "", nil)
	env := cliEnv(srv.dir)
	ctx := context.Background()
	store := srv.Main.Store
	get := func(login string) storage.User {
		t.Helper()
		u, err := store.GetUserByLogin(ctx, login)
		if err != nil {
			t.Fatalf("user %s: %v", login, err)
		}
		return u
	}

	cliMust(t, env, testPassword+"\n", "user", "create", "--username", "root", "--email", "root@example.com", "--admin", "--password-stdin")
	r := cliMust(t, env, "", "user", "create", "--username", "bob", "--email", "bob@example.com", "--name", "Bob", "--invite")
	if !strings.Contains(r.Stdout, "created user bob") || !strings.Contains(r.Stdout, srv.URL+"/invite?token=") {
		t.Errorf("create --invite: %s", r)
	}
	bob := get("bob")
	if bob.PasswordHash != "" {
		t.Error("an invited user has a password")
	}
	cliFail(t, env, testPassword+"\n", 2, "either --password-stdin or --invite", "user", "create", "--username", "x", "--email", "x@example.com", "--invite", "--password-stdin")

	// set-password ends the sessions; the new password signs in.
	if _, _, err := srv.Main.Accounts.SignIn.StartSession(ctx, bob, []string{"pwd"}, "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	r = cliMust(t, env, "bobs-new-password-1\n", "user", "set-password", "--username", "BOB@example.com", "--password-stdin")
	if !strings.Contains(r.Stdout, "password of BOB@example.com changed") {
		t.Errorf("set-password: %s", r)
	}
	if _, err := srv.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "bob", Password: "bobs-new-password-1"}); err != nil {
		t.Errorf("bob with the password set: %v", err)
	}
	if ss, _ := store.ListUserSessions(ctx, bob.ID); len(ss) != 0 {
		t.Errorf("%d sessions left after set-password", len(ss))
	}
	cliFail(t, env, "short\n", 1, "Password must be at least 10 characters long.", "user", "set-password", "--username", "bob", "--password-stdin")

	// update sends only the flags given.
	r = cliMust(t, env, "", "user", "update", "--username", "bob", "--email", "bob@corp.example", "--given-name", "Robert", "--admin=true", "--roles", "ops,dev", "--groups", "staff")
	if u := get("bob"); u.Email != "bob@corp.example" || u.GivenName != "Robert" || u.Name != "Bob" || !u.Admin || !slices.Equal(u.Roles, []string{"ops", "dev"}) || !slices.Equal(u.Groups, []string{"staff"}) {
		t.Errorf("after update: %+v", u)
	} else if !strings.Contains(r.Stdout, "updated bob: ") || !strings.Contains(r.Stdout, "email bob@example.com → bob@corp.example") {
		t.Errorf("update output: %s", r)
	}
	r = cliMust(t, env, "", "user", "update", "--username", "bob", "--admin=false", "--roles", "")
	if u := get("bob"); u.Admin || len(u.Roles) != 0 || u.GivenName != "Robert" {
		t.Errorf("after the second update: %+v", u)
	}
	cliFail(t, env, "", 1, "Enter a valid email address", "user", "update", "--username", "bob", "--email", "not-an-email")
	cliFail(t, env, "", 1, "last administrator", "user", "update", "--username", "root", "--admin=false")
	cliFail(t, env, "", 2, "at least one field", "user", "update", "--username", "bob")
	cliFail(t, env, "", 1, `No user "nobody".`, "user", "update", "--username", "nobody", "--name", "X")

	// verify-email, set-email-verified --false.
	if r := cliMust(t, env, "", "user", "verify-email", "--username", "bob"); !strings.Contains(r.Stdout, "bob@corp.example of bob is now verified") || !get("bob").EmailVerified {
		t.Errorf("verify-email: %s", r)
	}
	if r := cliMust(t, env, "", "user", "set-email-verified", "--username", "bob", "--false"); !strings.Contains(r.Stdout, "now not verified") || get("bob").EmailVerified {
		t.Errorf("set-email-verified --false: %s", r)
	}

	// block ends the sessions; unblock.
	if _, _, err := srv.Main.Accounts.SignIn.StartSession(ctx, get("bob"), []string{"pwd"}, "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	if r := cliMust(t, env, "", "user", "block", "--username", "bob"); !strings.Contains(r.Stdout, "blocked bob; 1 sessions ended") || !get("bob").Blocked {
		t.Errorf("block: %s", r)
	}
	if r := cliMust(t, env, "", "user", "unblock", "--username", "bob"); !strings.Contains(r.Stdout, "unblocked bob") || get("bob").Blocked {
		t.Errorf("unblock: %s", r)
	}

	// reset-2fa and reset-link.
	if _, err := store.UpdateUser(ctx, bob.ID, func(u storage.User) (storage.User, error) {
		u.TOTPSecret, u.RecoveryCodes = []byte("sealed"), []string{account.HashSecret("c1"), account.HashSecret("c2")}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	if r := cliMust(t, env, "", "user", "reset-2fa", "--username", "bob"); !strings.Contains(r.Stdout, "the authenticator app, 0 passkeys, 2 recovery codes") || len(get("bob").TOTPSecret) != 0 {
		t.Errorf("reset-2fa: %s", r)
	}
	if r := cliMust(t, env, "", "user", "reset-2fa", "--username", "bob"); !strings.Contains(r.Stdout, "had no second factors") {
		t.Errorf("second reset-2fa: %s", r)
	}
	if r := cliMust(t, env, "", "user", "reset-link", "--username", "bob"); !strings.Contains(r.Stdout, srv.URL+"/reset-password?token=") {
		t.Errorf("reset-link: %s", r)
	}

	// export and import.
	out := filepath.Join(t.TempDir(), "users.jsonl")
	if r := cliMust(t, env, "", "user", "export", "--out", out); !strings.Contains(r.Stdout, "exported 2 users to "+out) {
		t.Errorf("export: %s", r)
	}
	imp := cliWriteFile(t, "new.jsonl", `{"username": "carl", "email": "carl@example.com"}`+"\n"+`{"username": "dina", "email": "dina@"}`+"\n")
	r = cliFail(t, env, "", 1, "1 of 2 lines have problems", "user", "import", imp)
	if !strings.Contains(r.Stderr, "new.jsonl: line 2: email: ") {
		t.Errorf("import problems: %s", r)
	}
	imp = cliWriteFile(t, "new.jsonl", `{"username": "carl", "email": "carl@example.com"}`+"\n")
	if r := cliMust(t, env, "", "user", "import", imp); !strings.Contains(r.Stdout, "imported 1 users") {
		t.Errorf("import: %s", r)
	}
	get("carl")

	// delete says what went.
	if _, _, err := srv.Main.Accounts.SignIn.StartSession(ctx, get("carl"), []string{"pwd"}, "192.0.2.1", "test"); err != nil {
		t.Fatal(err)
	}
	carl := get("carl")
	if r := cliMust(t, env, "", "user", "delete", "--username", "carl"); !strings.Contains(r.Stdout, "deleted user carl (id "+carl.ID+", carl@example.com) with 1 sessions") {
		t.Errorf("delete: %s", r)
	}
	if _, err := store.GetUser(ctx, carl.ID); err == nil {
		t.Error("carl is still there")
	}
	cliFail(t, env, "", 1, `No user "carl".`, "user", "delete", "--username", "carl")
	cliFail(t, env, "", 2, "needs --username", "user", "reset-link")

	// Every change is the command line's in the audit log.
	evs, _, err := store.ListAudit(ctx, storage.AuditQuery{TargetUserID: bob.ID})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, e := range evs {
		seen[e.Type] = true
		if strings.HasPrefix(e.Type, "user.") && e.ActorKind != account.ActorCLI { // not the test's own sign-in
			t.Errorf("%s by %s", e.Type, e.ActorKind)
		}
	}
	for _, typ := range []string{"user.created", "user.password_set", "user.updated", "user.blocked", "user.unblocked", "user.second_factors_reset", "user.password_reset_link_created"} {
		if !seen[typ] {
			t.Errorf("no %s event about bob (have %v)", typ, seen)
		}
	}

	// audit list: a table, filtered by user, type and time, newest first.
	r = cliMust(t, env, "", "audit", "list", "--user", "bob", "--type", "user.blocked,user.unblocked", "--since", "1h")
	lines := strings.Split(strings.TrimSpace(r.Stdout), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "TIME") || !strings.Contains(lines[1], "user.unblocked") || !strings.Contains(lines[2], "user.blocked") ||
		!strings.Contains(lines[2], "cli") || !strings.Contains(lines[2], bob.ID) || !strings.Contains(lines[2], "1 sessions ended") {
		t.Errorf("audit list:\n%s", r.Stdout)
	}
	if r := cliMust(t, env, "", "audit", "list", "--limit", "2"); strings.Count(strings.TrimSpace(r.Stdout), "\n") != 2 {
		t.Errorf("audit list --limit 2:\n%s", r.Stdout)
	}
	// A deleted user's events are found by ID.
	if r := cliMust(t, env, "", "audit", "list", "--user", carl.ID, "--type", "user.deleted"); !strings.Contains(r.Stdout, "user.deleted") {
		t.Errorf("audit list of a deleted user:\n%s", r.Stdout)
	}
	cliFail(t, env, "", 2, `--since "yesterday" is neither`, "audit", "list", "--since", "yesterday")

	// audit export: JSON Lines, owner-only file.
	aud := filepath.Join(t.TempDir(), "audit.jsonl")
	r = cliMust(t, env, "", "audit", "export", "--out", aud)
	f, err := os.Open(aud)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("audit export mode %v", fi.Mode())
	}
	n := 0
	for sc := bufio.NewScanner(f); sc.Scan(); n++ {
		var e storage.AuditEvent
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Type == "" {
			t.Fatalf("line %d: %v %q", n+1, err, sc.Text())
		}
	}
	if n < len(evs) || !strings.Contains(r.Stdout, "exported ") {
		t.Errorf("audit export wrote %d events: %s", n, r)
	}
	cliFail(t, env, "", 1, "exists", "audit", "export", "--out", aud)
}

// TestCLIUserCommandsStopped: the same commands on a stopped server's
// database, through the API served in the command's own process, with
// the same rules and audit entries.
func TestCLIUserCommandsStopped(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	cliMust(t, env, testPassword+"\n", "user", "create", "--username", "root", "--email", "root@example.com", "--admin", "--password-stdin")
	cliMust(t, env, testPassword+"\n", "user", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin")
	cliMust(t, env, "", "user", "update", "--username", "bob", "--name", "Bob Stopped", "--email-verified=true")
	cliMust(t, env, "bobs-new-password-1\n", "user", "set-password", "--username", "bob", "--password-stdin")
	cliMust(t, env, "", "user", "block", "--username", "bob")
	if r := cliMust(t, env, "", "user", "reset-link", "--username", "bob"); !strings.Contains(r.Stdout, "/reset-password?token=") {
		t.Errorf("reset-link: %s", r)
	}
	cliFail(t, env, "", 1, `No user "nobody".`, "user", "block", "--username", "nobody")
	cliFail(t, env, "", 1, "last administrator", "user", "delete", "--username", "root")
	r := cliMust(t, env, "", "audit", "list", "--type", "user.blocked")
	if !strings.Contains(r.Stdout, "user.blocked") || !strings.Contains(r.Stdout, "cli") {
		t.Errorf("audit list: %s", r)
	}
	if r := cliMust(t, env, "", "audit", "export"); strings.Count(r.Stdout, `"actor_kind":"cli"`) < 5 {
		t.Errorf("audit export:\n%s", r.Stdout)
	}
	m := cliOpen(t, dir)
	u, err := m.Store.GetUserByLogin(context.Background(), "bob")
	if err != nil || u.Name != "Bob Stopped" || !u.EmailVerified || !u.Blocked {
		t.Errorf("bob: %v %+v", err, u)
	}
	m.Close()
	cliMust(t, env, "", "user", "delete", "--username", "bob")
	m = cliOpen(t, dir)
	defer m.Close()
	if _, err := m.Store.GetUserByLogin(context.Background(), "bob"); err == nil {
		t.Error("bob is still there")
	}
}
