package account

import (
	"sync"
	"time"
)

// limiter counts failed sign-ins per key (account or IP) in a fixed window.
// It lives in memory: a restart forgives, which is acceptable for throttling.
type limiter struct {
	mu     sync.Mutex
	max    int
	window time.Duration
	hits   map[string]*window
	swept  time.Time
}

type window struct {
	start time.Time
	count int
}

func newLimiter(max int, w time.Duration) *limiter {
	return &limiter{max: max, window: w, hits: make(map[string]*window)}
}

func (l *limiter) blocked(key string, now time.Time) bool {
	if l.max <= 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.hits[key]
	return w != nil && now.Sub(w.start) < l.window && w.count >= l.max
}

func (l *limiter) fail(key string, now time.Time) {
	if l.max <= 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > l.window {
		for k, w := range l.hits {
			if now.Sub(w.start) >= l.window {
				delete(l.hits, k)
			}
		}
		l.swept = now
	}
	w := l.hits[key]
	if w == nil || now.Sub(w.start) >= l.window {
		l.hits[key] = &window{start: now, count: 1}
		return
	}
	w.count++
}

func (l *limiter) reset(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.hits, key)
}
