package portal

import (
	"crypto/subtle"
	"net/http"
	"strings"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/storage"
)

// withCSRFToken makes sure the browser has a CSRF token and a browser ID
// before any page is rendered.
func (s *Server) withCSRFToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Machine endpoints never set cookies.
		if p := r.URL.Path; strings.HasPrefix(p, "/api/") || p == "/auth/verify" || strings.HasPrefix(p, "/avatar/") || isRegistrationPath(p) {
			next.ServeHTTP(w, r)
			return
		}
		tok, bid := s.web.CSRFToken(r), s.web.BrowserID(r)
		if tok == "" || bid == "" {
			if s.hopForStrictCookie(w, r) {
				return
			}
			if tok == "" {
				s.web.SetCSRFToken(r, account.NewSecret())
			}
			if bid == "" {
				s.web.SetBrowserID(r, account.NewID())
			}
			if err := s.web.Cookie(r).Save(r, w); err != nil {
				s.log.ErrorContext(r.Context(), "save cookie", "err", err)
			}
		}
		next.ServeHTTP(w, r)
	})
}

var errCSRF = account.Errorf(account.Forbidden, "This form has expired or was not sent from this site. Go back, reload the page and try again.")

// checkCSRF compares the form's token with the cookie's in constant time.
func (s *Server) checkCSRF(r *http.Request) error {
	want := s.web.CSRFToken(r)
	got := r.PostFormValue("csrf_token")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

// currentUser returns the signed-in user of this browser, if any.
func (s *Server) currentUser(r *http.Request) (*storage.Session, *storage.User) {
	secret := s.web.SessionSecret(r)
	if secret == "" {
		return nil, nil
	}
	sess, u, err := s.acct.SignIn.ResumeSession(r.Context(), secret)
	if err != nil {
		return nil, nil
	}
	return &sess, &u
}

// signIn starts a session for u and puts it in the cookie, replacing any
// previous one. The CSRF token changes too, so a token seen before sign-in
// is worth nothing after.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, u storage.User, amr []string) (storage.Session, error) {
	secret, sess, err := s.acct.SignIn.StartSession(r.Context(), u, amr, clientIP(r), r.UserAgent())
	if err != nil {
		return storage.Session{}, err
	}
	return sess, s.adoptSession(w, r, secret)
}

// adoptSession puts a new session's secret in the cookie, ending the
// browser's previous session.
func (s *Server) adoptSession(w http.ResponseWriter, r *http.Request, secret string) error {
	if old := s.web.SessionSecret(r); old != "" {
		_ = s.acct.SignIn.EndSession(r.Context(), old)
	}
	s.web.SetSessionSecret(r, secret)
	s.web.SetCSRFToken(r, account.NewSecret())
	return s.web.Save(w, r)
}

// signOut ends this browser's session.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) error {
	if err := s.acct.SignIn.EndSession(r.Context(), s.web.SessionSecret(r)); err != nil {
		return err
	}
	s.web.SetSessionSecret(r, "")
	s.web.SetCSRFToken(r, account.NewSecret())
	return s.web.Save(w, r)
}

// EndBrowserSession signs the browser out; the provider calls it when an app
// logs the user out (RP-initiated logout). A request that carried no
// session (no cookie: a cross-site POST under SameSite=Lax, a browser that
// withheld it) has none to end, and gets no cookie: a fresh one would
// replace the session the browser still holds. When apps of the session
// take front-channel logout, it answers with the signed-out page that
// loads them and then goes on to next, and reports that it answered.
func (s *Server) EndBrowserSession(w http.ResponseWriter, r *http.Request, next string) bool {
	if s.web.SessionSecret(r) == "" {
		return false
	}
	frames, err := s.signOutTelling(w, r)
	if err != nil {
		s.log.ErrorContext(r.Context(), "end session at logout", "err", err)
		return false
	}
	if len(frames) == 0 {
		return false
	}
	s.showSignedOut(w, r, frames, next)
	return true
}

// clientIP is the address of the person behind r: the TCP peer, or what a
// trusted proxy reported (package clientip, applied in front of the portal).
func clientIP(r *http.Request) string { return clientip.String(r) }
