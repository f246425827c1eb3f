package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/storage/postgres"
)

// TestMigrateBoltToPostgresAndBack: a real server on bbolt signs alice in
// (a go-oidc client; one refresh rotation), keyport migrate refuses while
// it runs, copies to a real PostgreSQL once it stopped and prints each
// kind's counts, which match the file's, and refuses a second run. On the
// copy, alice signs in through the account package (serve does not run on
// PostgreSQL yet). Then the copy goes back to bbolt in a new data dir,
// where a server signs alice in again, honours the live refresh token
// issued before both migrations, and revokes the family when the rotated
// one comes back.
func TestMigrateBoltToPostgresAndBack(t *testing.T) {
	ctx := context.Background()
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, GrantTypes: []string{"authorization_code", "refresh_token"}})
	first := signInOffline(app, "alice").RefreshToken
	live, err := refreshWith(srv.URL, app.ID, app.Secret, first)
	if err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.Database(t)
	env := cliEnv(srv.dir)
	toPostgres := []string{"migrate", "--from", "bolt", "--to", "postgres", "--dsn", dsn}
	cliFail(t, env, "", 1, "is in use by another process", toPostgres...)
	srv.stop()

	src, err := bolt.Open(filepath.Join(srv.dir, "keyport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want, err := storage.Summarize(ctx, src)
	src.Close()
	if err != nil {
		t.Fatal(err)
	}
	r := cliMust(t, env, "", toPostgres...)
	t.Logf("keyport migrate --from bolt --to postgres:\n%s", r.Stdout)
	checkMigrationTable(t, r.Stdout, want)
	for _, kind := range []string{storage.DumpUser, storage.DumpRefreshFamily, storage.DumpRefreshToken, storage.DumpSession, storage.DumpSigningKey, storage.DumpAuditEvent} {
		if countOf(want, kind) == 0 {
			t.Errorf("the server wrote no %s record: the test copies less than it should", kind)
		}
	}
	if countOf(want, storage.DumpRefreshToken) < 2 {
		t.Errorf("the rotated link is not in the file: %v", want)
	}
	if !strings.Contains(r.Stdout, "Not copied: sign-ins in progress") || strings.Contains(r.Stdout, dsn) {
		t.Errorf("migrate said: %s", r)
	}
	cliFail(t, env, "", 1, "already holds records, and keyport migrate copies into an empty store only; nothing was changed", toPostgres...)
	cliFail(t, env, "", 2, "--from and --to are both bolt", "migrate", "--from", "bolt", "--to", "bolt", "--dsn", dsn)

	// A server on the copy (storage.type postgres, the copied sealing key)
	// signs alice in with the real client; a wrong password fails.
	onPG := startServerWith(t, serverOptions{mutate: func(c *config.Config) {
		c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, dsn, filepath.Join(srv.dir, "secret.key")
	}})
	if tok := signInOffline(onPG.rp(app.ID, app.Secret, app.RedirectURI), "alice"); tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatal("no tokens from the server on the PostgreSQL copy")
	}
	if u, err := onPG.Main.Accounts.SignIn.Authenticate(ctx, account.Credentials{Login: "alice", Password: "wrong " + testPassword, IP: "192.0.2.1"}); err == nil {
		t.Fatalf("a wrong password signed %s in on the copy", u.Username)
	}
	onPG.stop()

	// And back, into a new data dir with the sealing key.
	back := t.TempDir()
	copyFile(t, filepath.Join(srv.dir, "secret.key"), filepath.Join(back, "secret.key"))
	want, err = storage.Summarize(ctx, mustOpenPostgres(t, dsn))
	if err != nil {
		t.Fatal(err)
	}
	r = cliMust(t, cliEnv(back), "", "migrate", "--from", "postgres", "--to", "bolt", "--dsn", dsn)
	checkMigrationTable(t, r.Stdout, want)
	restored := startServer(t, back, nil)
	rp := restored.rp(app.ID, app.Secret, app.RedirectURI)
	if tok := signInOffline(rp, "alice"); tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatal("no tokens from the server on the copy of the copy")
	}
	next, err := refreshWith(restored.URL, app.ID, app.Secret, live)
	if err != nil {
		t.Fatalf("the live refresh token from before both migrations: %v", err)
	}
	if _, err := refreshWith(restored.URL, app.ID, app.Secret, first); err == nil {
		t.Fatal("the rotated refresh token was accepted again")
	}
	if _, err := refreshWith(restored.URL, app.ID, app.Secret, next); err == nil {
		t.Fatal("the family outlived the reuse of its rotated link")
	}
}

func mustOpenPostgres(t *testing.T, dsn string) *postgres.DB {
	t.Helper()
	d, err := postgres.Open(context.Background(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func countOf(sums []storage.KindSummary, kind string) int {
	for _, k := range sums {
		if k.Kind == kind {
			return k.Count
		}
	}
	return -1
}

// checkMigrationTable checks that migrate's table lists every kind with
// the source's count on both sides and agreeing checksums.
func checkMigrationTable(t *testing.T, out string, want []storage.KindSummary) {
	t.Helper()
	rows := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) == 4 {
			rows[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for _, k := range want {
		if got, w := rows[k.Kind], fmt.Sprintf("%d %d ok", k.Count, k.Count); got != w {
			t.Errorf("migrate's row of %s: %q, want %q\n%s", k.Kind, got, w, out)
		}
	}
}
