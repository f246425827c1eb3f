package account

import (
	"context"

	"github.com/keyport/keyport/storage"
)

// SecondFactorRequired is the one rule for whom the admin's require_2fa
// applies to: everyone (or, set to admins, every administrator), except users whose directory handles second factors
// itself (handles_second_factor), since their directory's own sign-in
// already asked for one, and system accounts, which never sign in and so
// could never enrol one (their API tokens would be refused for good).
// Enrolment, forward auth, API tokens, app passwords and the password
// alone all ask this, so no path exempts more or fewer people than another.
func (s *CredentialService) SecondFactorRequired(u storage.User) bool {
	p := s.policy()
	return (p.Require2FA || p.Require2FAForAdmins && u.Admin) && !s.SecondFactorByDirectory(u) && !u.System
}

// SecondFactorByDirectory tells whether u's directory handles second
// factors itself: Keyport then offers them no TOTP or passkey enrolment.
func (s *CredentialService) SecondFactorByDirectory(u storage.User) bool {
	src := s.source(u.Source)
	return u.Source != "" && src != nil && src.Capabilities().SecondFactor
}

// NeedsEnrolment tells whether the admin's "2FA required" setting sends u
// to enrol a second factor before anything else.
func (s *CredentialService) NeedsEnrolment(ctx context.Context, u storage.User) (bool, error) {
	if !s.SecondFactorRequired(u) {
		return false, nil
	}
	has, err := s.HasSecondFactor(ctx, u)
	return !has, err
}

var errEnrolmentByDirectory = Errorf(Forbidden, "Your directory handles two-factor authentication for your account.")

// CheckTwoFactorPolicy refuses people who owe a second factor: when the
// admin requires 2FA, an account without one reaches no app and no API
// until it enrols (the portal sends its browser to the enrolment page).
func (s *CredentialService) CheckTwoFactorPolicy(ctx context.Context, u storage.User) error {
	if !s.SecondFactorRequired(u) {
		return nil
	}
	has, err := s.HasSecondFactor(ctx, u)
	if err != nil {
		return err
	}
	if !has {
		return Errorf(Forbidden, "Set up a second factor first: your administrator requires one.")
	}
	return nil
}
