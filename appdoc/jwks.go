package appdoc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/webhook"
)

// The keys of an app that publishes them at a jwks_uri are fetched when an
// assertion needs them and kept for as long as the answer's Cache-Control
// max-age says, within MinAge and MaxAge (DefaultAge without
// one). An assertion signed with a key the kept set does not hold (a
// rotation at the app) fetches the set again, at most once per
// RefetchInterval, so assertions with made-up key IDs cannot make
// Keyport hammer the app. Fetches go through the webhooks' SSRF guard
// (webhook.Guard: public addresses only unless an admin allows a
// network, checked after DNS resolution, no redirects, no proxy), with
// its timeout, and read at most MaxJWKSBytes.
const (
	DefaultAge      = 10 * time.Minute
	MinAge          = time.Minute
	MaxAge          = time.Hour
	RefetchInterval = 30 * time.Second
	MaxJWKSBytes    = 64 << 10
	// forgetAfter drops a kept set nobody asked for this long (an app
	// deleted, or moved to another URI).
	forgetAfter = 24 * time.Hour
)

// JWKSCache keeps the JWK sets apps publish at their jwks_uri (see above).
type JWKSCache struct {
	guard *webhook.Guard
	// Client is guard's client, which the cache fetches with; the
	// provider sends back-channel logout tokens with it too.
	Client *http.Client
	parse  func([]byte) (jose.JSONWebKeySet, error)
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*jwksEntry
	swept   time.Time
}

// jwksEntry is what is known of one jwks_uri. Its lock is held during a
// fetch, so requests that need the same set wait for one fetch rather
// than each making their own.
type jwksEntry struct {
	mu      sync.Mutex
	set     jose.JSONWebKeySet
	fetched bool
	expires time.Time // the set is fresh until then
	tried   time.Time // the last fetch, successful or not
	err     error     // of the last fetch
	used    time.Time
}

// NewJWKSCache fetches through guard's client, reads what it fetched with
// parse (which refuses what is not a set of public signing keys), and
// keeps time by now.
func NewJWKSCache(guard *webhook.Guard, parse func([]byte) (jose.JSONWebKeySet, error), now func() time.Time) *JWKSCache {
	return &JWKSCache{guard: guard, Client: guard.Client(), parse: parse, now: now, entries: map[string]*jwksEntry{}}
}

// entry returns the entry of uri, making one; it forgets entries unused
// for forgetAfter, once an hour.
func (c *JWKSCache) entry(uri string) *jwksEntry {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if now.Sub(c.swept) > time.Hour {
		c.swept = now
		for k, e := range c.entries {
			if e.mu.TryLock() {
				if now.Sub(e.used) > forgetAfter {
					delete(c.entries, k)
				}
				e.mu.Unlock()
			}
		}
	}
	e, ok := c.entries[uri]
	if !ok {
		e = &jwksEntry{}
		c.entries[uri] = e
	}
	return e
}

// Keys returns the key set at uri, fetched again when the kept one is
// stale or lacks kid (and the last fetch is RefetchInterval ago).
func (c *JWKSCache) Keys(ctx context.Context, uri, kid string) (jose.JSONWebKeySet, error) {
	e := c.entry(uri)
	e.mu.Lock()
	defer e.mu.Unlock()
	now := c.now()
	e.used = now
	fresh := e.fetched && now.Before(e.expires)
	if fresh && (kid == "" || len(e.set.Key(kid)) > 0) {
		return e.set, nil
	}
	if !e.tried.IsZero() && now.Sub(e.tried) < RefetchInterval {
		if fresh {
			return e.set, nil // kid unknown; asked again too soon
		}
		if e.err != nil {
			return jose.JSONWebKeySet{}, e.err
		}
	}
	e.tried = now
	// The fetch is the app's, remembered for every caller: one who goes
	// away meanwhile must not make it fail (an anonymous caller could
	// otherwise lock the app out for RefetchInterval). It stays
	// bounded by webhook.Timeout.
	set, age, err := c.fetch(context.WithoutCancel(ctx), uri)
	if err != nil {
		e.err = err
		if fresh {
			return e.set, nil
		}
		return jose.JSONWebKeySet{}, err
	}
	e.set, e.fetched, e.expires, e.err = set, true, now.Add(age), nil
	return set, nil
}

// fetch gets the key set at uri and how long it may be kept.
func (c *JWKSCache) fetch(ctx context.Context, uri string) (jose.JSONWebKeySet, time.Duration, error) {
	body, header, err := Fetch(ctx, c.guard, c.Client, uri, "application/jwk-set+json, application/json", MaxJWKSBytes)
	if err != nil {
		return jose.JSONWebKeySet{}, 0, fmt.Errorf("jwks_uri: %w", err)
	}
	set, err := c.parse(body)
	if err != nil {
		return jose.JSONWebKeySet{}, 0, fmt.Errorf("jwks_uri %s: %w", uri, err)
	}
	if len(set.Keys) == 0 {
		return jose.JSONWebKeySet{}, 0, errors.New("jwks_uri " + uri + ": the key set holds no signing key")
	}
	return set, maxAge(header.Get("Cache-Control")), nil
}

// maxAge is how long a key set may be kept by its Cache-Control header,
// within MinAge and MaxAge.
func maxAge(cacheControl string) time.Duration {
	age := DefaultAge
	for _, d := range strings.Split(cacheControl, ",") {
		name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
		switch strings.ToLower(name) {
		case "no-store", "no-cache":
			return MinAge
		case "max-age":
			if secs, err := strconv.Atoi(strings.Trim(value, `"`)); err == nil {
				age = time.Duration(min(max(secs, 0), int(MaxAge/time.Second))) * time.Second
			}
		}
	}
	return min(max(age, MinAge), MaxAge)
}
