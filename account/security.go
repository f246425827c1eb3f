package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyport/keyport/storage"
)

// ChangePassword sets a new password after checking the current one. Every
// other session of the user ends and every refresh and access token is
// revoked: whoever may have had the old password loses what it gave them.
func (s *Service) ChangePassword(ctx context.Context, u storage.User, keepSessionID, current, next, ip, userAgent string) error {
	if err := s.VerifyCurrentPassword(ctx, u, current, ip, userAgent); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Field == "confirm_password" {
			moved := *e
			moved.Field = "current_password"
			return &moved
		}
		return err
	}
	if err := s.Users.CheckPassword(ctx, next, u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, u.Nickname); err != nil {
		e := *err.(*Error)
		if e.Code != Unavailable { // busy is not the field's fault
			e.Field = "new_password"
		}
		return &e
	}
	hash, err := s.hashPassword(ctx, next)
	if err != nil {
		return fmt.Errorf("hash the new password of %q: %w", u.ID, err)
	}
	now := s.now()
	if _, err := s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.PasswordHash, u.PasswordChangedAt, u.UpdatedAt = hash, now, now
		return u, nil
	}); err != nil {
		return fmt.Errorf("change password of %q: %w", u.ID, err)
	}
	ended, revoked, err := s.Users.signOut(ctx, u.ID, keepSessionID)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password changed", "user_id", u.ID, "sessions_ended", ended, "tokens_revoked", revoked)
	return nil
}

// StoreRehash keeps a stronger hash of a password that was just verified
// (older argon2 parameters, or bcrypt from an import) when the sign-in goes
// on to a second step: otherwise people with a second factor would keep the
// weak hash forever. A hash changed meanwhile is left alone.
func (s *Service) StoreRehash(ctx context.Context, u storage.User, newHash string) error {
	if newHash == "" {
		return nil
	}
	_, err := s.store.UpdateUser(ctx, u.ID, func(cur storage.User) (storage.User, error) {
		if cur.PasswordHash == u.PasswordHash {
			cur.PasswordHash = newHash
		}
		return cur, nil
	})
	if err != nil {
		return fmt.Errorf("store rehashed password of %q: %w", u.ID, err)
	}
	return nil
}

// Sessions lists the user's signed-in browsers.
func (s *Service) Sessions(ctx context.Context, userID string) ([]storage.Session, error) {
	sessions, err := s.store.ListUserSessions(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("list sessions of %q: %w", userID, err)
	}
	return sessions, nil
}

// SignOutEverywhere ends every session and revokes every token of the user.
func (s *Service) SignOutEverywhere(ctx context.Context, userID string) error {
	_, _, err := s.Users.signOut(ctx, userID, "")
	return err
}

// History returns the user's newest sign-in attempts.
func (s *Service) History(ctx context.Context, userID string, n int) ([]storage.LoginAttempt, error) {
	as, err := s.store.ListLoginAttempts(ctx, userID, n)
	if err != nil {
		return nil, fmt.Errorf("list sign-ins of %q: %w", userID, err)
	}
	return as, nil
}

// Passkeys lists the user's passkeys, oldest first.
func (s *Service) Passkeys(ctx context.Context, userID string) ([]storage.Credential, error) {
	cs, err := s.store.ListCredentials(ctx, userID, storage.KindPasskey)
	if err != nil {
		return nil, fmt.Errorf("list passkeys of %q: %w", userID, err)
	}
	return cs, nil
}
