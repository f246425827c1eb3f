package postgres

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// awaitClientCache waits until d's client cache listens for changes (the
// watch starts with the first read of a client).
func awaitClientCache(t *testing.T, d *DB) {
	t.Helper()
	if _, err := d.GetClient(t.Context(), "nobody"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("read of a missing client: %v", err)
	}
	for deadline := time.Now().Add(eventually); ; time.Sleep(5 * time.Millisecond) {
		d.clients.mu.Lock()
		on := d.clients.listening
		d.clients.mu.Unlock()
		if on {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the client cache did not start listening within %v", eventually)
		}
	}
}

// awaitClientName reads client id through d until it has name, or fails
// the test after eventually.
func awaitClientName(t *testing.T, d *DB, id, name, why string) {
	t.Helper()
	for deadline := time.Now().Add(eventually); ; time.Sleep(5 * time.Millisecond) {
		c, err := d.GetClient(t.Context(), id)
		if err != nil {
			t.Fatalf("%s: %v", why, err)
		}
		if c.Name == name {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: still %q after %v, want %q", why, c.Name, eventually, name)
		}
	}
}

// settle waits until d's client cache has heard every notice committed so
// far: notices arrive in commit order, so once a marker sent now is heard,
// so is every one before it.
func settle(t *testing.T, d *DB, admin *pgx.Conn) {
	t.Helper()
	marker := fmt.Sprintf("marker %d", time.Now().UnixNano())
	if _, err := admin.Exec(t.Context(), "SELECT pg_notify($1, $2)", changesChannel, marker); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(eventually); ; time.Sleep(2 * time.Millisecond) {
		d.clients.mu.Lock()
		last := d.clients.lastNotice
		d.clients.mu.Unlock()
		if last == marker {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the marker notice did not arrive within %v", eventually)
		}
	}
}

// sneakRename renames a client behind every process's back: an UPDATE
// that sends no notice, as nothing in Keyport would write. What a process
// reads afterwards tells whether it read the database or its cache.
func sneakRename(t *testing.T, admin *pgx.Conn, id, name string) {
	t.Helper()
	tag, err := admin.Exec(t.Context(), `UPDATE clients SET record = jsonb_set(record::jsonb, '{name}', to_jsonb($2::text))::json WHERE id = $1`, id, name)
	if err != nil || tag.RowsAffected() != 1 {
		t.Fatalf("rename client %q behind the processes' backs: %v, %d rows", id, err, tag.RowsAffected())
	}
}

// TestClientCacheFollowsEveryProcessesChanges: a process serves the
// clients it has read from memory, yet never serves one another process
// changed or deleted once the notice of that change has arrived, nor one
// it changed itself; and it keeps nothing while it cannot hear notices.
func TestClientCacheFollowsEveryProcessesChanges(t *testing.T) {
	// Pinged every second, not every 50 ms: on a loaded machine a ping
	// that took over its 2 s would end the watch, empty the cache and
	// make a read that should come from memory go to the database.
	dbs, admin := openProcessesChecking(t, 2, time.Second)
	writer, reader := dbs[0], dbs[1]
	ctx := t.Context()
	awaitClientCache(t, reader)
	if err := writer.CreateClient(ctx, storage.Client{ID: "app", Name: "App", RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	settle(t, reader, admin)
	first, err := reader.GetClient(ctx, "app")
	if err != nil || first.Name != "App" {
		t.Fatalf("first read: %+v, %v", first, err)
	}
	// What a reader gets is its own: changing it changes nothing cached.
	first.RedirectURIs[0] = "https://evil.example/cb"
	sneakRename(t, admin, "app", "Sneaked")
	again, err := reader.GetClient(ctx, "app")
	if err != nil || again.Name != "App" || again.RedirectURIs[0] != "https://app.example/cb" {
		t.Fatalf("second read did not come from the cache, or the cache was changed through a read: %+v, %v", again, err)
	}

	// Another process's change reaches the reader with its notice.
	if _, err := writer.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) { c.Name = "Renamed"; return c, nil }); err != nil {
		t.Fatal(err)
	}
	awaitClientName(t, reader, "app", "Renamed", "update by another process")

	// A process's own change is read back at once, the notice or not.
	if _, err := reader.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) { c.Name = "Own"; return c, nil }); err != nil {
		t.Fatal(err)
	}
	if c, err := reader.GetClient(ctx, "app"); err != nil || c.Name != "Own" {
		t.Fatalf("read right after the process's own update: %+v, %v", c, err)
	}

	// Another process's delete: the client is gone for the reader too.
	if err := writer.DeleteClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(eventually); ; time.Sleep(5 * time.Millisecond) {
		_, err := reader.GetClient(ctx, "app")
		if errors.Is(err, storage.ErrNotFound) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("read of a client another process deleted: %v", err)
		}
	}

	// Clients that do not exist are not kept: creating one is seen at
	// once by a process that asked for it moments before.
	if err := writer.CreateClient(ctx, storage.Client{ID: "app", Name: "Back"}); err != nil {
		t.Fatal(err)
	}
	if c, err := reader.GetClient(ctx, "app"); err != nil || c.Name != "Back" {
		t.Fatalf("read of a client created after a miss: %+v, %v", c, err)
	}

	// The listening connection fails: the cache empties and keeps nothing
	// until it listens again, so a change whose notice was lost is read.
	sneakRename(t, admin, "app", "Unannounced")
	var pids []int
	rows, err := admin.Query(ctx, `SELECT pid FROM pg_stat_activity
		WHERE datname = current_database() AND pid <> pg_backend_pid()
			AND (query LIKE 'LISTEN%' OR query = '-- ping')`)
	if err == nil {
		pids, err = pgx.CollectRows(rows, pgx.RowTo[int])
	}
	if err != nil || len(pids) == 0 {
		t.Fatalf("find the listening sessions: %v, %v", pids, err)
	}
	for _, pid := range pids {
		terminate(t, admin, pid)
	}
	awaitClientName(t, reader, "app", "Unannounced", "change whose notice was lost with the connection")
	// And it listens again: it serves from memory, and a later change is
	// followed once more. Listening again is not the end of the failure's
	// news: the watch may still learn of the other session that was
	// terminated, or a read may overlap the cache's emptying (a read puts
	// only what no emptying overtook), and then the next read is the
	// database's. So a read is tried until one is served from memory.
	awaitClientCache(t, reader)
	for i, deadline := 0, time.Now().Add(eventually); ; i++ {
		before, err := reader.GetClient(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		sneakRename(t, admin, "app", fmt.Sprintf("Unannounced %d", i))
		c, err := reader.GetClient(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		if c.Name == before.Name {
			break // from memory
		}
		if time.Now().After(deadline) {
			t.Fatalf("no read after the watch came back came from the cache: %+v", c)
		}
		awaitClientCache(t, reader)
	}
	if _, err := writer.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) { c.Name = "Heard"; return c, nil }); err != nil {
		t.Fatal(err)
	}
	awaitClientName(t, reader, "app", "Heard", "update after the watch came back")
}

// TestClientCacheEntriesAge: an entry older than clientCacheTTL is read
// again, so even a notice that never came costs at most that long.
func TestClientCacheEntriesAge(t *testing.T) {
	dbs, admin := openProcessesChecking(t, 1, time.Second)
	d := dbs[0]
	ctx := t.Context()
	awaitClientCache(t, d)
	if err := d.CreateClient(ctx, storage.Client{ID: "app", Name: "App"}); err != nil {
		t.Fatal(err)
	}
	settle(t, d, admin)
	if _, err := d.GetClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	sneakRename(t, admin, "app", "Later")
	if c, _ := d.GetClient(ctx, "app"); c.Name != "App" {
		t.Fatalf("fresh entry not served from the cache: %q", c.Name)
	}
	d.clients.mu.Lock()
	e := d.clients.entries["app"]
	e.loadedAt = e.loadedAt.Add(-clientCacheTTL)
	d.clients.entries["app"] = e
	d.clients.mu.Unlock()
	if c, err := d.GetClient(ctx, "app"); err != nil || c.Name != "Later" {
		t.Fatalf("entry past its age served: %+v, %v", c, err)
	}
}

// TestClientCacheReadRacingAChange: a read that began before a change and
// ends after the cache was emptied for it does not put what it read.
func TestClientCacheReadRacingAChange(t *testing.T) {
	var c clientCache
	c.listen(true)
	now := time.Now()
	_, gen, _ := c.get("app", now)
	c.drop() // the change commits while the read runs
	c.put("app", []byte(`{"id":"app"}`), gen, now)
	if _, _, ok := c.get("app", now); ok {
		t.Fatal("a read that raced a change was kept")
	}
	_, gen, _ = c.get("app", now)
	c.put("app", []byte(`{"id":"app"}`), gen, now)
	if _, _, ok := c.get("app", now); !ok {
		t.Fatal("a read that raced nothing was not kept")
	}
	c.listen(false)
	_, gen, _ = c.get("app", now)
	c.put("app", []byte(`{"id":"app"}`), gen, now)
	if _, _, ok := c.get("app", now); ok {
		t.Fatal("kept a client while not listening")
	}
}
