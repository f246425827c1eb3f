package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
)

// TestNoNewSealingKeyBesideSealedData: with secret.key gone, neither serve
// nor a command generates a new key beside a database that holds secrets
// sealed with the old one; they refuse with one line saying to restore it.
// A wrong key is refused too. Restoring the key brings everything back.
func TestNoNewSealingKeyBesideSealedData(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, nil) // first start: a key and a sealed signing key
	srv.createUser("alice", false)
	srv.stop()
	keyPath := filepath.Join(dir, "secret.key")
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}

	cfg := loadTestConfig(t, dir)
	if m, err := Load(cfg, slog.New(slog.DiscardHandler), nil); err == nil {
		m.Close()
		t.Fatal("Load started without the sealing key")
	} else if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, keyPath) || !strings.Contains(msg, "signing keys") || !strings.Contains(msg, "restore secret.key") {
		t.Errorf("refusal: %q", msg)
	}
	r := cliFail(t, cliEnv(dir), "", 1, "restore secret.key", "user", "list")
	if n := strings.Count(strings.TrimSpace(r.Stderr), "\n"); n != 0 {
		t.Errorf("user list refuses with %d lines:\n%s", n+1, r.Stderr)
	}
	if _, err := os.Stat(keyPath); !os.IsNotExist(err) {
		t.Fatalf("a new key was written beside the sealed data: %v", err)
	}

	// Another key (a secret.key from some other backup) is refused too.
	other := bytes.Repeat([]byte{0x42}, 32)
	if err := os.WriteFile(keyPath, []byte(hex.EncodeToString(other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cliFail(t, cliEnv(dir), "", 1, "is not the key the secrets in", "user", "list")
	if _, err := Load(cfg, slog.New(slog.DiscardHandler), nil); err == nil || !strings.Contains(err.Error(), "restore the secret.key that belongs to this database") {
		t.Errorf("Load with another key: %v", err)
	}

	// The right key back: everything works, alice included.
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	srv = startServer(t, dir, nil)
	if _, err := srv.Main.Accounts.SignIn.Authenticate(context.Background(), account.Credentials{Login: "alice", Password: testPassword}); err != nil {
		t.Errorf("sign-in after restoring the key: %v", err)
	}
}

// A database without sealed data (users created before the first start)
// still gets a key when it has none; nothing is lost by it.
func TestSealingKeyForADatabaseWithoutSecrets(t *testing.T) {
	dir := t.TempDir()
	// (Not `keyport user create`: it goes through the management API,
	// whose in-process server makes a sealed signing key as serve does.)
	m := cliOpen(t, dir)
	if _, err := m.Accounts.Users.CreateUser(context.Background(), account.NewUser{Username: "bob", Email: "bob@example.com", Password: testPassword}); err != nil {
		t.Fatal(err)
	}
	m.Close()
	keyPath := filepath.Join(dir, "secret.key")
	if err := os.Remove(keyPath); err != nil {
		t.Fatal(err)
	}
	cliMust(t, cliEnv(dir), "", "user", "list")
	if _, err := os.Stat(keyPath); err != nil {
		t.Fatalf("no key for a database without sealed data: %v", err)
	}
	srv := startServer(t, dir, nil)
	if _, err := srv.Main.Accounts.SignIn.Authenticate(context.Background(), account.Credentials{Login: "bob", Password: testPassword}); err != nil {
		t.Errorf("sign-in: %v", err)
	}
}

// loadTestConfig is the configuration startServer uses for dir, with a
// fixed local issuer.
func loadTestConfig(t *testing.T, dir string) *config.Config {
	t.Helper()
	env := map[string]string{"KEYPORT_DATA_DIR": dir, "KEYPORT_ISSUER": "http://127.0.0.1:9999", "KEYPORT_LISTEN": "127.0.0.1:0"}
	cfg, _, err := config.Load("", func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestSealingKeyProvedOnOldDatabases: a database from before the key check
// (no seal-key-check setting) remembers the key only once the key has
// opened a secret sealed there. It used to remember it once the signing key
// opened; but a signing key due for rotation is replaced first, sealed with
// whatever key is there, so a wrong secret.key was then remembered as right
// and the real one refused from then on.
func TestSealingKeyProvedOnOldDatabases(t *testing.T) {
	dir := t.TempDir()
	srv := startServer(t, dir, nil)
	srv.stop()
	forgetCheck := func() {
		t.Helper()
		db, err := bbolt.Open(filepath.Join(dir, "keyport.db"), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		if err := db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("settings")).Delete([]byte(settingSealCheck))
		}); err != nil {
			t.Fatal(err)
		}
	}
	forgetCheck()
	keyPath := filepath.Join(dir, "secret.key")
	key, err := os.ReadFile(keyPath)
	if err != nil {
		t.Fatal(err)
	}
	other := bytes.Repeat([]byte{0x42}, 32)
	if err := os.WriteFile(keyPath, []byte(hex.EncodeToString(other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := loadTestConfig(t, dir)
	later := func() time.Time { return time.Now().Add(2 * cfg.Keys.RotationPeriod.Duration) }
	if m, err := Load(cfg, slog.New(slog.DiscardHandler), later); err == nil {
		m.Close()
		t.Fatal("a wrong key was accepted for a database whose signing key was due for rotation")
	} else if !strings.Contains(err.Error(), "does not open the signing keys") || !strings.Contains(err.Error(), "restore the secret.key") {
		t.Errorf("refusal: %v", err)
	}

	// The right key is proved and remembered; then a wrong one is refused
	// by the check alone.
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
	m, err := Load(cfg, slog.New(slog.DiscardHandler), later)
	if err != nil {
		t.Fatalf("the right key: %v", err)
	}
	m.Close()
	if err := os.WriteFile(keyPath, []byte(hex.EncodeToString(other)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(cfg, slog.New(slog.DiscardHandler), nil); err == nil || !strings.Contains(err.Error(), "is not the key the secrets in") {
		t.Errorf("a wrong key after the right one was remembered: %v", err)
	}
}
