package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// The device authorization grant (RFC 8628). Keyport answers the device
// authorization endpoint and the device_code grant itself rather than
// through zitadel's handlers: zitadel reads the clock directly, answers
// every refusal of its storage as access_denied, and has no way to say
// slow_down or that a code was used already. Its token creation is used
// as for every other grant (op.CreateDeviceTokenResponse), so the tokens
// are made exactly as a code flow's are.

// DeviceAuthorizationPath is the device authorization endpoint.
const DeviceAuthorizationPath = "/device_authorization"

// DeviceOptions configure the device flow ([oauth] in config.toml).
type DeviceOptions struct {
	// Enabled serves the endpoint and the grant; off, both are unknown.
	Enabled bool
	// Lifetime is how long the codes work.
	Lifetime time.Duration
	// Interval is the least time between two polls of a device.
	Interval time.Duration
	// VerificationPath is the portal page where people type the user code.
	VerificationPath string
	// PerAddress bounds the unexpired requests one client address (an
	// IPv6 address by its /64) may hold; 0: no bound. A confidential app,
	// authenticated by its secret, is not bounded by address: its backend
	// may ask for many devices of its users from one address, and only
	// the store's bound (storage.MaxDeviceAuthorizations) holds it.
	PerAddress int
}

// slowDownStep is how much longer a device that polled too fast must wait
// from then on (RFC 8628 §3.5).
const slowDownStep = 5 * time.Second

// maxDeviceCodeParam bounds the device_code a poll may send: Keyport's are
// account.SecretLen characters.
const maxDeviceCodeParam = 256

// deviceEnabled tells whether the device flow is served.
func (p *Provider) deviceEnabled() bool { return p.opts.Device.Enabled }

// offeredGrantTypes are the grants the token endpoint serves.
func (p *Provider) offeredGrantTypes() []string { return p.grantsOffered }

// grantsOffered are the grants a provider with options o serves: the
// token exchange grant unless [oauth] turned it off, the device code grant
// only when the device flow is on.
func grantsOffered(o Options) []string {
	offered := slices.Clone(grantTypes)
	if o.Off.TokenExchange {
		offered = slices.DeleteFunc(offered, func(g string) bool { return g == account.GrantTokenExchange })
	}
	if o.Device.Enabled {
		offered = append(offered, account.GrantDeviceCode)
	}
	return offered
}

// serveDevice answers the device flow's requests (beforeZitadel).
func (p *Provider) serveDevice(w http.ResponseWriter, r *http.Request, path string) {
	if path == DeviceAuthorizationPath {
		p.deviceAuthorization(w, r)
		return
	}
	p.deviceToken(w, r)
}

// deviceAuthorization answers the device authorization endpoint (RFC 8628
// §3.1, §3.2): an authenticated client (a public one by its ID) that may
// use the grant gets a device code, a user code and where to send its
// person.
func (p *Provider) deviceAuthorization(w http.ResponseWriter, r *http.Request) {
	c, refused, oerr := p.deviceClient(r)
	if refused != nil {
		writeThrottled(w, refused)
		return
	}
	rec := newRecorder()
	defer p.finish(w, r, DeviceAuthorizationPath, rec)
	if oerr != nil {
		op.RequestError(rec, r, oerr, nil)
		return
	}
	scopes := strings.Fields(r.PostForm.Get("scope"))
	if err := checkScopeTokens(scopes); err != nil {
		op.RequestError(rec, r, err, nil)
		return
	}
	scopes = requestableScopes(c, scopes) // as at /authorize (customclaims.go)
	// Resource indicators (resources.go), read from the body as scope is:
	// each one registered for the app, as at /authorize. They are kept
	// with the request, and the device's tokens are for them.
	resources, rerr := grantResources(c, r.PostForm["resource"])
	if rerr != nil {
		op.RequestError(rec, r, rerr, nil)
		return
	}
	now, life := p.opts.Now(), p.opts.Device.Lifetime
	deviceCode := account.NewSecret()
	a := storage.DeviceAuthorization{
		DeviceCodeHash: account.HashSecret(deviceCode), ClientID: c.ID, Scopes: scopes,
		State: storage.DevicePending, CreatedAt: now, ExpiresAt: now.Add(life), Interval: p.opts.Device.Interval,
		Resources: resources,
	}
	if c.Public {
		a.Origin = originOf(clientip.FromContext(r.Context()))
	}
	var err error
	// A taken user code (one in 20^8 per stored request) is drawn again.
	for range 3 {
		if a.UserCode, err = op.NewUserCode([]rune(account.UserCodeAlphabet), account.UserCodeLength, 0); err != nil {
			break
		}
		if err = p.opts.Store.CreateDeviceAuthorization(r.Context(), a, p.opts.Device.PerAddress); !errors.Is(err, storage.ErrConflict) {
			break
		}
	}
	var perAddress *storage.DeviceOriginLimitError
	switch {
	case errors.As(err, &perAddress):
		p.refuseDeviceFlood(rec, r, c.ID, perAddress)
		return
	case errors.Is(err, storage.ErrLimitReached):
		p.storage.floodLog.WarnContext(r.Context(), "device authorization refused: too many stored", "client_id", c.ID)
		rec.header.Set("Retry-After", strconv.Itoa(int(p.opts.Device.Interval/time.Second)))
		writeJSONError(rec, http.StatusServiceUnavailable, "temporarily_unavailable", "too many devices are waiting; try again later")
		return
	case err != nil:
		op.RequestError(rec, r, p.storage.internal(r.Context(), "store device authorization", err), nil)
		return
	}
	verify := p.opts.Issuer + p.opts.Device.VerificationPath
	writeDeviceJSON(rec, http.StatusOK, map[string]any{
		"device_code":               deviceCode,
		"user_code":                 account.FormatUserCode(a.UserCode),
		"verification_uri":          verify,
		"verification_uri_complete": verify + "?user_code=" + url.QueryEscape(account.FormatUserCode(a.UserCode)),
		"expires_in":                int(life / time.Second),
		"interval":                  int(a.Interval / time.Second),
	})
}

// refuseDeviceFlood answers a request from an address that holds its
// limit of unexpired device authorizations: 429 with Retry-After until
// its first one expires, and slow_down. RFC 8628 §3.2 answers errors of
// this endpoint as the token endpoint's (RFC 6749 §5.2), whose codes all
// say the request itself is wrong; slow_down is the device flow's own
// "this device is going too fast, wait" (§3.5), and 429 (RFC 6585) with
// Retry-After tells any HTTP client the same, where a 400 would read as a
// permanent error and 503 (the store-wide bound) as one of the server.
func (p *Provider) refuseDeviceFlood(w http.ResponseWriter, r *http.Request, clientID string, e *storage.DeviceOriginLimitError) {
	wait := max(e.FreeAt.Sub(p.opts.Now()), time.Second)
	secs := int((wait + time.Second - 1) / time.Second)
	p.storage.floodLog.WarnContext(r.Context(), "device authorization refused: this address holds its limit of unexpired ones (a flood of /device_authorization?)",
		"client_id", clientID, "per_address_limit", e.Limit, "client_ip", clientip.FromContext(r.Context()))
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	w.Header().Set("Cache-Control", "no-store")
	writeJSONError(w, http.StatusTooManyRequests, "slow_down",
		"too many device authorizations from this address; try again in "+strconv.Itoa(secs)+" seconds")
}

// deviceClient authenticates the client of a device request as a code
// exchange's is (authenticateCodeClient: HTTP Basic or the form, a public
// client by its ID, throttled) and checks that it may use the grant. A
// refusal by the throttle comes back apart from the others: it is answered
// with 429, not an OAuth error.
func (p *Provider) deviceClient(r *http.Request) (storage.Client, *throttle.Refused, *oidc.Error) {
	cc, oerr := p.authenticateCodeClient(r)
	if refused := clientAuthNoteFrom(r.Context()).get(); refused != nil {
		return storage.Client{}, refused, nil
	}
	if oerr != nil {
		return storage.Client{}, nil, oerr
	}
	c, err := p.storage.getClient(r.Context(), cc.id)
	if err != nil {
		// Gone since it authenticated a moment ago.
		return storage.Client{}, nil, oidc.ErrInvalidClient().WithDescription("unknown client")
	}
	if !slices.Contains(c.GrantTypes, account.GrantDeviceCode) {
		return storage.Client{}, nil, oidc.ErrUnauthorizedClient().WithDescription("the client may not use the device authorization grant")
	}
	return c, nil, nil
}

// deviceOutcome is what one poll of a device code found.
type deviceOutcome int

const (
	devicePending deviceOutcome = iota
	deviceSlowDown
	deviceDenied
	deviceExpired
	deviceUsed
	deviceIssue
)

// errOtherClient refuses a poll of another client's device code; it
// changes nothing.
var errOtherClient = errors.New("device code of another client")

// errTargetRefused refuses a poll whose resource values the request does
// not hold (resources.go); it changes nothing.
var errTargetRefused = errors.New("resources not granted to this device code")

// deviceToken answers the device_code grant at the token endpoint (RFC
// 8628 §3.4, §3.5). Each poll is one transaction on the request: it
// records the poll's time, tells a device polling faster than its
// interval slow_down (and makes the interval 5 s longer), and redeems an
// approved request exactly once. A poll may name resources (RFC 8707) to
// narrow the request's to (resources.go), never others: a live code
// polled for others is refused with invalid_target and left as it was,
// not spent and the poll not counted, since the device's request is
// wrong rather than the device too fast.
func (p *Provider) deviceToken(w http.ResponseWriter, r *http.Request) {
	c, refused, oerr := p.deviceClient(r)
	if refused != nil {
		writeThrottled(w, refused)
		return
	}
	rec := newRecorder()
	defer p.finish(w, r, "/oauth/token", rec)
	if oerr != nil {
		op.RequestError(rec, r, oerr, nil)
		return
	}
	code := r.PostForm.Get("device_code")
	if code == "" || len(code) > maxDeviceCodeParam {
		op.RequestError(rec, r, oidc.ErrInvalidRequest().WithDescription("device_code missing or too long"), nil)
		return
	}
	var (
		outcome   deviceOutcome
		resources []string
		target    *oidc.Error
	)
	a, err := p.opts.Store.UpdateDeviceAuthorization(r.Context(), account.HashSecret(code), func(a storage.DeviceAuthorization) (storage.DeviceAuthorization, error) {
		if a.ClientID != c.ID {
			return a, errOtherClient
		}
		now := p.opts.Now()
		switch {
		case a.State == storage.DeviceRedeemed:
			outcome = deviceUsed
			return a, nil
		case !now.Before(a.ExpiresAt):
			outcome = deviceExpired
			return a, nil
		}
		// As a code's redemption (AuthRequestByCode): the resources the
		// app may still ask for, narrowed by the poll's.
		if resources, target = liveResources(c, a.Resources, r.Form["resource"]); target != nil {
			return a, errTargetRefused
		}
		switch {
		case !a.LastPoll.IsZero() && now.Sub(a.LastPoll) < a.Interval:
			outcome = deviceSlowDown
			a.Interval += slowDownStep
		case a.State == storage.DeviceDenied:
			outcome = deviceDenied
		case a.State == storage.DeviceApproved:
			outcome = deviceIssue
			a.State = storage.DeviceRedeemed
		default:
			outcome = devicePending
		}
		a.LastPoll = now
		return a, nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, errOtherClient):
		outcome = deviceUsed
	case errors.Is(err, errTargetRefused):
		op.RequestError(rec, r, target, nil)
		return
	case err != nil:
		op.RequestError(rec, r, p.storage.internal(r.Context(), "poll device authorization", err), nil)
		return
	}
	var refusal *oidc.Error
	switch outcome {
	case devicePending:
		refusal = oidc.ErrAuthorizationPending().WithDescription("the person has not approved the device yet")
	case deviceSlowDown:
		refusal = oidc.ErrSlowDown().WithDescription("polled too fast; wait %d seconds between polls", int(a.Interval/time.Second))
	case deviceDenied:
		refusal = oidc.ErrAccessDenied().WithDescription("the person denied the device")
	case deviceExpired:
		refusal = oidc.ErrExpiredDeviceCode().WithDescription("the device code has expired; start again")
	case deviceUsed:
		refusal = oidc.ErrInvalidGrant().WithDescription("invalid or already used device code")
	}
	if refusal == nil {
		refusal = p.stillAllowed(r.Context(), a, c)
	}
	if refusal != nil {
		op.RequestError(rec, r, refusal, nil)
		return
	}
	// zitadel gets the client from here, not through GetClientByClientID:
	// the app's signing algorithm is noted for SigningKey (signing.go).
	signingNoteFrom(r.Context()).set(c)
	ctx := op.ContextWithIssuer(r.Context(), p.opts.Issuer)
	resp, err := op.CreateDeviceTokenResponse(ctx, &deviceRequest{a: a, resources: resources, subject: p.opts.Subjects.Subject(c, a.UserID)}, p.op, p.storage.opClient(c))
	if err != nil {
		op.RequestError(rec, r, err, nil)
		return
	}
	writeDeviceJSON(rec, http.StatusOK, resp)
}

// stillAllowed checks, as the device's code is redeemed, what the approval
// checked: the person may still sign in (blocking ends everything issued
// before it, and a device approved minutes earlier has been issued
// nothing yet) and is still allowed the app, as a refresh checks. The
// code is spent either way.
func (p *Provider) stillAllowed(ctx context.Context, a storage.DeviceAuthorization, c storage.Client) *oidc.Error {
	u, err := p.storage.getUser(ctx, a.UserID)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return p.storage.internal(ctx, "load the user of a device authorization", err)
	}
	if err == nil {
		err = account.CheckActive(u)
	}
	if err != nil {
		p.log.InfoContext(ctx, "device tokens refused: the user can no longer sign in", "client_id", c.ID, "user_id", a.UserID, "err", err)
		return oidc.ErrAccessDenied().WithDescription("the person who approved the device can no longer sign in")
	}
	if account.MayUseClient(u, c) != nil {
		p.log.InfoContext(ctx, "device tokens refused: the user is not in the app's allowed groups", "client_id", c.ID, "user_id", a.UserID)
		return oidc.ErrAccessDenied().WithDescription("the person who approved the device is no longer allowed to use this app")
	}
	// A public app runs where its person is: its first tokens are held to
	// the person's IP allowlist from the device's address, as its
	// refreshes are (a confidential one polls from its server).
	if p.storage.checkRefresh != nil {
		switch err := p.storage.checkRefresh(ctx, u, c.ID, clientip.FromContext(ctx)); {
		case err == nil:
		case account.ErrorCode(err) == account.Internal:
			return p.storage.internal(ctx, "check the device's network", err)
		default:
			return oidc.ErrAccessDenied().WithDescription("the person who approved the device may not use this app from this network")
		}
	}
	return nil
}

func writeDeviceJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// deviceRequest adapts an approved device authorization to zitadel's
// token creation. It is an op.AuthRequest so that its tokens are made as a
// code flow's are: the ACR of how the person authenticated, and a refresh
// token for offline_access when the app may refresh.
type deviceRequest struct {
	a storage.DeviceAuthorization

	// Resource indicators (resources.go): the resources of this
	// redemption's access token (the request's, or the part the poll
	// named; a.Resources stays what was granted), and their hand-off to
	// the JWT access token.
	resources []string
	aud       jwtAudience

	// subject is the sub the app knows the user by (account.Subjects).
	subject string
}

var (
	_ op.AuthRequest    = (*deviceRequest)(nil)
	_ op.IDTokenRequest = (*deviceRequest)(nil)
)

func (r *deviceRequest) GetID() string                         { return r.a.DeviceCodeHash }
func (r *deviceRequest) GetACR() string                        { return account.ACRFor(r.a.AMR, nil) }
func (r *deviceRequest) GetAMR() []string                      { return r.a.AMR }
func (r *deviceRequest) GetAudience() []string                 { return r.aud.take([]string{r.a.ClientID}) }
func (r *deviceRequest) GetAuthTime() time.Time                { return r.a.AuthTime }
func (r *deviceRequest) GetClientID() string                   { return r.a.ClientID }
func (r *deviceRequest) GetCodeChallenge() *oidc.CodeChallenge { return nil }
func (r *deviceRequest) GetNonce() string                      { return "" }
func (r *deviceRequest) GetRedirectURI() string                { return "" }
func (r *deviceRequest) GetResponseType() oidc.ResponseType    { return oidc.ResponseTypeCode }
func (r *deviceRequest) GetResponseMode() oidc.ResponseMode    { return "" }
func (r *deviceRequest) GetScopes() []string                   { return r.a.Scopes }
func (r *deviceRequest) GetState() string                      { return "" }
func (r *deviceRequest) GetSubject() string                    { return r.subject }
func (r *deviceRequest) Done() bool                            { return true }
