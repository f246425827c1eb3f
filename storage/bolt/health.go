package bolt

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// Health reports, cheaply and without touching the disk, whether the store
// works: nil, or an error with a short reason (no paths: /healthz shows it
// to anyone). The reason is either damage (see guardedDB) or writes that
// fail: from the first failed commit until a Probe succeeds.
func (d *DB) Health() error {
	if d.db != nil && d.db.Damaged() != nil {
		return errors.New("database file is damaged")
	}
	if d.flow != nil && d.flow.Damaged() != nil {
		return errors.New("sign-in database file is damaged (a restart recreates it)")
	}
	for _, g := range []*guardedDB{d.db, d.flow} {
		if g == nil {
			continue
		}
		if _, err := g.health.state(); err != nil {
			return fmt.Errorf("database writes are failing (%s)", shortCause(err))
		}
	}
	return nil
}

// Probe checks that both files can be written, and is what ends a failure
// reported by Health. Run it every few seconds: it costs one fsync of the
// main file when nothing else wrote to it since the last probe, and
// nothing but a file-system allocation otherwise.
//
// A small write alone would pass on a full disk, because bbolt reuses the
// free pages inside its file; the write that fails is the one that grows
// the file. So the probe first asks the file system for the room the next
// growth needs (see growthProbe), then writes through bbolt when that is
// what has been failing or nothing proved it recently.
func (d *DB) Probe() error {
	var errs []error
	for _, g := range []*guardedDB{d.db, d.flow} {
		if err := g.probe(d.now()); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// kHealthProbe is the key the probe writes, in the meta bucket of each file.
var kHealthProbe = []byte("health_probe")

func (g *guardedDB) probe(now time.Time) (err error) {
	defer func() { g.log.Debug("probed database writes", "path", g.path, "err", err) }()
	if err := g.Damaged(); err != nil {
		return err
	}
	seq, failing := g.health.state()
	room := growthRoom(g)
	if err := growthProbe(g.path, room); err != nil {
		if failing != nil {
			return err // writes fail, and would still
		}
		// Writes work, in the file's free pages, until it must grow: a
		// warning for the operator, not a failure (nothing failed yet,
		// and /healthz taking the server out of service would be worse).
		if g.health.short.CompareAndSwap(false, true) {
			g.log.Warn("the disk holding the database is almost full: the file cannot grow, and writes will fail once its free pages are used", "path", g.path, "growth", room, "err", err)
		}
	} else if g.health.short.CompareAndSwap(true, false) {
		g.log.Info("the disk holding the database has room again", "path", g.path)
	}
	if failing != nil || !g.health.wroteSinceProbe() {
		err := g.Update(func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucketIfNotExists(bMeta)
			if err != nil {
				return err
			}
			return b.Put(kHealthProbe, []byte(now.UTC().Format(time.RFC3339Nano)))
		})
		if err != nil {
			return err // Update recorded it
		}
	}
	if g.health.recovered(seq) {
		g.log.Info("database writes work again", "path", g.path)
	}
	return nil
}

// writeHealth is what a file's store knows about its writes.
type writeHealth struct {
	mu      sync.Mutex
	failure error     // the first failure since writes last worked
	since   time.Time // when it happened
	seq     uint64    // counts failures, so a probe cannot clear one that came after it started
	// wrote is set by every successful commit and cleared by each probe.
	wrote atomic.Bool
	// short is set while the file has no room to grow (see probe).
	short atomic.Bool
}

// wrote records a successful commit.
func (h *writeHealth) wroteOK() { h.wrote.Store(true) }

func (h *writeHealth) wroteSinceProbe() bool { return h.wrote.Swap(false) }

// failed records a failed commit; it returns whether writes were working
// until now.
func (h *writeHealth) failed(err error, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	if h.failure != nil {
		return false
	}
	h.failure, h.since = err, now
	return true
}

// state returns the failure count to hand to recovered and the current
// failure (nil when writes work).
func (h *writeHealth) state() (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seq, h.failure
}

// recovered clears the failure unless another came after seq; it reports
// whether there was one to clear.
func (h *writeHealth) recovered(seq uint64) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failure == nil || h.seq != seq {
		return false
	}
	h.failure = nil
	return true
}

// growthRoom is how much the file system must be able to add to the file
// for bbolt's next growth of g's file: its AllocSize (16 MiB for the main
// file, which sits inside its mapping, so bbolt adds that much each time;
// see initialMapping), at least 1 MiB, so that a nearly full disk shows
// before it is completely full.
func growthRoom(g *guardedDB) int64 {
	const minRoom = 1 << 20
	return max(int64(g.db.AllocSize), minRoom)
}

// shortCause names the cause of a write failure without paths: the system
// error when there is one ("no space left on device"), else the end of the
// message (bbolt formats some errors with %s, losing the chain).
func shortCause(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	var de *DamagedError
	if errors.As(err, &de) {
		return "damaged file"
	}
	msg := err.Error()
	if i := strings.LastIndex(msg, ": "); i >= 0 {
		msg = msg[i+2:]
	}
	return oneLine(msg)
}
