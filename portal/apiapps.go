package portal

import (
	"cmp"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The management API's apps (OIDC clients): every route calls
// account.ClientService, the rules the console and the command line use
// too. No answer ever holds a secret's hash; a plain secret appears only
// in the answer that made it (create, rotate-secret).
func (s *Server) registerAdminClientAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "GET", "/clients", s.apiListClients, apiOp{Summary: "List the apps, those from config.toml (static, read-only) included", Response: listJSON[clientJSON]{}})
	at.addAPI(levelAdminAPI, "POST", "/clients", s.apiCreateClient, apiOp{Summary: "Register an app; a confidential app's secret is in this answer only", Body: newClientJSON{}, Response: createdClientJSON{}, Status: http.StatusCreated, ETag: true})
	at.addAPI(levelAdminAPI, "GET", "/clients/{id}", s.apiGetClient, apiOp{Summary: "One app (never its secret)", Response: clientJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "PATCH", "/clients/{id}", s.apiPatchClient, apiOp{Summary: "Edit an app; send If-Match with the ETag you read, or get 412 if someone changed it since", Body: clientPatchJSON{}, Response: clientJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "DELETE", "/clients/{id}", s.apiDeleteClient, apiOp{Summary: "Remove an app; its tokens stop working"})
	at.addAPI(levelAdminAPI, "POST", "/clients/{id}/rotate-secret", s.apiRotateClientSecret, apiOp{Summary: "Give a confidential app a new secret (in this answer only); the old one keeps working for grace_seconds; revoke_tokens also revokes every token issued to the app so far", Body: rotateSecretJSON{}, Response: rotatedSecretJSON{}, ETag: true})
}

// clientJSON is an app as administrators see it: never a secret or its
// hash. Lifetimes are in seconds, 0 meaning the server's default.
type clientJSON struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name"`
	Public                 bool     `json:"public"`
	RedirectURIs           []string `json:"redirect_uris"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris"`
	GrantTypes             []string `json:"grant_types"`
	AllowedScopes          []string `json:"allowed_scopes"` // empty: every scope the provider supports
	AllowedGroups          []string `json:"allowed_groups"` // empty: every user may sign in
	SkipConsent            bool     `json:"skip_consent"`
	AccessTokenJWT         bool     `json:"access_token_jwt"`
	AccessTokenLifetime    int64    `json:"access_token_lifetime"`
	IDTokenLifetime        int64    `json:"id_token_lifetime"`
	RefreshTokenLifetime   int64    `json:"refresh_token_lifetime"`
	HasSecret              bool     `json:"has_secret"`
	// PreviousSecretUntil is when the secret a rotation replaced stops
	// working; absent when there is none in force.
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
	// Static apps come from config.toml and are changed there only.
	Static    bool       `json:"static"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`

	// Logout to the app (OpenID Connect Front-Channel and Back-Channel
	// Logout 1.0); "" for none.
	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required"`
	BackchannelLogoutURI              string `json:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required"`

	// Client authentication (RFC 7591 names): "" is a secret sent by
	// HTTP Basic or in the form; jwks or jwks_uri hold the app's public
	// keys.
	TokenEndpointAuthMethod string      `json:"token_endpoint_auth_method"`
	JWKS                    *jwkSetJSON `json:"jwks,omitempty"`
	JWKSURI                 string      `json:"jwks_uri"`
	// The app's authorization requests must be pushed (RFC 9126 §6).
	RequirePushedAuthorizationRequests bool `json:"require_pushed_authorization_requests"`
	// IDTokenSignedResponseAlg signs the app's ID tokens: RS256, ES256 or
	// EdDSA; "" for the server's [keys] algorithm.
	IDTokenSignedResponseAlg string `json:"id_token_signed_response_alg"`
	// UserinfoSignedResponseAlg makes userinfo answer the app with a JWT
	// of this algorithm; "" answers with JSON.
	UserinfoSignedResponseAlg string `json:"userinfo_signed_response_alg"`

	// TokenExchangeAudiences: what the app may exchange a user's access
	// token for (RFC 8693), other apps' IDs or resource URIs; empty: none.
	TokenExchangeAudiences []string `json:"token_exchange_audiences"`
	// The app's authorization requests must be signed request objects
	// (RFC 9101 §10.5).
	RequireSignedRequestObject bool `json:"require_signed_request_object"`

	// Pairwise subjects (OpenID Connect Core 1.0 §8): "public" or
	// "pairwise"; the sector_identifier_uri, whose document must list
	// every redirect URI.
	SubjectType         string `json:"subject_type"`
	SectorIdentifierURI string `json:"sector_identifier_uri"`

	// Resources: the resource URIs the app may ask access tokens for
	// (RFC 8707 resource indicators); empty: none.
	Resources []string `json:"resources"`

	// DPoP (RFC 9449): the app must send proofs with its token requests
	// (RFC 7591's dpop_bound_access_tokens), with the server's nonce.
	DPoPBoundAccessTokens bool `json:"dpop_bound_access_tokens"`
	RequireDPoPNonce      bool `json:"require_dpop_nonce"`

	// Dynamic client registration: the app registered itself (RFC 7591),
	// and waits for an administrator's approval (POST
	// /clients/{id}/approve) before anyone can use it.
	Registered      bool `json:"registered"`
	PendingApproval bool `json:"pending_approval"`

	// CustomClaims map user data to claims of the app's own naming, each
	// released by a scope, in the tokens "in" lists.
	CustomClaims []claimMappingJSON `json:"custom_claims"`
}

// claimMappingJSON is one custom claim of an app (account/customclaims.go).
type claimMappingJSON struct {
	// Claim is the claim's name; registered and Keyport's own are refused.
	Claim string `json:"claim"`
	// Source: "app_metadata.<key>", "roles", "groups", or a profile field
	// such as "email".
	Source string `json:"source"`
	// Scope releases the claim; one not among the standard ones becomes
	// a scope the app may ask for.
	Scope string `json:"scope"`
	// In: any of "id_token", "userinfo", "access_token"; empty or absent:
	// id_token and userinfo.
	In []string `json:"in,omitempty"`
}

// claimMappingsView is an app's custom claims as the API shows them.
func claimMappingsView(ms []storage.ClaimMapping) []claimMappingJSON {
	out := make([]claimMappingJSON, 0, len(ms))
	for _, m := range ms {
		out = append(out, claimMappingJSON{Claim: m.Claim, Source: m.Source, Scope: m.Scope, In: nonNilStrings(m.In)})
	}
	return out
}

// claimMappingsRecord is custom claims from a request as the account
// rules take them.
func claimMappingsRecord(ms []claimMappingJSON) []storage.ClaimMapping {
	out := make([]storage.ClaimMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, storage.ClaimMapping{Claim: m.Claim, Source: m.Source, Scope: m.Scope, In: m.In})
	}
	return out
}

// jwkSetJSON is a JWK Set (RFC 7517 §5); an empty one in a patch clears
// the app's keys.
type jwkSetJSON struct {
	Keys []map[string]any `json:"keys"`
}

// jwksView is the stored JWK Set c as the API shows it.
func jwksView(raw json.RawMessage) *jwkSetJSON {
	if len(raw) == 0 {
		return nil
	}
	var set jwkSetJSON
	if json.Unmarshal(raw, &set) != nil {
		return nil
	}
	return &set
}

// jwksRecord is a JWK Set from a request as the account rules take it: nil
// (or no keys) for none.
func (j *jwkSetJSON) record() json.RawMessage {
	if j == nil || len(j.Keys) == 0 {
		return nil
	}
	raw, err := json.Marshal(j)
	if err != nil {
		return nil // decoded from JSON: cannot fail
	}
	return raw
}

func (s *Server) clientView(c storage.Client) clientJSON {
	out := clientJSON{
		ID: c.ID, Name: c.Name, Public: c.Public,
		RedirectURIs: nonNilStrings(c.RedirectURIs), PostLogoutRedirectURIs: nonNilStrings(c.PostLogoutRedirectURIs),
		GrantTypes: nonNilStrings(c.GrantTypes), AllowedScopes: nonNilStrings(c.AllowedScopes), AllowedGroups: nonNilStrings(c.AllowedGroups),
		SkipConsent: c.SkipConsent, AccessTokenJWT: c.AccessTokenJWT,
		AccessTokenLifetime: int64(c.AccessTokenLifetime / time.Second), IDTokenLifetime: int64(c.IDTokenLifetime / time.Second),
		RefreshTokenLifetime: int64(c.RefreshTokenLifetime / time.Second),
		HasSecret:            c.SecretHash != "", Static: c.Static,
		CreatedAt: optionalTime(c.CreatedAt), UpdatedAt: optionalTime(c.UpdatedAt),
	}
	if c.PreviousSecretHash != "" && c.PreviousSecretUntil.After(s.now()) {
		out.PreviousSecretUntil = optionalTime(c.PreviousSecretUntil)
	}
	out.FrontchannelLogoutURI, out.FrontchannelLogoutSessionRequired = c.FrontchannelLogoutURI, c.FrontchannelLogoutSessionRequired
	out.BackchannelLogoutURI, out.BackchannelLogoutSessionRequired = c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired
	out.TokenEndpointAuthMethod, out.JWKS, out.JWKSURI = c.TokenEndpointAuthMethod, jwksView(c.JWKS), c.JWKSURI
	out.RequirePushedAuthorizationRequests = c.RequirePushedAuthorizationRequests
	out.IDTokenSignedResponseAlg, out.UserinfoSignedResponseAlg = c.IDTokenSignedResponseAlg, c.UserinfoSignedResponseAlg
	out.TokenExchangeAudiences = nonNilStrings(c.TokenExchangeAudiences)
	out.RequireSignedRequestObject = c.RequireSignedRequestObject
	out.DPoPBoundAccessTokens, out.RequireDPoPNonce = c.DPoPBoundAccessTokens, c.RequireDPoPNonce
	out.Registered, out.PendingApproval = c.RegistrationAccessTokenHash != "", c.PendingApproval
	out.CustomClaims = claimMappingsView(c.CustomClaims)
	out.Resources = nonNilStrings(c.Resources)
	out.SubjectType, out.SectorIdentifierURI = cmp.Or(c.SubjectType, account.SubjectPublic), c.SectorIdentifierURI
	return out
}

// newClientJSON is POST /clients. A confidential app without a secret
// gets a generated one.
type newClientJSON struct {
	ID                     string   `json:"id"`
	Name                   string   `json:"name,omitempty"`
	Public                 bool     `json:"public,omitempty"`
	RedirectURIs           []string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs []string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             []string `json:"grant_types,omitempty"` // default: authorization_code, refresh_token
	AllowedScopes          []string `json:"allowed_scopes,omitempty"`
	AllowedGroups          []string `json:"allowed_groups,omitempty"`
	SkipConsent            bool     `json:"skip_consent,omitempty"`
	AccessTokenJWT         bool     `json:"access_token_jwt,omitempty"`
	AccessTokenLifetime    int64    `json:"access_token_lifetime,omitempty"`
	IDTokenLifetime        int64    `json:"id_token_lifetime,omitempty"`
	RefreshTokenLifetime   int64    `json:"refresh_token_lifetime,omitempty"`
	Secret                 string   `json:"secret,omitempty"`

	FrontchannelLogoutURI             string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired bool   `json:"frontchannel_logout_session_required,omitempty"`
	BackchannelLogoutURI              string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  bool   `json:"backchannel_logout_session_required,omitempty"`

	TokenEndpointAuthMethod string      `json:"token_endpoint_auth_method,omitempty"`
	JWKS                    *jwkSetJSON `json:"jwks,omitempty"`
	JWKSURI                 string      `json:"jwks_uri,omitempty"`

	RequirePushedAuthorizationRequests bool   `json:"require_pushed_authorization_requests,omitempty"`
	IDTokenSignedResponseAlg           string `json:"id_token_signed_response_alg,omitempty"`
	UserinfoSignedResponseAlg          string `json:"userinfo_signed_response_alg,omitempty"`

	TokenExchangeAudiences []string `json:"token_exchange_audiences,omitempty"`

	RequireSignedRequestObject bool `json:"require_signed_request_object,omitempty"`

	DPoPBoundAccessTokens bool               `json:"dpop_bound_access_tokens,omitempty"`
	RequireDPoPNonce      bool               `json:"require_dpop_nonce,omitempty"`
	CustomClaims          []claimMappingJSON `json:"custom_claims,omitempty"`
	Resources             []string           `json:"resources,omitempty"`

	// "public" (the default) or "pairwise"; a pairwise app with a
	// sector_identifier_uri is registered only if its document lists
	// every redirect URI.
	SubjectType         string `json:"subject_type,omitempty"`
	SectorIdentifierURI string `json:"sector_identifier_uri,omitempty"`
}

// clientPatchJSON is PATCH /clients/{id}: every field left out stays.
type clientPatchJSON struct {
	Name                   *string   `json:"name,omitempty"`
	Public                 *bool     `json:"public,omitempty"`
	RedirectURIs           *[]string `json:"redirect_uris,omitempty"`
	PostLogoutRedirectURIs *[]string `json:"post_logout_redirect_uris,omitempty"`
	GrantTypes             *[]string `json:"grant_types,omitempty"`
	AllowedScopes          *[]string `json:"allowed_scopes,omitempty"`
	AllowedGroups          *[]string `json:"allowed_groups,omitempty"`
	SkipConsent            *bool     `json:"skip_consent,omitempty"`
	AccessTokenJWT         *bool     `json:"access_token_jwt,omitempty"`
	AccessTokenLifetime    *int64    `json:"access_token_lifetime,omitempty"`
	IDTokenLifetime        *int64    `json:"id_token_lifetime,omitempty"`
	RefreshTokenLifetime   *int64    `json:"refresh_token_lifetime,omitempty"`

	// "" clears a logout URI.
	FrontchannelLogoutURI             *string `json:"frontchannel_logout_uri,omitempty"`
	FrontchannelLogoutSessionRequired *bool   `json:"frontchannel_logout_session_required,omitempty"`
	BackchannelLogoutURI              *string `json:"backchannel_logout_uri,omitempty"`
	BackchannelLogoutSessionRequired  *bool   `json:"backchannel_logout_session_required,omitempty"`

	// "" goes back to the default method or clears the URI; a key set
	// without keys clears the keys.
	TokenEndpointAuthMethod *string     `json:"token_endpoint_auth_method,omitempty"`
	JWKS                    *jwkSetJSON `json:"jwks,omitempty"`
	JWKSURI                 *string     `json:"jwks_uri,omitempty"`

	RequirePushedAuthorizationRequests *bool `json:"require_pushed_authorization_requests,omitempty"`
	// "" goes back to the server's [keys] algorithm.
	IDTokenSignedResponseAlg *string `json:"id_token_signed_response_alg,omitempty"`
	// "" goes back to plain JSON at userinfo.
	UserinfoSignedResponseAlg *string `json:"userinfo_signed_response_alg,omitempty"`

	TokenExchangeAudiences *[]string `json:"token_exchange_audiences,omitempty"`

	RequireSignedRequestObject *bool `json:"require_signed_request_object,omitempty"`

	DPoPBoundAccessTokens *bool `json:"dpop_bound_access_tokens,omitempty"`
	RequireDPoPNonce      *bool `json:"require_dpop_nonce,omitempty"`

	// CustomClaims replaces the app's custom claims; [] removes them.
	CustomClaims *[]claimMappingJSON `json:"custom_claims,omitempty"`
	Resources    *[]string           `json:"resources,omitempty"`

	// "public" or "pairwise"; "" clears the sector_identifier_uri.
	SubjectType         *string `json:"subject_type,omitempty"`
	SectorIdentifierURI *string `json:"sector_identifier_uri,omitempty"`
}

type createdClientJSON struct {
	Client clientJSON `json:"client"`
	// Secret is the confidential app's secret, shown only here.
	Secret string `json:"secret,omitempty"`
}

type rotateSecretJSON struct {
	// GraceSeconds is how long the old secret keeps working (0: it
	// stops at once). Required: an outage or a leaked secret's longer
	// life should be a choice, not a default.
	GraceSeconds *int64 `json:"grace_seconds"`
	// RevokeTokens also revokes every access and refresh token issued to
	// the app so far, with the new secret in one transaction: for a
	// secret that leaked. Off by default, as in Keycloak and Auth0.
	RevokeTokens bool `json:"revoke_tokens,omitempty"`
}

type rotatedSecretJSON struct {
	Secret              string     `json:"secret"`
	PreviousSecretUntil *time.Time `json:"previous_secret_until,omitempty"`
}

// seconds turns a lifetime in seconds from a request into a Duration; the
// account rules check its bounds, this only keeps it from overflowing.
func seconds(field string, n int64) (time.Duration, error) {
	if n < 0 || n > math.MaxInt64/int64(time.Second) {
		return 0, account.FieldErrorf(field, "%s must be a number of seconds, 0 for the server's default.", field)
	}
	return time.Duration(n) * time.Second, nil
}

// optionalSeconds is seconds for a patch field that may be absent.
func optionalSeconds(field string, n *int64) (*time.Duration, error) {
	if n == nil {
		return nil, nil
	}
	d, err := seconds(field, *n)
	return &d, err
}

func (b newClientJSON) newClient() (account.NewClient, error) {
	n := account.NewClient{
		ID: b.ID, Name: b.Name, Public: b.Public, RedirectURIs: b.RedirectURIs, PostLogoutRedirectURIs: b.PostLogoutRedirectURIs,
		GrantTypes: b.GrantTypes, AllowedScopes: b.AllowedScopes, AllowedGroups: b.AllowedGroups,
		SkipConsent: b.SkipConsent, AccessTokenJWT: b.AccessTokenJWT, Secret: b.Secret,
	}
	n.FrontchannelLogoutURI, n.FrontchannelLogoutSessionRequired = b.FrontchannelLogoutURI, b.FrontchannelLogoutSessionRequired
	n.BackchannelLogoutURI, n.BackchannelLogoutSessionRequired = b.BackchannelLogoutURI, b.BackchannelLogoutSessionRequired
	n.TokenEndpointAuthMethod, n.JWKS, n.JWKSURI = b.TokenEndpointAuthMethod, b.JWKS.record(), b.JWKSURI
	n.RequirePushedAuthorizationRequests = b.RequirePushedAuthorizationRequests
	n.IDTokenSignedResponseAlg, n.UserinfoSignedResponseAlg = b.IDTokenSignedResponseAlg, b.UserinfoSignedResponseAlg
	n.TokenExchangeAudiences = b.TokenExchangeAudiences
	n.RequireSignedRequestObject = b.RequireSignedRequestObject
	n.DPoPBoundAccessTokens, n.RequireDPoPNonce = b.DPoPBoundAccessTokens, b.RequireDPoPNonce
	n.CustomClaims = claimMappingsRecord(b.CustomClaims)
	n.Resources = b.Resources
	n.SubjectType, n.SectorIdentifierURI = b.SubjectType, b.SectorIdentifierURI
	var err error
	if n.AccessTokenLifetime, err = seconds("access_token_lifetime", b.AccessTokenLifetime); err != nil {
		return n, err
	}
	if n.IDTokenLifetime, err = seconds("id_token_lifetime", b.IDTokenLifetime); err != nil {
		return n, err
	}
	if n.RefreshTokenLifetime, err = seconds("refresh_token_lifetime", b.RefreshTokenLifetime); err != nil {
		return n, err
	}
	return n, nil
}

func (b clientPatchJSON) patch() (account.ClientPatch, error) {
	p := account.ClientPatch{
		Name: b.Name, Public: b.Public, RedirectURIs: b.RedirectURIs, PostLogoutRedirectURIs: b.PostLogoutRedirectURIs,
		GrantTypes: b.GrantTypes, AllowedScopes: b.AllowedScopes, AllowedGroups: b.AllowedGroups,
		SkipConsent: b.SkipConsent, AccessTokenJWT: b.AccessTokenJWT,
	}
	p.FrontchannelLogoutURI, p.FrontchannelLogoutSessionRequired = b.FrontchannelLogoutURI, b.FrontchannelLogoutSessionRequired
	p.BackchannelLogoutURI, p.BackchannelLogoutSessionRequired = b.BackchannelLogoutURI, b.BackchannelLogoutSessionRequired
	p.TokenEndpointAuthMethod, p.JWKSURI = b.TokenEndpointAuthMethod, b.JWKSURI
	if b.JWKS != nil {
		raw := b.JWKS.record()
		p.JWKS = &raw
	}
	p.RequirePushedAuthorizationRequests = b.RequirePushedAuthorizationRequests
	p.IDTokenSignedResponseAlg, p.UserinfoSignedResponseAlg = b.IDTokenSignedResponseAlg, b.UserinfoSignedResponseAlg
	p.TokenExchangeAudiences = b.TokenExchangeAudiences
	p.RequireSignedRequestObject = b.RequireSignedRequestObject
	p.DPoPBoundAccessTokens, p.RequireDPoPNonce = b.DPoPBoundAccessTokens, b.RequireDPoPNonce
	if b.CustomClaims != nil {
		ms := claimMappingsRecord(*b.CustomClaims)
		p.CustomClaims = &ms
	}
	p.Resources = b.Resources
	p.SubjectType, p.SectorIdentifierURI = b.SubjectType, b.SectorIdentifierURI
	var err error
	if p.AccessTokenLifetime, err = optionalSeconds("access_token_lifetime", b.AccessTokenLifetime); err != nil {
		return p, err
	}
	if p.IDTokenLifetime, err = optionalSeconds("id_token_lifetime", b.IDTokenLifetime); err != nil {
		return p, err
	}
	if p.RefreshTokenLifetime, err = optionalSeconds("refresh_token_lifetime", b.RefreshTokenLifetime); err != nil {
		return p, err
	}
	return p, nil
}

func (s *Server) apiListClients(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	cs, err := s.acct.Clients.ListClients(r.Context())
	if err != nil {
		return err
	}
	items := make([]clientJSON, 0, len(cs))
	for _, c := range cs {
		items = append(items, s.clientView(c))
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
	return nil
}

func (s *Server) apiCreateClient(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	var b newClientJSON
	if ok, err := s.apiDecode(w, r, &b); !ok {
		return err
	}
	n, err := b.newClient()
	if err != nil {
		return err
	}
	c, secret, err := s.acct.Clients.RegisterClient(r.Context(), a, n)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/clients/"+url.PathEscape(c.ID))
	writeWithETag(w, http.StatusCreated, account.ClientETag(c), createdClientJSON{Client: s.clientView(c), Secret: secret})
	return nil
}

func (s *Server) apiGetClient(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	id, err := pathID(r, "app")
	if err != nil {
		return err
	}
	c, etag, err := s.acct.Clients.GetClient(r.Context(), id)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, etag, s.clientView(c))
	return nil
}

func (s *Server) apiPatchClient(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "app")
	if err != nil {
		return err
	}
	match, err := ifMatch(r)
	if err != nil {
		return err
	}
	var b clientPatchJSON
	if ok, err := s.apiDecode(w, r, &b); !ok {
		return err
	}
	p, err := b.patch()
	if err != nil {
		return err
	}
	c, etag, err := s.acct.Clients.UpdateClient(r.Context(), a, id, match, p)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, etag, s.clientView(c))
	return nil
}

func (s *Server) apiDeleteClient(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "app")
	if err != nil {
		return err
	}
	if err := s.acct.Clients.DeleteClient(r.Context(), a, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiRotateClientSecret(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "app")
	if err != nil {
		return err
	}
	var b rotateSecretJSON
	if ok, err := s.apiDecode(w, r, &b); !ok {
		return err
	}
	if b.GraceSeconds == nil {
		return account.FieldErrorf("grace_seconds", "Say how long the old secret keeps working, in seconds (0: it stops at once).")
	}
	grace, err := seconds("grace_seconds", *b.GraceSeconds)
	if err != nil {
		return err
	}
	secret, err := s.acct.Clients.RotateSecret(r.Context(), a, id, grace, b.RevokeTokens)
	if err != nil {
		if account.ErrorField(err) == "grace" {
			return account.FieldErrorf("grace_seconds", "%s", account.ErrorMessage(err))
		}
		return err
	}
	c, etag, err := s.acct.Clients.GetClient(r.Context(), id)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, etag, rotatedSecretJSON{Secret: secret, PreviousSecretUntil: s.clientView(c).PreviousSecretUntil})
	return nil
}
