package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// family is the bookkeeping record of a refresh-token family: who it belongs
// to (for RevokeUserClient), its live link, and when it dies (for Sweep).
type family struct {
	ID            string    `json:"id"`
	UserID        string    `json:"user_id,omitempty"`
	ClientID      string    `json:"client_id"`
	Live          string    `json:"live"`           // hash of the live link
	Prev          string    `json:"prev,omitempty"` // hash of the link Live replaced
	ExpiresAt     time.Time `json:"expires_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"` // of the live link
	// Pending are the family's tokens issued since its index entries
	// (family_members) were last written, each its kind then its ID
	// ("r…", "a…"): a rotation adds two here, in the record it rewrites
	// anyway, and every pendingMembersMax the lot goes to family_members
	// at once (addMember). Written one rotation at a time, the entries of
	// concurrent families each dirtied a page of their own, which made
	// family_members 40% of the pages a rotation wrote
	// (BenchmarkRotationPages: 3.7 pages per rotation with, 2.1 without).
	// Revocation reads both.
	Pending []string `json:"pending,omitempty"`
}

// pendingMembersMax is how many tokens a family keeps in Pending before
// they go to family_members: about a kilobyte of the record at most.
const pendingMembersMax = 16

// clone is f with its own pending list (decodeMemo).
func (f family) clone() family {
	f.Pending = slices.Clone(f.Pending)
	return f
}

// asDecoded is f as its JSON decodes: times in UTC without a monotonic
// reading, no empty pending list. putFamily keeps that in the memo, so a
// rotation reading it back gets what decoding would have given it
// (TestFamilyAsDecoded).
func (f family) asDecoded() family {
	f.ExpiresAt, f.IdleExpiresAt = f.ExpiresAt.UTC().Round(0), f.IdleExpiresAt.UTC().Round(0)
	if len(f.Pending) == 0 {
		f.Pending = nil
	}
	return f
}

// putFamily stores f and keeps it decoded: a family is rewritten by every
// rotation and read back by the next one.
func (d *DB) putFamily(tx *bbolt.Tx, f family) error {
	f = f.asDecoded()
	raw, err := json.Marshal(f)
	if err != nil {
		return fmt.Errorf("encode family %q: %w", f.ID, err)
	}
	if err := tx.Bucket(bFamilies).Put([]byte(f.ID), raw); err != nil {
		return err
	}
	d.memos.families.put(f.ID, raw, f)
	return nil
}

// addMember records token id (of kind) as f's: in f.Pending, which goes to
// family_members when it is full. f must be stored in the same
// transaction.
func (f *family) addMember(tx *bbolt.Tx, id, kind string) error {
	f.Pending = append(f.Pending, kind+id)
	if len(f.Pending) < pendingMembersMax {
		return nil
	}
	members := tx.Bucket(bFamilyMembers)
	for _, m := range f.Pending {
		mKind, mID := m[:1], m[1:]
		if !tokenStored(tx, mKind, mID) {
			continue // swept since (deleteAccessTx found no entry to drop)
		}
		if err := members.Put(familyMemberKey(f.ID, mID, mKind), emptyValue); err != nil {
			return err
		}
	}
	f.Pending = nil
	return nil
}

// tokenStored tells whether the token id of kind (memberRefresh,
// memberAccess) is stored.
func tokenStored(tx *bbolt.Tx, kind, id string) bool {
	switch kind {
	case memberRefresh:
		return has(tx.Bucket(bRefreshByID), id)
	case memberAccess:
		return has(tx.Bucket(bAccessTokens), id)
	}
	return false
}

// indexMember records token id (of kind) as a member of family familyID:
// through f, the family's record as the caller will store it, or, when
// the caller does not store it (f nil), straight in family_members.
func indexMember(tx *bbolt.Tx, f *family, familyID, id, kind string) error {
	if f != nil {
		if f.ID != familyID {
			return fmt.Errorf("index token %s of family %q in the record of family %q", id, familyID, f.ID)
		}
		return f.addMember(tx, id, kind)
	}
	return tx.Bucket(bFamilyMembers).Put(familyMemberKey(familyID, id, kind), emptyValue)
}

// end is when the family stops being usable.
func (f family) end() time.Time { return storage.Earliest(f.ExpiresAt, f.IdleExpiresAt) }

// Kinds inside family_members and user_tokens keys.
const (
	memberRefresh = "r"
	memberAccess  = "a"
	memberFamily  = "f"
)

// familyMemberKey is a family's index entry for one of its tokens: family
// ID, token ID, kind. Token IDs are ordered by issue time, so a family's
// entries stay in the order it issued them and the entries written
// together (family.Pending, sixteen at a time) sit side by side at the end
// of the family's range, on one page. Keyed by kind first, as before schema
// 12, they went to the ends of two sub-ranges (links, access tokens), two
// pages once a family has issued a few hundred tokens: a rotation wrote
// about a quarter more pages, and the fsync that ends a commit grows with
// every page (see BenchmarkRotationPages).
func familyMemberKey(familyID, tokenID, kind string) []byte {
	return []byte(join(familyID, tokenID, kind))
}

// reorderFamilyMembers is migration 11: it builds family_members again
// from the tokens, keyed by familyMemberKey (before, "fid NUL kind NUL
// hash or access ID"), as Load builds it; entries whose token was gone go.
func reorderFamilyMembers(tx *bbolt.Tx) error {
	if err := tx.DeleteBucket(bFamilyMembers); err != nil {
		return fmt.Errorf("reorder family members: %w", err)
	}
	members, err := tx.CreateBucket(bFamilyMembers)
	if err != nil {
		return fmt.Errorf("reorder family members: %w", err)
	}
	err = tx.Bucket(bRefreshTokens).ForEach(func(k, v []byte) error {
		var r storage.RefreshToken
		if err := unmarshalJSON(k, v, &r); err != nil {
			return err
		}
		return members.Put(familyMemberKey(r.FamilyID, r.ID, memberRefresh), emptyValue)
	})
	if err != nil {
		return fmt.Errorf("reorder family members: refresh tokens: %w", err)
	}
	err = tx.Bucket(bAccessTokens).ForEach(func(k, v []byte) error {
		var a storage.AccessToken
		if err := unmarshalJSON(k, v, &a); err != nil || a.FamilyID == "" {
			return err
		}
		return members.Put(familyMemberKey(a.FamilyID, a.ID, memberAccess), emptyValue)
	})
	if err != nil {
		return fmt.Errorf("reorder family members: access tokens: %w", err)
	}
	return nil
}

// cutMemberKey splits what follows the family ID in a family_members key.
func cutMemberKey(rest []byte) (tokenID, kind string, ok bool) {
	i := bytes.LastIndexByte(rest, 0)
	if i <= 0 {
		return "", "", false
	}
	return string(rest[:i]), string(rest[i+1:]), true
}

func liveRefresh(r storage.RefreshToken, now time.Time) bool {
	return r.RotatedAt.IsZero() && !expired(r.End(), now)
}

// CreateTokens stores access and, when refresh is not nil, the first link of
// a new family, in one transaction. access joins the new family (its
// FamilyID is filled in when empty). Without refresh, an access token that
// names a family joins that existing family.
func (d *DB) CreateTokens(ctx context.Context, access storage.AccessToken, refresh *storage.RefreshToken) error {
	return d.createTokens(access, refresh, "")
}

// createTokens is CreateTokens that, when sessionID is set, also records
// the app on that browser session (Session.ClientIDs) in the same commit,
// for the logout notices; a session that ended meanwhile is left alone.
func (d *DB) createTokens(access storage.AccessToken, refresh *storage.RefreshToken, sessionID string) error {
	if access.ID == "" {
		return errors.New("create tokens: empty access token ID")
	}
	var r storage.RefreshToken
	if refresh != nil {
		r = *refresh
		if r.Hash == "" || r.ID == "" || r.FamilyID == "" {
			return errors.New("create tokens: refresh token needs a hash, an ID and a family ID")
		}
		if !r.RotatedAt.IsZero() {
			return errors.New("create tokens: the first refresh token of a family cannot be rotated already")
		}
		switch access.FamilyID {
		case "":
			access.FamilyID = r.FamilyID
		case r.FamilyID:
		default:
			return fmt.Errorf("create tokens: access token family %q is not the refresh token's %q", access.FamilyID, r.FamilyID)
		}
	}
	return d.batch(func(tx *bbolt.Tx) error {
		if err := createTokensTx(tx, access, refresh, r); err != nil {
			return err
		}
		if sessionID == "" {
			return nil
		}
		return addSessionClientTx(tx, sessionID, access.ClientID, d.now())
	})
}

func createTokensTx(tx *bbolt.Tx, access storage.AccessToken, refresh *storage.RefreshToken, r storage.RefreshToken) error {
	{
		if has(tx.Bucket(bAccessTokens), access.ID) {
			return conflict("create tokens: access token", access.ID)
		}
		if refresh == nil {
			if access.FamilyID != "" && !has(tx.Bucket(bFamilies), access.FamilyID) {
				return notFound("create tokens: family", access.FamilyID)
			}
			return putAccessTx(tx, access, nil)
		}
		switch {
		case has(tx.Bucket(bRefreshTokens), r.Hash):
			return fmt.Errorf("create tokens: refresh token hash: %w", storage.ErrConflict)
		case has(tx.Bucket(bRefreshByID), r.ID):
			return conflict("create tokens: refresh token", r.ID)
		case has(tx.Bucket(bFamilies), r.FamilyID):
			return conflict("create tokens: family", r.FamilyID)
		}
		f := family{ID: r.FamilyID, UserID: r.UserID, ClientID: r.ClientID, Live: r.Hash, ExpiresAt: r.ExpiresAt, IdleExpiresAt: r.IdleExpiresAt}
		if err := putRefreshTx(tx, r, &f); err != nil {
			return err
		}
		if err := putAccessTx(tx, access, &f); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bFamilies), f.ID, f); err != nil {
			return err
		}
		if err := putExpiry(tx, expFamily, f.end(), f.ID); err != nil {
			return err
		}
		if err := indexClientRecord(tx, f.ClientID, clientFamily, f.ID); err != nil {
			return err
		}
		if f.UserID != "" {
			return tx.Bucket(bUserTokens).Put([]byte(join(f.UserID, f.ClientID, memberFamily, f.ID)), emptyValue)
		}
		return nil
	}
}

func (d *DB) GetAccessToken(ctx context.Context, id string) (storage.AccessToken, error) {
	var a storage.AccessToken
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bAccessTokens), id, &a)
		if err == nil && (!ok || expired(a.ExpiresAt, d.now())) {
			err = notFound("get access token", id)
		}
		return err
	})
	if err != nil {
		return storage.AccessToken{}, err
	}
	return a, nil
}

func (d *DB) GetAccessTokenAndUser(ctx context.Context, id string) (storage.AccessToken, storage.User, storage.Credential, error) {
	var a storage.AccessToken
	var u storage.User
	var c storage.Credential
	err := d.db.View(func(tx *bbolt.Tx) error {
		ok, err := getJSON(tx.Bucket(bAccessTokens), id, &a)
		if err == nil && (!ok || expired(a.ExpiresAt, d.now())) {
			return notFound("get access token", id)
		}
		if err != nil || a.UserID == "" {
			return err
		}
		if ok, err := getJSON(tx.Bucket(bUsers), a.UserID, &u); err != nil || !ok {
			u = storage.User{}
			return err
		}
		if a.CredentialID == "" {
			return nil
		}
		// In the same transaction: a revocation committed before it
		// shows, and no second read per use of the token.
		c, err = d.liveCredential(tx, credentialKey(a.UserID, a.CredentialID), "get access token's credential")
		if errors.Is(err, storage.ErrNotFound) {
			c, err = storage.Credential{}, nil
		}
		return err
	})
	if err != nil {
		return storage.AccessToken{}, storage.User{}, storage.Credential{}, err
	}
	return a, u, c, nil
}

// GetRefreshToken returns the live link stored under hash. Presenting the
// link a live one replaced, within the live one's grace, returns the live
// one (a retry); presenting any other rotated link revokes its whole family
// and gives ErrTokenReused.
func (d *DB) GetRefreshToken(ctx context.Context, hash string) (storage.RefreshToken, error) {
	var r, retry storage.RefreshToken
	var ok, isRetry bool
	now := d.now()
	err := d.db.View(func(tx *bbolt.Tx) error {
		var err error
		if ok, err = getMemo(tx.Bucket(bRefreshTokens), d.memos.refresh, hash, &r); err != nil || !ok || r.RotatedAt.IsZero() {
			return err
		}
		retry, isRetry, err = retryOf(tx, r, now)
		return err
	})
	if err != nil {
		return storage.RefreshToken{}, fmt.Errorf("read refresh token: %w", err)
	}
	if !ok || expired(r.ExpiresAt, now) || (r.RotatedAt.IsZero() && expired(r.IdleExpiresAt, now)) {
		return storage.RefreshToken{}, fmt.Errorf("get refresh token: %w", storage.ErrNotFound)
	}
	if r.RotatedAt.IsZero() {
		// A seal past its grace is not handed out. It is not dropped here
		// either, which would cost a refresh a second commit: the
		// rotation that follows drops it.
		return withoutStaleSeal(r, now), nil
	}
	if isRetry {
		return retry, nil
	}
	// Reuse. Revoke in a write transaction that commits; if a concurrent
	// reuse got there first the family is already gone, which is as good.
	err = d.db.Update(func(tx *bbolt.Tx) error {
		_, err := revokeFamilyTx(tx, r.FamilyID)
		return err
	})
	if err != nil {
		return storage.RefreshToken{}, fmt.Errorf("get refresh token %s: revoke family %s after reuse: %w", r.ID, r.FamilyID, err)
	}
	d.log.Warn("refresh token reused; family revoked",
		"token_id", r.ID, "family_id", r.FamilyID, "client_id", r.ClientID, "user_id", r.UserID)
	return storage.RefreshToken{}, fmt.Errorf("refresh token %s of family %s: %w", r.ID, r.FamilyID, storage.ErrTokenReused)
}

// RetryRefreshToken stores access for a retry of the rotated link hash and
// returns its successor, if hash is still a retry when the write runs; in
// the meantime the successor may have been used, and handing it out then
// would give its holder a link that is itself a retry of the next one.
func (d *DB) RetryRefreshToken(ctx context.Context, hash string, access storage.AccessToken) (storage.RefreshToken, error) {
	if access.ID == "" {
		return storage.RefreshToken{}, errors.New("retry refresh token: empty access token ID")
	}
	var live, r storage.RefreshToken
	var reused bool
	err := d.batch(func(tx *bbolt.Tx) error {
		live, r, reused = storage.RefreshToken{}, storage.RefreshToken{}, false
		now := d.now()
		ok, err := getJSON(tx.Bucket(bRefreshTokens), hash, &r)
		if err != nil {
			return err
		}
		if !ok || r.RotatedAt.IsZero() || expired(r.ExpiresAt, now) {
			return fmt.Errorf("retry refresh token: %w", storage.ErrNotFound)
		}
		successor, isRetry, err := retryOf(tx, r, now)
		if err != nil {
			return err
		}
		if !isRetry {
			// Reuse: the revocation commits with the outcome (see batch).
			if _, err := revokeFamilyTx(tx, r.FamilyID); err != nil {
				return err
			}
			reused = true
			return fmt.Errorf("refresh token %s of family %s: %w", r.ID, r.FamilyID, storage.ErrTokenReused)
		}
		a := access
		if err := inherit(&a.FamilyID, successor.FamilyID, "access token family"); err != nil {
			return err
		}
		if has(tx.Bucket(bAccessTokens), a.ID) {
			return conflict("retry refresh token: access token", a.ID)
		}
		live = successor
		return putAccessTx(tx, a, nil)
	})
	if reused {
		d.log.Warn("refresh token reused; family revoked",
			"token_id", r.ID, "family_id", r.FamilyID, "client_id", r.ClientID, "user_id", r.UserID)
	}
	if err != nil {
		return storage.RefreshToken{}, err
	}
	return live, nil
}

// retryOf returns the successor that presenting the rotated link r again
// hands out, if that is a retry: r is the link its family's live link
// replaced, and the live link is unused, within its grace and still has its
// sealed value.
func retryOf(tx *bbolt.Tx, r storage.RefreshToken, now time.Time) (storage.RefreshToken, bool, error) {
	var f family
	ok, err := getJSON(tx.Bucket(bFamilies), r.FamilyID, &f)
	if err != nil || !ok || f.Prev != r.Hash {
		return storage.RefreshToken{}, false, err
	}
	var live storage.RefreshToken
	ok, err = getJSON(tx.Bucket(bRefreshTokens), f.Live, &live)
	if err != nil || !ok || !liveRefresh(live, now) || len(live.SealedValue) == 0 || !now.Before(live.GraceUntil) {
		return storage.RefreshToken{}, false, err
	}
	return live, true, nil
}

// PeekRefreshToken returns the live link stored under hash and changes
// nothing but a seal past its grace, which it drops.
func (d *DB) PeekRefreshToken(ctx context.Context, hash string) (storage.RefreshToken, error) {
	r, ok, err := d.readRefresh(hash)
	if err == nil && (!ok || !liveRefresh(r, d.now())) {
		err = fmt.Errorf("peek refresh token: %w", storage.ErrNotFound)
	}
	if err != nil {
		return storage.RefreshToken{}, err
	}
	return d.dropStaleSeal(r)
}

// staleSeal tells whether r still holds a sealed value its grace no longer
// allows anyone to use.
func staleSeal(r storage.RefreshToken, now time.Time) bool {
	return len(r.SealedValue) > 0 && !now.Before(r.GraceUntil)
}

// withoutStaleSeal is r without a sealed value past its grace.
func withoutStaleSeal(r storage.RefreshToken, now time.Time) storage.RefreshToken {
	if staleSeal(r, now) {
		r.SealedValue, r.GraceUntil = nil, time.Time{}
	}
	return r
}

// dropStaleSeal deletes r's sealed value when its grace is over, so the
// database keeps it no longer than the grace once its family is looked at
// (the sweep gets the rest), and returns r without it. Only the reads
// that are not a refresh do this; see GetRefreshToken.
func (d *DB) dropStaleSeal(r storage.RefreshToken) (storage.RefreshToken, error) {
	if !staleSeal(r, d.now()) {
		return r, nil
	}
	err := d.batch(func(tx *bbolt.Tx) error {
		_, err := dropGraceOf(tx, r.Hash, func(cur storage.RefreshToken) bool { return staleSeal(cur, d.now()) })
		return err
	})
	if err != nil {
		return storage.RefreshToken{}, fmt.Errorf("drop the sealed value of refresh token %s: %w", r.ID, err)
	}
	return withoutStaleSeal(r, d.now()), nil
}

// readRefresh reads the link stored under hash, live or not.
func (d *DB) readRefresh(hash string) (r storage.RefreshToken, ok bool, err error) {
	err = d.db.View(func(tx *bbolt.Tx) error {
		ok, err = getJSON(tx.Bucket(bRefreshTokens), hash, &r)
		return err
	})
	if err != nil {
		return r, false, fmt.Errorf("read refresh token: %w", err)
	}
	return r, ok, nil
}

// GetRefreshTokenByID returns the live link with that ID, and drops its
// seal if its grace is over.
func (d *DB) GetRefreshTokenByID(ctx context.Context, id string) (storage.RefreshToken, error) {
	var r storage.RefreshToken
	err := d.db.View(func(tx *bbolt.Tx) error {
		hash := tx.Bucket(bRefreshByID).Get([]byte(id))
		if hash == nil {
			return notFound("get refresh token", id)
		}
		ok, err := getJSON(tx.Bucket(bRefreshTokens), string(hash), &r)
		if err == nil && (!ok || !liveRefresh(r, d.now())) {
			err = notFound("get refresh token", id)
		}
		return err
	})
	if err != nil {
		return storage.RefreshToken{}, err
	}
	return d.dropStaleSeal(r)
}

// RotateRefreshToken marks the live link oldHash rotated and stores next (in
// the same family) and access, atomically. If oldHash is not live (unknown,
// expired, or already rotated by a concurrent request) it returns
// ErrNotFound and changes nothing. Empty FamilyID, UserID and ClientID of
// next, and an empty FamilyID of access, are taken from the old link.
func (d *DB) RotateRefreshToken(ctx context.Context, oldHash string, next storage.RefreshToken, access storage.AccessToken) error {
	switch {
	case next.Hash == "" || next.ID == "":
		return errors.New("rotate refresh token: next token needs a hash and an ID")
	case next.Hash == oldHash:
		return errors.New("rotate refresh token: next token has the old token's hash")
	case access.ID == "":
		return errors.New("rotate refresh token: empty access token ID")
	case !next.RotatedAt.IsZero():
		return errors.New("rotate refresh token: next token is already rotated")
	}
	return d.batch(func(tx *bbolt.Tx) error {
		now := d.now()
		rb := tx.Bucket(bRefreshTokens)
		var old storage.RefreshToken
		ok, err := getMemo(rb, d.memos.refresh, oldHash, &old)
		if err != nil {
			return err
		}
		if !ok || !liveRefresh(old, now) {
			return fmt.Errorf("rotate refresh token: %w", storage.ErrNotFound)
		}
		var f family
		ok, err = getMemo(tx.Bucket(bFamilies), d.memos.families, old.FamilyID, &f)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("rotate refresh token %s: family %q: %w", old.ID, old.FamilyID, storage.ErrNotFound)
		}
		n, a := next, access
		if err := inherit(&n.FamilyID, old.FamilyID, "family"); err != nil {
			return err
		}
		if err := inherit(&n.UserID, old.UserID, "user"); err != nil {
			return err
		}
		if err := inherit(&n.ClientID, old.ClientID, "client"); err != nil {
			return err
		}
		if err := inherit(&a.FamilyID, old.FamilyID, "access token family"); err != nil {
			return err
		}
		switch {
		case has(rb, n.Hash):
			return fmt.Errorf("rotate refresh token: next token hash: %w", storage.ErrConflict)
		case has(tx.Bucket(bRefreshByID), n.ID):
			return conflict("rotate refresh token: next token", n.ID)
		case has(tx.Bucket(bAccessTokens), a.ID):
			return conflict("rotate refresh token: access token", a.ID)
		}

		// The old link is used: its own grace ends, and with it its sealed
		// value and the retry of its predecessor.
		if err := dropGraceTx(tx, &old); err != nil {
			return err
		}
		old.RotatedAt = now
		if err := putJSON(rb, oldHash, old); err != nil {
			return err
		}
		if err := putRefreshTx(tx, n, &f); err != nil {
			return err
		}
		if err := putAccessTx(tx, a, &f); err != nil {
			return err
		}
		before := f.end()
		f.Live, f.Prev, f.ExpiresAt, f.IdleExpiresAt = n.Hash, oldHash, n.ExpiresAt, n.IdleExpiresAt
		if err := moveExpiry(tx, expFamily, before, f.end(), f.ID); err != nil {
			return err
		}
		return d.putFamily(tx, f)
	})
}

// inherit fills an empty *field from the old link and refuses a different one.
func inherit(field *string, old, what string) error {
	switch *field {
	case "":
		*field = old
	case old:
	default:
		return fmt.Errorf("rotate refresh token: %s %q differs from the old token's %q", what, *field, old)
	}
	return nil
}

func (d *DB) DeleteAccessToken(ctx context.Context, id string) error {
	return d.batch(func(tx *bbolt.Tx) error {
		found, err := deleteAccessTx(tx, id)
		if err == nil && !found {
			err = notFound("delete access token", id)
		}
		return err
	})
}

// RevokeFamily deletes every link of the family and the access tokens issued
// from it.
func (d *DB) RevokeFamily(ctx context.Context, familyID string) error {
	return d.db.Update(func(tx *bbolt.Tx) error {
		if !has(tx.Bucket(bFamilies), familyID) {
			return notFound("revoke family", familyID)
		}
		_, err := revokeFamilyTx(tx, familyID)
		return err
	})
}

// RevokeUserClient revokes every family and access token of the user at the
// client (every client when clientID is ""). The count is of tokens that
// were still standing: access tokens plus unrotated refresh links; rotated
// tombstones go too but are not counted.
func (d *DB) RevokeUserClient(ctx context.Context, userID, clientID string) (int, error) {
	if userID == "" {
		return 0, errors.New("revoke user tokens: empty user ID")
	}
	var n int
	err := d.db.Update(func(tx *bbolt.Tx) error {
		var err error
		n, err = revokeUserClientTx(tx, userID, clientID)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("revoke tokens of user %q at client %q: %w", userID, clientID, err)
	}
	return n, nil
}

func revokeUserClientTx(tx *bbolt.Tx, userID, clientID string) (int, error) {
	prefix := userID + "\x00"
	if clientID != "" {
		prefix += clientID + "\x00"
	}
	n := 0
	for _, k := range prefixKeys(tx.Bucket(bUserTokens), prefix) {
		parts := bytes.Split(k, []byte{0})
		if len(parts) != 4 {
			return n, fmt.Errorf("bad user token index key %q", k)
		}
		kind, id := string(parts[2]), string(parts[3])
		switch kind {
		case memberFamily:
			c, err := revokeFamilyTx(tx, id)
			if err != nil {
				return n, err
			}
			n += c.live + c.access
		case memberAccess:
			found, err := deleteAccessTx(tx, id)
			if err != nil {
				return n, err
			}
			if found {
				n++
			}
		}
		if err := tx.Bucket(bUserTokens).Delete(k); err != nil {
			return n, err
		}
	}
	return n, nil
}

type revoked struct {
	refresh int // every link, tombstones included
	live    int // unrotated links
	access  int
}

// revokeFamilyTx deletes a family with all its links, its access tokens and
// its index entries. A missing family is not an error.
func revokeFamilyTx(tx *bbolt.Tx, familyID string) (revoked, error) {
	var c revoked
	fb := tx.Bucket(bFamilies)
	var f family
	ok, err := getJSON(fb, familyID, &f)
	if err != nil || !ok {
		return c, err
	}
	members := tx.Bucket(bFamilyMembers)
	prefix := familyID + "\x00"
	keys := prefixKeys(members, prefix)
	type member struct{ id, kind string }
	all := make([]member, 0, len(keys)+len(f.Pending))
	for _, k := range keys {
		id, kind, ok := cutMemberKey(k[len(prefix):])
		if !ok {
			return c, fmt.Errorf("bad family index key %q", k)
		}
		all = append(all, member{id, kind})
	}
	for _, m := range f.Pending {
		if len(m) < 2 {
			return c, fmt.Errorf("family %q: bad pending member %q", familyID, m)
		}
		all = append(all, member{m[1:], m[:1]})
	}
	rb, byID := tx.Bucket(bRefreshTokens), tx.Bucket(bRefreshByID)
	for _, m := range all {
		id := m.id
		switch m.kind {
		case memberRefresh:
			hash := byID.Get([]byte(id))
			if hash == nil {
				continue
			}
			var r storage.RefreshToken
			found, err := getJSON(rb, string(hash), &r)
			if err != nil {
				return c, err
			}
			if err := byID.Delete([]byte(id)); err != nil {
				return c, err
			}
			if !found {
				continue
			}
			if err := dropGraceTx(tx, &r); err != nil {
				return c, err
			}
			if err := rb.Delete([]byte(r.Hash)); err != nil {
				return c, err
			}
			c.refresh++
			if r.RotatedAt.IsZero() {
				c.live++
			}
		case memberAccess:
			found, err := deleteAccessTx(tx, id)
			if err != nil {
				return c, err
			}
			if found {
				c.access++
			}
		}
	}
	if err := deleteKeys(members, keys); err != nil {
		return c, err
	}
	if f.UserID != "" {
		if err := tx.Bucket(bUserTokens).Delete([]byte(join(f.UserID, f.ClientID, memberFamily, f.ID))); err != nil {
			return c, err
		}
	}
	if err := deleteExpiry(tx, expFamily, f.end(), f.ID); err != nil {
		return c, err
	}
	if err := unindexClientRecord(tx, f.ClientID, clientFamily, f.ID); err != nil {
		return c, err
	}
	return c, fb.Delete([]byte(familyID))
}

// dropGraceTx ends a link's reuse grace: its sealed value and the expiry
// entry that would drop it later go.
func dropGraceTx(tx *bbolt.Tx, r *storage.RefreshToken) error {
	if len(r.SealedValue) == 0 && r.GraceUntil.IsZero() {
		return nil
	}
	if err := deleteExpiry(tx, expRefreshGrace, r.GraceUntil, r.Hash); err != nil {
		return err
	}
	r.SealedValue, r.GraceUntil = nil, time.Time{}
	return nil
}

// dropGraceOf ends the reuse grace of the link stored under hash
// (dropGraceTx) and stores it, when the link is there and drop says so;
// it reports whether it did.
func dropGraceOf(tx *bbolt.Tx, hash string, drop func(storage.RefreshToken) bool) (bool, error) {
	rb := tx.Bucket(bRefreshTokens)
	var r storage.RefreshToken
	ok, err := getJSON(rb, hash, &r)
	if err != nil || !ok || !drop(r) {
		return false, err
	}
	if err := dropGraceTx(tx, &r); err != nil {
		return false, err
	}
	return true, putJSON(rb, hash, r)
}

// putRefreshTx stores a link with its ID and family index entries, and the
// end of its grace when it has one. f is its family's record when the
// caller stores that too (indexMember).
func putRefreshTx(tx *bbolt.Tx, r storage.RefreshToken, f *family) error {
	if len(r.SealedValue) == 0 {
		r.GraceUntil = time.Time{}
	}
	if err := putJSON(tx.Bucket(bRefreshTokens), r.Hash, r); err != nil {
		return err
	}
	if err := putExpiry(tx, expRefreshGrace, r.GraceUntil, r.Hash); err != nil {
		return err
	}
	if err := tx.Bucket(bRefreshByID).Put([]byte(r.ID), []byte(r.Hash)); err != nil {
		return err
	}
	return indexMember(tx, f, r.FamilyID, r.ID, memberRefresh)
}

// putAccessTx stores an access token with its expiry, user, client and
// family index entries, and moves the last use of the user's grant to the
// app. f is its family's record when the caller stores that too
// (indexMember).
func putAccessTx(tx *bbolt.Tx, a storage.AccessToken, f *family) error {
	if err := putJSON(tx.Bucket(bAccessTokens), a.ID, a); err != nil {
		return err
	}
	if err := touchGrantTx(tx, a); err != nil {
		return err
	}
	if err := putExpiry(tx, expAccessToken, a.ExpiresAt, a.ID); err != nil {
		return err
	}
	if err := indexClientRecord(tx, a.ClientID, clientAccess, a.ID); err != nil {
		return err
	}
	if a.UserID != "" {
		if err := tx.Bucket(bUserTokens).Put([]byte(join(a.UserID, a.ClientID, memberAccess, a.ID)), emptyValue); err != nil {
			return err
		}
	}
	if a.FamilyID != "" {
		return indexMember(tx, f, a.FamilyID, a.ID, memberAccess)
	}
	return nil
}

// deleteAccessTx removes an access token and its index entries.
func deleteAccessTx(tx *bbolt.Tx, id string) (bool, error) {
	b := tx.Bucket(bAccessTokens)
	var a storage.AccessToken
	ok, err := getJSON(b, id, &a)
	if err != nil || !ok {
		return false, err
	}
	if err := deleteExpiry(tx, expAccessToken, a.ExpiresAt, id); err != nil {
		return false, err
	}
	if err := unindexClientRecord(tx, a.ClientID, clientAccess, id); err != nil {
		return false, err
	}
	if a.UserID != "" {
		if err := tx.Bucket(bUserTokens).Delete([]byte(join(a.UserID, a.ClientID, memberAccess, id))); err != nil {
			return false, err
		}
	}
	if a.FamilyID != "" {
		if err := tx.Bucket(bFamilyMembers).Delete(familyMemberKey(a.FamilyID, id, memberAccess)); err != nil {
			return false, err
		}
	}
	return true, b.Delete([]byte(id))
}
