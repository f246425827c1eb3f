package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/keyport/keyport/storage"
)

// API token scopes.
const (
	ScopeReadOnly  = "read-only"
	ScopeReadWrite = "read-write"
	// APITokenPrefix makes tokens recognisable to secret scanners.
	APITokenPrefix = "kp_"
	// apiTokenGrace keeps an expired token's record for a while, so a late
	// use is recognised (401, recorded in the owner's history) instead of
	// looking like an unknown token.
	apiTokenGrace = 30 * 24 * time.Hour
)

const base62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

// NewAPIToken is what a person asks for.
type NewAPIToken struct {
	Name  string
	Scope string // ScopeReadOnly or ScopeReadWrite
	// ExpiresAt is when the token stops working (zero: never); it must be
	// in the future. It becomes the credential's ValidUntil.
	ExpiresAt time.Time
	// AllowedNetworks: IPs/CIDRs the token may be used from, in
	// ParseNetworks' format; empty allows any address.
	AllowedNetworks string
}

// CreateAPIToken makes a token "kp_" + 40 base62 characters (about 238
// bits). It is returned once; only its hash is stored. A person reaches
// this from a signed-in browser only; an administrator issues a system
// account's tokens through AdminService.CreateAPIToken, which refuses a
// system account issuing its own, so no token renews itself.
func (s *CredentialService) CreateAPIToken(ctx context.Context, u storage.User, n NewAPIToken) (string, storage.Credential, error) {
	name, err := s.checkCredentialName(ctx, u.ID, storage.KindAPIToken, n.Name)
	if err != nil {
		return "", storage.Credential{}, err
	}
	if n.Scope != ScopeReadOnly && n.Scope != ScopeReadWrite {
		return "", storage.Credential{}, FieldErrorf("scope", "Choose read-only or read-write.")
	}
	now := s.now()
	if !n.ExpiresAt.IsZero() && !n.ExpiresAt.After(now) {
		return "", storage.Credential{}, FieldErrorf("expires", "The expiry date must be in the future.")
	}
	if u.System && (n.ExpiresAt.IsZero() || n.ExpiresAt.After(now.Add(MaxSystemTokenLifetime))) {
		return "", storage.Credential{}, FieldErrorf("expires", "A system account's token needs an expiry date at most %d days ahead.", int(MaxSystemTokenLifetime/(24*time.Hour)))
	}
	nets, err := ParseNetworks(n.AllowedNetworks)
	if err != nil {
		return "", storage.Credential{}, err
	}
	token := APITokenPrefix + randomFrom(base62, 40)
	c := storage.Credential{ID: NewID(), UserID: u.ID, Kind: storage.KindAPIToken, Name: name, Scope: n.Scope,
		Hash: HashSecret(token), AllowedNetworks: nets, ValidUntil: n.ExpiresAt, CreatedAt: now}
	if !n.ExpiresAt.IsZero() {
		c.ExpiresAt = n.ExpiresAt.Add(apiTokenGrace)
	}
	if err := s.store.CreateCredential(ctx, c); err != nil {
		return "", storage.Credential{}, fmt.Errorf("create API token for %q: %w", u.ID, err)
	}
	s.log.InfoContext(ctx, "API token created", "user_id", u.ID, "credential_id", c.ID, "scope", n.Scope)
	s.audit(ctx, actorIn(ctx, userActor(u.ID)), storage.AuditEvent{Type: EventAPITokenCreated, TargetUserID: u.ID,
		Changes: append(credentialNamed(c), storage.AuditChange{Field: "scope", After: n.Scope})})
	return token, c, nil
}

// ListAPITokens lists the user's API tokens (hashes only).
func (s *CredentialService) ListAPITokens(ctx context.Context, userID string) ([]storage.Credential, error) {
	return s.listCredentials(ctx, userID, storage.KindAPIToken)
}

// RevokeAPIToken deletes one of the user's API tokens.
func (s *CredentialService) RevokeAPIToken(ctx context.Context, u storage.User, id string) error {
	return s.RevokeCredential(ctx, u.ID, storage.KindAPIToken, id)
}

var errBadToken = Errorf(Unauthorized, "The API token is missing, unknown, expired or not allowed from this address.")

// AuthenticateAPIToken finds the user behind a bearer token. Every refusal
// is the same Unauthorized error; one of a known token (expired, outside its
// networks or the owner's allowlist, owner blocked) is recorded in the
// owner's history with the reason. On success the token's last use is
// noted.
//
// Tokens are long random secrets looked up by hash: nobody guesses one, so
// a token that is found is judged whatever the throttle says (a script
// sending it on many parallel requests is never refused, nor is it held
// back by failures of others at its address). A token that is not found
// is a miss: it counts towards the address's throttle, which refuses
// (RateLimited) once it is reached.
func (s *CredentialService) AuthenticateAPIToken(ctx context.Context, token, ip, userAgent string) (storage.User, storage.Credential, error) {
	now := s.now()
	var (
		c     storage.Credential
		found bool
	)
	reason := "malformed API token"
	if strings.HasPrefix(token, APITokenPrefix) && len(token) <= 200 {
		var err error
		c, err = s.store.GetCredentialByHash(ctx, HashSecret(token))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return storage.User{}, storage.Credential{}, fmt.Errorf("find API token: %w", err)
		}
		found, reason = err == nil && c.Kind == storage.KindAPIToken, "unknown API token"
	}
	if !found {
		// A miss names no account: it is counted and logged, but there is
		// no history to record it in.
		res, err := s.limiter.Secret(ctx, ip)
		if err != nil {
			return storage.User{}, storage.Credential{}, s.refused(ctx, err, msgTooManyTokens, "api_token", "", ip)
		}
		if _, err := res.Fail(ctx); err != nil {
			s.log.ErrorContext(ctx, "count failed sign-in", "err", err)
		}
		s.logFailure(ctx, "api_token", "", ip, reason)
		return storage.User{}, storage.Credential{}, errBadToken
	}
	// A known token that may not be used is no guess (its secret is right):
	// not counted, but logged and recorded in the owner's history.
	refuse := func(reason string) (storage.User, storage.Credential, error) {
		s.logFailure(ctx, "api_token", c.Name, ip, reason)
		s.record(ctx, storage.LoginAttempt{ID: NewID(), UserID: c.UserID, Login: c.Name, Time: now, IP: ip, UserAgent: userAgent, Method: "api_token", Reason: reason})
		return storage.User{}, storage.Credential{}, errBadToken
	}
	if !c.ValidUntil.IsZero() && !now.Before(c.ValidUntil) {
		return refuse("API token expired")
	}
	if !NetworkAllows(c.AllowedNetworks, ip) {
		return refuse("API token used from a network it does not allow")
	}
	u, err := s.users.ActiveUser(ctx, c.UserID)
	if err != nil {
		return refuse("account blocked or deleted")
	}
	if !NetworkAllows(u.AllowedNetworks, ip) {
		return refuse("network not allowed")
	}
	if err := s.CheckTwoFactorPolicy(ctx, u); err != nil {
		if ErrorCode(err) == Internal {
			return storage.User{}, storage.Credential{}, err
		}
		return refuse("second factor required but not set up")
	}
	if updated, err := s.store.UpdateCredential(ctx, u.ID, c.ID, func(c storage.Credential) (storage.Credential, error) {
		c.LastUsedAt, c.LastIP = now, ip
		return c, nil
	}); err == nil {
		c = updated
	} else {
		s.log.WarnContext(ctx, "note API token use", "user_id", u.ID, "credential_id", c.ID, "err", err)
	}
	return u, c, nil
}
