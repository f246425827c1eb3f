package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// App passwords sign non-browser clients in (mail apps, WebDAV, reverse
// proxies' forward auth). They look like "k7m2px-9c4tqz-..." (5 groups of
// 6 from an alphabet without look-alikes, about 148 bits) and are stored
// only as hashes, found through the hash index.
const appPasswordAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

func newAppPassword() string {
	raw := randomFrom(appPasswordAlphabet, 30)
	var parts []string
	for i := 0; i < len(raw); i += 6 {
		parts = append(parts, raw[i:i+6])
	}
	return strings.Join(parts, "-")
}

func normalizeAppPassword(p string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(p), " ", "-"))
}

// checkCredentialName validates a name for a credential and makes sure the
// user has no other credential of that kind with it.
func (s *Service) checkCredentialName(ctx context.Context, userID, kind, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.ContainsAny(name, "\x00\r\n") {
		return "", FieldErrorf("name", "Give it a name of 1 to 64 characters.")
	}
	existing, err := s.store.ListCredentials(ctx, userID, kind)
	if err != nil {
		return "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	for _, c := range existing {
		if strings.EqualFold(c.Name, name) {
			return "", &Error{Code: Conflict, Field: "name", Message: "You already have one with this name."}
		}
	}
	return name, nil
}

// CreateAppPassword makes a new app password, optionally for one app only.
// The secret is returned once and never stored.
func (s *Service) CreateAppPassword(ctx context.Context, u storage.User, name, clientID string) (string, storage.Credential, error) {
	name, err := s.checkCredentialName(ctx, u.ID, storage.KindAppPassword, name)
	if err != nil {
		return "", storage.Credential{}, err
	}
	if clientID != "" {
		if _, err := s.store.GetClient(ctx, clientID); err != nil {
			return "", storage.Credential{}, FieldErrorf("client_id", "Choose an app from the list.")
		}
	}
	secret := newAppPassword()
	c := storage.Credential{ID: NewID(), UserID: u.ID, Kind: storage.KindAppPassword, Name: name, ClientID: clientID,
		Hash: HashSecret(normalizeAppPassword(secret)), CreatedAt: s.now()}
	if err := s.store.CreateCredential(ctx, c); err != nil {
		return "", storage.Credential{}, &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("create app password for %q: %w", u.ID, err)}
	}
	s.log.InfoContext(ctx, "app password created", "user_id", u.ID, "credential_id", c.ID, "client_id", clientID)
	return secret, c, nil
}

// Credentials lists a user's credentials of one kind.
func (s *Service) Credentials(ctx context.Context, userID, kind string) ([]storage.Credential, error) {
	cs, err := s.store.ListCredentials(ctx, userID, kind)
	if err != nil {
		return nil, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	return cs, nil
}

// RevokeCredential deletes one of the user's credentials of the given kind.
func (s *Service) RevokeCredential(ctx context.Context, userID, kind, id string) error {
	c, err := s.store.GetCredential(ctx, userID, id)
	if err == nil && c.Kind != kind {
		err = storage.ErrNotFound
	}
	if err == nil {
		err = s.store.DeleteCredential(ctx, userID, id)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return Errorf(NotFound, "It does not exist or was already revoked.")
	}
	if err != nil {
		return &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	s.log.InfoContext(ctx, "credential revoked", "user_id", userID, "kind", kind, "credential_id", id)
	return nil
}

// VerifyBasic checks HTTP Basic credentials for forward auth: an app
// password (unrestricted, or restricted to clientID), or the account
// password when the user has no second factor (a password alone must not
// get around 2FA). Every attempt is recorded.
func (s *Service) VerifyBasic(ctx context.Context, login, password, ip, userAgent, clientID string) (storage.User, string, error) {
	now := s.now()
	ipKey := "ip:" + ip
	if ip != "" && s.limiter.blocked(ipKey, now) {
		return storage.User{}, "", Errorf(RateLimited, "Too many failed sign-in attempts. Please wait a few minutes and try again.")
	}
	if login == "" || password == "" || len(login) > 320 || len(password) > 1024 {
		return storage.User{}, "", errInvalidCredentials
	}
	user, err := s.store.GetUserByLogin(ctx, login)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	if err == nil {
		c, cerr := s.store.GetCredentialByHash(ctx, HashSecret(normalizeAppPassword(password)))
		if cerr == nil && c.Kind == storage.KindAppPassword && c.UserID == user.ID {
			attempt := storage.LoginAttempt{ID: NewID(), UserID: user.ID, Login: login, Time: now, IP: ip, UserAgent: userAgent, Method: "app_password"}
			switch {
			case c.ClientID != "" && c.ClientID != clientID:
				attempt.Reason = "app password for another app"
			case CheckActive(user) != nil:
				attempt.Reason = "account blocked"
			case !NetworkAllows(user.AllowedNetworks, ip):
				attempt.Reason = "network not allowed"
			}
			if attempt.Reason != "" {
				s.record(ctx, attempt)
				s.limiter.fail(ipKey, now)
				return storage.User{}, "", Errorf(Forbidden, "These credentials may not be used here.")
			}
			attempt.Success = true
			s.record(ctx, attempt)
			_, _ = s.store.UpdateCredential(ctx, user.ID, c.ID, func(c storage.Credential) (storage.Credential, error) {
				c.LastUsedAt, c.LastIP = now, ip
				return c, nil
			})
			return user, "app_password", nil
		}
		if has, herr := s.HasSecondFactor(ctx, user); herr == nil && has {
			// Spend the hashing time anyway, so this answer looks like any
			// wrong password.
			_, _, _ = VerifyPassword(password, s.dummyHash, s.policy.Argon2)
			s.limiter.fail(ipKey, now)
			s.record(ctx, storage.LoginAttempt{ID: NewID(), UserID: user.ID, Login: login, Time: now, IP: ip, UserAgent: userAgent, Method: "pwd", Reason: "password refused: account has 2FA; use an app password"})
			return storage.User{}, "", errInvalidCredentials
		}
	}
	u, _, err := s.checkPassword(ctx, Credentials{Login: login, Password: password, IP: ip, UserAgent: userAgent})
	if err != nil {
		return storage.User{}, "", err
	}
	s.record(ctx, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: login, Time: now, IP: ip, UserAgent: userAgent, Method: "pwd", Success: true})
	return u, "pwd", nil
}
