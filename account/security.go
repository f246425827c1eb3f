package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyport/keyport/storage"
)

// ChangePassword sets a new password after checking the current one. Every
// other session of the user ends and every refresh and access token is
// revoked: whoever may have had the old password loses what it gave them.
func (s *Service) ChangePassword(ctx context.Context, u storage.User, keepSessionID, current, next, ip, userAgent string) error {
	if err := s.VerifyCurrentPassword(ctx, u, current, ip, userAgent); err != nil {
		if ErrorField(err) == "confirm_password" {
			err.(*Error).Field = "current_password"
		}
		return err
	}
	if err := s.CheckPassword(next, u.Username, u.Email); err != nil {
		e := err.(*Error)
		return &Error{Code: e.Code, Field: "new_password", Message: e.Message}
	}
	hash, err := HashPassword(next, s.policy.Argon2)
	if err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	now := s.now()
	if _, err := s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.PasswordHash, u.PasswordChangedAt, u.UpdatedAt = hash, now, now
		return u, nil
	}); err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("change password of %q: %w", u.ID, err)}
	}
	ended, err := s.EndOtherSessions(ctx, u.ID, keepSessionID)
	if err != nil {
		return err
	}
	revoked, err := s.store.RevokeUserClient(ctx, u.ID, "")
	if err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("revoke tokens of %q: %w", u.ID, err)}
	}
	s.log.InfoContext(ctx, "password changed", "user_id", u.ID, "sessions_ended", ended, "tokens_revoked", revoked)
	return nil
}

// EndOtherSessions ends every session of the user except keepID ("" ends all).
func (s *Service) EndOtherSessions(ctx context.Context, userID, keepID string) (int, error) {
	sessions, err := s.store.ListUserSessions(ctx, userID)
	if err != nil {
		return 0, &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("list sessions of %q: %w", userID, err)}
	}
	n := 0
	for _, sess := range sessions {
		if sess.ID == keepID {
			continue
		}
		if err := s.store.DeleteSession(ctx, sess.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return n, &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("end session of %q: %w", userID, err)}
		}
		n++
	}
	return n, nil
}

// Sessions lists the user's signed-in browsers.
func (s *Service) Sessions(ctx context.Context, userID string) ([]storage.Session, error) {
	sessions, err := s.store.ListUserSessions(ctx, userID)
	if err != nil {
		return nil, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return sessions, nil
}

// SignOutEverywhere ends every session and revokes every token of the user.
func (s *Service) SignOutEverywhere(ctx context.Context, userID string) error {
	if _, err := s.EndOtherSessions(ctx, userID, ""); err != nil {
		return err
	}
	if _, err := s.store.RevokeUserClient(ctx, userID, ""); err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return nil
}

// History returns the user's newest sign-in attempts.
func (s *Service) History(ctx context.Context, userID string, n int) ([]storage.LoginAttempt, error) {
	as, err := s.store.ListLoginAttempts(ctx, userID, n)
	if err != nil {
		return nil, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return as, nil
}

// Trusted devices: "remember this device" after a second factor. The
// browser keeps a random secret in its own cookie; only its hash is stored.

// TrustDevice remembers the browser for the configured lifetime.
func (s *Service) TrustDevice(ctx context.Context, u storage.User, ip, userAgent string) (string, error) {
	if s.policy.TrustedDeviceLifetime <= 0 {
		return "", Errorf(Invalid, "Remembering devices is turned off.")
	}
	secret := NewSecret()
	now := s.now()
	if len(userAgent) > 512 {
		userAgent = userAgent[:512]
	}
	err := s.store.CreateCredential(ctx, storage.Credential{
		ID: NewID(), UserID: u.ID, Kind: storage.KindTrustedDevice, Hash: HashSecret(secret),
		UserAgent: userAgent, IP: ip, CreatedAt: now, LastUsedAt: now, LastIP: ip,
		ExpiresAt: now.Add(s.policy.TrustedDeviceLifetime),
	})
	if err != nil {
		return "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("trust device of %q: %w", u.ID, err)}
	}
	return secret, nil
}

// DeviceTrusted tells whether secret is a live trusted-device cookie of u,
// and notes that it was seen.
func (s *Service) DeviceTrusted(ctx context.Context, u storage.User, secret, ip string) bool {
	if secret == "" || s.policy.TrustedDeviceLifetime <= 0 {
		return false
	}
	c, err := s.store.GetCredentialByHash(ctx, HashSecret(secret))
	if err != nil || c.Kind != storage.KindTrustedDevice || c.UserID != u.ID {
		return false
	}
	now := s.now()
	_, _ = s.store.UpdateCredential(ctx, u.ID, c.ID, func(c storage.Credential) (storage.Credential, error) {
		c.LastUsedAt, c.LastIP = now, ip
		return c, nil
	})
	return true
}

// TrustedDevices lists the user's remembered devices.
func (s *Service) TrustedDevices(ctx context.Context, userID string) ([]storage.Credential, error) {
	cs, err := s.store.ListCredentials(ctx, userID, storage.KindTrustedDevice)
	if err != nil {
		return nil, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return cs, nil
}

// ForgetDevice forgets one remembered device ("" forgets all).
func (s *Service) ForgetDevice(ctx context.Context, userID, id string) error {
	var err error
	if id == "" {
		_, err = s.store.DeleteCredentials(ctx, userID, storage.KindTrustedDevice)
	} else {
		var c storage.Credential
		if c, err = s.store.GetCredential(ctx, userID, id); err == nil && c.Kind != storage.KindTrustedDevice {
			err = storage.ErrNotFound
		}
		if err == nil {
			err = s.store.DeleteCredential(ctx, userID, id)
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return Errorf(NotFound, "That device is not on your list.")
	}
	if err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return nil
}

// DeviceName summarises a user agent as "Browser on System".
func DeviceName(ua string) string {
	browser := "Unknown browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"},
		{"HeadlessChrome/", "Chrome (headless)"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
		{"curl/", "curl"}, {"Go-http-client/", "Go HTTP client"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	system := ""
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	if system == "" {
		return browser
	}
	return browser + " on " + system
}

// Passkeys lists the user's passkeys, oldest first.
func (s *Service) Passkeys(ctx context.Context, userID string) ([]storage.Credential, error) {
	cs, err := s.store.ListCredentials(ctx, userID, storage.KindPasskey)
	if err != nil {
		return nil, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return cs, nil
}
