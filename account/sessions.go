package account

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/keyport/keyport/storage"
)

// StartSession records a signed-in browser and returns the secret for its
// cookie. Only the secret's hash is stored.
func (s *SignInService) StartSession(ctx context.Context, u storage.User, amr []string, ip, userAgent string) (secret string, sess storage.Session, err error) {
	secret, sess = s.newSession(u, amr, ip, userAgent)
	if err := s.store.CreateSession(ctx, sess); err != nil {
		return "", storage.Session{}, fmt.Errorf("start session for %q: %w", u.ID, err)
	}
	return secret, sess, nil
}

// newSession builds a session of u starting now, and its cookie secret,
// for the caller to store.
func (s *SignInService) newSession(u storage.User, amr []string, ip, userAgent string) (secret string, sess storage.Session) {
	secret = NewSecret()
	now := s.now()
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	return secret, storage.Session{
		ID:        HashSecret(secret),
		UserID:    u.ID,
		AuthTime:  now,
		AMR:       amr,
		IP:        ip,
		UserAgent: userAgent,
		CreatedAt: now,
		ExpiresAt: now.Add(s.policy().SessionLifetime),
	}
}

// ResumeSession finds the live session for a cookie secret and its user. A
// session of a blocked or deleted user is ended.
func (s *SignInService) ResumeSession(ctx context.Context, secret string) (storage.Session, storage.User, error) {
	if secret == "" {
		return storage.Session{}, storage.User{}, Errorf(Unauthorized, "Not signed in.")
	}
	sess, err := s.store.GetSession(ctx, HashSecret(secret))
	if errors.Is(err, storage.ErrNotFound) {
		return storage.Session{}, storage.User{}, Errorf(Unauthorized, "Your session has ended. Please sign in again.")
	}
	if err != nil {
		return storage.Session{}, storage.User{}, fmt.Errorf("load session: %w", err)
	}
	u, err := s.users.ActiveUser(ctx, sess.UserID)
	if err != nil {
		_ = s.store.DeleteSession(ctx, sess.ID)
		return storage.Session{}, storage.User{}, err
	}
	noteUser(ctx, u.ID) // who acts in this request, for the audit log
	return sess, u, nil
}

// EndSession signs a browser out. Ending a session that is already gone is fine.
func (s *SignInService) EndSession(ctx context.Context, secret string) error {
	if secret == "" {
		return nil
	}
	if sess, err := s.store.GetSession(ctx, HashSecret(secret)); err == nil {
		s.logoutSession(ctx, sess)
	}
	if err := s.store.DeleteSession(ctx, HashSecret(secret)); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}

// Sessions lists the user's signed-in browsers.
func (s *SignInService) Sessions(ctx context.Context, userID string) ([]storage.Session, error) {
	sessions, err := s.store.ListUserSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	return sessions, nil
}

// SignOutEverywhere ends every session and revokes every token of the user.
func (s *SignInService) SignOutEverywhere(ctx context.Context, userID string) error {
	ended, revoked, err := s.users.signOut(ctx, userID, "")
	if err != nil {
		return err
	}
	s.audit(ctx, actorIn(ctx, userActor(userID)), storage.AuditEvent{Type: EventSessionsEnded, TargetUserID: userID,
		Reason: fmt.Sprintf("sessions ended: %d, tokens revoked: %d", ended, revoked)})
	return nil
}

// History returns the user's newest sign-in attempts.
func (s *SignInService) History(ctx context.Context, userID string, n int) ([]storage.LoginAttempt, error) {
	as, err := s.history.ListLoginAttempts(ctx, userID, n)
	if err != nil {
		return nil, fmt.Errorf("list sign-ins of %q: %w", userID, err)
	}
	return as, nil
}

// Completion is what the sign-in flow reports once a person is signed in for
// an authorization request.
type Completion struct {
	UserID    string
	SessionID string
	AMR       []string
	AuthTime  time.Time
}
