package postgres

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keyport/keyport/storage"
)

// Clients are read on nearly every protocol request (each token request
// authenticates one, each authorization checks its redirect URIs) and
// written only when an administrator edits one. Reading them from
// PostgreSQL every time was a round trip per request, a sixth of a client
// credentials grant's time. So a DB keeps the clients it has read, as
// their stored JSON (decoded afresh on each read: no caller can alter what
// another gets), and drops them all on any change to a client:
//
//   - a change made through this DB drops them once it has committed,
//     before the method returns, so the process that made it never reads
//     the old record again;
//   - a change made by another process (a replica, `keyport client` run
//     against the same database) comes as a notice on the changes channel
//     (storage.ChangeClients, sent in the writing transaction): the
//     clients are dropped when the notice arrives, a few milliseconds
//     after that commit.
//
// Nothing is kept while the notices cannot be heard: the cache is filled
// only while a connection listens on the changes channel, and emptied as
// soon as that connection fails. A connection that dies silently is found
// by the watch's ping within LeadCheck; and every entry is read again
// after clientCacheTTL in any case, which bounds what a missed notice
// could ever cost. Clients that do not exist are never kept, so callers
// naming random IDs cannot grow the cache: its size is bounded by the
// number of clients.
//
// What the delay allows: for the notice's few milliseconds (at worst
// LeadCheck and a ping's timeout when the listening connection dies
// without a word, and clientCacheTTL for a write that sends no notice: SQL
// run by hand, or a connection pooler in transaction mode, which does not
// pass notices and is not supported), another replica may still take a
// secret that was just rotated away, or issue a token to a client that was
// just deleted; such a token lives out its lifetime. Before this cache
// the same window was the time between reading the client and storing
// the token.

// clientCacheTTL is how long a client read from the database is served
// from memory at most.
const clientCacheTTL = 30 * time.Second

// clientCache is a DB's cache of clients (see above).
type clientCache struct {
	mu sync.Mutex
	// gen counts the times the cache was emptied. A read puts what it
	// read only when gen is what it was when the read began: a change
	// that committed during the read may not be in what it read.
	gen       uint64
	listening bool // a connection listens for changes: caching is on
	entries   map[string]cachedClient
	// lastNotice is the topic of the last notice heard, of any topic: a
	// test that sends a marker knows, once it is heard, that every notice
	// committed before it was.
	lastNotice string
}

type cachedClient struct {
	record   []byte
	loadedAt time.Time
}

// get returns the stored JSON of client id if it is cached and fresh,
// and otherwise the generation a read of it must pass to put.
func (c *clientCache) get(id string, now time.Time) (record []byte, gen uint64, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, hit := c.entries[id]; hit && now.Sub(e.loadedAt) < clientCacheTTL {
		return e.record, c.gen, true
	}
	return nil, c.gen, false
}

// put keeps the JSON of client id read at now, unless the cache was
// emptied since the read began (gen) or nothing listens for changes.
func (c *clientCache) put(id string, record []byte, gen uint64, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.listening || gen != c.gen {
		return
	}
	if c.entries == nil {
		c.entries = make(map[string]cachedClient)
	}
	c.entries[id] = cachedClient{record: record, loadedAt: now}
}

// drop empties the cache: a client changed.
func (c *clientCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.emptyLocked()
}

// emptyLocked drops every entry and fails the puts of reads under way.
// The caller holds c.mu.
func (c *clientCache) emptyLocked() {
	c.gen++
	clear(c.entries)
}

// heard handles a notice on the changes channel.
func (c *clientCache) heard(topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastNotice = topic
	if topic == storage.ChangeClients {
		c.emptyLocked()
	}
}

// listen turns caching on (a watch is in place) or off (it failed),
// emptying the cache either way: notices may have been missed.
func (c *clientCache) listen(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listening = on
	c.emptyLocked()
}

// startClientWatch starts, once, the watch that keeps the client cache
// honest; until it is in place clients are read from the database.
func (d *DB) startClientWatch() {
	d.clientWatchOnce.Do(func() {
		ctx, cancel := context.WithCancel(context.Background())
		d.stopClientWatch = cancel
		d.clientWatchDone.Go(func() { d.watchClients(ctx) })
	})
}

// watchClients listens for changes to clients until ctx ends, listening
// again after a failure (with a pause that grows to a few seconds, so a
// database that is down is not hammered).
func (d *DB) watchClients(ctx context.Context) {
	const minPause, maxPause = 100 * time.Millisecond, 5 * time.Second
	pause := minPause
	for ctx.Err() == nil {
		var listened time.Time
		err := d.WatchChanges(ctx, func() {
			d.clients.listen(true)
			listened = time.Now()
		}, d.clients.heard)
		d.clients.listen(false)
		if ctx.Err() != nil {
			return
		}
		// A watch that held for a while starts the pauses over; one whose
		// connection fails right after LISTEN keeps them growing.
		if !listened.IsZero() && time.Since(listened) > time.Minute {
			pause = minPause
		}
		if !errors.Is(err, context.Canceled) {
			d.log.Warn("client cache: listening for changes failed; reading clients from the database until it listens again", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(pause):
		}
		pause = min(2*pause, maxPause)
	}
}
