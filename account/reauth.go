package account

import (
	"context"
	"errors"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
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
	if u.PasswordHash == "" {
		return FieldErrorf("confirm_password", "Your account has no password here. Sign out and sign in again to make this change.")
	}
	// The session is proof of the account, like a remembered device: the
	// account-wide wait that failures elsewhere caused does not apply.
	res, err := s.limiter.Password(ctx, throttle.User(u.ID), ip, true)
	if err != nil {
		return s.refused(ctx, err, msgTooManySignIns, "pwd", u.Username, ip)
	}
	ok, _, err := s.verifyPassword(ctx, password, u.PasswordHash)
	if errors.Is(err, errBusy) {
		res.Cancel()
		return err
	}
	if err != nil || !ok {
		s.failed(ctx, res, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: u.Username, Time: s.now(), IP: ip, UserAgent: userAgent, Method: "pwd"}, "wrong password (confirmation)")
		return FieldErrorf("confirm_password", "The current password is not correct.")
	}
	if err := res.Succeed(ctx); err != nil {
		s.log.ErrorContext(ctx, "forgive failed sign-ins", "user_id", u.ID, "err", err)
	}
	return nil
}
