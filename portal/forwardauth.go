package portal

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// GET /auth/verify answers reverse proxies (nginx auth_request, Traefik
// forwardAuth, Caddy forward_auth): 200 with the user in Remote-* headers,
// or 401. It accepts HTTP Basic with an app password (the account password
// only for accounts without a second factor) or the portal session cookie.
func (s *Server) registerForwardAuthRoutes(r *mux.Router) {
	r.Handle("/auth/verify", http.HandlerFunc(s.forwardAuth)).Methods(http.MethodGet, http.MethodHead)
}

func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	var (
		u   storage.User
		err error
	)
	if login, password, ok := r.BasicAuth(); ok {
		u, _, err = s.acct.VerifyBasic(r.Context(), login, password, clientIP(r), r.UserAgent(), r.URL.Query().Get("client"))
	} else if _, cu := s.currentUser(r); cu != nil {
		u = *cu
		err = s.acct.CheckNetwork(u, clientIP(r))
	} else {
		err = account.Errorf(account.Unauthorized, "Not signed in.")
	}
	if err != nil {
		status := http.StatusUnauthorized
		if account.ErrorCode(err) == account.RateLimited {
			status = http.StatusTooManyRequests
		}
		h.Set("WWW-Authenticate", `Basic realm="Keyport", charset="UTF-8"`)
		h.Set("X-Keyport-Login", s.loginHint(r))
		w.WriteHeader(status)
		return
	}
	h.Set("Remote-User", u.Username)
	h.Set("Remote-Email", u.Email)
	h.Set("Remote-Name", headerSafe(account.DisplayName(u)))
	h.Set("Remote-Groups", strings.Join(u.Groups, ","))
	w.WriteHeader(http.StatusOK)
}

// loginHint is where the proxy may send the browser to sign in. The page to
// return to comes from the proxy's headers, and only a path is kept: the
// portal follows nothing but paths on its own host.
func (s *Server) loginHint(r *http.Request) string {
	back := r.Header.Get("X-Forwarded-Uri")
	if back == "" {
		back = r.Header.Get("X-Original-URL")
	}
	if u, err := url.Parse(back); err == nil && back != "" {
		back = u.RequestURI()
	}
	hint := strings.TrimSuffix(s.opts.Issuer, "/") + "/login"
	if rt := safeReturn(back); rt != "/" {
		hint += "?return_to=" + url.QueryEscape(rt)
	}
	return hint
}

// headerSafe drops characters a header value cannot carry.
func headerSafe(v string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, v)
}
