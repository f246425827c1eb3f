package bolt

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// The pending limits (storage.PendingLimits) are kept with four indexes in
// the flow file, written in the same transactions as the requests:
//
//	auth_requests_by_origin  origin NUL class nanos(created) ID → ""
//	auth_requests_by_group   group NUL class nanos(created) ID → "", for
//	                         requests that may be evicted (not classIssued)
//	auth_request_counts      'o' origin → count(8) of the origin's requests;
//	                         'g' group → the group's key in auth_request_groups
//	auth_request_groups      count(8) preference(1) age(8) group → "", the
//	                         groups with requests that may be evicted,
//	                         ranked for eviction (see groupRankKey)
//
// A request's class sorts those no browser has opened before those a
// person is at, and both before those whose code went out, so the first
// entry under a prefix is the one to evict, and an issued one first means
// there is none. The origin index and counts are kept only for requests
// with an origin; the group of a request without one is "". The requests'
// bucket sequence counts them all (for Total).
var (
	bAuthRequestsByOrigin = []byte("auth_requests_by_origin")
	bAuthRequestsByGroup  = []byte("auth_requests_by_group")
	bAuthRequestCounts    = []byte("auth_request_counts")
	bAuthRequestGroups    = []byte("auth_request_groups")

	pendingIndexes = [][]byte{bAuthRequestsByOrigin, bAuthRequestsByGroup, bAuthRequestCounts, bAuthRequestGroups}
)

// Classes of a pending request in index keys (storage.PendingClass as one
// digit), so that keys sort in the order requests are evicted.
const classIssued = '0' + byte(storage.PendingIssued)

func classOf(a storage.AuthRequest) byte { return '0' + byte(a.PendingClass()) }

// pendingKey is a request's entry under owner (an origin or a group).
func pendingKey(owner string, a storage.AuthRequest) []byte {
	k := append([]byte(owner+"\x00"), classOf(a))
	k = appendNanos(k, a.CreatedAt)
	return append(k, a.ID...)
}

// splitPendingKey returns the class and request ID of an entry under prefix.
func splitPendingKey(k, prefix []byte) (class byte, id string, ok bool) {
	if len(k) <= len(prefix)+9 {
		return 0, "", false
	}
	return k[len(prefix)], string(k[len(prefix)+9:]), true
}

// indexAuthRequest adds a's entries and counts.
func indexAuthRequest(tx *bbolt.Tx, a storage.AuthRequest) error {
	if a.Origin != "" {
		added, err := putNew(tx.Bucket(bAuthRequestsByOrigin), pendingKey(a.Origin, a))
		if err != nil || !added {
			return err
		}
		if err := addOriginCount(tx, a.Origin, 1); err != nil {
			return err
		}
	}
	if classOf(a) == classIssued {
		return nil
	}
	added, err := putNew(tx.Bucket(bAuthRequestsByGroup), pendingKey(a.EvictionGroup(), a))
	if err != nil || !added {
		return err
	}
	return addGroupCount(tx, a.EvictionGroup(), 1)
}

// unindexAuthRequest removes a's entries and counts; entries already gone
// are not counted twice.
func unindexAuthRequest(tx *bbolt.Tx, a storage.AuthRequest) error {
	if a.Origin != "" {
		if err := dropOriginEntry(tx, a.Origin, pendingKey(a.Origin, a)); err != nil {
			return err
		}
	}
	if classOf(a) == classIssued {
		return nil
	}
	return dropGroupEntry(tx, a.EvictionGroup(), pendingKey(a.EvictionGroup(), a))
}

// reindexAuthRequest moves a request's entries when an update changed its
// class (a browser opened it, its code went out) or anything else they
// are keyed by.
func reindexAuthRequest(tx *bbolt.Tx, old, updated storage.AuthRequest) error {
	if old.Origin == updated.Origin && old.EvictionGroup() == updated.EvictionGroup() && classOf(old) == classOf(updated) &&
		old.CreatedAt.Equal(updated.CreatedAt) {
		return nil
	}
	if err := unindexAuthRequest(tx, old); err != nil {
		return err
	}
	return indexAuthRequest(tx, updated)
}

func dropOriginEntry(tx *bbolt.Tx, origin string, key []byte) error {
	removed, err := deleteIfPresent(tx.Bucket(bAuthRequestsByOrigin), key)
	if err != nil || !removed {
		return err
	}
	return addOriginCount(tx, origin, -1)
}

func dropGroupEntry(tx *bbolt.Tx, group string, key []byte) error {
	removed, err := deleteIfPresent(tx.Bucket(bAuthRequestsByGroup), key)
	if err != nil || !removed {
		return err
	}
	return addGroupCount(tx, group, -1)
}

// evictForOrigin deletes requests of origin, those no browser opened first,
// each oldest first, until fewer than limit are left. It gives
// ErrLimitReached when only requests whose code went out are left.
func evictForOrigin(tx *bbolt.Tx, origin string, limit int) (int, error) {
	n := 0
	for originCount(tx, origin) >= uint64(limit) {
		prefix := []byte(origin + "\x00")
		k, _ := tx.Bucket(bAuthRequestsByOrigin).Cursor().Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			// The count says more than the index holds: it is wrong.
			return n, setOriginCount(tx, origin, 0)
		}
		k = bytes.Clone(k)
		class, id, ok := splitPendingKey(k, prefix)
		if ok && class == classIssued {
			return n, fmt.Errorf("evict a pending sign-in of %s: %d pending, all with a code issued: %w", origin, limit, storage.ErrLimitReached)
		}
		evicted, err := evictEntry(tx, id, func() error { return dropOriginEntry(tx, origin, k) })
		if err != nil {
			return n, err
		}
		n += evicted
	}
	return n, nil
}

// evictForTotal deletes requests of the group holding the most requests
// that may be evicted, until fewer than limit are left in all. Within the
// group, those no browser opened go first, each oldest first. It gives
// ErrLimitReached when only requests whose code went out are left.
func evictForTotal(tx *bbolt.Tx, limit int) (int, error) {
	b := tx.Bucket(bAuthRequests)
	n := 0
	for b.Sequence() >= uint64(limit) {
		top, _ := tx.Bucket(bAuthRequestGroups).Cursor().Last()
		if len(top) < groupRankPrefix {
			return n, fmt.Errorf("evict a pending sign-in: %d pending, all with a code issued: %w", limit, storage.ErrLimitReached)
		}
		group := string(top[groupRankPrefix:])
		prefix := []byte(group + "\x00")
		k, _ := tx.Bucket(bAuthRequestsByGroup).Cursor().Seek(prefix)
		if k == nil || !bytes.HasPrefix(k, prefix) {
			// The group's count says more than the index holds.
			if err := rankGroup(tx, group, 0); err != nil {
				return n, err
			}
			continue
		}
		k = bytes.Clone(k)
		_, id, _ := splitPendingKey(k, prefix)
		evicted, err := evictEntry(tx, id, func() error { return dropGroupEntry(tx, group, k) })
		if err != nil {
			return n, err
		}
		n += evicted
	}
	return n, nil
}

// evictEntry deletes the request id an index entry points at. An entry
// whose request is gone is left from an earlier version of the file:
// dropStale deletes it.
func evictEntry(tx *bbolt.Tx, id string, dropStale func() error) (int, error) {
	found, err := deleteAuthRequestTx(tx, id)
	if err != nil {
		return 0, err
	}
	if !found {
		return 0, dropStale()
	}
	return 1, nil
}

// rebuildPendingIndexes rebuilds the indexes and the count of requests
// from the requests themselves. It runs at every open: the flow file holds
// at most the pending limit of requests, and this also mends a file written
// by an earlier version, whose index entries could outlive their requests.
func rebuildPendingIndexes(tx *bbolt.Tx) error {
	for _, name := range pendingIndexes {
		if tx.Bucket(name) != nil {
			if err := tx.DeleteBucket(name); err != nil {
				return fmt.Errorf("delete bucket %s: %w", name, err)
			}
		}
		if _, err := tx.CreateBucket(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	b := tx.Bucket(bAuthRequests)
	n := uint64(0)
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		var a storage.AuthRequest
		if err := json.Unmarshal(v, &a); err != nil {
			return fmt.Errorf("auth request %q: %w", k, err)
		}
		if err := indexAuthRequest(tx, a); err != nil {
			return err
		}
		n++
	}
	return b.SetSequence(n)
}

// originCount is the number of requests of origin.
func originCount(tx *bbolt.Tx, origin string) uint64 {
	v := tx.Bucket(bAuthRequestCounts).Get(countKey('o', origin))
	if len(v) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// addOriginCount adds delta to origin's count (never below zero).
func addOriginCount(tx *bbolt.Tx, origin string, delta int) error {
	return setOriginCount(tx, origin, addClamped(originCount(tx, origin), delta))
}

func setOriginCount(tx *bbolt.Tx, origin string, n uint64) error {
	b := tx.Bucket(bAuthRequestCounts)
	if n == 0 {
		return b.Delete(countKey('o', origin))
	}
	return b.Put(countKey('o', origin), binary.BigEndian.AppendUint64(nil, n))
}

func countKey(kind byte, name string) []byte { return append([]byte{kind}, name...) }

func addClamped(n uint64, delta int) uint64 {
	if delta < 0 && uint64(-delta) > n {
		return 0
	}
	return uint64(int64(n) + int64(delta))
}

// groupCount is the number of requests of group that may be evicted.
func groupCount(tx *bbolt.Tx, group string) uint64 {
	v := tx.Bucket(bAuthRequestCounts).Get(countKey('g', group))
	if len(v) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(v)
}

// addGroupCount adds delta to group's count and ranks it anew.
func addGroupCount(tx *bbolt.Tx, group string, delta int) error {
	return rankGroup(tx, group, addClamped(groupCount(tx, group), delta))
}

// groupRankPrefix is the length of a rank key before the group's name.
const groupRankPrefix = 17

// groupRankKey ranks a group for eviction: the last key in
// auth_request_groups is the group to evict from. Most requests first; on
// a tie (many addresses with one request each: a wide flood's first round,
// or a busy site), the group whose first request no browser has opened,
// then the one whose first request is oldest, as every request would be
// ranked without groups.
func groupRankKey(group string, n uint64, firstClass byte, firstCreated uint64) []byte {
	k := binary.BigEndian.AppendUint64(make([]byte, 0, groupRankPrefix+len(group)), n)
	k = append(k, 0xff-firstClass)
	k = binary.BigEndian.AppendUint64(k, ^firstCreated)
	return append(k, group...)
}

// rankGroup sets group's count to n and moves its rank key to match the
// count and its first request.
func rankGroup(tx *bbolt.Tx, group string, n uint64) error {
	counts, rank := tx.Bucket(bAuthRequestCounts), tx.Bucket(bAuthRequestGroups)
	old := bytes.Clone(counts.Get(countKey('g', group)))
	var key []byte
	if n > 0 {
		prefix := []byte(group + "\x00")
		first, _ := tx.Bucket(bAuthRequestsByGroup).Cursor().Seek(prefix)
		if first != nil && bytes.HasPrefix(first, prefix) && len(first) > len(prefix)+9 {
			class := first[len(prefix)]
			created := binary.BigEndian.Uint64(first[len(prefix)+1:])
			key = groupRankKey(group, n, class, created)
		}
	}
	if bytes.Equal(old, key) {
		return nil
	}
	if old != nil {
		if err := rank.Delete(old); err != nil {
			return err
		}
	}
	if key == nil {
		return counts.Delete(countKey('g', group))
	}
	if err := rank.Put(key, emptyValue); err != nil {
		return err
	}
	return counts.Put(countKey('g', group), key)
}

// putNew puts an empty value under k unless k is there; it reports whether
// it did.
func putNew(b *bbolt.Bucket, k []byte) (bool, error) {
	if b.Get(k) != nil {
		return false, nil
	}
	return true, b.Put(k, emptyValue)
}

// deleteIfPresent deletes k and reports whether it was there.
func deleteIfPresent(b *bbolt.Bucket, k []byte) (bool, error) {
	if b.Get(k) == nil {
		return false, nil
	}
	return true, b.Delete(k)
}
