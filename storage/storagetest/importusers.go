package storagetest

import (
	"fmt"
	"testing"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

// importUserTests hold CreateUsers to CreateUser's checks, all or nothing.
var importUserTests = []test{
	{"CreatesAll", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUsers(ctx, nil), "create no users")
		var batch []storage.User
		for i := range 50 {
			u := newUser(fmt.Sprintf("u%02d", 49-i), fmt.Sprintf("User%02d", i), fmt.Sprintf("user%02d@example.com", i))
			u.Identities = []storage.Identity{{Connection: "corp", Provider: "ldap", UserID: fmt.Sprintf("uid-%d", i)}}
			batch = append(batch, u)
		}
		ok(t, s.CreateUsers(ctx, batch), "create 50 users")
		n, err := s.CountUsers(ctx)
		ok(t, err, "count")
		equal(t, n, 50, "users stored")
		for i, u := range batch {
			got, err := s.GetUser(ctx, u.ID)
			ok(t, err, "get %s", u.ID)
			equal(t, got, u, "stored user %d", i)
			for _, login := range []string{fmt.Sprintf("user%02d", i), fmt.Sprintf("USER%02d@example.com", i)} {
				got, err = s.GetUserByLogin(ctx, login)
				ok(t, err, "get by login %s", login)
				equal(t, got.ID, u.ID, "user of login %s", login)
			}
			got, err = s.GetUserByIdentity(ctx, "corp", fmt.Sprintf("uid-%d", i))
			ok(t, err, "get by identity %d", i)
			equal(t, got.ID, u.ID, "user of identity %d", i)
		}
	}},
	{"AllOrNothing", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		stored := newUser("u1", "alice", "alice@example.com")
		stored.Identities = []storage.Identity{{Connection: "corp", Provider: "ldap", UserID: "a"}}
		ok(t, s.CreateUser(ctx, stored), "create alice")
		fresh := func(id, name string) storage.User { return newUser(id, name, name+"@example.com") }
		withIdentity := func(u storage.User, ext string) storage.User {
			u.Identities = []storage.Identity{{Connection: "corp", Provider: "ldap", UserID: ext}}
			return u
		}
		clashes := map[string][]storage.User{
			"a stored ID":                        {fresh("u2", "bob"), fresh("u1", "carol")},
			"a stored username, in another case": {fresh("u2", "bob"), fresh("u3", "ALICE")},
			"a stored email as username":         {fresh("u2", "bob"), newUser("u3", "Alice@Example.com", "")},
			"a stored identity":                  {fresh("u2", "bob"), withIdentity(fresh("u3", "carol"), "a")},
			"an ID twice in the batch":           {fresh("u2", "bob"), fresh("u2", "carol")},
			"a username twice in the batch":      {fresh("u2", "bob"), newUser("u3", "BOB", "")},
			"an email twice in the batch":        {newUser("u2", "bob", "same@example.com"), newUser("u3", "carol", "SAME@example.com")},
			"one's email another's username":     {newUser("u2", "bob", "carol"), newUser("u3", "carol", "")},
			"an identity twice in the batch":     {withIdentity(fresh("u2", "bob"), "x"), withIdentity(fresh("u3", "carol"), "x")},
		}
		for what, batch := range clashes {
			isErr(t, s.CreateUsers(ctx, batch), storage.ErrConflict, "batch with %s", what)
			n, err := s.CountUsers(ctx)
			ok(t, err, "count")
			equal(t, n, 1, "users after a refused batch with %s", what)
			for _, login := range []string{"bob", "carol", "bob@example.com", "same@example.com"} {
				_, err := s.GetUserByLogin(ctx, login)
				isErr(t, err, storage.ErrNotFound, "login %s after a refused batch with %s", login, what)
			}
			for _, ext := range []string{"x"} {
				_, err := s.GetUserByIdentity(ctx, "corp", ext)
				isErr(t, err, storage.ErrNotFound, "identity %s after a refused batch with %s", ext, what)
			}
		}
		if err := s.CreateUsers(ctx, []storage.User{fresh("u2", "bob"), {ID: "u3"}}); err == nil {
			t.Fatal("a batch with a user without username was stored")
		}
		_, err := s.GetUser(ctx, "u2")
		isErr(t, err, storage.ErrNotFound, "bob after a batch with an invalid user")
		// The names of refused batches are free.
		ok(t, s.CreateUsers(ctx, []storage.User{fresh("u2", "bob"), fresh("u3", "carol")}), "create bob and carol")
		got, err := s.GetUserByLogin(ctx, "carol@example.com")
		ok(t, err, "carol by email")
		equal(t, got.ID, "u3", "carol")
	}},
}
