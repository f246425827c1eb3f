package throttle

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"sync"
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
}

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
	return &Guesses[T]{key: key, running: make(map[string]*guess[T])}
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
