package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/internal/testlog"
)

// These tests drive the real CLI entry point, run(...), in-process against a
// real bbolt file in a temp dir, and a real server where a command's effect
// has to be seen over HTTP.

type cliResult struct {
	Code           int
	Stdout, Stderr string
}

func (r cliResult) String() string {
	return "exit " + strconv.Itoa(r.Code) + "\nstdout:\n" + r.Stdout + "\nstderr:\n" + r.Stderr
}

// cliRun runs `keyport args...` in-process with stdin and an environment
// made of env only.
func cliRun(t *testing.T, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	return cliResult{Code: code, Stdout: out.String(), Stderr: errb.String()}
}

// cliMust runs a command that must succeed.
func cliMust(t *testing.T, env map[string]string, stdin string, args ...string) cliResult {
	t.Helper()
	r := cliRun(t, env, stdin, args...)
	if r.Code != 0 {
		t.Fatalf("keyport %s: %s", strings.Join(args, " "), r)
	}
	return r
}

// cliFail runs a command that must exit with code and say want on stderr.
func cliFail(t *testing.T, env map[string]string, stdin string, code int, want string, args ...string) cliResult {
	t.Helper()
	r := cliRun(t, env, stdin, args...)
	if r.Code != code || !strings.Contains(r.Stderr, want) {
		t.Errorf("keyport %s: want exit %d and stderr containing %q, got %s", strings.Join(args, " "), code, want, r)
	}
	return r
}

func cliEnv(dir string) map[string]string { return map[string]string{"KEYPORT_DATA_DIR": dir} }

// cliOpen opens the store of dir as the CLI does, for checks after a
// command has closed it. The caller closes it.
func cliOpen(t *testing.T, dir string) *Main {
	t.Helper()
	cfg, _, err := config.Load("", func(k string) string { return cliEnv(dir)[k] })
	if err != nil {
		t.Fatal(err)
	}
	m, err := openStore(cfg, slog.New(slog.DiscardHandler), time.Second, nil)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return m
}

func cliAuth(m *Main, login, password string) error {
	_, err := m.Accounts.SignIn.Authenticate(context.Background(), account.Credentials{Login: login, Password: password, IP: "192.0.2.1"})
	return err
}

// cliRow finds the `user list` row whose second column (USERNAME) is col2
// and returns its fields.
func cliRow(out, col2 string) []string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[1] == col2 {
			return f
		}
	}
	return nil
}

// cliClientRow finds a `client list` row by client ID (first column).
func cliClientRow(out, id string) []string {
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 1 && f[0] == id {
			return f
		}
	}
	return nil
}

func cliWriteFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// cliClientCredentials asks the token endpoint for a machine token.
func cliClientCredentials(s *testServer, id, secret string) (int, map[string]any) {
	s.t.Helper()
	status, _, body := s.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
	return status, body
}

func TestCLIUsage(t *testing.T) {
	env := cliEnv(t.TempDir())
	if r := cliRun(t, env, ""); r.Code != 2 || !strings.Contains(r.Stderr, "Usage:") {
		t.Errorf("no arguments: %s", r)
	}
	if r := cliRun(t, env, "", "frobnicate"); r.Code != 2 || !strings.Contains(r.Stderr, `unknown command "frobnicate"`) {
		t.Errorf("unknown command: %s", r)
	}
	for _, h := range []string{"help", "-h", "--help"} {
		r := cliRun(t, env, "", h)
		if r.Code != 0 || !strings.Contains(r.Stdout, "keyport user create --username NAME") || r.Stderr != "" {
			t.Errorf("%s: %s", h, r)
		}
	}
	cliFail(t, env, "", 2, "user: missing subcommand", "user")
	cliFail(t, env, "", 2, `client: unknown subcommand "frob"`, "client", "frob")
	cliFail(t, env, "", 2, `unexpected argument "extra"`, "user", "list", "extra")
	cliFail(t, env, "", 2, "flag provided but not defined: -bogus", "user", "create", "--bogus")
	cliFail(t, env, "", 2, "client create needs --id", "client", "create", "--redirect-uri", "https://app.example.com/cb")
	cliFail(t, env, "", 2, "client delete needs --id", "client", "delete")
	cliFail(t, env, "", 2, "user block needs --username", "user", "block")
	if r := cliRun(t, env, "", "user", "list", "-h"); r.Code != 0 || !strings.Contains(r.Stderr, "-config") {
		t.Errorf("user list -h: %s", r)
	}
	// None of that touched the data dir.
	if _, err := os.Stat(filepath.Join(env["KEYPORT_DATA_DIR"], "keyport.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("usage errors created the database: %v", err)
	}
}

func TestCLIDefaults(t *testing.T) {
	// No file, no flags, no environment: localhost:8080 with data in ./data.
	cfg, _, err := config.Load("", func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Issuer != "http://localhost:8080" || cfg.Listen != "localhost:8080" || cfg.DataDir != "./data" {
		t.Errorf("defaults: issuer %q listen %q data_dir %q", cfg.Issuer, cfg.Listen, cfg.DataDir)
	}
	if cfg.DBPath() != filepath.Join("data", "keyport.db") || cfg.SecretKeyPath() != filepath.Join("data", "secret.key") {
		t.Errorf("paths: %s %s", cfg.DBPath(), cfg.SecretKeyPath())
	}
}

func TestCLIUserCreateListPasswordBlock(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)

	// Password with a trailing newline (echo pw | keyport ...): it is trimmed.
	r := cliMust(t, env, "alice-password-1\n", "user", "create", "--username", "alice", "--email", "alice@example.com", "--name", "Alice Admin", "--admin", "--password-stdin")
	if !strings.Contains(r.Stdout, "created administrator alice") {
		t.Errorf("user create --admin output: %s", r)
	}
	// Without a trailing newline (printf pw | keyport ...).
	r = cliMust(t, env, "bob-password-22", "user", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin")
	if !strings.Contains(r.Stdout, "created user bob") {
		t.Errorf("user create output: %s", r)
	}
	if strings.Contains(r.Stdout+r.Stderr, "bob-password-22") {
		t.Errorf("the password was echoed: %s", r)
	}

	r = cliMust(t, env, "", "user", "list")
	if !strings.Contains(r.Stdout, "ADMIN") || !strings.Contains(r.Stdout, "BLOCKED") {
		t.Errorf("user list header: %s", r)
	}
	alice, bob := cliRow(r.Stdout, "alice"), cliRow(r.Stdout, "bob")
	if alice == nil || bob == nil {
		t.Fatalf("user list misses alice or bob:\n%s", r.Stdout)
	}
	if got := alice[len(alice)-2:]; !slices.Equal(got, []string{"true", "false"}) || alice[2] != "alice@example.com" || !strings.Contains(r.Stdout, "Alice Admin") {
		t.Errorf("alice row (admin, blocked) = %v", alice)
	}
	if got := bob[len(bob)-2:]; !slices.Equal(got, []string{"false", "false"}) {
		t.Errorf("bob row (admin, blocked) = %v", bob)
	}

	// Refusals.
	cliFail(t, env, "another-password-3\n", 1, "Another account already has this username or email address.",
		"user", "create", "--username", "alice", "--email", "alice2@example.com", "--password-stdin")
	cliFail(t, env, "another-password-3\n", 1, "already has this username or email",
		"user", "create", "--username", "alice2", "--email", "alice@example.com", "--password-stdin")
	cliFail(t, env, "short\n", 1, "Password must be at least 10 characters long.",
		"user", "create", "--username", "carol", "--email", "carol@example.com", "--password-stdin")
	cliFail(t, env, "carol-password-4\n", 1, "Enter a valid email address.",
		"user", "create", "--username", "carol", "--email", "not-an-email", "--password-stdin")
	cliFail(t, env, "carol-password-4\n", 2, "--password-stdin or --invite",
		"user", "create", "--username", "carol", "--email", "carol@example.com")
	cliFail(t, env, "", 2, "password on stdin is empty",
		"user", "create", "--username", "carol", "--email", "carol@example.com", "--password-stdin")
	cliFail(t, env, "\n", 2, "password on stdin is empty",
		"user", "create", "--username", "carol", "--email", "carol@example.com", "--password-stdin")
	if r := cliMust(t, env, "", "user", "list"); cliRow(r.Stdout, "carol") != nil || cliRow(r.Stdout, "alice2") != nil {
		t.Errorf("a refused user was created:\n%s", r.Stdout)
	}

	m := cliOpen(t, dir)
	if err := cliAuth(m, "alice", "alice-password-1"); err != nil {
		t.Errorf("alice with her password: %v", err)
	}
	if err := cliAuth(m, "alice", "alice-password-1\n"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("the trailing newline must not be part of the password: %v", err)
	}
	if err := cliAuth(m, "bob@example.com", "bob-password-22"); err != nil {
		t.Errorf("bob with his password: %v", err)
	}
	m.Close()

	// set-password: the new password works, the old one no longer does.
	r = cliMust(t, env, "alice-password-NEW\n", "user", "set-password", "--username", "alice", "--password-stdin")
	if !strings.Contains(r.Stdout, "password of alice changed") {
		t.Errorf("set-password output: %s", r)
	}
	cliFail(t, env, "tiny\n", 1, "Password must be at least 10 characters long.", "user", "set-password", "--username", "alice", "--password-stdin")
	cliFail(t, env, "alice\n", 1, "Password must be at least 10 characters long.", "user", "set-password", "--username", "alice", "--password-stdin")
	cliFail(t, env, "alice@example.com\n", 1, "must not be the same as the username or email", "user", "set-password", "--username", "alice", "--password-stdin")
	cliFail(t, env, "whatever-password\n", 1, `No user "nobody".`, "user", "set-password", "--username", "nobody", "--password-stdin")
	cliFail(t, env, "whatever-password\n", 2, "--password-stdin", "user", "set-password", "--username", "alice")
	m = cliOpen(t, dir)
	if err := cliAuth(m, "alice", "alice-password-NEW"); err != nil {
		t.Errorf("alice with the new password: %v", err)
	}
	if err := cliAuth(m, "alice", "alice-password-1"); account.ErrorCode(err) != account.Unauthorized {
		t.Errorf("alice with the old password: %v", err)
	}
	m.Close()

	// block / unblock.
	r = cliMust(t, env, "", "user", "block", "--username", "bob")
	if !strings.Contains(r.Stdout, "blocked bob") {
		t.Errorf("block output: %s", r)
	}
	if row := cliRow(cliMust(t, env, "", "user", "list").Stdout, "bob"); row == nil || row[len(row)-1] != "true" {
		t.Errorf("bob after block: %v", row)
	}
	m = cliOpen(t, dir)
	if err := cliAuth(m, "bob", "bob-password-22"); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("blocked bob signs in: %v", err)
	}
	m.Close()
	r = cliMust(t, env, "", "user", "unblock", "--username", "bob@example.com")
	if !strings.Contains(r.Stdout, "unblocked bob@example.com") {
		t.Errorf("unblock output: %s", r)
	}
	if row := cliRow(cliMust(t, env, "", "user", "list").Stdout, "bob"); row == nil || row[len(row)-1] != "false" {
		t.Errorf("bob after unblock: %v", row)
	}
	m = cliOpen(t, dir)
	if err := cliAuth(m, "bob", "bob-password-22"); err != nil {
		t.Errorf("unblocked bob: %v", err)
	}
	m.Close()
	cliFail(t, env, "", 1, `No user "nobody".`, "user", "block", "--username", "nobody")
}

// TestCLIUserSetPasswordSignIn checks set-password through the portal: the
// server is started after the CLI closed the database.
func TestCLIUserSetPasswordSignIn(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	cliMust(t, env, "first-password-1\n", "user", "create", "--username", "dora", "--email", "dora@example.com", "--password-stdin")
	cliMust(t, env, testPassword+"\n", "user", "set-password", "--username", "dora", "--password-stdin")
	cliMust(t, env, "", "client", "create", "--id", "app", "--redirect-uri", "http://127.0.0.1:9/callback/app", "--skip-consent")

	srv := startServer(t, dir, nil)
	app := srv.rp("app", "", "http://127.0.0.1:9/callback/app")
	b := newBrowser(t)
	_, challenge := pkce()
	p := b.get(app.oauth.AuthCodeURL("st", oauth2.SetAuthURLParam("code_challenge", challenge), oauth2.SetAuthURLParam("code_challenge_method", "S256")))
	if !isLoginPage(p) {
		t.Fatalf("expected the login page, got %d\n%s", p.Status, truncateBody(p.Body))
	}
	old := b.submit(p, "/login", url.Values{"login": {"dora"}, "password": {"first-password-1"}})
	if old.Status != http.StatusUnauthorized {
		t.Errorf("old password: %d", old.Status)
	}
	p = b.submit(old, "/login", url.Values{"login": {"dora"}, "password": {testPassword}})
	if res := landed(t, p, app.RedirectURI); res.Code == "" || res.Error != "" {
		t.Errorf("new password: %+v", res)
	}
}

func TestCLIClientCreate(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)

	// A generated secret is printed exactly once.
	r := cliMust(t, env, "", "client", "create", "--id", "worker", "--name", "Nightly job", "--grant", "client_credentials")
	m := regexp.MustCompile(`client secret \(shown once, store it now\): (\S+)`).FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Fatalf("no generated secret in the output: %s", r)
	}
	secret := m[1]
	if len(secret) < account.MinClientSecretLength || strings.Count(r.Stdout+r.Stderr, secret) != 1 {
		t.Errorf("secret %q must be printed exactly once: %s", secret, r)
	}
	if !strings.Contains(r.Stdout, "created client worker (client_credentials)") {
		t.Errorf("client create output: %s", r)
	}

	// --secret-stdin uses the given secret and does not print it.
	const own = "my-own-secret-0123456789"
	r = cliMust(t, env, own+"\n", "client", "create", "--id", "byo", "--grant", "client_credentials", "--secret-stdin")
	if strings.Contains(r.Stdout+r.Stderr, own) || strings.Contains(r.Stdout, "client secret") {
		t.Errorf("--secret-stdin printed a secret: %s", r)
	}

	// --public: no secret at all.
	r = cliMust(t, env, "", "client", "create", "--id", "spa", "--public", "--redirect-uri", "http://127.0.0.1:9/callback/spa")
	if strings.Contains(strings.ToLower(r.Stdout+r.Stderr), "secret") {
		t.Errorf("--public printed a secret: %s", r)
	}

	// Repeated URI flags and the default grants.
	cliMust(t, env, "", "client", "create", "--id", "web", "--name", "Web App",
		"--redirect-uri", "https://web.example.com/cb", "--redirect-uri", "http://localhost:3000/cb",
		"--post-logout-redirect-uri", "https://web.example.com/bye")

	// Refusals.
	cliFail(t, env, "", 1, `Redirect URI "/relative/cb" must be an absolute URL`, "client", "create", "--id", "bad1", "--redirect-uri", "/relative/cb")
	cliFail(t, env, "", 1, `Redirect URI "https://app.example.com/cb#frag"`, "client", "create", "--id", "bad2", "--redirect-uri", "https://app.example.com/cb#frag")
	cliFail(t, env, "", 1, "forbidden scheme", "client", "create", "--id", "bad3", "--redirect-uri", "javascript:alert(1)")
	cliFail(t, env, "", 1, "absolute URL", "client", "create", "--id", "bad4", "--redirect-uri", "https://app.example.com/cb", "--post-logout-redirect-uri", "bye")
	cliFail(t, env, "", 1, `Unknown grant type "implicit"`, "client", "create", "--id", "bad5", "--redirect-uri", "https://app.example.com/cb", "--grant", "authorization_code,implicit")
	cliFail(t, env, "", 1, "needs at least one redirect URI", "client", "create", "--id", "bad6")
	cliFail(t, env, "", 1, "A public client cannot use client_credentials", "client", "create", "--id", "bad7", "--public", "--grant", "client_credentials")
	cliFail(t, env, "some-long-secret-0123456789\n", 1, "A public client must not have a secret.", "client", "create", "--id", "bad7", "--public", "--redirect-uri", "https://app.example.com/cb", "--secret-stdin")
	// The same rule as for [[clients]] in the config file.
	cliFail(t, env, "", 1, "The refresh_token grant needs authorization_code or the device code grant too", "client", "create", "--id", "bad7", "--grant", "refresh_token,client_credentials")
	cliFail(t, env, "", 1, "Client ID must be", "client", "create", "--id", "bad id!", "--grant", "client_credentials")
	cliFail(t, env, "short-secret\n", 1, "Client secret must be at least 16 characters.", "client", "create", "--id", "bad8", "--grant", "client_credentials", "--secret-stdin")
	cliFail(t, env, "", 2, "secret on stdin is empty", "client", "create", "--id", "bad9", "--grant", "client_credentials", "--secret-stdin")
	// A secret too long for stdin is refused, never truncated.
	cliFail(t, env, strings.Repeat("s", 5000), 1, "secret on stdin is longer than 4096 bytes", "client", "create", "--id", "bad9", "--grant", "client_credentials", "--secret-stdin")
	cliFail(t, env, strings.Repeat("p", 5000), 1, "password on stdin is longer than 4096 bytes", "user", "create", "--username", "bad9", "--email", "bad9@example.com", "--password-stdin")
	cliFail(t, env, "", 1, `A client with ID "worker" already exists.`, "client", "create", "--id", "worker", "--grant", "client_credentials")

	r = cliMust(t, env, "", "client", "list")
	for _, id := range []string{"worker", "byo", "spa", "web"} {
		if row := cliClientRow(r.Stdout, id); row == nil || row[len(row)-1] != "database" {
			t.Errorf("client list row of %s: %v\n%s", id, row, r.Stdout)
		}
	}
	for i := 1; i <= 9; i++ {
		if cliClientRow(r.Stdout, "bad"+string(rune('0'+i))) != nil {
			t.Errorf("refused client bad%d was stored", i)
		}
	}
	if row := cliClientRow(r.Stdout, "spa"); row == nil || !slices.Contains(row, "public") {
		t.Errorf("spa row: %v", row)
	}
	if row := cliClientRow(r.Stdout, "worker"); row == nil || !slices.Contains(row, "confidential") {
		t.Errorf("worker row: %v", row)
	}

	// The server, started after the CLI closed the database, accepts them.
	srv := startServer(t, dir, nil)
	if status, body := cliClientCredentials(srv, "worker", secret); status != 200 || body["access_token"] == nil {
		t.Errorf("generated secret at the token endpoint: %d %v", status, body)
	}
	if status, body := cliClientCredentials(srv, "byo", own); status != 200 || body["access_token"] == nil {
		t.Errorf("--secret-stdin secret at the token endpoint: %d %v", status, body)
	}
	if status, body := cliClientCredentials(srv, "worker", own); status != 401 || body["error"] != "invalid_client" {
		t.Errorf("wrong secret at the token endpoint: %d %v", status, body)
	}
	web, err := srv.Main.Store.GetClient(context.Background(), "web")
	if err != nil {
		t.Fatal(err)
	}
	if web.Name != "Web App" || !slices.Equal(web.RedirectURIs, []string{"https://web.example.com/cb", "http://localhost:3000/cb"}) ||
		!slices.Equal(web.PostLogoutRedirectURIs, []string{"https://web.example.com/bye"}) ||
		!slices.Equal(web.GrantTypes, []string{"authorization_code", "refresh_token"}) || web.Public || web.Static {
		t.Errorf("stored web client: %+v", web)
	}
	spa, err := srv.Main.Store.GetClient(context.Background(), "spa")
	if err != nil || !spa.Public || spa.SecretHash != "" {
		t.Errorf("stored spa client: %+v %v", spa, err)
	}
}

func TestCLIClientListDeleteWithStaticClients(t *testing.T) {
	dir := t.TempDir()
	cfgFile := cliWriteFile(t, "keyport.toml", `
[[clients]]
id = "static-app"
name = "Static App"
secret = "static-secret-0123456789"
redirect_uris = ["https://static.example.com/cb"]

[[clients]]
id = "static-spa"
public = true
redirect_uris = ["http://localhost:5173/cb"]
`)
	env := cliEnv(dir)
	cliMust(t, env, "", "client", "create", "--config", cfgFile, "--id", "db-app", "--redirect-uri", "https://db.example.com/cb")

	r := cliMust(t, env, "", "client", "list", "--config", cfgFile)
	if !strings.Contains(r.Stdout, "SOURCE") {
		t.Errorf("client list header: %s", r)
	}
	for id, src := range map[string]string{"db-app": "database", "static-app": "config", "static-spa": "config"} {
		if row := cliClientRow(r.Stdout, id); row == nil || row[len(row)-1] != src {
			t.Errorf("client list row of %s: %v (want source %s)\n%s", id, row, src, r.Stdout)
		}
	}
	if !strings.Contains(r.Stdout, "Static App") {
		t.Errorf("client list does not show the static client's name:\n%s", r.Stdout)
	}
	// KEYPORT_CONFIG names the file too.
	envCfg := map[string]string{"KEYPORT_DATA_DIR": dir, "KEYPORT_CONFIG": cfgFile}
	if row := cliClientRow(cliMust(t, envCfg, "", "client", "list").Stdout, "static-app"); row == nil {
		t.Errorf("KEYPORT_CONFIG was not read")
	}
	// Static clients live in the file, not in the database.
	r = cliMust(t, env, "", "client", "list")
	if cliClientRow(r.Stdout, "static-app") != nil || cliClientRow(r.Stdout, "db-app") == nil {
		t.Errorf("client list without the config:\n%s", r.Stdout)
	}

	cliFail(t, env, "", 1, `Client "static-app" is defined in the configuration file`,
		"client", "create", "--config", cfgFile, "--id", "static-app", "--redirect-uri", "https://x.example.com/cb")
	cliFail(t, env, "", 1, `Client "static-app" is defined in the configuration file; remove it there.`,
		"client", "delete", "--config", cfgFile, "--id", "static-app")
	cliFail(t, env, "", 1, `No client "nope".`, "client", "delete", "--config", cfgFile, "--id", "nope")

	r = cliMust(t, env, "", "client", "delete", "--config", cfgFile, "--id", "db-app")
	if !strings.Contains(r.Stdout, "deleted client db-app") {
		t.Errorf("client delete output: %s", r)
	}
	cliFail(t, env, "", 1, `No client "db-app".`, "client", "delete", "--id", "db-app")
	r = cliMust(t, env, "", "client", "list", "--config", cfgFile)
	if cliClientRow(r.Stdout, "db-app") != nil || cliClientRow(r.Stdout, "static-app") == nil {
		t.Errorf("client list after delete:\n%s", r.Stdout)
	}
}

func TestStaticClientsFromConfigFile(t *testing.T) {
	dir := t.TempDir()
	secretFile := cliWriteFile(t, "file-secret", "file-secret-0123456789abc\n")
	cfgFile := cliWriteFile(t, "keyport.toml", `
[[clients]]
id = "static-inline"
name = "Inline Job"
secret = "inline-secret-0123456789"
grant_types = ["client_credentials"]

[[clients]]
id = "static-file"
secret_file = "`+secretFile+`"
grant_types = ["client_credentials"]

[[clients]]
id = "static-web"
name = "Static Web"
secret = "web-secret-0123456789abc"
redirect_uris = ["http://127.0.0.1:9/callback/static-web"]
post_logout_redirect_uris = ["http://127.0.0.1:9/bye/static-web"]
grant_types = ["authorization_code", "refresh_token"]

[[clients]]
id = "static-spa"
public = true
redirect_uris = ["http://127.0.0.1:9/callback/static-spa"]
`)
	// The CLI sees them with the same file.
	r := cliMust(t, cliEnv(dir), "", "client", "list", "--config", cfgFile)
	for _, id := range []string{"static-inline", "static-file", "static-web", "static-spa"} {
		if row := cliClientRow(r.Stdout, id); row == nil || row[len(row)-1] != "config" {
			t.Errorf("client list row of %s: %v", id, row)
		}
	}

	srv := startServerWith(t, serverOptions{dir: dir, configFile: cfgFile})

	if status, body := cliClientCredentials(srv, "static-inline", "inline-secret-0123456789"); status != 200 || body["access_token"] == nil {
		t.Errorf("static client with secret: %d %v", status, body)
	}
	if status, body := cliClientCredentials(srv, "static-file", "file-secret-0123456789abc"); status != 200 || body["access_token"] == nil {
		t.Errorf("static client with secret_file: %d %v", status, body)
	}
	if status, body := cliClientCredentials(srv, "static-file", "file-secret-0123456789abc\n"); status != 401 {
		t.Errorf("secret_file's trailing newline must not be part of the secret: %d %v", status, body)
	}
	if status, body := cliClientCredentials(srv, "static-inline", "file-secret-0123456789abc"); status != 401 || body["error"] != "invalid_client" {
		t.Errorf("static client with a wrong secret: %d %v", status, body)
	}
	if status, body := cliClientCredentials(srv, "static-web", "web-secret-0123456789abc"); status < 400 || status >= 500 {
		t.Errorf("client_credentials for a client without that grant: %d %v", status, body)
	}

	ctx := context.Background()
	spa, err := srv.Main.Store.GetClient(ctx, "static-spa")
	if err != nil || !spa.Public || !spa.Static || spa.Name != "static-spa" || spa.SecretHash != "" {
		t.Errorf("static-spa: %+v %v", spa, err)
	}
	web, err := srv.Main.Store.GetClient(ctx, "static-web")
	if err != nil || !web.Static || web.Name != "Static Web" || !slices.Equal(web.PostLogoutRedirectURIs, []string{"http://127.0.0.1:9/bye/static-web"}) {
		t.Errorf("static-web: %+v %v", web, err)
	}

	// A whole code flow with the static web client.
	srv.createUser("erin", false)
	app := srv.rp("static-web", "web-secret-0123456789abc", "http://127.0.0.1:9/callback/static-web")
	code, verifier := app.signIn(newBrowser(t), "erin")
	tok, err := app.exchange(code, verifier)
	if err != nil {
		t.Fatalf("code exchange for a static client: %v", err)
	}
	idt, _ := tok.Extra("id_token").(string)
	if _, err := app.verifier.Verify(ctx, idt); err != nil {
		t.Errorf("ID token for a static client: %v", err)
	}

	// Static clients cannot be deleted through the running store either.
	if err := srv.Main.Accounts.Clients.DeleteClient(ctx, account.SystemActor, "static-web"); account.ErrorCode(err) != account.Conflict {
		t.Errorf("delete static client: %v", err)
	}
}

func TestLockedDatabaseCLI(t *testing.T) {
	srv := startServer(t, "", nil)
	env := cliEnv(srv.dir)
	// Commands that go through the management API reach the running
	// server through its control socket instead.
	before := srv.Main.Keys.SigningKeyID()
	r := cliMust(t, env, "", "keys", "rotate")
	if now := srv.Main.Keys.SigningKeyID(); now == before || !strings.Contains(r.Stdout, "new signing key "+now+";") {
		t.Errorf("keys rotate through the socket: the server signs with %s (was %s); output %s", now, before, r)
	}
	cliFail(t, env, "", 1, `There is no directory "nope"`, "directory", "sync", "--id", "nope")
	if r := cliMust(t, env, "", "directory", "list"); strings.Contains(r.Stderr, "not listed") {
		t.Errorf("directory list through the socket: %s", r)
	}
	if r := cliMust(t, env, "", "user", "list"); !strings.HasPrefix(r.Stdout, "ID ") || strings.Count(r.Stdout, "\n") != 1 {
		t.Errorf("user list through the socket: %s", r)
	}
	r = cliMust(t, env, "some-password-1\n", "user", "create", "--username", "x", "--email", "x@example.com", "--password-stdin")
	if u, err := srv.Main.Store.GetUserByLogin(context.Background(), "x"); err != nil || !strings.Contains(r.Stdout, "created user x (id "+u.ID+")") {
		t.Errorf("user create through the socket: %v %s", err, r)
	}
	// So do the client commands: the running server stores the app and
	// takes its secrets at once.
	r = cliMust(t, env, "", "client", "create", "--id", "x", "--grant", "client_credentials")
	secret := cliSecret(t, r.Stdout, "client secret (shown once, store it now): ")
	if status, _, body := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "x", secret); status != http.StatusOK {
		t.Errorf("the secret of a client created through the socket: %d %v", status, body)
	}
	r = cliMust(t, env, "", "client", "update", "--id", "x", "--name", "Nightly job", "--skip-consent=true", "--allowed-scopes", "keyport:admin", "--access-token-lifetime", "10m")
	if c, err := srv.Main.Store.GetClient(context.Background(), "x"); err != nil || c.Name != "Nightly job" || !c.SkipConsent || c.AccessTokenLifetime != 10*time.Minute || len(c.AllowedScopes) != 1 || !strings.Contains(r.Stdout, "updated client x") {
		t.Errorf("client update through the socket: %+v %v %s", c, err, r)
	}
	cliFail(t, env, "", 1, "redirect_uris", "client", "update", "--id", "x", "--grant", "authorization_code", "--redirect-uri", "http://app.example.com/cb")
	r = cliMust(t, env, "", "client", "rotate-secret", "--id", "x", "--grace", "1h")
	fresh := cliSecret(t, r.Stdout, "new client secret for x (shown once, store it now): ")
	for _, s := range []string{secret, fresh} {
		if status, _, body := srv.postForm("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "x", s); status != http.StatusOK || !strings.Contains(r.Stdout, "the previous secret keeps working until ") {
			t.Errorf("a secret within the grace after rotate-secret through the socket: %d %v %s", status, body, r)
		}
	}
	if row := cliClientRow(cliMust(t, env, "", "client", "list").Stdout, "x"); row == nil || row[1] != "Nightly" {
		t.Errorf("client list through the socket: %v", row)
	}
	// A second serve on the same data dir gives up too, with the same words.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errb := &testlog.Buffer{}
	serveEnv := map[string]string{"KEYPORT_DATA_DIR": srv.dir, "KEYPORT_LISTEN": "127.0.0.1:0"}
	code := run(ctx, []string{"serve"}, strings.NewReader(""), io.Discard, errb, func(k string) string { return serveEnv[k] })
	if ctx.Err() != nil || code != 1 || !strings.Contains(errb.String(), "is in use by another process") || strings.Contains(errb.String(), "keyport is running") {
		t.Errorf("second serve: exit %d, ctx %v\n%s", code, ctx.Err(), errb.String())
	}
	// The server is unharmed.
	if resp, err := http.Get(srv.URL + "/healthz"); err != nil || resp.StatusCode != 200 {
		t.Errorf("healthz after the CLI attempts: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if n, err := srv.Main.Store.CountUsers(context.Background()); err != nil || n != 1 {
		t.Errorf("users = %d, %v", n, err)
	}
	// Once it stops, the CLI gets the database, and the client commands
	// serve the API themselves.
	srv.stop()
	cliMust(t, env, "", "user", "list")
	cliMust(t, env, "", "client", "update", "--id", "x", "--skip-consent=false", "--allowed-groups", "ops,staff")
	r = cliMust(t, env, "", "client", "rotate-secret", "--id", "x")
	newest := cliSecret(t, r.Stdout, "new client secret for x (shown once, store it now): ")
	m := cliOpen(t, srv.dir)
	c, err := m.Store.GetClient(context.Background(), "x")
	m.Close()
	if err != nil || c.SkipConsent || len(c.AllowedGroups) != 2 || c.SecretHash != account.HashSecret(newest) || c.PreviousSecretHash != "" || !strings.Contains(r.Stdout, "the previous secret stopped working") {
		t.Errorf("client update and rotate-secret with the server stopped: %+v %v %s", c, err, r)
	}
	cliFail(t, env, "", 1, `No client "nope".`, "client", "rotate-secret", "--id", "nope")
	cliFail(t, env, "", 2, "client update: say what to change", "client", "update", "--id", "x")
	cliMust(t, env, "", "client", "delete", "--id", "x")
}

// cliSecret finds the secret a command printed after prefix.
func cliSecret(t *testing.T, out, prefix string) string {
	t.Helper()
	_, rest, ok := strings.Cut(out, prefix)
	secret, _, _ := strings.Cut(rest, "\n")
	if !ok || len(secret) < 16 {
		t.Fatalf("no secret after %q in:\n%s", prefix, out)
	}
	return secret
}

func TestConfigErrorsStopCLIAndServe(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string
	}{
		{"unknown keys", "issuer = \"https://id.example.com\"\nlistn = \":8080\"\n[tokens]\nacess = \"5m\"\n",
			[]string{`unknown key "listn"`, `unknown key "tokens.acess"`}},
		{"bad issuer and negative durations", "issuer = \"http://example.com\"\n[tokens]\naccess = \"-5m\"\n[session]\nlifetime = \"-1h\"\n",
			[]string{`issuer: must be an absolute https:// URL`, `"http://example.com"`, "tokens.access: must be positive, not -5m0s", "session.lifetime: must be positive"}},
		{"unquoted duration", "[tokens]\naccess = 5\n", []string{"tokens.access", "quoted"}},
		{"wrong type", "listen = 8080\n", []string{"listen"}},
		{"bad client", "[[clients]]\nid = \"c\"\nsecret = \"x\"\nsecret_file = \"/nonexistent\"\ngrant_types = [\"implicit\"]\n",
			[]string{"clients[0].secret_file: set either secret or secret_file, not both", `clients[0].grant_types[0]: unknown grant type "implicit"`}},
		{"short client secret", "[[clients]]\nid = \"c\"\nsecret = \"short\"\ngrant_types = [\"client_credentials\"]\n",
			[]string{"clients[0].secret: must be at least 16 characters"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			file := cliWriteFile(t, "bad.toml", c.file)
			env := map[string]string{"KEYPORT_DATA_DIR": dir, "KEYPORT_LISTEN": "127.0.0.1:0"}
			for _, args := range [][]string{{"user", "list", "--config", file}, {"client", "list", "--config", file}} {
				r := cliRun(t, env, "", args...)
				if r.Code != 1 || !strings.Contains(r.Stderr, "configuration is invalid") {
					t.Errorf("keyport %s: %s", strings.Join(args, " "), r)
				}
				for _, w := range c.want {
					if !strings.Contains(r.Stderr, w) {
						t.Errorf("keyport %s: stderr does not say %q:\n%s", strings.Join(args, " "), w, r.Stderr)
					}
				}
			}
			// KEYPORT_CONFIG is checked just the same.
			envCfg := map[string]string{"KEYPORT_DATA_DIR": dir, "KEYPORT_CONFIG": file}
			if r := cliRun(t, envCfg, "", "user", "list"); r.Code != 1 || !strings.Contains(r.Stderr, c.want[0]) {
				t.Errorf("KEYPORT_CONFIG: %s", r)
			}

			// serve refuses to start: it returns by itself with exit 1.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out bytes.Buffer
			errb := &testlog.Buffer{}
			code := run(ctx, []string{"serve", "--config", file}, strings.NewReader(""), &out, errb, func(k string) string { return env[k] })
			if ctx.Err() != nil || code != 1 || !strings.Contains(errb.String(), c.want[0]) {
				t.Errorf("serve with a bad config: exit %d, ctx %v\n%s", code, ctx.Err(), errb.String())
			}
			if strings.Contains(errb.String(), "keyport is running") {
				t.Errorf("serve started with a bad config")
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("a bad config still wrote to the data dir: %v", entries)
			}
		})
	}

	// A client with a javascript: redirect URI stops start-up before
	// anything is written.
	t.Run("static client with a forbidden redirect scheme", func(t *testing.T) {
		dir := t.TempDir()
		file := cliWriteFile(t, "bad.toml", "[[clients]]\nid = \"c\"\npublic = true\nredirect_uris = [\"javascript:alert(1)\"]\n")
		env := map[string]string{"KEYPORT_DATA_DIR": dir, "KEYPORT_LISTEN": "127.0.0.1:0"}
		cliFail(t, env, "", 1, `clients[0].redirect_uris[0]: the javascript: scheme is not allowed`, "client", "list", "--config", file)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		errb := &testlog.Buffer{}
		code := run(ctx, []string{"serve", "--config", file}, strings.NewReader(""), io.Discard, errb, func(k string) string { return env[k] })
		if ctx.Err() != nil || code != 1 || !strings.Contains(errb.String(), "clients[0]") {
			t.Errorf("serve: exit %d, ctx %v\n%s", code, ctx.Err(), errb.String())
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a refused static client still wrote to the data dir: %v", entries)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		env := cliEnv(t.TempDir())
		cliFail(t, env, "", 1, "config file /nonexistent/keyport.toml does not exist", "user", "list", "--config", "/nonexistent/keyport.toml")
		cliFail(t, env, "", 1, "does not exist", "serve", "--config", "/nonexistent/keyport.toml")
	})

	// Warnings are about serving: serve logs them and goes on, other
	// commands do not repeat them.
	t.Run("warnings do not stop", func(t *testing.T) {
		file := cliWriteFile(t, "warn.toml", "[tokens]\ncode = \"15m\"\n")
		r := cliMust(t, cliEnv(t.TempDir()), "", "user", "list", "--config", file)
		if strings.Contains(r.Stderr, "tokens.code") || strings.Contains(r.Stderr, "http://") {
			t.Errorf("user list repeats serve's warnings: %s", r)
		}
	})
}

// TestCLIServeFirstAndLaterStarts runs `keyport serve` itself: the first
// start generates the secret key and logs a setup link; `user create
// --admin` makes the link unnecessary; a later start reuses everything.
func TestCLIServeFirstAndLaterStarts(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data") // does not exist yet
	ln := listenLoopback(t)
	addr := ln.Addr().String()
	ln.Close()
	env := map[string]string{"KEYPORT_DATA_DIR": dir, "KEYPORT_LISTEN": addr, "KEYPORT_ISSUER": "http://" + addr}

	serve := func() (logs *testlog.Buffer, stop func() int) {
		t.Helper()
		logs = &testlog.Buffer{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		go func() {
			done <- run(ctx, []string{"serve"}, strings.NewReader(""), io.Discard, logs, func(k string) string { return env[k] })
		}()
		stopped := false
		stop = func() int {
			if stopped {
				return 0
			}
			stopped = true
			cancel()
			return <-done
		}
		t.Cleanup(func() { stop() })
		deadline := time.Now().Add(20 * time.Second)
		for !strings.Contains(logs.String(), "keyport is running") {
			select {
			case code := <-done:
				stopped = true
				t.Fatalf("serve exited with %d:\n%s", code, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("serve did not start:\n%s", logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return logs, stop
	}

	logs, stop := serve()
	out := logs.String()
	for _, want := range []string{"generated the secret key", "generated the first signing key", "created database", "configuration: issuer: uses http://"} {
		if !strings.Contains(out, want) {
			t.Errorf("first start does not log %q:\n%s", want, out)
		}
	}
	setup := setupURLPattern.FindStringSubmatch(out)
	if setup == nil || !strings.Contains(out, "within 1 hour") || !strings.Contains(out, "keyport user create --admin") {
		t.Fatalf("first start logs no setup link:\n%s", out)
	}
	key, err := os.ReadFile(filepath.Join(dir, "secret.key"))
	if err != nil {
		t.Fatalf("secret key: %v", err)
	}
	if fi, err := os.Stat(filepath.Join(dir, "keyport.db")); err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Errorf("database file: %v %v", fi, err)
	}
	resp, err := http.Get(setup[1])
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("setup link: %v %v", resp, err)
	}
	resp.Body.Close()
	if code := stop(); code != 0 {
		t.Fatalf("serve exit code after shutdown: %d\n%s", code, logs.String())
	}

	// An empty database gets a fresh link on the next start, but nothing is
	// generated again.
	logs, stop = serve()
	out = logs.String()
	if strings.Contains(out, "generated") || !strings.Contains(out, "/setup?token=") {
		t.Errorf("second start on an empty database:\n%s", out)
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exit code: %d", code)
	}

	// The shell way to the first administrator.
	cliMust(t, env, testPassword+"\n", "user", "create", "--username", "root", "--email", "root@example.com", "--admin", "--password-stdin")
	logs, stop = serve()
	out = logs.String()
	if strings.Contains(out, "setup?token=") || strings.Contains(out, "no users yet") || strings.Contains(out, "generated") {
		t.Errorf("a start with users logs a setup link or regenerates:\n%s", out)
	}
	if resp, err := http.Get(setup[1]); err != nil || resp.StatusCode != 404 {
		t.Errorf("old setup link after user create --admin: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if code := stop(); code != 0 {
		t.Fatalf("serve exit code: %d", code)
	}
	if key2, err := os.ReadFile(filepath.Join(dir, "secret.key")); err != nil || !bytes.Equal(key, key2) {
		t.Errorf("secret key changed between starts: %v", err)
	}
}

var setupURLPattern = regexp.MustCompile(`url="?(http://[^\s"]+/setup\?token=[^\s"]+)`)

// setupLink is the setup link a first start logged.
func setupLink(t *testing.T, logs *testlog.Buffer) string {
	t.Helper()
	m := setupURLPattern.FindStringSubmatch(logs.String())
	if m == nil {
		t.Fatalf("no setup link logged:\n%s", logs.String())
	}
	return m[1]
}

func TestSetupLink(t *testing.T) {
	dir := t.TempDir()
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{dir: dir, logs: logs})

	link := setupLink(t, logs)
	if !strings.HasPrefix(link, srv.URL+"/setup?token=") {
		t.Fatalf("setup link %q is not on the issuer %s", link, srv.URL)
	}
	u, _ := url.Parse(link)
	token := u.Query().Get("token")

	b := newBrowser(t)
	form := b.get(link)
	if form.Status != 200 || !hasForm(form.Body, "/setup") || !strings.Contains(form.Body, "Create the first administrator") {
		t.Fatalf("setup form: %d\n%s", form.Status, truncateBody(form.Body))
	}
	if !strings.Contains(form.Body, "At least 10 characters") {
		t.Errorf("setup form does not state the password policy")
	}
	fields := func(pw, confirm string) url.Values {
		return url.Values{"username": {"root"}, "email": {"root@example.com"}, "name": {"Root Person"}, "password": {pw}, "password_confirm": {confirm}}
	}

	p := b.submit(form, "/setup", fields("long-enough-pass-1", "long-enough-pass-2"))
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "The two passwords do not match.") || !strings.Contains(p.Body, `value="root@example.com"`) {
		t.Errorf("mismatched passwords: %d\n%s", p.Status, truncateBody(p.Body))
	}
	p = b.submit(p, "/setup", fields("short", "short"))
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "Password must be at least 10 characters long.") {
		t.Errorf("short password: %d\n%s", p.Status, truncateBody(p.Body))
	}
	bad := fields(testPassword, testPassword)
	bad.Set("email", "not-an-email")
	p = b.submit(p, "/setup", bad)
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "not a valid email address") {
		t.Errorf("bad email: %d\n%s", p.Status, truncateBody(p.Body))
	}
	// A wrong token in the form neither works nor spends the real one.
	wrong := fields(testPassword, testPassword)
	wrong.Set("token", "not-the-token")
	if p := b.submit(p, "/setup", wrong); p.Status != http.StatusNotFound {
		t.Errorf("POST with a wrong token: %d\n%s", p.Status, truncateBody(p.Body))
	}
	// A form without the CSRF token is refused.
	noCSRF := fields(testPassword, testPassword)
	noCSRF.Set("token", token)
	if p := b.post(srv.URL+"/setup", noCSRF); p.Status != http.StatusForbidden {
		t.Errorf("POST without CSRF token: %d", p.Status)
	}
	ctx := context.Background()
	if users, err := srv.Main.Accounts.Users.ListUsers(ctx); err != nil || len(users) != 0 {
		t.Fatalf("users after refused posts: %v %v", users, err)
	}

	// Wrong or missing tokens: 404 page.
	for _, bad := range []string{srv.URL + "/setup?token=wrong", srv.URL + "/setup", srv.URL + "/setup?token=" + token + "x"} {
		if p := newBrowser(t).get(bad); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "invalid, expired or already used") {
			t.Errorf("GET %s: %d\n%s", bad, p.Status, truncateBody(p.Body))
		}
	}

	// The link still works after all that.
	form = b.get(link)
	if form.Status != 200 || !hasForm(form.Body, "/setup") {
		t.Fatalf("setup link after failed attempts: %d\n%s", form.Status, truncateBody(form.Body))
	}
	home := b.submit(form, "/setup", fields(testPassword, testPassword))
	if home.Status != 200 || home.URL.Path != "/" || !strings.Contains(home.Body, "Signed in as") ||
		!strings.Contains(home.Body, "<dd>root</dd>") || !strings.Contains(home.Body, "Root Person") {
		t.Fatalf("after setup: %d %s\n%s", home.Status, home.URL, truncateBody(home.Body))
	}
	users, err := srv.Main.Accounts.Users.ListUsers(ctx)
	if err != nil || len(users) != 1 || users[0].Username != "root" || !users[0].Admin || users[0].Email != "root@example.com" || users[0].Name != "Root Person" {
		t.Fatalf("users after setup: %+v %v", users, err)
	}
	if _, err := srv.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "root", Password: testPassword}); err != nil {
		t.Errorf("the new admin cannot sign in: %v", err)
	}
	if p := b.get(srv.URL + "/"); !strings.Contains(p.Body, "<dd>root</dd>") {
		t.Errorf("GET / does not show the signed-in admin:\n%s", truncateBody(p.Body))
	}

	// The link is dead now, for this browser and any other, by GET or POST.
	if p := b.get(link); p.Status != http.StatusNotFound || !strings.Contains(p.Body, "invalid, expired or already used") {
		t.Errorf("used setup link: %d\n%s", p.Status, truncateBody(p.Body))
	}
	if p := newBrowser(t).get(link); p.Status != http.StatusNotFound {
		t.Errorf("used setup link, other browser: %d", p.Status)
	}
	replay := fields(testPassword, testPassword)
	replay.Set("username", "root2")
	replay.Set("email", "root2@example.com")
	replay.Set("token", token)
	replay.Set("csrf_token", formFields(home.Body).Get("csrf_token"))
	if p := b.post(srv.URL+"/setup", replay); p.Status != http.StatusNotFound {
		t.Errorf("replayed setup POST: %d\n%s", p.Status, truncateBody(p.Body))
	}
	if users, _ := srv.Main.Accounts.Users.ListUsers(ctx); len(users) != 1 {
		t.Errorf("users after replay: %+v", users)
	}

	// A restart of a server that has users logs no setup link.
	srv.stop()
	logs2 := &testlog.Buffer{}
	srv2 := startServerWith(t, serverOptions{dir: dir, logs: logs2})
	if out := logs2.String(); strings.Contains(out, "setup?token=") || strings.Contains(out, "no users yet") || !strings.Contains(out, "keyport is running") {
		t.Errorf("restart with users:\n%s", out)
	}
	if p := newBrowser(t).get(srv2.URL + "/setup?token=" + token); p.Status != http.StatusNotFound {
		t.Errorf("old link after restart: %d", p.Status)
	}
}

// TestSetupLinkExpires checks the one-hour validity with a moved clock.
func TestSetupLinkExpires(t *testing.T) {
	clock := testclock.Running()
	logs := &testlog.Buffer{}
	srv := startServerWith(t, serverOptions{logs: logs, now: clock.Now})
	link := setupLink(t, logs)
	b := newBrowser(t)
	clock.Add(59 * time.Minute)
	form := b.get(link)
	if form.Status != 200 {
		t.Fatalf("setup link after 59 minutes: %d", form.Status)
	}
	clock.Add(2 * time.Minute) // 61 minutes
	if p := b.get(link); p.Status != http.StatusNotFound {
		t.Errorf("setup link after 61 minutes: %d", p.Status)
	}
	p := b.submit(form, "/setup", url.Values{"username": {"late"}, "email": {"late@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}})
	if p.Status != http.StatusNotFound {
		t.Errorf("setup POST after 61 minutes: %d\n%s", p.Status, truncateBody(p.Body))
	}
	if n, _ := srv.Main.Store.CountUsers(context.Background()); n != 0 {
		t.Errorf("an expired link created a user")
	}
}

func TestCLIKeysRotate(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	kidRE := regexp.MustCompile(`new signing key (\S+);`)
	var kids []string
	for i := 0; i < 2; i++ {
		r := cliMust(t, env, "", "keys", "rotate")
		m := kidRE.FindStringSubmatch(r.Stdout)
		if m == nil {
			t.Fatalf("keys rotate output: %s", r)
		}
		kids = append(kids, m[1])
	}
	if kids[0] == kids[1] {
		t.Fatalf("two rotations gave the same key %s", kids[0])
	}
	srv := startServer(t, dir, nil)
	if got := srv.Main.Keys.SigningKeyID(); got != kids[1] {
		t.Errorf("server signs with %s, want the last rotated key %s", got, kids[1])
	}
	req, _ := http.NewRequest(http.MethodGet, srv.URL+"/keys", nil)
	status, _, body := doJSON(t, nil, req)
	keys, _ := body["keys"].([]any)
	var published []string
	for _, k := range keys {
		if m, ok := k.(map[string]any); ok {
			kid, _ := m["kid"].(string)
			published = append(published, kid)
		}
	}
	if status != 200 || !slices.Contains(published, kids[0]) || !slices.Contains(published, kids[1]) {
		t.Errorf("JWKS %d %v does not publish both rotated keys %v", status, published, kids)
	}
}

func TestServeGCTarget(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	tuneGC(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != serverGCPercent {
		t.Errorf("without GOGC the GC target is %d, want %d", got, serverGCPercent)
	}
	tuneGC(func(k string) string { return map[string]string{"GOGC": "50"}[k] })
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("with GOGC set, tuneGC changed the target to %d", got)
	}
}

func TestEvery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := make(chan struct{}, 10)
	done := make(chan struct{})
	go func() {
		every(ctx, time.Millisecond, true, func() { calls <- struct{}{} })
		close(done)
	}()
	for range 3 { // the first at once, then on the ticker
		<-calls
	}
	cancel()
	<-done // returns once ctx ends

	// Without now, nothing runs before the first tick.
	ctx2, cancel2 := context.WithCancel(context.Background())
	cancel2()
	ran := false
	every(ctx2, time.Hour, false, func() { ran = true })
	if ran {
		t.Error("every ran fn before the first tick without now")
	}
}

// --email-verified vouches for the address: the email_verified claim says
// true. Without it the claim says false.
func TestCLIUserCreateEmailVerified(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	cliMust(t, env, testPassword+"\n", "user", "create", "--username", "vera", "--email", "vera@example.com", "--email-verified", "--password-stdin")
	cliMust(t, env, testPassword+"\n", "user", "create", "--username", "nico", "--email", "nico@example.com", "--password-stdin")

	srv := startServer(t, dir, nil)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true})
	app.oauth.Scopes = []string{"openid", "email"}
	for login, want := range map[string]bool{"vera": true, "nico": false} {
		tok := app.tokens(login)
		if status, _, claims := srv.userinfo(tok.AccessToken); status != 200 || claims["email_verified"] != want {
			t.Errorf("%s: userinfo %d %v, want email_verified %v", login, status, claims, want)
		}
	}
}
