package bolt

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// CreateUser stores a new user. The ID, the username and the email (when not
// empty) must all be free; usernames and emails share one namespace, so a
// login always names at most one user.
func (d *DB) CreateUser(ctx context.Context, u storage.User) error {
	if err := checkUser(u); err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	now := d.now()
	return d.db.Update(func(tx *bbolt.Tx) error { return createUserTx(tx, u, now) })
}

// createUserTx stores a new user with every index; now decides which
// reservations still hold.
func createUserTx(tx *bbolt.Tx, u storage.User, now time.Time) error {
	b := tx.Bucket(bUsers)
	if has(b, u.ID) {
		return conflict("create user", u.ID)
	}
	if err := setUserIndexes(tx, nil, u, now); err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	if err := indexUserTx(tx, nil, &u); err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	return putJSON(b, u.ID, u)
}

func (d *DB) GetUser(ctx context.Context, id string) (storage.User, error) {
	var u storage.User
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getMemo(tx.Bucket(bUsers), d.memos.users, id, &u)
		if err == nil && !ok {
			err = notFound("get user", id)
		}
		return err
	})
	if err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// GetUserByLogin looks the login up as a username first, then as an email,
// ignoring case.
func (d *DB) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	var u storage.User
	key := []byte(strings.ToLower(login))
	err := d.db.View(func(tx *bbolt.Tx) error {
		id := tx.Bucket(bUsersByUsername).Get(key)
		if id == nil {
			id = tx.Bucket(bUsersByEmail).Get(key)
		}
		if id == nil {
			return notFound("get user by login", login)
		}
		ok, err := getMemo(tx.Bucket(bUsers), d.memos.users, string(id), &u)
		if err == nil && !ok {
			err = notFound("get user by login", login)
		}
		return err
	})
	if err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// GetUserByIdentity finds the user an external account is linked to.
func (d *DB) GetUserByIdentity(ctx context.Context, connection, externalID string) (storage.User, error) {
	var u storage.User
	err := d.db.View(func(tx *bbolt.Tx) error {
		id := tx.Bucket(bUsersByIdentity).Get([]byte(join(connection, externalID)))
		if id == nil {
			return notFound("get user by identity", connection+"/"+externalID)
		}
		ok, err := getJSON(tx.Bucket(bUsers), string(id), &u)
		if err == nil && !ok {
			err = notFound("get user by identity", connection+"/"+externalID)
		}
		return err
	})
	if err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// ListUsers returns every user ordered by username, ignoring case.
func (d *DB) ListUsers(ctx context.Context) ([]storage.User, error) {
	var users []storage.User
	err := d.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bUsers)
		return tx.Bucket(bUsersByUsername).ForEach(func(_, id []byte) error {
			var u storage.User
			ok, err := getJSON(b, string(id), &u)
			if err != nil || !ok {
				return err
			}
			users = append(users, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

func (d *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := d.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bUsers).Stats().KeyN
		return nil
	})
	return n, err
}

// UpdateUser applies fn inside one write transaction and moves the username
// and email indexes along. A new username or email that belongs to someone
// else, or is reserved, gives ErrConflict and changes nothing.
func (d *DB) UpdateUser(ctx context.Context, id string, fn func(storage.User) (storage.User, error)) (storage.User, error) {
	var out storage.User
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		out, err = updateUserTx(tx, id, d.now(), fn)
		return err
	})
	if err != nil {
		return storage.User{}, err
	}
	return out, nil
}

// updateUserTx applies fn to the stored user, with every index. Every
// error that leaves the transaction fit to commit (unknown user, fn's
// error, a taken or reserved name) comes before anything is written, so it
// may run in a shared batch. now decides which reservations still hold.
func updateUserTx(tx *bbolt.Tx, id string, now time.Time, fn func(storage.User) (storage.User, error)) (storage.User, error) {
	b := tx.Bucket(bUsers)
	var old, arg storage.User
	ok, err := getJSON(b, id, &old)
	if err != nil {
		return storage.User{}, err
	}
	if !ok {
		return storage.User{}, notFound("update user", id)
	}
	_, _ = getJSON(b, id, &arg) // a second copy, so fn cannot alias old's slices
	nu, err := fn(arg)
	if err != nil {
		return storage.User{}, &callbackError{fmt.Errorf("update user %q: %w", id, err)}
	}
	if nu.ID != id {
		return storage.User{}, fmt.Errorf("update user %q: the ID cannot change (got %q)", id, nu.ID)
	}
	if err := checkUser(nu); err != nil {
		return storage.User{}, fmt.Errorf("update user %q: %w", id, err)
	}
	if err := setUserIndexes(tx, &old, nu, now); err != nil {
		return storage.User{}, fmt.Errorf("update user %q: %w", id, err)
	}
	if err := indexUserTx(tx, &old, &nu); err != nil {
		return storage.User{}, fmt.Errorf("update user %q: %w", id, err)
	}
	return nu, putJSON(b, id, nu)
}

// RecordSignIn writes the three records of a sign-in in one shared commit
// (see batch): a sign-in costs one fsync, shared with concurrent ones.
func (d *DB) RecordSignIn(ctx context.Context, w storage.SignInWrite) (storage.User, error) {
	switch {
	case w.UserID == "" || w.Update == nil:
		return storage.User{}, errors.New("record sign-in: no user or no update")
	case w.Attempt.ID == "" || w.Attempt.UserID != w.UserID:
		return storage.User{}, fmt.Errorf("record sign-in of %q: the attempt has no ID or is another user's (%q)", w.UserID, w.Attempt.UserID)
	case w.Session != nil && (w.Session.ID == "" || w.Session.UserID != w.UserID):
		return storage.User{}, fmt.Errorf("record sign-in of %q: the session has no ID or is another user's (%q)", w.UserID, w.Session.UserID)
	}
	audit, err := newSignInAudit(w.Audit)
	if err != nil {
		return storage.User{}, fmt.Errorf("record sign-in of %q: %w", w.UserID, err)
	}
	msgs, err := newOutboxWrite(w.Outbox)
	if err != nil {
		return storage.User{}, fmt.Errorf("record sign-in of %q: %w", w.UserID, err)
	}
	var out storage.User
	err = d.batch(func(tx *bbolt.Tx) error {
		// Refusals first: until the user is written, nothing is.
		if w.Session != nil && has(tx.Bucket(bSessions), w.Session.ID) {
			return conflict("record sign-in: create session", w.Session.ID)
		}
		if err := audit.free(tx); err != nil {
			return err
		}
		if err := msgs.free(tx); err != nil {
			return err
		}
		u, err := updateUserTx(tx, w.UserID, d.now(), w.Update)
		if err != nil {
			return err
		}
		if err := addLoginAttemptTx(tx, w.Attempt); err != nil {
			return fmt.Errorf("record sign-in of %q: add login attempt: %w", w.UserID, err)
		}
		if w.Session != nil {
			if err := putSessionTx(tx, *w.Session); err != nil {
				return fmt.Errorf("record sign-in of %q: create session: %w", w.UserID, err)
			}
		}
		if err := audit.put(tx); err != nil {
			return fmt.Errorf("record sign-in of %q: append audit event: %w", w.UserID, err)
		}
		if err := msgs.put(tx); err != nil {
			return fmt.Errorf("record sign-in of %q: outbox: %w", w.UserID, err)
		}
		out = u
		return nil
	})
	if err != nil {
		return storage.User{}, err
	}
	return out, nil
}

// DeleteUser removes the user with its indexes, and with everything that
// would otherwise outlive it: sessions, tokens, grants, credentials and the
// avatar. Login attempts
// stay as history. The username and email stay reserved until
// reserveNamesUntil, when that is still to come.
func (d *DB) DeleteUser(ctx context.Context, id string, reserveNamesUntil time.Time) error {
	now := d.now()
	return d.db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bUsers)
		var u storage.User
		ok, err := getJSON(b, id, &u)
		if err != nil {
			return err
		}
		if !ok {
			return notFound("delete user", id)
		}
		if err := deleteUserIndexes(tx, u); err != nil {
			return err
		}
		if err := indexUserTx(tx, &u, nil); err != nil {
			return err
		}
		if reserveNamesUntil.After(now) {
			for _, name := range []string{u.Username, u.Email} {
				if err := reserveNameTx(tx, strings.ToLower(name), id, reserveNamesUntil); err != nil {
					return fmt.Errorf("delete user %q: %w", id, err)
				}
			}
		}
		if err := b.Delete([]byte(id)); err != nil {
			return err
		}
		if _, err := deleteUserSessionsTx(tx, id); err != nil {
			return err
		}
		if _, err := revokeUserClientTx(tx, id, ""); err != nil {
			return err
		}
		if _, err := deleteUserCredentialsTx(tx, id, ""); err != nil {
			return err
		}
		if err := tx.Bucket(bAvatars).Delete([]byte(id)); err != nil {
			return err
		}
		if err := deleteUserWebhooksTx(tx, id); err != nil {
			return err
		}
		return deleteUserGrantsTx(tx, id)
	})
}

func checkUser(u storage.User) error {
	switch {
	case u.ID == "":
		return errors.New("empty ID")
	case u.Username == "":
		return errors.New("empty username")
	}
	return nil
}

// setUserIndexes points the indexes at nu, dropping old's names (old is nil
// for a new user). It checks everything before it writes anything: a name
// taken by someone else, or new to nu and reserved as of now.
func setUserIndexes(tx *bbolt.Tx, old *storage.User, nu storage.User, now time.Time) error {
	byName, byEmail := tx.Bucket(bUsersByUsername), tx.Bucket(bUsersByEmail)
	name, email := strings.ToLower(nu.Username), strings.ToLower(nu.Email)
	taken := func(b *bbolt.Bucket, key string) bool {
		owner := b.Get([]byte(key))
		return owner != nil && string(owner) != nu.ID
	}
	if taken(byName, name) || taken(byEmail, name) {
		return &storage.NameConflict{Field: "username", Value: nu.Username}
	}
	if email != "" && (taken(byEmail, email) || taken(byName, email)) {
		return &storage.NameConflict{Field: "email", Value: nu.Email}
	}
	for _, n := range []struct{ what, value, key, before string }{
		{"username", nu.Username, name, oldLower(old, func(u *storage.User) string { return u.Username })},
		{"email", nu.Email, email, oldLower(old, func(u *storage.User) string { return u.Email })},
	} {
		if n.key == "" || n.key == n.before {
			continue // kept names were never reserved against their holder
		}
		if err := checkReservedTx(tx, n.what, n.value, n.key, now); err != nil {
			return err
		}
	}
	byIdentity := tx.Bucket(bUsersByIdentity)
	for _, ident := range nu.Identities {
		if ident.Connection == "" || ident.UserID == "" {
			return fmt.Errorf("identity without connection or user ID")
		}
		if taken(byIdentity, join(ident.Connection, ident.UserID)) {
			return fmt.Errorf("identity %s/%s: %w", ident.Connection, ident.UserID, storage.ErrConflict)
		}
	}
	if old != nil {
		if err := deleteUserIndexes(tx, *old); err != nil {
			return err
		}
	}
	if err := byName.Put([]byte(name), []byte(nu.ID)); err != nil {
		return err
	}
	for _, ident := range nu.Identities {
		if err := byIdentity.Put([]byte(join(ident.Connection, ident.UserID)), []byte(nu.ID)); err != nil {
			return err
		}
	}
	if email != "" {
		return byEmail.Put([]byte(email), []byte(nu.ID))
	}
	return nil
}

// oldLower is a field of old in lower case; "" when old is nil.
func oldLower(old *storage.User, field func(*storage.User) string) string {
	if old == nil {
		return ""
	}
	return strings.ToLower(field(old))
}

func deleteUserIndexes(tx *bbolt.Tx, u storage.User) error {
	// Only delete entries that point at u, in case an index was ever shared.
	del := func(b *bbolt.Bucket, key string) error {
		if key == "" || string(b.Get([]byte(key))) != u.ID {
			return nil
		}
		return b.Delete([]byte(key))
	}
	if err := del(tx.Bucket(bUsersByUsername), strings.ToLower(u.Username)); err != nil {
		return err
	}
	for _, ident := range u.Identities {
		if err := del(tx.Bucket(bUsersByIdentity), join(ident.Connection, ident.UserID)); err != nil {
			return err
		}
	}
	return del(tx.Bucket(bUsersByEmail), strings.ToLower(u.Email))
}
