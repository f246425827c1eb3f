package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

func checkGroup(g storage.Group) error {
	switch {
	case g.ID == "" || g.Name == "":
		return fmt.Errorf("empty ID or name: %w", storage.ErrInvalid)
	case strings.ContainsRune(g.ID, 0) || strings.ContainsRune(g.Name, 0):
		return fmt.Errorf("a NUL in the ID or name: %w", storage.ErrInvalid)
	case len(g.Name) > storage.MaxGroupName:
		return fmt.Errorf("name longer than %d bytes: %w", storage.MaxGroupName, storage.ErrInvalid)
	case len(g.Description) > storage.MaxGroupDescription:
		return fmt.Errorf("description longer than %d bytes: %w", storage.MaxGroupDescription, storage.ErrInvalid)
	}
	return nil
}

// CreateGroup stores a new group; the primary key and the unique folded
// name refuse a taken ID or name.
func (d *DB) CreateGroup(ctx context.Context, g storage.Group) error {
	if err := checkGroup(g); err != nil {
		return fmt.Errorf("create group %q: %w", g.ID, err)
	}
	rec, err := marshal(g)
	if err != nil {
		return err
	}
	_, err = d.pool.Exec(ctx, "INSERT INTO groups (id, name_key, record) VALUES ($1, $2, $3)", g.ID, storage.Fold(g.Name), rec)
	return dbErr(fmt.Sprintf("create group %q", g.ID), err)
}

func scanGroup(row pgx.Row) (storage.Group, error) {
	var b []byte
	if err := row.Scan(&b); err != nil {
		return storage.Group{}, err
	}
	return unmarshal[storage.Group](b)
}

func (d *DB) GetGroup(ctx context.Context, id string) (storage.Group, error) {
	g, err := scanGroup(d.pool.QueryRow(ctx, "SELECT record FROM groups WHERE id = $1", id))
	if err != nil {
		return storage.Group{}, dbErr(fmt.Sprintf("get group %q", id), err)
	}
	return g, nil
}

// ListGroups returns every group by folded name.
func (d *DB) ListGroups(ctx context.Context) ([]storage.Group, error) {
	rows, err := d.pool.Query(ctx, "SELECT record FROM groups ORDER BY name_key")
	if err != nil {
		return nil, dbErr("list groups", err)
	}
	groups, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.Group, error) { return scanGroup(r) })
	return groups, dbErr("list groups", err)
}

// UpdateGroup applies fn to the locked group; a rename rewrites every
// member's User.Groups in the same transaction, so readers see the old
// name on all members or the new one on all.
func (d *DB) UpdateGroup(ctx context.Context, id string, fn func(storage.Group) (storage.Group, error)) (storage.Group, error) {
	var out storage.Group
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		old, err := scanGroup(tx.QueryRow(ctx, "SELECT record FROM groups WHERE id = $1 FOR UPDATE", id))
		if err != nil {
			return err
		}
		ng, err := fn(old)
		if err != nil {
			return &callbackError{fmt.Errorf("update group %q: %w", id, err)}
		}
		if ng.ID != id {
			return fmt.Errorf("the ID cannot change (got %q): %w", ng.ID, storage.ErrInvalid)
		}
		if err := checkGroup(ng); err != nil {
			return err
		}
		rec, err := marshal(ng)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "UPDATE groups SET name_key = $2, record = $3 WHERE id = $1", id, storage.Fold(ng.Name), rec); err != nil {
			return err
		}
		if ng.Name != old.Name {
			if err := d.renameMembersTx(ctx, tx, old.Name, ng.Name); err != nil {
				return err
			}
		}
		out = ng
		return nil
	})
	if err != nil {
		return storage.Group{}, dbErr(fmt.Sprintf("update group %q", id), err)
	}
	return out, nil
}

// renameMembersTx gives every member of the group from the name to (""
// removes the group): the entries equal to from after Fold become to, or
// go when to is "" or the member holds to already (they keep the entry
// they had). Each member's UpdatedAt becomes now.
func (d *DB) renameMembersTx(ctx context.Context, tx pgx.Tx, from, to string) error {
	now := d.now()
	fromKey, toKey := storage.Fold(from), storage.Fold(to)
	rows, err := tx.Query(ctx, `SELECT record FROM users WHERE id IN (SELECT user_id FROM user_groups WHERE name = $1)
		ORDER BY id FOR UPDATE`, fromKey)
	if err != nil {
		return err
	}
	members, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.User, error) { return scanUser(r) })
	if err != nil {
		return err
	}
	for _, old := range members {
		nu := old
		holdsTo := false
		for _, g := range old.Groups {
			if k := storage.Fold(g); k == toKey && k != fromKey {
				holdsTo = true
			}
		}
		nu.Groups = nil
		for _, g := range old.Groups {
			switch {
			case storage.Fold(g) != fromKey:
				nu.Groups = append(nu.Groups, g)
			case to != "" && !holdsTo:
				nu.Groups = append(nu.Groups, to)
				holdsTo = true
			}
		}
		nu.UpdatedAt = now
		if err := writeUserTx(ctx, tx, &old, nu, now); err != nil {
			return fmt.Errorf("member %q: %w", old.ID, err)
		}
	}
	return nil
}

// DeleteGroup deletes the group and takes its name from every member.
func (d *DB) DeleteGroup(ctx context.Context, id string) error {
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		g, err := scanGroup(tx.QueryRow(ctx, "DELETE FROM groups WHERE id = $1 RETURNING record", id))
		if err != nil {
			return err
		}
		return d.renameMembersTx(ctx, tx, g.Name, "")
	})
	return dbErr(fmt.Sprintf("delete group %q", id), err)
}

// memberCursor is where a page of GroupMembers ended.
type memberCursor struct {
	Group string `json:"g"`
	After string `json:"a"`
}

// GroupMembers pages through the members' IDs in order.
func (d *DB) GroupMembers(ctx context.Context, id, cursor string, limit int) (storage.MemberPage, error) {
	var after string
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		var c memberCursor
		if err != nil || json.Unmarshal(raw, &c) != nil || c.Group != id || c.After == "" {
			return storage.MemberPage{}, fmt.Errorf("members of group %q: cursor not of this group: %w", id, storage.ErrInvalid)
		}
		after = c.After
	}
	if limit <= 0 {
		limit = storage.DefaultUserLimit
	}
	limit = min(limit, storage.MaxUserLimit)
	var page storage.MemberPage
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var key string
		if err := tx.QueryRow(ctx, "SELECT name_key FROM groups WHERE id = $1", id).Scan(&key); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT user_id FROM user_groups WHERE name = $1 AND user_id > $2 ORDER BY user_id LIMIT $3`, key, after, limit+1)
		if err != nil {
			return err
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		if len(ids) > limit {
			ids = ids[:limit]
			b, _ := json.Marshal(memberCursor{Group: id, After: ids[limit-1]})
			page.Next = base64.RawURLEncoding.EncodeToString(b)
		}
		page.UserIDs = ids
		return nil
	})
	if err != nil {
		return storage.MemberPage{}, dbErr(fmt.Sprintf("members of group %q", id), err)
	}
	if page.UserIDs == nil {
		page.UserIDs = []string{}
	}
	return page, nil
}
