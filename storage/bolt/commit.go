package bolt

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// groupCommit shares write transactions, and their two fsyncs, between
// concurrent writers. It replaces bbolt's DB.Batch, whose batches are cut by
// a timer (MaxBatchDelay): with a 10 ms delay a lone writer waits 10 ms, and
// with a short one, once a commit takes longer than the delay, every batch
// queues for the write lock holding a single write, so a busy server does
// one commit per write.
//
// Here a batch is closed only when the committer is ready to commit it.
// Before each commit it lets every goroutine that is ready to run take its
// turn (runtime.Gosched), for as long as that brings in more writes and at
// most maxGather: on a busy server those goroutines are mostly requests on
// their way to a write. A lone writer finds nobody else ready and commits at
// once.
//
// Gathering matters most with GOMAXPROCS=1. fdatasync is an ordinary
// blocking system call, and the runtime hands the only P to another thread
// only when sysmon notices the call, which under steady load it mostly does
// not (sysmon backs off to 10 ms ticks): in an execution trace of the
// refresh benchmark the whole process stood still for 883 of 888 ms spent in
// fdatasync. Each commit therefore stops every request for about 1-3 ms,
// and fewer, larger commits are what raise throughput.
type groupCommit struct {
	db        *guardedDB
	maxGather time.Duration

	mu      sync.Mutex
	pending []*commitCall
	running bool // a committer goroutine is draining pending
}

type commitCall struct {
	fn   func(*bbolt.Tx) error
	done chan error
}

// errTrySolo tells a caller that its function failed inside a shared
// transaction, which was rolled back: it runs again in a transaction of its
// own, so its error (a panic, too, becomes one: see guardedDB) is its alone.
var errTrySolo = errors.New("batched write failed; run it alone")

// do runs fn in a write transaction that may be shared with concurrent
// callers. As with bbolt's Batch, fn may run more than once and must only
// depend on tx.
func (g *groupCommit) do(fn func(*bbolt.Tx) error) error {
	c := &commitCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.pending = append(g.pending, c)
	if !g.running {
		g.running = true
		go g.run()
	}
	g.mu.Unlock()
	err := <-c.done
	if err == errTrySolo {
		err = g.db.Update(fn)
	}
	return err
}

func (g *groupCommit) waiting() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.pending)
}

// run commits pending writes until there are none.
func (g *groupCommit) run() {
	for {
		if g.maxGather > 0 {
			start := time.Now()
			for n := g.waiting(); time.Since(start) < g.maxGather; {
				runtime.Gosched()
				m := g.waiting()
				if m == n {
					break
				}
				n = m
			}
		}
		g.mu.Lock()
		calls := g.pending
		g.pending = nil
		if len(calls) == 0 {
			g.running = false
			g.mu.Unlock()
			return
		}
		g.mu.Unlock()
		g.commit(calls)
	}
}

// commit runs calls in one transaction. A call that fails is taken out and
// sent back to run alone, and the others are tried again without it.
func (g *groupCommit) commit(calls []*commitCall) {
	for len(calls) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bbolt.Tx) error {
			for i, c := range calls {
				if err := safeCall(c.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed >= 0 {
			calls[failed].done <- errTrySolo
			calls = append(calls[:failed:failed], calls[failed+1:]...)
			continue
		}
		for _, c := range calls {
			c.done <- err
		}
		return
	}
}

// safeCall turns a panic of fn into an error, so one bad call cannot take
// down the committer; run alone, the call then gets its panic back as an
// error (guardedDB.Update), which also decides whether it means damage.
func safeCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in batched write: %v", p)
		}
	}()
	return fn(tx)
}
