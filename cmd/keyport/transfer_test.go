package main

import (
	"bufio"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/keyport/keyport/account"
)

// TestCLIUserImportSignInExport imports users with hashes of other
// systems through `keyport user import`, signs them in on the real
// portal, and exports them again: the signed-in users' hashes are now
// argon2id.
func TestCLIUserImportSignInExport(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	bc, err := bcrypt.GenerateFromPassword([]byte("bcrypt from auth0"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	lines := []string{
		`{"id": "auth0|5f7c8ec7c33c6c004bbafe82", "username": "ada", "email": "ada@example.com", "email_verified": true, "groups": ["staff"], "password_hash": "` + string(bc) + `"}`,
		// passlib's own test vector for "password".
		`{"username": "grace", "email": "grace@example.com", "password_hash": "$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ"}`,
	}
	bad := cliWriteFile(t, "bad.jsonl", lines[0]+"\n"+`{"username": "bad", "email": "bad@", "colour": "red"}`+"\n")
	r := cliFail(t, env, "", 1, "1 of 2 lines have problems", "user", "import", "--dry-run", bad)
	for _, want := range []string{"bad.jsonl: line 2: colour: unknown field"} {
		if !strings.Contains(r.Stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.Stderr)
		}
	}
	cliFail(t, env, "", 1, "nothing was imported", "user", "import", bad)
	if out := cliMust(t, env, "", "user", "list").Stdout; strings.Contains(out, "ada") {
		t.Fatalf("a refused import stored users:\n%s", out)
	}

	good := cliWriteFile(t, "users.jsonl", strings.Join(lines, "\n")+"\n")
	if out := cliMust(t, env, "", "user", "import", good, "--dry-run").Stdout; !strings.Contains(out, "2 users checked") {
		t.Errorf("dry run: %s", out)
	}
	if out := cliMust(t, env, "", "user", "list").Stdout; strings.Contains(out, "ada") {
		t.Fatalf("a dry run stored users:\n%s", out)
	}
	if out := cliMust(t, env, "", "user", "import", good).Stdout; !strings.Contains(out, "imported 2 users") {
		t.Errorf("import: %s", out)
	}

	srv := startServer(t, dir, nil)
	for login, password := range map[string]string{"ada": "bcrypt from auth0", "grace": "password"} {
		b := newBrowser(t)
		p := b.get(srv.URL + "/login")
		p = b.submit(p, "/login", url.Values{"login": {login}, "password": {password}})
		if p.Status != http.StatusOK || hasForm(p.Body, "/login") || !signedIn(srv, b) {
			t.Fatalf("portal sign-in as %s: %d at %s: %s", login, p.Status, p.URL, truncateBody(p.Body))
		}
	}
	if h := srv.user("auth0|5f7c8ec7c33c6c004bbafe82").PasswordHash; !strings.HasPrefix(h, "$argon2id$") {
		t.Errorf("ada's hash after sign-in: %s", h)
	}
	srv.stop()

	out := filepath.Join(t.TempDir(), "export.jsonl")
	if r := cliMust(t, env, "", "user", "export", "--out", out); !strings.Contains(r.Stdout, "exported 2 users") {
		t.Errorf("export: %s", r)
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("export file: %v %v", fi, err)
	}
	cliFail(t, env, "", 1, "exists", "user", "export", "--out", out)
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	n := 0
	for ; sc.Scan(); n++ {
		var u account.ExportedUser
		if err := json.Unmarshal(sc.Bytes(), &u); err != nil {
			t.Fatal(err)
		}
		if ok, rehash, err := account.VerifyPassword(map[string]string{"ada": "bcrypt from auth0", "grace": "password"}[u.Username], u.PasswordHash, srv.Main.Accounts.Policy().Argon2); !ok || rehash || err != nil {
			t.Errorf("exported hash of %s: %s (ok=%v rehash=%v err=%v)", u.Username, u.PasswordHash, ok, rehash, err)
		}
	}
	if n != 2 {
		t.Errorf("%d lines exported", n)
	}
	// To standard output, and back in from standard input into a new
	// data directory.
	stdout := cliMust(t, env, "", "user", "export").Stdout
	env2 := cliEnv(t.TempDir())
	if r := cliMust(t, env2, stdout, "user", "import", "-"); !strings.Contains(r.Stdout, "imported 2 users") {
		t.Errorf("import from stdin: %s", r)
	}
	if r := cliMust(t, env2, "", "user", "export").Stdout; r != stdout {
		t.Errorf("round trip through the CLI:\n%s\n%s", stdout, r)
	}
}
