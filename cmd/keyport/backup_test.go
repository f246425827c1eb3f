package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// refreshWith rotates a refresh token at the token endpoint and returns the
// next one; it uses no *testing.T, so load goroutines can call it.
func refreshWith(srvURL, clientID, secret, rt string) (string, error) {
	req, _ := http.NewRequest(http.MethodPost, srvURL+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(clientID, secret)
	p, err := fetch(http.DefaultClient, req)
	if err != nil {
		return "", err
	}
	next, _ := p.JSON()["refresh_token"].(string)
	if p.Status != http.StatusOK || next == "" {
		return "", fmt.Errorf("refresh: %d %s", p.Status, p.Body)
	}
	return next, nil
}

// signInOffline signs username in at c with a new browser, asking for a
// refresh token, and exchanges the code.
func signInOffline(c *testClient, username string) *oauth2.Token {
	c.srv.t.Helper()
	code, verifier := c.signIn(newBrowser(c.srv.t), username, oauthScope("openid profile offline_access"))
	tok, err := c.exchange(code, verifier)
	if err != nil {
		c.srv.t.Fatalf("exchange the code of %s: %v", username, err)
	}
	return tok
}

// TestBackupWhileServing takes `keyport backup` through the running server
// while sign-ins and refresh-token rotations write all the time, checks the
// copy, and starts a server on it that signs people in and honours a
// refresh token issued before the backup.
func TestBackupWhileServing(t *testing.T) {
	srv := startServer(t, "", nil)
	srv.createUser("alice", false)
	for i := range 20 {
		srv.createUser(fmt.Sprintf("user%02d", i), false)
	}
	// Pictures make the file a few MiB, so that a copy takes a while.
	users, err := srv.Main.Store.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for i, u := range users {
		data := bytes.Repeat([]byte{byte(i)}, 200<<10)
		if err := srv.Main.Store.PutAvatar(context.Background(), storage.Avatar{UserID: u.ID, ContentType: "image/png", Data: data, UpdatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	app := srv.createClient(account.NewClient{ID: "app", SkipConsent: true, GrantTypes: []string{"authorization_code", "refresh_token"}})
	reserve := signInOffline(app, "alice").RefreshToken // not used until the restore
	var chains []string
	for range 4 {
		chains = append(chains, signInOffline(app, "alice").RefreshToken)
	}

	// Writers: refresh chains rotating and password sign-ins, until stop.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var writes atomic.Int64
	errs := make(chan error, 16)
	for _, rt := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				next, err := refreshWith(srv.URL, app.ID, app.Secret, rt)
				if err != nil {
					errs <- err
					return
				}
				rt = next
				writes.Add(1)
			}
		}()
	}
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				login := fmt.Sprintf("user%02d", (2*n+i)%20)
				if _, err := srv.Main.Accounts.SignIn.Authenticate(context.Background(), account.Credentials{Login: login, Password: testPassword, IP: "192.0.2.9"}); err != nil {
					errs <- err
					return
				}
				writes.Add(1)
			}
		}()
	}

	out := filepath.Join(t.TempDir(), "keyport-backup.db")
	env := cliEnv(srv.dir)
	var results []cliResult
	for range 5 { // several copies, each taken in the middle of the writes
		before := writes.Load()
		results = append(results, cliMust(t, env, "", "backup", "--to", out, "--force"))
		if writes.Load() == before {
			t.Error("no write happened while a backup was taken")
		}
	}
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("writer: %v", err)
	}
	for _, r := range results {
		if !strings.Contains(r.Stdout, "through the running server") || !strings.Contains(r.Stdout, "consistent; schema") || !strings.Contains(r.Stdout, "users: 21, apps: 1,") {
			t.Errorf("backup said: %s", r)
		}
		if !strings.Contains(r.Stdout, "keep "+filepath.Join(srv.dir, "secret.key")+" with it") {
			t.Errorf("backup does not mention the key: %s", r)
		}
	}
	t.Logf("%d writes during the backups; %s", writes.Load(), strings.TrimSpace(results[len(results)-1].Stdout))
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("backup file: %v %v", fi, err)
	}
	if rep, err := bolt.Verify(context.Background(), out); err != nil || rep.Users != 21 {
		t.Fatalf("verify the backup: %+v %v", rep, err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}

	// Restore: the copy and the key in a new data dir, and a server on it.
	restoredDir := t.TempDir()
	copyFile(t, out, filepath.Join(restoredDir, "keyport.db"))
	copyFile(t, filepath.Join(srv.dir, "secret.key"), filepath.Join(restoredDir, "secret.key"))
	srv.stop()
	restored := startServer(t, restoredDir, nil)
	rp := restored.rp(app.ID, app.Secret, app.RedirectURI)
	if tok := signInOffline(rp, "user07"); tok.AccessToken == "" || tok.RefreshToken == "" {
		t.Fatal("no access token from the restored server")
	}
	if _, err := refreshWith(restored.URL, app.ID, app.Secret, reserve); err != nil {
		t.Errorf("a refresh token from before the backup, on the restored server: %v", err)
	}
}

// TestBackupCommand: copies straight from the file when no server runs,
// refuses to overwrite without --force, and refuses to write a copy of a
// damaged database.
func TestBackupCommand(t *testing.T) {
	dir := t.TempDir()
	env := cliEnv(dir)
	cliMust(t, env, testPassword, "user", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin")
	cliFail(t, env, "", 2, "backup needs --to FILE", "backup")

	out := filepath.Join(t.TempDir(), "b.db")
	r := cliMust(t, env, "", "backup", "--to", out)
	if !strings.Contains(r.Stdout, "from the file (no server running)") || !strings.Contains(r.Stdout, "users: 1,") {
		t.Errorf("direct backup: %s", r)
	}
	if err := os.WriteFile(out, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	cliFail(t, env, "", 1, "exists; add --force to replace it", "backup", "--to", out)
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatal("backup overwrote a file without --force")
	}
	cliMust(t, env, "", "backup", "--to", out, "--force")
	if _, err := bolt.Verify(context.Background(), out); err != nil {
		t.Errorf("forced backup: %v", err)
	}

	// Never over keyport's own files, however they are spelled: --force
	// would have renamed the copy over the live database.
	db := filepath.Join(dir, "keyport.db")
	link := filepath.Join(t.TempDir(), "data")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(db)
	if err != nil {
		t.Fatal(err)
	}
	for _, own := range []string{db, filepath.Join(dir, "..", filepath.Base(dir), "keyport.db"), filepath.Join(link, "keyport.db"), filepath.Join(dir, "secret.key"), filepath.Join(dir, "keyport-flows.db")} {
		cliFail(t, env, "", 1, "write the backup elsewhere", "backup", "--to", own, "--force")
	}
	if after, _ := os.ReadFile(db); !bytes.Equal(before, after) {
		t.Fatal("a backup replaced the database it copies")
	}
	// The database on another disk, linked from the data directory: the
	// link's target is the database too.
	moved := filepath.Join(t.TempDir(), "moved.db")
	if err := os.Rename(db, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(moved, db); err != nil {
		t.Fatal(err)
	}
	cliFail(t, env, "", 1, "write the backup elsewhere", "backup", "--to", moved, "--force")
	if after, _ := os.ReadFile(moved); !bytes.Equal(before, after) {
		t.Fatal("a backup replaced the database behind a link")
	}
	if err := os.Remove(db); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(moved, db); err != nil {
		t.Fatal(err)
	}

	// Where the file system cannot rename without replacing (nor link),
	// the copy is placed by an exclusive create: still never over a file.
	renamer := renameNoReplace
	renameNoReplace = func(string, string) error { return errors.ErrUnsupported }
	t.Cleanup(func() { renameNoReplace = renamer })
	if err := os.WriteFile(out, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	cliFail(t, env, "", 1, "exists; add --force to replace it", "backup", "--to", out)
	if b, _ := os.ReadFile(out); string(b) != "precious" {
		t.Fatal("the copying fallback overwrote a file without --force")
	}
	copied := filepath.Join(filepath.Dir(out), "copied.db")
	cliMust(t, env, "", "backup", "--to", copied)
	if _, err := bolt.Verify(context.Background(), copied); err != nil {
		t.Errorf("backup placed by copying: %v", err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left by the copying fallback: %v", leftovers)
	}
	renameNoReplace = renamer

	// A damaged database: the copy fails its check and nothing is written.
	damageRoot(t, db)
	out2 := filepath.Join(t.TempDir(), "c.db")
	r = cliFail(t, env, "", 1, "fails the consistency check", "backup", "--to", out2)
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) || strings.Contains(r.Stderr, "panic") {
		t.Errorf("backup of a damaged database: %v %s", err, r)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(out2), ".*tmp-*")); len(leftovers) > 0 {
		t.Errorf("temporary files left: %v", leftovers)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// damageRoot overwrites the page number in the header of the root page of
// a closed bbolt file, which bbolt checks on every read.
func damageRoot(t *testing.T, path string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	var root, pageSize int64
	err = db.View(func(tx *bbolt.Tx) error {
		root, pageSize = int64(tx.Cursor().Bucket().RootPage()), int64(db.Info().PageSize)
		return nil
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0x5a, 0x5a}, root*pageSize); err != nil {
		t.Fatal(err)
	}
}

// TestBackupSaysWhyNoServerAnswered: with a data directory too deep for a
// Unix socket path, the server runs without its control socket; backup
// then finds the file in use and says why it could not ask the server,
// rather than blaming another program.
func TestBackupSaysWhyNoServerAnswered(t *testing.T) {
	dir := t.TempDir()
	for len(dir) < 120 {
		dir = filepath.Join(dir, "a-rather-long-directory-name")
	}
	env := cliEnv(dir)
	cliMust(t, env, testPassword, "user", "create", "--username", "bob", "--email", "bob@example.com", "--password-stdin")
	held, err := bolt.Open(filepath.Join(dir, "keyport.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	cliFail(t, env, "", 1, "longer than the 107 bytes a Unix socket path may have", "backup", "--to", filepath.Join(t.TempDir(), "b.db"))
}
