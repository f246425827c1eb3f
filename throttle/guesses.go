package throttle

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
	"time"
)

// Guesses makes concurrent checks of the same guess one check. A client
// that sends its (right) password or secret on many parallel requests, as
// browsers loading a page's assets through forward auth and busy backends
// do, would otherwise hold as many reservations, and the limit would
// refuse the owner's own requests as if they were failures to come; each
// would also pay for its own password hash. Callers that present the same
// parts while a check of them runs wait for it and share its result: it
// is one guess, counted once.
//
// Guesses are told apart by an HMAC of their parts under a key made for
// this process, so the secret itself is never kept, not even in memory
// beyond the check.
type Guesses[T any] struct {
	key []byte

	mu      sync.Mutex
	running map[string]*guess[T]
	recent  map[string]recentGuess[T] // CheckRecent's, by id
}

type recentGuess[T any] struct {
	result T
	until  time.Time
}

// maxRecent bounds the results CheckRecent keeps: when it is reached, the
// expired ones go, and if none had, all of them (they only save work).
const maxRecent = 4096

type guess[T any] struct {
	done   chan struct{}
	result T
}

// NewGuesses returns an empty Guesses with a fresh key.
func NewGuesses[T any]() *Guesses[T] {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		panic("crypto/rand failed: " + err.Error())
	}
	return &Guesses[T]{key: key, running: make(map[string]*guess[T]), recent: make(map[string]recentGuess[T])}
}

// Check runs check unless a check of the same parts (who, from where, and
// the secret) is running; then it waits for that one and returns its
// result.
func (g *Guesses[T]) Check(parts []string, check func() T) T {
	id := g.id(parts)
	g.mu.Lock()
	if running, ok := g.running[id]; ok {
		g.mu.Unlock()
		<-running.done
		return running.result
	}
	mine := &guess[T]{done: make(chan struct{})}
	g.running[id] = mine
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.running, id)
		g.mu.Unlock()
		close(mine.done)
	}()
	mine.result = check()
	return mine.result
}

// CheckRecent is Check that also keeps a result keep approves for ttl
// after now: the same parts presented again within that time get it
// without a check. Meant for right secrets only (keep approves nothing
// else): a busy backend that sends its secret on every request then costs
// one check (and one read of the throttle's records) per ttl, while any
// other guess, whoever makes it, is checked and counted as before. Parts
// must include whatever a right answer depends on besides the guess (the
// stored hash), so that a change to it is a different id.
func (g *Guesses[T]) CheckRecent(parts []string, now time.Time, ttl time.Duration, keep func(T) bool, check func() T) T {
	id := g.id(parts)
	g.mu.Lock()
	if r, ok := g.recent[id]; ok && now.Before(r.until) {
		g.mu.Unlock()
		return r.result
	}
	g.mu.Unlock()
	result := g.Check(parts, check)
	if ttl <= 0 || !keep(result) {
		return result // nothing to keep it for: no room taken
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.recent) >= maxRecent {
		for k, r := range g.recent {
			if !now.Before(r.until) {
				delete(g.recent, k)
			}
		}
		if len(g.recent) >= maxRecent {
			clear(g.recent)
		}
	}
	g.recent[id] = recentGuess[T]{result: result, until: now.Add(ttl)}
	return result
}

// id is the HMAC of parts, each preceded by its length so that no two
// lists of parts run together the same way.
func (g *Guesses[T]) id(parts []string) string {
	mac := hmac.New(sha256.New, g.key)
	var n [binary.MaxVarintLen64]byte
	for _, p := range parts {
		mac.Write(n[:binary.PutUvarint(n[:], uint64(len(p)))])
		mac.Write([]byte(p))
	}
	return string(mac.Sum(nil))
}
