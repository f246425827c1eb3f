package portal

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"

	"github.com/gorilla/sessions"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/storage"
)

// The signed cookie holds three things: the secret of the server-side
// session (single sign-on), the CSRF token, and a random browser ID that
// authorization requests are bound to (so nobody else can finish them).
const (
	keySession = "sid"
	keyCSRF    = "csrf"
	keyBrowser = "bid"
)

func (s *Server) cookie(r *http.Request) *sessions.Session {
	// Get returns a fresh session when the cookie is missing or was tampered
	// with; a bad signature is simply not signed in.
	sess, _ := s.cookies.Get(r, s.opts.CookieName)
	return sess
}

func (s *Server) save(w http.ResponseWriter, r *http.Request) error {
	if err := s.cookie(r).Save(r, w); err != nil {
		return fmt.Errorf("save the session cookie: %w", err)
	}
	return nil
}

// withCSRFToken makes sure the browser has a CSRF token and a browser ID
// before any page is rendered.
func (s *Server) withCSRFToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Machine endpoints never set cookies.
		if p := r.URL.Path; strings.HasPrefix(p, "/api/") || p == "/auth/verify" || strings.HasPrefix(p, "/avatar/") {
			next.ServeHTTP(w, r)
			return
		}
		c := s.cookie(r)
		tok, _ := c.Values[keyCSRF].(string)
		bid, _ := c.Values[keyBrowser].(string)
		if tok == "" || bid == "" {
			if s.hopForStrictCookie(w, r) {
				return
			}
			if tok == "" {
				c.Values[keyCSRF] = account.NewSecret()
			}
			if bid == "" {
				c.Values[keyBrowser] = account.NewID()
			}
			if err := c.Save(r, w); err != nil {
				s.log.ErrorContext(r.Context(), "save cookie", "err", err)
			}
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) csrfToken(r *http.Request) string {
	tok, _ := s.cookie(r).Values[keyCSRF].(string)
	return tok
}

var errCSRF = account.Errorf(account.Forbidden, "This form has expired or was not sent from this site. Go back, reload the page and try again.")

// checkCSRF compares the form's token with the cookie's in constant time.
func (s *Server) checkCSRF(r *http.Request) error {
	want := s.csrfToken(r)
	got := r.PostFormValue("csrf_token")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

// currentUser returns the signed-in user of this browser, if any.
func (s *Server) currentUser(r *http.Request) (*storage.Session, *storage.User) {
	secret, _ := s.cookie(r).Values[keySession].(string)
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
	c := s.cookie(r)
	if old, _ := c.Values[keySession].(string); old != "" {
		_ = s.acct.SignIn.EndSession(r.Context(), old)
	}
	c.Values[keySession] = secret
	c.Values[keyCSRF] = account.NewSecret()
	return s.save(w, r)
}

// signOut ends this browser's session.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) error {
	c := s.cookie(r)
	secret, _ := c.Values[keySession].(string)
	if err := s.acct.SignIn.EndSession(r.Context(), secret); err != nil {
		return err
	}
	delete(c.Values, keySession)
	c.Values[keyCSRF] = account.NewSecret()
	return s.save(w, r)
}

// EndBrowserSession signs the browser out; the provider calls it when an app
// logs the user out (RP-initiated logout). A request that carried no
// session (no cookie: a cross-site POST under SameSite=Lax, a browser that
// withheld it) has none to end, and gets no cookie: a fresh one would
// replace the session the browser still holds.
func (s *Server) EndBrowserSession(w http.ResponseWriter, r *http.Request) {
	if secret, _ := s.cookie(r).Values[keySession].(string); secret == "" {
		return
	}
	if err := s.signOut(w, r); err != nil {
		s.log.ErrorContext(r.Context(), "end session at logout", "err", err)
	}
}

func (s *Server) browserID(r *http.Request) string {
	id, _ := s.cookie(r).Values[keyBrowser].(string)
	return id
}

// BrowserID is the random ID in the browser's cookie that sign-in records
// are bound to ("" when it has none); the provider compares it with the
// record's before it hands out a code.
func (s *Server) BrowserID(r *http.Request) string { return s.browserID(r) }

// clientIP is the address of the person behind r: the TCP peer, or what a
// trusted proxy reported (package clientip, applied in front of the portal).
func clientIP(r *http.Request) string { return clientip.String(r) }
