package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
)

func newGroup(id, name string) storage.Group {
	return storage.Group{ID: id, Name: name, Description: "The " + name, CreatedAt: base, UpdatedAt: base}
}

// groupsOf returns each user's Groups, by ID.
func groupsOf(ctx context.Context, t *testing.T, s storage.Store, ids ...string) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for _, id := range ids {
		u, err := s.GetUser(ctx, id)
		ok(t, err, "get %s", id)
		out[id] = u.Groups
	}
	return out
}

// membersAll follows GroupMembers to the end.
func membersAll(ctx context.Context, t *testing.T, s storage.Store, id string, limit int) []string {
	t.Helper()
	out := []string{}
	cursor := ""
	for pages := 0; ; pages++ {
		if pages > 10000 {
			t.Fatalf("the member cursor of %s never ends", id)
		}
		page, err := s.GroupMembers(ctx, id, cursor, limit)
		ok(t, err, "members of %s", id)
		out = append(out, page.UserIDs...)
		if page.Next == "" {
			return out
		}
		cursor = page.Next
	}
}

// withGroups creates users u1… holding the given Groups.
func withGroups(ctx context.Context, t *testing.T, s storage.Store, groups ...[]string) {
	t.Helper()
	for i, g := range groups {
		u := newUser(fmt.Sprintf("u%d", i+1), fmt.Sprintf("user%d", i+1), "")
		u.Groups = g
		ok(t, s.CreateUser(ctx, u), "create u%d", i+1)
	}
}

var groupTests = []test{
	{"CreateGetList", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		for _, g := range []storage.Group{newGroup("g1", "Staff"), newGroup("g2", "admins"), newGroup("g3", "Ärger")} {
			ok(t, s.CreateGroup(ctx, g), "create %s", g.Name)
		}
		got, err := s.GetGroup(ctx, "g1")
		ok(t, err, "get")
		equal(t, got, newGroup("g1", "Staff"), "stored group")
		_, err = s.GetGroup(ctx, "nope")
		isErr(t, err, storage.ErrNotFound, "get a missing group")

		isErr(t, s.CreateGroup(ctx, newGroup("g1", "other")), storage.ErrConflict, "taken ID")
		isErr(t, s.CreateGroup(ctx, newGroup("g4", "STAFF")), storage.ErrConflict, "taken name in another case")
		isErr(t, s.CreateGroup(ctx, newGroup("g4", "ärger")), storage.ErrConflict, "taken name, folded")
		for _, g := range []storage.Group{
			newGroup("", "x"), newGroup("g4", ""), newGroup("g4", "a\x00b"), newGroup("g\x004", "x"),
			newGroup("g4", strings.Repeat("x", storage.MaxGroupName+1)),
			{ID: "g4", Name: "x", Description: strings.Repeat("d", storage.MaxGroupDescription+1)},
		} {
			isErr(t, s.CreateGroup(ctx, g), storage.ErrInvalid, "create %q/%.20q", g.ID, g.Name)
		}
		list, err := s.ListGroups(ctx)
		ok(t, err, "list")
		equal(t, idsOf(list, func(g storage.Group) string { return g.Name }), []string{"admins", "Staff", "Ärger"}, "groups by name")
	}},
	{"RenameRenamesMembers", func(t *testing.T, s storage.Store, c *testclock.Clock) {
		ctx := t.Context()
		withGroups(ctx, t, s, []string{"staff"}, []string{"Ops", "STAFF"}, []string{"ops"}, []string{"team", "Staff"}, nil)
		ok(t, s.CreateGroup(ctx, newGroup("g1", "Staff")), "create staff")
		ok(t, s.CreateGroup(ctx, newGroup("g2", "ops")), "create ops")
		equal(t, membersAll(ctx, t, s, "g1", 0), []string{"u1", "u2", "u4"}, "staff members")
		before := groupsOf(ctx, t, s, "u1", "u2", "u3", "u4", "u5")

		// A name taken by another group: nothing changes.
		_, err := s.UpdateGroup(ctx, "g1", func(g storage.Group) (storage.Group, error) { g.Name = "OPS"; return g, nil })
		isErr(t, err, storage.ErrConflict, "rename to a taken name")
		_, err = s.UpdateGroup(ctx, "g1", func(g storage.Group) (storage.Group, error) { g.Name = "x"; return g, errBoom })
		isErr(t, err, errBoom, "fn fails")
		_, err = s.UpdateGroup(ctx, "g1", func(g storage.Group) (storage.Group, error) { g.ID = "g9"; return g, nil })
		if err == nil {
			t.Fatal("an update changed the group's ID")
		}
		equal(t, groupsOf(ctx, t, s, "u1", "u2", "u3", "u4", "u5"), before, "members after refused renames")
		got, err := s.GetGroup(ctx, "g1")
		ok(t, err, "get")
		equal(t, got.Name, "Staff", "name after refused renames")

		c.Add(time.Hour)
		renamed, err := s.UpdateGroup(ctx, "g1", func(g storage.Group) (storage.Group, error) {
			g.Name, g.UpdatedAt = "Team", c.Now()
			return g, nil
		})
		ok(t, err, "rename staff to Team")
		equal(t, renamed.Name, "Team", "returned group")
		equal(t, groupsOf(ctx, t, s, "u1", "u2", "u3", "u4", "u5"), map[string][]string{
			"u1": {"Team"}, "u2": {"Ops", "Team"}, "u3": {"ops"}, "u4": {"team"}, "u5": nil,
		}, "members renamed (u4 held team already, and keeps that)")
		for _, id := range []string{"u1", "u2", "u4"} {
			u, err := s.GetUser(ctx, id)
			ok(t, err, "get %s", id)
			equal(t, u.UpdatedAt, c.Now(), "UpdatedAt of renamed member %s", id)
		}
		u3, err := s.GetUser(ctx, "u3")
		ok(t, err, "get u3")
		equal(t, u3.UpdatedAt, base, "UpdatedAt of a non-member")
		equal(t, membersAll(ctx, t, s, "g1", 0), []string{"u1", "u2", "u4"}, "members after the rename")
		equal(t, searchAll(ctx, t, s, storage.UserQuery{Group: "team"}), []string{"u4", "u2", "u1"}, "search by the new name")
		equal(t, searchAll(ctx, t, s, storage.UserQuery{Group: "staff"}), []string{}, "search by the old name")
		ok(t, s.CreateGroup(ctx, newGroup("g3", "staff")), "the old name is free again")

		// A rename in case only renames too.
		_, err = s.UpdateGroup(ctx, "g2", func(g storage.Group) (storage.Group, error) { g.Name = "OPS"; return g, nil })
		ok(t, err, "rename ops to OPS")
		equal(t, groupsOf(ctx, t, s, "u2", "u3"), map[string][]string{"u2": {"OPS", "Team"}, "u3": {"OPS"}}, "case-only rename")
		// A description change leaves members alone.
		c.Add(time.Hour)
		_, err = s.UpdateGroup(ctx, "g2", func(g storage.Group) (storage.Group, error) { g.Description = "new"; return g, nil })
		ok(t, err, "describe")
		u3, err = s.GetUser(ctx, "u3")
		ok(t, err, "get u3")
		equal(t, u3.UpdatedAt, c.Now().Add(-time.Hour), "UpdatedAt after a description change")
	}},
	{"DeleteRemovesMembership", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		withGroups(ctx, t, s, []string{"staff"}, []string{"Ops", "STAFF"}, []string{"ops"})
		ok(t, s.CreateGroup(ctx, newGroup("g1", "Staff")), "create staff")
		ok(t, s.DeleteGroup(ctx, "g1"), "delete staff")
		equal(t, groupsOf(ctx, t, s, "u1", "u2", "u3"), map[string][]string{"u1": nil, "u2": {"Ops"}, "u3": {"ops"}}, "members after the delete")
		_, err := s.GetGroup(ctx, "g1")
		isErr(t, err, storage.ErrNotFound, "get the deleted group")
		isErr(t, s.DeleteGroup(ctx, "g1"), storage.ErrNotFound, "delete again")
		_, err = s.GroupMembers(ctx, "g1", "", 0)
		isErr(t, err, storage.ErrNotFound, "members of the deleted group")
		equal(t, searchAll(ctx, t, s, storage.UserQuery{Group: "staff"}), []string{}, "search the deleted group")
		ok(t, s.CreateGroup(ctx, newGroup("g2", "staff")), "the name is free")
		equal(t, membersAll(ctx, t, s, "g2", 0), []string{}, "a new group of the old name has no members")
		list, err := s.ListGroups(ctx)
		ok(t, err, "list")
		equal(t, idsOf(list, func(g storage.Group) string { return g.ID }), []string{"g2"}, "groups")
	}},
	{"MembersPaged", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		var groups [][]string
		var want []string
		for i := range 120 {
			g := []string{"big"}
			if i%2 == 0 {
				g = append(g, "half")
			}
			groups = append(groups, g)
			want = append(want, fmt.Sprintf("u%d", i+1))
		}
		withGroups(ctx, t, s, groups...)
		ok(t, s.CreateGroup(ctx, newGroup("g1", "Big")), "create big")
		ok(t, s.CreateGroup(ctx, newGroup("g2", "half")), "create half")
		slices.Sort(want)
		equal(t, membersAll(ctx, t, s, "g1", 50), want, "every member once, by ID")
		page, err := s.GroupMembers(ctx, "g1", "", 0)
		ok(t, err, "default page")
		equal(t, len(page.UserIDs), storage.DefaultUserLimit, "default page size")
		equal(t, len(membersAll(ctx, t, s, "g2", 7)), 60, "members of half")

		// Members leave and join between pages: the others are seen once.
		first, err := s.GroupMembers(ctx, "g1", "", 30)
		ok(t, err, "first page")
		_, err = s.UpdateUser(ctx, first.UserIDs[0], func(u storage.User) (storage.User, error) { u.Groups = nil; return u, nil })
		ok(t, err, "a member already listed leaves")
		rest := membersAll2(ctx, t, s, "g1", first.Next, 30)
		equal(t, append(slices.Clone(first.UserIDs), rest...), want, "pages around a change")

		half, err := s.GroupMembers(ctx, "g2", "", 5)
		ok(t, err, "a page of half")
		for _, cursor := range []string{"garbage!", "AAAA", half.Next} {
			_, err := s.GroupMembers(ctx, "g1", cursor, 5)
			isErr(t, err, storage.ErrInvalid, "cursor %q", cursor)
		}
		_, err = s.GroupMembers(ctx, "nope", "", 0)
		isErr(t, err, storage.ErrNotFound, "members of a missing group")
	}},
	{"RenameWithManyMembersIsAtomic", func(t *testing.T, s storage.Store, _ *testclock.Clock) {
		ctx := t.Context()
		var groups [][]string
		for range 300 {
			groups = append(groups, []string{"crew"})
		}
		withGroups(ctx, t, s, groups...)
		ok(t, s.CreateGroup(ctx, newGroup("g1", "crew")), "create crew")
		// Readers during the rename see the old name on every member or
		// the new one on every member, never a mix.
		done := make(chan struct{})
		errs := make(chan error, 1)
		go func() {
			defer close(errs)
			for {
				select {
				case <-done:
					return
				default:
				}
				old, err := s.SearchUsers(ctx, storage.UserQuery{Group: "crew", Limit: storage.MaxUserLimit})
				if err != nil {
					errs <- err
					return
				}
				nu, err := s.SearchUsers(ctx, storage.UserQuery{Group: "gang", Limit: storage.MaxUserLimit})
				if err != nil {
					errs <- err
					return
				}
				// The two reads are two snapshots; each alone is all or nothing.
				for _, n := range []int{len(old.Users), len(nu.Users)} {
					if n != 0 && n != 300 {
						errs <- fmt.Errorf("a reader saw %d of 300 members under one name", n)
						return
					}
				}
			}
		}()
		_, err := s.UpdateGroup(ctx, "g1", func(g storage.Group) (storage.Group, error) { g.Name = "gang"; return g, nil })
		ok(t, err, "rename")
		close(done)
		for err := range errs {
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
		}
		equal(t, len(searchAll(ctx, t, s, storage.UserQuery{Group: "gang"})), 300, "members renamed")
	}},
}

// membersAll2 follows GroupMembers from cursor to the end.
func membersAll2(ctx context.Context, t *testing.T, s storage.Store, id, cursor string, limit int) []string {
	t.Helper()
	var out []string
	for {
		page, err := s.GroupMembers(ctx, id, cursor, limit)
		ok(t, err, "members of %s", id)
		out = append(out, page.UserIDs...)
		if page.Next == "" {
			return out
		}
		cursor = page.Next
	}
}
