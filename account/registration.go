package account

import (
	"cmp"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// Dynamic client registration (RFC 7591) and its management protocol
// (RFC 7592). An administrator hands out initial access tokens; whoever
// holds one registers an app by sending its metadata, and gets back the
// app's credentials and a registration access token with which the app
// reads, replaces and deletes its own registration, and nothing else.
// Apps from config.toml or made by an administrator have no registration
// access token, so this side never reaches them.

// Token prefixes, so secret scanners recognise the tokens.
const (
	InitialAccessTokenPrefix      = "kpi_"
	RegistrationAccessTokenPrefix = "kpr_"
)

// Bounds of an initial access token an administrator makes. Keycloak's
// initial access tokens likewise need an expiry and take an optional
// count of registrations.
const (
	MinInitialAccessTokenLifetime = time.Minute
	MaxInitialAccessTokenLifetime = 365 * 24 * time.Hour
	MaxInitialAccessTokenUses     = 100000
	maxInitialAccessTokenName     = 64
	// maxBearerToken bounds a presented token before it is hashed.
	maxBearerToken = 200
)

// Audit event types of dynamic registration.
const (
	AuditInitialAccessTokenCreated = "initial_access_token.created"
	AuditInitialAccessTokenRevoked = "initial_access_token.revoked"
	// AuditClientRegistered: an app registered itself with an initial
	// access token (RFC 7591); its changes and deletion through RFC 7592
	// are client.updated and client.deleted with the app as the actor
	// (an update that holds an approved app again records
	// pending_approval among its changes).
	AuditClientRegistered = "client.registered"
	// AuditClientApproved: an administrator let a held app in.
	AuditClientApproved = "client.approved"
)

// Refusals of the registration endpoints. One message for every bad
// token, so an answer never tells whether an app or a token exists.
var (
	errBadInitialAccessToken      = Errorf(Unauthorized, "The initial access token is missing, unknown, expired or used up.")
	errBadRegistrationAccessToken = Errorf(Unauthorized, "The registration access token is missing or not valid for this client.")
)

// ClientMetadata is an app's registration as RFC 7591 §2 (and OpenID
// Connect Dynamic Client Registration 1.0 §2) names it: the body of a
// registration request and the metadata part of the answer. Metadata
// Keyport does not know is ignored when read (RFC 7591 §2).
type ClientMetadata struct {
	RedirectURIs                       []string        `json:"redirect_uris,omitempty"`
	TokenEndpointAuthMethod            string          `json:"token_endpoint_auth_method,omitempty"`
	GrantTypes                         []string        `json:"grant_types,omitempty"`
	ResponseTypes                      []string        `json:"response_types,omitempty"`
	ClientName                         string          `json:"client_name,omitempty"`
	Scope                              string          `json:"scope,omitempty"`
	JWKS                               json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                            string          `json:"jwks_uri,omitempty"`
	PostLogoutRedirectURIs             []string        `json:"post_logout_redirect_uris,omitempty"`
	IDTokenSignedResponseAlg           string          `json:"id_token_signed_response_alg,omitempty"`
	UserinfoSignedResponseAlg          string          `json:"userinfo_signed_response_alg,omitempty"`
	FrontchannelLogoutURI              string          `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired  bool            `json:"frontchannel_logout_session_required,omitempty"`
	BackchannelLogoutURI               string          `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired   bool            `json:"backchannel_logout_session_required,omitempty"`
	RequirePushedAuthorizationRequests bool            `json:"require_pushed_authorization_requests,omitempty"`
	RequireSignedRequestObject         bool            `json:"require_signed_request_object,omitempty"`
	DPoPBoundAccessTokens              bool            `json:"dpop_bound_access_tokens,omitempty"` // RFC 9449 §5.2
	// OpenID Connect Dynamic Client Registration 1.0 §2: "public" (the
	// default) or "pairwise", and the sector document (checked as for an
	// administrator's app, subject.go).
	SubjectType         string `json:"subject_type,omitempty"`
	SectorIdentifierURI string `json:"sector_identifier_uri,omitempty"`
	// OpenID Connect Dynamic Client Registration 1.0 §2: AppTypeWeb (the
	// default) or AppTypeNative, which bound the redirect URIs
	// (checkApplicationType).
	ApplicationType string `json:"application_type,omitempty"`
}

// RegistrationDefaultSigningAlgorithm is the id_token_signed_response_alg
// of an app that registers without one and may get ID tokens (OpenID
// Connect Dynamic Client Registration 1.0 §2).
const RegistrationDefaultSigningAlgorithm = "RS256"

// Application types (OpenID Connect Dynamic Client Registration 1.0 §2,
// storage.Client.ApplicationType).
const (
	AppTypeWeb    = "web"
	AppTypeNative = "native"
)

// checkApplicationType checks app c's application_type and what it asks
// of the redirect URI raw, which has passed ValidateRedirectURI already
// (https, http on a loopback host, a custom scheme for a public client).
// The registration spec (§2): "Native Clients MUST only register
// redirect_uris using custom URI schemes or loopback URLs using the http
// scheme", so a native app's https URI is refused, for a claimed https URI
// (RFC 8252 §7.2) is a web app's page too; a web app's custom scheme is
// refused, a browser having no app to hand it to. Its http URIs on
// loopback stay allowed, as for every app (the spec refuses localhost only
// to apps using the implicit grant, which Keyport does not offer). An app
// without an application type (every app but a registered one) has only
// ValidateRedirectURI's rules.
func checkApplicationType(c storage.Client, raw string) *Error {
	u, _ := url.Parse(raw)
	switch c.ApplicationType {
	case AppTypeWeb:
		if u.Scheme != "https" && u.Scheme != "http" {
			return Errorf(Invalid, "A web application's redirect URIs must use https:// (http:// only on 127.0.0.1, [::1] or localhost); custom URI schemes are for native applications.")
		}
	case AppTypeNative:
		if u.Scheme == "https" || u.Scheme == "http" && !isLoopbackHost(u.Hostname()) {
			return Errorf(Invalid, "A native application's redirect URIs must use a custom URI scheme (com.example.app:/callback) or http:// on 127.0.0.1, [::1] or localhost.")
		}
	}
	return nil
}

// applicationTypeOf is app c's application type: the one it registered
// with, or for an app registered before the type was kept, the one its
// redirect URIs show: native when one has a custom scheme (which only a
// native app may use), web otherwise.
func applicationTypeOf(c storage.Client) string {
	if c.ApplicationType != "" {
		return c.ApplicationType
	}
	for _, raw := range c.RedirectURIs {
		if u, err := url.Parse(raw); err == nil && u.Scheme != "https" && u.Scheme != "http" {
			return AppTypeNative
		}
	}
	return AppTypeWeb
}

// knownApplicationType refuses an application type other than the two the
// spec names ("" being no application type).
func knownApplicationType(c storage.Client) *Error {
	switch c.ApplicationType {
	case "", AppTypeWeb, AppTypeNative:
		return nil
	}
	return FieldErrorf("application_type", "The application_type must be web or native.")
}

// applyClientMetadata sets the fields of c that an app's registration
// controls from m: the one place RFC 7591 metadata is mapped onto an app
// (ClientMetadataOf is the way back). Everything else on c (the secret,
// the administrator's settings: allowed groups, consent, lifetimes) stays
// as it is. The result still has to pass normalizeClient, the same rules
// the console and the API apply; this checks only what those rules cannot
// see: the response types, and the management scopes, which no app
// registers for itself.
func applyClientMetadata(c *storage.Client, m ClientMetadata) *Error {
	// An app that gets ID tokens and has no algorithm stored was
	// registered before the spec's default was stored (below); a new one
	// (c empty) or one that got no ID tokens is not.
	algBeforeDefault := c.IDTokenSignedResponseAlg == "" && getsIDTokens(*c)
	c.Name = m.ClientName
	c.RedirectURIs = slices.Clone(m.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(m.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(m.GrantTypes)
	if len(c.GrantTypes) == 0 {
		c.GrantTypes = []string{GrantAuthorizationCode} // RFC 7591 §2's default
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return FieldErrorf("response_types", "Only the response type code is supported.")
		}
	}
	if len(m.ResponseTypes) > 0 && !slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		return FieldErrorf("response_types", "The response type code needs the authorization_code grant type (RFC 7591 §2.1).")
	}
	switch method := m.TokenEndpointAuthMethod; method {
	case "":
		c.Public, c.TokenEndpointAuthMethod = false, AuthClientSecretBasic // RFC 7591 §2's default
	case AuthNone:
		c.Public, c.TokenEndpointAuthMethod = true, AuthNone
	default:
		c.Public, c.TokenEndpointAuthMethod = false, method
	}
	c.AllowedScopes = strings.Fields(m.Scope)
	for _, sc := range c.AllowedScopes {
		if IsManagementScope(sc) {
			return FieldErrorf("scope", "The management API's scopes are granted by an administrator only.")
		}
	}
	c.JWKS, c.JWKSURI = slices.Clone(m.JWKS), m.JWKSURI
	if string(c.JWKS) == "null" {
		c.JWKS = nil
	}
	// OpenID Connect Dynamic Client Registration 1.0 §2: "The default, if
	// omitted, is RS256", which is what a relying party that registered
	// without it verifies, whatever the server's [keys] algorithm. It is an
	// ID token's: an app that gets none (client_credentials alone) keeps
	// the server's algorithm for what else its key signs (JWT access
	// tokens), and a server on ES256 or EdDSA no RSA key it would never
	// otherwise need. On an update (RFC 7592 §2.2) a member left out is
	// deleted, which for this one is the same default: an ES256 app that
	// names none gets RS256, and an app that gets ID tokens from now on
	// (client_credentials, then authorization_code too) gets RS256 as its
	// registration with the same metadata would. Only an app registered
	// before the default was stored keeps the server's algorithm, which it
	// has been verifying, rather than change it (and be held again) for
	// naming none again.
	c.IDTokenSignedResponseAlg = m.IDTokenSignedResponseAlg
	if c.IDTokenSignedResponseAlg == "" && getsIDTokens(*c) && !algBeforeDefault {
		c.IDTokenSignedResponseAlg = RegistrationDefaultSigningAlgorithm
	}
	c.UserinfoSignedResponseAlg = m.UserinfoSignedResponseAlg
	c.FrontchannelLogoutURI, c.FrontchannelLogoutSessionRequired = m.FrontchannelLogoutURI, m.FrontchannelLogoutSessionRequired
	c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = m.BackchannelLogoutURI, m.BackchannelLogoutSessionRequired
	c.RequirePushedAuthorizationRequests = m.RequirePushedAuthorizationRequests
	c.RequireSignedRequestObject = m.RequireSignedRequestObject
	c.DPoPBoundAccessTokens = m.DPoPBoundAccessTokens
	c.SubjectType, c.SectorIdentifierURI = strings.TrimSpace(m.SubjectType), strings.TrimSpace(m.SectorIdentifierURI)
	c.ApplicationType = cmp.Or(m.ApplicationType, AppTypeWeb) // the spec's default
	return nil
}

// getsIDTokens tells whether app c has a grant that issues ID tokens.
func getsIDTokens(c storage.Client) bool {
	return slices.Contains(c.GrantTypes, GrantAuthorizationCode) || slices.Contains(c.GrantTypes, GrantDeviceCode)
}

// ClientMetadataOf is app c's registration as RFC 7591 metadata, as
// stored (the inverse of applyClientMetadata).
func ClientMetadataOf(c storage.Client) ClientMetadata {
	m := ClientMetadata{
		RedirectURIs:                       slices.Clone(c.RedirectURIs),
		TokenEndpointAuthMethod:            c.TokenEndpointAuthMethod,
		GrantTypes:                         slices.Clone(c.GrantTypes),
		ClientName:                         c.Name,
		Scope:                              strings.Join(c.AllowedScopes, " "),
		JWKS:                               slices.Clone(c.JWKS),
		JWKSURI:                            c.JWKSURI,
		PostLogoutRedirectURIs:             slices.Clone(c.PostLogoutRedirectURIs),
		IDTokenSignedResponseAlg:           c.IDTokenSignedResponseAlg,
		UserinfoSignedResponseAlg:          c.UserinfoSignedResponseAlg,
		FrontchannelLogoutURI:              c.FrontchannelLogoutURI,
		FrontchannelLogoutSessionRequired:  c.FrontchannelLogoutSessionRequired,
		BackchannelLogoutURI:               c.BackchannelLogoutURI,
		BackchannelLogoutSessionRequired:   c.BackchannelLogoutSessionRequired,
		RequirePushedAuthorizationRequests: c.RequirePushedAuthorizationRequests,
		RequireSignedRequestObject:         c.RequireSignedRequestObject,
		DPoPBoundAccessTokens:              c.DPoPBoundAccessTokens,
		SubjectType:                        cmp.Or(c.SubjectType, SubjectPublic),
		SectorIdentifierURI:                c.SectorIdentifierURI,
		// An app registered before the type was kept has none: the one
		// its redirect URIs show (applicationTypeOf).
		ApplicationType: applicationTypeOf(c),
	}
	switch {
	case c.Public:
		m.TokenEndpointAuthMethod = AuthNone
	case m.TokenEndpointAuthMethod == "":
		m.TokenEndpointAuthMethod = AuthClientSecretBasic
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) {
		m.ResponseTypes = []string{"code"}
	}
	return m
}

// RegistrationStore is the part of storage dynamic registration needs.
type RegistrationStore interface {
	storage.Clients
	storage.Credentials
	GetUser(ctx context.Context, id string) (storage.User, error)
	// ListAudit finds approvals made before they were kept on the app
	// (approvedInAuditLog).
	ListAudit(ctx context.Context, q storage.AuditQuery) ([]storage.AuditEvent, string, error)
}

// RegistrationService is dynamic client registration: the initial access
// tokens administrators make, the registrations apps make with them, and
// the approval of apps held for it.
type RegistrationService struct {
	*core
	store   RegistrationStore
	clients *ClientService
}

// NewInitialAccessToken is what an administrator asks for.
type NewInitialAccessToken struct {
	Name string
	// Lifetime is how long the token registers apps (required).
	Lifetime time.Duration
	// MaxUses bounds the apps it registers; 0: no bound but the lifetime.
	MaxUses int
	// HoldForApproval registers the apps held until an administrator
	// approves each (ApproveClient).
	HoldForApproval bool
}

// CreateInitialAccessToken makes an initial access token, returned once;
// only its hash is stored.
func (s *RegistrationService) CreateInitialAccessToken(ctx context.Context, actor Actor, n NewInitialAccessToken) (string, storage.Credential, error) {
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return "", storage.Credential{}, err
	}
	name := strings.TrimSpace(n.Name)
	if name == "" || utf8.RuneCountInString(name) > maxInitialAccessTokenName || !plainText(name) {
		return "", storage.Credential{}, FieldErrorf("name", "The name must be 1 to 64 characters, without control characters.")
	}
	if n.Lifetime < MinInitialAccessTokenLifetime || n.Lifetime > MaxInitialAccessTokenLifetime {
		return "", storage.Credential{}, FieldErrorf("expires_in", "The token must expire after between a minute and a year.")
	}
	if n.MaxUses < 0 || n.MaxUses > MaxInitialAccessTokenUses {
		return "", storage.Credential{}, FieldErrorf("max_uses", "The number of uses must be between 0 (no bound) and 100000.")
	}
	now := s.now()
	token := InitialAccessTokenPrefix + randomFrom(base62, 40)
	c := storage.Credential{
		ID: NewID(), UserID: storage.InitialAccessTokenOwner, Kind: storage.KindInitialAccessToken, Name: name,
		Hash: HashSecret(token), CreatedAt: now, ValidUntil: now.Add(n.Lifetime), ExpiresAt: now.Add(n.Lifetime),
		MaxUses: n.MaxUses, HoldForApproval: n.HoldForApproval,
	}
	if err := s.store.CreateCredential(ctx, c); err != nil {
		return "", storage.Credential{}, fmt.Errorf("create initial access token: %w", err)
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: AuditInitialAccessTokenCreated, Changes: initialAccessTokenChanges(c)})
	return token, c, nil
}

// initialAccessTokenChanges describes a token for the audit log (never
// its secret or hash).
func initialAccessTokenChanges(c storage.Credential) []storage.AuditChange {
	return []storage.AuditChange{
		{Field: "id", After: c.ID},
		{Field: "name", After: c.Name},
		{Field: "expires_at", After: c.ValidUntil.UTC().Format(time.RFC3339)},
		{Field: "max_uses", After: fmt.Sprint(c.MaxUses)},
		{Field: "hold_for_approval", After: fmt.Sprint(c.HoldForApproval)},
	}
}

// ListInitialAccessTokens returns the live initial access tokens, oldest
// first (hashes only).
func (s *RegistrationService) ListInitialAccessTokens(ctx context.Context) ([]storage.Credential, error) {
	cs, err := s.store.ListCredentials(ctx, storage.InitialAccessTokenOwner, storage.KindInitialAccessToken)
	if err != nil {
		return nil, fmt.Errorf("list initial access tokens: %w", err)
	}
	return cs, nil
}

// RevokeInitialAccessToken deletes an initial access token; the apps it
// registered stay.
func (s *RegistrationService) RevokeInitialAccessToken(ctx context.Context, actor Actor, id string) error {
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return err
	}
	c, err := s.store.GetCredential(ctx, storage.InitialAccessTokenOwner, id)
	if errors.Is(err, storage.ErrNotFound) || (err == nil && c.Kind != storage.KindInitialAccessToken) {
		return Errorf(NotFound, "No such initial access token.")
	}
	if err != nil {
		return fmt.Errorf("load initial access token %q: %w", id, err)
	}
	if err := s.store.DeleteCredential(ctx, storage.InitialAccessTokenOwner, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return Errorf(NotFound, "No such initial access token.")
		}
		return fmt.Errorf("delete initial access token %q: %w", id, err)
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: AuditInitialAccessTokenRevoked, Changes: []storage.AuditChange{{Field: "id", Before: id}, {Field: "name", Before: c.Name}}})
	return nil
}

// RegisteredClient is the answer to a registration: the app as stored,
// its secret (none for public apps and those that authenticate with
// private_key_jwt, which have no use for one) and its registration
// access token, both shown this once.
type RegisteredClient struct {
	Client                  storage.Client
	Secret                  string
	RegistrationAccessToken string
}

// missedToken counts a presented token that matched nothing against the
// address's throttle (as an unknown API token is) and returns refusal,
// or RateLimited once the address has failed too often.
func (s *RegistrationService) missedToken(ctx context.Context, ip, reason string, refusal *Error) error {
	res, err := s.limiter.Secret(ctx, ip)
	if err != nil {
		return s.refused(ctx, err, msgTooManyTokens, "registration", "", ip)
	}
	if _, err := res.Fail(ctx); err != nil {
		s.log.ErrorContext(ctx, "count failed registration token", "err", err)
	}
	s.logFailure(ctx, "registration", "", ip, reason)
	return refusal
}

// RegisterClient registers an app from its metadata with an initial
// access token (RFC 7591 §3). The app gets a generated client ID, a
// secret unless it is public, and a registration access token; it is held
// for approval when the token says so. Invalid metadata changes nothing
// and spends no use of the token; its error names the field (redirect_uris
// and post_logout_redirect_uris for RFC 7591's invalid_redirect_uri).
func (s *RegistrationService) RegisterClient(ctx context.Context, initialToken, ip string, m ClientMetadata) (RegisteredClient, error) {
	var iat storage.Credential
	found := false
	if strings.HasPrefix(initialToken, InitialAccessTokenPrefix) && len(initialToken) <= maxBearerToken {
		var err error
		iat, err = s.store.GetCredentialByHash(ctx, HashSecret(initialToken))
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return RegisteredClient{}, fmt.Errorf("find initial access token: %w", err)
		}
		found = err == nil && iat.Kind == storage.KindInitialAccessToken
	}
	if !found {
		return RegisteredClient{}, s.missedToken(ctx, ip, "unknown initial access token", errBadInitialAccessToken)
	}
	now := s.now()
	if !now.Before(iat.ValidUntil) || (iat.MaxUses > 0 && iat.Uses >= iat.MaxUses) {
		s.logFailure(ctx, "registration", iat.Name, ip, "initial access token expired or used up")
		return RegisteredClient{}, errBadInitialAccessToken
	}

	c := storage.Client{ID: NewID()}
	if err := applyClientMetadata(&c, m); err != nil {
		return RegisteredClient{}, err
	}
	if err := normalizeClient(&c, true, nil); err != nil {
		return RegisteredClient{}, err
	}
	if err := s.clients.checkFeatures(c, nil); err != nil {
		return RegisteredClient{}, err
	}
	// The sector document is fetched before the token's use is spent, so
	// a refused one spends nothing.
	if err := s.clients.checkRegisteredSectorDocument(ctx, c); err != nil {
		return RegisteredClient{}, err
	}
	secret := ""
	if usesSecret(c) {
		secret = NewSecret()
		c.SecretHash = HashSecret(secret)
		SealClientSecret(s.sealer, &c, secret)
	}
	regToken := RegistrationAccessTokenPrefix + randomFrom(base62, 40)
	c.RegistrationAccessTokenHash = HashSecret(regToken)
	c.PendingApproval = iat.HoldForApproval
	c.CreatedAt, c.UpdatedAt = now, now

	// The use is spent in one transaction with the check, so parallel
	// registrations cannot overspend a token.
	_, err := s.store.UpdateCredential(ctx, iat.UserID, iat.ID, func(t storage.Credential) (storage.Credential, error) {
		if !now.Before(t.ValidUntil) || (t.MaxUses > 0 && t.Uses >= t.MaxUses) {
			return t, errBadInitialAccessToken
		}
		t.Uses++
		t.LastUsedAt, t.LastIP = now, ip
		return t, nil
	})
	switch {
	case errors.Is(err, errBadInitialAccessToken), errors.Is(err, storage.ErrNotFound):
		return RegisteredClient{}, errBadInitialAccessToken
	case err != nil:
		return RegisteredClient{}, fmt.Errorf("spend a use of initial access token %q: %w", iat.ID, err)
	}
	if err := s.store.CreateClient(ctx, c); err != nil {
		return RegisteredClient{}, fmt.Errorf("create registered client %q: %w", c.ID, err)
	}
	e := storage.AuditEvent{Type: AuditClientRegistered, ClientID: c.ID, Changes: clientChanges(storage.Client{}, c),
		Reason: fmt.Sprintf("registered with initial access token %q (%s)", iat.Name, iat.ID)}
	if c.PendingApproval {
		e.Reason += "; held for approval"
	}
	s.audit(ctx, Actor{Kind: ActorClient, ClientID: c.ID, IP: ip}, e)
	s.clients.ensureSigningKey(ctx, c)
	return RegisteredClient{Client: c, Secret: secret, RegistrationAccessToken: regToken}, nil
}

// usesSecret tells whether a registered app authenticates with a secret
// Keyport issues: not public apps, nor those that sign with their own key.
func usesSecret(c storage.Client) bool {
	return !c.Public && c.TokenEndpointAuthMethod != AuthPrivateKeyJWT
}

// registrationTokenMatches tells whether token is app c's registration
// access token, comparing the hashes in constant time. Apps without one
// (config.toml's, the administrator's) never match.
func registrationTokenMatches(c storage.Client, token string) bool {
	if c.RegistrationAccessTokenHash == "" || c.Static || !strings.HasPrefix(token, RegistrationAccessTokenPrefix) || len(token) > maxBearerToken {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(HashSecret(token)), []byte(c.RegistrationAccessTokenHash)) == 1
}

// registeredClient loads app id for its registration access token. A
// token that is wrong, another app's, or for an app that does not exist
// or was not registered here gets the same refusal.
func (s *RegistrationService) registeredClient(ctx context.Context, id, token, ip string) (storage.Client, error) {
	c, err := s.store.GetClient(ctx, id)
	switch {
	case err == nil && registrationTokenMatches(c, token):
		return c, nil
	case err == nil, errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrInvalid):
		return storage.Client{}, s.missedToken(ctx, ip, "wrong registration access token", errBadRegistrationAccessToken)
	}
	return storage.Client{}, fmt.Errorf("load client %q: %w", id, err)
}

// ReadRegisteredClient answers RFC 7592 §2.1: the app's registration.
func (s *RegistrationService) ReadRegisteredClient(ctx context.Context, id, token, ip string) (storage.Client, error) {
	return s.registeredClient(ctx, id, token, ip)
}

// UpdateRegisteredClient replaces the app's metadata (RFC 7592 §2.2) under
// the same rules as a registration. secret, when the request carries one,
// must be the app's. An app cannot switch between public and
// confidential here: that changes its credentials, so it registers anew.
func (s *RegistrationService) UpdateRegisteredClient(ctx context.Context, id, token, ip, secret string, m ClientMetadata) (storage.Client, error) {
	current, err := s.registeredClient(ctx, id, token, ip)
	if err != nil {
		return storage.Client{}, err
	}
	// A new sector document is fetched outside the update's transaction,
	// which must not wait on the network; the update then holds only if
	// nothing the check read changed meanwhile.
	var checked *storage.Client
	// An update the [oauth] switches refuse fetches nothing (checkFeatures).
	// The same redirect URIs in another order are no change (keepStoredOrder)
	// and fetch nothing.
	if preview := current; applyClientMetadata(&preview, m) == nil && normalizeClient(&preview, true, keptByUpdate(current)) == nil {
		keepStoredOrder(&preview, current)
		if s.clients.checkFeatures(preview, &current) == nil && sectorDocumentNeeded(current, preview) {
			if err := s.clients.checkRegisteredSectorDocument(ctx, preview); err != nil {
				return storage.Client{}, err
			}
			checked = &preview
		}
	}
	// An app approved before ApprovedAt was kept has its approval in the
	// audit log only. Such an app has no application type either (both
	// came in one release): an app with a type and no ApprovedAt was never
	// approved, and costs no search of the log. The update stores both
	// (backfill below), so the log is searched once per such app.
	var approvedAt time.Time
	legacy := current.ApprovedAt.IsZero() && current.ApplicationType == ""
	if legacy {
		var err error
		if approvedAt, err = s.approvedInAuditLog(ctx, id); err != nil {
			return storage.Client{}, err
		}
	}
	var before storage.Client
	changed, heldAgain := false, false
	after, err := s.store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		if !registrationTokenMatches(c, token) {
			return c, errBadRegistrationAccessToken
		}
		if secret != "" && !SecretMatches(secret, c.SecretHash) {
			return c, FieldErrorf("client_secret", "client_secret is not the client's secret.")
		}
		next := c
		if err := applyClientMetadata(&next, m); err != nil {
			return c, err
		}
		if next.Public != c.Public {
			return c, FieldErrorf("token_endpoint_auth_method", "A client cannot switch between public and confidential; register a new one.")
		}
		// The scopes the app registered with (or an administrator left it)
		// bound what it may ask for later: an update narrows them, never
		// widens them, and one that names none keeps them.
		if len(c.AllowedScopes) > 0 {
			if len(next.AllowedScopes) == 0 {
				next.AllowedScopes = slices.Clone(c.AllowedScopes)
			}
			for _, sc := range next.AllowedScopes {
				if !slices.Contains(c.AllowedScopes, sc) {
					return c, FieldErrorf("scope", "A client can only narrow its scope here; ask an administrator for more.")
				}
			}
		}
		if err := normalizeClient(&next, true, keptByUpdate(c)); err != nil {
			return c, err
		}
		keepStoredOrder(&next, c)
		if err := s.clients.checkFeatures(next, &c); err != nil {
			return c, err
		}
		if sectorCheckStale(checked, c, next) {
			return c, FieldErrorf("sector_identifier_uri", "The client changed while its sector_identifier_uri was checked; try again.")
		}
		// A secret is issued at registration only, and kept as the method
		// then chosen needs it: a change to a method that needs one the
		// app has not got (or, for client_secret_jwt, not sealed) would
		// leave it unable to authenticate.
		if usesSecret(next) && (next.SecretHash == "" || next.TokenEndpointAuthMethod == AuthClientSecretJWT && len(next.SealedSecret) == 0) {
			return c, FieldErrorf("token_endpoint_auth_method", "The client was not issued a secret this method can use; register a new one.")
		}
		before = c
		was := c
		if was.ApplicationType == "" && next.ApplicationType == applicationTypeOf(c) {
			// Naming the type it has shown all along is no change.
			was.ApplicationType = next.ApplicationType
		}
		// backfill keeps what the search of the log found on the app.
		backfill := func(a storage.Client) storage.Client {
			if legacy && a.ApplicationType == "" {
				a.ApplicationType = applicationTypeOf(c)
			}
			if legacy && a.ApprovedAt.IsZero() {
				a.ApprovedAt = approvedAt
			}
			return a
		}
		if changed = len(clientChanges(was, next)) > 0; !changed {
			return backfill(c), nil
		}
		// An administrator approved the app as it then was: any change
		// holds it until one approves it again, as it was held when it
		// registered, even of its name, which people see on the consent
		// page under "your administrator approved it" (RFC 7591 §5 names
		// client_name as a means to impersonate another app; logo_uri and
		// the like are not stored). New sign-ins and grants wait (a held
		// app is unknown to the provider).
		if heldAgain = !c.PendingApproval && (!c.ApprovedAt.IsZero() || !approvedAt.IsZero()); heldAgain {
			next.PendingApproval = true
		}
		next = backfill(next)
		next.UpdatedAt = s.now()
		return next, nil
	})
	var ae *Error
	switch {
	case err == nil:
	case errors.As(err, &ae):
		return storage.Client{}, ae
	case errors.Is(err, storage.ErrNotFound):
		return storage.Client{}, errBadRegistrationAccessToken
	default:
		return storage.Client{}, fmt.Errorf("update registered client %q: %w", id, err)
	}
	if changed {
		e := storage.AuditEvent{Type: AuditClientUpdated, ClientID: id, Changes: clientChanges(before, after)}
		if heldAgain {
			// As a registration held for approval says so in its event.
			e.Changes = append(e.Changes, storage.AuditChange{Field: "pending_approval", Before: "false", After: "true"})
			e.Reason = "changed security-relevant metadata after an administrator approved it; held for approval again"
		}
		s.audit(ctx, Actor{Kind: ActorClient, ClientID: id, IP: ip}, e)
		s.clients.ensureSigningKey(ctx, after)
	}
	return after, nil
}

// keepStoredOrder keeps what app c has stored where next, an RFC 7592
// update of it, says the same in another order, so that an approved app
// is not held again for it. RFC 7592 §2.2 has the app send back the
// metadata it read; one that decoded and encoded it again sends its key
// set with the members in another order, which is the same key set. Nor
// is the same scope in another order a change: its order does not matter
// (RFC 6749 §3.3), and a client may keep it as a set, as it may its
// grant types, redirect URIs and post-logout redirect URIs: RFC 7591 §2
// gives them no order, and Keyport reads none into them (a redirect URI
// is matched exactly, whichever it is; an app's sector is the one host
// of all of them, account.Sector). response_types is not stored: it
// follows from the grant types (ClientMetadataOf).
func keepStoredOrder(next *storage.Client, c storage.Client) {
	if sameJSON(next.JWKS, c.JWKS) {
		next.JWKS = c.JWKS
	}
	for _, l := range []struct {
		next   *[]string
		stored []string
	}{
		{&next.AllowedScopes, c.AllowedScopes},
		{&next.GrantTypes, c.GrantTypes},
		{&next.RedirectURIs, c.RedirectURIs},
		{&next.PostLogoutRedirectURIs, c.PostLogoutRedirectURIs},
	} {
		if sameSet(*l.next, l.stored) {
			*l.next = slices.Clone(l.stored)
		}
	}
}

// sameJSON tells whether a and b, both present, are the same JSON value
// but for the order of object members and white space.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return false
	}
	var va, vb any
	if json.Unmarshal(a, &va) != nil || json.Unmarshal(b, &vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}

// sameSet tells whether a, which holds each string once, and b hold the
// same strings in any order. normalizeClient keeps each scope, grant type
// and (post-logout) redirect URI once, so a normalized update is such an
// a; b need not be (an app stored before a rule that drops repeats):
// b of a's length holding all of a's distinct strings holds no other.
func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

// keptByUpdate is what an RFC 7592 update of app c keeps of it as
// normalizeClient's kept: its jwks_uri, which an app stored before
// jwks_uri had to be https may have on http, so that such an app can still
// update its registration (repeating the URI) as an administrator can
// still edit it; a changed jwks_uri meets the rule. Its redirect URIs are
// not kept: an update may change the application_type, which binds them,
// so each is checked again.
func keptByUpdate(c storage.Client) *storage.Client {
	return &storage.Client{JWKSURI: c.JWKSURI}
}

// clientReader reads stored apps.
type clientReader interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// GetLiveClient reads app id as everyone but its administrators sees it:
// one held for an administrator's approval, when it registered or again
// after an update, exists for no one (storage.ErrNotFound). Nobody signs
// in to it, approves a device for it or makes it an app password, it gets
// no token, and no browser or logout token goes to the URIs it chose in
// the update that held it, which no administrator has seen.
func GetLiveClient(ctx context.Context, store clientReader, id string) (storage.Client, error) {
	c, err := store.GetClient(ctx, id)
	if err == nil && c.PendingApproval {
		return storage.Client{}, fmt.Errorf("client %q waits for approval: %w", id, storage.ErrNotFound)
	}
	return c, err
}

// approvedInAuditLog returns when the audit log records an
// administrator's approval of app id (client.approved), the zero time for
// none, for apps approved before the approval was kept on the app
// (storage.Client.ApprovedAt). It reads at most maxApprovalPages pages of
// approvals, newest first (each page a bounded scan of the store's log):
// an approval older than that, or pruned from the log, is not found, and
// such an app's changes are not held. The update that asked stores what
// it found, so an app costs one search.
func (s *RegistrationService) approvedInAuditLog(ctx context.Context, id string) (time.Time, error) {
	q := storage.AuditQuery{Types: []string{AuditClientApproved}, Limit: 200}
	for range maxApprovalPages {
		events, next, err := s.store.ListAudit(ctx, q)
		if err != nil {
			return time.Time{}, fmt.Errorf("look for the approval of client %q: %w", id, err)
		}
		if i := slices.IndexFunc(events, func(e storage.AuditEvent) bool { return e.ClientID == id }); i >= 0 {
			return events[i].Time, nil
		}
		if next == "" {
			return time.Time{}, nil
		}
		q.Cursor = next
	}
	return time.Time{}, nil
}

const maxApprovalPages = 10

// DeleteRegisteredClient removes the app and everything issued to it
// (RFC 7592 §2.3), as an administrator's DeleteClient does.
func (s *RegistrationService) DeleteRegisteredClient(ctx context.Context, id, token, ip string) error {
	if _, err := s.registeredClient(ctx, id, token, ip); err != nil {
		return err
	}
	if err := s.store.DeleteClient(ctx, id); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errBadRegistrationAccessToken
		}
		return fmt.Errorf("delete registered client %q: %w", id, err)
	}
	s.audit(ctx, Actor{Kind: ActorClient, ClientID: id, IP: ip}, storage.AuditEvent{Type: AuditClientDeleted, ClientID: id, Reason: "deleted through its registration access token"})
	return nil
}

// ApproveClient lets in app id, held since it registered or since it
// changed security-relevant metadata after an earlier approval
// (UpdateRegisteredClient): from now on people sign in to it and it gets
// tokens. ifMatch, when not "", is the ETag (ClientETag) of the version
// the administrator reviewed: the app may have changed its registration
// since (RFC 7592), and then nothing is approved (ErrClientChanged).
func (s *RegistrationService) ApproveClient(ctx context.Context, actor Actor, id, ifMatch string) (storage.Client, error) {
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return storage.Client{}, err
	}
	c, err := s.store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		if !c.PendingApproval {
			return c, Errorf(Conflict, "This app is not waiting for approval.")
		}
		if !etagMatches(ifMatch, ClientETag(c)) {
			return c, ErrClientChanged
		}
		c.PendingApproval = false
		c.UpdatedAt = s.now()
		c.ApprovedAt = c.UpdatedAt
		return c, nil
	})
	var ae *Error
	switch {
	case err == nil:
	case errors.As(err, &ae):
		return storage.Client{}, ae
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrReadOnly):
		// An app from config.toml is never held.
		return storage.Client{}, Errorf(NotFound, "No client %q.", id)
	default:
		return storage.Client{}, fmt.Errorf("approve client %q: %w", id, err)
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: AuditClientApproved, ClientID: id,
		Changes: []storage.AuditChange{{Field: "pending_approval", Before: "true", After: "false"}}})
	return c, nil
}
