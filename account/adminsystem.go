package account

import (
	"context"
	"time"

	"github.com/keyport/keyport/storage"
)

// System accounts (storage.User.System) are for programs: a backup job,
// a provisioning script, another system calling the management API. Nobody
// signs in as one (CheckInteractive), so nobody could make its API tokens
// at the portal's security page: an administrator issues them here, each
// with an expiry, so a forgotten token ends by itself.

// MaxSystemTokenLifetime bounds how far ahead a system account's API token
// may expire: a year and a month, so a yearly rotation has slack.
const MaxSystemTokenLifetime = 400 * 24 * time.Hour

var errNotSystem = Errorf(Conflict, "Only system accounts get API tokens from an administrator; people make their own on their security page.")

// CreateAPIToken issues an API token for the system account userID: shown
// once (only its hash is stored), with an expiry (required, at most
// MaxSystemTokenLifetime ahead), a scope and optional networks, as a
// person makes one for themselves. Refused for people's accounts: an
// administrator holding a token that acts as someone would be able to act
// as them unseen. Event: "api_token.created", with the administrator as
// actor.
func (s *AdminService) CreateAPIToken(ctx context.Context, actor Actor, userID string, n NewAPIToken) (string, storage.Credential, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return "", storage.Credential{}, err
	}
	u, err := s.loadUser(ctx, userID)
	if err != nil {
		return "", storage.Credential{}, err
	}
	if !u.System {
		return "", storage.Credential{}, errNotSystem
	}
	// A token may not renew itself: a system account that administers
	// Keyport must not keep itself alive past the expiry it was given.
	if actor.Kind == ActorUser && actor.UserID == userID {
		return "", storage.Credential{}, Errorf(Forbidden, "A system account cannot issue its own API tokens; an administrator does.")
	}
	if err := CheckActive(u); err != nil {
		return "", storage.Credential{}, err
	}
	return s.credentials.CreateAPIToken(WithActor(ctx, actor), u, n)
}

// RevokeAPIToken revokes one API token of userID: a system account's, or
// a person's that has leaked (an administrator may end any token, as they
// may end sessions). Event: "api_token.revoked", with the administrator
// as actor.
func (s *AdminService) RevokeAPIToken(ctx context.Context, actor Actor, userID, credentialID string) error {
	if err := s.authorize(ctx, actor, true); err != nil {
		return err
	}
	if _, err := s.loadUser(ctx, userID); err != nil {
		return err
	}
	return s.credentials.RevokeCredential(WithActor(ctx, actor), userID, storage.KindAPIToken, credentialID)
}
