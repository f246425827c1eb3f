package bolt

import (
	"bytes"
	"sync"

	bbolt "go.etcd.io/bbolt"

	"github.com/keyport/keyport/storage"
)

// decodeMemo keeps records of one kind as they were decoded, each with the
// stored bytes it was decoded from. Clients, users and refresh tokens are
// read on nearly every protocol request, often more than once (a refresh
// reads its token to check it, then again in the write that rotates it),
// and decoding their JSON was the largest part of a refresh's CPU time
// after the signature; comparing the stored bytes costs next to nothing.
//
// Nothing needs to drop an entry when a record changes: the bytes read in
// the same transaction decide, so whatever wrote the record (an update, a
// restore, a load, a transaction rolled back after writing it) is seen at
// once. Entries are clones both ways, so no caller changes what another
// reads. Only records that exist are kept, and at most max: callers naming
// random keys cannot grow it; when it is full it starts again empty, which
// keeps the hot records (they come straight back) without bookkeeping.
type decodeMemo[T any] struct {
	clone func(T) T
	max   int

	mu      sync.RWMutex
	entries map[string]memoEntry[T]
}

type memoEntry[T any] struct {
	raw []byte
	v   T
}

func newDecodeMemo[T any](max int, clone func(T) T) *decodeMemo[T] {
	return &decodeMemo[T]{clone: clone, max: max}
}

// get returns a clone of the record key if it was decoded from exactly raw.
func (m *decodeMemo[T]) get(key string, raw []byte) (T, bool) {
	m.mu.RLock()
	e, ok := m.entries[key]
	m.mu.RUnlock()
	if !ok || !bytes.Equal(e.raw, raw) {
		var zero T
		return zero, false
	}
	return m.clone(e.v), true // an entry is never changed, only replaced
}

// put keeps v, which is what raw decodes to. raw may be a transaction's
// (valid only as long as it is), so it is copied.
func (m *decodeMemo[T]) put(key string, raw []byte, v T) {
	e := memoEntry[T]{raw: bytes.Clone(raw), v: m.clone(v)}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.entries == nil || len(m.entries) >= m.max {
		m.entries = make(map[string]memoEntry[T])
	}
	m.entries[key] = e
}

// size is how many records m holds.
func (m *decodeMemo[T]) size() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries)
}

// getMemo reads record key of b into *v, from m when its stored bytes are
// the ones m decoded, and keeps what it decodes. ok is false for a record
// that does not exist (*v unchanged).
func getMemo[T any](b *bbolt.Bucket, m *decodeMemo[T], key string, v *T) (ok bool, err error) {
	raw := b.Get([]byte(key))
	if raw == nil {
		return false, nil
	}
	if got, hit := m.get(key, raw); hit {
		*v = got
		return true, nil
	}
	var fresh T
	if err := unmarshalJSON([]byte(key), raw, &fresh); err != nil {
		return true, err
	}
	m.put(key, raw, fresh)
	*v = fresh
	return true, nil
}

// Memo sizes: a record is about a kilobyte encoded and as much decoded.
const (
	maxMemoClients = 4096
	// maxMemoUsers and maxMemoRefresh bound what a large site keeps to a
	// few megabytes; a small one keeps all its active people.
	maxMemoUsers   = 2048
	maxMemoRefresh = 2048
	// maxMemoFamilies: a family is rewritten by each refresh, and the
	// memo keeps what the rotation wrote (putFamily) for the next one.
	maxMemoFamilies = 2048
)

// memos are the decoded records a DB keeps (see decodeMemo).
type memos struct {
	clients  *decodeMemo[storage.Client]
	users    *decodeMemo[storage.User]
	refresh  *decodeMemo[storage.RefreshToken]
	families *decodeMemo[family]
}

func newMemos() memos {
	return memos{
		clients:  newDecodeMemo(maxMemoClients, storage.Client.Clone),
		users:    newDecodeMemo(maxMemoUsers, storage.User.Clone),
		refresh:  newDecodeMemo(maxMemoRefresh, storage.RefreshToken.Clone),
		families: newDecodeMemo(maxMemoFamilies, family.clone),
	}
}
