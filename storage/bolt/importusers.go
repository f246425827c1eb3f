package bolt

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// CreateUsers stores users in one write transaction, each as CreateUser
// would: a refusal returns from the transaction, which bbolt then rolls
// back, so nothing of the batch stays. The indexes of the users stored
// before a refusal are in the same transaction, which is how a clash
// between two new users is found.
func (d *DB) CreateUsers(ctx context.Context, users []storage.User) error {
	if len(users) == 0 {
		return nil
	}
	for _, u := range users {
		if err := checkUser(u); err != nil {
			return fmt.Errorf("create users: user %q: %w", u.ID, err)
		}
	}
	// In key order, bbolt appends to its pages instead of splitting them
	// all over the tree: a large import writes about half the pages.
	order := make([]int, len(users))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(users[a].ID, users[b].ID) })
	now := d.now()
	return d.db.Update(func(tx *bbolt.Tx) error {
		for _, i := range order {
			// CreateUser's own write: the same checks, indexes (the search
			// index included) and reservations.
			if err := createUserTx(tx, users[i], now); err != nil {
				return fmt.Errorf("create users: %w", err)
			}
		}
		return nil
	})
}

// ListUsersPage returns up to limit users in ListUsers' order (username,
// ignoring case) whose lower-cased username comes after after ("" for the
// first page), each page in a read transaction of its own: the export
// reads 100,000 users without holding them, or one transaction, at once.
// It stands in for the paged user search the admin console brings.
func (d *DB) ListUsersPage(ctx context.Context, after string, limit int) ([]storage.User, error) {
	if limit <= 0 {
		return nil, fmt.Errorf("list users page: limit %d: %w", limit, storage.ErrInvalid)
	}
	users := make([]storage.User, 0, limit)
	err := d.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bUsers)
		c := tx.Bucket(bUsersByUsername).Cursor()
		k, id := c.First()
		if after != "" {
			k, id = c.Seek([]byte(after))
			if k != nil && bytes.Equal(k, []byte(after)) {
				k, id = c.Next()
			}
		}
		for ; k != nil && len(users) < limit; k, id = c.Next() {
			var u storage.User
			ok, err := getJSON(b, string(id), &u)
			if err != nil {
				return err
			}
			if ok {
				users = append(users, u)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list users page after %q: %w", after, err)
	}
	return users, nil
}
