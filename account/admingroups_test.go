package account_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// groupEvents are the audit events about group id, oldest first.
func (f *adminFixture) groupEvents(id string) []storage.AuditEvent {
	f.t.Helper()
	evs, _, err := f.db.ListAudit(f.ctx, storage.AuditQuery{})
	if err != nil {
		f.t.Fatal(err)
	}
	var out []storage.AuditEvent
	for _, e := range evs {
		if e.TargetID == id {
			out = append(out, e)
		}
	}
	slices.Reverse(out)
	return out
}

func TestAdminGroupLifecycle(t *testing.T) {
	f := newAdminFixture(t)
	alice := f.user("alice", false)
	g, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, "  Developers ", "People who ship")
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "Developers" || g.Description != "People who ship" || g.ID == "" {
		t.Fatalf("created %+v", g)
	}
	if err := f.svc.Admin.AddMember(f.ctx, f.actor, g.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	// Adding again changes nothing and records nothing.
	if err := f.svc.Admin.AddMember(f.ctx, f.actor, g.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(alice.ID).Groups; !slices.Equal(got, []string{"Developers"}) {
		t.Fatalf("groups after adding: %q", got)
	}
	page, err := f.svc.Admin.GroupMembers(f.ctx, f.actor, g.ID, "", 0)
	if err != nil || len(page.Users) != 1 || page.Users[0].ID != alice.ID || page.Users[0].PasswordHash != "" {
		t.Fatalf("members: %v %+v", err, page)
	}
	ev := f.lastEvent(alice.ID, account.EventGroupMemberAdded)
	if ev.TargetID != g.ID || ev.ActorID != f.root.ID || len(ev.Changes) != 1 || ev.Changes[0].After != "Developers" {
		t.Errorf("member_added event: %+v", ev)
	}

	// A rename renames the membership with it.
	g2, err := f.svc.Admin.UpdateGroup(f.ctx, f.actor, g.ID, "", account.GroupPatch{Name: ptr("Engineers")})
	if err != nil || g2.Name != "Engineers" || g2.Description != "People who ship" {
		t.Fatalf("rename: %v %+v", err, g2)
	}
	if got := f.stored(alice.ID).Groups; !slices.Equal(got, []string{"Engineers"}) {
		t.Fatalf("groups after the rename: %q", got)
	}
	// Unchanged values are no change.
	if _, err := f.svc.Admin.UpdateGroup(f.ctx, f.actor, g.ID, "", account.GroupPatch{Name: ptr("Engineers")}); err != nil {
		t.Fatal(err)
	}
	// A stale ETag changes nothing.
	if _, err := f.svc.Admin.UpdateGroup(f.ctx, f.actor, g.ID, account.GroupETag(g), account.GroupPatch{Description: ptr("x")}); account.ErrorCode(err) != account.PreconditionFailed {
		t.Errorf("stale ETag: %v", err)
	}
	if _, err := f.svc.Admin.UpdateGroup(f.ctx, f.actor, g.ID, account.GroupETag(g2), account.GroupPatch{Description: ptr("Builders")}); err != nil {
		t.Errorf("current ETag: %v", err)
	}

	if err := f.svc.Admin.RemoveMember(f.ctx, f.actor, g.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Admin.RemoveMember(f.ctx, f.actor, g.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(alice.ID).Groups; len(got) != 0 {
		t.Fatalf("groups after removing: %q", got)
	}
	if err := f.svc.Admin.AddMember(f.ctx, f.actor, g.ID, alice.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.Admin.DeleteGroup(f.ctx, f.actor, g.ID); err != nil {
		t.Fatal(err)
	}
	if got := f.stored(alice.ID).Groups; len(got) != 0 {
		t.Fatalf("groups after deleting the group: %q", got)
	}
	if _, err := f.svc.Admin.Group(f.ctx, f.actor, g.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("deleted group: %v", err)
	}
	if err := f.svc.Admin.DeleteGroup(f.ctx, f.actor, g.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("deleting again: %v", err)
	}

	var types []string
	for _, e := range f.groupEvents(g.ID) {
		types = append(types, e.Type)
	}
	want := []string{"group.created", "group.member_added", "group.renamed", "group.updated", "group.member_removed", "group.member_added", "group.deleted"}
	slices.Sort(types)
	slices.Sort(want)
	if !slices.Equal(types, want) {
		t.Errorf("events %q, want %q", types, want)
	}
	for _, e := range f.groupEvents(g.ID) {
		switch e.Type {
		case "group.renamed":
			if len(e.Changes) != 1 || e.Changes[0] != (storage.AuditChange{Field: "name", Before: "Developers", After: "Engineers"}) {
				t.Errorf("renamed: %+v", e.Changes)
			}
		case "group.member_removed":
			if e.TargetUserID != alice.ID || e.Changes[0].Before != "Engineers" {
				t.Errorf("member_removed: %+v", e)
			}
		case "group.deleted":
			if e.Changes[0].Before != "Engineers" {
				t.Errorf("deleted: %+v", e)
			}
		}
	}
}

func TestAdminGroupRefusesBadInputAndChangesNothing(t *testing.T) {
	f := newAdminFixture(t)
	g, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, "Straße", "")
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		name, desc string
		code       account.Code
		field      string
	}{
		"empty":               {"  ", "", account.Invalid, "name"},
		"too long":            {strings.Repeat("g", storage.MaxGroupName+1), "", account.Invalid, "name"},
		"control":             {"a\x01b", "", account.Invalid, "name"},
		"comma":               {"a,b", "", account.Invalid, "name"},
		"taken, other case":   {"STRASSE", "", account.Conflict, "name"},
		"description long":    {"fine", strings.Repeat("d", storage.MaxGroupDescription+1), account.Invalid, "description"},
		"description control": {"fine", "a\x00b", account.Invalid, "description"},
	} {
		if _, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, tc.name, tc.desc); account.ErrorCode(err) != tc.code || account.ErrorField(err) != tc.field {
			t.Errorf("create %s: %v (field %q)", name, err, account.ErrorField(err))
		}
	}
	if _, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, strings.Repeat("g", storage.MaxGroupName), ""); err != nil {
		t.Errorf("a name of the longest length: %v", err)
	}
	if _, err := f.svc.Admin.UpdateGroup(f.ctx, f.actor, other.ID, "", account.GroupPatch{Name: ptr("strasse")}); account.ErrorCode(err) != account.Conflict || account.ErrorField(err) != "name" {
		t.Errorf("rename onto another group's name: %v", err)
	}
	// A case-only rename of the group itself is fine.
	if got, err := f.svc.Admin.UpdateGroup(f.ctx, f.actor, other.ID, "", account.GroupPatch{Name: ptr("OPS")}); err != nil || got.Name != "OPS" {
		t.Errorf("case-only rename: %v %+v", err, got)
	}
	groups, err := f.svc.Admin.ListGroups(f.ctx, f.actor)
	if err != nil || len(groups) != 3 {
		t.Fatalf("groups: %v %+v", err, groups)
	}
	if gone, _ := f.db.GetGroup(f.ctx, g.ID); gone.Name != "Straße" {
		t.Errorf("the refused edits changed the group: %+v", gone)
	}
	if err := f.svc.Admin.AddMember(f.ctx, f.actor, g.ID, "nobody"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("adding an unknown user: %v", err)
	}
	if err := f.svc.Admin.AddMember(f.ctx, f.actor, "nothing", f.root.ID); account.ErrorCode(err) != account.NotFound {
		t.Errorf("adding to an unknown group: %v", err)
	}
	if _, err := f.svc.Admin.GroupMembers(f.ctx, f.actor, g.ID, "garbage", 0); account.ErrorCode(err) != account.Invalid {
		t.Errorf("a made-up cursor: %v", err)
	}
	if _, err := f.svc.Admin.MemberByLogin(f.ctx, f.actor, "nobody@example.com"); account.ErrorCode(err) != account.NotFound {
		t.Errorf("unknown login: %v", err)
	}
	if u, err := f.svc.Admin.MemberByLogin(f.ctx, f.actor, "root@example.com"); err != nil || u.ID != f.root.ID || u.PasswordHash != "" {
		t.Errorf("login by email: %v %+v", err, u)
	}
}

func TestAdminGroupDirectoryUsersKeepTheirGroups(t *testing.T) {
	f := newAdminFixture(t)
	g, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, "staff", "")
	if err != nil {
		t.Fatal(err)
	}
	dora := f.user("dora", false)
	if _, err := f.db.UpdateUser(f.ctx, dora.ID, func(u storage.User) (storage.User, error) {
		u.Source, u.Groups = "corp-ldap", []string{"staff"}
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	eve := f.user("eve", false)
	if _, err := f.db.UpdateUser(f.ctx, eve.ID, func(u storage.User) (storage.User, error) {
		u.Source = "corp-ldap"
		return u, nil
	}); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"add":    func() error { return f.svc.Admin.AddMember(f.ctx, f.actor, g.ID, eve.ID) },
		"remove": func() error { return f.svc.Admin.RemoveMember(f.ctx, f.actor, g.ID, dora.ID) },
	} {
		err := call()
		if account.ErrorCode(err) != account.Forbidden || account.ErrorField(err) != "groups" || !strings.Contains(account.ErrorMessage(err), "corp-ldap") {
			t.Errorf("%s: %v", name, err)
		}
	}
	if got := f.stored(dora.ID).Groups; !slices.Equal(got, []string{"staff"}) {
		t.Errorf("dora's groups: %q", got)
	}
	if got := f.stored(eve.ID).Groups; len(got) != 0 {
		t.Errorf("eve's groups: %q", got)
	}
	// The directory's member is listed as one.
	page, err := f.svc.Admin.GroupMembers(f.ctx, f.actor, g.ID, "", 0)
	if err != nil || len(page.Users) != 1 || page.Users[0].ID != dora.ID {
		t.Errorf("members: %v %+v", err, page)
	}
	if evs := f.groupEvents(g.ID); len(evs) != 1 {
		t.Errorf("refusals wrote events: %+v", evs)
	}
}

func TestAdminGroupReadOnlyAndNonAdminActors(t *testing.T) {
	f := newAdminFixture(t)
	g, err := f.svc.Admin.CreateGroup(f.ctx, f.actor, "staff", "")
	if err != nil {
		t.Fatal(err)
	}
	plain := f.user("plain", false)
	readOnly := f.actor
	readOnly.ReadOnly = true
	notAdmin := account.Actor{Kind: account.ActorUser, UserID: plain.ID}
	writes := map[string]func(a account.Actor) error{
		"CreateGroup": func(a account.Actor) error { _, err := f.svc.Admin.CreateGroup(f.ctx, a, "new", ""); return err },
		"UpdateGroup": func(a account.Actor) error {
			_, err := f.svc.Admin.UpdateGroup(f.ctx, a, g.ID, "", account.GroupPatch{Name: ptr("x")})
			return err
		},
		"DeleteGroup":  func(a account.Actor) error { return f.svc.Admin.DeleteGroup(f.ctx, a, g.ID) },
		"AddMember":    func(a account.Actor) error { return f.svc.Admin.AddMember(f.ctx, a, g.ID, plain.ID) },
		"RemoveMember": func(a account.Actor) error { return f.svc.Admin.RemoveMember(f.ctx, a, g.ID, plain.ID) },
	}
	for name, call := range writes {
		for aname, a := range map[string]account.Actor{"read-only": readOnly, "non-admin": notAdmin} {
			if err := call(a); account.ErrorCode(err) != account.Forbidden {
				t.Errorf("%s by %s: %v, want forbidden", name, aname, err)
			}
		}
	}
	if groups, _ := f.db.ListGroups(f.ctx); len(groups) != 1 || groups[0].Name != "staff" {
		t.Errorf("refused actors changed the groups: %+v", groups)
	}
	if _, err := f.svc.Admin.ListGroups(f.ctx, readOnly); err != nil {
		t.Errorf("read-only listing: %v", err)
	}
	if _, err := f.svc.Admin.ListGroups(f.ctx, notAdmin); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("non-admin listing: %v", err)
	}
	if _, err := f.svc.Admin.GroupMembers(f.ctx, notAdmin, g.ID, "", 0); account.ErrorCode(err) != account.Forbidden {
		t.Errorf("non-admin members: %v", err)
	}
}
