package bolt

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// Local groups: groups maps the ID to the Group, groups_by_name the folded
// name to the ID. Membership is the name in User.Groups, indexed by
// users_by_group (usersearch.go), so renames, deletes and member lists
// read only the group's members.

func checkGroup(g storage.Group) error {
	switch {
	case g.ID == "" || g.Name == "" || storage.Fold(g.Name) == "":
		return fmt.Errorf("group %q: empty ID or name: %w", g.ID, storage.ErrInvalid)
	case strings.ContainsRune(g.ID, 0) || strings.ContainsRune(g.Name, 0):
		return fmt.Errorf("group %q: NUL in ID or name: %w", g.ID, storage.ErrInvalid)
	case len(g.Name) > storage.MaxGroupName:
		return fmt.Errorf("group %q: name longer than %d bytes: %w", g.ID, storage.MaxGroupName, storage.ErrInvalid)
	case len(g.Description) > storage.MaxGroupDescription:
		return fmt.Errorf("group %q: description longer than %d bytes: %w", g.ID, storage.MaxGroupDescription, storage.ErrInvalid)
	}
	return nil
}

func (d *DB) CreateGroup(ctx context.Context, g storage.Group) error {
	if err := checkGroup(g); err != nil {
		return fmt.Errorf("create group: %w", err)
	}
	return d.db.Update(func(tx *bbolt.Tx) error {
		groups, byName := tx.Bucket(bGroups), tx.Bucket(bGroupsByName)
		if has(groups, g.ID) {
			return conflict("create group", g.ID)
		}
		folded := foldName(g.Name)
		if has(byName, folded) {
			return fmt.Errorf("create group %q: name %q: %w", g.ID, g.Name, storage.ErrConflict)
		}
		if err := byName.Put([]byte(folded), []byte(g.ID)); err != nil {
			return err
		}
		return putJSON(groups, g.ID, g)
	})
}

func (d *DB) GetGroup(ctx context.Context, id string) (storage.Group, error) {
	var g storage.Group
	err := d.db.View(func(tx *bbolt.Tx) error {
		found, err := getJSON(tx.Bucket(bGroups), id, &g)
		if err == nil && !found {
			err = notFound("get group", id)
		}
		return err
	})
	if err != nil {
		return storage.Group{}, err
	}
	return g, nil
}

// ListGroups returns every group in the order of their folded names.
func (d *DB) ListGroups(ctx context.Context) ([]storage.Group, error) {
	out := []storage.Group{}
	err := d.db.View(func(tx *bbolt.Tx) error {
		groups := tx.Bucket(bGroups)
		return tx.Bucket(bGroupsByName).ForEach(func(_, id []byte) error {
			var g storage.Group
			found, err := getJSON(groups, string(id), &g)
			if err != nil {
				return err
			}
			if !found {
				return fmt.Errorf("group name index names group %q, which does not exist", id)
			}
			out = append(out, g)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return out, nil
}

func (d *DB) UpdateGroup(ctx context.Context, id string, fn func(storage.Group) (storage.Group, error)) (storage.Group, error) {
	now := d.now()
	var out storage.Group
	err := d.db.Update(func(tx *bbolt.Tx) error {
		groups, byName := tx.Bucket(bGroups), tx.Bucket(bGroupsByName)
		var old, arg storage.Group
		found, err := getJSON(groups, id, &old)
		if err != nil {
			return err
		}
		if !found {
			return notFound("update group", id)
		}
		_, _ = getJSON(groups, id, &arg) // a second copy, so fn cannot alias old
		ng, err := fn(arg)
		if err != nil {
			return fmt.Errorf("update group %q: %w", id, err)
		}
		if ng.ID != id {
			return fmt.Errorf("update group %q: the ID cannot change (got %q): %w", id, ng.ID, storage.ErrInvalid)
		}
		if err := checkGroup(ng); err != nil {
			return fmt.Errorf("update group: %w", err)
		}
		if ng.Name != old.Name {
			oldFolded, newFolded := foldName(old.Name), foldName(ng.Name)
			if owner := byName.Get([]byte(newFolded)); owner != nil && string(owner) != id {
				return fmt.Errorf("update group %q: name %q: %w", id, ng.Name, storage.ErrConflict)
			}
			err := editMembersTx(tx, oldFolded, now, func(names []string) []string {
				return renameGroup(names, oldFolded, ng.Name)
			})
			if err != nil {
				return fmt.Errorf("update group %q: rename %q to %q: %w", id, old.Name, ng.Name, err)
			}
			if err := byName.Delete([]byte(oldFolded)); err != nil {
				return err
			}
			if err := byName.Put([]byte(newFolded), []byte(id)); err != nil {
				return err
			}
		}
		out = ng
		return putJSON(groups, id, ng)
	})
	if err != nil {
		return storage.Group{}, err
	}
	return out, nil
}

func (d *DB) DeleteGroup(ctx context.Context, id string) error {
	now := d.now()
	return d.db.Update(func(tx *bbolt.Tx) error {
		groups := tx.Bucket(bGroups)
		var g storage.Group
		found, err := getJSON(groups, id, &g)
		if err != nil {
			return err
		}
		if !found {
			return notFound("delete group", id)
		}
		folded := foldName(g.Name)
		err = editMembersTx(tx, folded, now, func(names []string) []string {
			return slices.DeleteFunc(names, func(n string) bool { return foldName(n) == folded })
		})
		if err != nil {
			return fmt.Errorf("delete group %q: %w", id, err)
		}
		if err := tx.Bucket(bGroupsByName).Delete([]byte(folded)); err != nil {
			return err
		}
		return groups.Delete([]byte(id))
	})
}

// renameGroup replaces the names that fold to from with to, keeping one
// of them where the user held several (or held to already).
func renameGroup(names []string, from, to string) []string {
	toFolded := foldName(to)
	out := make([]string, 0, len(names))
	kept := false
	for _, n := range names {
		f := foldName(n)
		if f == from {
			n, f = to, toFolded
		}
		if f == toFolded {
			if kept {
				continue
			}
			kept = true
		}
		out = append(out, n)
	}
	return out
}

// editMembersTx applies edit to the Groups of every user whose Groups
// hold the folded name, through updateUserTx (so every index follows),
// and sets their UpdatedAt to now.
func editMembersTx(tx *bbolt.Tx, folded string, now time.Time, edit func([]string) []string) error {
	prefix := groupKey(folded, "")
	var ids []string
	for _, k := range prefixKeys(tx.Bucket(bUsersByGroup), string(prefix)) {
		ids = append(ids, string(k[len(prefix):]))
	}
	for _, id := range ids {
		_, err := updateUserTx(tx, id, now, func(u storage.User) (storage.User, error) {
			u.Groups = edit(u.Groups)
			if len(u.Groups) == 0 {
				u.Groups = nil
			}
			u.UpdatedAt = now
			return u, nil
		})
		if err != nil {
			return fmt.Errorf("member %q: %w", id, err)
		}
	}
	return nil
}

// GroupMembers pages through users_by_group; the cursor is the last
// user ID of the page, after the group's ID.
func (d *DB) GroupMembers(ctx context.Context, id, cursor string, limit int) (storage.MemberPage, error) {
	if limit <= 0 {
		limit = storage.DefaultUserLimit
	}
	limit = min(limit, storage.MaxUserLimit)
	var after []byte
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		tag := []byte(id + "\x00")
		if err != nil || !bytes.HasPrefix(raw, tag) || len(raw) == len(tag) || len(raw) > len(tag)+maxCursorID {
			return storage.MemberPage{}, fmt.Errorf("group members of %q: cursor is malformed or another group's: %w", id, storage.ErrInvalid)
		}
		after = raw[len(tag):]
	}
	page := storage.MemberPage{UserIDs: []string{}}
	err := d.db.View(func(tx *bbolt.Tx) error {
		var g storage.Group
		found, err := getJSON(tx.Bucket(bGroups), id, &g)
		if err != nil {
			return err
		}
		if !found {
			return notFound("group members", id)
		}
		prefix := groupKey(foldName(g.Name), "")
		c := tx.Bucket(bUsersByGroup).Cursor()
		k, _ := c.Seek(append(bytes.Clone(prefix), after...))
		if after != nil && k != nil && bytes.HasPrefix(k, prefix) && bytes.Equal(k[len(prefix):], after) {
			k, _ = c.Next()
		}
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			if len(page.UserIDs) == limit {
				page.Next = base64.RawURLEncoding.EncodeToString([]byte(id + "\x00" + page.UserIDs[limit-1]))
				return nil
			}
			page.UserIDs = append(page.UserIDs, string(k[len(prefix):]))
		}
		return nil
	})
	if err != nil {
		return storage.MemberPage{}, fmt.Errorf("group members of %q: %w", id, err)
	}
	return page, nil
}
