package account

import "github.com/keyport/keyport/storage"

// SecondFactorRequired is the one rule for whom the admin's require_2fa
// applies to: everyone, except users whose directory handles second factors
// itself (handles_second_factor), since their directory's own sign-in
// already asked for one. Enrolment, forward auth, API tokens, app passwords
// and the password alone all ask this, so no path exempts more or fewer
// people than another.
func (s *Service) SecondFactorRequired(u storage.User) bool {
	return s.policy.Require2FA && !s.SecondFactorByDirectory(u)
}
