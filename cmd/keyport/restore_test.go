package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// TestRestoreRoundTrip: a backup of a running server with users, an app
// and tokens; more writes after it; restore refused while the server
// runs; after it stops, restore brings the earlier state back (the user
// created later is gone, a refresh token rotated later works again) and
// a go-oidc relying party signs in on it.
func TestRestoreRoundTrip(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, GrantTypes: []string{"authorization_code", "refresh_token"}})
	early := signInOffline(app, "alice").RefreshToken
	env := cliEnv(srv.dir)
	backup := filepath.Join(t.TempDir(), "keyport-backup.db")
	cliMust(t, env, "", "backup", "--to", backup)
	r := cliMust(t, env, "", "backup", "--check", backup)
	if !strings.Contains(r.Stdout, "is a consistent keyport backup") || !strings.Contains(r.Stdout, "users: 1, apps: 1,") ||
		!strings.Contains(r.Stdout, "its secrets open with the sealing key "+filepath.Join(srv.dir, "secret.key")) {
		t.Errorf("backup --check: %s", r)
	}

	// After the backup: a new user, and the early refresh token rotated.
	srv.createUser("late", false)
	if _, err := refreshWith(srv.URL, app.ID, app.Secret, early); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(srv.dir, "keyport.db")
	cliFail(t, env, "", 1, "keyport serve is running on "+srv.dir, "restore", "--from", backup)
	cliFail(t, env, "", 1, "keyport serve is running on "+srv.dir, "check")

	srv.stop()
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	r = cliMust(t, env, "", "restore", "--from", backup)
	if !strings.Contains(r.Stdout, "restored "+db+" from "+backup) || !strings.Contains(r.Stdout, "users: 1, apps: 1,") {
		t.Errorf("restore said: %s", r)
	}
	if r := cliMust(t, env, "", "check"); !strings.Contains(r.Stdout, db+" is a consistent keyport store") || !strings.Contains(r.Stdout, "users: 1, apps: 1,") {
		t.Errorf("check after the restore: %s", r)
	}
	kept, _ := filepath.Glob(db + ".before-restore-*")
	if len(kept) != 1 || !strings.Contains(r.Stdout, "kept as "+kept[0]) {
		t.Fatalf("replaced database kept as %v; restore said: %s", kept, r)
	}
	if b, err := os.ReadFile(kept[0]); err != nil || !bytes.Equal(b, before) {
		t.Errorf("the kept database is not the one replaced: %v", err)
	}
	if fi, err := os.Stat(db); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("restored database: %v %v", fi, err)
	}
	noTempFiles(t, srv.dir)

	restored := startServer(t, srv.dir, nil)
	if _, err := restored.Main.Store.GetUserByLogin(context.Background(), "late"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the user created after the backup: %v", err)
	}
	if _, err := refreshWith(restored.URL, app.ID, app.Secret, early); err != nil {
		t.Errorf("the refresh token rotated after the backup is not back: %v", err)
	}
	rp := restored.rp(app.ID, app.Secret, app.RedirectURI)
	tok := signInOffline(rp, "alice")
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.verifier.Verify(context.Background(), raw)
	if err != nil {
		t.Fatalf("the restored server's ID token: %v", err)
	}
	var claims struct {
		Username string `json:"preferred_username"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Username != "alice" {
		t.Errorf("ID token claims: %+v %v", claims, err)
	}
}

// TestRestoreRefusesBadBackups: a truncated backup, a damaged one, one
// whose secrets were sealed with another key, one from a newer keyport,
// and a missing key are refused, and nothing in the data directory
// changes.
func TestRestoreRefusesBadBackups(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	cliMust(t, env, testPassword, "user", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin")
	good := filepath.Join(t.TempDir(), "good.db")
	cliMust(t, env, "", "backup", "--to", good)

	// Another installation: its own secret.key.
	otherDir := t.TempDir()
	otherEnv := cliEnv(otherDir)
	cliMust(t, otherEnv, testPassword, "user", "create", "--username", "eve", "--email", "eve@example.com", "--password-stdin")
	foreign := filepath.Join(t.TempDir(), "foreign.db")
	cliMust(t, otherEnv, "", "backup", "--to", foreign)

	truncated := filepath.Join(t.TempDir(), "truncated.db")
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(truncated, b[:len(b)/3], 0o600); err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	copyFile(t, good, damaged)
	damageRoot(t, damaged)
	newer := filepath.Join(t.TempDir(), "newer.db")
	copyFile(t, good, newer)
	setSchemaVersion(t, newer, "999")
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}

	snap := snapshotDir(t, dir)
	for _, c := range []struct{ file, want string }{
		{truncated, "is not a usable backup: it fails the consistency check"},
		{damaged, "is not a usable backup: it fails the consistency check"},
		{garbage, "is not a usable backup"},
		{newer, "has schema version 999, but this keyport understands up to"},
		{foreign, "the sealing key " + filepath.Join(dir, "secret.key") + " is not the key the secrets in " + foreign + " were sealed with"},
	} {
		for _, cmd := range [][]string{{"restore", "--from", c.file}, {"backup", "--check", c.file}} {
			r := cliFail(t, env, "", 1, c.want, cmd...)
			if strings.Contains(r.Stderr, "panic") {
				t.Errorf("%v: %s", cmd, r)
			}
		}
		if got := snapshotDir(t, dir); !equalSnapshots(snap, got) {
			t.Fatalf("refused restore of %s changed the data directory: %v → %v", c.file, keys(snap), keys(got))
		}
	}

	// The key missing altogether: named, and nothing restored.
	key := filepath.Join(dir, "secret.key")
	if err := os.Rename(key, key+".away"); err != nil {
		t.Fatal(err)
	}
	cliFail(t, env, "", 1, "the sealing key "+key+" does not exist: put the secret.key kept with the backup there first", "restore", "--from", good)
	if err := os.Rename(key+".away", key); err != nil {
		t.Fatal(err)
	}
	if got := snapshotDir(t, dir); !equalSnapshots(snap, got) {
		t.Fatalf("refused restore changed the data directory: %v → %v", keys(snap), keys(got))
	}

	// A process that holds the database without a control socket: the
	// file lock tells.
	held, err := bolt.Open(filepath.Join(dir, "keyport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	snap = snapshotDir(t, dir)
	cliFail(t, env, "", 1, "is in use: stop keyport serve first", "restore", "--from", good)
	if got := snapshotDir(t, dir); !equalSnapshots(snap, got) {
		t.Fatalf("refused restore changed the data directory: %v → %v", keys(snap), keys(got))
	}
	held.Close()

	// The right backup restores, into a directory that had no database too.
	cliMust(t, env, "", "restore", "--from", good)
	fresh := t.TempDir()
	copyFile(t, filepath.Join(dir, "secret.key"), filepath.Join(fresh, "secret.key"))
	r := cliMust(t, cliEnv(fresh), "", "restore", "--from", good)
	if strings.Contains(r.Stdout, "kept as") {
		t.Errorf("restore into an empty data directory kept something: %s", r)
	}
	m := cliOpen(t, fresh)
	defer m.Close()
	if _, err := m.Store.GetUserByLogin(context.Background(), "bob"); err != nil {
		t.Errorf("bob after restoring into an empty data directory: %v", err)
	}
}

// setSchemaVersion writes v as the schema version of the closed bbolt file
// at path, as a newer keyport would.
func setSchemaVersion(t *testing.T, path, v string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), []byte(v)) }); err != nil {
		t.Fatal(err)
	}
}

// snapshotDir reads every file of dir (not its socket), by name.
func snapshotDir(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out[e.Name()] = b
	}
	return out
}

func equalSnapshots(a, b map[string][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !bytes.Equal(v, w) {
			return false
		}
	}
	return true
}

func keys(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// noTempFiles fails when a restore left its temporary copy in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	if left, _ := filepath.Glob(filepath.Join(dir, ".keyport.db.restore-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
