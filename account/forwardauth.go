package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyport/keyport/storage"
)

// VerifyBasic checks HTTP Basic credentials for forward auth (login is a
// username or email): an app password that is unrestricted or restricted to
// clientID, or the account password when the account has no second factor
// (a password alone must never get around 2FA). Every attempt is recorded
// in the user's history. method is "app_password" or "pwd".
//
// When clientID names a registered app, its allowed groups are checked
// here, before anything is recorded as a success: right credentials of a
// person outside them are a failed attempt in the history (and no use of
// the app password), refused with an error whose chain holds
// ErrNotInAppGroups (403 for the proxy, not a prompt to sign in again). It
// is no wrong guess: the throttle counts it as the right password it is.
// An app that is not registered has no rules here.
//
// App passwords are long random secrets looked up by hash: nobody guesses
// one, so one that is found is let in whatever the throttle says, and a
// client sending it on many parallel requests is never refused. A password
// that is none of the account's app passwords is a guess: it is reserved
// and counted like a sign-in (throttle), and then tried as the account
// password, under every rule of password sign-in.
func (s *SignInService) VerifyBasic(ctx context.Context, login, password, ip, userAgent, clientID string) (storage.User, string, error) {
	now := s.now()
	var app *storage.Client
	if clientID != "" {
		ctx = withClient(ctx, LogName(clientID)) // the app the audit log names, as the proxy sent it
		c, err := s.store.GetClient(ctx, clientID)
		switch {
		case err == nil:
			app = &c
		case !errors.Is(err, storage.ErrNotFound):
			return storage.User{}, "", fmt.Errorf("forward auth: load client %q: %w", LogName(clientID), err)
		}
	}
	name, err := s.loginName(ctx, "pwd", login, password, ip)
	if err != nil {
		return storage.User{}, "", err
	}
	user, known, err := userByLogin(ctx, s.store, name)
	if err != nil {
		return storage.User{}, "", err
	}
	// Names that match no account go through the same steps.
	u, credentialID, err := s.creds.tryAppPassword(ctx, user, login, password, ip, userAgent, clientID, now, app, false)
	if err != nil {
		return storage.User{}, "", err
	}
	if credentialID != "" {
		return u, "app_password", nil
	}
	c := Credentials{Login: login, Password: password, IP: ip, UserAgent: userAgent}
	refuse := ""
	if known {
		if err := s.passwordAloneAllowed(ctx, user); err != nil {
			if ErrorCode(err) == Internal {
				return storage.User{}, "", err
			}
			// The same throttle and work as any wrong password, so this
			// answer tells nothing about the password.
			refuse = reasonPasswordAlone
		}
	}
	u, newHash, err := s.checkGuess(ctx, c, guess{user: user, known: known, name: name, refuse: refuse, appPasswordMiss: true})
	if err != nil {
		return storage.User{}, "", err
	}
	if !known {
		// Provisioned by a directory just now: the same rule applies.
		if err := s.passwordAloneAllowed(ctx, u); err != nil {
			s.record(ctx, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: login, Time: now, IP: ip, UserAgent: userAgent, Method: "pwd", Reason: reasonPasswordAlone})
			return storage.User{}, "", err
		}
	}
	if app != nil {
		if err := MayUseClient(u, *app); err != nil {
			// The password was right, so the throttle took it as such
			// (admit); the refusal is recorded as admit records a blocked
			// account or a network outside the allowlist.
			s.record(ctx, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: login, Time: now, IP: ip, UserAgent: userAgent, Method: "pwd", Reason: reasonNotInAppGroups})
			return storage.User{}, "", err
		}
	}
	if u, _, _, err = s.recordSignIn(ctx, u, newHash, c, nil); err != nil {
		return storage.User{}, "", err
	}
	return u, "pwd", nil
}

const reasonPasswordAlone = "password alone refused: use an app password"

// passwordAloneAllowed refuses the account password on its own for
// accounts with a second factor, and for accounts that owe one.
func (s *SignInService) passwordAloneAllowed(ctx context.Context, u storage.User) error {
	has, err := s.creds.HasSecondFactor(ctx, u)
	if err != nil {
		return err
	}
	if has || s.creds.SecondFactorRequired(u) {
		return errInvalidCredentials
	}
	return nil
}
