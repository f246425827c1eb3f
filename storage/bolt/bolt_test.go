package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/storagetest"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, now func() time.Time) storage.Store {
		return openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Now: now})
	})
}

// openTest opens a database that is checked and closed when t ends.
func openTest(t testing.TB, path string, opts Options) *DB {
	t.Helper()
	d, err := Open(path, opts)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	t.Cleanup(func() { checkAndClose(t, d) })
	return d
}

// checkAndClose runs bbolt's consistency check and our index check, then
// closes d (closing twice is harmless).
func checkAndClose(t testing.TB, d *DB) {
	t.Helper()
	if d.db.Path() != "" { // still open
		err := d.db.View(func(tx *bbolt.Tx) error {
			return d.flow.View(func(ftx *bbolt.Tx) error {
				for _, x := range []*bbolt.Tx{tx, ftx} {
					for err := range x.Check() {
						t.Errorf("bbolt check: %v", err)
					}
				}
				for _, err := range checkIndexes(tx, ftx) {
					t.Errorf("index check: %v", err)
				}
				return nil
			})
		})
		if err != nil {
			t.Errorf("check: %v", err)
		}
	}
	if err := d.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
}

// checkIndexes cross-checks every index bucket against the records it
// points to, both ways.
func checkIndexes(tx, flowTx *bbolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// Each bucket lives in one of the two files.
	b := func(name []byte) *bbolt.Bucket {
		for _, f := range flowBuckets {
			if bytes.Equal(f, name) && !bytes.Equal(name, bExpiry) {
				return flowTx.Bucket(name)
			}
		}
		return tx.Bucket(name)
	}
	get := func(bucket []byte, key string, v any) bool {
		ok, err := getJSON(b(bucket), key, v)
		if err != nil {
			fail("%s %q: %v", bucket, key, err)
		}
		return ok
	}
	expiries := map[string]bool{}
	_ = tx.Bucket(bExpiry).ForEach(func(k, _ []byte) error { expiries[string(k)] = true; return nil })
	_ = flowTx.Bucket(bExpiry).ForEach(func(k, _ []byte) error { expiries[string(k)] = true; return nil })
	wantExpiry := func(kind byte, at time.Time, key string) {
		if at.IsZero() {
			return
		}
		k := string(expiryKey(kind, at, key))
		if !expiries[k] {
			fail("no expiry entry for %c %q", kind, key)
		}
		delete(expiries, k)
	}

	// Users.
	names, emails := map[string]string{}, map[string]string{}
	_ = b(bUsers).ForEach(func(k, _ []byte) error {
		var u storage.User
		get(bUsers, string(k), &u)
		names[strings.ToLower(u.Username)] = u.ID
		if u.Email != "" {
			emails[strings.ToLower(u.Email)] = u.ID
		}
		return nil
	})
	for _, ix := range []struct {
		bucket []byte
		want   map[string]string
	}{{bUsersByUsername, names}, {bUsersByEmail, emails}} {
		n := 0
		_ = b(ix.bucket).ForEach(func(k, v []byte) error {
			n++
			if ix.want[string(k)] != string(v) {
				fail("%s: %q → %q, want %q", ix.bucket, k, v, ix.want[string(k)])
			}
			return nil
		})
		if n != len(ix.want) {
			fail("%s has %d entries for %d users", ix.bucket, n, len(ix.want))
		}
	}

	// Auth requests and codes, and the pending limits' indexes (pending.go).
	want := map[string]map[string]bool{}
	for _, name := range pendingIndexes {
		want[string(name)] = map[string]bool{}
	}
	counts := map[string]uint64{}
	firsts := map[string]storage.AuthRequest{} // each group's first request to evict
	nRequests := 0
	_ = b(bAuthRequests).ForEach(func(k, _ []byte) error {
		nRequests++
		var a storage.AuthRequest
		get(bAuthRequests, string(k), &a)
		wantExpiry(expAuthRequest, a.ExpiresAt, a.ID)
		if a.Origin != "" {
			want[string(bAuthRequestsByOrigin)][string(pendingKey(a.Origin, a))] = true
			counts[string(countKey('o', a.Origin))]++
		}
		if g := a.EvictionGroup(); classOf(a) != classIssued {
			want[string(bAuthRequestsByGroup)][string(pendingKey(g, a))] = true
			counts[string(countKey('g', g))]++
			if first, ok := firsts[g]; !ok || bytes.Compare(pendingKey(g, a), pendingKey(g, first)) < 0 {
				firsts[g] = a
			}
		}
		return nil
	})
	wantValue := map[string][]byte{}
	for k, n := range counts {
		want[string(bAuthRequestCounts)][k] = true
		wantValue[k] = binary.BigEndian.AppendUint64(nil, n)
		if k[0] == 'g' {
			first := firsts[k[1:]]
			rank := groupRankKey(k[1:], n, classOf(first), nanos(first.CreatedAt))
			want[string(bAuthRequestGroups)][string(rank)] = true
			wantValue[k] = rank
		}
	}
	for _, name := range pendingIndexes {
		_ = flowTx.Bucket(name).ForEach(func(k, v []byte) error {
			if !want[string(name)][string(k)] {
				fail("%s: stray entry %q", name, k)
			}
			if bytes.Equal(name, bAuthRequestCounts) && !bytes.Equal(v, wantValue[string(k)]) {
				fail("%s: %q holds %x, want %x", name, k, v, wantValue[string(k)])
			}
			delete(want[string(name)], string(k))
			return nil
		})
		for k := range want[string(name)] {
			fail("%s: no entry %q", name, k)
		}
	}
	if n := b(bAuthRequests).Sequence(); n != uint64(nRequests) {
		fail("auth request count %d, but %d requests", n, nRequests)
	}
	nCodes := 0
	_ = b(bCodes).ForEach(func(code, id []byte) error {
		nCodes++
		if !bytes.Equal(b(bCodesByRequest).Get(id), code) {
			fail("code → request %q has no reverse entry", id)
		}
		if b(bAuthRequests).Get(id) == nil {
			fail("code → missing request %q", id)
		}
		return nil
	})
	if n := b(bCodesByRequest).Stats().KeyN; n != nCodes {
		fail("%d codes but %d reverse entries", nCodes, n)
	}

	// Tokens.
	members := map[string]bool{}
	_ = b(bFamilyMembers).ForEach(func(k, _ []byte) error { members[string(k)] = true; return nil })
	// A family's newest members may be pending on its record instead
	// (family.Pending), and those of them swept since stay there until the
	// pending ones are written: a member is in one place or the other.
	pending := map[string]bool{}
	pendingAs := map[string]string{} // key → kind+ID, for those no token claims
	_ = b(bFamilies).ForEach(func(k, _ []byte) error {
		var f family
		get(bFamilies, string(k), &f)
		if len(f.Pending) >= pendingMembersMax {
			fail("family %q: %d pending members, they go to family_members at %d", f.ID, len(f.Pending), pendingMembersMax)
		}
		for _, m := range f.Pending {
			if len(m) < 2 || (m[:1] != memberRefresh && m[:1] != memberAccess) {
				fail("family %q: bad pending member %q", f.ID, m)
				continue
			}
			key := string(familyMemberKey(f.ID, m[1:], m[:1]))
			if members[key] || pending[key] {
				fail("family %q: member %q both pending and indexed, or pending twice", f.ID, m)
			}
			pending[key] = true
			pendingAs[key] = m
		}
		return nil
	})
	userTokens := map[string]bool{}
	_ = b(bUserTokens).ForEach(func(k, _ []byte) error { userTokens[string(k)] = true; return nil })
	wantIn := func(set map[string]bool, what, key string) {
		if !set[key] {
			fail("no %s entry %q", what, key)
		}
		delete(set, key)
	}
	wantMember := func(key string) {
		if pending[key] {
			delete(pending, key)
			return
		}
		wantIn(members, "family member", key)
	}
	_ = b(bAccessTokens).ForEach(func(k, _ []byte) error {
		var a storage.AccessToken
		get(bAccessTokens, string(k), &a)
		wantExpiry(expAccessToken, a.ExpiresAt, a.ID)
		if a.UserID != "" {
			wantIn(userTokens, "user token", join(a.UserID, a.ClientID, memberAccess, a.ID))
		}
		if a.FamilyID != "" {
			wantMember(string(familyMemberKey(a.FamilyID, a.ID, memberAccess)))
		}
		return nil
	})
	lives := map[string]string{}
	_ = b(bRefreshTokens).ForEach(func(k, _ []byte) error {
		var r storage.RefreshToken
		get(bRefreshTokens, string(k), &r)
		if string(b(bRefreshByID).Get([]byte(r.ID))) != r.Hash {
			fail("refresh token %q has no ID entry", r.ID)
		}
		if b(bFamilies).Get([]byte(r.FamilyID)) == nil {
			fail("refresh token %q of missing family %q", r.ID, r.FamilyID)
		}
		if r.RotatedAt.IsZero() {
			if lives[r.FamilyID] != "" {
				fail("family %q has two live links", r.FamilyID)
			}
			lives[r.FamilyID] = r.Hash
		}
		wantMember(string(familyMemberKey(r.FamilyID, r.ID, memberRefresh)))
		if len(r.SealedValue) > 0 {
			wantExpiry(expRefreshGrace, r.GraceUntil, r.Hash)
		} else if !r.GraceUntil.IsZero() {
			fail("refresh token %q has a grace but no sealed value", r.ID)
		}
		return nil
	})
	if n, m := b(bRefreshByID).Stats().KeyN, b(bRefreshTokens).Stats().KeyN; n != m {
		fail("%d refresh ID entries for %d refresh tokens", n, m)
	}
	_ = b(bFamilies).ForEach(func(k, _ []byte) error {
		var f family
		get(bFamilies, string(k), &f)
		if lives[f.ID] != f.Live {
			fail("family %q: live link %q, want %q", f.ID, f.Live, lives[f.ID])
		}
		wantExpiry(expFamily, f.end(), f.ID)
		if f.UserID != "" {
			wantIn(userTokens, "user token", join(f.UserID, f.ClientID, memberFamily, f.ID))
		}
		return nil
	})
	for k := range members {
		fail("stray family member entry %q", k)
	}
	// A pending member no token of the family claimed can only be an
	// access token swept since (links go with their family only).
	for k := range pending {
		m := pendingAs[k]
		if m[:1] != memberAccess || tokenStored(tx, m[:1], m[1:]) {
			fail("stray pending member %q of family entry %q", m, k)
		}
	}
	for k := range userTokens {
		fail("stray user token entry %q", k)
	}

	// Sessions.
	userSessions := map[string]bool{}
	_ = b(bUserSessions).ForEach(func(k, _ []byte) error { userSessions[string(k)] = true; return nil })
	_ = b(bSessions).ForEach(func(k, _ []byte) error {
		var s storage.Session
		get(bSessions, string(k), &s)
		wantExpiry(expSession, s.ExpiresAt, s.ID)
		wantIn(userSessions, "user session", join(s.UserID, s.ID))
		return nil
	})
	for k := range userSessions {
		fail("stray user session entry %q", k)
	}

	// One-time tokens and login attempts.
	onePerUser := map[string]string{} // index key → hash
	_ = b(bOneTimeByUser).ForEach(func(k, v []byte) error { onePerUser[string(k)] = string(v); return nil })
	_ = b(bOneTimeTokens).ForEach(func(k, _ []byte) error {
		var o storage.OneTimeToken
		get(bOneTimeTokens, string(k), &o)
		wantExpiry(expOneTimeToken, o.ExpiresAt, o.Hash)
		if o.OnePerUser {
			key := string(oneTimeByUserKey(o.UserID, o.Purpose))
			if onePerUser[key] != o.Hash {
				fail("one-time token %q is not its user's indexed %s token", o.Hash, o.Purpose)
			}
			delete(onePerUser, key)
		}
		return nil
	})
	for k := range onePerUser {
		fail("stray one-time-by-user entry %q", k)
	}
	// Device authorizations: indexed by user code, counted in the
	// bucket's sequence, with an expiry entry at ExpiresAt plus the time
	// they are kept.
	deviceUserCodes := map[string]string{}
	_ = b(bDeviceByUserCode).ForEach(func(k, v []byte) error { deviceUserCodes[string(k)] = string(v); return nil })
	deviceOrigins := map[string]bool{}
	_ = b(bDeviceByOrigin).ForEach(func(k, _ []byte) error { deviceOrigins[string(k)] = true; return nil })
	devices := 0
	_ = b(bDeviceAuths).ForEach(func(k, _ []byte) error {
		var d storage.DeviceAuthorization
		get(bDeviceAuths, string(k), &d)
		devices++
		if deviceUserCodes[d.UserCode] != string(k) {
			fail("device authorization %q is not indexed by its user code %q", k, d.UserCode)
		}
		delete(deviceUserCodes, d.UserCode)
		if d.Origin != "" {
			if key := string(deviceOriginKey(d)); !deviceOrigins[key] {
				fail("device authorization %q is not indexed by its origin %q", k, d.Origin)
			} else {
				delete(deviceOrigins, key)
			}
		}
		wantExpiry(expDeviceAuth, d.ExpiresAt.Add(storage.DeviceAuthorizationKept), string(k))
		return nil
	})
	for k := range deviceUserCodes {
		fail("stray device user code entry %q", k)
	}
	for k := range deviceOrigins {
		fail("stray device origin entry %q", k)
	}
	if n := b(bDeviceAuths).Sequence(); n != uint64(devices) {
		fail("device authorizations counted %d, %d stored", n, devices)
	}
	_ = b(bRedeemedCodes).ForEach(func(k, _ []byte) error {
		var rc redeemedCode
		get(bRedeemedCodes, string(k), &rc)
		wantExpiry(expRedeemedCode, rc.ExpiresAt, string(k))
		return nil
	})
	perUser := map[string]int{}
	_ = b(bLoginAttempts).ForEach(func(k, _ []byte) error {
		var a storage.LoginAttempt
		get(bLoginAttempts, string(k), &a)
		if !bytes.Equal(k, loginAttemptKey(a)) {
			fail("login attempt %q stored under %q", a.ID, k)
		}
		perUser[a.UserID]++
		wantExpiry(expLoginAttempt, a.Time, string(k))
		return nil
	})
	for u, n := range perUser {
		if n > loginAttemptsCap {
			fail("user %q has %d login attempts", u, n)
		}
	}
	// Credentials: each secret hash and WebAuthn ID is indexed, and every
	// index entry points at a credential that has it.
	_ = b(bCredentials).ForEach(func(k, _ []byte) error {
		var c storage.Credential
		get(bCredentials, string(k), &c)
		if string(k) != credentialKey(c.UserID, c.ID) {
			fail("credential %q stored under %q", c.ID, k)
		}
		if c.Hash != "" && string(b(bCredentialsByHash).Get([]byte(c.Hash))) != string(k) {
			fail("credential %q: hash not indexed", k)
		}
		if wid := hex.EncodeToString(c.WebAuthnID); wid != "" && string(b(bCredentialsByWebAuthn).Get([]byte(wid))) != string(k) {
			fail("credential %q: webauthn ID not indexed", k)
		}
		wantExpiry(expCredential, c.ExpiresAt, string(k))
		return nil
	})
	_ = b(bCredentialsByHash).ForEach(func(h, ref []byte) error {
		var c storage.Credential
		if !get(bCredentials, string(ref), &c) || c.Hash != string(h) {
			fail("hash index %q points at %q, which does not have it", h, ref)
		}
		return nil
	})
	_ = b(bCredentialsByWebAuthn).ForEach(func(w, ref []byte) error {
		var c storage.Credential
		if !get(bCredentials, string(ref), &c) || hex.EncodeToString(c.WebAuthnID) != string(w) {
			fail("webauthn index %q points at %q, which does not have it", w, ref)
		}
		return nil
	})
	_ = b(bAvatars).ForEach(func(k, _ []byte) error {
		var a storage.Avatar
		get(bAvatars, string(k), &a)
		if a.UserID != string(k) {
			fail("avatar of %q stored under %q", a.UserID, k)
		}
		return nil
	})
	_ = b(bUsersByIdentity).ForEach(func(k, uid []byte) error {
		var u storage.User
		if !get(bUsers, string(uid), &u) || !slices.ContainsFunc(u.Identities, func(i storage.Identity) bool { return join(i.Connection, i.UserID) == string(k) }) {
			fail("identity index %q points at %q, which does not have it", k, uid)
		}
		return nil
	})
	_ = b(bUsers).ForEach(func(k, _ []byte) error {
		var u storage.User
		get(bUsers, string(k), &u)
		for _, i := range u.Identities {
			if string(b(bUsersByIdentity).Get([]byte(join(i.Connection, i.UserID)))) != u.ID {
				fail("user %q: identity %s/%s not indexed", u.ID, i.Connection, i.UserID)
			}
		}
		return nil
	})
	_ = b(bThrottles).ForEach(func(k, _ []byte) error {
		var th storage.Throttle
		get(bThrottles, string(k), &th)
		if th.Key != string(k) || th.Empty() || len(th.Failures) > storage.MaxThrottleFailures {
			fail("throttle %q stored under %q: %+v", th.Key, k, th)
		}
		wantExpiry(expThrottle, th.ExpiresAt, string(k))
		return nil
	})
	errs = append(errs, checkUserSearchIndexes(tx)...)
	errs = append(errs, checkClientRecords(tx)...)
	_ = b(bReservedNames).ForEach(func(k, _ []byte) error {
		var r reservation
		get(bReservedNames, string(k), &r)
		wantExpiry(expReservedName, r.Until, string(k))
		return nil
	})
	errs = append(errs, checkOutboxIndexes(tx, wantExpiry)...)
	for k := range expiries {
		fail("stray expiry entry %q", k)
	}
	return errs
}

// checkUserSearchIndexes rebuilds the user search, group and admin
// indexes from the users and their credentials, and compares them with
// the stored ones entry by entry; and checks the group name index.
func checkUserSearchIndexes(tx *bbolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	want := map[string]map[string]string{}
	for _, name := range [][]byte{bUserSearchCreated, bUserSearchSignIn, bUsersByGroup, bAdmins} {
		want[string(name)] = map[string]string{}
	}
	_ = tx.Bucket(bUsers).ForEach(func(k, v []byte) error {
		var u storage.User
		if err := json.Unmarshal(v, &u); err != nil {
			fail("user %q: %v", k, err)
			return nil
		}
		passkey, err := hasPasskey(tx, u.ID)
		if err != nil {
			fail("user %q: %v", k, err)
		}
		sum := string(summarize(u, passkey))
		want[string(bUserSearchCreated)][string(createdKey(u))] = sum
		want[string(bUserSearchSignIn)][string(signInKey(u))] = sum
		for _, g := range foldedGroups(u.Groups) {
			want[string(bUsersByGroup)][string(groupKey(g, u.ID))] = string(appendNanos(nil, u.CreatedAt))
		}
		if activeAdmin(&u) {
			want[string(bAdmins)][u.ID] = ""
		}
		return nil
	})
	for name, entries := range want {
		_ = tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
			w, found := entries[string(k)]
			switch {
			case !found:
				fail("%s: stray entry %q", name, k)
			case w != string(v):
				fail("%s: %q holds %q, want %q", name, k, v, w)
			}
			delete(entries, string(k))
			return nil
		})
		for k := range entries {
			fail("%s: no entry %q", name, k)
		}
	}
	groups := tx.Bucket(bGroups)
	n := 0
	_ = tx.Bucket(bGroupsByName).ForEach(func(name, id []byte) error {
		n++
		var g storage.Group
		if found, err := getJSON(groups, string(id), &g); err != nil || !found || foldName(g.Name) != string(name) {
			fail("group name %q points at group %q, which does not have it (%v)", name, id, err)
		}
		return nil
	})
	if m := groups.Stats().KeyN; m != n {
		fail("%d groups but %d name index entries", m, n)
	}
	return errs
}

func TestReopenKeepsData(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "sub", "dir", "keyport.db")
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }

	d, err := Open(path, Options{Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	user := storage.User{ID: "u1", Username: "alice", Email: "alice@example.com", CreatedAt: now}
	refresh := storage.RefreshToken{Hash: "h1", ID: "r1", FamilyID: "f1", ClientID: "app", UserID: "u1", ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}
	session := storage.Session{ID: "s1", UserID: "u1", AuthTime: now, ExpiresAt: now.Add(time.Hour)}
	key := storage.SigningKey{ID: "k1", Algorithm: "RS256", SealedKey: []byte{1, 2, 3}, PublicJWK: []byte("{}"), CreatedAt: now}
	for _, err := range []error{
		d.CreateUser(ctx, user),
		d.CreateTokens(ctx, storage.AccessToken{ID: "a1", ClientID: "app", UserID: "u1", ExpiresAt: now.Add(time.Hour)}, &refresh),
		d.CreateSession(ctx, session),
		d.PutSigningKey(ctx, key),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	checkAndClose(t, d)

	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("file mode %o, want 600", perm)
	}
	info, err = os.Stat(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	if perm := info.Mode().Perm(); perm != 0o700 {
		t.Errorf("directory mode %o, want 700", perm)
	}

	d = openTest(t, path, Options{Now: clock})
	if got, err := d.GetUserByLogin(ctx, "ALICE@example.com"); err != nil || got.ID != "u1" {
		t.Errorf("user after reopen: %+v, %v", got, err)
	}
	if got, err := d.GetRefreshToken(ctx, "h1"); err != nil || got.ID != "r1" {
		t.Errorf("refresh token after reopen: %+v, %v", got, err)
	}
	if got, err := d.GetSession(ctx, "s1"); err != nil || got.UserID != "u1" {
		t.Errorf("session after reopen: %+v, %v", got, err)
	}
	if keys, err := d.ListSigningKeys(ctx); err != nil || len(keys) != 1 || !bytes.Equal(keys[0].SealedKey, key.SealedKey) {
		t.Errorf("keys after reopen: %+v, %v", keys, err)
	}
}

func TestOpenLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyport.db")
	openTest(t, path, Options{})
	start := time.Now()
	d, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	if err == nil {
		d.Close()
		t.Fatal("second Open succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "in use by another process") {
		t.Errorf("message %q does not name the file and the cause", err)
	}
	if elapsed := time.Since(start); elapsed > 2*time.Second {
		t.Errorf("second Open took %v", elapsed)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyport.db")
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = d.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bMeta).Put(kSchemaVersion, []byte(fmt.Sprint(SchemaVersion()+1)))
	})
	if err != nil {
		t.Fatal(err)
	}
	checkAndClose(t, d)

	d, err = Open(path, Options{})
	if err == nil {
		d.Close()
		t.Fatal("Open accepted a newer schema")
	}
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open: %v, want ErrSchemaTooNew", err)
	}
	if want := fmt.Sprintf("schema version %d", SchemaVersion()+1); !strings.Contains(err.Error(), want) {
		t.Errorf("message %q does not say %q", err, want)
	}
}

func TestOpenWritesSchemaVersion(t *testing.T) {
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{})
	var v int
	err := d.db.View(func(tx *bbolt.Tx) error {
		var err error
		v, err = readSchemaVersion(tx)
		return err
	})
	if err != nil || v != SchemaVersion() || v < 1 {
		t.Fatalf("schema version %d (%v), want %d", v, err, SchemaVersion())
	}
}

func TestBackupOpens(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	d := openTest(t, filepath.Join(dir, "keyport.db"), Options{})
	if err := d.CreateUser(ctx, storage.User{ID: "u1", Username: "alice"}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := d.Backup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(backup, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	raw, err := bbolt.Open(backup, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("open backup with bbolt: %v", err)
	}
	err = raw.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("backup check: %v", err)
		}
		if tx.Bucket(bUsers).Get([]byte("u1")) == nil {
			t.Error("backup has no user u1")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	raw.Close()

	restored := openTest(t, backup, Options{})
	if u, err := restored.GetUserByLogin(ctx, "alice"); err != nil || u.ID != "u1" {
		t.Errorf("user in backup: %+v, %v", u, err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := d.Backup(cancelled, &bytes.Buffer{}); !errors.Is(err, context.Canceled) {
		t.Errorf("backup with a cancelled context: %v", err)
	}
}

// TestSweepInChunks sweeps with a tiny chunk so that families, which delete
// several records at once, straddle transaction boundaries.
func TestSweepInChunks(t *testing.T) {
	old := sweepChunk
	sweepChunk = 3
	t.Cleanup(func() { sweepChunk = old })
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := testclock.At(now)
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Now: clock.Now})
	var want storage.SweepReport
	for i := range 10 {
		fid := fmt.Sprintf("f%d", i)
		r := storage.RefreshToken{Hash: fid + "-h0", ID: fid + "-r0", FamilyID: fid, ClientID: "app", UserID: "u1", ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour)}
		if err := d.CreateTokens(ctx, storage.AccessToken{ID: fid + "-a0", ClientID: "app", UserID: "u1", ExpiresAt: now.Add(2 * time.Hour)}, &r); err != nil {
			t.Fatal(err)
		}
		for n := 1; n <= i%3; n++ {
			next := r
			next.Hash, next.ID = fmt.Sprintf("%s-h%d", fid, n), fmt.Sprintf("%s-r%d", fid, n)
			if err := d.RotateRefreshToken(ctx, r.Hash, next, storage.AccessToken{ID: fmt.Sprintf("%s-a%d", fid, n), ClientID: "app", UserID: "u1", ExpiresAt: now.Add(2 * time.Hour)}); err != nil {
				t.Fatal(err)
			}
			r = next
		}
		want.RefreshTokens += 1 + i%3
		want.AccessTokens += 1 + i%3
		if err := d.CreateSession(ctx, storage.Session{ID: fmt.Sprintf("s%d", i), UserID: "u1", ExpiresAt: now.Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		want.Sessions++
		c := storage.Credential{ID: fmt.Sprintf("c%d", i), UserID: "u1", Kind: storage.KindTrustedDevice, Hash: fmt.Sprintf("dev%d", i), ExpiresAt: now.Add(time.Hour)}
		if err := d.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
		want.Credentials++
	}
	clock.Add(time.Hour)
	got, err := d.Sweep(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("sweep report %+v, want %+v", got, want)
	}
	err = d.db.View(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bFamilies, bFamilyMembers, bRefreshTokens, bRefreshByID, bAccessTokens, bUserTokens, bSessions, bUserSessions, bCredentials, bCredentialsByHash, bExpiry} {
			if n := tx.Bucket(name).Stats().KeyN; n != 0 {
				t.Errorf("%s has %d keys after the sweep", name, n)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := d.Sweep(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("sweep with a cancelled context: %v", err)
	}
}

// TestBatchOutcomesDoNotLeak checks that an expected failure inside a batch
// neither fails nor re-runs the other calls sharing its transaction.
func TestBatchOutcomesDoNotLeak(t *testing.T) {
	ctx := t.Context()
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{MaxBatchDelay: 20 * time.Millisecond})
	if err := d.CreateSession(ctx, storage.Session{ID: "taken", UserID: "u1"}); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 17)
	for i := range 16 {
		go func() { errs <- d.CreateSession(ctx, storage.Session{ID: fmt.Sprintf("s%d", i), UserID: "u1"}) }()
	}
	go func() { errs <- d.CreateSession(ctx, storage.Session{ID: "taken", UserID: "u2"}) }()
	conflicts := 0
	for range 17 {
		err := <-errs
		switch {
		case errors.Is(err, storage.ErrConflict):
			conflicts++
		case err != nil:
			t.Errorf("create session: %v", err)
		}
	}
	if conflicts != 1 {
		t.Errorf("%d conflicts, want 1", conflicts)
	}
	n, err := d.DeleteUserSessions(ctx, "u1")
	if err != nil || n != 17 {
		t.Errorf("sessions of u1: %d, %v; want 17", n, err)
	}
}

func BenchmarkRotateRefreshToken(b *testing.B) { benchmarkRotate(b, false) }

// With the reuse grace, each link carries its sealed value (about 115
// bytes, as the provider's sealRefresh makes) and a grace expiry entry, and
// each rotation drops the previous link's.
func BenchmarkRotateRefreshTokenWithGrace(b *testing.B) { benchmarkRotate(b, true) }

func benchmarkRotate(b *testing.B, grace bool) {
	ctx := context.Background()
	d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
	now := time.Now()
	var families, links atomic.Int64
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		fid := fmt.Sprintf("f%d", families.Add(1))
		link := func() storage.RefreshToken {
			n := links.Add(1)
			r := storage.RefreshToken{
				Hash: fmt.Sprintf("h%d", n), ID: fmt.Sprintf("r%d", n), FamilyID: fid, ClientID: "app", UserID: "u1",
				Scopes: []string{"openid", "offline_access"}, AuthTime: now, CreatedAt: now,
				ExpiresAt: now.Add(24 * time.Hour), IdleExpiresAt: now.Add(time.Hour),
			}
			if grace {
				r.SealedValue, r.GraceUntil = bytes.Repeat([]byte{0xa5}, 115), now.Add(5*time.Second)
			}
			return r
		}
		access := func() storage.AccessToken {
			n := links.Add(1)
			return storage.AccessToken{ID: fmt.Sprintf("a%d", n), ClientID: "app", UserID: "u1", Subject: "u1", Scopes: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		}
		cur := link()
		if err := d.CreateTokens(ctx, access(), &cur); err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			next := link()
			if err := d.RotateRefreshToken(ctx, cur.Hash, next, access()); err != nil {
				b.Error(err)
				return
			}
			cur = next
		}
	})
}

// Storing authorization requests one after another: without limits, and
// at the default limits once full, where every request evicts one (the
// flood case), from 200 addresses of which one holds most.
func BenchmarkCreateAuthRequest(b *testing.B) { benchmarkCreateAuthRequest(b, storage.PendingLimits{}) }

func BenchmarkCreateAuthRequestFull(b *testing.B) {
	benchmarkCreateAuthRequest(b, storage.PendingLimits{PerOrigin: 100, Total: 5000})
}

func benchmarkCreateAuthRequest(b *testing.B, limits storage.PendingLimits) {
	ctx := b.Context()
	d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
	now := time.Now()
	create := func(i int) {
		origin := fmt.Sprintf("192.0.2.%d", i%200)
		if i%2 == 0 {
			origin = "198.51.100.1"
		}
		a := storage.AuthRequest{ID: fmt.Sprintf("ar%09d", i), ClientID: "app", RedirectURI: "https://app.example/cb", State: strings.Repeat("s", 64),
			Scopes: []string{"openid"}, Origin: origin, CreatedAt: now.Add(time.Duration(i)), ExpiresAt: now.Add(30*time.Minute + time.Duration(i))}
		if _, err := d.CreateAuthRequest(ctx, a, limits); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for ; i < limits.Total; i++ {
		create(i)
	}
	b.ResetTimer()
	for b.Loop() {
		create(i)
		i++
	}
}

func BenchmarkGetAccessToken(b *testing.B) {
	ctx := context.Background()
	d := openTest(b, filepath.Join(b.TempDir(), "keyport.db"), Options{})
	now := time.Now()
	const n = 1000
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- d.CreateTokens(ctx, storage.AccessToken{ID: fmt.Sprintf("a%d", i), ClientID: "app", UserID: "u1", Subject: "u1", Scopes: []string{"openid"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}, nil)
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			b.Fatal(err)
		}
	}
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := fmt.Sprintf("a%d", next.Add(1)%n)
			if _, err := d.GetAccessToken(ctx, id); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// Pending sign-ins live in the flow file: they survive a restart, and a
// damaged flow file is replaced instead of stopping Keyport.
func TestFlowFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "keyport.db")
	now := time.Now()
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ar := storage.AuthRequest{ID: "ar1", ClientID: "app", RedirectURI: "https://a/cb", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, err := d.CreateAuthRequest(ctx, ar, storage.PendingLimits{}); err != nil {
		t.Fatal(err)
	}
	if err := d.CreateUser(ctx, storage.User{ID: "u1", Username: "alice", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	checkAndClose(t, d)
	if _, err := os.Stat(filepath.Join(dir, "keyport-flows.db")); err != nil {
		t.Fatalf("flow file: %v", err)
	}

	d = openTest(t, path, Options{})
	if _, err := d.GetAuthRequest(ctx, "ar1"); err != nil {
		t.Fatalf("pending sign-in lost across a restart: %v", err)
	}
	checkAndClose(t, d)

	// Garbage in the flow file: Keyport starts with an empty one and the
	// main data is untouched.
	if err := os.WriteFile(filepath.Join(dir, "keyport-flows.db"), bytes.Repeat([]byte("garbage!"), 2048), 0o600); err != nil {
		t.Fatal(err)
	}
	d = openTest(t, path, Options{})
	if _, err := d.GetAuthRequest(ctx, "ar1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("auth request after the flow file was damaged: %v", err)
	}
	if _, err := d.GetUser(ctx, "u1"); err != nil {
		t.Fatalf("main data after the flow file was damaged: %v", err)
	}
	if _, err := d.CreateAuthRequest(ctx, ar, storage.PendingLimits{}); err != nil {
		t.Fatalf("new flow file does not work: %v", err)
	}
}

// A file written before credentials and avatars existed (schema 1) opens,
// gains their buckets and keeps its data.
func TestMigrateFromSchema1(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyport.db")
	raw, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		if err := migrations[0](tx); err != nil {
			return err
		}
		meta, err := tx.CreateBucket(bMeta)
		if err != nil {
			return err
		}
		if err := meta.Put(kSchemaVersion, []byte("1")); err != nil {
			return err
		}
		if err := tx.Bucket(bUsersByUsername).Put([]byte("alice"), []byte("u1")); err != nil {
			return err
		}
		return putJSON(tx.Bucket(bUsers), "u1", storage.User{ID: "u1", Username: "alice"})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}

	d := openTest(t, path, Options{})
	err = d.db.View(func(tx *bbolt.Tx) error {
		v, err := readSchemaVersion(tx)
		if err != nil || v != SchemaVersion() {
			t.Errorf("schema version after migration: %d (%v), want %d", v, err, SchemaVersion())
		}
		for _, name := range [][]byte{bCredentials, bCredentialsByHash, bCredentialsByWebAuthn, bAvatars} {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s was not created", name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if u, err := d.GetUserByLogin(ctx, "alice"); err != nil || u.ID != "u1" {
		t.Fatalf("user after migration: %+v, %v", u, err)
	}
	if err := d.CreateCredential(ctx, storage.Credential{ID: "c1", UserID: "u1", Kind: storage.KindPasskey, WebAuthnID: []byte{7}}); err != nil {
		t.Fatalf("create credential after migration: %v", err)
	}
	if err := d.PutAvatar(ctx, storage.Avatar{UserID: "u1", ContentType: "image/png", Data: []byte{1}}); err != nil {
		t.Fatalf("put avatar after migration: %v", err)
	}
	if err := d.DeleteUser(ctx, "u1", time.Time{}); err != nil {
		t.Fatalf("delete user after migration: %v", err)
	}
}

// A file at the current schema that lost a bucket is refused, not patched.
func TestOpenRefusesMissingBucket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "keyport.db")
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.db.Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket(bCredentialsByWebAuthn) }); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d, err = Open(path, Options{})
	if err == nil {
		d.Close()
		t.Fatal("Open accepted a file without the credentials_by_webauthn bucket")
	}
	if !strings.Contains(err.Error(), string(bCredentialsByWebAuthn)) {
		t.Errorf("message %q does not name the missing bucket", err)
	}
}

func TestSweepLogsCredentials(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := testclock.At(now)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Logger: logger, Now: clock.Now})
	for i := range 2 {
		c := storage.Credential{ID: fmt.Sprintf("c%d", i), UserID: "u1", Kind: storage.KindTrustedDevice, Hash: fmt.Sprintf("h%d", i), ExpiresAt: now.Add(time.Minute)}
		if err := d.CreateCredential(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	clock.Add(time.Minute)
	rep, err := d.Sweep(ctx)
	if err != nil || rep.Credentials != 2 {
		t.Fatalf("sweep: %+v, %v; want 2 credentials", rep, err)
	}
	if !strings.Contains(logs.String(), "credentials=2") {
		t.Errorf("sweep log does not count credentials: %s", logs.String())
	}
}

// A refresh token's sealed value (for the reuse grace) is stored only while
// it can serve a retry: its successor's rotation drops it, and once the
// grace is over, so does the next read of it that is not a refresh, or
// else the sweep.
func TestSealedRefreshValueOnlyDuringGrace(t *testing.T) {
	ctx := t.Context()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	d := openTest(t, filepath.Join(t.TempDir(), "keyport.db"), Options{Now: clock})
	link := func(n int) storage.RefreshToken {
		return storage.RefreshToken{
			Hash: fmt.Sprintf("h%d", n), ID: fmt.Sprintf("r%d", n), FamilyID: "f1", ClientID: "app", UserID: "u1",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleExpiresAt: now.Add(time.Hour),
			SealedValue: []byte("sealed"), GraceUntil: now.Add(5 * time.Second),
		}
	}
	access := func(n int) storage.AccessToken {
		return storage.AccessToken{ID: fmt.Sprintf("a%d", n), ClientID: "app", UserID: "u1", Subject: "u1", ExpiresAt: now.Add(time.Hour)}
	}
	first := link(0)
	first.SealedValue, first.GraceUntil = nil, time.Time{}
	if err := d.CreateTokens(ctx, access(0), &first); err != nil {
		t.Fatal(err)
	}
	for n := 1; n <= 3; n++ {
		if err := d.RotateRefreshToken(ctx, link(n-1).Hash, link(n), access(n)); err != nil {
			t.Fatal(err)
		}
	}
	sealed := func() []string {
		var hashes []string
		err := d.db.View(func(tx *bbolt.Tx) error {
			return tx.Bucket(bRefreshTokens).ForEach(func(k, v []byte) error {
				if bytes.Contains(v, []byte(`"sealed_value"`)) {
					hashes = append(hashes, string(k))
				}
				return nil
			})
		})
		if err != nil {
			t.Fatal(err)
		}
		return hashes
	}
	if got := sealed(); !slices.Equal(got, []string{"h3"}) {
		t.Fatalf("links holding a sealed value after three rotations: %q, want only the live h3", got)
	}
	if _, err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sealed(); !slices.Equal(got, []string{"h3"}) {
		t.Fatalf("links holding a sealed value after a sweep within the grace: %q", got)
	}
	now = now.Add(5 * time.Second)
	if _, err := d.Sweep(ctx); err != nil {
		t.Fatal(err)
	}
	if got := sealed(); len(got) != 0 {
		t.Fatalf("links holding a sealed value after the grace: %q", got)
	}

	// Without a sweep: a read past the grace that is not a refresh (an
	// introspection, a revocation's lookup) drops the seal; a refresh's
	// read leaves it to the rotation that follows, which drops it.
	reads := []struct {
		what  string
		read  func(n int) error
		keeps bool // the seal of the link read
	}{
		{"an introspection", func(n int) error { _, err := d.PeekRefreshToken(ctx, link(n).Hash); return err }, false},
		{"a lookup by ID", func(n int) error { _, err := d.GetRefreshTokenByID(ctx, link(n).ID); return err }, false},
		{"a refresh's read", func(n int) error { _, err := d.GetRefreshToken(ctx, link(n).Hash); return err }, true},
	}
	if err := d.RotateRefreshToken(ctx, link(3).Hash, link(4), access(4)); err != nil {
		t.Fatal(err)
	}
	for i, r := range reads {
		n := 5 + i
		if err := d.RotateRefreshToken(ctx, link(n-1).Hash, link(n), access(n)); err != nil {
			t.Fatal(err)
		}
		now = now.Add(5 * time.Second)
		if err := r.read(n); err != nil {
			t.Fatalf("%s: %v", r.what, err)
		}
		var want []string
		if r.keeps {
			want = []string{link(n).Hash}
		}
		if got := sealed(); !slices.Equal(got, want) {
			t.Fatalf("links holding a sealed value after %s past the grace: %q, want %q", r.what, got, want)
		}
	}
	if err := d.RotateRefreshToken(ctx, "h7", link(8), access(8)); err != nil {
		t.Fatal(err)
	}
	if got := sealed(); !slices.Equal(got, []string{"h8"}) {
		t.Fatalf("links holding a sealed value after the rotation: %q, want only the new h8", got)
	}
}

// oldFlowFile writes the flow file of dir as an earlier version left it:
// the flow buckets plus extra, filled by fill, and nothing of what open
// keeps now besides (counts, rebuilt indexes).
func oldFlowFile(t *testing.T, dir string, extra [][]byte, fill func(*bbolt.Tx) error) {
	t.Helper()
	raw, err := bbolt.Open(filepath.Join(dir, "keyport-flows.db"), 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = raw.Update(func(tx *bbolt.Tx) error {
		for _, name := range append(append([][]byte{}, flowBuckets...), extra...) {
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return fill(tx)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := raw.Close(); err != nil {
		t.Fatal(err)
	}
}

// The count PendingLimits.Total is checked against is made right at open,
// so a flow file written before it was kept is limited like any other.
func TestPendingCountOfAnOlderFlowFile(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	now := time.Now()
	oldFlowFile(t, dir, nil, func(tx *bbolt.Tx) error {
		for i := range 3 {
			a := storage.AuthRequest{ID: fmt.Sprintf("old%d", i), ClientID: "app", CreatedAt: now, ExpiresAt: now.Add(time.Duration(i+1) * time.Minute)}
			if err := putJSON(tx.Bucket(bAuthRequests), a.ID, a); err != nil {
				return err
			}
			if err := putExpiry(tx, expAuthRequest, a.ExpiresAt, a.ID); err != nil {
				return err
			}
		}
		return nil
	})
	d := openTest(t, filepath.Join(dir, "keyport.db"), Options{})
	a := storage.AuthRequest{ID: "new", ClientID: "app", Origin: "192.0.2.1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	n, err := d.CreateAuthRequest(ctx, a, storage.PendingLimits{Total: 3})
	if err != nil || n != 1 {
		t.Fatalf("create in a full older flow file: evicted %d, %v; want 1", n, err)
	}
	if _, err := d.GetAuthRequest(ctx, "old0"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("the oldest request of the older file: %v, want it evicted", err)
	}
}

// Index entries whose request is gone are deleted: at open, where the
// pending limits' indexes are rebuilt from the requests (a file written by
// an earlier version kept such entries for good), and when an eviction
// meets one. checkAndClose fails on any entry left over.
func TestStalePendingEntries(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	now := time.Now()
	oldFlowFile(t, dir, [][]byte{bAuthRequestsByOrigin}, func(tx *bbolt.Tx) error {
		// The earlier layout: origin NUL nanos(created) ID, here for two
		// live requests and three that are gone.
		for i := range 5 {
			a := storage.AuthRequest{ID: fmt.Sprintf("r%d", i), ClientID: "app", Origin: "192.0.2.1",
				CreatedAt: now.Add(time.Duration(i) * time.Second), ExpiresAt: now.Add(time.Hour)}
			if err := tx.Bucket(bAuthRequestsByOrigin).Put(append(appendNanos([]byte(a.Origin+"\x00"), a.CreatedAt), a.ID...), emptyValue); err != nil {
				return err
			}
			if i < 3 {
				continue
			}
			if err := putJSON(tx.Bucket(bAuthRequests), a.ID, a); err != nil {
				return err
			}
			if err := putExpiry(tx, expAuthRequest, a.ExpiresAt, a.ID); err != nil {
				return err
			}
		}
		return nil
	})
	d := openTest(t, filepath.Join(dir, "keyport.db"), Options{})
	limits := storage.PendingLimits{PerOrigin: 3, Total: 10}
	a := storage.AuthRequest{ID: "new", ClientID: "app", Origin: "192.0.2.1", CreatedAt: now.Add(time.Minute), ExpiresAt: now.Add(time.Hour)}
	if n, err := d.CreateAuthRequest(ctx, a, limits); err != nil || n != 0 {
		t.Fatalf("create beside two live requests of an older file: evicted %d, %v; want none", n, err)
	}
	for _, id := range []string{"r3", "r4", "new"} {
		if _, err := d.GetAuthRequest(ctx, id); err != nil {
			t.Errorf("request %s: %v", id, err)
		}
	}

	// A request lost without its index entries, as an earlier version
	// could lose one: the evictions that meet its entries delete them.
	err := d.flow.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bAuthRequests)
		var r3 storage.AuthRequest
		if _, err := getJSON(b, "r3", &r3); err != nil {
			return err
		}
		if err := deleteExpiry(tx, expAuthRequest, r3.ExpiresAt, r3.ID); err != nil {
			return err
		}
		if err := b.Delete([]byte("r3")); err != nil {
			return err
		}
		return b.SetSequence(b.Sequence() - 1)
	})
	if err != nil {
		t.Fatal(err)
	}
	// The origin's limit meets its entry first: nothing else goes.
	b := storage.AuthRequest{ID: "newer", ClientID: "app", Origin: "192.0.2.1", CreatedAt: now.Add(2 * time.Minute), ExpiresAt: now.Add(time.Hour)}
	if n, err := d.CreateAuthRequest(ctx, b, limits); err != nil || n != 0 {
		t.Fatalf("create where the origin's eviction meets a lost request: evicted %d, %v; want none", n, err)
	}
	// Then the total's: the lost request's entry goes, and r4, the oldest
	// of the group with the most, makes room.
	c := storage.AuthRequest{ID: "other", ClientID: "app", Origin: "198.51.100.1", CreatedAt: now.Add(3 * time.Minute), ExpiresAt: now.Add(time.Hour)}
	if n, err := d.CreateAuthRequest(ctx, c, storage.PendingLimits{PerOrigin: 3, Total: 3}); err != nil || n != 1 {
		t.Fatalf("create where the total's eviction meets a lost request: evicted %d, %v; want 1", n, err)
	}
	if _, err := d.GetAuthRequest(ctx, "r4"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("r4: %v, want it evicted", err)
	}
	for _, id := range []string{"new", "newer", "other"} {
		if _, err := d.GetAuthRequest(ctx, id); err != nil {
			t.Errorf("request %s: %v", id, err)
		}
	}
}

// A flow file far larger than its bound (FlowFileBound), as a flood before
// the limits held left it (bbolt never gives pages back), is recreated
// empty at open, with one WARN; one within it is kept.
func TestOversizedFlowFileRecreated(t *testing.T) {
	defer func(v int64) { minOversizedFlowFile = v }(minOversizedFlowFile)
	minOversizedFlowFile = 1 << 20
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "keyport.db")
	now := time.Now()
	d, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 200 {
		a := storage.AuthRequest{ID: fmt.Sprintf("r%03d", i), ClientID: "app", State: strings.Repeat("s", 15<<10), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if _, err := d.CreateAuthRequest(ctx, a, storage.PendingLimits{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		t.Helper()
		fi, err := os.Stat(FlowPath(path))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	flooded := size()
	open := func(maxPending int) (*DB, string) {
		t.Helper()
		var logs bytes.Buffer
		d, err := Open(path, Options{MaxPendingSignIns: maxPending, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		return d, logs.String()
	}
	// Within the bound of 1000 pending sign-ins, or without a bound: kept.
	for _, maxPending := range []int{0, 1000} {
		d, logs := open(maxPending)
		if _, err := d.GetAuthRequest(ctx, "r000"); err != nil || size() != flooded || strings.Contains(logs, "WARN") {
			t.Errorf("limit %d: request %v, file %d KiB of %d, log %q; want the file kept", maxPending, err, size()>>10, flooded>>10, logs)
		}
		checkAndClose(t, d)
	}
	// Far above the bound of 10: recreated.
	d, logs := open(10)
	if _, err := d.GetAuthRequest(ctx, "r000"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a request of the oversized file: %v, want it gone", err)
	}
	if size() >= flooded/10 || strings.Count(logs, "level=WARN") != 1 || !strings.Contains(logs, "flow database far larger than its bound") {
		t.Errorf("after open: file %d KiB (was %d), log %q; want a fresh file and one WARN", size()>>10, flooded>>10, logs)
	}
	a := storage.AuthRequest{ID: "fresh", ClientID: "app", Origin: "192.0.2.1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if _, err := d.CreateAuthRequest(ctx, a, storage.PendingLimits{PerOrigin: 5, Total: 10}); err != nil {
		t.Errorf("create in the recreated file: %v", err)
	}
	checkAndClose(t, d)
	t.Logf("flooded flow file %d KiB, recreated %d KiB", flooded>>10, size()>>10)
}

// checkClientRecords rebuilds the client_records index from the access
// tokens, families, grants and credentials, and compares it with the
// stored one entry by entry.
func checkClientRecords(tx *bbolt.Tx) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	want := map[string]bool{}
	add := func(clientID, kind, key string) {
		if clientID != "" {
			want[string(clientRecordKey(clientID, kind, key))] = true
		}
	}
	_ = tx.Bucket(bAccessTokens).ForEach(func(k, v []byte) error {
		var a storage.AccessToken
		if err := json.Unmarshal(v, &a); err != nil {
			fail("access token %q: %v", k, err)
		}
		add(a.ClientID, clientAccess, a.ID)
		return nil
	})
	_ = tx.Bucket(bFamilies).ForEach(func(k, v []byte) error {
		var f family
		if err := json.Unmarshal(v, &f); err != nil {
			fail("family %q: %v", k, err)
		}
		add(f.ClientID, clientFamily, f.ID)
		return nil
	})
	_ = tx.Bucket(bGrants).ForEach(func(k, v []byte) error {
		var g storage.Grant
		if err := json.Unmarshal(v, &g); err != nil {
			fail("grant %q: %v", k, err)
		}
		add(g.ClientID, clientGrant, g.UserID)
		return nil
	})
	_ = tx.Bucket(bCredentials).ForEach(func(k, v []byte) error {
		var c storage.Credential
		if err := json.Unmarshal(v, &c); err != nil {
			fail("credential %q: %v", k, err)
		}
		add(c.ClientID, clientCredential, string(k))
		return nil
	})
	_ = tx.Bucket(bClientRecords).ForEach(func(k, _ []byte) error {
		if !want[string(k)] {
			fail("stray client record entry %q", k)
		}
		delete(want, string(k))
		return nil
	})
	for k := range want {
		fail("no client record entry %q", k)
	}
	return errs
}
