package throttle

import (
	"container/heap"
	"time"
)

// DefaultTallySize is how many accounts (or login names) with failures
// below the account-wide threshold are remembered when the policy does not
// say: about 19 MB at most, with keys of the longest kind (68 bytes).
const DefaultTallySize = 100_000

// tally counts account-wide failures below the threshold in memory, so
// that a made-up name's failure leaves nothing in the database: a durable
// record is written only when the threshold is reached, for real accounts
// and made-up names alike (the answers must not tell them apart). The
// tally is bounded: when it is full, the entry with the fewest failures
// (the oldest among equals) makes room, so a flood of made-up names pushes
// out other made-up names before it could push out a count that is close
// to its threshold. Counts are forgotten after the reset time without a
// failure, on a success, and on a restart (the windows per address, which
// are durable, still hold then). The caller holds the Limiter's lock.
type tally struct {
	size    int
	entries map[string]*tallyEntry
	order   tallyHeap // fewest failures, then oldest, first
}

type tallyEntry struct {
	key   string
	count int
	last  time.Time // the latest failure
	index int       // in order
}

func newTally(size int) *tally {
	if size <= 0 {
		size = DefaultTallySize
	}
	return &tally{size: size, entries: make(map[string]*tallyEntry)}
}

// count is key's failures, or 0 when it has none that happened within
// reset before now.
func (t *tally) count(key string, now time.Time, reset time.Duration) int {
	e, ok := t.entries[key]
	if !ok {
		return 0
	}
	if !now.Before(e.last.Add(reset)) {
		t.remove(key)
		return 0
	}
	return e.count
}

// add counts one failure of key at now and returns its count.
func (t *tally) add(key string, now time.Time, reset time.Duration) int {
	n := t.count(key, now, reset) + 1
	if e, ok := t.entries[key]; ok {
		e.count, e.last = n, laterOf(e.last, now)
		heap.Fix(&t.order, e.index)
		return n
	}
	if len(t.entries) >= t.size {
		t.remove(t.order[0].key)
	}
	e := &tallyEntry{key: key, count: n, last: now}
	t.entries[key] = e
	heap.Push(&t.order, e)
	return n
}

// remove forgets key.
func (t *tally) remove(key string) {
	if e, ok := t.entries[key]; ok {
		heap.Remove(&t.order, e.index)
		delete(t.entries, key)
	}
}

func (t *tally) len() int { return len(t.entries) }

// tallyHeap orders entries by count, then by the time of their latest
// failure (container/heap).
type tallyHeap []*tallyEntry

func (h tallyHeap) Len() int { return len(h) }

func (h tallyHeap) Less(i, j int) bool {
	if h[i].count != h[j].count {
		return h[i].count < h[j].count
	}
	return h[i].last.Before(h[j].last)
}

func (h tallyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}

func (h *tallyHeap) Push(x any) {
	e := x.(*tallyEntry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *tallyHeap) Pop() any {
	old := *h
	e := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return e
}
