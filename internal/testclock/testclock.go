// Package testclock is the clock tests move by hand, so that expiry,
// windows and schedules can be tested without waiting. Code under test
// takes its Now method where it takes a func() time.Time.
package testclock

import (
	"sync"
	"time"
)

// Clock is a time source a test moves forward. Its methods are safe for
// concurrent use: the server and store goroutines read it while the test
// moves it.
type Clock struct {
	mu      sync.Mutex
	at      time.Time     // the time of a stopped clock
	offset  time.Duration // how far a running clock is ahead of the wall clock
	running bool
}

// At returns a stopped clock showing t: it moves only when the test moves it.
func At(t time.Time) *Clock { return &Clock{at: t} }

// Running returns a clock that follows the wall clock, plus whatever the
// test adds: for code that also waits on real timers (a server's refresh
// schedule, an HTTP client's timeouts).
func Running() *Clock { return &Clock{running: true} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return time.Now().Add(c.offset)
	}
	return c.at
}

// Add moves the clock by d.
func (c *Clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.offset += d
		return
	}
	c.at = c.at.Add(d)
}

// Set moves the clock to t; a running clock goes on from there.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		c.offset = time.Until(t)
		return
	}
	c.at = t
}
