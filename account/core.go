package account

import (
	"context"
	"crypto/sha256"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// core is what every area service shares: the rules in force, the clock,
// the log, the sealer, the throttle, the password-hash gate, the
// directory sources in force and the sign-in history. New makes one and
// every area holds a pointer to it; it holds no store beyond the history,
// so an area reaches only the records its own store interface names.
type core struct {
	// defaults is the policy config.toml gives; effective is it overlaid
	// with the settings an admin stored (Settings), swapped whole when
	// they change so every rule sees the new values on its next request.
	// Read it through policy().
	defaults  Policy
	effective atomic.Pointer[Policy]
	now       func() time.Time
	log       *slog.Logger
	sealer    Sealer
	limiter   *throttle.Limiter
	hashes    *hashGate
	// history is where every area records sign-in attempts (record), as
	// it writes log lines: password, code, passkey, app password, API
	// token and upstream sign-ins alike.
	history storage.LoginAttempts
	// auditLog is where every area appends audit events (audit).
	auditLog storage.Audit
	// backChannel queues back-channel logouts when sessions end
	// (backchannel.go); nil: off.
	backChannel atomic.Pointer[backChannel]
	// reactors turn an audit event into the outbox messages it causes
	// (notifications, webhook calls), written in the event's own commit
	// (reactions.go).
	reactors atomic.Pointer[[]Reactor]
	// outboxWake wakes the outbox worker after reactions were committed
	// (nil: none; the worker's poll finds them).
	outboxWake atomic.Pointer[func()]
	// observer is told of sign-in events (observer.go); nil: none.
	observer atomic.Pointer[Observer]

	// The directory sources: static are the ones from config.toml; srcs
	// is every source in force (static and stored), swapped whole on
	// changes; srcMu serialises the changes (DirectoryService).
	static []directory.Source
	srcs   atomic.Pointer[sourceSet]
	srcMu  sync.Mutex
	// storedSum is what LoadStoredDirectories last put in force (the
	// stored directories and every on/off switch), so loading the same
	// again reopens nothing; zero until then. Guarded by srcMu.
	storedSum [sha256.Size]byte
}

// policy is the rules in force: config.toml's overlaid by the stored
// settings.
func (s *core) policy() Policy { return *s.effective.Load() }

// record adds a sign-in attempt to the user's history, with its audit
// event in the same write; a failure to write them is logged, never the
// caller's problem.
func (s *core) record(ctx context.Context, a storage.LoginAttempt) {
	s.observe(func(o Observer) { o.SignInAttempt(a.Method, a.Success) })
	e := s.attemptEvent(ctx, a)
	err := s.history.RecordAttempt(ctx, a, &e)
	if auditRefused(err) {
		s.log.ErrorContext(ctx, "write audit event", "type", e.Type, "target", e.TargetUserID, "err", err)
		err = s.history.AddLoginAttempt(ctx, a)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "record login attempt", "err", err)
	}
}

// auditRefused tells whether a write failed on its audit event alone
// (one the store refuses): the write is then made without it, since a
// sign-in and its history must not depend on the audit log.
func auditRefused(err error) bool {
	return errors.Is(err, storage.ErrInvalid) || errors.Is(err, storage.ErrTooLarge)
}

// sourceSet is the sources in force; it is replaced whole when an admin
// adds, edits or removes a directory, so readers never see half a change.
type sourceSet struct {
	password  []directory.PasswordSource
	callbacks []directory.CallbackSource
	all       []directory.Source
	stored    map[string]bool // added on the admin page (editable)
	// disabled: turned off on the admin page. Kept here, not read from the
	// store, because sign-in and the sign-in page consult it on every request.
	disabled map[string]bool
}

func (s *core) sourceSet() *sourceSet {
	if set := s.srcs.Load(); set != nil {
		return set
	}
	return &sourceSet{}
}

func (s *core) source(id string) directory.Source {
	for _, src := range s.sourceSet().all {
		if src.ID() == id {
			return src
		}
	}
	return nil
}

func (s *core) passwordSource(id string) directory.PasswordSource {
	for _, src := range s.sourceSet().password {
		if src.ID() == id {
			return src
		}
	}
	return nil
}

// ownedFields are the profile keys the user's source owns.
func (s *core) ownedFields(sourceID string) []string {
	if src := s.source(sourceID); src != nil {
		return src.Capabilities().OwnedFields
	}
	return DirectoryOwnedFields(sourceID)
}

// sourceName is how the portal names a source.
func (s *core) sourceName(sourceID string) string {
	if src := s.source(sourceID); src != nil {
		return src.Name()
	}
	return sourceID
}
