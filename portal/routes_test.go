package portal

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
)

// Every route the router can match was registered through routeTable.add,
// so it has a level; a route added with the router's own Handle has none
// and fails here.
func TestEveryRouteHasALevel(t *testing.T) {
	s, err := New(Options{Web: testWeb(t)})
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	err = s.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		if route.GetHandler() == nil {
			return nil // the /api/v1 prefix that holds the API's subrouter
		}
		path, err := route.GetPathTemplate()
		if err != nil {
			t.Errorf("a route without a path: %v", err)
			return nil
		}
		methods, err := route.GetMethods()
		if err != nil || len(methods) == 0 {
			t.Errorf("%s answers any method: register it with its methods and level", path)
			return nil
		}
		for _, m := range methods {
			seen++
			if _, ok := s.levels[routeKey{m, path}]; !ok {
				t.Errorf("%s %s has no level: register it with routeTable.add", m, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if seen != len(s.levels) {
		t.Errorf("the router has %d method+path routes, the table %d", seen, len(s.levels))
	}

	for _, c := range []struct {
		method, path string
		want         level
	}{
		{http.MethodGet, "/healthz", levelPublic},
		{http.MethodHead, "/healthz", levelPublic},
		{http.MethodGet, "/readyz", levelPublic},
		{http.MethodHead, "/readyz", levelPublic},
		{http.MethodGet, "/static/", levelPublic},
		{http.MethodPost, "/login", levelSignIn},
		{http.MethodPost, "/login/2fa/passkey/finish", levelSignIn},
		{http.MethodGet, "/security", levelSignedIn},
		{http.MethodPost, "/profile/avatar", levelSignedIn},
		{http.MethodPost, "/security/totp/begin", levelRecentSignIn},
		{http.MethodPost, "/security/passkeys/register/begin", levelRecentSignIn},
		{http.MethodPost, "/security/api-tokens", levelRecentSignIn},
		{http.MethodGet, "/admin/directories", levelAdmin},
		{http.MethodPost, "/admin/directories/{id}/delete", levelAdmin},
		{http.MethodPost, "/admin/upstreams/{id}/edit", levelAdmin},
		{http.MethodPatch, "/api/v1/me", levelAPIToken},
		{http.MethodGet, "/auth/verify", levelForwardAuth},
		{http.MethodGet, "/device", levelSignedIn},
		{http.MethodPost, "/device", levelSignedIn},
	} {
		if got := s.levels[routeKey{c.method, c.path}]; got != c.want {
			t.Errorf("%s %s: level %s, want %s", c.method, c.path, got, c.want)
		}
	}
	for k, l := range s.levels {
		if strings.HasPrefix(k.Path, "/admin/") && l != levelAdmin {
			t.Errorf("%s %s: level %s, want admin", k.Method, k.Path, l)
		}
	}
}

// A handler that does not fit its level, an unknown method and a route
// registered twice stop New instead of serving a route with the wrong
// wrapper.
func TestRouteTableRefusesMistakes(t *testing.T) {
	s := &Server{}
	page := func(http.ResponseWriter, *http.Request, me) error { return nil }
	for name, register := range map[string]func(*routeTable){
		"signed-in handler at public": func(t *routeTable) { t.add(levelPublic, "GET", "/x", page) },
		"public handler at admin":     func(t *routeTable) { t.add(levelAdmin, "GET", "/x", s.loggedOut) },
		"unknown method":              func(t *routeTable) { t.add(levelSignedIn, "GTE", "/x", page) },
		"no method":                   func(t *routeTable) { t.add(levelSignedIn, "", "/x", page) },
		"twice": func(t *routeTable) {
			t.add(levelSignedIn, "GET", "/x", page)
			t.add(levelAdmin, "GET", "/x", page)
		},
	} {
		rt := s.newRouteTable(mux.NewRouter())
		register(rt)
		if len(rt.shared.errs) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
}

// confirmIdentity on a route not registered at levelRecentSignIn is a
// mistake in the route table: it fails as an internal error, which every
// page shows as a 500, instead of quietly guarding a route the table says
// needs nothing.
func TestConfirmIdentityNeedsARecentSignInRoute(t *testing.T) {
	s := &Server{}
	r := httptest.NewRequest(http.MethodPost, "/security/devices/forget", strings.NewReader("confirm_password=x"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	err := s.confirmIdentity(r, me{})
	if err == nil || account.ErrorCode(err) != account.Internal {
		t.Fatalf("confirmIdentity on an unmarked route: %v", err)
	}
	marked := false
	markRecentSignIn(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		marked = onRecentSignInRoute(r.Context())
	})).ServeHTTP(httptest.NewRecorder(), r)
	if !marked {
		t.Error("markRecentSignIn does not mark the request")
	}
}
