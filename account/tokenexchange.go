package account

import (
	"context"
	"slices"
	"strings"

	"github.com/keyport/keyport/storage"
)

// normalizeTokenExchange checks the token-exchange side of app c: only a
// confidential app may use the grant (RFC 8693 §2.1 expects the client to
// authenticate), and TokenExchangeAudiences lists at most
// MaxTokenExchangeAudiences client IDs or absolute resource URIs, kept
// without duplicates. The list may name apps that do not exist yet (a
// config file registers apps in any order); an audience that names no app
// is a resource URI at exchange time.
func normalizeTokenExchange(c *storage.Client) *Error {
	if c.Public && slices.Contains(c.GrantTypes, GrantTokenExchange) {
		return FieldErrorf("grant_types", "A public client cannot use token exchange: it has no secret.")
	}
	if len(c.TokenExchangeAudiences) > MaxTokenExchangeAudiences {
		return FieldErrorf("token_exchange_audiences", "At most %d audiences.", MaxTokenExchangeAudiences)
	}
	var err *Error
	c.TokenExchangeAudiences, err = normalizeList(c.TokenExchangeAudiences, func(a string) *Error {
		if !clientIDPattern.MatchString(a) && (checkURIShape(a) != nil || !strings.Contains(a, "://")) {
			return FieldErrorf("token_exchange_audiences", "%q is neither a client ID nor an absolute URI.", clip(a, 64))
		}
		return nil
	})
	return err
}

// VerifyAppPassword checks an app password presented for token exchange
// (RFC 8693) by app: login is the username or email, and only an app
// password limited to app is accepted, never the account password or an
// app password for every app. The checks are forward auth's (VerifyBasic)
// and the app's allowed groups: a password found is let in under the
// account's rules (blocked, network allowlist, second-factor policy) and
// the app's, recorded in
// the history; one that is none of the account's app passwords is a guess,
// reserved and counted by the throttle like forward auth's app-password
// misses, and refused with RateLimited once the throttle says so.
// credentialID is the app password's ID: the token issued for it lives
// only as long as the app password (storage.AccessToken.CredentialID).
func (s *SignInService) VerifyAppPassword(ctx context.Context, login, password, ip, userAgent string, app storage.Client) (u storage.User, credentialID string, err error) {
	now, clientID := s.now(), app.ID
	ctx = withClient(ctx, LogName(clientID))
	name, err := s.loginName(ctx, "app_password", login, password, ip)
	if err != nil {
		return storage.User{}, "", err
	}
	user, known, err := userByLogin(ctx, s.store, name)
	if err != nil {
		return storage.User{}, "", err
	}
	u, credentialID, err = s.creds.tryAppPassword(ctx, user, login, password, ip, userAgent, clientID, now, &app, true)
	if err != nil {
		return storage.User{}, "", err
	}
	if credentialID != "" {
		return u, credentialID, nil
	}
	attempt := storage.LoginAttempt{ID: NewID(), UserID: user.ID, Login: login, Time: now, IP: ip, UserAgent: userAgent, Method: "app_password"}
	res, err := s.limiter.Password(ctx, subject(user, known, name), ip, true)
	if err != nil {
		return storage.User{}, "", s.refused(ctx, err, msgTooManySignIns, attempt.Method, login, ip)
	}
	s.failed(ctx, res, attempt, "wrong app password")
	return storage.User{}, "", errInvalidCredentials
}
