package web

import (
	"fmt"
	"net/http"

	"github.com/gorilla/sessions"
)

// The signed cookie holds three things: the secret of the server-side
// session (single sign-on), the CSRF token, and a random browser ID that
// authorization requests are bound to (so nobody else can finish them).
const (
	keySession = "sid"
	keyCSRF    = "csrf"
	keyBrowser = "bid"
)

// Cookie is the browser's signed cookie. Get returns a fresh one when the
// cookie is missing or was tampered with; a bad signature is simply not
// signed in. Other values (a ceremony's ID, an upstream sign-in's state)
// may be kept in it under keys of their own.
func (s *Web) Cookie(r *http.Request) *sessions.Session {
	sess, _ := s.cookies.Get(r, s.opts.CookieName)
	if life := s.opts.SessionLifetime; life != nil && sess.Options.MaxAge >= 0 {
		// Each request's cookie carries the lifetime in force now (a
		// negative Max-Age deletes the cookie and stays).
		sess.Options.MaxAge = int(life().Seconds())
	}
	return sess
}

// Save writes the cookie of r to the response.
func (s *Web) Save(w http.ResponseWriter, r *http.Request) error {
	if err := s.Cookie(r).Save(r, w); err != nil {
		return fmt.Errorf("save the session cookie: %w", err)
	}
	return nil
}

// CookieName names the browser's cookie.
func (s *Web) CookieName() string { return s.opts.CookieName }

// CookieSecure tells whether cookies are sent over HTTPS only.
func (s *Web) CookieSecure() bool { return s.opts.CookieSecure }

// CookieSameSite is the cookie's SameSite mode.
func (s *Web) CookieSameSite() http.SameSite { return s.opts.CookieSameSite }

// BrowserID is the random ID in the browser's cookie that sign-in records
// are bound to ("" when it has none); the provider compares it with the
// record's before it hands out a code.
func (s *Web) BrowserID(r *http.Request) string {
	id, _ := s.Cookie(r).Values[keyBrowser].(string)
	return id
}

// SetBrowserID puts id in the cookie of r (saved by Save).
func (s *Web) SetBrowserID(r *http.Request, id string) { s.Cookie(r).Values[keyBrowser] = id }

// CSRFToken is the token every form of the browser must carry ("" when the
// cookie has none yet).
func (s *Web) CSRFToken(r *http.Request) string {
	tok, _ := s.Cookie(r).Values[keyCSRF].(string)
	return tok
}

// SetCSRFToken puts tok in the cookie of r (saved by Save).
func (s *Web) SetCSRFToken(r *http.Request, tok string) { s.Cookie(r).Values[keyCSRF] = tok }

// SessionSecret is the secret of the browser's server-side session ("" when
// it is signed in nowhere).
func (s *Web) SessionSecret(r *http.Request) string {
	secret, _ := s.Cookie(r).Values[keySession].(string)
	return secret
}

// SetSessionSecret puts secret in the cookie of r, or removes the session
// when secret is "" (saved by Save).
func (s *Web) SetSessionSecret(r *http.Request, secret string) {
	if secret == "" {
		delete(s.Cookie(r).Values, keySession)
		return
	}
	s.Cookie(r).Values[keySession] = secret
}
