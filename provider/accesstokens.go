package provider

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// errNotOurToken: the value is not a live access token of this provider.
var errNotOurToken = errors.New("not a live access token")

// ReadAccessToken returns the stored, live access token raw stands for:
// an opaque token (sealed "ID:subject") or a JWT signed by one of our keys
// and naming us as issuer. Either way the stored record decides, so a
// revoked or expired token is refused even when its JWT still verifies.
// The portal's management API uses it to accept apps' client_credentials
// tokens.
func (p *Provider) ReadAccessToken(ctx context.Context, raw string) (storage.AccessToken, error) {
	id, subject, err := p.accessTokenID(ctx, raw)
	if err != nil {
		return storage.AccessToken{}, err
	}
	t, err := p.opts.Store.GetAccessToken(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.AccessToken{}, errNotOurToken
	}
	if err != nil {
		return storage.AccessToken{}, fmt.Errorf("load access token: %w", err)
	}
	if t.Subject != subject || !p.opts.Now().Before(t.ExpiresAt) {
		return storage.AccessToken{}, errNotOurToken
	}
	if t.DPoPJKT != "" {
		// A DPoP-bound token is good only with a proof of its key (RFC
		// 9449 §7.1), which the management API does not take.
		return storage.AccessToken{}, errNotOurToken
	}
	c, err := p.storage.getClient(ctx, t.ClientID)
	if err != nil {
		return storage.AccessToken{}, errNotOurToken // the app was deleted
	}
	if t.CreatedAt.Before(c.CreatedAt) {
		// Issued to an app of this ID that was deleted since: the app
		// registered again under it is another one.
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

// liveScopes narrows a token's scopes to those app c may still receive:
// its allowed scopes, and the management API's only where they name them
// (as ClientCredentialsTokenRequest grants them).
func liveScopes(c storage.Client, scopes []string) []string {
	return slices.DeleteFunc(allowedScopes(c, scopes), func(sc string) bool {
		return (sc == account.ScopeAdmin || sc == account.ScopeAdminRead) && !slices.Contains(c.AllowedScopes, sc)
	})
}

// accessTokenID finds the token ID and subject in an opaque or JWT token,
// as zitadel's userinfo endpoint does.
func (p *Provider) accessTokenID(ctx context.Context, raw string) (id, subject string, err error) {
	if plain, err := p.op.Crypto().Decrypt(raw); err == nil {
		id, subject, ok := strings.Cut(plain, ":")
		if !ok || id == "" {
			return "", "", errNotOurToken
		}
		return id, subject, nil
	}
	if strings.Count(raw, ".") != 2 {
		return "", "", errNotOurToken
	}
	// The verifier takes the issuer it expects from the context, which
	// only requests through the provider's own handler carry: the
	// management API's do not, and without it every JWT was refused.
	ctx = op.ContextWithIssuer(ctx, p.opts.Issuer)
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, raw, p.op.AccessTokenVerifier(ctx))
	if err != nil || claims.JWTID == "" {
		return "", "", errNotOurToken
	}
	if exp := claims.GetExpiration(); !exp.IsZero() && !p.opts.Now().Before(exp.Add(time.Second)) {
		return "", "", errNotOurToken
	}
	return claims.JWTID, claims.Subject, nil
}
