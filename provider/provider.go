// Package provider is Keyport's app-facing HTTP: the OpenID Connect and OAuth
// endpoints from zitadel's op package, run on our storage, with the fixes the
// specifications need applied in one middleware (http.go).
package provider

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/dpop"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
	"github.com/keyport/keyport/web"
)

// Options configure a Provider.
type Options struct {
	Issuer string // public URL, no trailing slash
	Store  Store
	Keys   *KeyManager
	// TokenKey encrypts opaque access tokens and codes.
	TokenKey     [32]byte
	Lifetimes    Lifetimes
	MaxBodyBytes int64
	Now          func() time.Time
	Logger       *slog.Logger
	// Web is the browser binding and the pages, shared with the portal:
	// the provider reads the browser's ID from it and shows its error
	// pages with it. Required.
	Web *web.Web
	// SignOut is the sign-in side (the portal): who is signed in in a
	// browser, and signing them out. Required.
	SignOut SignOut
	// LoggedOutURL is where logout lands without a post_logout_redirect_uri.
	LoggedOutURL string
	// LoginPath is the portal's sign-in page; authorization requests go there.
	LoginPath string
	// Throttle limits client-secret guesses (per client and address, and
	// per address); nil checks secrets unthrottled. It is the account
	// service's, so an address's failures count the same on both sides.
	Throttle *throttle.Limiter
	// CheckRefresh decides whether u may refresh the tokens of clientID
	// from ip: the account service's IP allowlist rule
	// (account.Service.CheckRefreshNetwork), which records and logs a
	// refusal. An account.Error with code NotFound means the client is
	// gone. Nil allows every refresh.
	CheckRefresh func(ctx context.Context, u storage.User, clientID, ip string) error
	// Observer is told of tokens issued, refresh token reuse and throttled
	// client authentications, for metrics; nil: nobody.
	Observer Observer
	// PendingSignIns bounds the authorization requests waiting for a
	// sign-in, per client address and in all ([limits] in config.toml).
	PendingSignIns storage.PendingLimits
	// LifetimesInForce, when set, is asked for the lifetimes at each
	// request instead of Lifetimes, so lifetimes changed while Keyport
	// runs (the runtime settings) apply to the next token. An app's own
	// lifetimes still win over either.
	LifetimesInForce func() Lifetimes
	// ClientAssertions is what client authentication with signed JWTs
	// (private_key_jwt, client_secret_jwt) needs: clientassertion.go.
	ClientAssertions ClientAssertionOptions
	// RequirePushedAuthorizationRequests refuses authorization requests
	// of every app unless pushed (RFC 9126; [oauth] in config.toml).
	RequirePushedAuthorizationRequests bool
	// Device is the device authorization grant (device.go); off unless
	// Enabled.
	Device DeviceOptions

	// VerifyAppPassword checks an app password an app exchanges for an
	// access token (token exchange, tokenexchange.go): the account
	// service's check (account.SignInService.VerifyAppPassword), which
	// throttles and records, and names the app password it is (its
	// credential ID, kept on the token); app is the requesting app,
	// whose allowed groups it applies, so that a refusal for them is
	// recorded as one. Nil: app passwords cannot be exchanged.
	VerifyAppPassword func(ctx context.Context, login, password, ip, userAgent string, app storage.Client) (u storage.User, credentialID string, err error)

	// DPoPNonceKey keys the stateless DPoP nonces (dpop.go); it must be
	// the same on every replica. Zero derives one from TokenKey.
	DPoPNonceKey [32]byte

	// RegistrationEndpoint is the URL of the dynamic client registration
	// endpoint (RFC 7591, served by the portal) that discovery
	// advertises; "" while registration is off.
	RegistrationEndpoint string

	// Subjects decides the sub each app knows a person by: the user ID,
	// or a pairwise one (OpenID Connect Core 1.0 §8). Required.
	Subjects *account.Subjects

	// Off are the features turned off in [oauth]: neither served nor
	// advertised. The zero value has every one on. (The device flow and
	// registration, off by default, have Device and RegistrationEndpoint.)
	Off account.FeaturesOff
}

// SignOut is what the provider needs from the sign-in side, for RP-
// initiated logout: the sessions and the portal's pages about them. The
// portal implements it; the portal in turn reaches the provider only by
// sending the browser to the callback, so neither calls into the other in
// a circle.
type SignOut interface {
	// SignedInUserID is the user signed in in the browser making r, or "".
	SignedInUserID(r *http.Request) string
	// EndBrowserSession signs the browser out when RP-initiated logout
	// succeeds, before the redirect to next. It may answer itself with a
	// page that goes on to next (the signed-out page that loads the apps'
	// front-channel logout URIs first) and then reports true.
	EndBrowserSession(w http.ResponseWriter, r *http.Request, next string) bool
	// LogoutPrompt asks the person signed in whether to sign out, for an
	// end_session request that does not clearly come from their app (RP-
	// Initiated Logout 1.0 §2); confirming signs them out and then goes on
	// to continueURL, the same end_session request as a path on this
	// server.
	LogoutPrompt(w http.ResponseWriter, r *http.Request, continueURL string)
	// RetryWithCookie answers an end_session request that a browser sent
	// from another site without its cookie (a cross-site POST under
	// SameSite=Lax) with a same-origin hop to continueURL, so that the
	// request comes back with the cookie, and reports whether it did.
	RetryWithCookie(w http.ResponseWriter, r *http.Request, continueURL string) bool
}

// Provider serves the OIDC endpoints.
type Provider struct {
	opts    Options
	op      *op.Provider
	storage *opStorage
	log     *slog.Logger
	// discovery is the prepared discovery document, rebuilt when the
	// algorithms of the published keys change (discoveryDocument).
	discovery atomic.Pointer[preparedDiscovery]
	wrapped   http.Handler
	// metadataPathOfIssuer: AuthorizationServerMetadataPath.
	metadataPathOfIssuer string
	// grantsOffered: offeredGrantTypes, fixed when the provider is made.
	grantsOffered []string
}

type preparedDiscovery struct {
	body []byte
	etag string
	algs []jose.SignatureAlgorithm // the keys' algorithms it was built for
}

// A Route is a path the provider answers and what it asks of its caller:
// the provider's half of the route table (the portal's is
// portal/routes.go's, with its levels). Everything else is the portal's.
type Route struct {
	Path   string
	Caller string
}

// Callers of provider routes.
const (
	// CallerPublic: anyone; a document prepared ahead of time, the same
	// bytes for every caller (servePrepared).
	CallerPublic = "public"
	// CallerBrowser: a person's browser; a registered app and exact
	// redirect URI before anything is stored, the stored request bounded
	// (authorizeParamLimits, storage.PendingLimits).
	CallerBrowser = "browser"
	// CallerClient: an app, authenticated by its secret, an assertion or,
	// for a public one, its ID (clientauth.go, clientassertion.go), with
	// the form bounded (MaxBodyBytes) and failures throttled.
	CallerClient = "client"
	// CallerBearer: the holder of an access token (and its DPoP proof).
	CallerBearer = "bearer"
)

// Routes are the provider's routes. The device authorization endpoint
// (DeviceAuthorizationPath, CallerClient) is added only with [oauth]
// device_flow.
var Routes = []Route{
	{oidc.DiscoveryEndpoint, CallerPublic},
	{AuthorizationServerMetadataPath, CallerPublic},       // RFC 8414
	{AuthorizationServerMetadataPath + "/", CallerPublic}, // RFC 8414, an issuer with a path
	{"/keys", CallerPublic},
	{"/authorize", CallerBrowser},
	{"/authorize/callback", CallerBrowser},
	{"/end_session", CallerBrowser},
	{"/oauth/token", CallerClient},
	{"/oauth/introspect", CallerClient},
	{"/revoke", CallerClient},
	{parPath, CallerClient},
	{"/userinfo", CallerBearer},
}

// AuthorizationServerMetadataPath is where OAuth 2.0 clients that know no
// OpenID Connect look for the server's metadata (RFC 8414 §3). They get the
// discovery document: OpenID Connect Discovery's fields are RFC 8414's,
// with the same issuer. For an issuer with a path, RFC 8414 puts the path
// after this one (/.well-known/oauth-authorization-server/sso for
// https://host/sso), which is answered too.
const AuthorizationServerMetadataPath = "/.well-known/oauth-authorization-server"

// Scopes the provider understands: the ones an admin may limit an app to.
var supportedScopes = account.ClientScopes

// supportedClaims are the protocol's claims and, from the profile policy
// table, every user claim a scope can release, so discovery advertises
// exactly what setClaims hands out.
var supportedClaims = func() []string {
	claims := []string{"sub", "aud", "exp", "iat", "iss", "auth_time", "nonce", "acr", "amr", "at_hash", "c_hash", "azp", "sid"}
	for _, a := range account.Attributes {
		if a.Claim != "" && !slices.Contains(claims, a.Claim) {
			claims = append(claims, a.Claim)
		}
	}
	return claims
}()

// New builds the provider.
func New(o Options) (*Provider, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.LoginPath == "" {
		o.LoginPath = "/login"
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.Web == nil {
		return nil, errors.New("provider: Options.Web is required")
	}
	if o.SignOut == nil {
		return nil, errors.New("provider: Options.SignOut is required")
	}
	if o.Subjects == nil {
		return nil, errors.New("provider: Options.Subjects is required")
	}
	tokens, err := newTokenCrypto(o.TokenKey)
	if err != nil {
		return nil, err
	}
	untraceZitadel()
	st := &opStorage{
		store:    o.Store,
		keys:     o.Keys,
		life:     o.Lifetimes,
		lifeNow:  o.LifetimesInForce,
		loginURL: o.Issuer + o.LoginPath + "?authRequestID=",
		issuer:   o.Issuer,
		now:      o.Now,
		log:      o.Logger,
		floodLog: floodLogger(o.Logger),
		throttle: o.Throttle,

		checkRefresh: o.CheckRefresh,
		observer:     o.Observer,
		tokens:       tokens,
		pending:      o.PendingSignIns,
		secrets:      throttle.NewGuesses[clientCheck](),

		subjects: o.Subjects,
	}
	st.dpopNonces = dpop.Nonces{Key: dpopNonceKey(o), Now: o.Now}
	if st.assertions, err = newAssertions(o); err != nil {
		return nil, err
	}
	cfg := &op.Config{
		CryptoKey:                o.TokenKey,
		DefaultLogoutRedirectURI: o.LoggedOutURL,
		CodeMethodS256:           true,
		AuthMethodPost:           true,
		GrantTypeRefreshToken:    true,
		SupportedScopes:          supportedScopes,
		SupportedClaims:          supportedClaims,
		// The sign-in pages follow ui_locales in these languages
		// (discovery's ui_locales_supported).
		SupportedUILocales: web.Languages,
	}
	// zitadel accepts RS256, ES256 and PS256 in an id_token_hint or a JWT
	// access token unless told; the keys it checks them against are
	// Keyport's own, of any algorithm Keyport signs with.
	opts := []op.Option{op.WithLogger(o.Logger), op.WithCrypto(tokens),
		op.WithIDTokenHintVerifierOpts(op.WithSupportedIDTokenHintSigningAlgorithms(Algorithms...)),
		op.WithAccessTokenVerifierOpts(op.WithSupportedAccessTokenSigningAlgorithms(Algorithms...)),
		op.WithCORSOptions(dpopCORS()), // dpophttp.go
	}
	if strings.HasPrefix(o.Issuer, "http://") {
		opts = append(opts, op.WithAllowInsecure())
	}
	inner, err := op.NewProvider(cfg, st, op.StaticIssuer(o.Issuer), opts...)
	if err != nil {
		return nil, fmt.Errorf("create OIDC provider: %w", err)
	}
	p := &Provider{opts: o, op: inner, storage: st, log: o.Logger, metadataPathOfIssuer: metadataPathOf(o.Issuer)}
	p.grantsOffered = grantsOffered(o)
	if _, err := p.prepareDiscovery(); err != nil {
		return nil, err
	}
	p.wrapped = p.middleware(inner)
	return p, nil
}

// grantTypes are the grants the token endpoint serves; whether a client may
// use one is checked per client.
var grantTypes = []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials,
	account.GrantTokenExchange}

// discoveryDocument returns the prepared discovery document, first
// preparing it again when the published keys' algorithms are no longer
// the ones it lists (a changed [keys] algorithm, a retired key of the old
// one that expired).
func (p *Provider) discoveryDocument() *preparedDiscovery {
	d := p.discovery.Load()
	if slices.Equal(d.algs, p.opts.Keys.SignatureAlgorithms()) {
		return d
	}
	fresh, err := p.prepareDiscovery()
	if err != nil {
		p.log.Error("prepare discovery document", "err", err)
		return d
	}
	return fresh
}

func (p *Provider) prepareDiscovery() (*preparedDiscovery, error) {
	algs := p.opts.Keys.SignatureAlgorithms()
	body, err := p.buildDiscovery()
	if err != nil {
		return nil, err
	}
	d := &preparedDiscovery{body: body, etag: etagOf(body), algs: algs}
	p.discovery.Store(d)
	return d, nil
}

// buildDiscovery prepares the discovery document: apart from the signing
// algorithms (discoveryDocument) it never changes
// while the server runs.
func (p *Provider) buildDiscovery() ([]byte, error) {
	ctx := op.ContextWithIssuer(context.Background(), p.opts.Issuer)
	doc := op.CreateDiscoveryConfig(ctx, p.op, p.storage)
	raw, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode discovery: %w", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("encode discovery: %w", err)
	}
	// The device flow is advertised exactly when it is served.
	delete(m, "device_authorization_endpoint")
	if p.deviceEnabled() {
		m["device_authorization_endpoint"] = p.opts.Issuer + DeviceAuthorizationPath
	}
	delete(m, "check_session_iframe")
	delete(m, "request_object_signing_alg_values_supported")
	// Client authentication: what clientassertion.go and the secret
	// checks accept at each endpoint.
	for k, v := range clientAuthDiscovery() {
		m[k] = v
	}
	m["grant_types_supported"] = p.offeredGrantTypes()
	m["response_types_supported"] = []string{string(oidc.ResponseTypeCode)}
	m["response_modes_supported"] = []string{"query", "fragment", "form_post"}
	m["authorization_response_iss_parameter_supported"] = true // RFC 9207
	m["code_challenge_methods_supported"] = []string{string(oidc.CodeChallengeMethodS256)}
	m["prompt_values_supported"] = []string{"none", "login", "consent", "select_account"}
	m["acr_values_supported"] = account.ACRValues
	m["claims_parameter_supported"] = true // claimsparam.go
	// Each feature [oauth] can turn off is advertised exactly when on.
	m["request_parameter_supported"] = !p.opts.Off.RequestObjects
	if !p.opts.Off.RequestObjects {
		m["request_object_signing_alg_values_supported"] = RequestObjectAlgorithms
	}
	// request_uri is taken from the pushed authorization request
	// endpoint only (RFC 9126), never fetched from elsewhere.
	m["request_uri_parameter_supported"] = false
	if !p.opts.Off.PushedRequests {
		m["pushed_authorization_request_endpoint"] = p.opts.Issuer + parPath
		m["require_pushed_authorization_requests"] = p.opts.RequirePushedAuthorizationRequests
	}
	// OpenID Connect Front-Channel and Back-Channel Logout 1.0, with sid
	// in ID tokens and logout tokens (logout.go, backchannel.go).
	m["frontchannel_logout_supported"] = true
	m["frontchannel_logout_session_supported"] = true
	m["backchannel_logout_supported"] = true
	m["backchannel_logout_session_supported"] = true
	// Signed userinfo for apps that register userinfo_signed_response_alg
	// (signing.go), with the keys there are, as ID tokens.
	m["userinfo_signing_alg_values_supported"] = m["id_token_signing_alg_values_supported"]
	// DPoP proofs are accepted from every app (dpop.go).
	if !p.opts.Off.DPoP {
		m["dpop_signing_alg_values_supported"] = dpop.Algorithms
	}

	// Dynamic client registration is advertised exactly when it is served.
	delete(m, "registration_endpoint")
	if p.opts.RegistrationEndpoint != "" {
		m["registration_endpoint"] = p.opts.RegistrationEndpoint
	}
	// Pairwise subjects per app (OpenID Connect Core 1.0 §8,
	// account.Subjects); public stays the default.
	m["subject_types_supported"] = []string{account.SubjectPublic, account.SubjectPairwise}
	if p.opts.Off.PairwiseSubjects {
		// Apps made pairwise before keep their subs (account.FeaturesOff).
		m["subject_types_supported"] = []string{account.SubjectPublic}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode discovery: %w", err)
	}
	return out, nil
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == parPath && p.opts.Off.PushedRequests {
		// Off for every method, the CORS preflight too, which zitadel's
		// CORS handler would answer below as for an endpoint served.
		http.NotFound(w, r)
		return
	}
	if isPreflight(r) {
		// zitadel's CORS handler answers every preflight, the prepared
		// documents' too.
		p.wrapped.ServeHTTP(w, r)
		return
	}
	switch r.URL.Path {
	case oidc.DiscoveryEndpoint, AuthorizationServerMetadataPath, p.metadataPathOfIssuer:
		d := p.discoveryDocument()
		servePrepared(w, r, d.body, d.etag)
	case "/keys":
		body, etag := p.opts.Keys.jwksDocument()
		servePrepared(w, r, body, etag)
	case DeviceAuthorizationPath:
		if !p.deviceEnabled() {
			// zitadel serves the endpoint whatever the configuration.
			http.NotFound(w, r)
			return
		}
		p.wrapped.ServeHTTP(w, r)
	default:
		p.wrapped.ServeHTTP(w, r)
	}
}

// metadataPathOf is where RFC 8414 puts the metadata of issuer: the
// well-known path followed by the issuer's path (the well-known path alone
// for an issuer without one).
func metadataPathOf(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Path == "/" {
		return AuthorizationServerMetadataPath
	}
	return AuthorizationServerMetadataPath + u.Path
}

// servePrepared answers with bytes (and their ETag) built ahead of time;
// these two documents are the most requested and must not cost more than a
// copy. An explicit Content-Length spares the discovery document, larger
// than net/http's 2 KiB sniffing buffer, chunked encoding.
func servePrepared(w http.ResponseWriter, r *http.Request, body []byte, etag string) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "use GET")
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=300")
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("ETag", etag)
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(body)
}

// etagOf is the strong ETag of a prepared document.
func etagOf(body []byte) string {
	sum := sha256.Sum256(body)
	return fmt.Sprintf(`"%x"`, sum[:8])
}

// fail ends an authorization request by sending the browser back to the app
// with an OAuth error code (login_required, consent_required, access_denied,
// interaction_required) and a description.
func (p *Provider) fail(w http.ResponseWriter, r *http.Request, id, code, description string) {
	a, err := p.opts.Store.GetAuthRequest(r.Context(), id)
	if err != nil {
		p.showError(w, r, errPageExpired)
		return
	}
	_ = p.storage.DeleteAuthRequest(r.Context(), id)
	e := oauthError(code, description)
	ctx := withFormPostNote(r.Context())
	noteResponseMode(ctx, a)
	r = r.WithContext(ctx)
	rec := newRecorder()
	op.AuthRequestError(rec, r.WithContext(op.ContextWithIssuer(ctx, p.opts.Issuer)), &authRequest{a: a}, e, p.op)
	p.finish(w, r, "/authorize", rec)
}

// oauthError builds an *oidc.Error for any registered OAuth error code.
// zitadel's error type is unexported and lacks some codes (consent_required),
// so the field is set by reflection on its string kind.
func oauthError(code, description string) *oidc.Error {
	e := oidc.ErrInteractionRequired().WithDescription("%s", description)
	reflect.ValueOf(&e.ErrorType).Elem().SetString(code)
	return e
}
