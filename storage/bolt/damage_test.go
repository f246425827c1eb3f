package bolt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/internal/bolttest"
	"github.com/keyport/keyport/storage"
)

// populate writes a store with enough records that every busy bucket spans
// several pages (branch pages above leaves), then closes it.
func populate(t testing.TB, path string, users int) { populateFrom(t, path, 0, users) }

// populateFrom adds users first .. first+users-1 (see populate).
func populateFrom(t testing.TB, path string, first, users int) {
	t.Helper()
	ctx := context.Background()
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Nothing here needs to survive a crash of the machine: fsyncs would
	// only make the test slow.
	d.db.db.NoSync = true
	now := time.Now().UTC().Truncate(time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, users)
	for i := first; i < first+users; i++ {
		wg.Add(1)
		go func() { // concurrent, so the group commit shares the fsyncs
			defer wg.Done()
			id := fmt.Sprintf("u%04d", i)
			u := storage.User{ID: id, Username: fmt.Sprintf("user%04d", i), Email: fmt.Sprintf("user%04d@example.com", i),
				Name: "User " + id, Groups: []string{"staff", "people"}, CreatedAt: now, UpdatedAt: now,
				PasswordHash: "$argon2id$v=19$m=7168,t=5,p=1$c2FsdHNhbHRzYWx0$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g"}
			if err := d.CreateUser(ctx, u); err != nil {
				errs <- err
				return
			}
			fid := "f" + id
			r := storage.RefreshToken{Hash: "h" + id, ID: "r" + id, FamilyID: fid, ClientID: "app", UserID: id, Scopes: []string{"openid"},
				CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}
			a := storage.AccessToken{ID: "a" + id, ClientID: "app", UserID: id, Subject: id, FamilyID: fid, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
			if err := d.CreateTokens(ctx, a, &r); err != nil {
				errs <- err
				return
			}
			if err := d.CreateSession(ctx, storage.Session{ID: "s" + id, UserID: id, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
				errs <- err
				return
			}
			if err := d.AddLoginAttempt(ctx, storage.LoginAttempt{ID: "l" + id, UserID: id, Login: u.Username, Time: now, Method: "pwd", Success: true}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if err := d.CreateClient(ctx, storage.Client{ID: "app", Name: "App", RedirectURIs: []string{"https://app.example/cb"}, CreatedAt: now}); err != nil && !errors.Is(err, storage.ErrConflict) {
		t.Fatal(err)
	}
	// Deleting some leaves free pages, so the freelist has entries.
	for i := first; i < first+users; i += 7 {
		if err := d.DeleteUser(ctx, fmt.Sprintf("u%04d", i), time.Time{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// flip is one damaged copy of a file: the byte at off XORed with mask.
type flip struct {
	off  int64
	mask byte
	what string
}

// flipPlan picks the bytes that matter in each kind of page, for two pages
// of each kind: the header (page number, flags, element count, overflow),
// the first element (position, size, child page number or value size),
// the last byte of data, and every field of the meta pages.
func flipPlan(pages []bolttest.Page, pageSize int) []flip {
	var plan []flip
	perKind := map[string]int{}
	for _, p := range pages {
		if perKind[p.Kind] >= 2 || p.Kind == "free" {
			continue
		}
		perKind[p.Kind]++
		base := int64(p.ID) * int64(pageSize)
		offs := []int64{0, 8, 10, 12, 16, 20, 24, 28, int64(pageSize) - 1}
		if p.Kind == "meta" {
			// magic, version, page size, root, freelist, high water mark, txid, checksum
			offs = []int64{16, 20, 24, 32, 48, 56, 64, 72}
		}
		for _, o := range offs {
			for _, mask := range []byte{0x01, 0xff} {
				plan = append(plan, flip{off: base + o, mask: mask, what: fmt.Sprintf("%s page %d, byte %d ^ %#x", p.Kind, p.ID, o, mask)})
			}
		}
	}
	return plan
}

// pristineFile populates a database in dir with users and returns its
// bytes and page map, what the damage tests make their damaged copies from.
func pristineFile(t testing.TB, dir string, users int) (raw []byte, pages []bolttest.Page, pageSize int) {
	t.Helper()
	path := filepath.Join(dir, "pristine.db")
	populate(t, path, users)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pages, pageSize = bolttest.Pages(t, path)
	return raw, pages, pageSize
}

func damagedCopy(t testing.TB, pristine []byte, path string, f flip) {
	t.Helper()
	b := append([]byte(nil), pristine...)
	b[f.off] ^= f.mask
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	_ = os.Remove(FlowPath(path))
}

// TestOpenDamagedFiles damages a real populated file one byte at a time,
// at many places in every kind of page, and opens each copy. With the
// check, a copy is either refused with one line naming the file, or it
// opens and serves; without the check (database.check = false) damage
// reaches reads and writes, which must return errors and never panic: a
// panic in a goroutine without a recover (like the group commit's) would
// end the test binary.
func TestOpenDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	pristine, pages, pageSize := pristineFile(t, dir, 150)
	plan := flipPlan(pages, pageSize)
	path := filepath.Join(dir, "keyport.db")
	log := slog.New(slog.DiscardHandler)

	counts := map[string]int{}
	for _, f := range plan {
		for _, skip := range []bool{false, true} {
			damagedCopy(t, pristine, path, f)
			mode := "checked"
			if skip {
				mode = "unchecked"
				if reason := loopOrFreelist(t, path); reason != "" {
					counts["unchecked not tried: "+reason]++
					continue
				}
			}
			d, err := Open(path, Options{SkipCheck: skip, Logger: log, CheckTimeout: time.Minute})
			if err != nil {
				if !errors.Is(err, ErrDamaged) {
					t.Errorf("%s, %s: open failed without saying the file is damaged: %v", f.what, mode, err)
				}
				if msg := err.Error(); strings.Contains(msg, "\n") || !strings.Contains(msg, path) || !strings.Contains(msg, "restore it from a backup") {
					t.Errorf("%s, %s: refusal is not one line naming the file and the remedy: %q", f.what, mode, msg)
				}
				counts[mode+" refused"]++
				continue
			}
			// Durability is not what is tested: fsyncs would only make
			// the test as slow as the disk.
			d.db.db.NoSync = true
			failed := exercise(t, d, f.what+", "+mode)
			if failed > 0 {
				counts[mode+" opened, some operations failed"]++
				if d.Health() == nil && !skip {
					// A checked file that opens may still hold a damaged
					// value (a flipped byte inside a record); that is an
					// error of that record, not of the file.
					counts["checked, failures on a healthy store"]++
				}
			} else {
				counts[mode+" opened, everything worked"]++
			}
			if err := d.Close(); err != nil {
				t.Errorf("%s, %s: close: %v", f.what, mode, err)
			}
		}
	}
	t.Logf("%d damaged copies of a %d-page file: %v", len(plan), len(pages), counts)
	if counts["checked refused"] == 0 || counts["unchecked opened, some operations failed"] == 0 {
		t.Errorf("the plan did not exercise both the check and the guard: %v", counts)
	}
	if counts["checked refused"] <= counts["unchecked refused"] {
		t.Errorf("the check refused no more copies than opening alone: %v", counts)
	}
}

// loopOrFreelist tells whether the file at path has damage that only the
// check can stop: pages that refer to each other in a loop make bbolt
// recurse until the stack overflows, and a freelist that lists a page in
// use makes the next write overwrite it, which can build such a loop or
// one that a cursor follows for ever. Neither panics, so no recover helps.
func loopOrFreelist(t *testing.T, path string) string {
	t.Helper()
	reason, err := checkFile(context.Background(), path, time.Second)
	switch {
	case err != nil:
		return ""
	case strings.Contains(reason, "referenced twice") || hasLoop(t, path):
		// The check names the first problem it meets, which for a
		// damaged child pointer may be a key out of range: the loop is
		// looked for on its own.
		return "pages in a loop"
	case strings.Contains(reason, "listed as free"):
		return "freelist lists pages in use"
	}
	return ""
}

// hasLoop tells whether a page of the closed file at path leads back to
// itself through branch children and bucket roots, which bbolt follows
// recursively (Bucket.Stats, the cursor) until the stack overflows.
func hasLoop(t *testing.T, path string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h, reason, err := readHeader(f)
	if reason != "" || err != nil {
		return false
	}
	m := h.meta()
	ne := binary.NativeEndian
	onPath := map[uint64]bool{}
	done := map[uint64]bool{}
	var visit func(id uint64) bool
	visit = func(id uint64) bool {
		if id < 2 || id >= m.hwm || done[id] {
			return false
		}
		if onPath[id] {
			return true
		}
		p := make([]byte, h.pageSize)
		if _, err := f.ReadAt(p, int64(id)*h.pageSize); err != nil {
			return false
		}
		onPath[id] = true
		defer func() { delete(onPath, id); done[id] = true }()
		flags, count := ne.Uint16(p[8:]), int(ne.Uint16(p[10:]))
		for i := 0; i < count && pageHeaderSize+(i+1)*pageElementSize <= len(p); i++ {
			at := pageHeaderSize + i*pageElementSize
			var child uint64
			switch flags {
			case branchPageFlag:
				child = ne.Uint64(p[at+8:])
			case leafPageFlag:
				pos, ksize, vsize := int(ne.Uint32(p[at+4:])), int(ne.Uint32(p[at+8:])), int(ne.Uint32(p[at+12:]))
				v := at + pos + ksize
				if ne.Uint32(p[at:])&bucketLeafFlag == 0 || vsize < 8 || v+8 > len(p) {
					continue
				}
				child = ne.Uint64(p[v:])
			default:
				return false
			}
			if visit(child) {
				return true
			}
		}
		return false
	}
	return visit(m.root)
}

// exercise reads and writes everything a server would, from goroutines
// without a recover, and returns how many operations failed. It fails the
// test if they do not finish.
func exercise(t *testing.T, d *DB, what string) (failed int) {
	t.Helper()
	ctx := context.Background()
	var mu sync.Mutex
	count := func(err error) {
		if err != nil {
			mu.Lock()
			failed++
			mu.Unlock()
		}
	}
	var wg sync.WaitGroup
	run := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	run(func() {
		users, err := d.ListUsers(ctx)
		count(err)
		for _, u := range users {
			_, err := d.GetUserByLogin(ctx, u.Username)
			count(err)
		}
	})
	for i := 0; i < 150; i += 31 {
		id := fmt.Sprintf("u%04d", i)
		run(func() {
			_, err := d.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) { u.LoginsCount++; return u, nil })
			if !errors.Is(err, storage.ErrNotFound) {
				count(err)
			}
			count(d.AddLoginAttempt(ctx, storage.LoginAttempt{ID: "n" + id, UserID: id, Login: id, Time: time.Now(), Method: "pwd"}))
			_, err = d.GetRefreshToken(ctx, "h"+id)
			if !errors.Is(err, storage.ErrNotFound) {
				count(err)
			}
			_, err = d.ListUserSessions(ctx, id)
			count(err)
		})
	}
	run(func() {
		count(d.CreateUser(ctx, storage.User{ID: "new", Username: "newcomer", Email: "new@example.com"}))
		_, err := d.CountUsers(ctx)
		count(err)
		_, err = d.ListClients(ctx)
		count(err)
		count(d.Backup(ctx, discardWriter{}))
		_, err = d.CreateAuthRequest(ctx, storage.AuthRequest{ID: "ar", ClientID: "app", CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Minute)}, storage.PendingLimits{})
		count(err)
	})
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatalf("%s: reads and writes did not finish", what)
	}
	return failed
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }

// TestDamageWhileRunning damages pages under a running store, as a failing
// disk would after the check at open: reads of the damaged pages and
// writes from goroutines without a recover get errors, the store stops
// writing and Health says why, and the rest still reads.
func TestDamageWhileRunning(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(page []byte, pageSize int)
	}{
		// bbolt asserts the page's own number: a panic.
		{"page number", func(p []byte, _ int) { p[0] ^= 0x5a }},
		// A child page far past the end of the file: a read outside the
		// memory mapping, which without SetPanicOnFault is a fatal fault.
		{"child page out of the file", func(p []byte, _ int) {
			binary.NativeEndian.PutUint64(p[pageHeaderSize+8:], 1<<30)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "keyport.db")
			populate(t, path, 300)
			d, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			// The users bucket's root is a branch page over its leaves.
			var root uint64
			var pageSize int
			err = d.db.View(func(tx *bbolt.Tx) error {
				root, pageSize = uint64(tx.Bucket(bUsers).RootPage()), tx.DB().Info().PageSize
				info, err := tx.Page(int(root))
				if err == nil && info.Type != "branch" {
					err = fmt.Errorf("users root page %d is a %s, want a branch", root, info.Type)
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			page := make([]byte, pageSize)
			if _, err := f.ReadAt(page, int64(root)*int64(pageSize)); err != nil {
				t.Fatal(err)
			}
			tc.damage(page, pageSize)
			// The file is mapped shared: the store sees this at once.
			if _, err := f.WriteAt(page, int64(root)*int64(pageSize)); err != nil {
				t.Fatal(err)
			}
			f.Close()

			if _, err := d.GetUser(ctx, "u0001"); err == nil {
				t.Error("read through the damaged page worked")
			}
			if _, err := d.ListUsers(ctx); err == nil {
				t.Error("listing through the damaged page worked")
			}
			if err := d.Health(); err == nil || !strings.Contains(err.Error(), "damaged") {
				t.Errorf("health after damage: %v", err)
			}
			// Writes from goroutines without a recover, solo (UpdateUser)
			// and through the group commit (RecordSignIn).
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					id := fmt.Sprintf("u%04d", i+1)
					count := func(u storage.User) (storage.User, error) { u.LoginsCount++; return u, nil }
					if i%2 == 0 {
						_, errs[i] = d.UpdateUser(ctx, id, count)
						return
					}
					_, errs[i] = d.RecordSignIn(ctx, storage.SignInWrite{UserID: id, Update: count,
						Attempt: storage.LoginAttempt{ID: fmt.Sprintf("a%d", i), UserID: id, Time: time.Now(), Method: "pwd", Success: true}})
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if !errors.Is(err, ErrDamaged) {
					t.Errorf("write %d to a damaged store: %v, want ErrDamaged", i, err)
				}
			}
			// Other buckets still read.
			if _, err := d.GetClient(ctx, "app"); err != nil {
				t.Errorf("an undamaged bucket does not read: %v", err)
			}
			d.Close()
			if _, err := Open(path, Options{}); !errors.Is(err, ErrDamaged) {
				t.Errorf("reopening the damaged file: %v, want ErrDamaged", err)
			}
		})
	}
}

// TestPanicOfOurOwnIsABug: a panic raised by our code inside a transaction
// comes back as an error and does not mark the file damaged.
func TestPanicOfOurOwnIsABug(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{})
	ctx := context.Background()
	if err := d.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	var nilMap map[string]int
	_, err := d.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
		nilMap["x"]++ // panics
		return u, nil
	})
	if err == nil || errors.Is(err, ErrDamaged) {
		t.Fatalf("panic in an update function: %v, want a plain error", err)
	}
	if err := d.Health(); err != nil {
		t.Errorf("health after a bug's panic: %v", err)
	}
	if _, err := d.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) { u.Name = "A"; return u, nil }); err != nil {
		t.Errorf("write after a bug's panic: %v", err)
	}
}

// TestCheckFinishingAfterOpen: a check that outlasts check_timeout lets Open
// return, and the damage it finds later stops writes and shows in Health.
func TestCheckFinishingAfterOpen(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keyport.db")
	populate(t, path, 300)
	// A leaf of the users bucket claims another page number: bbolt's check
	// finds it; a read of another bucket does not.
	var leaf uint64
	var pageSize int
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		pageSize = db.Info().PageSize
		root := tx.Bucket(bUsers).RootPage()
		raw := make([]byte, pageSize)
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, err := f.ReadAt(raw, int64(root)*int64(pageSize)); err != nil {
			return err
		}
		leaf = binary.NativeEndian.Uint64(raw[pageHeaderSize+8:]) // the first child
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
	if _, err := f.WriteAt([]byte{0x5a}, int64(leaf)*int64(pageSize)); err != nil {
		t.Fatal(err)
	}
	f.Close()

	opened := make(chan struct{})
	checkStarting = func() { <-opened }
	t.Cleanup(func() { checkStarting = nil })
	var logs strings.Builder
	var mu sync.Mutex
	d, err := Open(path, Options{CheckTimeout: time.Millisecond, Logger: slog.New(slog.NewTextHandler(lockedBuilder{&mu, &logs}, nil))})
	close(opened)
	if err != nil {
		t.Fatalf("Open waited for the check: %v", err)
	}
	defer d.Close()
	if _, err := d.GetClient(context.Background(), "app"); err != nil {
		t.Errorf("read while the check runs: %v", err)
	}
	// Health reports the damage just before the log line is written.
	logged := func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "is damaged")
	}
	for deadline := time.Now().Add(time.Minute); d.Health() == nil || !logged(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the check never reported the damage")
		}
	}
	if err := d.CreateClient(context.Background(), storage.Client{ID: "later"}); !errors.Is(err, ErrDamaged) {
		t.Errorf("write after the check found damage: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(logs.String(), "keyport starts while it finishes") || !strings.Contains(logs.String(), "is damaged") {
		t.Errorf("log:\n%s", logs.String())
	}
}

type lockedBuilder struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (l lockedBuilder) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// TestCheckCoversBboltsCheck: the check at open replaces bbolt's tx.Check,
// so on every damaged copy that it passes, bbolt's check (run where it is
// safe: read-only, no writers) must find nothing either.
func TestCheckCoversBboltsCheck(t *testing.T) {
	dir := t.TempDir()
	pristine, pages, pageSize := pristineFile(t, dir, 150)
	path := filepath.Join(dir, "keyport.db")
	counts := map[string]int{}
	for _, f := range append(flipPlan(pages, pageSize), keyFlips(pristine, pages, pageSize)...) {
		damagedCopy(t, pristine, path, f)
		reason, err := checkFile(context.Background(), path, time.Second)
		if err != nil || reason != "" {
			counts["refused"]++
			continue
		}
		counts["passed"]++
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			t.Errorf("%s: passed our check, but bbolt does not open it: %v", f.what, err)
			continue
		}
		err = db.View(func(tx *bbolt.Tx) error {
			for err := range tx.Check() {
				t.Errorf("%s: passed our check, but bbolt's finds: %v", f.what, err)
			}
			return nil
		})
		db.Close()
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("%v", counts)
	if counts["refused"] == 0 || counts["passed"] == 0 {
		t.Errorf("the plan did not exercise both outcomes: %v", counts)
	}
}

// keyFlips damages keys, which bbolt reads without checking them: the
// first and last byte of the second key of a few branch and leaf pages.
func keyFlips(raw []byte, pages []bolttest.Page, pageSize int) []flip {
	var plan []flip
	perKind := map[string]int{}
	for _, p := range pages {
		if (p.Kind != "branch" && p.Kind != "leaf") || perKind[p.Kind] >= 4 {
			continue
		}
		base := p.ID * pageSize
		if binary.NativeEndian.Uint16(raw[base+10:]) < 3 {
			continue
		}
		perKind[p.Kind]++
		at := base + pageHeaderSize + pageElementSize // the second element
		pos, ksize := binary.NativeEndian.Uint32(raw[at:]), binary.NativeEndian.Uint32(raw[at+4:])
		if p.Kind == "leaf" {
			pos, ksize = binary.NativeEndian.Uint32(raw[at+4:]), binary.NativeEndian.Uint32(raw[at+8:])
		}
		key := int64(at) + int64(pos)
		for _, off := range []int64{key, key + int64(ksize) - 1} {
			for _, mask := range []byte{0x01, 0x80} {
				plan = append(plan, flip{off: off, mask: mask, what: fmt.Sprintf("%s page %d, key byte %d ^ %#x", p.Kind, p.ID, off-int64(base), mask)})
			}
		}
	}
	return plan
}

// TestDamagedFlowFileWhileRunning: damage met in the flow file says what
// helps there, a restart (which recreates it), not a restore from backup,
// which would bring nothing back and roll the accounts back.
func TestDamagedFlowFileWhileRunning(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "keyport.db")
	var mu sync.Mutex
	var logs strings.Builder
	d, err := Open(path, Options{Logger: slog.New(slog.NewTextHandler(lockedBuilder{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	now := time.Now()
	for i := range 300 {
		a := storage.AuthRequest{ID: fmt.Sprintf("req%04d", i), ClientID: "app", RedirectURI: "https://app.example/cb", State: strings.Repeat("s", 100), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if _, err := d.CreateAuthRequest(ctx, a, storage.PendingLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	var root uint64
	var pageSize int
	if err := d.flow.View(func(tx *bbolt.Tx) error {
		root, pageSize = uint64(tx.Bucket(bAuthRequests).RootPage()), tx.DB().Info().PageSize
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(FlowPath(path), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0x5a, 0x5a}, int64(root)*int64(pageSize)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := d.GetAuthRequest(ctx, "req0001"); err == nil {
		t.Fatal("read through the damaged page worked")
	}
	if err := d.Health(); err == nil || !strings.Contains(err.Error(), "sign-in database file is damaged") {
		t.Errorf("health: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if l := logs.String(); !strings.Contains(l, "restart keyport, which recreates it") || strings.Contains(l, "restore it from a backup") {
		t.Errorf("log:\n%s", l)
	}
}
