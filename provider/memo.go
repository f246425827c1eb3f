package provider

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// readMemo keeps the user and the client one request has read. A refresh
// loads its user to check the account is still active and again for the ID
// token's claims, and its client to authenticate it and again for the
// grant: the same records, each a bbolt transaction and a JSON decode, about
// a tenth of a refresh's CPU time apart from the signature. The memo lives
// in the request's context, so nothing outlives the request and no change
// made by an admin is ever served late.
type readMemo struct {
	user   memoSlot[storage.User]
	client memoSlot[storage.Client]
}

// memoSlot holds the last record read under one ID.
type memoSlot[T any] struct {
	mu sync.Mutex
	id string
	v  T
}

// get returns the record for id, calling load only when the slot holds
// another ID. Errors are not kept.
func (s *memoSlot[T]) get(id string, load func() (T, error)) (T, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if id != "" && s.id == id {
		return s.v, nil
	}
	v, err := load()
	if err == nil {
		s.id, s.v = id, v
	}
	return v, err
}

type memoKey struct{}

func withReadMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &readMemo{})
}

func memoFrom(ctx context.Context) *readMemo {
	m, _ := ctx.Value(memoKey{}).(*readMemo)
	return m
}

// getUser reads a user, once per request.
func (s *opStorage) getUser(ctx context.Context, id string) (storage.User, error) {
	load := func() (storage.User, error) { return s.store.GetUser(ctx, id) }
	if m := memoFrom(ctx); m != nil {
		return m.user.get(id, load)
	}
	return load()
}

// getClient reads a client, once per request.
func (s *opStorage) getClient(ctx context.Context, id string) (storage.Client, error) {
	load := func() (storage.Client, error) {
		c, err := account.GetLiveClient(ctx, s.store, id) // a held app is unknown here
		if errors.Is(err, storage.ErrInvalid) {
			// An ID the store cannot even look up (on PostgreSQL, one with
			// a NUL) names no client: a 4xx wherever a client is named,
			// not a server error.
			return storage.Client{}, fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		}
		return c, err
	}
	if m := memoFrom(ctx); m != nil {
		return m.client.get(id, load)
	}
	return load()
}
