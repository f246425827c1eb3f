package provider

import (
	"context"
	"errors"
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/storage"
)

// authenticateCodeClient authenticates the client of an authorization_code
// grant before zitadel looks at the code. zitadel redeems the code first and
// checks the client after, so an unknown client got invalid_grant instead of
// invalid_client (RFC 6749 §5.2), and anyone who saw a code could spend it,
// and then make the real exchange look like a replay, without any
// credentials. The credentials are read as zitadel reads them: HTTP Basic
// (form-urlencoded, RFC 6749 §2.3.1), else client_id and client_secret from
// the form, the query string included (zitadel reads r.Form); a public
// client is identified by client_id alone, its codes are bound to it by
// PKCE.
func (p *Provider) authenticateCodeClient(r *http.Request) (string, *oidc.Error) {
	if r.Form.Has("client_assertion") || r.Form.Has("client_assertion_type") {
		return "", oidc.ErrInvalidClient().WithDescription("private_key_jwt is not supported")
	}
	id, secret, basic := r.BasicAuth()
	if basic {
		var err1, err2 error
		id, err1 = url.QueryUnescape(id)
		secret, err2 = url.QueryUnescape(secret)
		if err1 != nil || err2 != nil {
			return "", oidc.ErrInvalidClient().WithDescription("invalid basic auth header")
		}
	} else {
		id, secret = r.Form.Get("client_id"), r.Form.Get("client_secret")
	}
	if err := p.storage.authenticateTokenClient(r.Context(), id, secret); err != nil {
		return "", err
	}
	return id, nil
}

// authenticateTokenClient checks a client at the token endpoint: a public
// one by its ID, a confidential one by its secret too.
func (s *opStorage) authenticateTokenClient(ctx context.Context, id, secret string) *oidc.Error {
	c, err := s.getClient(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return s.internal(ctx, "load client", err)
	}
	if err == nil && c.Public {
		return nil
	}
	if _, err := s.authenticateClient(ctx, id, secret); err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) {
			return oe
		}
		return s.internal(ctx, "authenticate client", err)
	}
	return nil
}

// codeClientKey carries the client authenticateCodeClient authenticated to
// AuthRequestByCode, which redeems only that client's codes.
type codeClientKey struct{}

func withCodeClient(ctx context.Context, clientID string) context.Context {
	return context.WithValue(ctx, codeClientKey{}, clientID)
}

func codeClientFrom(ctx context.Context) (string, bool) {
	id, ok := ctx.Value(codeClientKey{}).(string)
	return id, ok
}
