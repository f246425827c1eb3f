package provider

import (
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// Extra scopes clients may ask for beyond the standard OIDC ones.
const scopeGroups = "groups"

// client adapts a storage.Client to op.Client.
type client struct {
	c          storage.Client
	loginURL   string // issuer + "/login?authRequestID="
	idLifetime time.Duration
}

var _ op.Client = (*client)(nil)

func (c *client) GetID() string                    { return c.c.ID }
func (c *client) RedirectURIs() []string           { return c.c.RedirectURIs }
func (c *client) PostLogoutRedirectURIs() []string { return c.c.PostLogoutRedirectURIs }

// ApplicationType decides how zitadel checks redirect URIs. Confidential
// clients are "web". Public clients are "user agent", which keeps matching
// exact, unless they registered a private-use scheme (a native app), where
// RFC 8252 also allows any port on a loopback redirect.
func (c *client) ApplicationType() op.ApplicationType {
	if !c.c.Public {
		return op.ApplicationTypeWeb
	}
	for _, u := range c.c.RedirectURIs {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			return op.ApplicationTypeNative
		}
	}
	return op.ApplicationTypeUserAgent
}

func (c *client) AuthMethod() oidc.AuthMethod {
	if c.c.Public {
		return oidc.AuthMethodNone
	}
	// Basic is the registered method; zitadel also accepts the secret in the
	// form body for it, which is what client_secret_post clients send.
	return oidc.AuthMethodBasic
}

// ResponseTypes is code for an app with the authorization_code grant and
// nothing for any other: zitadel then refuses its authorization requests
// with unauthorized_client (RFC 6749 §4.1.2.1) before anyone signs in for
// a code the token endpoint would refuse.
func (c *client) ResponseTypes() []oidc.ResponseType {
	if !slices.Contains(c.c.GrantTypes, account.GrantAuthorizationCode) {
		return nil
	}
	return []oidc.ResponseType{oidc.ResponseTypeCode}
}

func (c *client) GrantTypes() []oidc.GrantType {
	out := make([]oidc.GrantType, 0, len(c.c.GrantTypes))
	for _, g := range c.c.GrantTypes {
		out = append(out, oidc.GrantType(g))
	}
	return out
}

func (c *client) LoginURL(id string) string { return c.loginURL + id }

func (c *client) AccessTokenType() op.AccessTokenType {
	if c.c.AccessTokenJWT {
		return op.AccessTokenTypeJWT
	}
	return op.AccessTokenTypeBearer
}

func (c *client) IDTokenLifetime() time.Duration { return c.idLifetime }

// DevMode lets zitadel accept an http:// redirect URI for non-web clients.
// It only matters after the URI matched a registered one exactly, so it is
// on when the admin registered an http:// URI on purpose.
func (c *client) DevMode() bool {
	return slices.ContainsFunc(c.c.RedirectURIs, func(u string) bool { return strings.HasPrefix(u, "http://") })
}

func (c *client) RestrictAdditionalIdTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

func (c *client) RestrictAdditionalAccessTokenScopes() func([]string) []string {
	return func(s []string) []string { return s }
}

// IsScopeAllowed lets through, besides the standard scopes zitadel knows,
// groups and the scopes of the app's custom claims (customclaims.go).
func (c *client) IsScopeAllowed(scope string) bool {
	return scope == scopeGroups || account.IsCustomScope(c.c, scope)
}

// IDTokenUserinfoClaimsAssertion puts the scope's claims in the ID token too,
// as most relying parties expect to find email and name there.
func (c *client) IDTokenUserinfoClaimsAssertion() bool { return true }

func (c *client) ClockSkew() time.Duration { return 0 }

// authRequest adapts a storage.AuthRequest to op.AuthRequest. codeHash is
// set when the request was loaded by its code, for the exchange to record
// on the code what it issued.
type authRequest struct {
	a        storage.AuthRequest
	codeHash string
	// issue is, for a redeemed code, the IDs its exchange gives the tokens
	// it stores, chosen at redemption so the redemption names them.
	issue storage.IssuedTokens

	// Resource indicators (resources.go): the resources of the code's
	// access token, and their hand-off to its JWT.
	resources []string
	aud       jwtAudience

	// subject is the sub the app knows the user by (account.Subjects),
	// set for a redeemed code: only its exchange issues tokens.
	subject string
	// sid is the sid the app knows the sign-in's session by
	// (account.ClientSID), set with subject.
	sid string
}

var (
	_ op.AuthRequest    = (*authRequest)(nil)
	_ op.LogAuthRequest = (*authRequest)(nil)
	_ op.ErrAuthRequest = (*authRequest)(nil)
	_ op.IDTokenRequest = (*authRequest)(nil)
	_ op.TokenRequest   = (*authRequest)(nil)
)

// GetACR is the class of authentication that happened, among those the
// request asked for when it meets one (account.ACRFor).
func (r *authRequest) GetACR() string { return account.ACRFor(r.a.AMR, r.a.ACRValues) }

func (r *authRequest) GetID() string          { return r.a.ID }
func (r *authRequest) GetAMR() []string       { return r.a.AMR }
func (r *authRequest) GetAudience() []string  { return r.aud.take([]string{r.a.ClientID}) }
func (r *authRequest) GetAuthTime() time.Time { return r.a.AuthTime }
func (r *authRequest) GetClientID() string    { return r.a.ClientID }
func (r *authRequest) GetNonce() string       { return r.a.Nonce }
func (r *authRequest) GetRedirectURI() string { return r.a.RedirectURI }
func (r *authRequest) GetScopes() []string    { return r.a.Scopes }
func (r *authRequest) GetState() string       { return r.a.State }
func (r *authRequest) GetSubject() string     { return r.subject }
func (r *authRequest) Done() bool             { return r.a.Completed }
func (r *authRequest) GetResponseType() oidc.ResponseType {
	return oidc.ResponseType(r.a.ResponseType)
}

// GetResponseMode answers query for form_post: zitadel then redirects, and
// the middleware turns the redirect into the form (see formpost.go).
func (r *authRequest) GetResponseMode() oidc.ResponseMode {
	if r.a.ResponseMode == string(oidc.ResponseModeFormPost) {
		return oidc.ResponseModeQuery
	}
	return oidc.ResponseMode(r.a.ResponseMode)
}

func (r *authRequest) GetCodeChallenge() *oidc.CodeChallenge {
	if r.a.CodeChallenge == "" {
		return nil
	}
	return &oidc.CodeChallenge{Challenge: r.a.CodeChallenge, Method: oidc.CodeChallengeMethod(r.a.CodeChallengeMethod)}
}

func (r *authRequest) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", r.a.ID), slog.String("client_id", r.a.ClientID))
}

// refreshRequest adapts a refresh token to op.RefreshTokenRequest. retry:
// rt is the successor of the token presented, which was presented again
// within the reuse grace, so rt is handed out again rather than rotated.
type refreshRequest struct {
	rt     storage.RefreshToken
	scopes []string
	retry  bool

	// Resource indicators (resources.go): the resources of this access
	// token, and their hand-off to its JWT.
	resources []string
	aud       jwtAudience

	// subject is the sub the app knows the user by (account.Subjects).
	subject string
}

var _ op.RefreshTokenRequest = (*refreshRequest)(nil)

func (r *refreshRequest) GetAMR() []string            { return r.rt.AMR }
func (r *refreshRequest) GetAudience() []string       { return r.aud.take(r.rt.Audience) }
func (r *refreshRequest) GetAuthTime() time.Time      { return r.rt.AuthTime }
func (r *refreshRequest) GetClientID() string         { return r.rt.ClientID }
func (r *refreshRequest) GetScopes() []string         { return r.scopes }
func (r *refreshRequest) GetSubject() string          { return r.subject }
func (r *refreshRequest) SetCurrentScopes(s []string) { r.scopes = s }

// machineRequest is a client_credentials token request: the client acts for
// itself, so the subject is the client ID.
type machineRequest struct {
	clientID string
	scopes   []string

	// resources the token is for (resources.go); none: the app itself.
	resources []string
}

var _ op.TokenRequest = (*machineRequest)(nil)

func (r *machineRequest) GetSubject() string    { return r.clientID }
func (r *machineRequest) GetAudience() []string { return accessAudience(r.clientID, r.resources) }
func (r *machineRequest) GetScopes() []string   { return r.scopes }
