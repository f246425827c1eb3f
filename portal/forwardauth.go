package portal

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// GET /auth/verify answers reverse proxies (nginx auth_request, Traefik
// forwardAuth, Caddy forward_auth): 200 with the user in Remote-* headers,
// or 401. It accepts HTTP Basic with an app password (the account password
// only for accounts without a second factor) or the portal session cookie.
// It never sets a cookie (withCSRFToken skips it) and is never cached.
func (s *Server) registerForwardAuthRoutes(t *routeTable) {
	t.add(levelForwardAuth, "GET HEAD", "/auth/verify", s.forwardAuth)
}

func (s *Server) forwardAuth(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	u, err := s.forwardAuthUser(r)
	if errors.Is(err, account.ErrNotInAppGroups) {
		// Signed in, but not allowed into this app: 403, not a prompt to
		// sign in again.
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if err != nil {
		status := http.StatusUnauthorized
		switch account.ErrorCode(err) {
		case account.RateLimited:
			// Refused before the password was checked; never held open.
			status = http.StatusTooManyRequests
			setRetryAfter(w, err)
		case account.Unavailable:
			// The directory is down, or too many passwords are being
			// checked (that one says when, and is not worth a log line
			// each time): try again later, not with other credentials.
			if account.RetryAfter(err) == 0 {
				s.log.WarnContext(r.Context(), "forward auth unavailable", "err", err)
			}
			status = http.StatusServiceUnavailable
			setRetryAfter(w, err)
		case account.Internal:
			s.log.ErrorContext(r.Context(), "forward auth failed", "err", err)
			status = http.StatusInternalServerError
		}
		if status == http.StatusUnauthorized || status == http.StatusTooManyRequests {
			h.Set("WWW-Authenticate", `Basic realm="Keyport", charset="UTF-8"`)
			h.Set("X-Keyport-Login", s.loginHint(r))
		}
		w.WriteHeader(status)
		return
	}
	h.Set("Remote-User", u.Username)
	h.Set("Remote-Email", headerSafe(u.Email))
	h.Set("Remote-Name", headerSafe(account.DisplayName(u)))
	h.Set("Remote-Groups", headerSafe(strings.Join(u.Groups, ",")))
	w.WriteHeader(http.StatusOK)
}

// forwardAuthUser is the person behind the request and allowed into the
// app the proxy names (?client=ID): Basic credentials when sent (an app
// password may be limited to that app; VerifyBasic applies its allowed
// groups before it records anything as a success), else the browser's
// portal session, under the same allowlist, 2FA rules and allowed groups
// as sign-in. A person outside the app's groups is refused with
// account.ErrNotInAppGroups in the chain.
func (s *Server) forwardAuthUser(r *http.Request) (storage.User, error) {
	if login, password, ok := r.BasicAuth(); ok {
		u, _, err := s.acct.SignIn.VerifyBasic(r.Context(), login, password, clientIP(r), r.UserAgent(), r.URL.Query().Get("client"))
		return u, err
	}
	_, u := s.currentUser(r)
	if u == nil {
		return storage.User{}, account.Errorf(account.Unauthorized, "Not signed in.")
	}
	if err := s.acct.SignIn.CheckNetwork(*u, clientIP(r)); err != nil {
		return storage.User{}, err
	}
	if err := s.acct.Credentials.CheckTwoFactorPolicy(r.Context(), *u); err != nil {
		return storage.User{}, err
	}
	if err := s.forwardAuthApp(r, *u); err != nil {
		if errors.Is(err, account.ErrNotInAppGroups) {
			// A Basic refusal is in the person's history; a session's is
			// logged here.
			s.log.InfoContext(r.Context(), "forward auth refused: the user is not in the app's allowed groups", "client_id", account.LogName(r.URL.Query().Get("client")), "user_id", u.ID)
		}
		return storage.User{}, err
	}
	return *u, nil
}

// forwardAuthApp applies the allowed groups of the app the proxy names
// (?client=ID) to a session, as a sign-in to that app through OIDC would.
// An app that is not registered has no rules here.
func (s *Server) forwardAuthApp(r *http.Request, u storage.User) error {
	id := r.URL.Query().Get("client")
	if id == "" {
		return nil
	}
	c, _, err := s.acct.Clients.GetClient(r.Context(), id)
	if account.ErrorCode(err) == account.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	return account.MayUseClient(u, c)
}

// loginHint is where the proxy may send the browser to sign in. The page to
// come back to is taken from the proxy's headers only when it is on
// Keyport's own host, and only as a path: the portal follows nothing but
// paths on its own host, so no header can make it an open redirect.
func (s *Server) loginHint(r *http.Request) string {
	hint := strings.TrimSuffix(s.opts.Issuer, "/") + "/login"
	if back := s.forwardedPath(r); back != "/" {
		hint += "?return_to=" + url.QueryEscape(back)
	}
	return hint
}

// forwardedPath is the path (and query) of the page the proxy checked,
// from X-Forwarded-Uri (Traefik, Caddy; with X-Forwarded-Host) or
// X-Original-URL (nginx); "/" when there is none, or it is on another host.
func (s *Server) forwardedPath(r *http.Request) string {
	raw, host := r.Header.Get("X-Forwarded-Uri"), r.Header.Get("X-Forwarded-Host")
	if raw == "" {
		raw = r.Header.Get("X-Original-URL")
	}
	if raw == "" {
		return "/"
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "/"
	}
	if u.Host != "" {
		host = u.Host
	}
	scheme := u.Scheme
	if scheme == "" {
		scheme = r.Header.Get("X-Forwarded-Proto")
	}
	if host != "" && !s.isIssuerHost(host, scheme) {
		return "/"
	}
	if u.Host == "" && safeReturn(raw) == "/" {
		// A bare value that is no plain path (a backslash after the slash, a "javascript:" URL).
		return "/"
	}
	return safeReturn(u.RequestURI())
}

// isIssuerHost compares a host[:port] with the issuer's, treating a missing
// port as the scheme's default.
func (s *Server) isIssuerHost(host, scheme string) bool {
	iss := s.issuer
	if scheme == "" {
		scheme = iss.Scheme
	}
	return strings.EqualFold(hostPort(iss.Host, iss.Scheme), hostPort(host, scheme))
}

func hostPort(host, scheme string) string {
	if _, _, err := net.SplitHostPort(host); err == nil {
		return host
	}
	port := "443"
	if strings.EqualFold(scheme, "http") {
		port = "80"
	}
	return net.JoinHostPort(strings.Trim(host, "[]"), port)
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
