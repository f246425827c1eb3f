package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	httphelper "github.com/zitadel/oidc/v3/pkg/http"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// serveClientCredentials answers the client_credentials grant (RFC 6749
// §4.4) with the same steps, checks and answers as zitadel's handler
// (the opStorage methods it calls are the ones zitadel calls), but builds
// and signs a JWT access token itself (machineJWT): zitadel's JWT path
// marshalled its claims twice and made a go-jose signer per token, which
// together cost about as much CPU as the ES256 signature, on the grant
// machines call most.
func (p *Provider) serveClientCredentials(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Origin") != "" {
		dpopCORSHandler.HandlerFunc(w, r) // as zitadel's router would (dpophttp.go)
	}
	rec := newRecorder()
	resp, err := p.clientCredentialsGrant(r)
	if err != nil {
		op.RequestError(rec, r, err, nil)
	} else {
		httphelper.MarshalJSON(rec, resp)
	}
	answerTargetRefusal(r, rec) // resources.go
	if refused := clientAuthNoteFrom(r.Context()).get(); refused != nil {
		writeThrottled(w, refused)
		return
	}
	p.finish(w, r, "/oauth/token", rec)
}

// clientCredentialsGrant authenticates the client and issues its token.
func (p *Provider) clientCredentialsGrant(r *http.Request) (*oidc.AccessTokenResponse, error) {
	ctx := r.Context()
	if presentsAssertion(r.Form) {
		// The middleware replaces a checked assertion with the client it
		// authenticated (clientassertion.go).
		return nil, oidc.ErrInvalidClient().WithDescription("the client assertion was not checked")
	}
	id, secret, credErr := clientCredentials(r) // tokenclient.go
	if credErr != nil {
		return nil, credErr
	}
	c, err := p.storage.ClientCredentials(ctx, id, secret)
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.ServerError {
			return nil, oidc.ErrServerError().WithParent(err)
		}
		return nil, oidc.ErrInvalidClient().WithParent(err)
	}
	if !op.ValidateGrantType(c, oidc.GrantTypeClientCredentials) {
		return nil, oidc.ErrUnauthorizedClient()
	}
	var scopes []string
	if s := r.Form.Get("scope"); s != "" {
		// As zitadel splits: an empty token inside ("a  b") is refused.
		scopes = strings.Split(s, " ")
	}
	req, err := p.storage.ClientCredentialsTokenRequest(ctx, id, scopes)
	if err != nil {
		return nil, err
	}
	tokenID, exp, err := p.storage.CreateAccessToken(ctx, req)
	if err != nil {
		return nil, err
	}
	var token string
	if c.AccessTokenType() == op.AccessTokenTypeJWT {
		token, err = p.machineJWT(ctx, req, tokenID, exp)
	} else {
		token, err = op.CreateBearerToken(tokenID, req.GetSubject(), p.op.Crypto())
	}
	if err != nil {
		return nil, p.storage.internal(ctx, "issue a client_credentials access token", err)
	}
	return &oidc.AccessTokenResponse{
		AccessToken: token,
		TokenType:   oidc.BearerToken,                        // DPoP when bound (dpopAnswer, in finish)
		ExpiresIn:   uint64(exp.Sub(p.opts.Now()).Seconds()), // the clock exp came from
		Scope:       req.GetScopes(),
	}, nil
}

// machineClaims are the claims of a client_credentials JWT access token:
// zitadel's access token claims (oidc.NewAccessTokenClaims) and the
// private ones Keyport adds to every JWT access token
// (GetPrivateClaimsFromRequest: scope, and cnf when DPoP-bound).
type machineClaims struct {
	Issuer     string        `json:"iss"`
	Subject    string        `json:"sub"`
	Audience   oidc.Audience `json:"aud"`
	Expiration int64         `json:"exp"`
	IssuedAt   int64         `json:"iat"`
	NotBefore  int64         `json:"nbf"`
	ClientID   string        `json:"client_id"`
	JWTID      string        `json:"jti"`
	Scope      string        `json:"scope,omitempty"`
	Cnf        any           `json:"cnf,omitempty"`
}

// machineJWT signs the JWT access token tokenID of client_credentials
// request req, with the key of the app's algorithm.
func (p *Provider) machineJWT(ctx context.Context, req op.TokenRequest, tokenID string, exp time.Time) (string, error) {
	now := p.opts.Now().Unix() // the clock exp and the app's times come from
	claims := machineClaims{
		Issuer:     p.opts.Issuer,
		Subject:    req.GetSubject(),
		Audience:   req.GetAudience(),
		Expiration: exp.Unix(),
		IssuedAt:   now,
		NotBefore:  now,
		ClientID:   req.GetSubject(),
		JWTID:      tokenID,
		Scope:      strings.Join(req.GetScopes(), " "),
	}
	if jkt := dpopBinding(ctx); jkt != "" { // dpop.go
		claims.Cnf = map[string]string{"jkt": jkt}
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("encode the claims: %w", err)
	}
	key, err := p.opts.Keys.signer(ctx, signingNoteFrom(ctx).algorithm()) // signing.go
	if err != nil {
		return "", err
	}
	return key.signCompact(payload)
}
