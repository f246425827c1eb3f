package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/seal"
)

// With PostgreSQL, `keyport backup` copies the live database (the CLI
// reaches PostgreSQL itself while replicas run) and `keyport restore` loads
// the copy into an empty database, refusing one that holds records; a
// server on the restored database signs the user in.
func TestPostgresBackupAndRestore(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "secret.key")
	if _, _, err := seal.LoadOrCreateKey(key, true); err != nil {
		t.Fatal(err)
	}
	cfgFile := filepath.Join(dir, "keyport.toml")
	if err := os.WriteFile(cfgFile, []byte("[storage]\ntype = \"postgres\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	from, into := pgtest.Database(t), pgtest.Database(t)
	pg := func(dsn string) func(*config.Config) {
		return func(c *config.Config) {
			c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, dsn, key
		}
	}
	srv := startServerWith(t, serverOptions{mutate: pg(from)})
	srv.createUser("alice", false)
	env := func(dsn string) map[string]string {
		return map[string]string{"KEYPORT_DATA_DIR": t.TempDir(), "KEYPORT_CONFIG": cfgFile, "KEYPORT_STORAGE_DSN": dsn, "KEYPORT_SECRET_KEY_FILE": key}
	}
	copyFile := filepath.Join(t.TempDir(), "keyport.pgcopy")
	if r := cliMust(t, env(from), "", "backup", "--to", copyFile); !strings.Contains(r.Stdout, "one consistent snapshot") {
		t.Errorf("backup: %s", r)
	}
	cliFail(t, env(from), "", 1, "exists", "backup", "--to", copyFile)
	// The source holds records: a restore into it changes nothing.
	cliFail(t, env(from), "", 1, "the database was not changed", "restore", "--from", copyFile)
	cliMust(t, env(into), "", "restore", "--from", copyFile)

	restored := startServerWith(t, serverOptions{mutate: pg(into)})
	c := restored.createClient(account.NewClient{ID: "app", SkipConsent: true})
	if tok := c.tokens("alice"); tok.AccessToken == "" {
		t.Fatal("no access token after the restore")
	}
}
