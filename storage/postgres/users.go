package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/keyport/keyport/storage"
)

// userRecords are the statements DeleteUser runs in its transaction to
// delete what a user owns in other areas' tables ($1 is the user's ID).
// The users area's own tables (logins, identities, groups) go with the
// user by their foreign keys. An area whose records belong to a user adds
// its statement here when its table lands.
var userRecords = []string{
	"DELETE FROM avatars WHERE user_id = $1",
	"DELETE FROM credentials WHERE user_id = $1",
	"DELETE FROM sessions WHERE user_id = $1",
	"DELETE FROM grants WHERE user_id = $1",
	"DELETE FROM webhooks WHERE owner_user_id = $1",
	"DELETE FROM access_tokens WHERE user_id = $1",
	"DELETE FROM refresh_families WHERE user_id = $1",
}

// loginKey is the form usernames and emails are unique and looked up in:
// lower case, as storage/bolt keeps them (not storage.Fold, under which
// "Straße" and "STRASSE" would be one name: the suite keeps them two).
func loginKey(s string) string { return strings.ToLower(s) }

func checkUser(u storage.User) error {
	switch {
	case u.ID == "":
		return fmt.Errorf("empty ID: %w", storage.ErrInvalid)
	case u.Username == "":
		return fmt.Errorf("empty username: %w", storage.ErrInvalid)
	}
	for _, ident := range u.Identities {
		if ident.Connection == "" || ident.UserID == "" {
			return fmt.Errorf("identity without connection or user ID: %w", storage.ErrInvalid)
		}
	}
	return nil
}

// searchText is what SearchUsers' text search looks in: the folded
// fields, NULs dropped (a search for a NUL is refused anyway).
func searchText(u storage.User) []string {
	fields := []string{u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, u.Nickname, u.PhoneNumber}
	out := make([]string, 0, len(fields))
	for _, f := range fields {
		if f != "" {
			out = append(out, strings.ReplaceAll(storage.Fold(f), "\x00", ""))
		}
	}
	return out
}

const userColumns = "record"

func scanUser(row pgx.Row) (storage.User, error) {
	var b []byte
	if err := row.Scan(&b); err != nil {
		return storage.User{}, err
	}
	return unmarshal[storage.User](b)
}

// writeUserTx stores nu (a new user when old is nil, else the new state
// of old) with its login names, identities and groups, in tx. Every
// uniqueness is a constraint; the one that fails names the error. now
// decides which reservations still hold.
func writeUserTx(ctx context.Context, tx pgx.Tx, old *storage.User, nu storage.User, now time.Time) error {
	rec, err := marshal(nu)
	if err != nil {
		return err
	}
	args := []any{nu.ID, nu.CreatedAt, nu.LastLogin, nu.Admin, nu.Blocked, len(nu.TOTPSecret) > 0, nu.Source, searchText(nu), rec}
	if old == nil {
		_, err = tx.Exec(ctx, `INSERT INTO users (id, created_at, last_login, admin, blocked, totp, source, search, record)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`, args...)
		if isUniqueViolation(err, "users_pkey") {
			return fmt.Errorf("user %q: %w", nu.ID, storage.ErrConflict)
		}
	} else {
		_, err = tx.Exec(ctx, `UPDATE users SET created_at = $2, last_login = $3, admin = $4, blocked = $5, totp = $6,
			source = $7, search = $8, record = $9 WHERE id = $1`, args...)
	}
	if err != nil {
		return err
	}
	if err := writeLoginsTx(ctx, tx, old, nu, now); err != nil {
		return err
	}
	if err := writeIdentitiesTx(ctx, tx, old, nu); err != nil {
		return err
	}
	return writeGroupsTx(ctx, tx, old, nu)
}

// writeLoginsTx moves the user's login names to nu's. A name another user
// holds gives a NameConflict (the primary key of user_logins finds it);
// a name new to the user that a deleted user's reservation holds, too.
func writeLoginsTx(ctx context.Context, tx pgx.Tx, old *storage.User, nu storage.User, now time.Time) error {
	name, email := loginKey(nu.Username), loginKey(nu.Email)
	var oldName, oldEmail string
	if old != nil {
		oldName, oldEmail = loginKey(old.Username), loginKey(old.Email)
		if name == oldName && email == oldEmail {
			return nil
		}
		if _, err := tx.Exec(ctx, "DELETE FROM user_logins WHERE user_id = $1", nu.ID); err != nil {
			return err
		}
	}
	type login struct{ field, value, key string }
	logins := []login{{"username", nu.Username, name}}
	if email != "" && email != name {
		logins = append(logins, login{"email", nu.Email, email})
	}
	for _, l := range logins {
		_, err := tx.Exec(ctx, "INSERT INTO user_logins (name, user_id, field) VALUES ($1, $2, $3)", l.key, nu.ID, l.field)
		if isUniqueViolation(err, "") {
			return &storage.NameConflict{Field: l.field, Value: l.value}
		}
		if err != nil {
			return err
		}
	}
	// Names the user held already were never reserved against them.
	for _, l := range logins {
		if l.key == oldName || l.key == oldEmail {
			continue
		}
		var until time.Time
		err := tx.QueryRow(ctx, "SELECT until FROM reserved_names WHERE name = $1 AND until > $2", l.key, now).Scan(&until)
		if err == nil {
			return &storage.NameConflict{Field: l.field, Value: l.value, Reserved: true, Until: utc(until)}
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
	}
	return nil
}

func writeIdentitiesTx(ctx context.Context, tx pgx.Tx, old *storage.User, nu storage.User) error {
	if old != nil {
		if slices.Equal(identityKeys(old.Identities), identityKeys(nu.Identities)) {
			return nil
		}
		if _, err := tx.Exec(ctx, "DELETE FROM user_identities WHERE user_id = $1", nu.ID); err != nil {
			return err
		}
	}
	for _, ident := range nu.Identities {
		_, err := tx.Exec(ctx, `INSERT INTO user_identities (connection, external_id, user_id) VALUES ($1, $2, $3)
			ON CONFLICT (connection, external_id) DO UPDATE SET user_id = excluded.user_id WHERE user_identities.user_id = excluded.user_id`,
			ident.Connection, ident.UserID, nu.ID)
		if err != nil {
			return err
		}
	}
	// ON CONFLICT above lets a user list one identity twice; another
	// user's holding it is a conflict, which the count shows.
	var theirs int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM user_identities i
		JOIN unnest($1::text[], $2::text[]) AS n (connection, external_id) USING (connection, external_id)
		WHERE i.user_id <> $3`, identityConnections(nu.Identities), identityIDs(nu.Identities), nu.ID).Scan(&theirs)
	if err != nil {
		return err
	}
	if theirs > 0 {
		return fmt.Errorf("identity of user %q: %w", nu.ID, storage.ErrConflict)
	}
	return nil
}

func identityKeys(ids []storage.Identity) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Connection + "\x00" + id.UserID
	}
	return out
}

func identityConnections(ids []storage.Identity) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.Connection
	}
	return out
}

func identityIDs(ids []storage.Identity) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = id.UserID
	}
	return out
}

// groupKeys are a user's groups as user_groups keeps them: folded, once.
func groupKeys(groups []string) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		out = append(out, storage.Fold(g))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func writeGroupsTx(ctx context.Context, tx pgx.Tx, old *storage.User, nu storage.User) error {
	keys := groupKeys(nu.Groups)
	if old != nil {
		if slices.Equal(groupKeys(old.Groups), keys) {
			return nil
		}
		if _, err := tx.Exec(ctx, "DELETE FROM user_groups WHERE user_id = $1", nu.ID); err != nil {
			return err
		}
	}
	if len(keys) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, "INSERT INTO user_groups (user_id, name) SELECT $1, unnest($2::text[])", nu.ID, keys)
	return err
}

// CreateUser stores a new user. The ID, the username, the email (when not
// empty) and every identity must be free; usernames and emails share one
// namespace, so a login always names at most one user.
func (d *DB) CreateUser(ctx context.Context, u storage.User) error {
	if err := checkUser(u); err != nil {
		return fmt.Errorf("create user %q: %w", u.ID, err)
	}
	now := d.now()
	err := d.inTx(ctx, func(tx pgx.Tx) error { return writeUserTx(ctx, tx, nil, u, now) })
	return dbErr(fmt.Sprintf("create user %q", u.ID), err)
}

// CreateUsers stores users in one transaction, each as CreateUser would;
// the first refusal rolls all of them back.
func (d *DB) CreateUsers(ctx context.Context, users []storage.User) error {
	if len(users) == 0 {
		return nil
	}
	for _, u := range users {
		if err := checkUser(u); err != nil {
			return fmt.Errorf("create users: user %q: %w", u.ID, err)
		}
	}
	now := d.now()
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		for _, u := range users {
			if err := writeUserTx(ctx, tx, nil, u, now); err != nil {
				return fmt.Errorf("user %q: %w", u.ID, err)
			}
		}
		return nil
	})
	return dbErr("create users", err)
}

func (d *DB) GetUser(ctx context.Context, id string) (storage.User, error) {
	u, err := scanUser(d.pool.QueryRow(ctx, "SELECT "+userColumns+" FROM users WHERE id = $1", id))
	if err != nil {
		return storage.User{}, dbErr(fmt.Sprintf("get user %q", id), err)
	}
	return u, nil
}

// GetUserByLogin finds the user whose username or email is login,
// ignoring case.
func (d *DB) GetUserByLogin(ctx context.Context, login string) (storage.User, error) {
	if login == "" {
		return storage.User{}, notFound("get user by login", login)
	}
	u, err := scanUser(d.pool.QueryRow(ctx, "SELECT u."+userColumns+" FROM user_logins l JOIN users u ON u.id = l.user_id WHERE l.name = $1", loginKey(login)))
	if err != nil {
		return storage.User{}, dbErr(fmt.Sprintf("get user by login %q", login), err)
	}
	return u, nil
}

func (d *DB) GetUserByIdentity(ctx context.Context, connection, externalID string) (storage.User, error) {
	u, err := scanUser(d.pool.QueryRow(ctx, `SELECT u.`+userColumns+` FROM user_identities i JOIN users u ON u.id = i.user_id
		WHERE i.connection = $1 AND i.external_id = $2`, connection, externalID))
	if err != nil {
		return storage.User{}, dbErr(fmt.Sprintf("get user by identity %s/%s", connection, externalID), err)
	}
	return u, nil
}

// ListUsers returns every user ordered by username, ignoring case.
func (d *DB) ListUsers(ctx context.Context) ([]storage.User, error) {
	rows, err := d.pool.Query(ctx, `SELECT u.`+userColumns+` FROM users u
		JOIN user_logins l ON l.user_id = u.id AND l.field = 'username' ORDER BY l.name`)
	if err != nil {
		return nil, dbErr("list users", err)
	}
	users, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (storage.User, error) { return scanUser(r) })
	return users, dbErr("list users", err)
}

func (d *DB) CountUsers(ctx context.Context) (int, error) {
	var n int
	err := d.pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n)
	return n, dbErr("count users", err)
}

// CountAdmins counts the admins who can act (not blocked).
func (d *DB) CountAdmins(ctx context.Context) (int, error) {
	var n int
	err := d.pool.QueryRow(ctx, "SELECT count(*) FROM users WHERE admin AND NOT blocked").Scan(&n)
	return n, dbErr("count admins", err)
}

// UpdateUser applies fn to the user, locked (SELECT … FOR UPDATE) for the
// transaction: concurrent updates of one user queue, and fn runs once.
func (d *DB) UpdateUser(ctx context.Context, id string, fn func(storage.User) (storage.User, error)) (storage.User, error) {
	var out storage.User
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = updateUserTx(ctx, tx, id, d.now(), fn)
		return err
	})
	if err != nil {
		return storage.User{}, dbErr(fmt.Sprintf("update user %q", id), err)
	}
	return out, nil
}

// updateUserTx applies fn to the locked user in tx; an error of fn comes
// back as a callbackError (returned unmapped).
func updateUserTx(ctx context.Context, tx pgx.Tx, id string, now time.Time, fn func(storage.User) (storage.User, error)) (storage.User, error) {
	var rec []byte
	if err := tx.QueryRow(ctx, "SELECT record FROM users WHERE id = $1 FOR UPDATE", id).Scan(&rec); err != nil {
		return storage.User{}, err
	}
	old, err := unmarshal[storage.User](rec)
	if err != nil {
		return storage.User{}, err
	}
	arg, _ := unmarshal[storage.User](rec) // a second copy, so fn cannot alias old's slices
	nu, err := fn(arg)
	if err != nil {
		return storage.User{}, &callbackError{fmt.Errorf("update user %q: %w", id, err)}
	}
	if nu.ID != id {
		return storage.User{}, fmt.Errorf("the ID cannot change (got %q): %w", nu.ID, storage.ErrInvalid)
	}
	if err := checkUser(nu); err != nil {
		return storage.User{}, err
	}
	if err := writeUserTx(ctx, tx, &old, nu, now); err != nil {
		return storage.User{}, err
	}
	return nu, nil
}

// DeleteUser deletes the user with what it owns (userRecords). When
// reserveNamesUntil is still to come, the username and email stay
// reserved until then; a longer reservation of a name is kept.
func (d *DB) DeleteUser(ctx context.Context, id string, reserveNamesUntil time.Time) error {
	now := d.now()
	err := d.inTx(ctx, func(tx pgx.Tx) error {
		var names []string
		err := tx.QueryRow(ctx, `WITH gone AS (DELETE FROM users WHERE id = $1 RETURNING id)
			SELECT coalesce(array_agg(l.name), '{}') FROM gone LEFT JOIN user_logins l ON l.user_id = gone.id
			HAVING count(gone.id) > 0`, id).Scan(&names)
		if err != nil {
			return err
		}
		if reserveNamesUntil.After(now) && len(names) > 0 {
			_, err := tx.Exec(ctx, `INSERT INTO reserved_names (name, user_id, until) SELECT unnest($1::text[]), $2, $3
				ON CONFLICT (name) DO UPDATE SET user_id = excluded.user_id, until = excluded.until
				WHERE reserved_names.until < excluded.until`, names, id, reserveNamesUntil)
			if err != nil {
				return err
			}
		}
		for _, stmt := range userRecords {
			if _, err := tx.Exec(ctx, stmt, id); err != nil {
				return err
			}
		}
		return nil
	})
	return dbErr(fmt.Sprintf("delete user %q", id), err)
}

// sweepReservedNames forgets the reservations that ended.
func sweepReservedNames(ctx context.Context, q querier, now time.Time, rep *storage.SweepReport) error {
	tag, err := q.Exec(ctx, "DELETE FROM reserved_names WHERE until <= $1", now)
	rep.ReservedNames += int(tag.RowsAffected())
	return err
}
