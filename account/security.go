package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// CredentialStore is the part of storage CredentialService needs: the
// credentials (passkeys, app passwords, API tokens, trusted devices), the
// users (their TOTP secrets, recovery codes and password), the passkey
// ceremonies (one-time tokens), and the clients an app password may be
// bound to.
type CredentialStore interface {
	storage.Users
	storage.Credentials
	storage.OneTimeTokens
	storage.Clients
}

// CredentialService keeps what people prove themselves with: the
// password (changed or confirmed), TOTP and recovery codes, passkeys,
// trusted devices, app passwords and API tokens, and the rules on who
// owes a second factor.
type CredentialService struct {
	*core
	store CredentialStore
	users *UserService // the password rules, active accounts, sign-outs
	wa    webauthnState
}

// ChangePassword sets a new password after checking the current one. Every
// other session of the user ends and every refresh and access token is
// revoked: whoever may have had the old password loses what it gave them.
func (s *CredentialService) ChangePassword(ctx context.Context, u storage.User, keepSessionID, current, next, ip, userAgent string) error {
	if err := s.VerifyCurrentPassword(ctx, u, current, ip, userAgent); err != nil {
		var e *Error
		if errors.As(err, &e) && e.Field == "confirm_password" {
			moved := *e
			moved.Field = "current_password"
			return &moved
		}
		return err
	}
	if err := s.users.CheckPassword(ctx, next, u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, u.Nickname); err != nil {
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
	ended, revoked, err := s.users.signOut(ctx, u.ID, keepSessionID)
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "password changed", "user_id", u.ID, "sessions_ended", ended, "tokens_revoked", revoked)
	s.audit(ctx, Actor{Kind: ActorUser, UserID: u.ID, IP: ip, UserAgent: userAgent}, storage.AuditEvent{Type: EventPasswordChanged, TargetUserID: u.ID})
	return nil
}

// VerifyCurrentPassword checks a signed-in user's password (for changes that
// always need it, like turning off two-factor authentication), throttled and
// recorded like a sign-in.
func (s *CredentialService) VerifyCurrentPassword(ctx context.Context, u storage.User, password, ip, userAgent string) error {
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
