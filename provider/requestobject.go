package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// Request objects (RFC 9101, OpenID Connect Core §6.1): an app may send
// its authorization request as a JWT it signed, in the request parameter,
// at /authorize or at the pushed authorization request endpoint. Keyport
// verifies it here, with the keys the app authenticates with (its jwks
// or jwks_uri; its secret for a client_secret_jwt app, HS256), and then
// puts the object's parameters in the request's form in place of the ones
// sent beside it, so every later check (checkAuthorizeParams, the claims
// parameter, zitadel's validation, the pushed request's storage) sees
// them as if they had been sent plainly. zitadel's own request-object
// support (op.ParseRequestObject) checks no signature and stays off.
//
// As RFC 9101 §5 says, only the object's parameters count: those beside
// it are ignored, except client_id, which must name the object's issuer,
// and response_type, which OpenID Connect Core §6.1 lets an app repeat
// outside and which must then match (as node oidc-provider checks).
// Encrypted request objects (JWE) are refused, and so is a request_uri
// other than one from the pushed authorization request endpoint. A
// replayed object is not refused: it is bounded by its exp, and it
// starts one more sign-in of the same app with the same state and nonce,
// as reloading the page would.

// Bounds of a request object.
const (
	// maxRequestObjectBytes bounds the request parameter. The largest
	// honest request (every stored parameter at its limit, a claims
	// parameter of 4 KiB) signed with RSA 4096 stays under it.
	maxRequestObjectBytes = 16 << 10
	// maxRequestObjectLifetime is how far ahead an object's exp may be:
	// it is made for one request, like a client assertion.
	maxRequestObjectLifetime = maxAssertionLifetime
)

// errInvalidRequestObject is RFC 9101 §7's error code.
const errInvalidRequestObject = "invalid_request_object"

// RequestObjectAlgorithms are the algorithms of the request objects
// Keyport accepts: those of private_key_jwt, and HS256 for
// client_secret_jwt apps.
var RequestObjectAlgorithms = append(slices.Clone(AssertionAlgorithms), jose.HS256)

// requestObjectClaims are the JWT claims of a request object that are not
// authorization request parameters: they are checked, not passed on.
var requestObjectClaims = []string{"iss", "aud", "exp", "nbf", "iat", "jti", "sub"}

func badRequestObject(format string, args ...any) *oidc.Error {
	return &oidc.Error{ErrorType: errInvalidRequestObject, Description: "request object refused: " + fmt.Sprintf(format, args...)}
}

// openRequestObject verifies the request object raw, sent by (or for)
// app clientID, and returns the authorization request parameters it
// holds. A refusal is an invalid_request_object error; a failure of
// Keyport's own is a server_error.
func (s *opStorage) openRequestObject(ctx context.Context, raw, clientID string) (url.Values, *oidc.Error) {
	if len(raw) > maxRequestObjectBytes {
		return nil, badRequestObject("it is longer than %d bytes", maxRequestObjectBytes)
	}
	if strings.Count(raw, ".") == 4 {
		return nil, badRequestObject("encrypted request objects (JWE) are not supported: send it signed only")
	}
	jws, err := jose.ParseSignedCompact(raw, RequestObjectAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, badRequestObject("it is not a JWT signed with %s", algNames(RequestObjectAlgorithms))
	}
	header := jws.Signatures[0].Header
	if typ, _ := header.ExtraHeaders[jose.HeaderType].(string); !requestObjectType(typ) {
		// Another kind of JWT (an access token, a DPoP proof, a client
		// assertion that says so) is not a request (RFC 9101 §10.8).
		return nil, badRequestObject("typ must be oauth-authz-req+jwt or JWT")
	}
	payload := jws.UnsafePayloadWithoutVerification()
	var params map[string]json.RawMessage
	var claims jwt.Claims
	if json.Unmarshal(payload, &params) != nil || params == nil || json.Unmarshal(payload, &claims) != nil {
		return nil, badRequestObject("its claims are not a JSON object of JWT claims")
	}
	switch {
	case claims.Issuer != clientID:
		return nil, badRequestObject("iss must be the client_id")
	case params["client_id"] != nil && !jsonStringIs(params["client_id"], clientID):
		return nil, badRequestObject("its client_id is not the request's client_id")
	}
	c, err := s.getClient(ctx, clientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return nil, badRequestObject("unknown client")
	case err != nil:
		return nil, s.internal(ctx, "load client", err)
	}
	alg := jose.SignatureAlgorithm(header.Algorithm)
	if alg == jose.HS256 && c.TokenEndpointAuthMethod != account.AuthClientSecretJWT {
		return nil, badRequestObject("HS256 is for client_secret_jwt apps: sign with %s", algNames(AssertionAlgorithms))
	}
	if why := s.verifyAssertionSignature(ctx, jws, c, alg); why != "" {
		return nil, badRequestObject("%s", why)
	}
	now := s.now()
	switch {
	case !slices.Contains(claims.Audience, s.issuer):
		return nil, badRequestObject("aud must be the issuer %s", s.issuer)
	case claims.Expiry == nil:
		return nil, badRequestObject("exp is missing")
	case now.After(claims.Expiry.Time().Add(assertionSkew)):
		return nil, badRequestObject("it expired")
	case claims.Expiry.Time().After(now.Add(maxRequestObjectLifetime + assertionSkew)):
		return nil, badRequestObject("exp is more than %s ahead", maxRequestObjectLifetime)
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionSkew)):
		return nil, badRequestObject("it is not valid yet (nbf)")
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionSkew)):
		return nil, badRequestObject("iat is in the future")
	}
	return requestObjectParams(params, clientID)
}

// requestObjectParams turns the claims of a verified request object into
// form parameters: strings as they are, numbers (max_age) and booleans as
// their JSON text, objects (claims) and arrays as JSON, except that a
// parameter that may repeat takes an array of strings as its values.
func requestObjectParams(params map[string]json.RawMessage, clientID string) (url.Values, *oidc.Error) {
	form := url.Values{}
	for k, v := range params {
		if slices.Contains(requestObjectClaims, k) || string(v) == "null" {
			continue
		}
		if k == "request" || k == "request_uri" {
			return nil, badRequestObject("it must not hold %s (RFC 9101 §4)", k)
		}
		var str string
		var list []string
		switch {
		case json.Unmarshal(v, &str) == nil:
			form.Set(k, str)
		case repeatable[k] && json.Unmarshal(v, &list) == nil:
			form[k] = list
		default:
			var compact bytes.Buffer
			if json.Compact(&compact, v) != nil {
				return nil, badRequestObject("%s cannot be read", truncate(k, 64))
			}
			form.Set(k, compact.String())
		}
	}
	form.Set("client_id", clientID)
	return form, nil
}

// requestObjectType tells whether a JWT's typ header fits a request
// object: none, JWT, or RFC 9101's oauth-authz-req+jwt (media types
// compared without case and without "application/").
func requestObjectType(typ string) bool {
	t := strings.TrimPrefix(strings.ToLower(typ), "application/")
	return t == "" || t == "jwt" || t == "oauth-authz-req+jwt"
}

func jsonStringIs(raw json.RawMessage, want string) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil && s == want
}

// replaceForm puts params in the place of r's parameters, in the query
// and the body alike, so nothing sent beside a request object is read.
func replaceForm(r *http.Request, params url.Values) {
	for k := range r.Form {
		delete(r.Form, k)
	}
	for k, v := range params {
		r.Form[k] = v
	}
	r.PostForm = url.Values{}
}

// authorizeRequestObject handles the request parameter of an /authorize
// request, and an app that must send one (require_signed_request_object)
// but did not. On success r's form holds the object's parameters. A
// refusal is returned as the problem CreateAuthRequest answers once
// zitadel has found the client and the redirect_uri good: r's form is
// left with the outer client_id, redirect_uri, state and response_mode
// only, so that the error goes there, or to the error page.
func (p *Provider) authorizeRequestObject(r *http.Request) (authorizeProblem, bool) {
	clientID := r.Form.Get("client_id")
	if !r.Form.Has("request") {
		c, err := p.storage.getClient(r.Context(), clientID)
		if err == nil && c.RequireSignedRequestObject {
			if problem, bad := checkAuthorizeParams(r.Form); bad {
				return problem, true // an oversized state is not echoed
			}
			return authorizeProblem{param: "request", err: oidc.ErrInvalidRequest().WithDescription("%s", p.mustSignMessage())}, true
		}
		return authorizeProblem{}, false
	}
	var params url.Values
	var oerr *oidc.Error
	if p.opts.Off.RequestObjects {
		// OpenID Connect Core 1.0 §6.1, at the app's redirect_uri.
		oerr = oidc.ErrRequestNotSupported().WithDescription("request objects are off on this server")
	} else {
		params, oerr = p.storage.openRequestObject(r.Context(), r.Form.Get("request"), clientID)
	}
	if oerr == nil {
		if rt := r.Form.Get("response_type"); rt != "" && rt != params.Get("response_type") {
			oerr = badRequestObject("response_type differs from the object's")
		}
	}
	if oerr != nil {
		// Enough of the outer request for zitadel to check the client and
		// redirect_uri and to send the refusal there; nothing else of it
		// is used.
		outer := url.Values{"client_id": {clientID}, "response_type": {string(oidc.ResponseTypeCode)}, "scope": {oidc.ScopeOpenID}}
		for _, k := range []string{"redirect_uri", "state", "response_mode"} {
			if v := r.Form.Get(k); v != "" {
				outer.Set(k, v)
			}
		}
		if problem, bad := checkAuthorizeParams(outer); bad {
			if problem.param == "state" {
				outer.Del("state")
			} else {
				outer.Del("response_mode")
			}
		}
		replaceForm(r, outer)
		return authorizeProblem{param: "request", err: oerr}, true
	}
	replaceForm(r, params)
	return authorizeProblem{}, false
}

// mustSignMessage tells an app that must send signed request objects
// (require_signed_request_object) and sent none what to do, or, while
// [oauth] request_objects is off, that it cannot sign anyone in.
func (p *Provider) mustSignMessage() string {
	if p.opts.Off.RequestObjects {
		return "this application must send its authorization requests as signed request objects (RFC 9101), but request objects are off on this server"
	}
	return "this application must send its authorization requests as signed request objects (RFC 9101)"
}

// pushedRequestObject handles the request parameter of a pushed request
// by app clientID, authenticated (RFC 9126 §3), and an app that must send
// one but did not: it answers a refusal itself and reports whether it
// did. On success r's form holds the object's parameters.
func (p *Provider) pushedRequestObject(w http.ResponseWriter, r *http.Request, clientID string) bool {
	if !r.Form.Has("request") {
		c, err := p.storage.getClient(r.Context(), clientID)
		if err == nil && c.RequireSignedRequestObject {
			writeJSONError(w, http.StatusBadRequest, "invalid_request", p.mustSignMessage())
			return true
		}
		return false
	}
	if p.opts.Off.RequestObjects {
		writeJSONError(w, http.StatusBadRequest, string(oidc.RequestNotSupported), "request objects are off on this server")
		return true
	}
	params, err := p.storage.openRequestObject(r.Context(), r.Form.Get("request"), clientID)
	if err != nil {
		writeOAuthError(w, err)
		return true
	}
	replaceForm(r, params)
	return false
}
