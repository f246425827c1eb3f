package account

import (
	"context"
	"time"
)

// Observer is told of what happens to sign-ins as it happens, for metrics.
// Its methods are called on the request's goroutine: they must be quick
// and safe for concurrent use. Labels come from a closed set: method is a
// login attempt's method ("pwd", "otp", "passkey", "app_password",
// "api_token", "recovery_code", "fed…" for upstream sign-ins), which an
// observer should still map onto the values it knows.
type Observer interface {
	// SignInAttempt: an attempt was recorded in a user's history.
	SignInAttempt(method string, success bool)
	// Throttled: an attempt was refused before it was checked.
	Throttled(method string)
	// DirectorySynced: a sync of directory ran (the directory exists and
	// can sync) and ended with result "ok", "partial" (some users failed)
	// or "error" (it did not run through), after took.
	DirectorySynced(directory, result string, took time.Duration)
}

// SetObserver makes o the observer of sign-ins; call it before serving.
func (s *Service) SetObserver(o Observer) {
	if o != nil {
		s.core.observer.Store(&o)
	}
}

// observe calls fn with the observer, if there is one.
func (s *core) observe(fn func(Observer)) {
	if o := s.observer.Load(); o != nil {
		fn(*o)
	}
}

// SyncDirectory imports or refreshes every user the source lists and blocks
// linked accounts the source no longer lists.
func (s *DirectoryService) SyncDirectory(ctx context.Context, sourceID string) (SyncReport, error) {
	start := time.Now()
	rep, err := s.syncDirectory(ctx, sourceID)
	if c := ErrorCode(err); err == nil || (c != NotFound && c != Invalid) {
		// A directory that does not exist or cannot sync ran nothing, and
		// its name came from the caller: not a label.
		result := "ok"
		switch {
		case err != nil:
			result = "error"
		case rep.Failed > 0 || len(rep.Errors) > 0:
			result = "partial"
		}
		s.observe(func(o Observer) { o.DirectorySynced(sourceID, result, time.Since(start)) })
	}
	return rep, err
}
