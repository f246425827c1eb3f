// Package portal is Keyport's people-facing HTTP: sign-in, consent, logout,
// first-admin setup and the self-service pages, rendered through package
// web (the browser's cookie and the pages, shared with the provider). It
// reaches the OIDC provider only through redirects to its callback:
// account.Flow records how a sign-in ends, and the provider answers the
// app.
package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/health"
	"github.com/keyport/keyport/requestlog"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// Store is the part of storage the portal reads directly.
type Store interface {
	storage.Clients
	storage.Grants
}

// Options configure the portal.
type Options struct {
	Issuer   string
	Accounts *account.Service
	// Flow runs the sign-in records; it is their only writer.
	Flow  *account.Flow
	Store Store
	// Web is the browser's cookie and the pages, shared with the
	// provider. Required.
	Web          *web.Web
	MaxBodyBytes int64
	Now          func() time.Time
	Logger       *slog.Logger
	// Health, when set, tells /healthz whether Keyport works: nil, or an
	// error with a short reason that may be shown to anyone (503).
	Health func() error
	// Ready answers /readyz (health.Readiness): whether this instance can
	// serve. Nil answers ready whenever the portal runs.
	Ready http.Handler
	// AccessTokens lets the management API accept apps' client_credentials
	// tokens with the keyport:admin scope; nil accepts only API tokens.
	AccessTokens AccessTokens
	// Keys rotates the signing keys for the management API; nil leaves
	// POST /api/v1/keys/rotate answering 503.
	Keys KeyRotator
	// DeviceFlow decides device authorizations on /device (device.go);
	// nil: the device flow is off and the page is not found.
	DeviceFlow *account.DeviceFlow
	// DynamicRegistration serves dynamic client registration (RFC 7591,
	// 7592; registration.go); off, its endpoints are not found.
	DynamicRegistration bool
}

// KeyRotator starts a new signing key (provider.KeyManager).
type KeyRotator interface {
	Rotate(ctx context.Context) error
	SigningKeyID() string
	// SigningKeyIDs are the active keys by algorithm.
	SigningKeyIDs() map[string]string
}

// Server serves the portal.
type Server struct {
	opts    Options
	acct    *account.Service
	flow    *account.Flow
	store   Store
	web     *web.Web
	static  http.Handler
	favicon http.Handler
	log     *slog.Logger
	now     func() time.Time
	router  *mux.Router
	levels  map[routeKey]level // what each route asks of its caller (routes.go)
	docs    *apiDocs           // the /api/v1 routes' descriptions (openapi.go)
	handler http.Handler
	// issuer is opts.Issuer parsed, once rather than on each request
	// that compares a URL with it (handover.go, forwardauth.go).
	issuer *url.URL
}

// New builds the portal, parsing every template up front so a broken one
// stops start-up instead of a request.
func New(o Options) (*Server, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = 64 << 10
	}
	if o.Web == nil {
		return nil, errors.New("portal: Options.Web is required")
	}
	issuer, err := url.Parse(o.Issuer)
	if err != nil {
		return nil, fmt.Errorf("portal: issuer: %w", err)
	}
	s := &Server{
		opts:  o,
		acct:  o.Accounts,
		flow:  o.Flow,
		store: o.Store,
		web:   o.Web,
		log:   o.Logger,
		now:   o.Now,
	}
	s.issuer = issuer
	staticFS := o.Web.Static()
	s.static = http.StripPrefix("/static/", s.filesOnly(staticFS, cacheFor(24*time.Hour, iconType(http.FileServerFS(staticFS)))))
	s.favicon = cacheFor(24*time.Hour, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", icoContentType)
		http.ServeFileFS(w, r, staticFS, "favicon.ico")
	}))

	if s.router, err = s.routes(); err != nil {
		return nil, err
	}
	// Two CSRF defences: browsers' Fetch Metadata / Origin headers refuse
	// cross-site form posts up front, and every form carries a token bound to
	// the cookie for browsers that send neither header.
	cop := http.NewCrossOriginProtection()
	// The JSON API authenticates with bearer tokens, never cookies, so a
	// cross-site request there carries no ambient authority; its own
	// handlers answer in JSON.
	cop.AddInsecureBypassPattern("/api/")
	// So does dynamic client registration (bearer tokens, JSON).
	cop.AddInsecureBypassPattern(RegistrationPath)
	cop.AddInsecureBypassPattern(RegistrationPath + "/")
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.web.ErrorPage(w, r, http.StatusForbidden, "Access denied", account.ErrorMessage(errCSRF))
	}))
	s.handler = cop.Handler(s.withCSRFToken(s.router))
	return s, nil
}

// routes is the whole surface of the portal in one place: each route with
// its methods and its level (routes.go), here or in its area's register
// function.
func (s *Server) routes() (*mux.Router, error) {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(s.notFound)
	r.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.web.ErrorPage(w, r, http.StatusMethodNotAllowed, "Method not allowed", "This page does not accept that kind of request.")
	})
	t := s.newRouteTable(r)

	t.add(levelPublic, "GET HEAD", "/healthz", health.Live(s.opts.Health))
	ready := s.opts.Ready
	if ready == nil {
		ready = health.NewReadiness(0, 0, nil) // no checks: ready while it runs
	}
	t.add(levelPublic, "GET HEAD", "/readyz", ready)
	t.add(levelPublic, "GET HEAD", "/static/*", s.static)
	t.add(levelPublic, "GET HEAD", "/favicon.ico", s.favicon)
	t.add(levelPublic, "GET", "/logged-out", s.loggedOut)

	// Sign-in flow: every step returns to the dispatcher (flow.go).
	t.add(levelSignIn, "GET", "/", s.home)
	t.add(levelSignIn, "GET", "/login", s.loginPage)
	t.add(levelSignIn, "POST", "/login", s.loginSubmit)
	t.add(levelSignIn, "GET", "/consent", s.consentPage)
	t.add(levelSignIn, "POST", "/consent", s.consentSubmit)
	t.add(levelSignIn, "GET", "/logout", s.logoutPage)
	t.add(levelSignIn, "POST", "/logout", s.logoutSubmit)

	// First administrator: the handlers check the one-time link logged at
	// start-up.
	t.add(levelPublic, "GET", "/setup", s.setupPage)
	t.add(levelPublic, "POST", "/setup", s.setupSubmit)

	// The rest by area.
	s.registerProfileRoutes(t)     // /profile, /avatar/{id}
	s.registerSecurityRoutes(t)    // /security: password, TOTP, recovery codes, trusted devices
	s.registerTwoFactorRoutes(t)   // /login/2fa: the second step of a password sign-in
	s.registerPasskeyRoutes(t)     // /security/passkeys, passkey sign-in
	s.registerAccessRoutes(t)      // /security/access: app passwords, API tokens, IP allowlist; /security/activity
	s.registerAPIRoutes(t)         // /api/v1/…: JSON for API tokens
	s.registerForwardAuthRoutes(t) // /auth/verify for reverse proxies
	s.registerUpstreamRoutes(t)    // /login/upstream/…: sign-in through upstream OIDC providers
	s.registerAdminRoutes(t)       // /admin/…: administrators only
	s.registerSelfServiceRoutes(t) // /security: connected apps, signing out one browser
	s.registerWebhookPages(t)      // /security/webhooks: a person's own webhooks

	// /invite, /reset-password: the one-time links an administrator hands out.
	s.registerPasswordLinkRoutes(t)
	s.registerForgotPasswordRoutes(t) // /forgot-password: a reset link by mail
	s.registerDeviceRoutes(t)         // /device: approving a device (RFC 8628)
	s.registerRegistrationRoutes(t)   // /oauth/register: dynamic client registration (RFC 7591, 7592)
	if err := errors.Join(t.shared.errs...); err != nil {
		return nil, fmt.Errorf("portal routes: %w", err)
	}
	s.levels = t.shared.levels
	s.docs = &apiDocs{ops: t.shared.docs}
	return r, nil
}

// ServeHTTP applies the security headers and the size limit to every page.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	web.SecurityHeaders(w.Header())
	limit := s.opts.MaxBodyBytes
	if r.URL.Path == "/profile/avatar" {
		limit = max(limit, avatarBodyLimit)
	}
	if r.URL.Path == userImportPath {
		limit = max(limit, userImportBodyLimit)
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	// Request-scoped values for the audit log (account.WithRequest).
	r = r.WithContext(account.WithRequest(r.Context(), clientIP(r), r.UserAgent()))
	if r.Method == http.MethodPost && browserNavigation(r) {
		w = s.handOver(w, r)
	}
	s.handler.ServeHTTP(w, r)
}

func cacheFor(d time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(d.Seconds())))
		next.ServeHTTP(w, r)
	})
}

// icoContentType is the type of .ico files, at /favicon.ico and under
// /static/ alike: the one browsers and most servers use (Go's table says
// image/vnd.microsoft.icon).
const icoContentType = "image/x-icon"

// iconType gives .ico files icoContentType before the file server would
// pick the type by itself.
func iconType(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, ".ico") {
			w.Header().Set("Content-Type", icoContentType)
		}
		next.ServeHTTP(w, r)
	})
}

// filesOnly serves files and answers the not-found page for a folder, so
// nobody gets a listing of the static assets.
func (s *Server) filesOnly(fsys fs.FS, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
		if name == "" || strings.HasSuffix(r.URL.Path, "/") {
			s.notFound(w, r)
			return
		}
		if fi, err := fs.Stat(fsys, name); err != nil || fi.IsDir() {
			s.notFound(w, r)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.web.ErrorPage(w, r, http.StatusNotFound, "Page not found", "There is nothing at this address.")
}

// handlerFunc is a portal handler that reports failures instead of writing them.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// handle maps a handler's error to a page in one place: account errors to
// their status and user-safe message, anything else to a 500 with a reference
// that matches the log line.
func (s *Server) handle(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if p := recover(); p != nil {
				ref := requestRef(r)
				s.log.ErrorContext(r.Context(), "panic in portal handler", "path", r.URL.Path, "panic", p, "ref", ref)
				s.web.ErrorPageWithRef(w, r, http.StatusInternalServerError, "Something went wrong", account.ErrorMessage(nil), ref)
			}
		}()
		err := h(w, r)
		if err == nil {
			return
		}
		code := account.ErrorCode(err)
		status := statusFor(code)
		if code == account.Internal {
			ref := requestRef(r)
			s.log.ErrorContext(r.Context(), "portal request failed", "path", r.URL.Path, "err", err, "ref", ref)
			s.web.ErrorPageWithRef(w, r, status, "Something went wrong", account.ErrorMessage(nil), ref)
			return
		}
		setRetryAfter(w, err)
		s.web.ErrorPageWithRef(w, r, status, headingFor(status), errorText(web.PickLanguage(r, ""), err), "")
	})
}

func statusFor(c account.Code) int {
	switch c {
	case account.Invalid:
		return http.StatusBadRequest
	case account.NotFound:
		return http.StatusNotFound
	case account.Conflict:
		return http.StatusConflict
	case account.Unauthorized:
		return http.StatusUnauthorized
	case account.Forbidden:
		return http.StatusForbidden
	case account.RateLimited:
		return http.StatusTooManyRequests
	case account.Unavailable:
		return http.StatusServiceUnavailable
	case account.PreconditionFailed:
		return http.StatusPreconditionFailed
	}
	return http.StatusInternalServerError
}

func headingFor(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "This request cannot be processed"
	case http.StatusNotFound:
		return "Not found"
	case http.StatusForbidden:
		return "Access denied"
	case http.StatusUnauthorized:
		return "Please sign in"
	case http.StatusTooManyRequests:
		return "Too many attempts"
	}
	return "Something went wrong"
}

// requestRef is the reference an error page shows and its log line
// carries: the request's id (requestlog) when there is one, so the page,
// the X-Request-Id header and every log line of the request agree.
func requestRef(r *http.Request) string {
	if id := requestlog.ID(r.Context()); id != "" {
		return id
	}
	return newRef()
}

func newRef() string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}
