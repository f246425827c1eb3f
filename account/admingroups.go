package account

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// The audit events of local groups. TargetID is the group; the member
// events name the user in TargetUserID too.
const (
	EventGroupCreated       = "group.created"
	EventGroupRenamed       = "group.renamed" // the name changed (and maybe the description)
	EventGroupUpdated       = "group.updated" // only the description changed
	EventGroupDeleted       = "group.deleted"
	EventGroupMemberAdded   = "group.member_added"
	EventGroupMemberRemoved = "group.member_removed"
)

// groupMu serialises the changes of local groups and their members, so a
// member is never added under a name the group gave up a moment before
// (membership is the name in User.Groups, written in another transaction
// than the group's). Keyport is one process per database, so a process
// lock is enough.
var groupMu sync.Mutex

var errNoSuchGroup = Errorf(NotFound, "There is no such group.")

// GroupPatch is an edit of a group: nil fields stay as they are.
type GroupPatch struct {
	Name        *string `json:"name,omitempty"`
	Description *string `json:"description,omitempty"`
}

// MemberList is one page of a group's members, ordered by user ID.
type MemberList struct {
	// Users hold no secret (no password hash, TOTP secret or recovery
	// codes).
	Users []storage.User
	// Next continues the list; "" on the last page.
	Next string
}

// GroupETag is a strong validator of the stored group, like UserETag.
func GroupETag(g storage.Group) string {
	b, err := json.Marshal(g)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// validGroupName trims and checks a group's name: 1 to
// storage.MaxGroupName bytes of text, without control characters or
// commas (the console edits a user's groups as a comma-separated list).
func validGroupName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", FieldErrorf("name", "Enter a name for the group.")
	case len(name) > storage.MaxGroupName:
		return "", FieldErrorf("name", "The name may be at most 128 bytes long.") // storage.MaxGroupName
	case !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool {
		return r == ',' || unicode.IsControl(r) || unicode.Is(unicode.Cf, r)
	}):
		return "", FieldErrorf("name", "The name may not hold commas or control characters.")
	}
	return name, nil
}

// validGroupDescription trims and checks a description: at most
// storage.MaxGroupDescription bytes of text; line breaks and tabs are the
// only control characters allowed.
func validGroupDescription(d string) (string, error) {
	d = strings.TrimSpace(d)
	if len(d) > storage.MaxGroupDescription {
		return "", FieldErrorf("description", "The description may be at most 1024 bytes long.") // storage.MaxGroupDescription
	}
	if !utf8.ValidString(d) || strings.ContainsFunc(d, func(r rune) bool {
		return r != '\n' && r != '\r' && r != '\t' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r))
	}) {
		return "", FieldErrorf("description", "The description may not hold control characters.")
	}
	return d, nil
}

var errGroupNameTaken = &Error{Code: Conflict, Field: "name", Message: "Another group already has this name."}

// nameFree refuses a name another group than id has (compared after
// storage.Fold, as the store does), with a Conflict naming "name".
func (s *AdminService) nameFree(ctx context.Context, id, name string) error {
	groups, err := s.store.ListGroups(ctx)
	if err != nil {
		return fmt.Errorf("list groups: %w", err)
	}
	folded := storage.Fold(name)
	for _, g := range groups {
		if g.ID != id && storage.Fold(g.Name) == folded {
			return errGroupNameTaken
		}
	}
	return nil
}

// loadGroup reads the group an action is about.
func (s *AdminService) loadGroup(ctx context.Context, id string) (storage.Group, error) {
	g, err := s.store.GetGroup(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Group{}, errNoSuchGroup
	}
	if err != nil {
		return storage.Group{}, fmt.Errorf("load group %q: %w", id, err)
	}
	return g, nil
}

// ListGroups returns every local group, ordered by name.
func (s *AdminService) ListGroups(ctx context.Context, actor Actor) ([]storage.Group, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return nil, err
	}
	groups, err := s.store.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return groups, nil
}

// Group returns the group id.
func (s *AdminService) Group(ctx context.Context, actor Actor, id string) (storage.Group, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return storage.Group{}, err
	}
	return s.loadGroup(ctx, id)
}

// GroupMembers returns one page of the members of group id: the users
// whose groups hold its name, local or from a directory. cursor is "" or
// a previous page's Next; limit as storage.UserQuery.Limit.
func (s *AdminService) GroupMembers(ctx context.Context, actor Actor, id, cursor string, limit int) (MemberList, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return MemberList{}, err
	}
	page, err := s.store.GroupMembers(ctx, id, cursor, limit)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return MemberList{}, errNoSuchGroup
	case errors.Is(err, storage.ErrInvalid):
		return MemberList{}, FieldErrorf("cursor", "The cursor is not one this list gave.")
	case err != nil:
		return MemberList{}, fmt.Errorf("list members of group %q: %w", id, err)
	}
	out := MemberList{Next: page.Next, Users: make([]storage.User, 0, len(page.UserIDs))}
	for _, uid := range page.UserIDs {
		u, err := s.store.GetUser(ctx, uid)
		if errors.Is(err, storage.ErrNotFound) {
			continue // deleted since the page was read
		}
		if err != nil {
			return MemberList{}, fmt.Errorf("load member %q of group %q: %w", uid, id, err)
		}
		out.Users = append(out.Users, withoutSecrets(u))
	}
	return out, nil
}

// CreateGroup creates a local group. The name is unique without regard to
// case (Conflict naming "name"). Event: "group.created".
func (s *AdminService) CreateGroup(ctx context.Context, actor Actor, name, description string) (storage.Group, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return storage.Group{}, err
	}
	name, err := validGroupName(name)
	if err != nil {
		return storage.Group{}, err
	}
	if description, err = validGroupDescription(description); err != nil {
		return storage.Group{}, err
	}
	groupMu.Lock()
	defer groupMu.Unlock()
	if err := s.nameFree(ctx, "", name); err != nil {
		return storage.Group{}, err
	}
	now := s.now()
	g := storage.Group{ID: NewID(), Name: name, Description: description, CreatedAt: now, UpdatedAt: now}
	if err := s.store.CreateGroup(ctx, g); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return storage.Group{}, errGroupNameTaken
		}
		return storage.Group{}, fmt.Errorf("create group %q: %w", name, err)
	}
	changes := []storage.AuditChange{{Field: "name", After: g.Name}}
	if g.Description != "" {
		changes = append(changes, storage.AuditChange{Field: "description", After: g.Description})
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: EventGroupCreated, TargetID: g.ID, Changes: changes})
	return g, nil
}

// UpdateGroup renames group id or changes its description. A rename
// renames the group in every member's groups at once, so the groups claim
// carries the new name from the members' next token on. ifMatch, when not
// "", must be the group's current GroupETag, else PreconditionFailed.
// Events: "group.renamed" (with the name before and after) when the name
// changes, else "group.updated"; none when nothing changes.
func (s *AdminService) UpdateGroup(ctx context.Context, actor Actor, id, ifMatch string, p GroupPatch) (storage.Group, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return storage.Group{}, err
	}
	if p.Name != nil {
		v, err := validGroupName(*p.Name)
		if err != nil {
			return storage.Group{}, err
		}
		p.Name = &v
	}
	if p.Description != nil {
		v, err := validGroupDescription(*p.Description)
		if err != nil {
			return storage.Group{}, err
		}
		p.Description = &v
	}
	groupMu.Lock()
	defer groupMu.Unlock()
	if p.Name != nil {
		if err := s.nameFree(ctx, id, *p.Name); err != nil {
			return storage.Group{}, err
		}
	}
	var before storage.Group
	g, err := s.store.UpdateGroup(ctx, id, func(g storage.Group) (storage.Group, error) {
		before = g
		if ifMatch != "" && ifMatch != GroupETag(g) {
			return g, errStaleGroup
		}
		if p.Name != nil {
			g.Name = *p.Name
		}
		if p.Description != nil {
			g.Description = *p.Description
		}
		if g == before {
			return g, errNothingChanged
		}
		g.UpdatedAt = s.now()
		return g, nil
	})
	var ae *Error
	switch {
	case errors.Is(err, errNothingChanged):
		return before, nil
	case errors.As(err, &ae):
		return storage.Group{}, ae
	case errors.Is(err, storage.ErrNotFound):
		return storage.Group{}, errNoSuchGroup
	case errors.Is(err, storage.ErrConflict):
		return storage.Group{}, errGroupNameTaken
	case err != nil:
		return storage.Group{}, fmt.Errorf("update group %q: %w", id, err)
	}
	e := storage.AuditEvent{Type: EventGroupUpdated, TargetID: g.ID}
	if g.Name != before.Name {
		e.Type = EventGroupRenamed
		e.Changes = append(e.Changes, storage.AuditChange{Field: "name", Before: before.Name, After: g.Name})
	}
	if g.Description != before.Description {
		e.Changes = append(e.Changes, storage.AuditChange{Field: "description", Before: before.Description, After: g.Description})
	}
	s.audit(ctx, actor, fitAudit(e))
	return g, nil
}

var errStaleGroup = Errorf(PreconditionFailed, "Someone else changed this group since you loaded it. Reload and make your change again.")

// DeleteGroup deletes group id and takes its name out of every member's
// groups. Event: "group.deleted".
func (s *AdminService) DeleteGroup(ctx context.Context, actor Actor, id string) error {
	if err := s.authorize(ctx, actor, true); err != nil {
		return err
	}
	groupMu.Lock()
	defer groupMu.Unlock()
	g, err := s.loadGroup(ctx, id)
	if err != nil {
		return err
	}
	if err := s.store.DeleteGroup(ctx, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errNoSuchGroup
		}
		return fmt.Errorf("delete group %q: %w", id, err)
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: EventGroupDeleted, TargetID: id, Changes: []storage.AuditChange{{Field: "name", Before: g.Name}}})
	return nil
}

// AddMember makes user userID a member of group groupID (adds its name to
// their groups). A user whose groups their directory sets is refused
// (Forbidden, with the reason): the directory would undo it. Adding a
// member again changes nothing and records nothing. Event:
// "group.member_added".
func (s *AdminService) AddMember(ctx context.Context, actor Actor, groupID, userID string) error {
	return s.setMember(ctx, actor, groupID, userID, true)
}

// RemoveMember takes user userID out of group groupID, with AddMember's
// rules. Removing a non-member changes nothing. Event:
// "group.member_removed".
func (s *AdminService) RemoveMember(ctx context.Context, actor Actor, groupID, userID string) error {
	return s.setMember(ctx, actor, groupID, userID, false)
}

func (s *AdminService) setMember(ctx context.Context, actor Actor, groupID, userID string, member bool) error {
	if err := s.authorize(ctx, actor, true); err != nil {
		return err
	}
	groupMu.Lock()
	defer groupMu.Unlock()
	g, err := s.loadGroup(ctx, groupID)
	if err != nil {
		return err
	}
	folded := storage.Fold(g.Name)
	isMember := func(name string) bool { return storage.Fold(name) == folded }
	_, err = s.store.UpdateUser(ctx, userID, func(u storage.User) (storage.User, error) {
		if slices.ContainsFunc(u.Groups, isMember) == member {
			return u, errNothingChanged
		}
		if reason, ok := s.lockedFields(u)["groups"]; ok {
			return u, &Error{Code: Forbidden, Field: "groups", Message: reason + " This user's groups come from there."}
		}
		if member {
			if len(u.Groups) >= maxNameListEntries {
				return u, FieldErrorf("groups", "A user may be in at most 100 groups.") // maxNameListEntries
			}
			u.Groups = append(slices.Clip(u.Groups), g.Name)
		} else {
			u.Groups = slices.DeleteFunc(slices.Clone(u.Groups), isMember)
		}
		u.UpdatedAt = s.now()
		return u, nil
	})
	var ae *Error
	switch {
	case errors.Is(err, errNothingChanged):
		return nil
	case errors.As(err, &ae):
		return ae
	case errors.Is(err, storage.ErrNotFound):
		return errNoSuchUser
	case err != nil:
		return fmt.Errorf("change groups of user %q: %w", userID, err)
	}
	e := storage.AuditEvent{Type: EventGroupMemberAdded, TargetID: g.ID, TargetUserID: userID, Changes: []storage.AuditChange{{Field: "groups", After: g.Name}}}
	if !member {
		e.Type, e.Changes = EventGroupMemberRemoved, []storage.AuditChange{{Field: "groups", Before: g.Name}}
	}
	s.audit(ctx, actor, e)
	return nil
}

// MemberByLogin finds a user by username or email, for adding a member by
// name.
func (s *AdminService) MemberByLogin(ctx context.Context, actor Actor, login string) (storage.User, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return storage.User{}, err
	}
	login = strings.TrimSpace(login)
	if login == "" || len(login) > storage.MaxUserSearch {
		return storage.User{}, FieldErrorf("username", "Enter a username or an email address.")
	}
	u, err := s.store.GetUserByLogin(ctx, login)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, &Error{Code: NotFound, Field: "username", Message: "There is no user with this username or email address."}
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("look up user %q: %w", login, err)
	}
	return withoutSecrets(u), nil
}
