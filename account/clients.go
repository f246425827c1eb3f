package account

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/keyport/keyport/storage"
)

// Grant types a client may be registered for.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// MinClientSecretLength is the shortest secret an admin may choose.
const MinClientSecretLength = 16

// NewClient is what it takes to register an application.
type NewClient struct {
	ID                     string
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string // default: authorization_code, refresh_token
	Public                 bool
	AccessTokenJWT         bool
	SkipConsent            bool
	Secret                 string // empty: generate one (confidential clients)
}

// BuildClient validates a client definition and returns the record with its
// secret hashed, plus the plain secret (generated when none was given) that
// must be shown to the admin exactly once. It stores nothing, so static
// clients from the configuration go through the same rules.
func BuildClient(n NewClient) (storage.Client, string, error) {
	if !clientIDPattern.MatchString(n.ID) {
		return storage.Client{}, "", Errorf(Invalid, "Client ID must be 1 to 128 characters from A-Z a-z 0-9 . _ ~ -.")
	}
	if len(n.GrantTypes) == 0 {
		n.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	for _, g := range n.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials:
		default:
			return storage.Client{}, "", Errorf(Invalid, "Unknown grant type %q (use authorization_code, refresh_token, client_credentials).", g)
		}
	}
	n.GrantTypes = slices.Compact(slices.Sorted(slices.Values(n.GrantTypes)))
	if n.Public && slices.Contains(n.GrantTypes, GrantClientCredentials) {
		return storage.Client{}, "", Errorf(Invalid, "A public client cannot use client_credentials: it has no secret.")
	}
	if slices.Contains(n.GrantTypes, GrantRefreshToken) && !slices.Contains(n.GrantTypes, GrantAuthorizationCode) {
		return storage.Client{}, "", Errorf(Invalid, "The refresh_token grant needs authorization_code too: refresh tokens are only issued with codes.")
	}
	if slices.Contains(n.GrantTypes, GrantAuthorizationCode) && len(n.RedirectURIs) == 0 {
		return storage.Client{}, "", Errorf(Invalid, "A client using authorization_code needs at least one redirect URI.")
	}
	for _, u := range append(slices.Clone(n.RedirectURIs), n.PostLogoutRedirectURIs...) {
		if err := ValidateRedirectURI(u); err != nil {
			return storage.Client{}, "", err
		}
	}
	secret := n.Secret
	switch {
	case n.Public && secret != "":
		return storage.Client{}, "", Errorf(Invalid, "A public client must not have a secret.")
	case !n.Public && secret == "":
		secret = NewSecret()
	case !n.Public && len(secret) < MinClientSecretLength:
		return storage.Client{}, "", Errorf(Invalid, "Client secret must be at least %d characters.", MinClientSecretLength)
	}
	c := storage.Client{
		ID:                     n.ID,
		Name:                   strings.TrimSpace(n.Name),
		RedirectURIs:           slices.Clone(n.RedirectURIs),
		PostLogoutRedirectURIs: slices.Clone(n.PostLogoutRedirectURIs),
		GrantTypes:             n.GrantTypes,
		Public:                 n.Public,
		AccessTokenJWT:         n.AccessTokenJWT,
		SkipConsent:            n.SkipConsent,
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if !n.Public {
		c.SecretHash = HashSecret(secret)
	}
	return c, secret, nil
}

// ValidateRedirectURI checks that a redirect URI is absolute, without a
// fragment, and uses https, http, or a private-use scheme (native apps).
func ValidateRedirectURI(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.ContainsAny(raw, " \t\r\n") {
		return Errorf(Invalid, "Redirect URI %q must be an absolute URL without a fragment.", raw)
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return Errorf(Invalid, "Redirect URI %q has no host.", raw)
	}
	// Schemes a browser runs or reads locally instead of handing to an app
	// (url.Parse lowercases the scheme).
	switch u.Scheme {
	case "javascript", "vbscript", "data", "file", "blob", "about":
		return Errorf(Invalid, "Redirect URI %q uses a forbidden scheme.", raw)
	}
	return nil
}

// ClientStore is the part of storage ClientService needs.
type ClientStore interface {
	storage.Clients
}

// ClientService registers and removes the applications people sign in to.
type ClientService struct {
	*core
	store ClientStore
}

// RegisterClient validates and stores a client. It returns the plain secret
// (empty for public clients), to be shown once.
func (s *ClientService) RegisterClient(ctx context.Context, n NewClient) (storage.Client, string, error) {
	c, secret, err := BuildClient(n)
	if err != nil {
		return storage.Client{}, "", err
	}
	c.CreatedAt = s.now()
	if err := s.store.CreateClient(ctx, c); err != nil {
		switch {
		case errors.Is(err, storage.ErrConflict):
			return storage.Client{}, "", Errorf(Conflict, "A client with ID %q already exists.", c.ID)
		case errors.Is(err, storage.ErrReadOnly):
			return storage.Client{}, "", Errorf(Conflict, "Client %q is defined in the configuration file.", c.ID)
		}
		return storage.Client{}, "", fmt.Errorf("create client %q: %w", c.ID, err)
	}
	if c.Public {
		secret = ""
	}
	return c, secret, nil
}

// ListClients returns every client, static ones included.
func (s *ClientService) ListClients(ctx context.Context) ([]storage.Client, error) {
	return s.store.ListClients(ctx)
}

// DeleteClient removes a client and revokes nothing else: its tokens stop
// working because every use looks the client up.
func (s *ClientService) DeleteClient(ctx context.Context, id string) error {
	err := s.store.DeleteClient(ctx, id)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return Errorf(NotFound, "No client %q.", id)
	case errors.Is(err, storage.ErrReadOnly):
		return Errorf(Conflict, "Client %q is defined in the configuration file; remove it there.", id)
	}
	return fmt.Errorf("delete client %q: %w", id, err)
}
