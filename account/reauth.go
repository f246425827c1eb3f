package account

import (
	"context"

	"github.com/keyport/keyport/storage"
)

// RecentlyAuthenticated tells whether sess signed in within the recent-auth
// window, so a security change needs no password again.
func (s *SignInService) RecentlyAuthenticated(sess storage.Session) bool {
	return !sess.AuthTime.IsZero() && s.now().Sub(sess.AuthTime) <= s.policy().RecentAuth
}

// Reauthenticate guards a security change: it passes when the session signed
// in recently, or when password is the user's current password. Wrong
// passwords count against the same limits as sign-in.
func (s *SignInService) Reauthenticate(ctx context.Context, u storage.User, sess storage.Session, password, ip, userAgent string) error {
	if s.RecentlyAuthenticated(sess) {
		return nil
	}
	if password == "" {
		return FieldErrorf("confirm_password", "For your security, enter your current password to make this change.")
	}
	return s.creds.VerifyCurrentPassword(ctx, u, password, ip, userAgent)
}
