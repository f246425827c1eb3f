package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// errNotOurToken: the value is not a live access token of this provider.
// It is a storage.ErrNotFound to callers outside the provider
// (ReadAccessToken's, the management API), which tell it from a store
// failure by that.
var errNotOurToken = fmt.Errorf("not a live access token: %w", storage.ErrNotFound)

// ReadAccessToken returns the live access token raw stands for: an opaque
// token (sealed "ID:subject") or a JWT signed by one of our keys and naming
// us as issuer. For a stored token the record decides (liveAccessToken), so
// a revoked or expired token, one of a blocked user or one whose app
// password was revoked, is refused even when its JWT still verifies. A
// stateless token (statelessPrefix) is refused: the portal's management
// API, which uses this to accept apps' client_credentials tokens, takes
// stored ones only. The error is errNotOurToken for a token that is not a
// live one, another one when the store could not tell.
func (p *Provider) ReadAccessToken(ctx context.Context, raw string) (storage.AccessToken, error) {
	id, subject, err := p.accessTokenID(ctx, raw)
	if err != nil {
		return storage.AccessToken{}, err
	}
	if isStateless(id) {
		// A stateless token never carries a management scope
		// (issuesStateless): the API takes stored tokens only.
		return storage.AccessToken{}, errNotOurToken
	}
	t, _, c, err := p.storage.liveAccessToken(ctx, id, subject)
	if err != nil {
		return storage.AccessToken{}, err
	}
	if t.DPoPJKT != "" {
		// A DPoP-bound token is good only with a proof of its key (RFC
		// 9449 §7.1), which the management API does not take.
		return storage.AccessToken{}, errNotOurToken
	}
	if !slices.Contains(t.Audience, t.ClientID) {
		// A token for other resources (RFC 8707, resources.go): those
		// may present it, so it must not work here too.
		return storage.AccessToken{}, errNotOurToken
	}
	// The app's rules as they are now, not as they were when the token
	// was issued: a scope an admin took from the app (keyport:admin above
	// all) stops working at once, as a refresh would no longer issue it.
	t.Scopes = liveScopes(c, t.Scopes)
	return t, nil
}

// liveAccessToken is the one reading of whether the access token with ID
// id, presented as naming subject, is still good. Every reader of a
// presented token (userinfo, introspection, token exchange's subject
// token, the management API's ReadAccessToken) asks here and adds only
// its own rules, so a token that is dead at one is dead at all.
//
// A token is dead when it is unknown or revoked (a stateless one: its
// tombstone is stored, or its app revoked its tokens since, statelessToken);
// names another subject; has expired by the provider's clock (the store
// hides what its own clock says expired, but the provider's decides, as
// for everything it issues); its user is gone, blocked or disabled; it
// was issued for an app password that is revoked, deleted or expired
// (credentialLive); its app is gone or held for approval again
// (getClient); or it was issued to an earlier app of the same ID
// (issuedBefore). It comes with its user (zero for an app's own token)
// and its app as they are now.
//
// The error is errNotOurToken for a dead token, another one when the
// store could not tell: a reader answers a dead token as it answers a
// token it does not know (never with a 5xx), and logs the other.
func (s *opStorage) liveAccessToken(ctx context.Context, id, subject string) (storage.AccessToken, storage.User, storage.Client, error) {
	dead := func() (storage.AccessToken, storage.User, storage.Client, error) {
		return storage.AccessToken{}, storage.User{}, storage.Client{}, errNotOurToken
	}
	if isStateless(id) {
		// Not stored: its claims stand for the record, read from the JWT
		// the request presented (introspection only; anywhere else it is
		// not ours), and statelessToken applies the rules that fit an
		// app's own token (expiry, app, revocation).
		t, c, err := s.presentedStateless(ctx, id)
		if err != nil {
			return storage.AccessToken{}, storage.User{}, storage.Client{}, err
		}
		if t.Subject != subject {
			return dead()
		}
		return t, storage.User{}, c, nil
	}
	// The token, its user and its app password in one read (one query on
	// PostgreSQL).
	t, u, cred, err := s.store.GetAccessTokenAndUser(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrInvalid):
		return dead()
	case err != nil:
		return storage.AccessToken{}, storage.User{}, storage.Client{}, fmt.Errorf("load access token %q: %w", id, err)
	}
	now := s.now()
	if t.Subject != subject || !now.Before(t.ExpiresAt) {
		return dead()
	}
	if t.UserID != "" && (u.ID != t.UserID || account.CheckActive(u) != nil) {
		// A person's token ends when the person is blocked or deleted.
		return dead()
	}
	if !credentialLive(t, cred, now) {
		return dead() // its app password was revoked, deleted or expired
	}
	// The app the token was issued to must still be one: deleted, or held
	// for an administrator's approval again (getClient hides it), its
	// tokens are dead, and live again once it is approved.
	c, err := s.getClient(ctx, t.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return dead()
	}
	if err != nil {
		return storage.AccessToken{}, storage.User{}, storage.Client{}, fmt.Errorf("load app %q of access token %q: %w", t.ClientID, t.ID, err)
	}
	if issuedBefore(t, c) {
		// Issued to an app of this ID that was deleted since (a grant
		// that authenticated it before the deletion and stored its token
		// after): the app registered again under it is another one.
		return dead()
	}
	return t, u, c, nil
}

// credentialLive tells whether the app password token t was issued for
// (storage.AccessToken.CredentialID) is still live: c is that credential
// as the store read it with the token (GetAccessTokenAndUser), zero when
// it is revoked, deleted or expired by the store's clock; the provider's
// clock decides too, as it does for the token itself. A token issued for
// none is. So a revoked app password's tokens stop working at once
// without the store having to find and delete them, and without a read
// of their own.
func credentialLive(t storage.AccessToken, c storage.Credential, now time.Time) bool {
	if t.CredentialID == "" {
		// An app password's token issued before the credential was kept
		// on it cannot show its app password is live: it ends (it lives
		// an access token's lifetime at most; the app exchanges again).
		return !t.AppPassword
	}
	expired := !c.ExpiresAt.IsZero() && !now.Before(c.ExpiresAt)
	return c.ID == t.CredentialID && c.UserID == t.UserID && c.Kind == storage.KindAppPassword && !expired
}

// issuedBefore tells whether token t was issued before app c was created:
// to an app of the same ID that was deleted since. A stateless token's
// issue time has milliseconds only (statelessToken): one issued in the
// same millisecond as the app's creation counts as the app's.
func issuedBefore(t storage.AccessToken, c storage.Client) bool {
	return t.CreatedAt.Before(c.CreatedAt.Truncate(time.Millisecond))
}

// revokedWithApp tells whether stateless token t was issued before its
// app's tokens were last revoked (storage.Client.TokensRevokedAt). One
// issued in that very millisecond stays, as a stored token whose grant
// authenticated just before the revocation's commit and stored it just
// after does.
func revokedWithApp(t storage.AccessToken, c storage.Client) bool {
	if c.TokensRevokedAt.IsZero() {
		return false
	}
	return t.CreatedAt.Before(c.TokensRevokedAt.Truncate(time.Millisecond))
}

// statelessPrefix starts the ID (jti) of an access token that is not
// stored: a JWT access token of the client_credentials grant. It carries
// everything a resource server and introspection need (app, scopes,
// audience, expiry, DPoP key) under our signature, and there is no user,
// session or refresh family whose end would have to end it, so storing it
// bought nothing but a disk commit on every grant, which bounded the grant
// by the disk's sync latency. Revoking one (RFC 7009) stores a tombstone
// under its ID until it expires. The dot keeps the prefix out of the
// alphabet of stored token IDs (account.NewOrderedID).
const statelessPrefix = "s."

func isStateless(id string) bool { return strings.HasPrefix(id, statelessPrefix) }

// issuesStateless tells whether the access token of this grant goes
// unstored: a client_credentials grant of an app with JWT access tokens,
// unless it carries a scope of the management API. Keyport's own API
// takes stored tokens only (ReadAccessToken), so that a signature alone,
// which a leaked signing key could make, never opens it.
func (s *opStorage) issuesStateless(ctx context.Context, req op.TokenRequest) bool {
	r, ok := req.(*machineRequest)
	if !ok || slices.ContainsFunc(r.scopes, account.IsManagementScope) {
		return false
	}
	c, err := s.getClient(ctx, r.clientID)
	return err == nil && c.AccessTokenJWT
}

// statelessToken is the record a stateless access token's verified claims
// stand for. It gives errNotOurToken when the token was revoked (its
// tombstone is stored), has expired, names a management scope, or its app
// is gone, is another app of the same ID, revoked its tokens since, or
// never had stateless tokens; another error when the store cannot tell.
// It comes with its app as it is now.
func (s *opStorage) statelessToken(ctx context.Context, claims *oidc.AccessTokenClaims) (storage.AccessToken, storage.Client, error) {
	t := storage.AccessToken{
		ID:        claims.JWTID,
		ClientID:  claims.ClientID,
		Subject:   claims.Subject,
		Scopes:    claims.Scopes,
		Audience:  claims.Audience,
		ExpiresAt: claims.Expiration.AsTime(),
	}
	// Issued at its ordered ID's time, to the millisecond (its iat has
	// whole seconds only), which the provider's clock made (accessFor).
	issued, ok := account.OrderedIDTime(strings.TrimPrefix(t.ID, statelessPrefix))
	if !ok {
		return storage.AccessToken{}, storage.Client{}, errNotOurToken
	}
	t.CreatedAt = issued
	if cnf, ok := claims.Claims["cnf"].(map[string]any); ok {
		t.DPoPJKT, _ = cnf["jkt"].(string)
	}
	if t.ClientID == "" || t.Subject != t.ClientID || !s.now().Before(t.ExpiresAt) || slices.ContainsFunc(t.Scopes, account.IsManagementScope) {
		return storage.AccessToken{}, storage.Client{}, errNotOurToken
	}
	if _, err := s.store.GetAccessToken(ctx, t.ID); err == nil {
		return storage.AccessToken{}, storage.Client{}, errNotOurToken // revoked
	} else if !errors.Is(err, storage.ErrNotFound) {
		return storage.AccessToken{}, storage.Client{}, fmt.Errorf("look for the revocation of access token %q: %w", t.ID, err)
	}
	c, err := s.getClient(ctx, t.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.AccessToken{}, storage.Client{}, errNotOurToken
	}
	if err != nil {
		return storage.AccessToken{}, storage.Client{}, fmt.Errorf("load client %q of access token %q: %w", t.ClientID, t.ID, err)
	}
	if !c.AccessTokenJWT || !slices.Contains(c.GrantTypes, account.GrantClientCredentials) || issuedBefore(t, c) || revokedWithApp(t, c) {
		return storage.AccessToken{}, storage.Client{}, errNotOurToken
	}
	return t, c, nil
}

// withPresentedToken keeps the token an introspection or revocation
// request presents, for opStorage's SetIntrospectionFromToken and
// RevokeToken: zitadel hands them only the token's ID, once it has
// authenticated the caller, and only then is a stateless token read from
// its claims (presentedStateless), so an unauthenticated caller costs no
// signature check or read.
func withPresentedToken(r *http.Request) *http.Request {
	raw := r.PostForm.Get("token")
	if strings.Count(raw, ".") != 2 || len(raw) > 8192 {
		return r
	}
	return r.WithContext(context.WithValue(r.Context(), presentedKey{}, raw))
}

type presentedKey struct{}

// presentedStateless reads the stateless token with this ID that the
// request presented (withPresentedToken): errNotOurToken when it presented
// no such token or the token is not live, another error when the store
// could not tell. Its claims are read without checking the signature
// again: zitadel's introspection and revocation handlers name a JWT's ID
// here only after verifying that very token (getTokenIDAndSubject), and an
// ID taken from anything else (an opaque token, or a refresh token's value
// at revocation) is not the jti of the JWT presented.
func (s *opStorage) presentedStateless(ctx context.Context, id string) (storage.AccessToken, storage.Client, error) {
	raw, _ := ctx.Value(presentedKey{}).(string)
	if !isStateless(id) || raw == "" {
		return storage.AccessToken{}, storage.Client{}, errNotOurToken
	}
	parts := strings.Split(raw, ".") // three: withPresentedToken
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return storage.AccessToken{}, storage.Client{}, errNotOurToken
	}
	claims := new(oidc.AccessTokenClaims)
	if err := json.Unmarshal(payload, claims); err != nil || claims.JWTID != id {
		return storage.AccessToken{}, storage.Client{}, errNotOurToken
	}
	return s.statelessToken(ctx, claims)
}

// liveScopes narrows a token's scopes to those app c may still receive:
// its allowed scopes, and the management API's only where they name them
// (as ClientCredentialsTokenRequest grants them).
func liveScopes(c storage.Client, scopes []string) []string {
	return slices.DeleteFunc(allowedScopes(c, scopes), func(sc string) bool {
		return account.IsManagementScope(sc) && !slices.Contains(c.AllowedScopes, sc)
	})
}

// accessTokenID finds the token ID and subject in an opaque or JWT token,
// as zitadel's userinfo endpoint does.
func (p *Provider) accessTokenID(ctx context.Context, raw string) (id, subject string, err error) {
	id, subject, _, err = p.presentedToken(ctx, raw)
	return id, subject, err
}

// presentedToken is accessTokenID with, for a JWT, its verified claims
// (nil for an opaque token).
func (p *Provider) presentedToken(ctx context.Context, raw string) (id, subject string, claims *oidc.AccessTokenClaims, err error) {
	if plain, err := p.op.Crypto().Decrypt(raw); err == nil {
		id, subject, ok := strings.Cut(plain, ":")
		if !ok || id == "" || isStateless(id) {
			return "", "", nil, errNotOurToken
		}
		return id, subject, nil, nil
	}
	if strings.Count(raw, ".") != 2 {
		return "", "", nil, errNotOurToken
	}
	// The verifier takes the issuer it expects from the context, which
	// only requests through the provider's own handler carry: the
	// management API's do not, and without it every JWT was refused.
	ctx = op.ContextWithIssuer(ctx, p.opts.Issuer)
	claims, err = op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, raw, p.op.AccessTokenVerifier(ctx))
	if err != nil || claims.JWTID == "" {
		return "", "", nil, errNotOurToken
	}
	if exp := claims.GetExpiration(); !exp.IsZero() && !p.opts.Now().Before(exp.Add(time.Second)) {
		return "", "", nil, errNotOurToken
	}
	return claims.JWTID, claims.Subject, claims, nil
}

// revokeStateless revokes the stateless access token with this ID (RFC
// 7009) by storing its tombstone, which statelessToken finds, until the
// token expires and the sweep takes both. A token that is unknown, expired
// or revoked already is not an error (§2.2).
func (s *opStorage) revokeStateless(ctx context.Context, id, clientID string) *oidc.Error {
	t, _, err := s.presentedStateless(ctx, id)
	if errors.Is(err, errNotOurToken) {
		return nil
	}
	if err != nil {
		// Not "unknown": the app must learn that its token may still
		// work, and try again.
		return s.internal(ctx, "read the access token to revoke", err)
	}
	if t.ClientID != clientID {
		return oidc.ErrUnauthorizedClient().WithDescription("token was not issued to this client")
	}
	// Kept a minute past the token's expiry: a replica whose clock runs
	// a little behind the one that sweeps still finds it.
	tombstone := storage.AccessToken{ID: t.ID, ClientID: t.ClientID, Subject: t.Subject, CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt.Add(time.Minute)}
	if err := s.store.CreateTokens(ctx, tombstone, nil); err != nil {
		if _, gerr := s.store.GetAccessToken(ctx, id); gerr == nil {
			return nil // a concurrent revocation stored it first
		}
		return s.internal(ctx, "revoke access token", err)
	}
	return nil
}
