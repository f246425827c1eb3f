package storagetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

func ptr[T any](v T) *T { return &v }

// searchAll follows the cursor of q to the end and returns every user's ID.
func searchAll(ctx context.Context, t *testing.T, s storage.Store, q storage.UserQuery) []string {
	t.Helper()
	out := []string{}
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("the cursor of %+v never ends", q)
		}
		page, err := s.SearchUsers(ctx, q)
		ok(t, err, "search users %+v", q)
		limit := cmp.Or(q.Limit, storage.DefaultUserLimit)
		if len(page.Users) > limit || (page.Next != "" && len(page.Users) < limit) {
			t.Fatalf("page of %d users with next %q, limit %d", len(page.Users), page.Next, limit)
		}
		out = append(out, userIDs(page.Users)...)
		if page.Next == "" {
			return out
		}
		q.Cursor = page.Next
	}
}

func userIDs(users []storage.User) []string {
	return idsOf(users, func(u storage.User) string { return u.ID })
}

// searchModel is what SearchUsers must return, computed the plain way:
// every user tested against the query, then sorted.
func searchModel(users []storage.User, passkeys map[string]bool, q storage.UserQuery) []string {
	search := storage.Fold(q.Search)
	var keep []storage.User
	for _, u := range users {
		text := []string{u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, u.Nickname, u.PhoneNumber}
		if !slices.ContainsFunc(text, func(f string) bool { return strings.Contains(storage.Fold(f), search) }) ||
			(q.Source != nil && u.Source != *q.Source) ||
			(q.Blocked != nil && u.Blocked != *q.Blocked) ||
			(q.Admin != nil && u.Admin != *q.Admin) ||
			(q.TwoFactor != nil && (len(u.TOTPSecret) > 0 || passkeys[u.ID]) != *q.TwoFactor) ||
			(q.Group != "" && !slices.ContainsFunc(u.Groups, func(g string) bool { return storage.Fold(g) == storage.Fold(q.Group) })) {
			continue
		}
		keep = append(keep, u)
	}
	slices.SortFunc(keep, func(a, b storage.User) int {
		at, bt := a.CreatedAt, b.CreatedAt
		if q.Sort == storage.UserSortLastSignIn {
			at, bt = a.LastLogin, b.LastLogin
		}
		return cmp.Or(bt.Compare(at), strings.Compare(b.ID, a.ID))
	})
	return userIDs(keep)
}

// searchFixture creates a dozen users that differ in every field a
// filter looks at, and returns them with who holds a passkey.
func searchFixture(ctx context.Context, t *testing.T, s storage.Store) ([]storage.User, map[string]bool) {
	t.Helper()
	mk := func(i int, username, email string, edit func(*storage.User)) storage.User {
		u := newUser(fmt.Sprintf("s%02d", i), username, email)
		u.Groups = nil
		u.CreatedAt = base.Add(time.Duration(i%7) * time.Hour) // ties, broken by ID
		if i%3 != 0 {
			u.LastLogin = base.Add(time.Duration(20-i) * time.Minute)
		}
		edit(&u)
		return u
	}
	users := []storage.User{
		mk(0, "alice", "alice@example.com", func(u *storage.User) { u.Admin, u.Groups = true, []string{"Staff"} }),
		mk(1, "bob", "bob@example.org", func(u *storage.User) { u.Blocked, u.Groups = true, []string{"staff", "Ops"} }),
		mk(2, "Ärger", "aerger@example.com", func(u *storage.User) { u.Name, u.FamilyName = "Anna Ärger", "Ärger" }),
		mk(3, "strasse", "", func(u *storage.User) { u.Name, u.Source = "Hans Straße", "ldap1" }),
		mk(4, "carol", "carol@EXAMPLE.com", func(u *storage.User) { u.Nickname, u.TOTPSecret = "Caz", []byte("sealed") }),
		mk(5, "dave", "dave@example.net", func(u *storage.User) { u.PhoneNumber, u.Source = "+49 170 1234567", "ldap2" }),
		mk(6, "eve", "eve@example.com", func(u *storage.User) { u.Admin, u.Blocked, u.Groups = true, true, []string{"OPS"} }),
		mk(7, "frank", "frank@example.com", func(u *storage.User) { u.GivenName, u.Source, u.Groups = "Franz", "ldap1", []string{"Straße"} }),
		mk(8, "grace", "grace@example.com", func(u *storage.User) { u.Admin, u.TOTPSecret = true, []byte("sealed") }),
		mk(9, "heidi", "heidi@example.com", func(u *storage.User) { u.Groups = []string{"STRASSE", "staff"} }),
		mk(10, "ivan", "ivan@example.com", func(u *storage.User) {}),
		mk(11, "judy", "judy@example.com", func(u *storage.User) { u.Name, u.Source = "Judy Ärgerlich", "ldap2" }),
	}
	for _, u := range users {
		ok(t, s.CreateUser(ctx, u), "create %s", u.Username)
	}
	passkeys := map[string]bool{"s01": true, "s10": true}
	for id := range passkeys {
		ok(t, s.CreateCredential(ctx, storage.Credential{ID: "pk-" + id, UserID: id, Kind: storage.KindPasskey, WebAuthnID: []byte("w-" + id), CreatedAt: base}), "passkey of %s", id)
	}
	// Other credentials are no second factor.
	ok(t, s.CreateCredential(ctx, storage.Credential{ID: "tok", UserID: "s11", Kind: storage.KindAPIToken, Hash: "h-tok", CreatedAt: base}), "API token")
	return users, passkeys
}

// reservedErr checks that err refuses a name as reserved: ErrConflict and
// ErrNameReserved both.
func reservedErr(t *testing.T, err error, what string) {
	t.Helper()
	isErr(t, err, storage.ErrConflict, "%s", what)
	isErr(t, err, storage.ErrNameReserved, "%s", what)
}

var userSearchTests = []test{
	{"EveryFilterAloneAndCombined", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		users, passkeys := searchFixture(ctx, t, s)
		var single []storage.UserQuery
		for _, search := range []string{"", "a", "EXAMPLE.COM", "ärger", "170 12", "caz", "franz", "zzz"} {
			single = append(single, storage.UserQuery{Search: search})
		}
		for _, src := range []string{"", "ldap1", "ldap2", "nowhere"} {
			single = append(single, storage.UserQuery{Source: ptr(src)})
		}
		for _, v := range []bool{true, false} {
			single = append(single, storage.UserQuery{Blocked: ptr(v)}, storage.UserQuery{Admin: ptr(v)}, storage.UserQuery{TwoFactor: ptr(v)})
		}
		for _, g := range []string{"staff", "STAFF", "ops", "strasse", "Straße", "nobody"} {
			single = append(single, storage.UserQuery{Group: g})
		}
		var queries []storage.UserQuery
		for _, q := range single {
			for _, sort := range []string{"", storage.UserSortCreated, storage.UserSortLastSignIn} {
				q.Sort = sort
				queries = append(queries, q)
			}
		}
		// Pairs of filters, and all of them at once.
		for i, a := range single {
			for _, b := range single[i+1:] {
				q := a
				q.Search = cmp.Or(q.Search, b.Search)
				q.Source = cmp.Or(q.Source, b.Source)
				q.Blocked = cmp.Or(q.Blocked, b.Blocked)
				q.Admin = cmp.Or(q.Admin, b.Admin)
				q.TwoFactor = cmp.Or(q.TwoFactor, b.TwoFactor)
				q.Group = cmp.Or(q.Group, b.Group)
				q.Sort = storage.UserSortLastSignIn
				queries = append(queries, q)
			}
		}
		queries = append(queries, storage.UserQuery{Search: "example", Source: ptr(""), Blocked: ptr(false), Admin: ptr(true), TwoFactor: ptr(true), Group: ""})
		matching := 0
		for _, q := range queries {
			want := searchModel(users, passkeys, q)
			if len(want) > 0 {
				matching++
			}
			for _, limit := range []int{0, 2} {
				q.Limit = limit
				equal(t, searchAll(ctx, t, s, q), want, "search %+v", q)
			}
		}
		if matching < len(queries)/2 {
			t.Fatalf("only %d of %d queries match anyone: the fixture tests too little", matching, len(queries))
		}
		// A few by hand, so the model above is not all there is.
		equal(t, searchAll(ctx, t, s, storage.UserQuery{Search: "ÄRGER"}), []string{"s11", "s02"}, "ÄRGER")
		equal(t, searchAll(ctx, t, s, storage.UserQuery{Group: "staff"}), []string{"s09", "s01", "s00"}, "group staff, newest first")
		equal(t, searchAll(ctx, t, s, storage.UserQuery{TwoFactor: ptr(true)}), []string{"s04", "s10", "s08", "s01"}, "TOTP or passkey")
		equal(t, searchAll(ctx, t, s, storage.UserQuery{Source: ptr("")}), []string{"s06", "s04", "s10", "s09", "s02", "s08", "s01", "s00"}, "local accounts")
		equal(t, searchAll(ctx, t, s, storage.UserQuery{Sort: storage.UserSortLastSignIn, Limit: 4}), []string{"s01", "s02", "s04", "s05", "s07", "s08", "s10", "s11", "s09", "s06", "s03", "s00"}, "by last sign-in, never signed in last")
	}},
	{"UnicodeCaseFolding", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		for i, name := range []string{"ärger", "Straße", "STRASSE", "ｆｕｌｌ", "ﬁle", "σίσυφος", "o\u0308ffnen"} {
			ok(t, s.CreateUser(ctx, newUser(fmt.Sprintf("u%d", i), name, "")), "create %q", name)
		}
		for _, c := range []struct {
			search string
			want   []string
		}{
			{"ÄRGER", []string{"u0"}},
			{"a\u0308rg", []string{"u0"}}, // decomposed
			{"straße", []string{"u2", "u1"}},
			{"STRASSE", []string{"u2", "u1"}},
			{"ẞ", []string{"u2", "u1"}}, // capital sharp s
			{"FULL", []string{"u3"}},    // full-width letters
			{"fil", []string{"u4"}},     // a ligature
			{"ΣΊΣΥΦΟΣ", []string{"u5"}}, // final sigma
			{"ÖFF", []string{"u6"}},     // composed finds decomposed
		} {
			got := searchAll(ctx, t, s, storage.UserQuery{Search: c.search})
			slices.Sort(got)
			slices.Sort(c.want)
			equal(t, got, c.want, "search %q", c.search)
		}
	}},
	{"PagingWhileUsersChange", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		const n = 1000
		var all []storage.User
		for i := range n {
			u := newUser(fmt.Sprintf("u%04d", i), fmt.Sprintf("user%04d", i), "")
			u.CreatedAt = base.Add(time.Duration(i/3) * time.Second) // three per second: ties
			if i%4 != 0 {
				u.LastLogin = base.Add(time.Duration((i*7919)%n) * time.Minute)
			}
			all = append(all, u)
		}
		errs := concurrently(n, func(i int) error { return s.CreateUser(ctx, all[i]) })
		for i, err := range errs {
			ok(t, err, "create %d", i)
		}
		newcomers := 0
		for _, q := range []storage.UserQuery{
			{Limit: 37},
			{Limit: 37, Sort: storage.UserSortLastSignIn},
			{Limit: 37, Search: "user0"},
			{Limit: 37, Sort: storage.UserSortLastSignIn, Group: "staff"},
		} {
			want := searchModel(all, nil, q)
			var got []string
			for step := 0; ; step++ {
				page, err := s.SearchUsers(ctx, q)
				ok(t, err, "page %d of %+v", step, q)
				got = append(got, userIDs(page.Users)...)
				if page.Next == "" {
					break
				}
				q.Cursor = page.Next
				// Between pages: edits that keep the sort keys, on users
				// already shown and on users still to come, and a new user
				// (newer than any page: it must not show up).
				for _, id := range []string{fmt.Sprintf("u%04d", (step*131)%n), fmt.Sprintf("u%04d", (step*577+3)%n)} {
					_, err := s.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
						u.Name += "!"
						u.Blocked = !u.Blocked
						u.Groups = append(u.Groups, fmt.Sprintf("g%d", step))
						return u, nil
					})
					ok(t, err, "update %s", id)
				}
				newcomers++
				nu := newUser(fmt.Sprintf("new%03d", newcomers), fmt.Sprintf("newcomer%03d", newcomers), "")
				nu.CreatedAt, nu.LastLogin = base.Add(time.Hour), base.Add(48*time.Hour)
				ok(t, s.CreateUser(ctx, nu), "create a newcomer")
				all = append(all, nu) // for the next query
			}
			equal(t, got, want, "every user once, in order, for %+v", q)
		}
		// The page size is capped.
		page, err := s.SearchUsers(ctx, storage.UserQuery{Limit: 100000})
		ok(t, err, "search with a huge limit")
		equal(t, len(page.Users), storage.MaxUserLimit, "users on a page of a huge limit")
		page, err = s.SearchUsers(ctx, storage.UserQuery{})
		ok(t, err, "search with no limit")
		equal(t, len(page.Users), storage.DefaultUserLimit, "users on a page of no limit")
	}},
	{"BadQueriesAndForeignCursors", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		for i := range 5 {
			ok(t, s.CreateUser(ctx, newUser(fmt.Sprintf("u%d", i), fmt.Sprintf("user%d", i), "")), "create")
		}
		first, err := s.SearchUsers(ctx, storage.UserQuery{Search: "user", Limit: 2})
		ok(t, err, "first page")
		if first.Next == "" {
			t.Fatal("no next page")
		}
		for _, q := range []storage.UserQuery{
			{Search: "user", Limit: 2, Cursor: "garbage!"},
			{Search: "user", Limit: 2, Cursor: "AAAA"},
			{Search: "use", Limit: 2, Cursor: first.Next},                                    // another search
			{Search: "user", Limit: 2, Cursor: first.Next, Sort: storage.UserSortLastSignIn}, // another sort
			{Search: "user", Limit: 2, Cursor: first.Next, Admin: ptr(false)},                // another filter
			{Search: "user", Limit: 2, Cursor: first.Next, Source: ptr("")},
			{Search: "user", Limit: 2, Cursor: first.Next, Group: "staff"},
			{Sort: "name"},
			{Search: "a\x00b"},
			{Group: "a\x00b"},
			{Search: strings.Repeat("x", storage.MaxUserSearch+1)},
		} {
			_, err := s.SearchUsers(ctx, q)
			isErr(t, err, storage.ErrInvalid, "search %+v", q)
		}
		// The same query with another page size continues.
		next, err := s.SearchUsers(ctx, storage.UserQuery{Search: "USER", Limit: 3, Cursor: first.Next, Sort: storage.UserSortCreated})
		ok(t, err, "continue with another page size and the same query")
		equal(t, userIDs(next.Users), []string{"u2", "u1", "u0"}, "the rest")
	}},
	{"IndexFollowsEveryWrite", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		alice, bob := newUser("u1", "alice", "alice@example.com"), newUser("u2", "bob", "bob@example.com")
		bob.CreatedAt = base.Add(time.Second)
		ok(t, s.CreateUser(ctx, alice), "create alice")
		ok(t, s.CreateUser(ctx, bob), "create bob")
		find := func(q storage.UserQuery) []string { t.Helper(); return searchAll(ctx, t, s, q) }
		update := func(id string, fn func(*storage.User)) {
			t.Helper()
			_, err := s.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) { fn(&u); return u, nil })
			ok(t, err, "update %s", id)
		}
		admins := func() int {
			t.Helper()
			n, err := s.CountAdmins(ctx)
			ok(t, err, "count admins")
			return n
		}

		update("u1", func(u *storage.User) { u.Username = "alicia" })
		equal(t, find(storage.UserQuery{Search: "alicia"}), []string{"u1"}, "new username")
		equal(t, find(storage.UserQuery{Search: "alice@"}), []string{"u1"}, "email kept")
		update("u1", func(u *storage.User) { u.Email = "ally@example.org" })
		equal(t, find(storage.UserQuery{Search: "alice@"}), []string{}, "old email")
		equal(t, find(storage.UserQuery{Search: "ally@"}), []string{"u1"}, "new email")
		update("u2", func(u *storage.User) { u.Name, u.PhoneNumber = "Robert Tables", "+1 555 0100" })
		equal(t, find(storage.UserQuery{Search: "tables"}), []string{"u2"}, "new name")
		equal(t, find(storage.UserQuery{Search: "555 01"}), []string{"u2"}, "new phone")

		update("u1", func(u *storage.User) { u.Blocked = true })
		equal(t, find(storage.UserQuery{Blocked: ptr(true)}), []string{"u1"}, "blocked")
		equal(t, admins(), 0, "admins at first")
		update("u1", func(u *storage.User) { u.Admin = true })
		equal(t, find(storage.UserQuery{Admin: ptr(true)}), []string{"u1"}, "admin")
		equal(t, admins(), 0, "a blocked admin cannot act")
		update("u1", func(u *storage.User) { u.Blocked = false })
		equal(t, find(storage.UserQuery{Blocked: ptr(true)}), []string{}, "unblocked")
		equal(t, admins(), 1, "unblocked admin")
		update("u2", func(u *storage.User) { u.Admin = true })
		equal(t, admins(), 2, "two admins")
		update("u2", func(u *storage.User) { u.Admin = false })
		equal(t, admins(), 1, "admin revoked")

		update("u1", func(u *storage.User) { u.Groups = []string{"Ops"} })
		equal(t, find(storage.UserQuery{Group: "staff"}), []string{"u2"}, "left staff")
		equal(t, find(storage.UserQuery{Group: "OPS"}), []string{"u1"}, "joined ops")

		update("u2", func(u *storage.User) { u.Source = "ldap1" })
		equal(t, find(storage.UserQuery{Source: ptr("ldap1")}), []string{"u2"}, "source")
		equal(t, find(storage.UserQuery{Source: ptr("")}), []string{"u1"}, "local")

		// Sign-ins reorder the last-sign-in order.
		bySignIn := storage.UserQuery{Sort: storage.UserSortLastSignIn}
		equal(t, find(bySignIn), []string{"u2", "u1"}, "nobody signed in: by ID")
		_, err := s.RecordSignIn(ctx, signIn("u1", "a1", "", c.Now()))
		ok(t, err, "alice signs in")
		equal(t, find(bySignIn), []string{"u1", "u2"}, "alice signed in")
		c.Add(time.Minute)
		_, err = s.RecordSignIn(ctx, signIn("u2", "a2", "", c.Now()))
		ok(t, err, "bob signs in")
		equal(t, find(bySignIn), []string{"u2", "u1"}, "bob signed in last")
		equal(t, find(storage.UserQuery{Sort: storage.UserSortLastSignIn, Search: "ally"}), []string{"u1"}, "sign-in kept the text")

		// Second factors: TOTP, and passkeys added and removed.
		twoFactor := storage.UserQuery{TwoFactor: ptr(true)}
		equal(t, find(twoFactor), []string{}, "no second factors")
		update("u1", func(u *storage.User) { u.TOTPPending = []byte("pending") })
		equal(t, find(twoFactor), []string{}, "a pending TOTP is none")
		update("u1", func(u *storage.User) { u.TOTPSecret, u.TOTPPending = u.TOTPPending, nil })
		equal(t, find(twoFactor), []string{"u1"}, "confirmed TOTP")
		ok(t, s.CreateCredential(ctx, storage.Credential{ID: "p1", UserID: "u2", Kind: storage.KindPasskey, WebAuthnID: []byte{1}, CreatedAt: base}), "passkey 1")
		ok(t, s.CreateCredential(ctx, storage.Credential{ID: "p2", UserID: "u2", Kind: storage.KindPasskey, WebAuthnID: []byte{2}, CreatedAt: base}), "passkey 2")
		equal(t, find(twoFactor), []string{"u2", "u1"}, "passkeys")
		update("u2", func(u *storage.User) { u.Nickname = "bobby" }) // keeps the passkey flag
		equal(t, find(storage.UserQuery{TwoFactor: ptr(true), Search: "bobby"}), []string{"u2"}, "passkey flag kept by an update")
		ok(t, s.DeleteCredential(ctx, "u2", "p1"), "delete passkey 1")
		equal(t, find(twoFactor), []string{"u2", "u1"}, "one passkey left")
		n, err := s.DeleteCredentials(ctx, "u2", storage.KindPasskey)
		ok(t, err, "delete passkeys")
		equal(t, n, 1, "passkeys deleted")
		equal(t, find(twoFactor), []string{"u1"}, "no passkey left")
		ok(t, s.CreateCredential(ctx, storage.Credential{ID: "p3", UserID: "u2", Kind: storage.KindPasskey, WebAuthnID: []byte{3}, CreatedAt: base, ExpiresAt: c.Now().Add(time.Hour)}), "expiring passkey")
		equal(t, find(twoFactor), []string{"u2", "u1"}, "expiring passkey")
		c.Add(2 * time.Hour)
		_, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, find(twoFactor), []string{"u1"}, "swept passkey")
		update("u1", func(u *storage.User) { u.TOTPSecret = nil })
		equal(t, find(storage.UserQuery{TwoFactor: ptr(false)}), []string{"u2", "u1"}, "TOTP reset")

		// A new creation time moves the user in the creation order.
		update("u1", func(u *storage.User) { u.CreatedAt = base.Add(time.Hour) })
		equal(t, find(storage.UserQuery{}), []string{"u1", "u2"}, "creation order")
		equal(t, find(storage.UserQuery{Group: "ops"}), []string{"u1"}, "group after a new creation time")

		ok(t, s.DeleteUser(ctx, "u1", time.Time{}), "delete alice")
		equal(t, find(storage.UserQuery{}), []string{"u2"}, "deleted")
		equal(t, find(storage.UserQuery{Group: "ops"}), []string{}, "deleted from groups")
		equal(t, find(bySignIn), []string{"u2"}, "deleted from the sign-in order")
		equal(t, admins(), 0, "deleted admin")
	}},
	{"ReservedNames", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "alice@example.com")), "create alice")
		ok(t, s.CreateUser(ctx, newUser("u2", "bob", "bob@example.com")), "create bob")
		ok(t, s.CreateUser(ctx, newUser("u3", "carol", "")), "create carol")
		ok(t, s.DeleteUser(ctx, "u1", c.Now().Add(30*24*time.Hour)), "delete alice, reserving her names")
		ok(t, s.DeleteUser(ctx, "u3", c.Now()), "delete carol with a reservation that has ended")

		reservedErr(t, s.CreateUser(ctx, newUser("u4", "ALICE", "")), "create with a reserved username")
		reservedErr(t, s.CreateUser(ctx, newUser("u4", "alice2", "Alice@Example.com")), "create with a reserved email")
		reservedErr(t, s.CreateUser(ctx, newUser("u4", "alice@example.com", "")), "a reserved email as a username")
		_, err := s.UpdateUser(ctx, "u2", func(u storage.User) (storage.User, error) { u.Email = "alice@example.com"; return u, nil })
		reservedErr(t, err, "update to a reserved email")
		_, err = s.UpdateUser(ctx, "u2", func(u storage.User) (storage.User, error) { u.Username = "Alice"; return u, nil })
		reservedErr(t, err, "update to a reserved username")
		got, err := s.GetUser(ctx, "u2")
		ok(t, err, "get bob")
		equal(t, got.Username+" "+got.Email, "bob bob@example.com", "bob after refused updates")
		ok(t, s.CreateUser(ctx, newUser("u5", "carol", "")), "a name whose reservation ended")
		_, err = s.RecordSignIn(ctx, signIn("u2", "a1", "", c.Now()))
		ok(t, err, "others keep working")

		// Deleting bob for longer, then alice's reservation ends.
		c.Add(29 * 24 * time.Hour)
		ok(t, s.DeleteUser(ctx, "u2", c.Now().Add(30*24*time.Hour)), "delete bob")
		c.Add(24*time.Hour + time.Second)
		ok(t, s.CreateUser(ctx, newUser("u6", "alice", "alice@example.com")), "alice's names after the reservation, before a sweep")
		reservedErr(t, s.CreateUser(ctx, newUser("u7", "bob", "")), "bob's name still")
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.ReservedNames, 2, "reservations swept (alice's two)")
		ok(t, s.DeleteUser(ctx, "u6", time.Time{}), "delete the new alice, no reservation")
		ok(t, s.CreateUser(ctx, newUser("u8", "alice", "alice@example.com")), "no reservation")
		c.Add(30 * 24 * time.Hour)
		rep, err = s.Sweep(ctx)
		ok(t, err, "second sweep")
		equal(t, rep, storage.SweepReport{ReservedNames: 2}, "bob's two")
		ok(t, s.CreateUser(ctx, newUser("u7", "bob", "bob@example.com")), "bob's names after the sweep")
	}},
	{"ReservationOfANameTakenAgain", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx, now := t.Context(), c.Now()
		ok(t, s.CreateUser(ctx, newUser("u1", "alice", "")), "create")
		ok(t, s.DeleteUser(ctx, "u1", now.Add(10*24*time.Hour)), "delete, reserving 10 days")
		// The reservation ends; before a sweep forgets it, someone takes
		// the name and is deleted with a reservation of their own, which
		// the old one's sweep must leave alone.
		c.Add(10*24*time.Hour + time.Second)
		ok(t, s.CreateUser(ctx, newUser("u2", "alice", "")), "take the name after the reservation")
		ok(t, s.DeleteUser(ctx, "u2", c.Now().Add(5*24*time.Hour)), "delete again, reserving 5 days")
		reservedErr(t, s.CreateUser(ctx, newUser("u3", "alice", "")), "the new reservation")
		rep, err := s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.ReservedNames, 0, "the new reservation is not swept with the old")
		reservedErr(t, s.CreateUser(ctx, newUser("u3", "alice", "")), "after the sweep")
		c.Add(5*24*time.Hour + time.Second)
		rep, err = s.Sweep(ctx)
		ok(t, err, "sweep")
		equal(t, rep.ReservedNames, 1, "swept")
		ok(t, s.CreateUser(ctx, newUser("u3", "alice", "")), "free")
	}},
}
