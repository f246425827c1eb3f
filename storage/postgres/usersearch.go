package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/keyport/keyport/storage"
)

// userCursor is where a page of SearchUsers ended: the last user's sort
// key as the database holds it, and which query it belongs to.
type userCursor struct {
	Query uint64 `json:"q"`
	At    int64  `json:"t"` // the sort column, in Unix microseconds
	ID    string `json:"id"`
}

// queryHash identifies a query's filters and sort (not its page size or
// cursor), compared as the search compares them, so a cursor continues
// only the query it came from.
func queryHash(q storage.UserQuery) uint64 {
	var b strings.Builder
	opt := func(p *bool) string {
		if p == nil {
			return "-"
		}
		return strconv.FormatBool(*p)
	}
	src := "-"
	if q.Source != nil {
		src = "=" + *q.Source
	}
	fmt.Fprintf(&b, "%q %q %s %s %s %q %q", storage.Fold(q.Search), src, opt(q.Blocked), opt(q.Admin), opt(q.TwoFactor), storage.Fold(q.Group), sortOf(q))
	sum := sha256.Sum256([]byte(b.String()))
	return binary.BigEndian.Uint64(sum[:8])
}

func sortOf(q storage.UserQuery) string {
	if q.Sort == "" {
		return storage.UserSortCreated
	}
	return q.Sort
}

// SearchUsers returns a page of the users matching q, newest first by
// the sort column, then by ID: keyset paging on the index of that
// column, so a page costs the same however deep it is.
func (d *DB) SearchUsers(ctx context.Context, q storage.UserQuery) (storage.UserPage, error) {
	fail := func(format string, args ...any) (storage.UserPage, error) {
		return storage.UserPage{}, fmt.Errorf("search users: %s: %w", fmt.Sprintf(format, args...), storage.ErrInvalid)
	}
	if len(q.Search) > storage.MaxUserSearch || strings.ContainsRune(q.Search, 0) {
		return fail("search text too long or holding a NUL")
	}
	if len(q.Group) > storage.MaxUserSearch || strings.ContainsRune(q.Group, 0) {
		return fail("group too long or holding a NUL")
	}
	column := ""
	switch sortOf(q) {
	case storage.UserSortCreated:
		column = "u.created_at"
	case storage.UserSortLastSignIn:
		column = "u.last_login"
	default:
		return fail("unknown sort %q", q.Sort)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = storage.DefaultUserLimit
	}
	limit = min(limit, storage.MaxUserLimit)
	hash := queryHash(q)

	var where []string
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		var c userCursor
		if err != nil || json.Unmarshal(raw, &c) != nil || c.Query != hash || c.ID == "" {
			return fail("cursor not of this query")
		}
		where = append(where, fmt.Sprintf("(%s, u.id) < (%s, %s)", column, arg(time.UnixMicro(c.At).UTC()), arg(c.ID)))
	}
	if search := storage.Fold(q.Search); search != "" {
		where = append(where, "EXISTS (SELECT 1 FROM unnest(u.search) f WHERE strpos(f, "+arg(search)+") > 0)")
	}
	if q.Source != nil {
		where = append(where, "u.source = "+arg(*q.Source))
	}
	if q.Blocked != nil {
		where = append(where, "u.blocked = "+arg(*q.Blocked))
	}
	if q.Admin != nil {
		where = append(where, "u.admin = "+arg(*q.Admin))
	}
	if q.TwoFactor != nil {
		where = append(where, "(u.totp OR EXISTS (SELECT 1 FROM credentials c WHERE c.user_id = u.id AND c.kind = "+
			arg(storage.KindPasskey)+" AND (c.expires_at IS NULL OR c.expires_at > "+arg(d.now())+"))) = "+arg(*q.TwoFactor))
	}
	if q.Group != "" {
		where = append(where, "EXISTS (SELECT 1 FROM user_groups g WHERE g.user_id = u.id AND g.name = "+arg(storage.Fold(q.Group))+")")
	}
	sql := "SELECT u.record, " + column + ", u.id FROM users u"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	sql += fmt.Sprintf(" ORDER BY %s DESC, u.id DESC LIMIT %s", column, arg(limit+1))

	var page storage.UserPage
	var last userCursor
	n := 0
	rows, err := d.pool.Query(ctx, sql, args...)
	if err != nil {
		return storage.UserPage{}, dbErr("search users", err)
	}
	defer rows.Close()
	for rows.Next() {
		var rec []byte
		var at time.Time
		var id string
		if err := rows.Scan(&rec, &at, &id); err != nil {
			return storage.UserPage{}, dbErr("search users", err)
		}
		n++
		if n > limit {
			page.Next = encodeCursor(last)
			break
		}
		u, err := unmarshal[storage.User](rec)
		if err != nil {
			return storage.UserPage{}, fmt.Errorf("search users: decode %q: %w", id, err)
		}
		page.Users = append(page.Users, u)
		last = userCursor{Query: hash, At: at.UnixMicro(), ID: id}
	}
	if err := rows.Err(); err != nil {
		return storage.UserPage{}, dbErr("search users", err)
	}
	return page, nil
}

func encodeCursor(c userCursor) string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}
