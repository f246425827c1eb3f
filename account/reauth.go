package account

import (
	"context"

	"github.com/keyport/keyport/storage"
)

// RecentlyAuthenticated tells whether sess signed in within the recent-auth
// window, so a security change needs no password again.
func (s *Service) RecentlyAuthenticated(sess storage.Session) bool {
	return !sess.AuthTime.IsZero() && s.now().Sub(sess.AuthTime) <= s.policy.RecentAuth
}

// Reauthenticate guards a security change: it passes when the session signed
// in recently, or when password is the user's current password. Wrong
// passwords count against the same limits as sign-in.
func (s *Service) Reauthenticate(ctx context.Context, u storage.User, sess storage.Session, password, ip, userAgent string) error {
	if s.RecentlyAuthenticated(sess) {
		return nil
	}
	if password == "" {
		return FieldErrorf("confirm_password", "For your security, enter your current password to make this change.")
	}
	return s.VerifyCurrentPassword(ctx, u, password, ip, userAgent)
}

// VerifyCurrentPassword checks a signed-in user's password (for changes that
// always need it, like turning off two-factor authentication), throttled and
// recorded like a sign-in.
func (s *Service) VerifyCurrentPassword(ctx context.Context, u storage.User, password, ip, userAgent string) error {
	now := s.now()
	key := "user:" + u.ID
	if s.limiter.blocked(key, now) {
		return Errorf(RateLimited, "Too many failed sign-in attempts. Please wait a few minutes and try again.")
	}
	if u.PasswordHash == "" {
		return FieldErrorf("confirm_password", "Your account has no password here. Sign out and sign in again to make this change.")
	}
	ok, _, err := VerifyPassword(password, u.PasswordHash, s.policy.Argon2)
	if err != nil || !ok {
		s.limiter.fail(key, now)
		s.record(ctx, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: u.Username, Time: now, IP: ip, UserAgent: userAgent, Method: "pwd", Reason: "wrong password (confirmation)"})
		return FieldErrorf("confirm_password", "The current password is not correct.")
	}
	return nil
}
