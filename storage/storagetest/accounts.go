package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

var userTests = []test{
	{"CreateGet", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		alice := newUser("u1", "Alice", "Alice@Example.com")
		ok(t, s.CreateUser(ctx, alice), "create alice")
		got, err := s.GetUser(ctx, "u1")
		ok(t, err, "get alice")
		equal(t, got, alice, "get alice")

		_, err = s.GetUser(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "get missing user")

		isErr(t, s.CreateUser(ctx, newUser("u1", "other", "other@example.com")), storage.ErrConflict, "create with a taken ID")
		isErr(t, s.CreateUser(ctx, newUser("u2", "ALICE", "other@example.com")), storage.ErrConflict, "create with a taken username in another case")
		isErr(t, s.CreateUser(ctx, newUser("u2", "other", "alice@EXAMPLE.com")), storage.ErrConflict, "create with a taken email in another case")
		_, err = s.GetUser(ctx, "u2")
		isErr(t, err, storage.ErrNotFound, "a refused user is not stored")
		_, err = s.GetUserByLogin(ctx, "other")
		isErr(t, err, storage.ErrNotFound, "a refused user's username is not indexed")

		// Empty emails are allowed, and do not collide with each other.
		ok(t, s.CreateUser(ctx, newUser("u2", "bob", "")), "create bob without email")
		ok(t, s.CreateUser(ctx, newUser("u3", "carol", "")), "create carol without email")
		n, err := s.CountUsers(ctx)
		ok(t, err, "count users")
		equal(t, n, 3, "count users")
	}},
	{"GetUserByLogin", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		alice := newUser("u1", "Alice", "Alice@Example.com")
		ok(t, s.CreateUser(ctx, alice), "create alice")
		ok(t, s.CreateUser(ctx, newUser("u2", "bob", "")), "create bob")
		for _, login := range []string{"Alice", "alice", "ALICE", "alice@example.com", "ALICE@EXAMPLE.COM", "Alice@Example.com"} {
			got, err := s.GetUserByLogin(ctx, login)
			ok(t, err, "get by login %q", login)
			equal(t, got, alice, "get by login %q", login)
		}
		for _, login := range []string{"nobody", "", "alic", "alice@example"} {
			_, err := s.GetUserByLogin(ctx, login)
			isErr(t, err, storage.ErrNotFound, "get by login %q", login)
		}
	}},
	{"UsernamesAndEmailsShareOneNamespace", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
		isErr(t, s.CreateUser(ctx, newUser("u2", "Alice@Example.com", "")), storage.ErrConflict, "username equal to another user's email")
		isErr(t, s.CreateUser(ctx, newUser("u2", "bob", "ALICE")), storage.ErrConflict, "email equal to another user's username")
		ok(t, s.CreateUser(ctx, newUser("u2", "bob@example.com", "bob@example.com")), "username equal to one's own email")
		got, err := s.GetUserByLogin(ctx, "BOB@example.com")
		ok(t, err, "get bob by login")
		equal(t, got.ID, "u2", "bob by login")
	}},
	{"List", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		users, err := s.ListUsers(ctx)
		ok(t, err, "list empty")
		equal(t, len(users), 0, "users in an empty store")
		want := map[string]storage.User{}
		for i, name := range []string{"carol", "Alice", "bob"} {
			u := newUser(fmt.Sprintf("u%d", i), name, name+"@example.com")
			want[u.ID] = u
			ok(t, s.CreateUser(ctx, u), "create %s", name)
		}
		users, err = s.ListUsers(ctx)
		ok(t, err, "list")
		got := map[string]storage.User{}
		for _, u := range users {
			got[u.ID] = u
		}
		equal(t, got, want, "listed users")
		equal(t, len(users), 3, "number of listed users")
	}},
	{"UpdateRename", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
		updated, err := s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
			u.Username, u.Email, u.Name = "Alicia", "Alicia@Example.com", "Alicia A."
			u.UpdatedAt = base.Add(time.Minute)
			return u, nil
		})
		ok(t, err, "rename alice")
		equal(t, updated.Username, "Alicia", "returned username")
		got, err := s.GetUser(ctx, "u1")
		ok(t, err, "get renamed")
		equal(t, got, updated, "stored user equals returned user")

		for _, old := range []string{"alice", "alice@example.com"} {
			_, err = s.GetUserByLogin(ctx, old)
			isErr(t, err, storage.ErrNotFound, "old login %q after rename", old)
		}
		for _, login := range []string{"alicia", "ALICIA@example.com"} {
			got, err = s.GetUserByLogin(ctx, login)
			ok(t, err, "new login %q", login)
			equal(t, got.ID, "u1", "user found by new login %q", login)
		}

		// Changing only the case of one's own names is not a conflict.
		_, err = s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
			u.Username, u.Email = "ALICIA", "alicia@example.com"
			return u, nil
		})
		ok(t, err, "change case of own username and email")

		// The old names are free again.
		ok(t, s.CreateUser(ctx, newUser("u2", "alice", "alice@example.com")), "reuse the old names")

		// Clearing the email frees it as well.
		_, err = s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
			u.Email = ""
			return u, nil
		})
		ok(t, err, "clear email")
		_, err = s.GetUserByLogin(ctx, "alicia@example.com")
		isErr(t, err, storage.ErrNotFound, "cleared email")
		ok(t, s.CreateUser(ctx, newUser("u3", "carol", "alicia@example.com")), "reuse the cleared email")
	}},
	{"UpdateConflict", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		alice, bob := newUser("u1", "alice", "alice@example.com"), newUser("u2", "bob", "bob@example.com")
		ok(t, s.CreateUser(ctx, alice), "create alice")
		ok(t, s.CreateUser(ctx, bob), "create bob")
		cases := map[string]func(u storage.User) storage.User{
			"username":         func(u storage.User) storage.User { u.Username = "ALICE"; return u },
			"email":            func(u storage.User) storage.User { u.Email = "Alice@example.com"; return u },
			"username = email": func(u storage.User) storage.User { u.Username = "alice@example.com"; return u },
		}
		for name, change := range cases {
			_, err := s.UpdateUser(ctx, "u2", func(u storage.User) (storage.User, error) {
				u.Name = "changed"
				return change(u), nil
			})
			isErr(t, err, storage.ErrConflict, "colliding %s change", name)
			got, err := s.GetUser(ctx, "u2")
			ok(t, err, "get bob")
			equal(t, got, bob, "bob after a refused %s change", name)
			for login, id := range map[string]string{"bob": "u2", "bob@example.com": "u2", "alice": "u1", "alice@example.com": "u1"} {
				got, err := s.GetUserByLogin(ctx, login)
				ok(t, err, "login %q after a refused %s change", login, name)
				equal(t, got.ID, id, "owner of %q after a refused %s change", login, name)
			}
		}
	}},
	{"UpdateErrors", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		alice := newUser("u1", "alice", "alice@example.com")
		ok(t, s.CreateUser(ctx, alice), "create alice")
		_, err := s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
			u.Username, u.Name = "changed", "changed"
			u.Groups[0] = "changed"
			return u, errBoom
		})
		isErr(t, err, errBoom, "update whose fn fails")
		got, err := s.GetUser(ctx, "u1")
		ok(t, err, "get alice")
		equal(t, got, alice, "alice after a failed update")
		_, err = s.GetUserByLogin(ctx, "changed")
		isErr(t, err, storage.ErrNotFound, "username of a failed update")

		called := false
		_, err = s.UpdateUser(ctx, "nobody", func(u storage.User) (storage.User, error) {
			called = true
			return u, nil
		})
		isErr(t, err, storage.ErrNotFound, "update a missing user")
		equal(t, called, false, "fn called for a missing user")
	}},
	{"Delete", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
		ok(t, s.CreateUser(ctx, newUser("u2", "bob", "")), "create bob")
		ok(t, s.DeleteUser(ctx, "u1", time.Time{}), "delete alice")
		_, err := s.GetUser(ctx, "u1")
		isErr(t, err, storage.ErrNotFound, "get deleted user")
		_, err = s.GetUserByLogin(ctx, "alice@example.com")
		isErr(t, err, storage.ErrNotFound, "login of deleted user")
		isErr(t, s.DeleteUser(ctx, "u1", time.Time{}), storage.ErrNotFound, "delete again")
		n, err := s.CountUsers(ctx)
		ok(t, err, "count")
		equal(t, n, 1, "users left")
		ok(t, s.CreateUser(ctx, newUser("u3", "alice", "alice@example.com")), "reuse a deleted user's names")
	}},
	{"DeleteTakesSessionsTokensAndGrants", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create alice")
		ok(t, s.CreateUser(ctx, newUser("u2", "bob", "")), "create bob")
		for _, uid := range []string{"u1", "u2"} {
			ok(t, s.CreateSession(ctx, newSession("s-"+uid, uid, now, time.Hour)), "session of %s", uid)
			r := newRefresh("r-"+uid, "f-"+uid, uid, "app", now, time.Hour)
			ok(t, s.CreateTokens(ctx, newAccess("a-"+uid, "f-"+uid, uid, "app", now, time.Hour), &r), "tokens of %s", uid)
			ok(t, s.PutGrant(ctx, storage.Grant{UserID: uid, ClientID: "app", Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}, nil), "grant of %s", uid)
		}
		ok(t, s.DeleteUser(ctx, "u1", time.Time{}), "delete alice")
		_, err := s.GetSession(ctx, "s-u1")
		isErr(t, err, storage.ErrNotFound, "session of a deleted user")
		_, err = s.GetAccessToken(ctx, "a-u1")
		isErr(t, err, storage.ErrNotFound, "access token of a deleted user")
		_, err = s.GetRefreshToken(ctx, "h-r-u1")
		isErr(t, err, storage.ErrNotFound, "refresh token of a deleted user")
		_, err = s.GetGrant(ctx, "u1", "app")
		isErr(t, err, storage.ErrNotFound, "grant of a deleted user")

		_, err = s.GetSession(ctx, "s-u2")
		ok(t, err, "bob's session")
		_, err = s.GetAccessToken(ctx, "a-u2")
		ok(t, err, "bob's access token")
		_, err = s.GetRefreshToken(ctx, "h-r-u2")
		ok(t, err, "bob's refresh token")
		_, err = s.GetGrant(ctx, "u2", "app")
		ok(t, err, "bob's grant")
	}},
	{"ConcurrentCreatesOfOneName", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		// Many connections take one email at once: exactly one wins,
		// however the store interleaves them (a unique index, not a read
		// before the write, for a store with concurrent writers).
		ctx := t.Context()
		errs := concurrently(16, func(i int) error {
			return s.CreateUser(ctx, newUser(fmt.Sprintf("u%d", i), fmt.Sprintf("user%d", i), "same@example.com"))
		})
		wins := 0
		for i, err := range errs {
			if err == nil {
				wins++
				continue
			}
			isErr(t, err, storage.ErrConflict, "creation %d", i)
		}
		equal(t, wins, 1, "creations of one email that succeeded")
		n, err := s.CountUsers(ctx)
		ok(t, err, "count")
		equal(t, n, 1, "users stored")
	}},
	{"ConcurrentUpdatesLoseNothing", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		// Updates of one user at once each see the one before: none is
		// lost, and each fn runs once.
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create alice")
		const n = 20
		var mu sync.Mutex
		calls := map[int]int{}
		errs := concurrently(n, func(i int) error {
			_, err := s.UpdateUser(ctx, "u1", func(u storage.User) (storage.User, error) {
				mu.Lock()
				calls[i]++
				mu.Unlock()
				u.LoginsCount++
				return u, nil
			})
			return err
		})
		for i, err := range errs {
			ok(t, err, "update %d", i)
			equal(t, calls[i], 1, "calls of fn %d", i)
		}
		got, err := s.GetUser(ctx, "u1")
		ok(t, err, "get alice")
		equal(t, got.LoginsCount, n, "LoginsCount after concurrent increments")
	}},
}

var clientTests = []test{
	// The client authentication fields come back as they went in: the
	// method, the key set's bytes, the URI, the sealed secret.
	{"AuthenticationFields", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		app := newClient("app")
		app.TokenEndpointAuthMethod = "private_key_jwt"
		app.JWKS = []byte(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)
		ok(t, s.CreateClient(ctx, app), "create app")
		got, err := s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, got, app, "app with its keys")
		_, err = s.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) {
			c.TokenEndpointAuthMethod, c.JWKS, c.JWKSURI, c.SealedSecret = "client_secret_jwt", nil, "https://app.example/jwks", []byte{0, 1, 0xff}
			return c, nil
		})
		ok(t, err, "update app")
		got, err = s.GetClient(ctx, "app")
		ok(t, err, "get updated app")
		equal(t, [4]any{got.TokenEndpointAuthMethod, len(got.JWKS), got.JWKSURI, string(got.SealedSecret)},
			[4]any{"client_secret_jwt", 0, "https://app.example/jwks", "\x00\x01\xff"}, "updated authentication fields")
	}},
	{"CRUD", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		app, other := newClient("app"), newClient("other")
		ok(t, s.CreateClient(ctx, app), "create app")
		ok(t, s.CreateClient(ctx, other), "create other")
		isErr(t, s.CreateClient(ctx, newClient("app")), storage.ErrConflict, "create with a taken ID")
		got, err := s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, got, app, "get app")
		_, err = s.GetClient(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "get missing client")

		list, err := s.ListClients(ctx)
		ok(t, err, "list")
		slices.SortFunc(list, func(a, b storage.Client) int { return strings.Compare(a.ID, b.ID) })
		equal(t, list, []storage.Client{app, other}, "listed clients")

		updated, err := s.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) {
			c.Name, c.SkipConsent = "Renamed", true
			c.RedirectURIs = append(c.RedirectURIs, "https://app.example/cb2")
			return c, nil
		})
		ok(t, err, "update app")
		got, err = s.GetClient(ctx, "app")
		ok(t, err, "get updated app")
		equal(t, got, updated, "stored client equals returned client")
		equal(t, got.Name, "Renamed", "updated name")

		_, err = s.UpdateClient(ctx, "app", func(c storage.Client) (storage.Client, error) {
			c.Name = "failed"
			return c, errBoom
		})
		isErr(t, err, errBoom, "update whose fn fails")
		got, err = s.GetClient(ctx, "app")
		ok(t, err, "get app")
		equal(t, got, updated, "app after a failed update")
		_, err = s.UpdateClient(ctx, "nobody", func(c storage.Client) (storage.Client, error) { return c, nil })
		isErr(t, err, storage.ErrNotFound, "update missing client")

		ok(t, s.DeleteClient(ctx, "app"), "delete app")
		_, err = s.GetClient(ctx, "app")
		isErr(t, err, storage.ErrNotFound, "get deleted client")
		isErr(t, s.DeleteClient(ctx, "app"), storage.ErrNotFound, "delete again")
		list, err = s.ListClients(ctx)
		ok(t, err, "list")
		equal(t, list, []storage.Client{other}, "clients left")
	}},
	{"EveryFieldKept", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		// The fields an admin edits (access rules, lifetimes, a rotated
		// secret's grace) come back as they were written, on create and on
		// update.
		ctx := t.Context()
		c := newClient("full")
		c.PostLogoutRedirectURIs = []string{"https://full.example/bye"}
		c.Public, c.AccessTokenJWT, c.SkipConsent = false, true, true
		c.UpdatedAt = base.Add(time.Minute)
		c.AllowedGroups = []string{"Staff", "ops"}
		c.AllowedScopes = []string{"openid", "email"}
		c.AccessTokenLifetime, c.IDTokenLifetime, c.RefreshTokenLifetime = 5*time.Minute, 10*time.Minute, 48*time.Hour
		c.PreviousSecretHash, c.PreviousSecretUntil = "cd34", base.Add(24*time.Hour)
		ok(t, s.CreateClient(ctx, c), "create")
		got, err := s.GetClient(ctx, "full")
		ok(t, err, "get")
		equal(t, got, c, "created client")

		updated, err := s.UpdateClient(ctx, "full", func(c storage.Client) (storage.Client, error) {
			c.AllowedGroups, c.AllowedScopes = nil, nil
			c.AccessTokenLifetime, c.IDTokenLifetime, c.RefreshTokenLifetime = 0, 0, 0
			c.PreviousSecretHash, c.PreviousSecretUntil = "", time.Time{}
			return c, nil
		})
		ok(t, err, "update")
		got, err = s.GetClient(ctx, "full")
		ok(t, err, "get updated")
		equal(t, got, updated, "updated client")
		equal(t, got.AllowedGroups == nil && got.PreviousSecretUntil.IsZero() && got.AccessTokenLifetime == 0, true, "cleared fields stay cleared")
	}},
}

var sessionTests = []test{
	{"CRUD", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		s1 := newSession("s1", "u1", now, time.Hour)
		ok(t, s.CreateSession(ctx, s1), "create s1")
		isErr(t, s.CreateSession(ctx, newSession("s1", "u2", now, time.Hour)), storage.ErrConflict, "create with a taken ID")
		got, err := s.GetSession(ctx, "s1")
		ok(t, err, "get s1")
		equal(t, got, s1, "get s1")
		_, err = s.GetSession(ctx, "nobody")
		isErr(t, err, storage.ErrNotFound, "get missing session")
		ok(t, s.DeleteSession(ctx, "s1"), "delete s1")
		_, err = s.GetSession(ctx, "s1")
		isErr(t, err, storage.ErrNotFound, "get deleted session")
		isErr(t, s.DeleteSession(ctx, "s1"), storage.ErrNotFound, "delete again")
	}},
	{"Expiry", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateSession(ctx, newSession("short", "u1", c.Now(), time.Hour)), "create short")
		ok(t, s.CreateSession(ctx, newSession("long", "u1", c.Now(), 2*time.Hour)), "create long")
		c.Add(time.Hour - time.Second)
		_, err := s.GetSession(ctx, "short")
		ok(t, err, "session just before it expires")
		c.Add(time.Second)
		_, err = s.GetSession(ctx, "short")
		isErr(t, err, storage.ErrNotFound, "expired session")
		_, err = s.GetSession(ctx, "long")
		ok(t, err, "live session")
	}},
	{"AddSessionClient", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateSession(ctx, newSession("s1", "u1", c.Now(), time.Hour)), "create s1")
		ok(t, s.CreateSession(ctx, newSession("s2", "u1", c.Now(), time.Hour)), "create s2")
		for _, id := range []string{"app-b", "app-a", "app-b"} {
			ok(t, s.AddSessionClient(ctx, "s1", id), "add %s to s1", id)
		}
		got, err := s.GetSession(ctx, "s1")
		ok(t, err, "get s1")
		equal(t, got.ClientIDs, []string{"app-b", "app-a"}, "apps of s1, in order, once each")
		other, err := s.GetSession(ctx, "s2")
		ok(t, err, "get s2")
		equal(t, len(other.ClientIDs), 0, "apps of the other session")
		isErr(t, s.AddSessionClient(ctx, "nobody", "app-a"), storage.ErrNotFound, "add to a missing session")
		// A code's tokens record their app on the session in their commit.
		ok(t, s.CreateCodeTokens(ctx, "a-code", newAccess("a9", "", "u1", "app-c", c.Now(), time.Hour), nil, "s2"), "code tokens in s2")
		ok(t, s.CreateCodeTokens(ctx, "b-code", newAccess("a10", "", "u1", "app-d", c.Now(), time.Hour), nil, "gone"), "code tokens in a session that ended")
		other, err = s.GetSession(ctx, "s2")
		ok(t, err, "get s2")
		equal(t, other.ClientIDs, []string{"app-c"}, "apps of s2 after a code exchange")
		c.Add(time.Hour)
		isErr(t, s.AddSessionClient(ctx, "s2", "app-a"), storage.ErrNotFound, "add to an expired session")
	}},
	{"DeleteUserSessions", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		for _, sess := range []storage.Session{
			newSession("s1", "u1", now, time.Hour),
			newSession("s2", "u1", now, time.Hour),
			newSession("s3", "u1", now, time.Hour),
			newSession("s4", "u2", now, time.Hour),
			newSession("s5", "u10", now, time.Hour), // shares a prefix with u1
		} {
			ok(t, s.CreateSession(ctx, sess), "create %s", sess.ID)
		}
		ok(t, s.DeleteSession(ctx, "s1"), "delete s1")
		n, err := s.DeleteUserSessions(ctx, "u1")
		ok(t, err, "delete u1's sessions")
		equal(t, n, 2, "sessions of u1 deleted")
		for _, id := range []string{"s1", "s2", "s3"} {
			_, err = s.GetSession(ctx, id)
			isErr(t, err, storage.ErrNotFound, "session %s of u1", id)
		}
		for _, id := range []string{"s4", "s5"} {
			_, err = s.GetSession(ctx, id)
			ok(t, err, "session %s of another user", id)
		}
		n, err = s.DeleteUserSessions(ctx, "u1")
		ok(t, err, "delete u1's sessions again")
		equal(t, n, 0, "sessions of u1 deleted the second time")
		ok(t, s.CreateSession(ctx, newSession("s1", "u1", now, time.Hour)), "a deleted session's ID is free again")
	}},
}

var grantTests = []test{
	{"Upsert", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		_, err := s.GetGrant(ctx, "u1", "app")
		isErr(t, err, storage.ErrNotFound, "missing grant")
		g := storage.Grant{UserID: "u1", ClientID: "app", Scopes: []string{"openid"}, CreatedAt: now, UpdatedAt: now}
		ok(t, s.PutGrant(ctx, g, nil), "put grant")
		other := storage.Grant{UserID: "u1", ClientID: "other", Scopes: []string{"openid", "email"}, CreatedAt: now, UpdatedAt: now}
		ok(t, s.PutGrant(ctx, other, nil), "put grant for another client")
		got, err := s.GetGrant(ctx, "u1", "app")
		ok(t, err, "get grant")
		equal(t, got, g, "grant")

		g.Scopes, g.UpdatedAt = []string{"openid", "profile"}, now.Add(time.Hour)
		ok(t, s.PutGrant(ctx, g, nil), "replace grant")
		got, err = s.GetGrant(ctx, "u1", "app")
		ok(t, err, "get replaced grant")
		equal(t, got, g, "replaced grant")
		got, err = s.GetGrant(ctx, "u1", "other")
		ok(t, err, "get other grant")
		equal(t, got, other, "other client's grant")
		_, err = s.GetGrant(ctx, "u2", "app")
		isErr(t, err, storage.ErrNotFound, "another user's grant")
	}},
}

var keyTests = []test{
	{"OrderReplaceDelete", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		keys, err := s.ListSigningKeys(ctx)
		ok(t, err, "list empty")
		equal(t, len(keys), 0, "keys in an empty store")
		key := func(id string, created time.Time) storage.SigningKey {
			return storage.SigningKey{ID: id, Algorithm: "RS256", SealedKey: []byte("sealed-" + id), PublicJWK: []byte(`{"kid":"` + id + `"}`), CreatedAt: created}
		}
		// IDs sort the other way round from creation times.
		k1, k2, k3 := key("c", base), key("a", base.Add(2*time.Hour)), key("b", base.Add(time.Hour))
		for _, k := range []storage.SigningKey{k2, k1, k3} {
			ok(t, s.PutSigningKey(ctx, k), "put %s", k.ID)
		}
		keys, err = s.ListSigningKeys(ctx)
		ok(t, err, "list")
		equal(t, keys, []storage.SigningKey{k1, k3, k2}, "keys oldest first")

		k1.RetiredAt, k1.VerifyTill = base.Add(3*time.Hour), base.Add(4*time.Hour)
		ok(t, s.PutSigningKey(ctx, k1), "replace k1")
		ok(t, s.DeleteSigningKey(ctx, k3.ID), "delete k3")
		isErr(t, s.DeleteSigningKey(ctx, k3.ID), storage.ErrNotFound, "delete k3 again")
		keys, err = s.ListSigningKeys(ctx)
		ok(t, err, "list")
		equal(t, keys, []storage.SigningKey{k1, k2}, "keys after replace and delete")
	}},
}

var settingTests = []test{
	{"GetPut", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		_, err := s.GetSetting(ctx, "secret")
		isErr(t, err, storage.ErrNotFound, "missing setting")
		value := []byte{0, 1, 2, 0xff}
		ok(t, s.PutSetting(ctx, "secret", value), "put")
		value[0] = 9 // the store must have kept its own copy
		got, err := s.GetSetting(ctx, "secret")
		ok(t, err, "get")
		equal(t, got, []byte{0, 1, 2, 0xff}, "value")
		got[1] = 9 // nor may it hand out its own buffer
		got, err = s.GetSetting(ctx, "secret")
		ok(t, err, "get again")
		equal(t, got, []byte{0, 1, 2, 0xff}, "value after the caller changed what it got")
		ok(t, s.PutSetting(ctx, "secret", []byte("v2")), "overwrite")
		got, err = s.GetSetting(ctx, "secret")
		ok(t, err, "get")
		equal(t, got, []byte("v2"), "overwritten value")
		ok(t, s.PutSetting(ctx, "flag", []byte{}), "put empty")
		got, err = s.GetSetting(ctx, "flag")
		ok(t, err, "an empty value is a value")
		equal(t, len(got), 0, "length of an empty value")
	}},
}

var oneTimeTokenTests = []test{
	{"ConsumeOnce", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		tok := storage.OneTimeToken{Hash: "h1", Purpose: "setup", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		ok(t, s.CreateOneTimeToken(ctx, tok), "create")
		isErr(t, s.CreateOneTimeToken(ctx, tok), storage.ErrConflict, "create with a taken hash")

		got, err := s.PeekOneTimeToken(ctx, "h1", "setup")
		ok(t, err, "peek")
		equal(t, got, tok, "peeked token")
		_, err = s.PeekOneTimeToken(ctx, "h1", "reset")
		isErr(t, err, storage.ErrNotFound, "peek for another purpose")
		_, err = s.ConsumeOneTimeToken(ctx, "h1", "reset")
		isErr(t, err, storage.ErrNotFound, "consume for another purpose")
		_, err = s.PeekOneTimeToken(ctx, "h1", "setup")
		ok(t, err, "a token survives being presented for another purpose")

		got, err = s.ConsumeOneTimeToken(ctx, "h1", "setup")
		ok(t, err, "consume")
		equal(t, got, tok, "consumed token")
		_, err = s.ConsumeOneTimeToken(ctx, "h1", "setup")
		isErr(t, err, storage.ErrNotFound, "consume twice")
		_, err = s.PeekOneTimeToken(ctx, "h1", "setup")
		isErr(t, err, storage.ErrNotFound, "peek a consumed token")
		_, err = s.ConsumeOneTimeToken(ctx, "nobody", "setup")
		isErr(t, err, storage.ErrNotFound, "consume a missing token")
	}},
	{"OnePerUser", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		link := func(hash, user, purpose string, one bool) storage.OneTimeToken {
			return storage.OneTimeToken{Hash: hash, Purpose: purpose, UserID: user, OnePerUser: one, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		}
		live := func(hash, purpose string) bool {
			_, err := s.PeekOneTimeToken(ctx, hash, purpose)
			if err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("peek %s: %v", hash, err)
			}
			return err == nil
		}
		ok(t, s.CreateOneTimeToken(ctx, link("a1", "u1", "change", true)), "first link")
		ok(t, s.CreateOneTimeToken(ctx, link("other-purpose", "u1", "verify", true)), "another purpose")
		ok(t, s.CreateOneTimeToken(ctx, link("other-user", "u2", "change", true)), "another user")
		ok(t, s.CreateOneTimeToken(ctx, link("many", "u1", "change", false)), "a token that is not one per user")
		ok(t, s.CreateOneTimeToken(ctx, link("a2", "u1", "change", true)), "second link")
		equal(t, live("a1", "change"), false, "the earlier link works")
		for _, h := range []string{"a2", "many", "other-user"} {
			equal(t, live(h, "change"), true, "token %s works", h)
		}
		equal(t, live("other-purpose", "verify"), true, "the link for another purpose works")
		got, err := s.UserOneTimeToken(ctx, "u1", "change")
		ok(t, err, "the user's link")
		equal(t, got.Hash, "a2", "the user's link")
		_, err = s.UserOneTimeToken(ctx, "u3", "change")
		isErr(t, err, storage.ErrNotFound, "the link of a user without one")

		// Spent, the newest leaves no trace: a later one replaces nothing
		// live, and one after that still replaces its predecessor.
		_, err = s.ConsumeOneTimeToken(ctx, "a2", "change")
		ok(t, err, "spend the second link")
		_, err = s.UserOneTimeToken(ctx, "u1", "change")
		isErr(t, err, storage.ErrNotFound, "the user's link once spent")
		ok(t, s.CreateOneTimeToken(ctx, link("a3", "u1", "change", true)), "third link")
		ok(t, s.CreateOneTimeToken(ctx, link("a4", "u1", "change", true)), "fourth link")
		equal(t, live("a3", "change"), false, "the third link after a fourth")
		equal(t, live("a4", "change"), true, "the fourth link")
		c.Add(2 * time.Hour)
		_, err = s.UserOneTimeToken(ctx, "u1", "change")
		isErr(t, err, storage.ErrNotFound, "the user's link once expired")
		c.Add(-2 * time.Hour)

		// Swept after expiry, likewise.
		c.Add(2 * time.Hour)
		_, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		now = c.Now()
		ok(t, s.CreateOneTimeToken(ctx, link("a5", "u1", "change", true)), "a link after the sweep")
		equal(t, live("a5", "change"), true, "the link after the sweep")

		// A refused create (a taken hash) replaces nothing.
		isErr(t, s.CreateOneTimeToken(ctx, link("a5", "u1", "change", true)), storage.ErrConflict, "create with a taken hash")
		equal(t, live("a5", "change"), true, "the link after a refused create")
	}},
	{"ConcurrentConsume", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: "h1", Purpose: "setup", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}), "create")
		errs := concurrently(8, func(int) error {
			_, err := s.ConsumeOneTimeToken(ctx, "h1", "setup")
			return err
		})
		wins := 0
		for i, err := range errs {
			if err == nil {
				wins++
				continue
			}
			isErr(t, err, storage.ErrNotFound, "consumer %d", i)
		}
		equal(t, wins, 1, "successful consumptions")
	}},
	{"Expiry", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: "h1", Purpose: "setup", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}), "create")
		c.Add(time.Hour)
		_, err := s.PeekOneTimeToken(ctx, "h1", "setup")
		isErr(t, err, storage.ErrNotFound, "peek an expired token")
		_, err = s.ConsumeOneTimeToken(ctx, "h1", "setup")
		isErr(t, err, storage.ErrNotFound, "consume an expired token")
	}},
	// A hash is created once, however many try at once: the provider
	// records the jti of each client assertion this way, and a replay on
	// another replica must find it taken.
	{"ConcurrentCreate", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		errs := concurrently(8, func(int) error {
			return s.CreateOneTimeToken(ctx, storage.OneTimeToken{Hash: "jti", Purpose: "client_assertion", CreatedAt: now, ExpiresAt: now.Add(time.Minute)})
		})
		wins := 0
		for i, err := range errs {
			if err == nil {
				wins++
				continue
			}
			isErr(t, err, storage.ErrConflict, "creator %d", i)
		}
		equal(t, wins, 1, "successful creations")
	}},
	// An expired record holds its hash until it is swept, then the hash
	// is free again.
	{"SweptHashFree", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		rec := storage.OneTimeToken{Hash: "jti", Purpose: "client_assertion", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
		ok(t, s.CreateOneTimeToken(ctx, rec), "create")
		c.Add(2 * time.Minute)
		isErr(t, s.CreateOneTimeToken(ctx, rec), storage.ErrConflict, "create over an expired record not yet swept")
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.OneTimeTokens, 1, "one-time tokens swept")
		rec.CreatedAt, rec.ExpiresAt = c.Now(), c.Now().Add(time.Minute)
		ok(t, s.CreateOneTimeToken(ctx, rec), "create after the sweep")
	}},
}

func attempt(id, userID string, at time.Time) storage.LoginAttempt {
	return storage.LoginAttempt{ID: id, UserID: userID, Login: "login-" + userID, Time: at, IP: "192.0.2.1", UserAgent: "test", Method: "password", Success: true}
}

func attemptIDs(as []storage.LoginAttempt) []string {
	return idsOf(as, func(a storage.LoginAttempt) string { return a.ID })
}

var loginAttemptTests = []test{
	{"NewestFirst", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		for _, i := range []int{3, 0, 4, 1, 2} { // added out of order
			ok(t, s.AddLoginAttempt(ctx, attempt(fmt.Sprintf("a%d", i), "u1", now.Add(time.Duration(i)*time.Minute))), "add a%d", i)
		}
		failed := attempt("b0", "u10", now.Add(time.Hour)) // shares a prefix with u1
		failed.Success, failed.Reason = false, "bad password"
		ok(t, s.AddLoginAttempt(ctx, failed), "add b0")
		ok(t, s.AddLoginAttempt(ctx, attempt("c0", "", now.Add(time.Hour))), "add an attempt that matched nobody")
		ok(t, s.AddLoginAttempt(ctx, attempt("d0", "u0", now.Add(time.Hour))), "add d0")

		got, err := s.ListLoginAttempts(ctx, "u1", 3)
		ok(t, err, "list 3 of u1")
		equal(t, attemptIDs(got), []string{"a4", "a3", "a2"}, "newest 3 of u1")
		equal(t, got[0], attempt("a4", "u1", now.Add(4*time.Minute)), "newest attempt")
		got, err = s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "list all of u1")
		equal(t, attemptIDs(got), []string{"a4", "a3", "a2", "a1", "a0"}, "all of u1")
		got, err = s.ListLoginAttempts(ctx, "u1", 100)
		ok(t, err, "list up to 100 of u1")
		equal(t, len(got), 5, "attempts of u1")
		got, err = s.ListLoginAttempts(ctx, "u10", 10)
		ok(t, err, "list u10")
		equal(t, got, []storage.LoginAttempt{failed}, "attempts of u10")
		got, err = s.ListLoginAttempts(ctx, "nobody", 10)
		ok(t, err, "list nobody")
		equal(t, len(got), 0, "attempts of nobody")
	}},
	{"Capped", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		for i := range 105 {
			ok(t, s.AddLoginAttempt(ctx, attempt(fmt.Sprintf("a%03d", i), "u1", now.Add(time.Duration(i)*time.Second))), "add a%03d", i)
		}
		ok(t, s.AddLoginAttempt(ctx, attempt("other", "u2", now)), "add another user's attempt")
		got, err := s.ListLoginAttempts(ctx, "u1", 0)
		ok(t, err, "list")
		equal(t, len(got), 100, "attempts kept")
		equal(t, got[0].ID, "a104", "newest kept")
		equal(t, got[99].ID, "a005", "oldest kept")
		got, err = s.ListLoginAttempts(ctx, "u2", 0)
		ok(t, err, "list u2")
		equal(t, len(got), 1, "another user's attempts")
	}},
}
