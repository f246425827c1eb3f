package bolt

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// ErrDamaged is returned (wrapped) by Open when the database file fails the
// consistency check, and by writes once the store has met a damaged page.
var ErrDamaged = errors.New("database file is damaged")

// DamagedError says which file is damaged and why. Its message is one line
// that tells the operator what to do.
type DamagedError struct {
	Path   string
	Reason string
	// Scratch is set for the flow file, which holds nothing a restore
	// would bring back: Keyport recreates it empty at start.
	Scratch bool
}

func (e *DamagedError) Error() string {
	if e.Scratch {
		return fmt.Sprintf("database %s is damaged (%s); restart keyport, which recreates it (it holds only sign-ins in progress, which start again)", e.Path, e.Reason)
	}
	return fmt.Sprintf("database %s is damaged (%s); stop keyport and restore it from a backup (`keyport backup --to FILE` makes one)", e.Path, e.Reason)
}

func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// guardedDB is one bbolt file whose transactions cannot crash the process.
//
// bbolt trusts the file: on a damaged page it panics (a failed assertion,
// an index out of range) or reads outside the file's memory mapping, which
// the Go runtime treats as a fatal fault rather than a panic. Every
// transaction of the store therefore runs here, with faults turned into
// panics (debug.SetPanicOnFault, which works per goroutine) and panics into
// errors, so no caller needs a recover of its own.
//
// A panic raised by bbolt, or a fault on a real address, means the file is
// damaged: the store then refuses writes, which could spread the damage (a
// damaged freelist hands out pages that are still in use), and Health
// reports it until the file is restored. Reads go on: most of a damaged
// file is usually fine. A panic in our own code is a bug, not damage: it
// becomes an error and a log line with its stack, and nothing else changes.
//
// The method names match bbolt's so code written against *bbolt.DB works
// unchanged.
type guardedDB struct {
	db   *bbolt.DB
	path string
	log  *slog.Logger
	// scratch marks the flow file (see DamagedError.Scratch).
	scratch bool

	// opening is set until Open returns: what goes wrong then is Open's
	// error, which the caller shows, and not also a log line.
	opening atomic.Bool

	mu      sync.Mutex
	damaged *DamagedError
	health  writeHealth

	// appendBuckets are filled to appendFill before a page splits, in
	// every write transaction (appendOnlyBuckets; none for the flow file).
	appendBuckets [][]byte
}

func newGuarded(db *bbolt.DB, path string, log *slog.Logger) *guardedDB {
	g := &guardedDB{db: db, path: path, log: log}
	g.opening.Store(true)
	return g
}

// View runs fn in a read transaction.
func (g *guardedDB) View(fn func(*bbolt.Tx) error) error {
	return g.guard("read", func() error { return g.db.View(g.inner("read", fn, nil)) })
}

// Update runs fn in a write transaction. Writes fail with ErrDamaged once
// the file is known to be damaged. A failed commit (the disk, not fn) is
// recorded for Health.
func (g *guardedDB) Update(fn func(*bbolt.Tx) error) error {
	if err := g.Damaged(); err != nil {
		return err
	}
	fnFailed := false
	if len(g.appendBuckets) > 0 {
		fn = g.fillAppendBuckets(fn)
	}
	err := g.guard("write", func() error { return g.db.Update(g.inner("write", fn, &fnFailed)) })
	switch {
	case err == nil:
		g.health.wroteOK()
	case !fnFailed:
		// Begin or Commit failed: the file could not be written.
		g.writeFailed(err)
	}
	return err
}

// fillAppendBuckets runs fn with appendBuckets set to split at appendFill
// (bbolt keeps a bucket's handle, and so its FillPercent, for the
// transaction; a bucket not created yet is skipped).
func (g *guardedDB) fillAppendBuckets(fn func(*bbolt.Tx) error) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error {
		for _, name := range g.appendBuckets {
			if b := tx.Bucket(name); b != nil {
				b.FillPercent = appendFill
			}
		}
		return fn(tx)
	}
}

// writeFailed records a failed write for Health, logging the first.
func (g *guardedDB) writeFailed(err error) {
	if g.health.failed(err, time.Now()) && !g.opening.Load() {
		g.log.Error("database writes are failing; /healthz reports it until they work again", "path", g.path, "err", err)
	}
}

// inner wraps a transaction's function: its panics become errors here, so
// bbolt's own deferred rollback runs as for any error, and failed (when
// not nil) tells Update that the error came from fn, not from the commit.
func (g *guardedDB) inner(what string, fn func(*bbolt.Tx) error, failed *bool) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = g.recovered(what, p)
			}
			if err != nil && failed != nil {
				*failed = true
			}
		}()
		return fn(tx)
	}
}

// guard runs op, a whole bbolt call, with faults turned into panics and
// panics into errors. A panic that gets here came from bbolt itself (Begin,
// Commit or Open), so it marks the file damaged whatever raised it.
func (g *guardedDB) guard(what string, op func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = g.markDamaged(what, p)
		}
	}()
	return op()
}

// recovered turns a panic of a transaction's function into an error,
// deciding between damage and a bug by where it was raised.
func (g *guardedDB) recovered(what string, p any) error {
	if fromDamage(p) {
		return g.markDamaged(what, p)
	}
	g.log.Error("panic in a database transaction (a bug in keyport)", "path", g.path, "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return fmt.Errorf("database %s: panic in a transaction: %v", g.path, p)
}

// markDamaged records that the file is damaged (logging it once, unless
// Open is still running and returns it) and returns the error for the
// operation that found it.
func (g *guardedDB) markDamaged(what string, p any) error {
	err, first := g.setDamaged(fmt.Sprintf("%s failed: %s", what, oneLine(fmt.Sprint(p))))
	if first && !g.opening.Load() {
		g.logDamage(err)
	}
	return err
}

// setDamaged records the damage; first tells whether it is the first.
func (g *guardedDB) setDamaged(reason string) (err *DamagedError, first bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	first = g.damaged == nil
	if first {
		g.damaged = &DamagedError{Path: g.path, Reason: reason, Scratch: g.scratch}
	}
	return &DamagedError{Path: g.path, Reason: reason, Scratch: g.scratch}, first
}

func (g *guardedDB) logDamage(err *DamagedError) {
	g.log.Error(err.Error()+"; writes are stopped until then", "detail", err.Reason)
}

// Damaged returns the damage found so far, or nil.
func (g *guardedDB) Damaged() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.damaged == nil {
		return nil
	}
	return g.damaged
}

// Sync, Close and Path pass through.
func (g *guardedDB) Sync() error { return g.db.Sync() }

// Close closes the file. Once the file is known damaged, a transaction
// that panicked on the damage may have left bbolt's writer lock held (its
// rollback panicking in turn, before it let go), and bbolt's Close would
// wait for that lock forever: a shutdown, or a test, hung on a damaged
// file. Close then waits closeDamagedWait and gives up, leaving the file to
// the process's exit.
func (g *guardedDB) Close() error {
	if g.Damaged() == nil {
		return g.db.Close()
	}
	done := make(chan error, 1)
	go func() { done <- g.db.Close() }()
	select {
	case err := <-done:
		return err
	case <-time.After(closeDamagedWait):
		return fmt.Errorf("close damaged database %s: a transaction that failed on the damage still holds it; the file is let go when the process exits", g.path)
	}
}

// closeDamagedWait is how long Close waits for a damaged file's locks.
const closeDamagedWait = 5 * time.Second

func (g *guardedDB) Path() string { return g.db.Path() }

// fromDamage tells whether the panic being recovered (p) was raised by
// bbolt's code or by a fault on a real address (a read outside the mapped
// file), rather than by ours. It must be called from the deferred function
// that recovered p: the panicking frames are still on the stack then.
func fromDamage(p any) bool {
	if re, ok := p.(runtime.Error); ok {
		if _, fault := re.(interface{ Addr() uintptr }); fault {
			return true
		}
	}
	pcs := make([]uintptr, 64)
	frames := runtime.CallersFrames(pcs[:runtime.Callers(1, pcs)])
	panicking := false
	for {
		f, more := frames.Next()
		switch {
		case f.Function == "runtime.gopanic":
			panicking = true
		case panicking && !strings.HasPrefix(f.Function, "runtime."):
			return strings.HasPrefix(f.Function, "go.etcd.io/bbolt")
		}
		if !more {
			return false
		}
	}
}

// oneLine keeps messages on one line and short.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
