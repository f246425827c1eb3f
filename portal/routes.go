package portal

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/requestlog"
)

// level is what a route asks of its caller before its handler runs. Every
// route is registered with one (routeTable.add), which picks the wrapper
// that enforces it, so a reader sees a route's level next to its path and
// a route cannot be added without one (TestEveryRouteHasALevel).
type level int

const (
	// levelPublic: anyone, no session needed (health, static files,
	// avatars, the first-admin setup behind its one-time link).
	levelPublic level = iota + 1
	// levelSignIn: a step of signing in or out (password, second factor,
	// consent, sign-out); the sign-in in progress decides what it shows.
	levelSignIn
	// levelSignedIn: a signed-in browser (withUser), CSRF-checked.
	levelSignedIn
	// levelRecentSignIn: a security change by a signed-in browser. The
	// handler confirms the person before it changes anything: a recent
	// sign-in or the password again (confirmIdentity), or, for the
	// password and turning 2FA off, the password always. Handlers check it
	// themselves, at the point their page allows (after "confirm=yes",
	// after a stale form is recognised), so that every page and message
	// stays as it was; the wrapper marks the request so that
	// confirmIdentity refuses to run on a route not registered here.
	levelRecentSignIn
	// levelAdmin: a signed-in administrator (withAdmin).
	levelAdmin
	// levelAPIToken: a script with a bearer API token (withToken).
	levelAPIToken
	// levelForwardAuth: a reverse proxy asking about its visitor, with an
	// app password or the session cookie (/auth/verify).
	levelForwardAuth
	// levelAdminAPI: the management API (withAdminAPI): an administrator's
	// API token, an app's token with the keyport:admin scope, or the local
	// command line through the control socket.
	levelAdminAPI
	// levelRegistration: dynamic client registration (RFC 7591, 7592):
	// a bearer initial access token or registration access token, which
	// the handler checks (withRegistration); not found while [oauth]
	// dynamic_registration is off.
	levelRegistration
)

func (l level) String() string {
	switch l {
	case levelPublic:
		return "public"
	case levelSignIn:
		return "sign-in"
	case levelSignedIn:
		return "signed-in"
	case levelRecentSignIn:
		return "recent-sign-in"
	case levelAdmin:
		return "admin"
	case levelAPIToken:
		return "api-token"
	case levelForwardAuth:
		return "forward-auth"
	case levelAdminAPI:
		return "admin-api"
	case levelRegistration:
		return "registration"
	}
	return fmt.Sprintf("level(%d)", int(l))
}

// routeKey names a route as the router matches it: one method and the
// path template ("/admin/directories/{id}/edit"; a prefix ends in "/").
type routeKey struct{ Method, Path string }

// uploadForm is a signed-in route that takes one file (withUserUpload).
type uploadForm struct {
	field   string
	maxFile int64
	h       uploadHandler
}

// routeTable registers routes on a router with their levels.
type routeTable struct {
	s      *Server
	router *mux.Router
	shared *routeLevels
}

// routeLevels is what every table of one Server shares, its subrouters'
// included: the level of each route, and the registration mistakes.
type routeLevels struct {
	levels map[routeKey]level
	errs   []error
	// docs describes the /api/v1 routes (addAPI, openapi.go).
	docs map[routeKey]apiOp
}

func (s *Server) newRouteTable(r *mux.Router) *routeTable {
	return &routeTable{s: s, router: r, shared: &routeLevels{levels: map[routeKey]level{}, docs: map[routeKey]apiOp{}}}
}

// within registers on a subrouter into the same table.
func (t *routeTable) within(r *mux.Router) *routeTable {
	return &routeTable{s: t.s, router: r, shared: t.shared}
}

// add registers h for methods (space-separated, "GET HEAD") at path at
// level lvl, wrapped by the level's wrapper. A path ending in "/*" is a
// prefix. h's type must suit the level: a userHandler for a signed-in
// level, a func(w, r) error for a public or sign-in page, and so on; a
// mismatch, an unknown method or a route registered twice is recorded and
// makes New fail.
func (t *routeTable) add(lvl level, methods, path string, h any) {
	t.register(lvl, methods, path, h)
}

// register is add, returning the route's path template ("" when it was
// not registered).
func (t *routeTable) register(lvl level, methods, path string, h any) string {
	wrapped, err := t.wrap(lvl, h)
	ms := strings.Fields(methods)
	for _, m := range ms {
		if !slices.Contains(knownMethods, m) {
			err = fmt.Errorf("unknown method %q", m)
		}
	}
	if len(ms) == 0 {
		err = fmt.Errorf("no method")
	}
	if err != nil {
		t.shared.errs = append(t.shared.errs, fmt.Errorf("route %s %s (%s): %w", methods, path, lvl, err))
		return ""
	}
	var route *mux.Route
	if prefix, ok := strings.CutSuffix(path, "*"); ok {
		route = t.router.PathPrefix(prefix).Handler(wrapped)
	} else {
		route = t.router.Handle(path, wrapped)
	}
	route.Methods(ms...)
	tmpl, err := route.GetPathTemplate()
	if err != nil {
		t.shared.errs = append(t.shared.errs, fmt.Errorf("route %s %s: %w", methods, path, err))
		return ""
	}
	// Logs and metrics name the request by its template, never its path.
	route.Handler(requestlog.Route(tmpl, wrapped))
	for _, m := range ms {
		k := routeKey{m, tmpl}
		if _, dup := t.shared.levels[k]; dup {
			t.shared.errs = append(t.shared.errs, fmt.Errorf("route %s %s registered twice", m, tmpl))
		}
		t.shared.levels[k] = lvl
	}
	return tmpl
}

var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPatch, http.MethodPut, http.MethodDelete}

// wrap applies lvl's wrapper to h, or says why h does not fit lvl.
func (t *routeTable) wrap(lvl level, h any) (http.Handler, error) {
	s := t.s
	switch lvl {
	case levelPublic:
		switch h := h.(type) {
		case http.Handler:
			return h, nil
		case func(http.ResponseWriter, *http.Request):
			return http.HandlerFunc(h), nil
		case func(http.ResponseWriter, *http.Request) error:
			return s.handle(h), nil
		}
	case levelSignIn:
		switch h := h.(type) {
		case func(http.ResponseWriter, *http.Request) error:
			return s.handle(h), nil
		case func(http.ResponseWriter, *http.Request, []byte) (any, error):
			return s.jsonHandle(h), nil
		}
	case levelSignedIn:
		switch h := h.(type) {
		case func(http.ResponseWriter, *http.Request, me) error:
			return s.withUser(h), nil
		case func(http.ResponseWriter, *http.Request, me, []byte) (any, error):
			return s.jsonUser(h), nil
		case uploadForm:
			return s.withUserUpload(h.field, h.maxFile, h.h), nil
		}
	case levelRecentSignIn:
		switch h := h.(type) {
		case func(http.ResponseWriter, *http.Request, me) error:
			return markRecentSignIn(s.withUser(h)), nil
		case func(http.ResponseWriter, *http.Request, me, []byte) (any, error):
			return markRecentSignIn(s.jsonUser(h)), nil
		}
	case levelAdmin:
		if h, ok := h.(func(http.ResponseWriter, *http.Request, me) error); ok {
			return s.withAdmin(h), nil
		}
	case levelAPIToken:
		if h, ok := h.(func(http.ResponseWriter, *http.Request, apiCaller) error); ok {
			return s.withToken(h), nil
		}
	case levelForwardAuth:
		if h, ok := h.(func(http.ResponseWriter, *http.Request)); ok {
			return http.HandlerFunc(h), nil
		}
	case levelAdminAPI:
		if h, ok := h.(func(http.ResponseWriter, *http.Request, account.Actor) error); ok {
			return s.withAdminAPI(h), nil
		}
	case levelRegistration:
		if h, ok := h.(registrationHandler); ok {
			return s.withRegistration(h), nil
		}
	default:
		return nil, fmt.Errorf("unknown level")
	}
	return nil, fmt.Errorf("a %T handler does not fit this level", h)
}

// recentSignInRoute marks a request to a levelRecentSignIn route.
type recentSignInRoute struct{}

func markRecentSignIn(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), recentSignInRoute{}, true)))
	})
}

// onRecentSignInRoute tells whether the request came through a
// levelRecentSignIn route.
func onRecentSignInRoute(ctx context.Context) bool {
	marked, _ := ctx.Value(recentSignInRoute{}).(bool)
	return marked
}

// Route is one method and path template of the portal.
type Route struct{ Method, Path string }

// AdminRoutes lists the console's routes and the management API's: the
// end-to-end test calls each as a signed-in non-admin and with a
// non-admin's API token, and expects 403 from every one.
func (s *Server) AdminRoutes() (console, api []Route) {
	for k, l := range s.levels {
		switch l {
		case levelAdmin:
			console = append(console, Route(k))
		case levelAdminAPI:
			api = append(api, Route(k))
		}
	}
	byPath := func(a, b Route) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) }
	slices.SortFunc(console, byPath)
	slices.SortFunc(api, byPath)
	return console, api
}

// RecentSignInRoutes lists the routes that make security changes, which
// need a recent sign-in or the password: the end-to-end test posts to each
// without either and checks that nothing changes.
func (s *Server) RecentSignInRoutes() []Route {
	var out []Route
	for k, l := range s.levels {
		if l == levelRecentSignIn {
			out = append(out, Route(k))
		}
	}
	slices.SortFunc(out, func(a, b Route) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	return out
}
