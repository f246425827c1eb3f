package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/replica"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/storage/postgres"
)

// The store main opens is one of two backends (storage.type): bbolt, a
// file one process owns, or PostgreSQL, which any number of keyport
// processes (replicas) share. What differs beyond the records is here:
// how it opens, closes and reports its health, and for PostgreSQL the
// leads and change notices (storage.Shared) that let replicas split the
// background work and keep their caches current.

// openBackend opens the configured store into m.db or m.pg, and m.store.
func (m *Main) openBackend(ctx context.Context, lockWait time.Duration) error {
	cfg := m.Config
	switch cfg.Storage.Type {
	case config.StoragePostgres:
		db, err := openPostgres(ctx, cfg, m.Now, m.Logger)
		if err != nil {
			return err
		}
		m.pg, m.store = db, db
		if s, ok := any(db).(storage.Shared); ok {
			m.shared = s
		}
		return nil
	case config.StorageBolt:
		db, err := bolt.Open(cfg.DBPath(), bolt.Options{Now: m.Now, Timeout: lockWait, Logger: m.Logger,
			SkipCheck: !cfg.Database.Check, CheckTimeout: cfg.Database.CheckTimeout.Duration,
			MaxPendingSignIns: cfg.Limits.MaxPendingSignIns})
		if err != nil {
			if errors.Is(err, bolt.ErrLocked) {
				return &inUseError{path: cfg.DBPath(), err: err}
			}
			return err
		}
		m.db, m.store = db, db
		return nil
	default:
		return fmt.Errorf("storage.type %q: unknown", cfg.Storage.Type)
	}
}

// openPostgres opens cfg's PostgreSQL store, for serve and the commands
// alike (now and log may be nil: the wall clock, no log).
func openPostgres(ctx context.Context, cfg *config.Config, now func() time.Time, log *slog.Logger) (*postgres.DB, error) {
	db, err := postgres.Open(ctx, cfg.Storage.DSN, postgres.Options{Now: now, MaxConns: int32(cfg.Storage.MaxConns), Logger: log})
	if err != nil {
		// pgx's errors name the host, user and database, never the
		// password; the DSN itself is not repeated.
		return nil, fmt.Errorf("open the PostgreSQL store (storage.dsn): %w", err)
	}
	return db, nil
}

// storeName names the store in messages: the bbolt file, or "the
// PostgreSQL database".
func (m *Main) storeName() string {
	if m.pg != nil {
		return "the PostgreSQL database"
	}
	return m.Config.DBPath()
}

// closeBackend closes whichever store is open; closing twice is harmless.
// It leaves m's fields as they are: a worker cut off at shutdown may still
// read them (its store calls then fail), and must not race with Close.
func (m *Main) closeBackend() error {
	if m.storeClosed {
		return nil
	}
	m.storeClosed = true
	switch {
	case m.db != nil:
		return m.db.Close()
	case m.pg != nil:
		m.pg.Close()
	}
	return nil
}

// storeHealth is what /healthz reports of the store without touching it:
// bbolt's damage and write-probe state. PostgreSQL has no such state in
// this process; /readyz reads from it (with a bound) instead.
func (m *Main) storeHealth() error {
	if m.db != nil {
		return m.db.Health()
	}
	return nil
}

// led runs job where this process leads it: always with bbolt (one
// process), in one replica at a time with PostgreSQL (see replica.Led).
func (m *Main) led(ctx context.Context, name string, job func(context.Context)) {
	replica.Led(ctx, m.shared, name, 0, m.Logger, job)
}

// watchChanges keeps this replica's caches current with what the other
// replicas change: runtime settings, directories (and their on/off
// switches, which are settings), webhooks and signing keys. Nothing to
// do with bbolt, whose one process sees its own changes.
func (m *Main) watchChanges(ctx context.Context) {
	directories := func(ctx context.Context) error { return m.Accounts.Directories.LoadStoredDirectories(ctx) }
	reload := map[string]func(context.Context) error{
		storage.ChangeSettings: func(ctx context.Context) error {
			return errors.Join(m.Accounts.Admin.LoadSettings(ctx), directories(ctx))
		},
		storage.ChangeDirectories: directories,
		storage.ChangeSigningKeys: m.Keys.Refresh,
	}
	if m.Accounts.Webhooks != nil {
		reload[storage.ChangeWebhooks] = m.Accounts.Webhooks.Reload
	}
	replica.Watch(ctx, m.shared, reload, 0, m.Logger)
}

// leadWait bounds how long start-up waits for a lead another replica
// holds while it starts (the sealing key's first check, the first
// signing key).
const leadWait = time.Minute

// whileLeading runs fn holding the lead of name, waiting for it up to
// leadWait; with bbolt it just runs fn. Start-up work that two replicas
// starting together must not both do (remember a sealing key, make the
// first signing key) runs this way.
func (m *Main) whileLeading(ctx context.Context, name string, fn func() error) error {
	if m.shared == nil {
		return fn()
	}
	ctx, cancel := context.WithTimeout(ctx, leadWait)
	defer cancel()
	for {
		lead, err := m.shared.TryLead(ctx, name)
		if err == nil {
			defer lead.Release()
			return fn()
		}
		if !errors.Is(err, storage.ErrLeadTaken) {
			return fmt.Errorf("take the lead of %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("another replica held the lead of %s for %s", name, leadWait)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// loadSigningKeys loads the signing keys at start. A replica takes the
// keys as they are (the replica leading "signing-key-rotation" rotates
// them); only when there is none yet, or the signing key is not of the
// configured [keys] algorithm, does it make one, holding a lead so that
// replicas starting together make one between them. An algorithm an app
// uses that has no key yet gets one without the lead: two replicas that
// make one at once both publish theirs, and the lead retires the older.
func (m *Main) loadSigningKeys(ctx context.Context) error {
	if m.shared == nil {
		return m.Keys.Load(ctx)
	}
	if err := m.Keys.Refresh(ctx); err == nil && !m.Keys.AlgorithmChanged() {
		return m.Keys.EnsureInUse(ctx)
	}
	return m.whileLeading(ctx, "first-signing-key", func() error { return m.Keys.Load(ctx) })
}
