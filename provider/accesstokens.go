package provider

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

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
	if _, err := p.storage.getClient(ctx, t.ClientID); err != nil {
		return storage.AccessToken{}, errNotOurToken // the app was deleted
	}
	return t, nil
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
	claims, err := op.VerifyAccessToken[*oidc.AccessTokenClaims](ctx, raw, p.op.AccessTokenVerifier(ctx))
	if err != nil || claims.JWTID == "" {
		return "", "", errNotOurToken
	}
	if exp := claims.GetExpiration(); !exp.IsZero() && !p.opts.Now().Before(exp.Add(time.Second)) {
		return "", "", errNotOurToken
	}
	return claims.JWTID, claims.Subject, nil
}
