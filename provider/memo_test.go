package provider

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

// countingStore is a real bolt store that counts user and client reads.
type countingStore struct {
	*bolt.DB
	users, clients atomic.Int32
}

func (c *countingStore) GetUser(ctx context.Context, id string) (storage.User, error) {
	c.users.Add(1)
	return c.DB.GetUser(ctx, id)
}

func (c *countingStore) GetClient(ctx context.Context, id string) (storage.Client, error) {
	c.clients.Add(1)
	return c.DB.GetClient(ctx, id)
}

func TestReadMemoReadsOncePerRequest(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	bg := context.Background()
	now := time.Now()
	for _, id := range []string{"u1", "u2"} {
		if err := db.CreateUser(bg, storage.User{ID: id, Username: id, Email: id + "@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.CreateClient(bg, storage.Client{ID: "app", RedirectURIs: []string{"https://app.example.com/cb"}, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	cs := &countingStore{DB: db}
	s := &opStorage{store: cs}

	ctx := withReadMemo(bg)
	for range 3 {
		if u, err := s.getUser(ctx, "u1"); err != nil || u.Username != "u1" {
			t.Fatalf("getUser u1: %v %v", u.ID, err)
		}
		if c, err := s.getClient(ctx, "app"); err != nil || c.ID != "app" {
			t.Fatalf("getClient: %v %v", c.ID, err)
		}
	}
	if n, m := cs.users.Load(), cs.clients.Load(); n != 1 || m != 1 {
		t.Errorf("one request read the user %d times and the client %d times, want 1 and 1", n, m)
	}
	// Another ID is read, not served from the memo.
	if u, err := s.getUser(ctx, "u2"); err != nil || u.ID != "u2" {
		t.Fatalf("getUser u2 after u1: %q %v", u.ID, err)
	}
	// A miss is not remembered, and an empty ID never matches.
	if _, err := s.getUser(ctx, "nobody"); err == nil {
		t.Fatal("unknown user found")
	}
	if _, err := s.getUser(ctx, ""); err == nil {
		t.Fatal("empty user ID found")
	}
	// A new request reads afresh, so changes are seen at once.
	if _, err := db.UpdateUser(bg, "u1", func(u storage.User) (storage.User, error) { u.Name = "Changed"; return u, nil }); err != nil {
		t.Fatal(err)
	}
	if u, _ := s.getUser(withReadMemo(bg), "u1"); u.Name != "Changed" {
		t.Errorf("next request saw name %q, want the updated one", u.Name)
	}
	// Without a memo (calls outside a request) every call reads.
	before := cs.clients.Load()
	s.getClient(bg, "app")
	s.getClient(bg, "app")
	if got := cs.clients.Load() - before; got != 2 {
		t.Errorf("without a memo: %d client reads for 2 calls", got)
	}
}

// The middleware gives the client-authenticated endpoints and userinfo
// (which reads the token's app for signed userinfo) a memo and leaves the
// others (discovery, JWKS) without the extra context.
func TestMiddlewareAddsMemoToClientEndpoints(t *testing.T) {
	p := &Provider{opts: Options{Issuer: "https://id.example.com", MaxBodyBytes: 1 << 10}, log: slog.New(slog.DiscardHandler)}
	var saw bool
	h := p.middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		saw = memoFrom(r.Context()) != nil
		w.WriteHeader(http.StatusNoContent)
	}))
	for path, want := range map[string]bool{
		"/oauth/token": true, "/oauth/introspect": true, "/revoke": true,
		"/keys": false, "/.well-known/openid-configuration": false, "/userinfo": true,
	} {
		method := http.MethodGet
		if want {
			method = http.MethodPost
		}
		req := httptest.NewRequest(method, path, strings.NewReader("token=x"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		saw = false
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNoContent {
			t.Fatalf("%s: status %d, want the wrapped handler's 204", path, rec.Code)
		}
		if saw != want {
			t.Errorf("%s: memo in context = %v, want %v", path, saw, want)
		}
	}
}
