package bolt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// The user search index. Decoding 100,000 users' JSON for every page of
// the admin console's list is far too slow, so every user also has a
// summary: a few dozen bytes holding what the filters look at, with the
// text already folded (storage.Fold). The summary is stored twice, under
// the two sort keys (nanos(CreatedAt) ID and nanos(LastLogin) ID), so a
// page in either order is one backward cursor walk that stops once the
// page is full; only the users on the page are decoded in full. Keeping
// the second copy is what a sign-in pays: it moves the user's entry in
// the sign-in order. The summary holds no time, so the entry under the
// creation order stays as it is.
//
// Beside it, users_by_group maps Fold(group) NUL user ID to
// nanos(CreatedAt), so a group's members, renames and deletes, and the
// group filter, read only the group's users; users_admins holds the IDs of
// the admins who are not blocked (CountAdmins).
//
// indexUserTx keeps all of it in the same transaction as every write of a
// user; setPasskeyFlagTx follows passkeys for the two-factor flag.

// Summary layout: version(1) flags(1), then three uvarint-length-prefixed
// byte strings:
// the source directory, the folded text (username, email, name, given
// name, family name, nickname, phone, NUL-separated) and the folded groups
// (each between NULs: NUL g1 NUL g2 NUL; empty without groups).
const summaryVersion = 1

const (
	sumBlocked byte = 1 << iota
	sumAdmin
	sumTOTP    // a confirmed TOTP secret
	sumPasskey // at least one passkey credential
)

// appendFill is the FillPercent of buckets written mostly at their ends
// (appendOnlyBuckets; guardedDB sets it in every write transaction). By default
// a page that overflows is split in half, which suits keys inserted
// anywhere; keys that grow with time are inserted at the end, where a
// half-full page stays half full: the bucket takes twice the pages, and
// each commit writes more of them at its tail. Not 1.0: a record
// rewritten in place (a rotated refresh link gains its rotation time) may
// grow a little.
const appendFill = 0.9

// groupPathMax is the largest group whose members a group-filtered search
// reads through users_by_group (then sorts them in memory), at about 2 µs
// a member; a larger group is filtered while walking the sort order, where
// one user in every total/groupPathMax or more is a member, so a page
// fills soon unless other filters thin it out. A variable so tests can
// take either path.
var groupPathMax = 1000

// userCursorFingerprintLen is the prefix of a cursor that ties it to its query.
const userCursorFingerprintLen = 8

type userSummary struct {
	flags        byte
	source, text []byte
	groups       []byte
}

// foldedGroups returns the user's group names folded, sorted and without
// repeats. A NUL (which no query can hold) becomes U+FFFD so it cannot
// split a name in the NUL-separated forms.
func foldedGroups(groups []string) []string {
	out := make([]string, 0, len(groups))
	for _, g := range groups {
		out = append(out, foldName(g))
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func foldName(s string) string { return strings.ReplaceAll(storage.Fold(s), "\x00", "\uFFFD") }

func summarize(u storage.User, passkey bool) []byte {
	var flags byte
	if u.Blocked {
		flags |= sumBlocked
	}
	if u.Admin {
		flags |= sumAdmin
	}
	if len(u.TOTPSecret) > 0 {
		flags |= sumTOTP
	}
	if passkey {
		flags |= sumPasskey
	}
	fields := []string{u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, u.Nickname, u.PhoneNumber}
	for i, f := range fields {
		fields[i] = foldName(f)
	}
	text := strings.Join(fields, "\x00")
	groups := ""
	if fg := foldedGroups(u.Groups); len(fg) > 0 {
		groups = "\x00" + strings.Join(fg, "\x00") + "\x00"
	}
	out := make([]byte, 0, 2+3*binary.MaxVarintLen32+len(u.Source)+len(text)+len(groups))
	out = append(out, summaryVersion, flags)
	for _, part := range []string{u.Source, text, groups} {
		out = binary.AppendUvarint(out, uint64(len(part)))
		out = append(out, part...)
	}
	return out
}

// parseSummary reads a summary without copying: its slices point into v.
func parseSummary(v []byte) (userSummary, bool) {
	var s userSummary
	if len(v) < 2 || v[0] != summaryVersion {
		return s, false
	}
	s.flags = v[1]
	rest := v[2:]
	for _, part := range []*[]byte{&s.source, &s.text, &s.groups} {
		n, w := binary.Uvarint(rest)
		if w <= 0 || n > uint64(len(rest)-w) {
			return s, false
		}
		*part = rest[w : w+int(n)]
		rest = rest[w+int(n):]
	}
	return s, len(rest) == 0
}

func createdKey(u storage.User) []byte { return append(appendNanos(nil, u.CreatedAt), u.ID...) }
func signInKey(u storage.User) []byte  { return append(appendNanos(nil, u.LastLogin), u.ID...) }

// groupKey is the users_by_group key of a folded group name and a user.
func groupKey(folded, userID string) []byte { return []byte(join(folded, userID)) }

func activeAdmin(u *storage.User) bool { return u != nil && u.Admin && !u.Blocked }

// indexUserTx moves the search, group and admin indexes from old to nu:
// old nil for a new user, nu nil for a deleted one. It reads the passkey
// flag from old's summary (or, for a new user, from the credentials).
func indexUserTx(tx *bbolt.Tx, old, nu *storage.User) error {
	created, signIn := tx.Bucket(bUserSearchCreated), tx.Bucket(bUserSearchSignIn)
	var oldCK, oldSK, oldSum []byte
	var passkey, oldParsed bool
	if old != nil {
		oldCK, oldSK = createdKey(*old), signInKey(*old)
		oldSum = bytes.Clone(created.Get(oldCK))
		var s userSummary
		if s, oldParsed = parseSummary(oldSum); oldParsed {
			passkey = s.flags&sumPasskey != 0
		} else if nu != nil {
			var err error
			if passkey, err = hasPasskey(tx, nu.ID); err != nil {
				return err
			}
		}
	} else if nu != nil {
		var err error
		if passkey, err = hasPasskey(tx, nu.ID); err != nil {
			return err
		}
	}

	// The two sort orders.
	var newCK, newSK, newSum []byte
	if nu != nil {
		newCK, newSK = createdKey(*nu), signInKey(*nu)
		if oldParsed && sameSummaryFields(*old, *nu) {
			newSum = oldSum // a sign-in: nothing to fold again
		} else {
			newSum = summarize(*nu, passkey)
		}
	}
	for _, o := range []struct {
		b        *bbolt.Bucket
		from, to []byte
	}{{created, oldCK, newCK}, {signIn, oldSK, newSK}} {
		if o.from != nil && !bytes.Equal(o.from, o.to) {
			if err := o.b.Delete(o.from); err != nil {
				return err
			}
		}
		if o.to != nil && !bytes.Equal(o.b.Get(o.to), newSum) {
			if err := o.b.Put(o.to, newSum); err != nil {
				return err
			}
		}
	}

	if err := moveGroupEntriesTx(tx, old, nu); err != nil {
		return err
	}

	// Admins who can act.
	admins := tx.Bucket(bAdmins)
	if activeAdmin(old) && !activeAdmin(nu) {
		if err := admins.Delete([]byte(old.ID)); err != nil {
			return err
		}
	}
	if activeAdmin(nu) && !activeAdmin(old) {
		return admins.Put([]byte(nu.ID), emptyValue)
	}
	return nil
}

// moveGroupEntriesTx moves the user's users_by_group entries from old to
// nu. The entries' values carry the creation time, so a changed CreatedAt
// rewrites them all.
func moveGroupEntriesTx(tx *bbolt.Tx, old, nu *storage.User) error {
	if old != nil && nu != nil && slices.Equal(old.Groups, nu.Groups) && old.CreatedAt.Equal(nu.CreatedAt) {
		return nil // most updates, and every sign-in
	}
	var oldGroups, newGroups []string
	var oldCreated, newCreated []byte
	if old != nil {
		oldGroups, oldCreated = foldedGroups(old.Groups), appendNanos(nil, old.CreatedAt)
	}
	if nu != nil {
		newGroups, newCreated = foldedGroups(nu.Groups), appendNanos(nil, nu.CreatedAt)
	}
	byGroup := tx.Bucket(bUsersByGroup)
	sameCreated := bytes.Equal(oldCreated, newCreated)
	for _, g := range oldGroups {
		if sameCreated && slices.Contains(newGroups, g) {
			continue
		}
		if err := byGroup.Delete(groupKey(g, old.ID)); err != nil {
			return err
		}
	}
	for _, g := range newGroups {
		if sameCreated && slices.Contains(oldGroups, g) {
			continue
		}
		if err := byGroup.Put(groupKey(g, nu.ID), newCreated); err != nil {
			return err
		}
	}
	return nil
}

// sameSummaryFields tells whether a and b have the same summary (given
// the same passkeys).
func sameSummaryFields(a, b storage.User) bool {
	return a.Username == b.Username && a.Email == b.Email && a.Name == b.Name && a.GivenName == b.GivenName &&
		a.FamilyName == b.FamilyName && a.Nickname == b.Nickname && a.PhoneNumber == b.PhoneNumber &&
		a.Source == b.Source && a.Blocked == b.Blocked && a.Admin == b.Admin &&
		(len(a.TOTPSecret) > 0) == (len(b.TOTPSecret) > 0) && slices.Equal(a.Groups, b.Groups)
}

// hasPasskey tells whether the user holds a passkey credential.
func hasPasskey(tx *bbolt.Tx, userID string) (bool, error) {
	prefix := []byte(userID + "\x00")
	c := tx.Bucket(bCredentials).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var cr struct {
			Kind string `json:"kind"`
		}
		if err := json.Unmarshal(v, &cr); err != nil {
			return false, fmt.Errorf("decode credential %q: %w", k, err)
		}
		if cr.Kind == storage.KindPasskey {
			return true, nil
		}
	}
	return false, nil
}

// setPasskeyFlagTx brings the user's passkey flag up to date after one of
// their passkeys came or went. A credential of no (or no longer a) user
// changes nothing.
func setPasskeyFlagTx(tx *bbolt.Tx, userID string) error {
	var u storage.User
	ok, err := getJSON(tx.Bucket(bUsers), userID, &u)
	if err != nil || !ok {
		return err
	}
	passkey, err := hasPasskey(tx, userID)
	if err != nil {
		return err
	}
	sum := summarize(u, passkey)
	if err := tx.Bucket(bUserSearchCreated).Put(createdKey(u), sum); err != nil {
		return err
	}
	return tx.Bucket(bUserSearchSignIn).Put(signInKey(u), sum)
}

// buildUserIndexes indexes every stored user: the migration for
// databases written before the index existed. It runs in one transaction,
// where bbolt splits no page before the commit: entries put in random
// order would each shift a growing page's entries along, so they are
// gathered first and put in key order, each at the end.
func buildUserIndexes(tx *bbolt.Tx) error {
	passkeys := map[string]bool{}
	err := tx.Bucket(bCredentials).ForEach(func(k, v []byte) error {
		var c struct {
			UserID string `json:"user_id"`
			Kind   string `json:"kind"`
		}
		if err := json.Unmarshal(v, &c); err != nil {
			return fmt.Errorf("decode credential %q: %w", k, err)
		}
		if c.Kind == storage.KindPasskey {
			passkeys[c.UserID] = true
		}
		return nil
	})
	if err != nil {
		return err
	}
	type entry struct{ k, v []byte }
	var created, signIn, groups, admins []entry
	err = tx.Bucket(bUsers).ForEach(func(k, v []byte) error {
		var u storage.User
		if err := json.Unmarshal(v, &u); err != nil {
			return fmt.Errorf("decode user %q: %w", k, err)
		}
		sum := summarize(u, passkeys[u.ID])
		created = append(created, entry{createdKey(u), sum})
		signIn = append(signIn, entry{signInKey(u), sum})
		for _, g := range foldedGroups(u.Groups) {
			groups = append(groups, entry{groupKey(g, u.ID), appendNanos(nil, u.CreatedAt)})
		}
		if activeAdmin(&u) {
			admins = append(admins, entry{[]byte(u.ID), emptyValue})
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, ix := range []struct {
		name    []byte
		entries []entry
	}{{bUserSearchCreated, created}, {bUserSearchSignIn, signIn}, {bUsersByGroup, groups}, {bAdmins, admins}} {
		slices.SortFunc(ix.entries, func(a, b entry) int { return bytes.Compare(a.k, b.k) })
		b := tx.Bucket(ix.name)
		b.FillPercent = appendFill
		for _, e := range ix.entries {
			if err := b.Put(e.k, e.v); err != nil {
				return fmt.Errorf("build %s: %w", ix.name, err)
			}
		}
	}
	return nil
}

// CountAdmins counts the admins who are not blocked.
func (d *DB) CountAdmins(ctx context.Context) (int, error) {
	n := 0
	err := d.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bAdmins).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("count admins: %w", err)
	}
	return n, nil
}

// userMatcher is a UserQuery's filters, folded once.
type userMatcher struct {
	search       []byte
	source       []byte
	anySource    bool
	set, want    byte // flags that must be set to want's value
	twoFactor    *bool
	group        string // folded
	groupInSum   []byte // NUL group NUL
	bySignIn     bool
	fingerprint  []byte
	limit        int
	afterSortKey []byte
}

func newUserMatcher(q storage.UserQuery) (*userMatcher, error) {
	switch {
	case len(q.Search) > storage.MaxUserSearch || len(q.Group) > storage.MaxUserSearch:
		return nil, fmt.Errorf("search or group longer than %d bytes: %w", storage.MaxUserSearch, storage.ErrInvalid)
	case strings.ContainsRune(q.Search, 0) || strings.ContainsRune(q.Group, 0):
		return nil, fmt.Errorf("search or group holds a NUL: %w", storage.ErrInvalid)
	case q.Sort != "" && q.Sort != storage.UserSortCreated && q.Sort != storage.UserSortLastSignIn:
		return nil, fmt.Errorf("unknown sort %q: %w", q.Sort, storage.ErrInvalid)
	}
	m := &userMatcher{search: []byte(storage.Fold(q.Search)), anySource: q.Source == nil, bySignIn: q.Sort == storage.UserSortLastSignIn, twoFactor: q.TwoFactor}
	if q.Source != nil {
		m.source = []byte(*q.Source)
	}
	for _, f := range []struct {
		v    *bool
		flag byte
	}{{q.Blocked, sumBlocked}, {q.Admin, sumAdmin}} {
		if f.v != nil {
			m.set |= f.flag
			if *f.v {
				m.want |= f.flag
			}
		}
	}
	if q.Group != "" {
		m.group = foldName(q.Group)
		m.groupInSum = []byte("\x00" + m.group + "\x00")
	}
	m.limit = q.Limit
	if m.limit <= 0 {
		m.limit = storage.DefaultUserLimit
	}
	m.limit = min(m.limit, storage.MaxUserLimit)

	// The fingerprint: every filter and the sort, not the page size.
	h := sha256.New()
	tri := func(b *bool) string {
		switch {
		case b == nil:
			return "-"
		case *b:
			return "1"
		}
		return "0"
	}
	source := "\x01any"
	if q.Source != nil {
		source = "=" + *q.Source
	}
	for _, part := range []string{string(m.search), source, tri(q.Blocked), tri(q.Admin), tri(q.TwoFactor), m.group, fmt.Sprint(m.bySignIn)} {
		binary.Write(h, binary.BigEndian, uint64(len(part))) //nolint:errcheck // hash writes never fail
		h.Write([]byte(part))
	}
	m.fingerprint = h.Sum(nil)[:userCursorFingerprintLen]

	if q.Cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
		if err != nil || len(raw) <= userCursorFingerprintLen+8 || len(raw) > userCursorFingerprintLen+8+maxCursorID {
			return nil, fmt.Errorf("user cursor is malformed: %w", storage.ErrInvalid)
		}
		if !bytes.Equal(raw[:userCursorFingerprintLen], m.fingerprint) {
			return nil, fmt.Errorf("user cursor belongs to another query: %w", storage.ErrInvalid)
		}
		m.afterSortKey = raw[userCursorFingerprintLen:]
	}
	return m, nil
}

// maxCursorID bounds the user ID a cursor may carry.
const maxCursorID = 1024

func (m *userMatcher) cursor(sortKey []byte) string {
	return base64.RawURLEncoding.EncodeToString(append(bytes.Clone(m.fingerprint), sortKey...))
}

// match tells whether a summary passes every filter but the group's
// (which the caller checks when it did not start from the group).
func (m *userMatcher) match(s userSummary) bool {
	if s.flags&m.set != m.want {
		return false
	}
	if m.twoFactor != nil && (s.flags&(sumTOTP|sumPasskey) != 0) != *m.twoFactor {
		return false
	}
	if !m.anySource && !bytes.Equal(s.source, m.source) {
		return false
	}
	return len(m.search) == 0 || bytes.Contains(s.text, m.search)
}

// SearchUsers walks the sort order backwards from the cursor, matching
// summaries, until the page is full and one more match shows there is a
// next page (or the order ends); then it decodes the page's users. A
// group filter on a small group, sorted by creation, reads the group's
// members instead.
// Either way, a filter that matches few users reads every summary once:
// about 100,000 of them in the 20 ms the admin console allows a page.
func (d *DB) SearchUsers(ctx context.Context, q storage.UserQuery) (storage.UserPage, error) {
	m, err := newUserMatcher(q)
	if err != nil {
		return storage.UserPage{}, fmt.Errorf("search users: %w", err)
	}
	var page storage.UserPage
	err = d.db.View(func(tx *bbolt.Tx) error {
		keys, more, err := m.fromGroup(ctx, tx)
		if err == errWalkInstead {
			keys, more, err = m.walk(ctx, tx)
		}
		if err != nil {
			return err
		}
		page.Users = make([]storage.User, 0, len(keys))
		users := tx.Bucket(bUsers)
		for _, k := range keys {
			var u storage.User
			ok, err := getJSON(users, string(k[8:]), &u)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("search index names user %q, who does not exist", k[8:])
			}
			page.Users = append(page.Users, u)
		}
		if more {
			page.Next = m.cursor(keys[len(keys)-1])
		}
		return nil
	})
	if err != nil {
		return storage.UserPage{}, fmt.Errorf("search users: %w", err)
	}
	return page, nil
}

// walk reads the sort order backwards from below the cursor and returns
// the sort keys of up to limit matches, and whether another one follows.
func (m *userMatcher) walk(ctx context.Context, tx *bbolt.Tx) ([][]byte, bool, error) {
	b := tx.Bucket(bUserSearchCreated)
	if m.bySignIn {
		b = tx.Bucket(bUserSearchSignIn)
	}
	c := b.Cursor()
	var k, v []byte
	if m.afterSortKey == nil {
		k, v = c.Last()
	} else if k, _ = c.Seek(m.afterSortKey); k == nil {
		k, v = c.Last()
	} else {
		k, v = c.Prev()
	}
	var keys [][]byte
	for n := 0; k != nil; k, v = c.Prev() {
		if n++; n%4096 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, false, err
			}
		}
		// Entries that fail on the flags (at a fixed place) or lack the
		// words sought anywhere in the summary (which holds the text and
		// the groups) are passed over before they are parsed: most of
		// them, when a query matches few.
		if len(v) > 1 && v[1]&m.set != m.want {
			continue
		}
		if (len(m.search) > 0 && !bytes.Contains(v, m.search)) || (m.groupInSum != nil && !bytes.Contains(v, m.groupInSum)) {
			continue
		}
		s, ok := parseSummary(v)
		if !ok {
			return nil, false, fmt.Errorf("search index entry %x is malformed", k)
		}
		if !m.match(s) || (m.groupInSum != nil && !bytes.Contains(s.groups, m.groupInSum)) {
			continue
		}
		if len(keys) == m.limit {
			return keys, true, nil
		}
		keys = append(keys, bytes.Clone(k))
	}
	return keys, false, nil
}

var errWalkInstead = errors.New("walk the sort order instead")

// fromGroup reads the members of the query's group, matches their
// summaries and sorts them by creation; errWalkInstead when there is no
// group filter, the group is larger than groupPathMax, or the sort is by
// last sign-in (which the group index does not hold: it would change at
// every sign-in of every member).
func (m *userMatcher) fromGroup(ctx context.Context, tx *bbolt.Tx) ([][]byte, bool, error) {
	if m.group == "" || m.bySignIn {
		return nil, false, errWalkInstead
	}
	prefix := groupKey(m.group, "")
	type member struct{ id, created []byte }
	var members []member
	c := tx.Bucket(bUsersByGroup).Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(members) == groupPathMax {
			return nil, false, errWalkInstead
		}
		members = append(members, member{id: k[len(prefix):], created: v})
	}
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	created := tx.Bucket(bUserSearchCreated)
	var keys [][]byte
	for _, mb := range members {
		ck := append(bytes.Clone(mb.created), mb.id...)
		s, ok := parseSummary(created.Get(ck))
		if !ok {
			return nil, false, fmt.Errorf("group index entry %q/%q has no search entry", m.group, mb.id)
		}
		if !m.match(s) {
			continue
		}
		if m.afterSortKey != nil && bytes.Compare(ck, m.afterSortKey) >= 0 {
			continue
		}
		keys = append(keys, ck)
	}
	slices.SortFunc(keys, func(a, b []byte) int { return bytes.Compare(b, a) })
	if len(keys) > m.limit {
		return keys[:m.limit], true, nil
	}
	return keys, false, nil
}
