package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/storage"
)

// Pushed authorization requests (RFC 9126). An app posts the parameters of
// an authorization request to parPath, authenticated as at the token
// endpoint, and gets a request_uri back; the browser then brings only
// client_id and that request_uri to /authorize. The parameters never pass
// through the browser, so nobody there can read or change them, and a
// long request meets no URL length limit.
//
// A pushed request is checked as /authorize checks one (zitadel's parsing
// and validation, then Keyport's bounds in CreateAuthRequest) and stored
// at once as the pending sign-in it becomes: a storage.AuthRequest with
// PushedUntil set, so it shares the pending-sign-in limits, expiry and
// sweeping, and the request_uri names it. /authorize opens it once, for
// the app that pushed it and before PushedUntil, and sends the browser to
// the sign-in page as for any request.

// parPath is the pushed authorization request endpoint.
const parPath = "/oauth/par"

// requestURIPrefix starts every request_uri the endpoint hands out (RFC
// 9126 §2.2).
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// pushedRequestLifetime is how long a request_uri may be brought to
// /authorize. The app redirects the browser right after pushing, so a
// minute (the RFC's example) is plenty; an unopened pushed request is gone
// after it, instead of holding a pending sign-in's place.
const pushedRequestLifetime = time.Minute

// pushedNote tells CreateAuthRequest that the request comes from parPath,
// pushed by an authenticated app (or by a public one, which anyone may
// name).
type pushedNote struct {
	clientID string
	public   bool
	until    time.Time
}

type pushedKey struct{}

func withPushed(ctx context.Context, n pushedNote) context.Context {
	return context.WithValue(ctx, pushedKey{}, n)
}

func pushedFrom(ctx context.Context) (pushedNote, bool) {
	n, ok := ctx.Value(pushedKey{}).(pushedNote)
	return n, ok
}

// markPushed makes a new request a pushed one. A confidential app pushes
// from its servers, for all its users, so counting its requests by address
// would let one busy app reach the per-address limit of pending sign-ins
// and evict its own users' requests: they count by app instead, under the
// total limit only, until a browser opens them (openPushed). A public app
// is not authenticated, so its pushes count by address like /authorize.
func markPushed(a *storage.AuthRequest, n pushedNote) {
	a.PushedUntil = n.until
	a.ExpiresAt = n.until
	if !n.public {
		a.Origin, a.OriginGroup = "", "app:"+n.clientID
	}
}

// pushAuthorizationRequest serves parPath. The middleware has refused
// other methods and parsed the size-limited form.
func (p *Provider) pushAuthorizationRequest(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	if r.Form.Has("request_uri") {
		// RFC 9126 §2.1: a pushed request cannot point at another.
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "request_uri must not be pushed")
		return
	}
	formID := r.Form.Get("client_id")
	client, authErr := p.authenticateCodeClient(r)
	if refused := clientAuthNoteFrom(r.Context()).get(); refused != nil {
		writeThrottled(w, refused)
		return
	}
	if authErr != nil {
		w.Header().Set("WWW-Authenticate", `Basic realm="`+p.opts.Issuer+`", charset="UTF-8"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_client", authErr.Description)
		return
	}
	if formID != "" && formID != client.id {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "client_id is not the authenticated client")
		return
	}
	// With HTTP Basic the form may lack client_id; the request is parsed
	// as /authorize would parse it, which needs it.
	r.Form.Set("client_id", client.id)
	if p.pushedRequestObject(w, r, client.id) {
		return // requestobject.go
	}
	var answered bool
	if r, answered = p.dpopPushedJKT(w, r); answered {
		return // dpophttp.go
	}
	ctx := op.ContextWithIssuer(r.Context(), p.opts.Issuer)
	authReq, err := op.ParseAuthorizeRequest(r, p.op.Decoder())
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	if authReq.RedirectURI == "" {
		writeJSONError(w, http.StatusBadRequest, "invalid_request", "redirect_uri is missing")
		return
	}
	if problem, bad := checkAuthorizeParams(r.Form); bad {
		writeOAuthError(w, problem.err)
		return
	}
	claims, claimsErr := parseClaimsParam(r.Form.Get("claims"))
	if claimsErr != nil {
		writeOAuthError(w, claimsErr)
		return
	}
	opClient, err := p.storage.GetClientByClientID(ctx, client.id)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	hintUserID, err := op.ValidateAuthRequestClient(ctx, authReq, opClient, p.op.IDTokenHintVerifier(ctx))
	if err != nil {
		var oe *oidc.Error
		if errors.As(err, &oe) && oe.ErrorType == oidc.UnauthorizedClient && authReq.ResponseType != oidc.ResponseTypeCode {
			// As at /authorize (unsupportedResponseType): no app gets
			// another response type.
			writeJSONError(w, http.StatusBadRequest, "unsupported_response_type", "only response_type=code is supported")
			return
		}
		writeOAuthError(w, err)
		return
	}
	until := p.opts.Now().Add(pushedRequestLifetime)
	ctx = withClaimsRequest(withPushed(ctx, pushedNote{clientID: client.id, public: client.public, until: until}), claims)
	ctx = withResources(ctx, r.Form["resource"]) // resources.go
	stored, err := p.storage.CreateAuthRequest(ctx, authReq, hintUserID)
	if err != nil {
		writeOAuthError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(struct {
		RequestURI string `json:"request_uri"`
		ExpiresIn  int    `json:"expires_in"`
	}{requestURIPrefix + stored.GetID(), int(pushedRequestLifetime / time.Second)})
}

// writeOAuthError answers a refused pushed request with the error
// /authorize would have sent to the app: 400 with zitadel's error code,
// 503 while too many sign-ins are pending, 500 for Keyport's own failure
// (already logged by opStorage.internal).
func writeOAuthError(w http.ResponseWriter, err error) {
	var oe *oidc.Error
	if !errors.As(err, &oe) {
		writeJSONError(w, http.StatusInternalServerError, "server_error", "internal error")
		return
	}
	status := http.StatusBadRequest
	switch oe.ErrorType {
	case oidc.ServerError:
		status = http.StatusInternalServerError
	case "temporarily_unavailable":
		w.Header().Set("Retry-After", "60")
		status = http.StatusServiceUnavailable
	case oidc.InvalidClient:
		status = http.StatusUnauthorized
	}
	writeJSONError(w, status, string(oe.ErrorType), oe.Description)
}

// errPushedUnusable: the request_uri names no pushed request of this app
// that may still be opened.
var errPushedUnusable = errors.New("pushed request unknown, of another app, expired or already opened")

// errPageRequestURI is the page for a request_uri that cannot be opened:
// the person can only start again at the app.
var errPageRequestURI = errPageCallback

// authorizePushed answers /authorize with a request_uri (RFC 9126 §4):
// it opens the pushed request it names, once, for the app named by
// client_id, and sends the browser on to the sign-in page. Every other
// parameter is ignored: the pushed ones count. Nothing goes back to the
// app on failure, as its redirect_uri is not known to be good until the
// pushed request is found.
func (p *Provider) authorizePushed(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodHead {
		// A link checker or a mail scanner looking ahead must not use up
		// the request_uri the person's browser is about to bring.
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		return
	}
	ctx := r.Context()
	clientID := r.Form.Get("client_id")
	id, ok := strings.CutPrefix(r.Form.Get("request_uri"), requestURIPrefix)
	if !ok || id == "" || len(id) > 128 || strings.ContainsFunc(id, notIDRune) {
		p.showError(w, r, invalidRequest(http.StatusBadRequest, "request_uri was not issued by Keyport's pushed authorization request endpoint"))
		return
	}
	ip := clientip.FromContext(ctx)
	now := p.opts.Now()
	life := p.storage.inForce().AuthRequest
	_, err := p.opts.Store.UpdateAuthRequest(ctx, id, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		if a.ClientID != clientID || a.PushedUntil.IsZero() || !now.Before(a.PushedUntil) {
			return a, errPushedUnusable
		}
		a.PushedUntil = time.Time{}
		a.ExpiresAt = now.Add(life)
		// From here on a person's browser holds it: it counts by that
		// browser's address, as a request sent to /authorize does.
		a.Origin, a.OriginGroup = originOf(ip), originGroupOf(ip)
		return a, nil
	})
	switch {
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, errPushedUnusable):
		p.showError(w, r, errPageRequestURI)
		return
	case err != nil:
		p.log.ErrorContext(ctx, "open pushed authorization request", "err", err)
		p.showError(w, r, errPageServer)
		return
	}
	c, err := p.storage.getClient(ctx, clientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		// Deleted since it pushed: its sign-ins are over.
		p.showError(w, r, errPageRequestURI)
		return
	case err != nil:
		p.log.ErrorContext(ctx, "load the client of a pushed authorization request", "client_id", clientID, "err", err)
		p.showError(w, r, errPageServer)
		return
	}
	op.RedirectToLogin(id, p.storage.opClient(c), w, r)
}

// notIDRune tells a rune no request ID holds: IDs are URL-safe base64
// (account.NewID). Anything else names no request, and would not even
// reach the store on PostgreSQL, which refuses invalid UTF-8 and NULs in
// text.
func notIDRune(r rune) bool {
	return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_')
}

// mustPush tells whether an /authorize request without request_uri is to
// be refused because its app, or every app, must push its requests (RFC
// 9126 §5, §6). An unknown client is left to zitadel's own error page.
func (p *Provider) mustPush(r *http.Request) bool {
	if p.opts.RequirePushedAuthorizationRequests {
		return true
	}
	c, err := p.storage.getClient(r.Context(), r.Form.Get("client_id"))
	return err == nil && c.RequirePushedAuthorizationRequests
}
