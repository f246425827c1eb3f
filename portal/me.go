package portal

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"unicode"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// me is the signed-in person a portal page is for.
type me struct {
	Session storage.Session
	User    storage.User
}

// userHandler is a portal handler that needs a signed-in user.
type userHandler func(w http.ResponseWriter, r *http.Request, m me) error

// withUser runs h for a signed-in browser. Anyone else is sent to the
// sign-in page (GET) and back here afterwards, or refused (other methods).
// State-changing requests also pass the CSRF check here, so no handler
// behind withUser can forget it.
func (s *Server) withUser(h userHandler) http.Handler {
	return s.handle(func(w http.ResponseWriter, r *http.Request) error {
		return s.signedIn(w, r, parseForm, h)
	})
}

// signedIn is withUser's work, with the body of a request that changes
// something read by read (a form; withUserUpload's one file) once the
// person is known and before the CSRF check, which needs the form's token.
func (s *Server) signedIn(w http.ResponseWriter, r *http.Request, read func(*http.Request) error, h userHandler) error {
	sess, u := s.currentUser(r)
	if u == nil {
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			http.Redirect(w, r, "/login?return_to="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return nil
		}
		return account.Errorf(account.Unauthorized, "Your session has ended. Please sign in again.")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		if err := read(r); err != nil {
			return err
		}
		if err := s.checkCSRF(r); err != nil {
			return err
		}
	}
	// An admin who requires a second factor gets it before anything
	// else: every page but the enrolment pages sends the user there.
	if p := s.acct.Policy(); (p.Require2FA || p.Require2FAForAdmins && u.Admin) && !enrolmentPath(r.URL.Path) {
		if needs, err := s.acct.Credentials.NeedsEnrolment(r.Context(), *u); err != nil {
			return err
		} else if needs {
			http.Redirect(w, r, "/security?return_to="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return nil
		}
	}
	return h(w, r, me{Session: *sess, User: *u})
}

var errTooLarge = account.Errorf(account.Invalid, "What you sent is too large. Images may be at most 1 MiB; other forms hold much less.")

// parseForm reads a form body (multipart for uploads) within the request's
// size limit, so an oversized upload gets a message saying so instead of
// looking like a missing CSRF token.
func parseForm(r *http.Request) error {
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(2 << 20)
	} else {
		err = r.ParseForm()
	}
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return errTooLarge
	}
	if err != nil && !errors.Is(err, http.ErrNotMultipart) {
		return account.Errorf(account.Invalid, "The form could not be read.")
	}
	return nil
}

// enrolmentPath: the pages where a user sets up a second factor.
func enrolmentPath(p string) bool {
	return p == "/security" || strings.HasPrefix(p, "/security/totp/") || strings.HasPrefix(p, "/security/passkeys")
}

// confirmIdentity guards security changes (a new way to sign in, new
// API tokens, the IP allowlist): it passes when the session signed in
// recently, or when the form carries the correct current password in the
// field "confirm_password".
func (s *Server) confirmIdentity(r *http.Request, m me) error {
	return s.confirmIdentityWith(r, m, r.PostFormValue("confirm_password"))
}

// confirmIdentityWith is confirmIdentity with the password from elsewhere
// (a JSON body). It runs only on routes registered at levelRecentSignIn,
// so the route table lists every route that makes a security change: a
// handler that calls it from any other route fails with an internal error
// in the first test that reaches it.
func (s *Server) confirmIdentityWith(r *http.Request, m me, password string) error {
	if !onRecentSignInRoute(r.Context()) {
		return fmt.Errorf("confirm identity on %s %s: the route is not registered at level %s", r.Method, r.URL.Path, levelRecentSignIn)
	}
	return s.acct.SignIn.Reauthenticate(r.Context(), m.User, m.Session, password, clientIP(r), r.UserAgent())
}

// safeReturn accepts only a path on this site as a place to go back to
// after signing in (see localPath); anything else becomes "/".
func safeReturn(raw string) string {
	if p, ok := localPath(raw, maxReturn); ok {
		return p
	}
	return "/"
}

// maxReturn bounds a return_to path.
const maxReturn = 2048

// localPath accepts raw, up to limit bytes, when it is a path on this
// site and nothing a browser could read as another one: no scheme, no
// host, no "//" or "/\" (another host to a browser), no control
// characters.
func localPath(raw string, limit int) (string, bool) {
	if raw == "" || len(raw) > limit || !strings.HasPrefix(raw, "/") || strings.HasPrefix(raw, "//") || strings.HasPrefix(raw, "/\\") {
		return "", false
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || strings.ContainsFunc(raw, unicode.IsControl) {
		return "", false
	}
	return raw, true
}
