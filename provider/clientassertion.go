package provider

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/appdoc"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/dpop"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/webhook"
)

// Client authentication with a signed JWT (RFC 7523 §2.2, OpenID Connect
// Core §9): private_key_jwt, signed with the app's own key (its jwks or
// jwks_uri), and client_secret_jwt, an HS256 MAC keyed with its secret.
//
// zitadel checks assertions itself only for private_key_jwt, without
// refusing a replayed jti, and not client_secret_jwt at all. So Keyport
// checks the assertion here, ahead of zitadel, at every endpoint that
// authenticates clients, and hands zitadel the request as HTTP Basic with
// the client_id and no secret: the storage adapter's secret check takes
// the client the context names as authenticated (assertedClientFrom). The
// method is the app's: an app registered for a JWT method cannot send its
// secret instead (clientRecord.assertionOnly), nor the reverse.
//
// An assertion is checked in this order, cheapest refusals first: shape
// and size; the client it names; the throttle (one budget with client
// secrets, so failures count as wrong secrets do); the method; the
// signature; the claims; and last its jti, recorded in storage as a
// one-time token until the assertion expires, so a replay is refused on
// every replica that shares the database. Only an assertion whose
// signature verified writes anything.

// ClientAssertionType is the client_assertion_type of RFC 7523 §2.2.
const ClientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// Bounds of a client assertion.
const (
	// maxAssertionBytes bounds a client_assertion; one signed with an RSA
	// 4096 key is under 1.5 KB.
	maxAssertionBytes = 8 << 10
	// maxAssertionLifetime is how far ahead an assertion's exp may be:
	// an assertion is made for one request, and its jti is kept that long.
	maxAssertionLifetime = 10 * time.Minute
	// assertionSkew is the clock difference allowed for exp, nbf and iat.
	assertionSkew = 30 * time.Second
	maxJTIBytes   = 256
	// assertionReplayPurpose is the one-time tokens' purpose of the jti
	// records.
	assertionReplayPurpose = "client_assertion"
)

// AssertionAlgorithms are the algorithms of private_key_jwt assertions
// (client_secret_jwt takes HS256): the asymmetric ones Keyport verifies,
// one list with DPoP proofs'.
var AssertionAlgorithms = dpop.Algorithms

// ClientAssertionOptions is what client authentication with signed JWTs
// needs besides the provider's store.
type ClientAssertionOptions struct {
	// Replays records each assertion's jti until it expires; nil uses
	// Options.Store, which must then keep one-time tokens.
	Replays storage.OneTimeTokens
	// Sealer opens the secrets of client_secret_jwt apps
	// (account.SealClientSecret); nil refuses client_secret_jwt.
	Sealer interface {
		Open(sealed []byte, purpose string) ([]byte, error)
	}
	// JWKSGuard decides which addresses an app's jwks_uri may reach (the
	// webhooks' SSRF guard); nil allows public addresses only.
	JWKSGuard *webhook.Guard
}

// assertions is the provider's state for client assertions.
type assertions struct {
	replays storage.OneTimeTokens
	sealer  interface {
		Open(sealed []byte, purpose string) ([]byte, error)
	}
	jwks *appdoc.JWKSCache
}

func newAssertions(o Options) (*assertions, error) {
	a := &assertions{replays: o.ClientAssertions.Replays, sealer: o.ClientAssertions.Sealer}
	if a.replays == nil {
		a.replays, _ = o.Store.(storage.OneTimeTokens)
	}
	guard := o.ClientAssertions.JWKSGuard
	if guard == nil {
		var err error
		if guard, err = webhook.NewGuard(nil); err != nil {
			return nil, err
		}
	}
	a.jwks = appdoc.NewJWKSCache(guard, account.ParseClientJWKS, o.Now)
	return a, nil
}

// recordOnce records that the signed token named by key (a client and jti,
// a DPoP key and jti) was accepted, until until, and tells whether it was
// already: the one replay check of client assertions and DPoP proofs. The
// key is hashed, so any jti fits.
func (a *assertions) recordOnce(ctx context.Context, purpose, key string, now, until time.Time) (replayed bool, _ error) {
	if a.replays == nil {
		return false, fmt.Errorf("no store for the jti's of %s", purpose)
	}
	err := a.replays.CreateOneTimeToken(ctx, storage.OneTimeToken{
		Hash: account.HashSecret(key), Purpose: purpose, CreatedAt: now, ExpiresAt: until,
	})
	switch {
	case errors.Is(err, storage.ErrConflict):
		return true, nil
	case err != nil:
		return false, fmt.Errorf("record a jti of %s: %w", purpose, err)
	}
	return false, nil
}

// presentsAssertion tells whether a request authenticates its client with
// an assertion (or tries to).
func presentsAssertion(form url.Values) bool {
	return form.Has("client_assertion") || form.Has("client_assertion_type")
}

// assertedClientKey carries the client authenticated by its assertion to
// the storage adapter's secret check.
type assertedClientKey struct{}

func withAssertedClient(ctx context.Context, c storage.Client) context.Context {
	return context.WithValue(ctx, assertedClientKey{}, c)
}

func assertedClientFrom(ctx context.Context) (storage.Client, bool) {
	c, ok := ctx.Value(assertedClientKey{}).(storage.Client)
	return c, ok
}

// authenticateAssertion checks the client assertion of r, a request to
// the endpoint at path, and on success returns r as zitadel should see it:
// the assertion replaced by HTTP Basic with the client_id and no secret,
// the client named in its context. A refusal is an invalid_client error;
// a throttled client is noted in the context (clientAuthNote), as for
// secrets.
func (p *Provider) authenticateAssertion(r *http.Request, path string) (*http.Request, storage.Client, error) {
	c, err := p.storage.verifyClientAssertion(r.Context(), r.Form, p.opts.Issuer+path)
	if err != nil {
		return r, storage.Client{}, err
	}
	for _, form := range []url.Values{r.Form, r.PostForm} {
		form.Del("client_assertion")
		form.Del("client_assertion_type")
		form.Del("client_id")
	}
	r.SetBasicAuth(url.QueryEscape(c.ID), "")
	return r.WithContext(withAssertedClient(r.Context(), c)), c, nil
}

// AuthenticateClient authenticates the client of a request to one of the
// client-authenticated endpoints at path (a pushed authorization request,
// say) the way the token endpoint does, for handlers that zitadel does not
// serve: a client assertion (private_key_jwt, client_secret_jwt), a
// secret by HTTP Basic or in the form, or, for a public client, its
// client_id alone. r's form must be parsed. A throttled client gets
// *throttle.Refused in the chain (answer it with writeThrottled); any
// other refusal is an invalid_client *oidc.Error.
func (p *Provider) AuthenticateClient(r *http.Request, path string) (storage.Client, error) {
	ctx := withClientAuthNote(r.Context())
	check := func(c storage.Client, err error) (storage.Client, error) {
		if refused := clientAuthNoteFrom(ctx).get(); refused != nil {
			return storage.Client{}, fmt.Errorf("%w: %w", errInvalidClient, refused)
		}
		return c, err
	}
	if presentsAssertion(r.Form) {
		return check(p.storage.verifyClientAssertion(ctx, r.Form, p.opts.Issuer+path))
	}
	id, secret, credErr := clientCredentials(r)
	if credErr != nil {
		return storage.Client{}, credErr
	}
	c, err := p.storage.getClient(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, p.storage.internal(ctx, "load client", err)
	}
	if _, _, basic := r.BasicAuth(); err == nil && c.Public && secret == "" && !basic {
		return c, nil
	}
	return check(p.storage.authenticateClient(ctx, id, secret))
}

// errAssertion is the refusal of a client assertion, saying why.
func errAssertion(why string) *oidc.Error {
	return oidc.ErrInvalidClient().WithDescription("client assertion refused: %s", why)
}

// verifyClientAssertion authenticates the client of form by its
// client_assertion, made for the endpoint at endpointURL, and returns it.
func (s *opStorage) verifyClientAssertion(ctx context.Context, form url.Values, endpointURL string) (storage.Client, error) {
	if form.Get("client_assertion_type") != ClientAssertionType {
		return storage.Client{}, errAssertion("client_assertion_type must be " + ClientAssertionType)
	}
	raw := form.Get("client_assertion")
	switch {
	case raw == "":
		return storage.Client{}, errAssertion("client_assertion is missing")
	case len(raw) > maxAssertionBytes:
		return storage.Client{}, errAssertion(fmt.Sprintf("client_assertion is longer than %d bytes", maxAssertionBytes))
	}
	jws, err := jose.ParseSignedCompact(raw, append(slices.Clone(AssertionAlgorithms), jose.HS256))
	if err != nil || len(jws.Signatures) != 1 {
		return storage.Client{}, errAssertion("client_assertion is not a JWT signed with " + algNames(append(slices.Clone(AssertionAlgorithms), jose.HS256)))
	}
	var claims assertionClaims
	if err := json.Unmarshal(jws.UnsafePayloadWithoutVerification(), &claims); err != nil {
		return storage.Client{}, errAssertion("its claims cannot be read")
	}
	id := claims.Issuer
	// A NUL (JSON's \u0000) is no client ID, and PostgreSQL refuses it
	// in text: it must not reach the store.
	if id == "" || len(id) > 128 || strings.ContainsRune(id, 0) {
		return storage.Client{}, errAssertion("iss must be the client_id")
	}
	if cid := form.Get("client_id"); cid != "" && cid != id {
		return storage.Client{}, errAssertion("client_id is not the assertion's iss")
	}
	c, err := s.getClient(ctx, id)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.Client{}, s.internal(ctx, "load client", err)
	}
	found := err == nil
	// From here on the attempt counts against the client it names, like
	// a secret: throttled before any signature is checked.
	var why string
	out := s.throttledClientCheck(ctx, id, clientip.FromContext(ctx), func() (string, error) {
		var err error
		why, err = s.checkAssertion(ctx, jws, claims, c, found, endpointURL)
		return why, err
	})
	note := clientAuthNoteFrom(ctx)
	switch {
	case out.refused != nil:
		note.set(out.refused)
		return storage.Client{}, errInvalidClient
	case out.failed:
		note.fail(id)
		if !found {
			why = "unknown client" // as the log says
		}
		return storage.Client{}, errAssertion(why)
	case out.err != nil:
		return storage.Client{}, out.err
	}
	return c, nil
}

// checkAssertion checks the assertion of client c (found: it exists) and
// records its jti. It returns why it fails, "" when it passes, or an
// error of the server's.
func (s *opStorage) checkAssertion(ctx context.Context, jws *jose.JSONWebSignature, claims assertionClaims, c storage.Client, found bool, endpointURL string) (string, error) {
	if !found {
		return "unknown client", nil
	}
	alg := jose.SignatureAlgorithm(jws.Signatures[0].Header.Algorithm)
	switch c.TokenEndpointAuthMethod {
	case account.AuthPrivateKeyJWT:
		if alg == jose.HS256 {
			return "the app is registered for private_key_jwt: sign with " + algNames(AssertionAlgorithms), nil
		}
	case account.AuthClientSecretJWT:
		if alg != jose.HS256 {
			return "the app is registered for client_secret_jwt: sign with HS256", nil
		}
	default:
		return "the app is not registered for private_key_jwt or client_secret_jwt (token_endpoint_auth_method)", nil
	}
	if why := requestObjectAsAssertion(jws, claims); why != "" {
		return why, nil
	}
	if why := s.verifyAssertionSignature(ctx, jws, c, alg); why != "" {
		return why, nil
	}
	now := s.now()
	switch {
	case claims.Subject != c.ID:
		return "sub must be the client_id", nil
	case !audienceNames(claims.Audience, s.issuer, endpointURL):
		return "aud must be the issuer " + s.issuer + ", the token endpoint or the endpoint " + endpointURL, nil
	case claims.Expiry == nil:
		return "exp is missing", nil
	case now.After(claims.Expiry.Time().Add(assertionSkew)):
		return "it expired", nil
	case claims.Expiry.Time().After(now.Add(maxAssertionLifetime + assertionSkew)):
		return fmt.Sprintf("exp is more than %s ahead", maxAssertionLifetime), nil
	case claims.NotBefore != nil && claims.NotBefore.Time().After(now.Add(assertionSkew)):
		return "it is not valid yet (nbf)", nil
	case claims.IssuedAt != nil && claims.IssuedAt.Time().After(now.Add(assertionSkew)):
		return "iat is in the future", nil
	case claims.ID == "":
		return "jti is missing", nil
	case len(claims.ID) > maxJTIBytes:
		return fmt.Sprintf("jti is longer than %d bytes", maxJTIBytes), nil
	}
	// The record lives as long as the assertion could be accepted.
	replayed, err := s.assertions.recordOnce(ctx, assertionReplayPurpose, c.ID+"\x00"+claims.ID, now, claims.Expiry.Time().Add(assertionSkew))
	switch {
	case err != nil:
		return "", err
	case replayed:
		return "its jti was used already", nil
	}
	return "", nil
}

// requestObjectAsAssertion says why a JWT is a request object rather than
// a client assertion, or "". Apps sign both with the same keys, and a
// request object sent by value crosses the browser in /authorize's URL:
// one that also carries sub, a jti and an exp, as some libraries add,
// would pass every check below and authenticate its app to whoever saw
// it. A client assertion is told from one by its type when the app says
// it and by the authorization request it holds when not (RFC 9101 §10.8,
// RFC 8725 §3.11 and §3.12): every request object Keyport accepts names a
// response_type and a redirect_uri, and no client assertion does.
func requestObjectAsAssertion(jws *jose.JSONWebSignature, claims assertionClaims) string {
	typ, _ := jws.Signatures[0].Header.ExtraHeaders[jose.HeaderType].(string)
	switch {
	case strings.TrimPrefix(strings.ToLower(typ), "application/") == "oauth-authz-req+jwt":
		return "it is typed as a request object (oauth-authz-req+jwt)"
	case claims.ResponseType != nil:
		return "it holds response_type: a request object is no client assertion"
	case claims.RedirectURI != nil:
		return "it holds redirect_uri: a request object is no client assertion"
	}
	return ""
}

// assertionClaims are an assertion's claims, and the two members whose
// presence shows a request object instead (requestObjectAsAssertion), read
// in one decoding.
type assertionClaims struct {
	jwt.Claims
	ResponseType json.RawMessage `json:"response_type"`
	RedirectURI  json.RawMessage `json:"redirect_uri"`
}

// verifyAssertionSignature checks the signature of an assertion of
// client c with c's secret (HS256) or keys. It returns why it fails, or "".
func (s *opStorage) verifyAssertionSignature(ctx context.Context, jws *jose.JSONWebSignature, c storage.Client, alg jose.SignatureAlgorithm) string {
	if alg == jose.HS256 {
		if len(c.SealedSecret) == 0 || s.assertions.sealer == nil {
			return "the app has no secret for client_secret_jwt (rotate its secret)"
		}
		key, err := s.assertions.sealer.Open(c.SealedSecret, account.ClientSecretSealPurpose(c.ID))
		if err != nil {
			s.log.WarnContext(ctx, "client_secret_jwt: the app's sealed secret cannot be opened (sealed under another key?); rotate it", "client_id", c.ID, "err", err)
			return "the app has no secret for client_secret_jwt (rotate its secret)"
		}
		if _, err := jws.Verify(key); err != nil {
			return "the signature does not verify with the app's secret"
		}
		return ""
	}
	kid := jws.Signatures[0].Header.KeyID
	var set jose.JSONWebKeySet
	switch {
	case len(c.JWKS) > 0:
		var err error
		if set, err = account.ParseClientJWKS(c.JWKS); err != nil {
			return "the app's jwks cannot be used"
		}
	case c.JWKSURI != "":
		var err error
		if set, err = s.assertions.jwks.Keys(ctx, c.JWKSURI, kid); err != nil {
			s.log.WarnContext(ctx, "private_key_jwt: the app's jwks_uri cannot be fetched", "client_id", c.ID, "jwks_uri", c.JWKSURI, "err", err)
			return "the app's keys cannot be fetched from its jwks_uri"
		}
	default:
		return "the app has no keys (jwks or jwks_uri)"
	}
	for _, k := range set.Keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if k.Algorithm != "" && k.Algorithm != string(alg) {
			continue
		}
		if _, err := jws.Verify(k.Key); err == nil {
			return ""
		}
	}
	if kid != "" {
		return "the signature does not verify with the app's key " + strconv.Quote(truncate(kid, 64))
	}
	return "the signature does not verify with any of the app's keys"
}

// audienceNames tells whether aud names this server: its issuer, the
// endpoint's URL (RFC 7523 §3), or the token endpoint's, which OpenID
// Connect Core §9 names as an assertion's aud and RFC 9126 §2 requires
// at the pushed authorization request endpoint too. The jti is recorded
// for every endpoint alike, so one assertion serves one request anywhere.
func audienceNames(aud jwt.Audience, issuer, endpointURL string) bool {
	return slices.Contains(aud, issuer) || slices.Contains(aud, endpointURL) || slices.Contains(aud, issuer+"/oauth/token")
}

// algNames lists algs for an error description (dpop.AlgNames).
var algNames = dpop.AlgNames

// checkClientAssertion authenticates the client of a request to one of
// the client-authenticated endpoints by its assertion, ahead of zitadel,
// and answers a refusal itself. It returns the request to hand on.
func (p *Provider) checkClientAssertion(w http.ResponseWriter, r *http.Request, path string) (*http.Request, bool) {
	next, _, err := p.authenticateAssertion(r, path)
	if p.answerClientRefusal(w, r, path, err) {
		return r, true
	}
	return next, false
}

// clientAuthDiscovery is what discovery says of client authentication at
// the token, introspection and revocation endpoints: exactly the methods
// they accept. Public clients (none) use the token endpoint and may
// revoke their tokens; introspection is for authenticated clients only.
func clientAuthDiscovery() map[string]any {
	algs := append(slices.Clone(AssertionAlgorithms), jose.HS256)
	withSecret := []string{account.AuthClientSecretBasic, account.AuthClientSecretPost, account.AuthClientSecretJWT, account.AuthPrivateKeyJWT}
	withNone := append(slices.Clone(withSecret), account.AuthNone)
	return map[string]any{
		"token_endpoint_auth_methods_supported":                    withNone,
		"token_endpoint_auth_signing_alg_values_supported":         algs,
		"introspection_endpoint_auth_methods_supported":            withSecret,
		"introspection_endpoint_auth_signing_alg_values_supported": algs,
		"revocation_endpoint_auth_methods_supported":               withNone,
		"revocation_endpoint_auth_signing_alg_values_supported":    algs,
	}
}
