package main

import (
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/pgtest"
	"github.com/keyport/keyport/seal"
)

// pgCLI is a sealing key and a configuration file for a PostgreSQL store,
// with what servers and commands on a given database need.
type pgCLI struct {
	t       *testing.T
	key     string
	cfgFile string
}

func newPGCLI(t *testing.T) pgCLI {
	dir := t.TempDir()
	p := pgCLI{t: t, key: filepath.Join(dir, "secret.key"), cfgFile: filepath.Join(dir, "keyport.toml")}
	if _, _, err := seal.LoadOrCreateKey(p.key, true); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.cfgFile, []byte("[storage]\ntype = \"postgres\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// server is the configuration change of a server on dsn.
func (p pgCLI) server(dsn string) func(*config.Config) {
	return func(c *config.Config) {
		c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, dsn, p.key
	}
}

// env is the environment of a command on dsn with the sealing key key.
func (p pgCLI) env(dsn, key string) map[string]string {
	return map[string]string{"KEYPORT_DATA_DIR": p.t.TempDir(), "KEYPORT_CONFIG": p.cfgFile, "KEYPORT_STORAGE_DSN": dsn, "KEYPORT_SECRET_KEY_FILE": key}
}

// With PostgreSQL, `keyport backup` copies the live database (the CLI
// reaches PostgreSQL itself while replicas run) and `keyport restore` loads
// the copy into an empty database, refusing one that holds records; a
// server on the restored database signs the user in.
func TestPostgresBackupAndRestore(t *testing.T) {
	p := newPGCLI(t)
	from, into := pgtest.Database(t), pgtest.Database(t)
	pg := p.server
	srv := startServerWith(t, serverOptions{mutate: pg(from)})
	srv.createUser("alice", false)
	env := func(dsn string) map[string]string { return p.env(dsn, p.key) }
	copyFile := filepath.Join(t.TempDir(), "keyport.pgcopy")
	if r := cliMust(t, env(from), "", "backup", "--to", copyFile); !strings.Contains(r.Stdout, "one consistent snapshot") {
		t.Errorf("backup: %s", r)
	}
	cliFail(t, env(from), "", 1, "exists", "backup", "--to", copyFile)
	cliFail(t, env(from), "", 2, "checked as it is restored", "backup", "--check", copyFile)
	// The source holds records: a restore into it changes nothing.
	cliFail(t, env(from), "", 1, "the database was not changed", "restore", "--from", copyFile)
	cliMust(t, env(into), "", "restore", "--from", copyFile)

	restored := startServerWith(t, serverOptions{mutate: pg(into)})
	c := restored.createClient(account.NewClient{ID: "app", SkipConsent: true})
	if tok := c.tokens("alice"); tok.AccessToken == "" {
		t.Fatal("no access token after the restore")
	}
}

// A PostgreSQL store copied with pg_dump and pg_restore (the tools of
// whole-cluster backups, outside keyport) is checked by keyport check
// before replicas use it: the restored copy passes, with its counts and
// the sealing key proven; a wrong key, a unique index the restore lost
// and a database holding no keyport schema are each refused, naming what
// is wrong; and a server on the restored copy signs the user in.
func TestPostgresDumpRestoreAndCheck(t *testing.T) {
	pgBin, err := pgtest.BinDir()
	if err != nil {
		t.Fatal(err)
	}
	p := newPGCLI(t)
	key, other := p.key, filepath.Join(t.TempDir(), "other.key")
	if _, _, err := seal.LoadOrCreateKey(other, true); err != nil {
		t.Fatal(err)
	}
	from, into := pgtest.Database(t), pgtest.Database(t)
	pg := p.server
	srv := startServerWith(t, serverOptions{mutate: pg(from)})
	srv.createUser("alice", false)
	srv.stop()
	dump := filepath.Join(t.TempDir(), "keyport.dump")
	for _, cmd := range [][]string{
		{filepath.Join(pgBin, "pg_dump"), "--format=custom", "--file=" + dump, "--dbname=" + from},
		{filepath.Join(pgBin, "pg_restore"), "--exit-on-error", "--dbname=" + into, dump},
	} {
		if out, err := exec.Command(cmd[0], cmd[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", filepath.Base(cmd[0]), err, out)
		}
	}
	env := p.env
	r := cliMust(t, env(into, key), "", "check")
	for _, want := range []string{"a consistent keyport store: schema 3, users: 1, apps: 0, signing keys: 1,", "indexes and constraints are the ones this keyport builds", "its secrets open with the sealing key " + key} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("check of the restored copy: no %q in\n%s", want, r)
		}
	}
	cliFail(t, env(into, other), "", 1, "is not the key the secrets in the PostgreSQL database were sealed with", "check")
	cliFail(t, env(pgtest.Database(t), key), "", 1, "holds no keyport schema", "check")

	restored := startServerWith(t, serverOptions{mutate: pg(into)})
	c := restored.createClient(account.NewClient{ID: "app", SkipConsent: true})
	if tok := c.tokens("alice"); tok.AccessToken == "" {
		t.Fatal("no access token on the restored copy")
	}
	restored.stop()

	conn, err := pgx.Connect(t.Context(), into)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	if _, err := conn.Exec(t.Context(), "ALTER TABLE credentials DROP CONSTRAINT credentials_hash_key"); err != nil {
		t.Fatal(err)
	}
	cliFail(t, env(into, key), "", 1, "missing index credentials_hash_key: CREATE UNIQUE INDEX", "check")
}

// Replicas share one sealing key: with PostgreSQL, serve never makes one
// (each replica would make its own), and refuses a key other than the one
// the database's secrets were sealed with, naming the file.
func TestPostgresReplicaNeedsTheSharedSealingKey(t *testing.T) {
	dsn := pgtest.Database(t)
	dir := t.TempDir()
	right, wrong := filepath.Join(dir, "right.key"), filepath.Join(dir, "wrong.key")
	for _, k := range []string{right, wrong} {
		if _, _, err := seal.LoadOrCreateKey(k, true); err != nil {
			t.Fatal(err)
		}
	}
	load := func(key string) error {
		o := serverOptions{mutate: func(c *config.Config) {
			c.Storage.Type, c.Storage.DSN, c.SecretKeyFile = config.StoragePostgres, dsn, key
		}}
		cfg, _ := testConfig(t, &o)
		o.ln.Close() // Load does not listen
		m, err := Load(cfg, slog.New(slog.DiscardHandler), nil)
		if err == nil {
			m.Close()
		}
		return err
	}
	if err := load(right); err != nil {
		t.Fatalf("the first replica: %v", err)
	}
	if err := load(wrong); err == nil || !strings.Contains(err.Error(), "is not the key the secrets in the PostgreSQL database were sealed with") || !strings.Contains(err.Error(), wrong) {
		t.Errorf("a replica with another key: %v", err)
	}
	missing := filepath.Join(dir, "missing.key")
	if err := load(missing); err == nil || !strings.Contains(err.Error(), "keys new-sealing-key") {
		t.Errorf("a replica without a key: %v", err)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Error("serve made a sealing key for a PostgreSQL store")
	}
	if err := load(right); err != nil {
		t.Errorf("the right key again: %v", err)
	}
}

// `keyport keys new-sealing-key` writes a key seal can load, mode 0600,
// and never replaces a file (it may be the only key to a database).
func TestNewSealingKey(t *testing.T) {
	env := cliEnv(t.TempDir())
	path := filepath.Join(t.TempDir(), "shared.key")
	cliFail(t, env, "", 2, "needs --to FILE", "keys", "new-sealing-key")
	cliMust(t, env, "", "keys", "new-sealing-key", "--to", path)
	key, created, err := seal.LoadOrCreateKey(path, false)
	if err != nil || created || len(key) != seal.KeySize {
		t.Fatalf("the key written: %d bytes, created %v, %v", len(key), created, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the key file's mode: %v, %v", fi.Mode(), err)
	}
	cliFail(t, env, "", 1, "is never overwritten", "keys", "new-sealing-key", "--to", path)
	if again, _, _ := seal.LoadOrCreateKey(path, false); string(again) != string(key) {
		t.Error("a refused new-sealing-key changed the key")
	}
}
