package account

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/storage"
)

// upstreamSource is an upstream provider that creates accounts; the tests
// hand its identities to SignInUpstream as its Exchange would.
type upstreamSource struct{}

func (upstreamSource) ID() string          { return "up" }
func (upstreamSource) Name() string        { return "Upstream" }
func (upstreamSource) ButtonLabel() string { return "Sign in with Upstream" }
func (upstreamSource) Capabilities() directory.Capabilities {
	return directory.Capabilities{Provider: "oidc", OwnedFields: []string{"given_name", "family_name", "name", "email"}}
}
func (upstreamSource) AuthURL(context.Context, string, string, string) (string, error) {
	return "", fmt.Errorf("not used")
}
func (upstreamSource) Exchange(context.Context, string, string, string) (directory.Identity, error) {
	return directory.Identity{}, fmt.Errorf("not used")
}
func (upstreamSource) LinkByVerifiedEmail() bool { return false }
func (upstreamSource) CreateUsers() bool         { return true }

// racingStore is a real store in which another first sign-in creates an
// account named rival just after this one has looked the name up and
// found it free: the interleaving of two sign-ins racing for one name.
type racingStore struct {
	Store
	rival string
	once  sync.Once
}

func (r *racingStore) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	u, err := r.Store.GetUserByLogin(ctx, login)
	if login == r.rival {
		r.once.Do(func() {
			other := storage.User{ID: NewID(), Username: r.rival, Email: "rival@example.org", Source: "up", CreatedAt: time.Now(),
				Identities: []storage.Identity{{Connection: "up", Provider: "oidc", UserID: "sub-rival"}}}
			if cerr := r.Store.CreateUser(ctx, other); cerr != nil {
				panic(cerr)
			}
		})
	}
	return u, err
}

func newUpstreamService(t *testing.T, wrap func(Store) Store) *Service {
	t.Helper()
	svc, _ := NewTestService(t, TestServiceOptions{NoSealer: true, Wrap: wrap, Log: slog.New(slog.DiscardHandler),
		Policy: Policy{Argon2: Argon2Params{MemoryKiB: 7168, Iterations: 1, Parallelism: 1}}})
	svc.Directories.UseDirectories(upstreamSource{})
	return svc
}

// The local part of the email names an account only when the upstream says
// the email is verified: an unverified address is anyone's to claim.
func TestUpstreamUsernameFromVerifiedEmailOnly(t *testing.T) {
	svc := newUpstreamService(t, nil)
	ctx := context.Background()
	_, err := svc.Directories.SignInUpstream(ctx, upstreamSource{}, directory.Identity{ID: "sub-1", Username: "李雷", Email: "admin@example.org"}, "192.0.2.1", "test")
	if ErrorCode(err) != Forbidden {
		t.Errorf("unusable username claim and an unverified email: %v", err)
	}
	u, err := svc.Directories.SignInUpstream(ctx, upstreamSource{}, directory.Identity{ID: "sub-2", Username: "李雷", Email: "li.lei@example.org", EmailVerified: true}, "192.0.2.1", "test")
	if err != nil || u.Username != "li.lei" {
		t.Errorf("unusable username claim and a verified email: %v %q", err, u.Username)
	}
}

// Two first sign-ins race for one derived name: the one that finds it
// taken when it creates the account takes the next suffix instead of
// failing with a conflict.
func TestUpstreamUsernameRace(t *testing.T) {
	svc := newUpstreamService(t, func(db Store) Store { return &racingStore{Store: db, rival: "zoe"} })
	u, err := svc.Directories.SignInUpstream(context.Background(), upstreamSource{}, directory.Identity{ID: "sub-zoe", Username: "Zoë", Email: "zoe@example.org"}, "192.0.2.1", "test")
	if err != nil || u.Username != "zoe-2" {
		t.Errorf("the sign-in that lost the race for zoe: %v %q", err, u.Username)
	}
}

// Many first sign-ins at once whose names all derive to the same one each
// get an account, under distinct names.
func TestUpstreamUsernameParallel(t *testing.T) {
	svc := newUpstreamService(t, nil)
	const n = 12
	names := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			u, err := svc.Directories.SignInUpstream(context.Background(), upstreamSource{}, directory.Identity{ID: fmt.Sprintf("sub-%d", i), Username: "Zoë"}, "192.0.2.1", "test")
			names[i], errs[i] = u.Username, err
		})
	}
	wg.Wait()
	seen := map[string]bool{}
	for i := range n {
		if errs[i] != nil || seen[names[i]] {
			t.Errorf("sign-in %d: %v %q", i, errs[i], names[i])
		}
		seen[names[i]] = true
	}
}
