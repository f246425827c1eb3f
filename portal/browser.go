package portal

import (
	"crypto/subtle"
	"net/http"
	"slices"
	"strings"

	"github.com/gorilla/sessions"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The signed cookie holds three things: the secret of the server-side
// session (single sign-on), the CSRF token, and the authorization requests
// this browser started (so nobody else can finish them).
const (
	keySession = "sid"
	keyCSRF    = "csrf"
	keyFlows   = "flows"
	maxFlows   = 8
)

func (s *Server) cookie(r *http.Request) *sessions.Session {
	// Get returns a fresh session when the cookie is missing or was tampered
	// with; a bad signature is simply not signed in.
	sess, _ := s.cookies.Get(r, s.opts.CookieName)
	return sess
}

func (s *Server) save(w http.ResponseWriter, r *http.Request) error {
	if err := s.cookie(r).Save(r, w); err != nil {
		return &account.Error{Code: account.Internal, Message: account.ErrorMessage(nil), Err: err}
	}
	return nil
}

// withCSRFToken makes sure the browser has a CSRF token before any page is
// rendered.
func (s *Server) withCSRFToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := s.cookie(r)
		if tok, _ := c.Values[keyCSRF].(string); tok == "" {
			c.Values[keyCSRF] = account.NewSecret()
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
	sess, u, err := s.acct.ResumeSession(r.Context(), secret)
	if err != nil {
		return nil, nil
	}
	return &sess, &u
}

// signIn starts a session for u and puts it in the cookie, replacing any
// previous one. The CSRF token changes too, so a token seen before sign-in
// is worth nothing after.
func (s *Server) signIn(w http.ResponseWriter, r *http.Request, u storage.User, amr []string) (storage.Session, error) {
	c := s.cookie(r)
	if old, _ := c.Values[keySession].(string); old != "" {
		_ = s.acct.EndSession(r.Context(), old)
	}
	secret, sess, err := s.acct.StartSession(r.Context(), u, amr, clientIP(r), r.UserAgent())
	if err != nil {
		return storage.Session{}, err
	}
	c.Values[keySession] = secret
	c.Values[keyCSRF] = account.NewSecret()
	return sess, s.save(w, r)
}

// signOut ends this browser's session.
func (s *Server) signOut(w http.ResponseWriter, r *http.Request) error {
	c := s.cookie(r)
	secret, _ := c.Values[keySession].(string)
	if err := s.acct.EndSession(r.Context(), secret); err != nil {
		return err
	}
	delete(c.Values, keySession)
	delete(c.Values, keyFlows)
	c.Values[keyCSRF] = account.NewSecret()
	return s.save(w, r)
}

// EndBrowserSession signs the browser out; the provider calls it when an app
// logs the user out (RP-initiated logout).
func (s *Server) EndBrowserSession(w http.ResponseWriter, r *http.Request) {
	if err := s.signOut(w, r); err != nil {
		s.log.ErrorContext(r.Context(), "end session at logout", "err", err)
	}
}

func (s *Server) boundFlows(r *http.Request) []string {
	v, _ := s.cookie(r).Values[keyFlows].(string)
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

// bindFlow remembers that this browser started authorization request id.
func (s *Server) bindFlow(w http.ResponseWriter, r *http.Request, id string) error {
	ids := s.boundFlows(r)
	if slices.Contains(ids, id) {
		return nil
	}
	ids = append(ids, id)
	if len(ids) > maxFlows {
		ids = ids[len(ids)-maxFlows:]
	}
	s.cookie(r).Values[keyFlows] = strings.Join(ids, ",")
	return s.save(w, r)
}

// OwnsRequest tells whether this browser started authorization request id;
// the provider asks before it hands out a code.
func (s *Server) OwnsRequest(r *http.Request, id string) bool { return s.flowBound(r, id) }

func (s *Server) flowBound(r *http.Request, id string) bool {
	return id != "" && slices.Contains(s.boundFlows(r), id)
}

// clientIP is the peer address. Keyport does not trust X-Forwarded-For until
// a trusted-proxy setting exists.
func clientIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i >= 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}
