// Package storage defines Keyport's records and the interfaces that persist
// them. It imports nothing of Keyport's and knows nothing of HTTP, so any
// backend (storage/bolt today) can sit behind it and every backend is held to
// the same behaviour by storage/storagetest.
package storage

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// Sentinel errors. Backends wrap them with context; callers test with errors.Is.
var (
	// ErrNotFound: no record with that key (or it has expired).
	ErrNotFound = errors.New("not found")
	// ErrConflict: a unique key (ID, username, email, token hash) is taken.
	ErrConflict = errors.New("already exists")
	// ErrReadOnly: the record comes from the configuration file and cannot be
	// changed through the store.
	ErrReadOnly = errors.New("read-only: defined in the configuration file")
	// ErrTokenReused: a refresh token that was already rotated, or a code that
	// was already redeemed, was presented again. For refresh tokens the
	// backend has revoked the token's whole family when it returns this.
	ErrTokenReused = errors.New("token already used")
	// ErrTooLarge: a record is larger than the store keeps (see
	// MaxAuthRequestBytes); nothing was stored.
	ErrTooLarge = errors.New("record too large")
	// ErrLimitReached: a limit (PendingLimits) is reached and nothing may
	// be evicted to make room; nothing was stored.
	ErrLimitReached = errors.New("limit reached")
	// ErrInvalid: an argument the store cannot use (a malformed record, a
	// cursor that is not this query's); nothing was stored.
	ErrInvalid = errors.New("invalid")
	// ErrNameReserved: a username or email belonged to a deleted user and
	// stays unavailable until its reservation ends (Users.DeleteUser).
	// Stores return it together with ErrConflict, so errors.Is matches
	// both: callers that only know "taken" keep working.
	ErrNameReserved = errors.New("reserved: it belonged to a deleted account")
)

// NameConflict is the error (matching ErrConflict, and ErrNameReserved
// when Reserved) of a user write that takes a username or email another
// account has, or that a deleted account's reservation holds. Field is
// "username" or "email", so callers can name the field at fault.
type NameConflict struct {
	Field    string
	Value    string
	Reserved bool
	Until    time.Time // the reservation's end
}

func (e *NameConflict) Error() string {
	if e.Reserved {
		return fmt.Sprintf("%s %q: %v until %s", e.Field, e.Value, ErrNameReserved, e.Until.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("%s %q: %v", e.Field, e.Value, ErrConflict)
}

func (e *NameConflict) Is(target error) bool {
	return target == ErrConflict || (e.Reserved && target == ErrNameReserved)
}

// User is a person who can sign in. The fields below "Internal" never leave
// Keyport through tokens or userinfo.
type User struct {
	ID            string    `json:"id"` // stable random ID; the OIDC "sub"
	Username      string    `json:"username"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Name          string    `json:"name,omitempty"`
	GivenName     string    `json:"given_name,omitempty"`
	FamilyName    string    `json:"family_name,omitempty"`
	Nickname      string    `json:"nickname,omitempty"`
	Locale        string    `json:"locale,omitempty"`
	Zoneinfo      string    `json:"zoneinfo,omitempty"`
	PhoneNumber   string    `json:"phone_number,omitempty"`
	PhoneVerified bool      `json:"phone_verified,omitempty"`
	Groups        []string  `json:"groups,omitempty"`
	Admin         bool      `json:"admin,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`

	// RecoveryEmail receives password-reset mail; empty means Email.
	RecoveryEmail string `json:"recovery_email,omitempty"`
	// Theme is the portal's appearance: "light", "dark" or "" (system).
	Theme string `json:"theme,omitempty"`
	// Roles are granted by admins; the user only reads them.
	Roles []string `json:"roles,omitempty"`
	// AvatarAt is when the avatar last changed; zero means no uploaded avatar
	// (the initials image is served instead). It versions the picture URL.
	AvatarAt time.Time `json:"avatar_at,omitempty"`
	// Source is the directory the account comes from; "" is a local account.
	Source string `json:"source,omitempty"`
	// CustomData is the user's own key/value data (Auth0's user_metadata).
	CustomData map[string]string `json:"custom_data,omitempty"`
	// Identities link the account to external sources; each (Connection,
	// UserID) pair belongs to one user.
	Identities []Identity `json:"identities,omitempty"`

	// Internal.
	PasswordHash string `json:"password_hash,omitempty"` // argon2id PHC string, or an imported hash until the next sign-in
	// System marks an account for programs, not people: it never signs in
	// interactively (no password, passkey, upstream provider, app password
	// or session) and acts only through API tokens with an expiry, which
	// an administrator issues. Set at creation; it never changes.
	System      bool      `json:"system,omitempty"`
	Blocked     bool      `json:"blocked,omitempty"`
	LastIP      string    `json:"last_ip,omitempty"`
	LastLogin   time.Time `json:"last_login,omitempty"`
	LoginsCount int       `json:"logins_count,omitempty"`
	// AppMetadata is admin-owned data about the user; never shown as editable
	// and never put in tokens.
	AppMetadata map[string]string `json:"app_metadata,omitempty"`
	// PasswordChangedAt is when the password was last set.
	PasswordChangedAt time.Time `json:"password_changed_at,omitempty"`
	// TOTP: the sealed secret once enrolment is confirmed, a sealed pending
	// secret while it is not, and the last accepted time step (a code is
	// never accepted twice).
	TOTPSecret   []byte `json:"totp_secret,omitempty"`
	TOTPPending  []byte `json:"totp_pending,omitempty"`
	TOTPLastStep int64  `json:"totp_last_step,omitempty"`
	// RecoveryCodes are hex SHA-256 hashes of unused recovery codes.
	RecoveryCodes []string `json:"recovery_codes,omitempty"`
	// AllowedNetworks limits where the account may sign in from (CIDRs);
	// empty allows everywhere.
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
	// VerifiedEmails are the last few addresses of this user that were
	// verified (lower case, oldest first), so changing the email back to
	// one of them keeps it verified.
	VerifiedEmails []string `json:"verified_emails,omitempty"`
}

// Identity is a user's account at an external source (Auth0/Logto style).
type Identity struct {
	Connection string `json:"connection"` // the directory's ID in Keyport
	Provider   string `json:"provider"`   // "ldap", "oidc"
	UserID     string `json:"user_id"`    // the source's stable ID (entryUUID, sub)
	IsSocial   bool   `json:"is_social"`
}

// Client is an application registered to sign people in (or, with the
// client_credentials grant, to act on its own behalf).
type Client struct {
	ID                     string    `json:"id"`
	Name                   string    `json:"name,omitempty"`
	SecretHash             string    `json:"secret_hash,omitempty"` // hex SHA-256 of the secret; empty for public clients
	RedirectURIs           []string  `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string  `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             []string  `json:"grant_types,omitempty"`
	Public                 bool      `json:"public,omitempty"`
	AccessTokenJWT         bool      `json:"access_token_jwt,omitempty"` // JWT access tokens instead of opaque ones
	SkipConsent            bool      `json:"skip_consent,omitempty"`     // first-party app: never ask for consent
	Static                 bool      `json:"static,omitempty"`           // defined in config.toml; read-only
	CreatedAt              time.Time `json:"created_at"`
	UpdatedAt              time.Time `json:"updated_at,omitzero"`

	// AllowedGroups: only members of one of these groups (User.Groups,
	// names compared case-insensitively) may sign in to the app; empty
	// lets every user in.
	AllowedGroups []string `json:"allowed_groups,omitempty"`
	// AllowedScopes are the scopes the app may receive; others it asks
	// for are dropped. Empty: every scope the provider supports.
	AllowedScopes []string `json:"allowed_scopes,omitempty"`
	// Lifetimes of what the app is issued; 0 is the server's default
	// (config.toml's [tokens]). RefreshTokenLifetime is the absolute life
	// of a refresh-token family.
	AccessTokenLifetime  time.Duration `json:"access_token_lifetime,omitempty"`
	IDTokenLifetime      time.Duration `json:"id_token_lifetime,omitempty"`
	RefreshTokenLifetime time.Duration `json:"refresh_token_lifetime,omitempty"`
	// PreviousSecretHash is the secret a rotation replaced (hex SHA-256,
	// like SecretHash); it still authenticates the app until
	// PreviousSecretUntil, so the app's servers can be moved to the new
	// secret one by one.
	PreviousSecretHash  string    `json:"previous_secret_hash,omitempty"`
	PreviousSecretUntil time.Time `json:"previous_secret_until,omitzero"`

	// Logout to the app (OpenID Connect Front-Channel Logout 1.0 and
	// Back-Channel Logout 1.0): where the signed-out page loads the app in
	// an iframe, and where a logout token is posted; "" for none. The
	// SessionRequired flags ask for iss and sid with the iframe, and for
	// sid in the logout token.
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty"`
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required,omitempty"`

	// How the app authenticates at the token, introspection and
	// revocation endpoints (RFC 7591 token_endpoint_auth_method): ""
	// takes a secret by HTTP Basic or in the form (client_secret_basic
	// and client_secret_post, as before the setting existed). JWKS (a
	// JWK Set, inline) or JWKSURI hold the app's public keys for
	// private_key_jwt. SealedSecret is the secret itself, sealed
	// (seal.Sealer, purpose "client-secret:" + ID), kept only for
	// client_secret_jwt, whose HMAC needs the secret and not its hash.
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	SealedSecret            []byte          `json:"sealed_secret,omitempty"`
	// RequirePushedAuthorizationRequests: the app's authorization
	// requests must come through the pushed authorization request
	// endpoint (RFC 9126 §6), never as parameters in the browser.
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests,omitempty"`
	// IDTokenSignedResponseAlg is the JWS algorithm of the app's ID
	// tokens (OpenID Connect Dynamic Client Registration 1.0 §2): "" for
	// the server's [keys] algorithm.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg,omitempty"`
	// UserinfoSignedResponseAlg, when set, makes /userinfo answer the app
	// with a JWT signed with this algorithm (OpenID Connect Core 1.0
	// §5.3.2); "" answers with plain JSON.
	UserinfoSignedResponseAlg string `json:"userinfo_signed_response_alg,omitempty"`

	// TokenExchangeAudiences are the audiences (client IDs of other apps,
	// or resource URIs) the app may exchange a user's access token for
	// with token exchange (RFC 8693); empty: none.
	TokenExchangeAudiences []string `json:"token_exchange_audiences,omitempty"`

	// RequireSignedRequestObject: the app's authorization requests, at
	// /authorize and at the pushed authorization request endpoint, must
	// be signed request objects (RFC 9101 §10.5).
	RequireSignedRequestObject bool `json:"require_signed_request_object,omitempty"`

	// Pairwise subjects (OpenID Connect Core 1.0 §8): SubjectType is
	// "pairwise" or "" (public, the user ID as sub). The sector is the host
	// of SectorIdentifierURI when set, else the one host of RedirectURIs
	// (account.Sector).
	SubjectType         string `json:"subject_type,omitempty"`
	SectorIdentifierURI string `json:"sector_identifier_uri,omitempty"`

	// Resource indicators (RFC 8707).
	// Resources are the resource URIs (absolute, without a fragment) the
	// app may ask access tokens for with the resource parameter; empty:
	// none, and its access tokens are for the app itself.
	Resources []string `json:"resources,omitempty"`

	// DPoP (RFC 9449). DPoPBoundAccessTokens (RFC 7591's
	// dpop_bound_access_tokens): the app must send a DPoP proof with
	// every token request. RequireDPoPNonce: its proofs must carry a
	// nonce the server handed out (RFC 9449 §8, §9).
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens,omitempty"`
	RequireDPoPNonce      bool `json:"require_dpop_nonce,omitempty"`

	// Dynamic client registration (RFC 7591, RFC 7592).
	// RegistrationAccessTokenHash is the hex SHA-256 of the registration
	// access token that manages an app registered through the
	// registration endpoint; "" for every other app (config.toml's, the
	// admin's), which the endpoint never reaches. PendingApproval holds
	// such an app until an administrator approves it: it exists but no
	// one signs in to it and it gets no token.
	RegistrationAccessTokenHash string `json:"registration_access_token_hash,omitempty"`
	PendingApproval             bool   `json:"pending_approval,omitempty"`

	// CustomClaims map user data to claims of the app's own naming
	// (account/customclaims.go): each released with its scope, in the
	// tokens it names. Empty: only the standard claims.
	CustomClaims []ClaimMapping `json:"custom_claims,omitempty"`

	// TokensRevokedAt is when an admin last revoked every token issued to
	// the app (a secret rotation with revoke_tokens): the stored ones
	// went then, and a stateless access token (a client_credentials JWT,
	// never stored) issued before it is refused from then on. Zero: never.
	TokensRevokedAt time.Time `json:"tokens_revoked_at,omitzero"`

	// Review of an app that registered itself: ApprovedAt is when an
	// administrator last approved it (it was held, PendingApproval);
	// zero for an app no administrator ever approved. An approved app
	// that changes security-relevant metadata through RFC 7592 is held
	// again (account.UpdateRegisteredClient) and keeps this time, so the
	// console can tell a change since the approval from a new app.
	ApprovedAt time.Time `json:"approved_at,omitzero"`

	// ApplicationType is the application_type an app registered with
	// through dynamic registration (OpenID Connect Dynamic Client
	// Registration 1.0 §2): "web" or "native", which bound its redirect
	// URIs (account.checkApplicationType). "" for every other app, and
	// for apps registered before it was kept: only the usual redirect URI
	// rules apply to them.
	ApplicationType string `json:"application_type,omitempty"`
}

// ClaimMapping is one custom claim of an app: the claim Claim carries the
// user's value of Source ("app_metadata.<key>", "roles", "groups" or a
// profile field such as "email"), released when the app was granted Scope,
// in the tokens In lists ("id_token", "userinfo", "access_token").
type ClaimMapping struct {
	Claim  string   `json:"claim"`
	Source string   `json:"source"`
	Scope  string   `json:"scope"`
	In     []string `json:"in"`
}

// AuthRequest is one /authorize request on its way through sign-in.
type AuthRequest struct {
	ID                  string    `json:"id"`
	ClientID            string    `json:"client_id"`
	RedirectURI         string    `json:"redirect_uri"`
	State               string    `json:"state,omitempty"`
	Nonce               string    `json:"nonce,omitempty"`
	Scopes              []string  `json:"scopes"`
	ResponseType        string    `json:"response_type"`
	ResponseMode        string    `json:"response_mode,omitempty"`
	CodeChallenge       string    `json:"code_challenge,omitempty"`
	CodeChallengeMethod string    `json:"code_challenge_method,omitempty"`
	Prompt              []string  `json:"prompt,omitempty"`
	MaxAge              *uint     `json:"max_age,omitempty"`
	LoginHint           string    `json:"login_hint,omitempty"`
	HintUserID          string    `json:"hint_user_id,omitempty"` // subject of a valid id_token_hint
	ACRValues           []string  `json:"acr_values,omitempty"`
	UILocales           []string  `json:"ui_locales,omitempty"`
	CreatedAt           time.Time `json:"created_at"`
	ExpiresAt           time.Time `json:"expires_at"`

	// PushedUntil is set when the app pushed the request to the pushed
	// authorization request endpoint (RFC 9126) instead of sending it
	// through the browser: the browser may bring its request_uri to
	// /authorize until then, once; opening it there sets it back to zero.
	PushedUntil time.Time `json:"pushed_until,omitzero"`

	// ACREssential: the ACRValues (the classes Keyport knows, from
	// acr_values or from the claims parameter's acr) are essential: a
	// sign-in that cannot meet one of them fails rather than getting a
	// weaker class.
	ACREssential bool `json:"acr_essential,omitempty"`
	// IDTokenClaims and UserinfoClaims are the individual user claims the
	// claims parameter (OIDC Core §5.5) asks for, each one the app may
	// receive; they come on top of what the scopes release.
	IDTokenClaims  []string `json:"id_token_claims,omitempty"`
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`
	// Subject is the sub the claims parameter asks the ID token for with a
	// value (§5.5.1): only that user may finish the request.
	Subject string `json:"subject,omitempty"`

	// BrowserID is the portal's ID of the browser that first opened the
	// sign-in page for this request; only that browser may finish it.
	BrowserID string `json:"browser_id,omitempty"`

	// Set while the person signs in.
	UserID    string    `json:"user_id,omitempty"`
	SessionID string    `json:"session_id,omitempty"`
	AuthTime  time.Time `json:"auth_time,omitempty"`
	AMR       []string  `json:"amr,omitempty"`
	ConsentOK bool      `json:"consent_ok,omitempty"` // consent given during this request
	// CodeIssued: a code went out for this request; it never gets a second.
	CodeIssued bool `json:"code_issued,omitempty"`
	Completed  bool `json:"completed,omitempty"`

	// Pending: someone passed the first step (a password, or an upstream
	// provider) and owes a second factor before they are signed in: who,
	// how the first step authenticated them (amr values; "pwd" for
	// Keyport's password) and when. No session exists for them yet.
	PendingUserID string    `json:"pending_user_id,omitempty"`
	PendingAMR    []string  `json:"pending_amr,omitempty"`
	PendingSince  time.Time `json:"pending_since,omitzero"`
	// ReturnTo is, for a sign-in at the portal itself (ClientID empty: no
	// app asked for it), the page on this site to go to once signed in.
	// Such a record exists only while a second factor is owed; the
	// provider never answers it.
	ReturnTo string `json:"return_to,omitempty"`
	// FailCode and FailDescription end the request with an OAuth error
	// (login_required, consent_required, access_denied, …), which the
	// provider sends to the app at the callback.
	FailCode        string `json:"fail_code,omitempty"`
	FailDescription string `json:"fail_description,omitempty"`

	// Origin is the client address that started the request (an IPv6
	// address reduced to its /64), for PendingLimits.PerOrigin; "" when
	// unknown. OriginGroup is the wider block it belongs to (an IPv6 /48),
	// which PendingLimits.Total evicts from as one; "" means Origin.
	Origin      string `json:"origin,omitempty"`
	OriginGroup string `json:"origin_group,omitempty"`

	// DPoPJKT is the dpop_jkt authorization request parameter (RFC 9449
	// §10), or the key of the DPoP proof a pushed request carried: the
	// code's exchange must come with a proof of that key.
	DPoPJKT string `json:"dpop_jkt,omitempty"`

	// CustomClaimScopes are the scopes of the app's custom claims that the
	// claims parameter asked for by name (in IDTokenClaims or
	// UserinfoClaims): the person consents to them as to scopes asked for.
	CustomClaimScopes []string `json:"custom_claim_scopes,omitempty"`

	// Resource indicators (RFC 8707).
	// Resources are the resources the request asked for, each one
	// registered for the app (Client.Resources): the code's and its
	// refresh family's access tokens are for them, or for a part of them a
	// token request names.
	Resources []string `json:"resources,omitempty"`

	// LoginHintUserID is the user a pairwise app's login_hint names by
	// the pairwise sub that app knows them by (read back when the request
	// came, where the app is at hand); LoginHint is then empty, as a
	// pairwise sub is no login name the sign-in page could offer. Only
	// that user's session answers the request without a new sign-in.
	LoginHintUserID string `json:"login_hint_user_id,omitempty"`
}

// MaxAuthRequestBytes is the largest AuthRequest a store keeps, measured
// in its stored form (for storage/bolt, JSON). CreateAuthRequest and
// UpdateAuthRequest refuse a larger one with ErrTooLarge. The provider
// bounds every parameter a request stores well within it; this backstop
// keeps the bound on the flow file true whichever field grows.
const MaxAuthRequestBytes = 16 << 10

// EncodeAuthRequest is the stored form of a request, the same in every
// store: JSON without HTML escaping, refused (ErrTooLarge) when larger than
// MaxAuthRequestBytes. Nothing renders it as HTML, and escaping <, > and &
// (common in a state that carries a return URL) would store text at up to
// six times its length; without it, text free of control characters takes
// at most twice (a quote or a backslash), which is what bounds a request's
// size (see the provider's authorizeParamLimits).
func EncodeAuthRequest(a AuthRequest) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(a); err != nil {
		return nil, fmt.Errorf("encode auth request %q: %w", a.ID, err)
	}
	raw := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if len(raw) > MaxAuthRequestBytes {
		return nil, fmt.Errorf("auth request %q takes %d bytes, more than %d: %w", a.ID, len(raw), MaxAuthRequestBytes, ErrTooLarge)
	}
	return raw, nil
}

// PendingClass orders pending requests for eviction (PendingLimits):
// lower classes go first.
type PendingClass int

const (
	PendingUnopened PendingClass = iota // no browser has opened it yet
	PendingOpened                       // a person is signing in
	PendingIssued                       // its code went out: never evicted
)

// PendingClass is the request's eviction class.
func (a AuthRequest) PendingClass() PendingClass {
	switch {
	case a.CodeIssued:
		return PendingIssued
	case a.BrowserID != "":
		return PendingOpened
	}
	return PendingUnopened
}

// EvictionGroup is the group PendingLimits.Total evicts the request with:
// its OriginGroup, else its Origin.
func (a AuthRequest) EvictionGroup() string {
	if a.OriginGroup != "" {
		return a.OriginGroup
	}
	return a.Origin
}

// PendingLimits bounds the authorization requests a store keeps, so that
// unauthenticated callers of /authorize cannot fill the disk. When one more
// request would exceed a limit, requests are evicted to make room: for
// PerOrigin, requests of the new one's Origin; for Total, requests of the
// group (OriginGroup, else Origin) that holds the most requests that may be
// evicted, so a flood pushes out its own requests first and an address
// with one pending sign-in keeps it. Within either, requests no browser has
// opened (BrowserID empty) go before those a person is signing in with,
// each oldest (CreatedAt) first. A request whose code was issued
// (CodeIssued) is never evicted: it lives one code lifetime at most and
// exists only after a real sign-in. When only such requests are left to
// evict, CreateAuthRequest gives ErrLimitReached. Zero means no limit.
type PendingLimits struct {
	PerOrigin int // requests with the same non-empty Origin
	Total     int // requests in all
}

// IssuedTokens is what one authorization code produced, so that a replay of
// the code revokes exactly that (RFC 6749 §4.1.2). Empty fields: nothing of
// that kind was issued.
type IssuedTokens struct {
	AccessTokenID string `json:"access_token_id,omitempty"`
	FamilyID      string `json:"family_id,omitempty"` // the refresh-token family the code started
}

// AccessToken is an issued access token. Opaque tokens carry only ID and
// subject (encrypted); everything else is looked up here.
type AccessToken struct {
	ID        string    `json:"id"`
	ClientID  string    `json:"client_id"`
	UserID    string    `json:"user_id,omitempty"` // empty for client_credentials tokens
	Subject   string    `json:"subject"`           // user ID, or the client ID for machine tokens
	Scopes    []string  `json:"scopes,omitempty"`
	Audience  []string  `json:"audience,omitempty"`
	FamilyID  string    `json:"family_id,omitempty"` // refresh token family this token belongs to
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`

	// UserinfoClaims are the individual claims the sign-in's claims
	// parameter asked userinfo for (AuthRequest.UserinfoClaims).
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`

	// Actors are, for a token issued by token exchange (RFC 8693), the
	// client IDs that acted for the subject, the latest first: the act
	// claim, nested. Empty for every other token.
	Actors []string `json:"actors,omitempty"`
	// AppPassword: issued for an app password by token exchange, not at
	// a sign-in.
	AppPassword bool `json:"app_password,omitempty"`

	// DPoPJKT is the JWK SHA-256 thumbprint (RFC 7638) of the key the
	// token is bound to (RFC 9449 DPoP): it is accepted only with a proof
	// signed by that key. "" for a bearer token.
	DPoPJKT string `json:"dpop_jkt,omitempty"`

	// CredentialID is, for a token issued by token exchange for an app
	// password, and for every token exchanged from it in turn, the ID of
	// that app password (a Credential of UserID): the token is good only
	// while the app password is live, so revoking, deleting or expiring it
	// ends the token at once. "" for every other token.
	CredentialID string `json:"credential_id,omitempty"`
}

// RefreshToken is one link of a refresh-token family. It is stored under the
// SHA-256 of its value. A rotated link stays as a tombstone until the family
// expires, so its reuse can be recognised.
type RefreshToken struct {
	Hash      string    `json:"hash"` // hex SHA-256 of the token value; the key
	ID        string    `json:"id"`   // random ID, safe to log and to use in revocation
	FamilyID  string    `json:"family_id"`
	ClientID  string    `json:"client_id"`
	UserID    string    `json:"user_id"`
	Scopes    []string  `json:"scopes,omitempty"`
	Audience  []string  `json:"audience,omitempty"`
	AMR       []string  `json:"amr,omitempty"`
	AuthTime  time.Time `json:"auth_time"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is the family's absolute end; IdleExpiresAt ends it earlier
	// when the token is not used.
	ExpiresAt     time.Time `json:"expires_at"`
	IdleExpiresAt time.Time `json:"idle_expires_at"`
	RotatedAt     time.Time `json:"rotated_at,omitempty"` // non-zero: superseded, kept only to detect reuse

	// Reuse grace: until GraceUntil, presenting this link's predecessor
	// again is a retry (two tabs, a lost response) that gets this link back
	// instead of revoking the family; see Tokens.GetRefreshToken.
	// SealedValue is this link's value sealed by the caller, never the value
	// itself; the store drops it once the grace is over or the link is used.
	SealedValue []byte    `json:"sealed_value,omitempty"`
	GraceUntil  time.Time `json:"grace_until,omitempty"`

	// SID is the sid claim of the family's ID tokens: the non-secret name
	// of the browser session the family was issued in, kept so that a
	// refreshed ID token names the same session. "" for families issued
	// before sid existed.
	SID string `json:"sid,omitempty"`
	// IDTokenClaims and UserinfoClaims are the individual claims the
	// sign-in's claims parameter asked for (AuthRequest), kept for the
	// family's refreshed ID tokens and access tokens.
	IDTokenClaims  []string `json:"id_token_claims,omitempty"`
	UserinfoClaims []string `json:"userinfo_claims,omitempty"`
	// ACR is the acr claim of the family's first ID token, which its
	// refreshed ID tokens repeat; "" for families issued before.
	ACR string `json:"acr,omitempty"`

	// DPoPJKT binds the family of a public app to the key of the first
	// DPoP proof it was issued with (RFC 9449 §5), at its sign-in or a
	// later refresh: each refresh must come with a proof of that key. ""
	// for an unbound family.
	DPoPJKT string `json:"dpop_jkt,omitempty"`

	// Resource indicators (RFC 8707).
	// Resources are the resources granted to the family (at the sign-in,
	// AuthRequest.Resources, or at the device authorization,
	// DeviceAuthorization.Resources): each refresh may ask access tokens
	// for all of them or for a part.
	Resources []string `json:"resources,omitempty"`
}

// End is when the token stops working unless it is used (and so rotated)
// first: the earlier of its family's end and its idle deadline.
func (r RefreshToken) End() time.Time { return Earliest(r.ExpiresAt, r.IdleExpiresAt) }

// Earliest returns the earlier of two deadlines, a zero one meaning none.
func Earliest(a, b time.Time) time.Time {
	if a.IsZero() || (!b.IsZero() && b.Before(a)) {
		return b
	}
	return a
}

// Session is a signed-in browser (single sign-on).
type Session struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id"`
	AuthTime  time.Time `json:"auth_time"`
	AMR       []string  `json:"amr,omitempty"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// ClientIDs are the apps that were issued tokens in this session (a
	// code exchanged), in order: the apps the person is signed in to
	// through it, told when it ends (front- and back-channel logout).
	ClientIDs []string `json:"client_ids,omitempty"`
}

// Grant remembers the scopes a user consented to for a client.
type Grant struct {
	UserID    string    `json:"user_id"`
	ClientID  string    `json:"client_id"`
	Scopes    []string  `json:"scopes"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// LastUsedAt is when the app last got a token for the user: the store
	// moves it to an access token's CreatedAt whenever it stores one for
	// (UserID, ClientID) (sign-in, refresh), in the same write, and never
	// back. Zero: no token since the consent.
	LastUsedAt time.Time `json:"last_used_at,omitempty"`
}

// SigningKey is a token-signing key. The private key is sealed by the caller
// before it reaches the store.
type SigningKey struct {
	ID         string    `json:"id"`
	Algorithm  string    `json:"algorithm"`
	SealedKey  []byte    `json:"sealed_key"` // PKCS#8 DER, sealed with AES-GCM
	PublicJWK  []byte    `json:"public_jwk"` // JSON Web Key of the public half
	CreatedAt  time.Time `json:"created_at"`
	RetiredAt  time.Time `json:"retired_at,omitempty"`  // no longer signs
	VerifyTill time.Time `json:"verify_till,omitempty"` // dropped from JWKS after this
}

// OneTimeToken is a single-use link secret: first-admin setup now, email
// verification and password reset later.
type OneTimeToken struct {
	Hash    string `json:"hash"` // hex SHA-256 of the token value; the key
	Purpose string `json:"purpose"`
	UserID  string `json:"user_id,omitempty"`
	// Data is state that belongs to the token, e.g. a WebAuthn ceremony's
	// session data.
	Data []byte `json:"data,omitempty"`
	// CreatedBy is the user who made the token (an administrator's link),
	// "" for one a person asked for themselves.
	CreatedBy string    `json:"created_by,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// OnePerUser keeps at most one live token of its Purpose for its
	// UserID: storing it deletes the user's earlier OnePerUser token of
	// that purpose, in the same transaction. So a newer link (an email
	// change asked for again) makes the older one stop working.
	OnePerUser bool `json:"one_per_user,omitempty"`
}

// Credential kinds.
const (
	KindPasskey       = "passkey"
	KindAppPassword   = "app_password"
	KindAPIToken      = "api_token"
	KindTrustedDevice = "trusted_device"
	// KindInitialAccessToken is an initial access token of dynamic client
	// registration (RFC 7591 §3), owned by InitialAccessTokenOwner.
	KindInitialAccessToken = "initial_access_token"
)

// InitialAccessTokenOwner is the UserID of every initial access token: the
// tokens belong to the server, not to the administrator who made one, so
// they are listed together and outlive that administrator's account. No
// user can have this ID: generated IDs are base64url, and an import takes
// only IDs that start with a letter or digit.
const InitialAccessTokenOwner = "~registration"

// Credential is something a user holds besides their password: a passkey, an
// app password, an API token or a trusted-device cookie. One record shape
// serves all four; the fields each kind uses are marked.
type Credential struct {
	ID     string `json:"id"`
	UserID string `json:"user_id"`
	Kind   string `json:"kind"`
	Name   string `json:"name,omitempty"` // passkey, app password, API token
	// Hash is the hex SHA-256 of the secret (app password, API token,
	// trusted device). API tokens and trusted devices are found by it, so it
	// is unique across all credentials when set.
	Hash string `json:"hash,omitempty"`
	// ClientID restricts an app password to one app; "" allows all.
	ClientID string `json:"client_id,omitempty"`
	// Scope of an API token: "read-only" or "read-write".
	Scope string `json:"scope,omitempty"`
	// ValidUntil is an API token's own expiry (zero: never). The account
	// layer checks it, so a use after it is recognised and recorded; the
	// record's ExpiresAt is set later so the store sweeps it eventually.
	ValidUntil time.Time `json:"valid_until,omitempty"`
	// AllowedNetworks limits where an API token may be used from (CIDRs).
	AllowedNetworks []string `json:"allowed_networks,omitempty"`
	// WebAuthnID is a passkey's credential ID; unique across all passkeys.
	WebAuthnID []byte `json:"webauthn_id,omitempty"`
	// WebAuthn is the passkey as the WebAuthn library stores it (JSON).
	WebAuthn []byte `json:"webauthn,omitempty"`
	// Trusted device: where it was first seen.
	UserAgent string `json:"user_agent,omitempty"`
	IP        string `json:"ip,omitempty"`

	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitempty"` // zero: never
	LastUsedAt time.Time `json:"last_used_at,omitempty"`
	LastIP     string    `json:"last_ip,omitempty"`
	// ExpiryWarnedAt is when the owner of an API token was told that it
	// expires soon (zero: not yet): each token is warned about once.
	ExpiryWarnedAt time.Time `json:"expiry_warned_at,omitempty"`

	// Initial access tokens (KindInitialAccessToken): MaxUses is how many
	// apps the token may register (0: any number until ValidUntil), Uses
	// how many it has; HoldForApproval registers them held
	// (Client.PendingApproval).
	MaxUses         int  `json:"max_uses,omitempty"`
	Uses            int  `json:"uses,omitempty"`
	HoldForApproval bool `json:"hold_for_approval,omitempty"`
}

// Directory is an external identity source added on the admin page
// (sources from config.toml are not stored). Settings holds the source's
// non-secret settings as JSON; SealedSecret its bind password or client
// secret, sealed by the caller.
type Directory struct {
	ID           string    `json:"id"`
	Type         string    `json:"type"` // "ldap"
	Settings     []byte    `json:"settings"`
	SealedSecret []byte    `json:"sealed_secret,omitempty"`
	CreatedAt    time.Time `json:"created_at"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// Avatar is a user's uploaded picture.
type Avatar struct {
	UserID      string    `json:"user_id"`
	ContentType string    `json:"content_type"`
	Data        []byte    `json:"data"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// LoginAttempt records one sign-in attempt, successful or not.
type LoginAttempt struct {
	ID        string    `json:"id"`
	UserID    string    `json:"user_id,omitempty"` // empty when the name matched nobody
	Login     string    `json:"login"`
	Time      time.Time `json:"time"`
	IP        string    `json:"ip,omitempty"`
	UserAgent string    `json:"user_agent,omitempty"`
	Method    string    `json:"method"`
	Success   bool      `json:"success"`
	Reason    string    `json:"reason,omitempty"`
}

// Users persists people.
type Users interface {
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (User, error)
	// GetUserByLogin finds a user by username or email, case-insensitively.
	GetUserByLogin(ctx context.Context, login string) (User, error)
	// GetUserByIdentity finds the user linked to an external account.
	GetUserByIdentity(ctx context.Context, connection, externalID string) (User, error)
	ListUsers(ctx context.Context) ([]User, error)
	CountUsers(ctx context.Context) (int, error)
	// UpdateUser applies fn to the stored user inside one transaction.
	// Returning an error from fn changes nothing.
	UpdateUser(ctx context.Context, id string, fn func(User) (User, error)) (User, error)
	// DeleteUser deletes the user with everything that would outlive it
	// (sessions, tokens, grants, credentials, avatar). When
	// reserveNamesUntil is after now, the user's username and email stay
	// unavailable until then: CreateUser and UpdateUser taking one give an
	// error that is both ErrConflict and ErrNameReserved. Zero reserves
	// nothing. A name reserved already keeps the later of the two ends.
	DeleteUser(ctx context.Context, id string, reserveNamesUntil time.Time) error
	// CreateUsers stores many new users (an import) in one transaction,
	// with CreateUser's checks: each ID, username, email and identity must
	// be free, in the store and among users. Either every user is stored
	// or none: the first refusal (ErrConflict, or an invalid record) is
	// returned and nothing is written.
	CreateUsers(ctx context.Context, users []User) error
	// SearchUsers returns one page of the users matching q (see UserQuery).
	// A page holds Limit users unless it is the last one; Next continues it.
	SearchUsers(ctx context.Context, q UserQuery) (UserPage, error)
	// CountAdmins counts the users who are Admin and not Blocked: the
	// admins who can act, for the rule that leaves at least one.
	CountAdmins(ctx context.Context) (int, error)
}

// User search sorts.
const (
	// UserSortCreated: newest account first, then by ID.
	UserSortCreated = "created"
	// UserSortLastSignIn: most recent sign-in first, then by ID; users who
	// never signed in come last.
	UserSortLastSignIn = "last_sign_in"
)

const (
	// DefaultUserLimit and MaxUserLimit bound a page of SearchUsers (and of
	// GroupMembers).
	DefaultUserLimit = 50
	MaxUserLimit     = 500
	// MaxUserSearch bounds UserQuery.Search and UserQuery.Group, in bytes.
	MaxUserSearch = 256
)

// UserQuery selects users for SearchUsers. Nil and empty fields do not
// filter; the filters combine with AND.
//
// Text is compared after Fold (NFKC, then Unicode full case folding): "ÄRGER"
// finds "ärger", "STRASSE" finds "straße" and the other way round, a
// decomposed "a\u0308" finds "ä".
type UserQuery struct {
	// Search is a substring (so also a prefix) of the username, the email,
	// Name, GivenName, FamilyName, Nickname or PhoneNumber; "" matches all.
	// Longer than MaxUserSearch or holding a NUL: ErrInvalid.
	Search string
	// Source: nil any; "" local accounts; else that directory's ID.
	Source *string
	// Blocked and Admin match the user's flags.
	Blocked *bool
	Admin   *bool
	// TwoFactor: the user has a confirmed TOTP secret or at least one
	// passkey credential.
	TwoFactor *bool
	// Group: a member of this group, by name (compared after Fold): the
	// name is in User.Groups, whether a local group or a directory's.
	Group string
	// Sort is UserSortCreated (also "") or UserSortLastSignIn; anything
	// else gives ErrInvalid.
	Sort string
	// Cursor continues a previous page of the same query (Next); one that
	// is malformed or comes from a query with other filters or another
	// sort gives ErrInvalid. Paging is by sort key: users created (or, for
	// UserSortLastSignIn, signing in) after the first page was read do not
	// show on later pages, and a user whose sort key changes meanwhile (a
	// sign-in under UserSortLastSignIn) may be missed or shown twice;
	// other changes neither skip nor repeat anyone.
	Cursor string
	// Limit is the page size: DefaultUserLimit when <= 0, at most MaxUserLimit.
	Limit int
}

// UserPage is one page of SearchUsers.
type UserPage struct {
	Users []User
	// Next is the Cursor of the next page; "" when there are no more users.
	Next string
}

// Fold is the form names are compared in by user search and groups: NFKC
// compatibility normalisation, then Unicode full case folding. Folded
// strings compare equal when they differ only in case ("STRASSE" and
// "straße"), in composition or in compatibility variants (full-width
// letters, ligatures).
func Fold(s string) string {
	ascii := true
	for i := 0; i < len(s) && ascii; i++ {
		ascii = s[i] < utf8.RuneSelf
	}
	if ascii { // NFKC leaves ASCII alone, and folding it is lowering it
		return strings.ToLower(s)
	}
	return norm.NFKC.String(cases.Fold().String(norm.NFKC.String(s)))
}

// MaxGroupName bounds Group.Name, in bytes; MaxGroupDescription its
// Description.
const (
	MaxGroupName        = 128
	MaxGroupDescription = 1024
)

// Group is a local group. Membership is the group's Name in User.Groups
// (what the groups claim carries), so a user whose directory sends a group
// of the same name is a member too.
type Group struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"` // unique after Fold; what the groups claim carries
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

// MemberPage is one page of GroupMembers.
type MemberPage struct {
	UserIDs []string // ordered by user ID
	// Next is the cursor of the next page; "" when there are no more.
	Next string
}

// Groups persists local groups.
type Groups interface {
	// CreateGroup stores a new group. A taken ID or name (after Fold) gives
	// ErrConflict; an empty ID or name, a NUL in either, a name longer
	// than MaxGroupName or a description longer than MaxGroupDescription
	// ErrInvalid.
	CreateGroup(ctx context.Context, g Group) error
	GetGroup(ctx context.Context, id string) (Group, error)
	// ListGroups returns every group ordered by name (after Fold).
	ListGroups(ctx context.Context) ([]Group, error)
	// UpdateGroup applies fn inside one transaction; fn may not change the
	// ID. A rename (a new Name, even only in case) also renames the group
	// in every member's User.Groups, setting their UpdatedAt to now, in the
	// same transaction (a member who held the new name already keeps one
	// entry, the one they had); a name taken by another group gives
	// ErrConflict and changes nothing.
	UpdateGroup(ctx context.Context, id string, fn func(Group) (Group, error)) (Group, error)
	// DeleteGroup deletes the group and removes its name from every
	// member's User.Groups (setting their UpdatedAt to now), in one
	// transaction.
	DeleteGroup(ctx context.Context, id string) error
	// GroupMembers returns one page of the IDs of the group's members (the
	// users whose Groups hold its name), ordered by user ID. cursor is ""
	// or a previous page's Next (anything else gives ErrInvalid); limit is
	// as UserQuery.Limit. An unknown group gives ErrNotFound.
	GroupMembers(ctx context.Context, id, cursor string, limit int) (MemberPage, error)
}

// Clients persists registered applications.
type Clients interface {
	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	UpdateClient(ctx context.Context, id string, fn func(Client) (Client, error)) (Client, error)
	// UpdateClientRevokingTokens is UpdateClient that also deletes every
	// access token and refresh-token family issued to the client so far
	// (all grants: codes, refreshes, client_credentials), in the same
	// transaction: both happen or neither (an error from fn changes
	// nothing). It returns the updated client and how many live tokens
	// went (access tokens plus unrotated refresh tokens).
	UpdateClientRevokingTokens(ctx context.Context, id string, fn func(Client) (Client, error)) (Client, int, error)
	// DeleteClient deletes the client with everything issued to it or
	// bound to it: its access tokens and refresh-token families, users'
	// grants (consents) to it and credentials restricted to it (app
	// passwords), in one transaction; then its pending authorization
	// requests, their codes and its remembered code redemptions. Those
	// live minutes and may sit apart from the rest (storage/bolt keeps
	// them in a second file), so they go in a second step: a client
	// registered again under the ID never finds any of it.
	DeleteClient(ctx context.Context, id string) error
}

// AuthRequests persists authorization requests and their codes.
type AuthRequests interface {
	// CreateAuthRequest stores a new request within limits (see
	// PendingLimits) and returns how many older requests it deleted to
	// make room. A request larger than MaxAuthRequestBytes gives
	// ErrTooLarge and changes nothing; so does an update that would make
	// it so. ErrLimitReached: no room can be made (see PendingLimits).
	CreateAuthRequest(ctx context.Context, a AuthRequest, limits PendingLimits) (evicted int, err error)
	GetAuthRequest(ctx context.Context, id string) (AuthRequest, error)
	UpdateAuthRequest(ctx context.Context, id string, fn func(AuthRequest) (AuthRequest, error)) (AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error
	// IssueCode gives the live request authRequestID its one code, in one
	// transaction: it marks the request's code issued, brings its expiry
	// forward to expires (never later: the request lives no longer than
	// its code) and links codeHash to it. A request whose code was issued
	// already, or a hash linked to another request, gives ErrConflict; a
	// missing or expired request ErrNotFound; either changes nothing.
	IssueCode(ctx context.Context, authRequestID, codeHash string, expires time.Time) error
	// RedeemCode returns the request a code belongs to and unlinks the code in
	// the same transaction, so a code can be redeemed exactly once even when
	// two exchanges race. The request goes with it (DeleteAuthRequest then
	// finds nothing): its code was its last use. It remembers the redemption with issue, the IDs of
	// the tokens the exchange is about to create (CreateCodeTokens), so that
	// a replay can revoke them. Only the request's own client redeems its
	// code: for any other clientID the code does not exist (ErrNotFound) and
	// nothing changes. A code redeemed before (and remembered for at least
	// ten minutes) gives ErrTokenReused, with a request holding only ID,
	// UserID, ClientID, CodeChallenge and CodeChallengeMethod, and changes
	// nothing: the caller decides whether whoever presents it again proves
	// to be its client (MarkCodeReplayed).
	RedeemCode(ctx context.Context, codeHash, clientID string, issue IssuedTokens) (AuthRequest, error)
	// MarkCodeReplayed marks a redeemed code of clientID replayed and
	// returns what its exchange issues (RedeemCode's issue), so the caller
	// can revoke exactly that; an exchange of the code still under way
	// learns of the mark in CreateCodeTokens. A code that is not
	// remembered, or another client's, gives ErrNotFound.
	MarkCodeReplayed(ctx context.Context, codeHash, clientID string) (IssuedTokens, error)
	// CreateCodeTokens stores the tokens of the exchange of a redeemed code
	// (as CreateTokens), then checks that the code was not marked replayed
	// meanwhile: if it was, it deletes them again and returns
	// ErrTokenReused. Checking after storing closes the race with a replay:
	// a mark before the check is seen here, and a replay marked after it
	// finds the tokens stored when it revokes them. A code no longer
	// remembered (its record lost) leaves the tokens standing.
	//
	// sessionID, when set, is the browser session the code was issued in:
	// the app is recorded on it (Session.ClientIDs, as AddSessionClient)
	// in the tokens' own commit.
	CreateCodeTokens(ctx context.Context, codeHash string, access AccessToken, refresh *RefreshToken, sessionID string) error
}

// Tokens persists access and refresh tokens.
type Tokens interface {
	// CreateTokens stores an access token and, when refresh is not nil, the
	// first link of a new refresh-token family, in one transaction.
	CreateTokens(ctx context.Context, access AccessToken, refresh *RefreshToken) error
	GetAccessToken(ctx context.Context, id string) (AccessToken, error)
	// GetAccessTokenAndUser is GetAccessToken and, for a token issued to
	// a user, that user as it is now, and for a token issued for an app
	// password (AccessToken.CredentialID), that credential as it is now,
	// all read together (one query on a database server): whoever reads
	// a presented token needs all three to tell whether it is still good,
	// and a revoked app password must end its tokens without a second
	// read on every use. A token of no user, or of one that is gone,
	// comes with a zero User; one of no credential, or of one that is
	// gone or expired (as GetCredential hides it), with a zero Credential.
	GetAccessTokenAndUser(ctx context.Context, id string) (AccessToken, User, Credential, error)
	// GetRefreshToken returns the live token with that hash, for use. A token
	// rotated into a successor that is still live and within its GraceUntil
	// (a retry) gives that successor, whose Hash differs from the one asked
	// for; any other rotated token gives ErrTokenReused, and its family is
	// revoked. An unknown or expired token gives ErrNotFound. A sealed
	// value past its GraceUntil is never returned, by any read; the reads
	// other than this one also delete it (this one is followed by a
	// rotation, which does).
	GetRefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// RetryRefreshToken answers a retry (see GetRefreshToken) atomically:
	// in one transaction it checks again that hash is the rotated token
	// whose successor is still live, unused and within its GraceUntil with
	// its SealedValue, stores access in the successor's family, and returns
	// the successor. If hash is rotated but no longer a retry (the
	// successor was used meanwhile, or the grace is over), that is reuse:
	// the family is revoked, nothing is stored, and it gives
	// ErrTokenReused. An unknown, expired or unrotated token gives
	// ErrNotFound.
	RetryRefreshToken(ctx context.Context, hash string, access AccessToken) (RefreshToken, error)
	// PeekRefreshToken returns the live token with that hash, like
	// GetRefreshToken, but without the reuse check's revocation: for looking
	// at a token (introspection) rather than using it. Rotated, unknown and
	// expired tokens give ErrNotFound.
	PeekRefreshToken(ctx context.Context, hash string) (RefreshToken, error)
	// GetRefreshTokenByID finds a live refresh token by its ID.
	GetRefreshTokenByID(ctx context.Context, id string) (RefreshToken, error)
	// RotateRefreshToken supersedes the live token oldHash with next and stores
	// access, atomically. If oldHash is no longer live (a concurrent rotation
	// won), it returns ErrNotFound and stores nothing. next's SealedValue and
	// GraceUntil, when set, open its reuse grace; the old token's are dropped.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, access AccessToken) error
	DeleteAccessToken(ctx context.Context, id string) error
	// RevokeFamily deletes every refresh token of the family and the access
	// tokens issued from it.
	RevokeFamily(ctx context.Context, familyID string) error
	// RevokeUserClient revokes every token family and access token of a user
	// at a client (clientID "" means all clients). It returns how many tokens went.
	RevokeUserClient(ctx context.Context, userID, clientID string) (int, error)
}

// Sessions persists signed-in browsers.
type Sessions interface {
	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, id string) (Session, error)
	DeleteSession(ctx context.Context, id string) error
	// DeleteUserSessions ends every session of a user and returns how many.
	DeleteUserSessions(ctx context.Context, userID string) (int, error)
	// ListUserSessions returns a user's live sessions, newest first.
	ListUserSessions(ctx context.Context, userID string) ([]Session, error)
	// AddSessionClient appends clientID to the live session id's
	// ClientIDs unless it is there already. A missing or expired session
	// gives ErrNotFound.
	AddSessionClient(ctx context.Context, id, clientID string) error
}

// Credentials persists passkeys, app passwords, API tokens and trusted
// devices.
type Credentials interface {
	// CreateCredential stores a new credential; a taken ID, Hash or
	// WebAuthnID gives ErrConflict.
	CreateCredential(ctx context.Context, c Credential) error
	// GetCredential returns one credential of a user.
	GetCredential(ctx context.Context, userID, id string) (Credential, error)
	// GetCredentialByHash finds a live credential by the hash of its secret.
	GetCredentialByHash(ctx context.Context, hash string) (Credential, error)
	// GetCredentialByWebAuthnID finds a passkey by its credential ID.
	GetCredentialByWebAuthnID(ctx context.Context, webauthnID []byte) (Credential, error)
	// ListCredentials returns a user's live credentials of one kind ("" for
	// all kinds), oldest first.
	ListCredentials(ctx context.Context, userID, kind string) ([]Credential, error)
	// UpdateCredential applies fn inside one transaction. fn may not change
	// ID, UserID, Kind, Hash or WebAuthnID. The outbox messages out are
	// committed with the change (and not when fn fails).
	UpdateCredential(ctx context.Context, userID, id string, fn func(Credential) (Credential, error), out ...OutboxMessage) (Credential, error)
	// ListExpiringTokens returns live API tokens whose ValidUntil is in
	// [from, before) and whose owner was not warned yet (ExpiryWarnedAt
	// zero), at most limit of them (all when limit <= 0).
	ListExpiringTokens(ctx context.Context, from, before time.Time, limit int) ([]Credential, error)
	DeleteCredential(ctx context.Context, userID, id string) error
	// DeleteCredentials deletes a user's credentials of one kind ("" for all)
	// and returns how many went.
	DeleteCredentials(ctx context.Context, userID, kind string) (int, error)
}

// Directories persists the identity sources added on the admin page.
type Directories interface {
	// PutDirectory creates or replaces a directory by ID.
	PutDirectory(ctx context.Context, d Directory) error
	GetDirectory(ctx context.Context, id string) (Directory, error)
	ListDirectories(ctx context.Context) ([]Directory, error)
	DeleteDirectory(ctx context.Context, id string) error
}

// Avatars persists uploaded pictures.
type Avatars interface {
	PutAvatar(ctx context.Context, a Avatar) error
	GetAvatar(ctx context.Context, userID string) (Avatar, error)
	DeleteAvatar(ctx context.Context, userID string) error
}

// Grants persists consent.
type Grants interface {
	GetGrant(ctx context.Context, userID, clientID string) (Grant, error)
	// PutGrant creates or replaces the grant for (UserID, ClientID) and,
	// when e is not nil, appends e to the audit log in the same commit, so
	// a consent costs one write whether or not it is audited. An event the
	// audit log refuses (see AuditLog.AppendAudit) changes nothing; so
	// does a refused outbox message of out (what the event causes).
	PutGrant(ctx context.Context, g Grant, e *AuditEvent, out ...OutboxMessage) error
	// ListGrants returns every grant of a user, by client ID.
	ListGrants(ctx context.Context, userID string) ([]Grant, error)
	// DeleteGrant removes the grant of a user to a client; ErrNotFound
	// when there is none.
	DeleteGrant(ctx context.Context, userID, clientID string) error
}

// Keys persists signing keys.
type Keys interface {
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	// PutSigningKey creates or replaces a key by ID.
	PutSigningKey(ctx context.Context, k SigningKey) error
	DeleteSigningKey(ctx context.Context, id string) error
}

// OneTimeTokens persists single-use link secrets.
type OneTimeTokens interface {
	// CreateOneTimeToken stores t and, in the same transaction, the outbox
	// messages out (a mail carrying the token's link): both or neither,
	// the messages checked as EnqueueOutbox checks them.
	CreateOneTimeToken(ctx context.Context, t OneTimeToken, out ...OutboxMessage) error
	// ConsumeOneTimeToken returns the token and deletes it in one transaction.
	ConsumeOneTimeToken(ctx context.Context, hash, purpose string) (OneTimeToken, error)
	// PeekOneTimeToken returns a live token without consuming it.
	PeekOneTimeToken(ctx context.Context, hash, purpose string) (OneTimeToken, error)
	// UserOneTimeToken returns the user's live OnePerUser token of
	// purpose, without consuming it; ErrNotFound when there is none.
	UserOneTimeToken(ctx context.Context, userID, purpose string) (OneTimeToken, error)
}

// LoginAttempts persists the sign-in history.
type LoginAttempts interface {
	AddLoginAttempt(ctx context.Context, a LoginAttempt) error
	// RecordAttempt is AddLoginAttempt with the attempt's audit event (nil
	// for none) appended in the same transaction: both are written or
	// neither. The event is checked like AppendAudit's.
	RecordAttempt(ctx context.Context, a LoginAttempt, audit *AuditEvent) error
	// ListLoginAttempts returns a user's newest attempts first, at most limit.
	ListLoginAttempts(ctx context.Context, userID string, limit int) ([]LoginAttempt, error)
}

// SignInWrite is what a successful sign-in changes, for SignIns.RecordSignIn.
// The caller builds every value; the store only writes them.
type SignInWrite struct {
	UserID string
	// Update applies the sign-in to the stored user (last sign-in, count, a
	// rehashed password). Like UpdateUser's fn it gets the stored user; it
	// may run more than once and must depend only on its argument.
	Update func(User) (User, error)
	// Attempt is the sign-in history entry; its UserID must be UserID. The
	// history keeps the same bounds as with AddLoginAttempt.
	Attempt LoginAttempt
	// Session is the browser's new session (its UserID must be UserID);
	// nil when the sign-in starts none.
	Session *Session
	// Audit is the audit event of the sign-in, written in the same
	// transaction (so a sign-in still costs one commit); nil for none. It
	// is checked like AppendAudit's event, and a refused one refuses the
	// whole sign-in.
	Audit *AuditEvent
	// Outbox are the messages the sign-in causes (a notification, webhook
	// calls), written in the same transaction and checked as
	// EnqueueOutbox checks them.
	Outbox []OutboxMessage
}

// SignIns persists completed sign-ins.
type SignIns interface {
	// RecordSignIn applies w.Update to the user, adds w.Attempt to the
	// sign-in history, creates w.Session and appends w.Audit, all in one
	// transaction, and returns the updated user. Either all of it is
	// written or nothing: an unknown user gives ErrNotFound, a taken
	// session ID or audit event ErrConflict, an audit event AppendAudit
	// would refuse ErrInvalid or ErrTooLarge, and an error from Update is
	// returned (wrapped); none of them writes anything.
	RecordSignIn(ctx context.Context, w SignInWrite) (User, error)
}

// Settings persists small named values (generated secrets, flags).
type Settings interface {
	GetSetting(ctx context.Context, name string) ([]byte, error)
	PutSetting(ctx context.Context, name string, value []byte) error
}

// Throttle is the recent failures of one throttled key: an account, a
// client address, an account from one address, a client from one address.
// Package throttle decides what the fields mean; the store keeps them
// durably (so throttling survives restarts and is shared by replicas) and
// forgets the record at ExpiresAt.
type Throttle struct {
	Key string `json:"key"`
	// Failures are the times of recent failures, oldest first; the store
	// keeps at most MaxThrottleFailures of them (the newest).
	Failures []time.Time `json:"failures,omitempty"`
	// Rounds counts the waits imposed since the key was last forgiven.
	Rounds int `json:"rounds,omitempty"`
	// LockedUntil: attempts are refused until then.
	LockedUntil time.Time `json:"locked_until,omitempty"`
	// ExpiresAt is when the record stops mattering; the store forgets it then.
	ExpiresAt time.Time `json:"expires_at"`
}

// MaxThrottleFailures bounds the failure times one Throttle record keeps.
const MaxThrottleFailures = 1000

// MaxThrottleKey bounds the length of a Throttle's key, in bytes. Keys are
// built from what attackers send (login names, client IDs): the builder
// hashes long parts, and the store refuses longer keys.
const MaxThrottleKey = 256

// Empty tells whether the record holds nothing worth keeping.
func (t Throttle) Empty() bool {
	return len(t.Failures) == 0 && t.Rounds == 0 && t.LockedUntil.IsZero()
}

// Throttles persists throttle records.
type Throttles interface {
	// GetThrottles returns the live records of keys, in the same order; a
	// key with no live record gets a zero Throttle with only Key set.
	GetThrottles(ctx context.Context, keys ...string) ([]Throttle, error)
	// UpdateThrottles applies fn to the record of each key (a zero one with
	// Key set when there is none) and stores the results, all in one
	// transaction; an error from fn changes nothing. A result that is
	// Empty or already expired is deleted. fn may not change Key.
	UpdateThrottles(ctx context.Context, keys []string, fn func(Throttle) (Throttle, error)) error
}

// SweepReport counts what Sweep removed.
type SweepReport struct {
	AuthRequests  int
	AccessTokens  int
	RefreshTokens int
	Sessions      int
	OneTimeTokens int
	LoginAttempts int
	Credentials   int
	Throttles     int
	ReservedNames int // reservations of deleted users' names that ended
	Outbox        int // delivered and failed outbox messages past OutboxRetention
	// DeviceAuthorizations past ExpiresAt + DeviceAuthorizationKept.
	DeviceAuthorizations int
}

// Shared is what a store that several keyport processes use at once
// (PostgreSQL, behind a load balancer) offers them to work together. A
// store that belongs to one process (bbolt) does not implement it: that
// process does every job, and its caches see every change it makes.
type Shared interface {
	// TryLead takes the lead of the job called name (work that must run
	// in one process at a time: key rotation, sweeps, directory sync) when
	// no other process holds it, and ErrLeadTaken when one does. The lead
	// lasts until Release, or until this process loses its connection to
	// the store (Lost is closed then, and another process may take it at
	// once), whichever comes first.
	TryLead(ctx context.Context, name string) (Lead, error)
	// WatchChanges calls fn with the topic (Change*) of each change to
	// records that processes keep in memory, committed by any process,
	// until ctx ends or the connection fails (an error: watch again, and
	// reload everything, since notices may have been missed meanwhile).
	// ready is called once the watch is in place.
	WatchChanges(ctx context.Context, ready func(), fn func(topic string)) error
}

// Lead is a job's lead held by this process (Shared.TryLead).
type Lead interface {
	// Lost is closed when the lead ends without Release: the connection
	// that held it failed.
	Lost() <-chan struct{}
	// Release gives the lead up; calling it again does nothing.
	Release()
}

// ErrLeadTaken: another process holds the lead (Shared.TryLead).
var ErrLeadTaken = errors.New("the lead is held by another process")

// Topics of the changes Shared.WatchChanges reports: each names records
// that processes keep in memory, and a shared store reports every write
// to them (in the writing transaction, so the notice comes with the commit).
const (
	ChangeSettings    = "settings"     // PutSetting
	ChangeWebhooks    = "webhooks"     // CreateWebhook, UpdateWebhook, DeleteWebhook; RecordWebhookDelivery when it changes Disabled
	ChangeDirectories = "directories"  // PutDirectory, DeleteDirectory
	ChangeSigningKeys = "signing_keys" // PutSigningKey, DeleteSigningKey
	ChangeClients     = "clients"      // CreateClient, UpdateClient, UpdateClientRevokingTokens, DeleteClient; Load and Restore
)

// Store is every record kind together. Consumers should accept the narrow
// interface they need.
type Store interface {
	Users
	Clients
	AuthRequests
	Tokens
	Sessions
	Credentials
	Avatars
	Directories
	Grants
	Keys
	OneTimeTokens
	LoginAttempts
	SignIns
	Settings
	Throttles
	Audit
	Groups
	Outbox
	Webhooks
	DeviceAuthorizations
	// Sweep deletes what has expired as of now, and drops the SealedValue of
	// refresh tokens whose reuse grace is over.
	Sweep(ctx context.Context) (SweepReport, error)
	// Backup writes a consistent copy of the whole store.
	Backup(ctx context.Context, w io.Writer) error
	Close() error
}

// AuditEvent is one entry of the audit log: who did what to whom, from
// where. It never holds a secret or a password (nor a hash of one): callers
// record that a secret changed, not its value, and Changes lists non-secret
// fields only.
type AuditEvent struct {
	// ID is unique and time-ordered (account.NewOrderedID); the caller makes it.
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
	// Type is a short dotted name: "signin.failed", "user.blocked",
	// "client.created".
	Type string `json:"type"`
	// ActorKind is who acted: "user", "client", "system" or "cli";
	// ActorID is the user's or client's ID ("" for system and cli).
	ActorKind string `json:"actor_kind"`
	ActorID   string `json:"actor_id,omitempty"`
	// TargetUserID is the user the event is about, if any.
	TargetUserID string `json:"target_user_id,omitempty"`
	// ClientID is the app involved, if any.
	ClientID string `json:"client_id,omitempty"`
	// TargetID is the record the event is about when it is neither a user
	// nor an app: a directory's ID.
	TargetID string `json:"target_id,omitempty"`
	IP       string `json:"ip,omitempty"`
	// UserAgent is what the browser sent; stores keep at most
	// MaxAuditUserAgent bytes of it.
	UserAgent string        `json:"user_agent,omitempty"`
	Reason    string        `json:"reason,omitempty"`
	Changes   []AuditChange `json:"changes,omitempty"`
	// Method and Login describe a sign-in: how ("pwd", "otp", "passkey",
	// "app_password", …) and the name as typed, cut for the log (never a
	// password: a sign-in event records that one was tried, not what).
	Method string `json:"method,omitempty"`
	Login  string `json:"login,omitempty"`
	// Initiator is the user (often a system account) who started the
	// workflow this event ends: the invitation accepted or expired, the
	// reset link used or expired. Their own webhooks hear of it.
	Initiator string `json:"initiator,omitempty"`
}

// AuditChange is one edited field of an admin action, before and after.
// Never used for secret fields.
type AuditChange struct {
	Field  string `json:"field"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

const (
	// MaxAuditEventBytes is the largest AuditEvent a store keeps, in its
	// stored form (for storage/bolt, JSON); AppendAudit refuses a larger one
	// with ErrTooLarge. It leaves room for an admin's edit of every profile
	// field while keeping one event from bloating the log.
	MaxAuditEventBytes = 32 << 10
	// MaxAuditUserAgent bounds the stored user agent, in bytes: the header
	// is what any caller sends, so the store cuts it (at a character
	// boundary) rather than refuse the event.
	MaxAuditUserAgent = 256
	// MaxAuditID bounds an event's ID, actor and target, in bytes.
	MaxAuditID = 128
	// DefaultAuditLimit and MaxAuditLimit bound a page of ListAudit.
	DefaultAuditLimit = 100
	MaxAuditLimit     = 500
)

// AuditQuery selects audit events for ListAudit. Empty fields do not filter.
type AuditQuery struct {
	ActorID      string
	TargetUserID string
	Types        []string // any of these
	// From (inclusive) and To (exclusive) bound the event time; zero is open.
	From, To time.Time
	// Cursor continues a previous ListAudit of the same filters; "" starts
	// with the newest event.
	Cursor string
	// Limit is the page size: DefaultAuditLimit when <= 0, at most
	// MaxAuditLimit.
	Limit int
}

// Audit persists the audit log. It is append-only: events are never
// changed, and only retention (SweepAudit) deletes them.
type Audit interface {
	// AppendAudit stores e. An empty ID, Type or ActorKind, a zero Time,
	// or an ID, ActorID or TargetUserID longer than MaxAuditID or holding
	// a NUL gives ErrInvalid; an event larger than MaxAuditEventBytes
	// ErrTooLarge; an event with the same ID and Time as a stored one
	// ErrConflict. None of them stores anything. The outbox messages out
	// (what the event causes: a notification, webhook calls) are written
	// in the same transaction, checked as EnqueueOutbox checks them.
	AppendAudit(ctx context.Context, e AuditEvent, out ...OutboxMessage) error
	// ListAudit returns the events matching q, newest first (by Time, then
	// ID), and the cursor of the next page ("" when there is none). A
	// query by target user or actor reads only that user's events. A page
	// may hold fewer than Limit events while the cursor is not "": each
	// call does bounded work. A cursor that is malformed or comes from a
	// query with other filters gives ErrInvalid.
	ListAudit(ctx context.Context, q AuditQuery) ([]AuditEvent, string, error)
	// SweepAudit deletes the events older than before (retention), with
	// their indexes, in bounded transactions, and returns how many went.
	SweepAudit(ctx context.Context, before time.Time) (int, error)
}

// Outbox message states.
const (
	OutboxPending   = "pending"   // waiting for (another) delivery attempt
	OutboxDelivered = "delivered" // the receiver accepted it
	OutboxFailed    = "failed"    // given up: a permanent error, or its Deadline passed
)

const (
	// MaxOutboxPayloadBytes bounds OutboxMessage.Payload; EnqueueOutbox
	// refuses a larger one with ErrTooLarge. A mail with its HTML part or
	// a webhook's JSON fits well within it.
	MaxOutboxPayloadBytes = 64 << 10
	// MaxOutboxID bounds an outbox message's ID and Kind, in bytes.
	MaxOutboxID = 128
	// MaxOutboxError bounds the stored LastError, in bytes: it comes from
	// what a remote server answered, so the store cuts it (at a character
	// boundary) rather than refuse the update.
	MaxOutboxError = 1024
	// DefaultOutboxLifetime is how long a message is retried when its
	// producer sets no Deadline: EnqueueOutbox sets CreatedAt plus it.
	DefaultOutboxLifetime = 24 * time.Hour
	// OutboxRetention is how long Sweep keeps a delivered or failed
	// message (from its DeliveredAt, or the time it failed), so admins can
	// look into what went out or why it did not.
	OutboxRetention = 30 * 24 * time.Hour
	// DefaultOutboxLimit and MaxOutboxLimit bound a page of ListOutbox and
	// a ClaimOutbox.
	DefaultOutboxLimit = 100
	MaxOutboxLimit     = 500
)

// OutboxMessage is one thing to send out (a mail, a webhook call, a
// back-channel logout), committed in the same transaction as the change
// that causes it and delivered later by package outbox, at least once.
type OutboxMessage struct {
	// ID is unique, time-ordered (account.NewOrderedID) and stable across
	// attempts: receivers de-duplicate on it. The producer makes it.
	ID string `json:"id"`
	// Kind picks the deliverer: "mail", "webhook", "backchannel_logout".
	Kind string `json:"kind"`
	// Payload is opaque to the store. Secrets in it (a reset link is one)
	// are sealed by the producer.
	Payload   []byte    `json:"payload,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	// NextAttemptAt is when the message is due (zero at enqueue: at once).
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// Deadline is when retries stop and the message fails (zero at
	// enqueue: CreatedAt + DefaultOutboxLifetime).
	Deadline time.Time `json:"deadline"`
	// Attempts counts the delivery attempts made so far: CompleteOutbox,
	// RetryOutbox and FailOutbox each count one.
	Attempts int `json:"attempts,omitempty"`
	// LastError is why the last attempt failed; at most MaxOutboxError bytes.
	LastError string `json:"last_error,omitempty"`
	// State is OutboxPending, OutboxDelivered or OutboxFailed.
	State string `json:"state"`
	// DeliveredAt is when it was delivered, or failed for good.
	DeliveredAt time.Time `json:"delivered_at,omitzero"`
	// LeaseUntil: a worker holds the message (ClaimOutbox) until then, and
	// no other worker gets it meanwhile.
	LeaseUntil time.Time `json:"lease_until,omitzero"`
}

// OutboxQuery selects messages for ListOutbox. Empty fields do not filter.
type OutboxQuery struct {
	State string // OutboxPending, OutboxDelivered or OutboxFailed
	Kind  string
	// Cursor continues a previous ListOutbox of the same filters; "" starts
	// with the newest message.
	Cursor string
	// Limit is the page size: DefaultOutboxLimit when <= 0, at most
	// MaxOutboxLimit.
	Limit int
}

// Outbox persists messages on their way out. Every message is due at
// the later of its NextAttemptAt and its LeaseUntil, and stores keep an
// index by that time, so claiming reads due messages only, however many
// wait.
type Outbox interface {
	// EnqueueOutbox stores new pending messages, all or none. An empty or
	// over-long ID or Kind, a NUL in either, a zero CreatedAt, or a message
	// that is not new (a State other than "" or OutboxPending, Attempts,
	// LeaseUntil or DeliveredAt set) gives ErrInvalid; a Payload larger
	// than MaxOutboxPayloadBytes ErrTooLarge; an ID that is taken (or
	// given twice) ErrConflict. None of them stores anything.
	EnqueueOutbox(ctx context.Context, msgs ...OutboxMessage) error
	// ClaimOutbox leases up to limit (at most MaxOutboxLimit) pending
	// messages that are due at now (NextAttemptAt and LeaseUntil not after
	// it) to the caller until now+lease, earliest due first, in one
	// transaction: a second claim before the lease ends does not get
	// them. A lease that ends unfinished makes the message due again.
	ClaimOutbox(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]OutboxMessage, error)
	// CompleteOutbox marks a pending message delivered at at (counting
	// the attempt and ending the lease).
	// CompleteOutbox, RetryOutbox and FailOutbox give ErrNotFound for an
	// unknown ID and ErrConflict for a message that is no longer pending
	// (another worker finished it after this one's lease ended); neither
	// changes anything.
	CompleteOutbox(ctx context.Context, id string, at time.Time) error
	// RetryOutbox counts a failed attempt, records lastErr, ends the lease
	// and makes the message due at next.
	RetryOutbox(ctx context.Context, id string, next time.Time, lastErr string) error
	// FailOutbox gives the message up at at: it counts the attempt,
	// records lastErr and leaves it failed for admins to see.
	FailOutbox(ctx context.Context, id string, at time.Time, lastErr string) error
	// ListOutbox returns the messages matching q, newest first (by ID,
	// which is time-ordered), and the cursor of the next page ("" when
	// there is none). A query by State reads only that state's messages.
	// A page may hold fewer than Limit messages while the cursor is not
	// "": each call does bounded work. A cursor that is malformed or comes
	// from a query with other filters gives ErrInvalid.
	ListOutbox(ctx context.Context, q OutboxQuery) ([]OutboxMessage, string, error)
	// RetryFailedOutbox gives a failed message another life, as an admin
	// asks: it is pending and due at now, with a fresh Deadline (now +
	// DefaultOutboxLifetime) and no DeliveredAt; its Attempts and
	// LastError stay as history. It returns the message as stored. An
	// unknown ID gives ErrNotFound, a message that is not failed
	// ErrConflict; neither changes anything.
	RetryFailedOutbox(ctx context.Context, id string, now time.Time) (OutboxMessage, error)
}

// Webhooks: URLs that are told of account events (webhook calls go through
// the outbox; see account/webhooks.go).

// Webhook is one subscription. OwnerUserID "" is an admin's hook, told of
// every user's events; a user's own hook is told of their account's
// events only.
type Webhook struct {
	ID          string `json:"id"`
	OwnerUserID string `json:"owner_user_id,omitempty"`
	URL         string `json:"url"`
	// EventTypes are the event types it wants; empty means all.
	EventTypes []string `json:"event_types,omitempty"`
	// SealedSecret is the signing secret, sealed by the caller; the store
	// keeps the bytes.
	SealedSecret []byte `json:"sealed_secret"`
	Disabled     bool   `json:"disabled,omitempty"`
	// DisabledReason says why Keyport (or its owner) turned it off.
	DisabledReason string `json:"disabled_reason,omitempty"`
	// ConsecutiveFailures counts the failed delivery attempts since the
	// last success.
	ConsecutiveFailures int       `json:"consecutive_failures,omitempty"`
	CreatedAt           time.Time `json:"created_at"`
	UpdatedAt           time.Time `json:"updated_at"`
}

// WebhookDelivery is one delivery attempt, for the webhook's log.
type WebhookDelivery struct {
	// MessageID is the outbox message; EventID the event it carries.
	MessageID string        `json:"message_id"`
	EventID   string        `json:"event_id,omitempty"`
	EventType string        `json:"event_type,omitempty"`
	At        time.Time     `json:"at"`
	Attempt   int           `json:"attempt"`
	Status    int           `json:"status,omitempty"` // the HTTP status; 0 when there was no answer
	Latency   time.Duration `json:"latency"`
	Error     string        `json:"error,omitempty"` // at most MaxOutboxError bytes
}

// MaxWebhookDeliveries is how many attempts a webhook's log keeps: the
// newest ones.
const MaxWebhookDeliveries = 50

// Webhooks persists webhooks and their delivery logs.
type Webhooks interface {
	// CreateWebhook stores a new webhook; a taken ID gives ErrConflict.
	CreateWebhook(ctx context.Context, w Webhook) error
	GetWebhook(ctx context.Context, id string) (Webhook, error)
	// ListWebhooks returns every webhook, oldest first.
	ListWebhooks(ctx context.Context) ([]Webhook, error)
	// ListWebhooksOf returns the webhooks of one owner ("" for the
	// admins' hooks), oldest first.
	ListWebhooksOf(ctx context.Context, ownerUserID string) ([]Webhook, error)
	// UpdateWebhook applies fn to the stored webhook and stores the
	// result, in one transaction; an error from fn changes nothing and is
	// returned. ID, OwnerUserID and CreatedAt stay as stored.
	UpdateWebhook(ctx context.Context, id string, fn func(*Webhook) error) (Webhook, error)
	// DeleteWebhook removes a webhook and its delivery log.
	DeleteWebhook(ctx context.Context, id string) error
	// RecordWebhookDelivery appends d to the webhook's log (keeping the
	// newest MaxWebhookDeliveries) and applies fn (may be nil) to the
	// webhook, in one transaction.
	RecordWebhookDelivery(ctx context.Context, id string, d WebhookDelivery, fn func(*Webhook) error) (Webhook, error)
	// ListWebhookDeliveries returns the webhook's log, newest first.
	ListWebhookDeliveries(ctx context.Context, id string) ([]WebhookDelivery, error)
}
