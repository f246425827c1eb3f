package account

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyport/keyport/storage"
)

const purposeSetup = "setup"

// CountUsers says how many accounts there are.
func (s *UserService) CountUsers(ctx context.Context) (int, error) {
	n, err := s.store.CountUsers(ctx)
	if err != nil {
		return 0, fmt.Errorf("count users: %w", err)
	}
	return n, nil
}

// NeedsSetup reports whether the store has no users yet.
func (s *UserService) NeedsSetup(ctx context.Context) (bool, error) {
	n, err := s.store.CountUsers(ctx)
	if err != nil {
		return false, fmt.Errorf("count users: %w", err)
	}
	return n == 0, nil
}

// CreateSetupToken issues the one-time secret for the first-admin setup link.
func (s *UserService) CreateSetupToken(ctx context.Context) (string, error) {
	secret := NewSecret()
	now := s.now()
	err := s.store.CreateOneTimeToken(ctx, storage.OneTimeToken{
		Hash: HashSecret(secret), Purpose: purposeSetup, CreatedAt: now, ExpiresAt: now.Add(s.policy().SetupTokenTTL),
	})
	if err != nil {
		return "", fmt.Errorf("create setup token: %w", err)
	}
	return secret, nil
}

var errSetupLink = Errorf(NotFound, "This setup link is invalid, expired or already used. Restart Keyport to get a new one, or run `keyport user create --admin`.")

// CheckSetupToken tells whether a setup link is still usable.
func (s *UserService) CheckSetupToken(ctx context.Context, secret string) error {
	if secret == "" {
		return errSetupLink
	}
	if _, err := s.store.PeekOneTimeToken(ctx, HashSecret(secret), purposeSetup); err != nil {
		return errSetupLink
	}
	if need, err := s.NeedsSetup(ctx); err != nil || !need {
		return errSetupLink
	}
	return nil
}

// CompleteSetup creates the first administrator through a setup link. The
// input is validated and the password hashed before the link is spent, so
// neither a typo nor a busy hash gate (503, try again) burns it.
func (s *UserService) CompleteSetup(ctx context.Context, secret string, n NewUser) (storage.User, error) {
	if err := s.CheckSetupToken(ctx, secret); err != nil {
		return storage.User{}, err
	}
	n.Admin = true
	if err := s.validateNewUser(ctx, &n); err != nil {
		return storage.User{}, err
	}
	u, err := s.newLocalUser(ctx, n)
	if err != nil {
		return storage.User{}, err
	}
	if _, err := s.store.ConsumeOneTimeToken(ctx, HashSecret(secret), purposeSetup); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return storage.User{}, errSetupLink
		}
		return storage.User{}, fmt.Errorf("spend the setup link: %w", err)
	}
	if err := s.storeNewUser(ctx, u); err != nil {
		return storage.User{}, err
	}
	return u, nil
}
