package portal

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

func (s *Server) registerPasskeyRoutes(t *routeTable) {
	// Pages (CSRF on POST).
	t.add(levelSignedIn, "GET", "/security/passkeys", s.passkeysPage)
	t.add(levelSignedIn, "POST", "/security/passkeys/rename", s.passkeyRename)
	t.add(levelSignedIn, "GET", "/security/passkeys/remove", s.passkeyRemovePage) // asks first
	t.add(levelRecentSignIn, "POST", "/security/passkeys/remove", s.passkeyRemove)
	// JSON ceremonies for webauthn.js; the CSRF token travels in X-CSRF-Token.
	t.add(levelRecentSignIn, "POST", "/security/passkeys/register/begin", s.passkeyRegisterBegin)
	// Finishes only the ceremony that register/begin started, after its
	// recent sign-in or password.
	t.add(levelSignedIn, "POST", "/security/passkeys/register/finish", s.passkeyRegisterFinish)
	t.add(levelSignIn, "POST", "/login/passkey/begin", s.passkeyLoginBegin)
	t.add(levelSignIn, "POST", "/login/passkey/finish", s.passkeyLoginFinish)
	t.add(levelSignIn, "POST", "/login/2fa/passkey/begin", s.passkey2FABegin)   // + pending password step
	t.add(levelSignIn, "POST", "/login/2fa/passkey/finish", s.passkey2FAFinish) // + pending password step
}

// The ceremony ID lives in the signed cookie between begin and finish, so
// only the browser that began a ceremony can finish it.
const keyCeremony = "wa_ceremony"

// maxPasskeyJSON bounds a ceremony request: the authenticator's answer and
// a little wrapping.
const maxPasskeyJSON = account.MaxPasskeyAnswerBytes + 4<<10

type passkeyView struct {
	ID, Name, Created, LastUsed string
	Error                       string // a failed rename of this passkey
}

type passkeysData struct {
	web.Base
	Passkeys     []passkeyView
	Available    bool // the issuer can be a WebAuthn relying party
	Notice       string
	Error        string
	NeedsConfirm bool // no recent sign-in: changes ask for the password
	ByDirectory  bool // the user's directory handles second factors
}

// passkeyInput is what a failed form sent, shown again with its message.
type passkeyInput struct {
	ID, Name string
}

func (s *Server) passkeysPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showPasskeys(w, r, m, http.StatusOK, nil, passkeyInput{})
}

func (s *Server) showPasskeys(w http.ResponseWriter, r *http.Request, m me, status int, failure error, typed passkeyInput) error {
	u := m.User
	d := &passkeysData{Base: s.web.Base(r, &u, "Passkeys"), Available: s.acct.Credentials.PasskeysAvailable(), NeedsConfirm: !s.acct.SignIn.RecentlyAuthenticated(m.Session)}
	d.Nav = "passkeys"
	d.ByDirectory = s.acct.Credentials.SecondFactorByDirectory(u)
	keys, err := s.acct.Credentials.Passkeys(r.Context(), u.ID)
	if err != nil {
		return err
	}
	msg := ""
	if failure != nil {
		msg = errorText(d.Lang, failure)
		setRetryAfter(w, failure)
	}
	for _, k := range keys {
		v := passkeyView{ID: k.ID, Name: k.Name, Created: showTime(k.CreatedAt, u.Zoneinfo)}
		if !k.LastUsedAt.IsZero() {
			v.LastUsed = showTime(k.LastUsedAt, u.Zoneinfo)
		}
		if typed.ID == k.ID && account.ErrorField(failure) == "name" {
			v.Name, v.Error = typed.Name, msg // keep what was typed, next to the message
		}
		d.Passkeys = append(d.Passkeys, v)
	}
	if msg != "" {
		d.Error = msg
	}
	switch r.URL.Query().Get("done") {
	case "added":
		d.Notice = web.Translate(d.Lang, "Your passkey was added.")
	case "removed":
		d.Notice = web.Translate(d.Lang, "The passkey was removed.")
	case "renamed":
		d.Notice = web.Translate(d.Lang, "The passkey was renamed.")
	}
	s.web.Render(w, r, status, "passkeys", d)
	return nil
}

// passkeyFailed shows the page again for a refused change, or hands an
// internal error to the error page.
func (s *Server) passkeyFailed(w http.ResponseWriter, r *http.Request, m me, err error, typed passkeyInput) error {
	code := account.ErrorCode(err)
	if code == account.Internal {
		return err
	}
	return s.showPasskeys(w, r, m, statusFor(code), err, typed)
}

func (s *Server) passkeyRename(w http.ResponseWriter, r *http.Request, m me) error {
	in := passkeyInput{ID: r.PostFormValue("id"), Name: r.PostFormValue("name")}
	if err := s.acct.Credentials.RenamePasskey(r.Context(), m.User, in.ID, in.Name); err != nil {
		return s.passkeyFailed(w, r, m, err, in)
	}
	http.Redirect(w, r, "/security/passkeys?done=renamed", http.StatusSeeOther)
	return nil
}

// passkeyRemovePage asks before a passkey is removed (and for the password
// when the sign-in is not recent).
func (s *Server) passkeyRemovePage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.confirmPasskeyRemoval(w, r, m, nil)
}

func (s *Server) confirmPasskeyRemoval(w http.ResponseWriter, r *http.Request, m me, failure error) error {
	id := r.FormValue("id")
	keys, err := s.acct.Credentials.Passkeys(r.Context(), m.User.ID)
	if err != nil {
		return err
	}
	i := slices.IndexFunc(keys, func(c storage.Credential) bool { return c.ID == id })
	if i < 0 {
		return account.Errorf(account.NotFound, "That passkey is not on your list.")
	}
	d := s.confirmRecentPage(r, m, "passkeys", "Remove this passkey?", "Remove passkey", "/security/passkeys/remove", "/security/passkeys")
	d.Detail, d.Hidden = keys[i].Name, []hiddenField{{"id", id}}
	d.Message = web.Translate(d.Lang, "You can no longer sign in with it. The device may still list it; you can delete it there.")
	if len(keys) == 1 {
		d.Message += " " + web.Translate(d.Lang, "It is your only passkey.")
	}
	s.showConfirm(w, r, d, failure)
	return nil
}

func (s *Server) passkeyRemove(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.confirmPasskeyRemoval(w, r, m, nil)
	}
	if err := s.confirmIdentity(r, m); err != nil {
		if account.ErrorCode(err) == account.Internal {
			return err
		}
		return s.confirmPasskeyRemoval(w, r, m, err)
	}
	if err := s.acct.Credentials.DeletePasskey(r.Context(), m.User, r.PostFormValue("id")); err != nil {
		return s.passkeyFailed(w, r, m, err, passkeyInput{})
	}
	http.Redirect(w, r, "/security/passkeys?done=removed", http.StatusSeeOther)
	return nil
}

// JSON endpoints for webauthn.js.

// jsonFunc is a JSON endpoint handler; errors become JSON answers.
type jsonFunc func(w http.ResponseWriter, r *http.Request, body []byte) (any, error)

// jsonHandle serves a ceremony endpoint: it checks the CSRF token, which
// the script sends in the X-CSRF-Token header (a JSON body has no form
// field; a cross-site page can neither read the token nor set the header),
// reads a size-limited body, and answers JSON, errors included.
func (s *Server) jsonHandle(h jsonFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		defer func() {
			if p := recover(); p != nil {
				s.jsonError(w, r, errors.New("panic in passkey endpoint"))
				s.log.ErrorContext(r.Context(), "panic in passkey endpoint", "path", r.URL.Path, "panic", p)
			}
		}()
		if err := s.checkCSRFHeader(r); err != nil {
			s.jsonError(w, r, err)
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPasskeyJSON))
		if err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				s.jsonError(w, r, account.Errorf(account.Invalid, "The passkey answer is too large."))
				return
			}
			s.jsonError(w, r, account.Errorf(account.Invalid, "The passkey answer could not be read."))
			return
		}
		out, err := h(w, r, body)
		if err != nil {
			s.jsonError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// checkCSRFHeader is checkCSRF for JSON requests: the same token, compared
// in constant time, from the header instead of a form field.
func (s *Server) checkCSRFHeader(r *http.Request) error {
	want := s.web.CSRFToken(r)
	got := r.Header.Get("X-CSRF-Token")
	if want == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		return errCSRF
	}
	return nil
}

// jsonError answers a script with {"error", "message"} in the page's
// language; internal errors are logged with a reference.
func (s *Server) jsonError(w http.ResponseWriter, r *http.Request, err error) {
	locale := ""
	if _, u := s.currentUser(r); u != nil {
		locale = u.Locale
	}
	lang := web.PickLanguage(r, locale)
	code := account.ErrorCode(err)
	body := map[string]string{"error": string(code), "message": errorText(lang, err)}
	setRetryAfter(w, err)
	if code == account.Internal {
		ref := requestRef(r)
		s.log.ErrorContext(r.Context(), "passkey request failed", "path", r.URL.Path, "err", err, "ref", ref)
		body["message"], body["ref"] = web.Translate(lang, account.ErrorMessage(nil)), ref
	}
	if f := account.ErrorField(err); f != "" {
		body["field"] = f
	}
	writeJSON(w, statusFor(code), body)
}

// jsonUser is jsonHandle for a signed-in user.
func (s *Server) jsonUser(h func(w http.ResponseWriter, r *http.Request, m me, body []byte) (any, error)) http.Handler {
	return s.jsonHandle(func(w http.ResponseWriter, r *http.Request, body []byte) (any, error) {
		sess, u := s.currentUser(r)
		if u == nil {
			return nil, account.Errorf(account.Unauthorized, "Your session has ended. Please sign in again.")
		}
		return h(w, r, me{Session: *sess, User: *u}, body)
	})
}

// decodeJSON reads a ceremony request; an empty body is an empty request.
func decodeJSON(body []byte, v any) error {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return account.Errorf(account.Invalid, "The passkey answer could not be read.")
	}
	return nil
}

// beginAnswer is what begin endpoints send: the options for the browser.
type beginAnswer struct {
	Options json.RawMessage `json:"options"`
}

func (s *Server) rememberCeremony(w http.ResponseWriter, r *http.Request, id string) error {
	s.web.Cookie(r).Values[keyCeremony] = id
	return s.web.Save(w, r)
}

// takeCeremonyID removes the ceremony ID from the cookie: a finish request
// uses it up, whatever its outcome.
func (s *Server) takeCeremonyID(w http.ResponseWriter, r *http.Request) (string, error) {
	c := s.web.Cookie(r)
	id, _ := c.Values[keyCeremony].(string)
	delete(c.Values, keyCeremony)
	return id, s.web.Save(w, r)
}

func (s *Server) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request, m me, body []byte) (any, error) {
	var req struct {
		Name     string `json:"name"`
		Password string `json:"confirm_password"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	// Adding a way to sign in is a security change: a recent sign-in, or
	// the password again.
	if err := s.confirmIdentityWith(r, m, req.Password); err != nil {
		return nil, err
	}
	opts, id, err := s.acct.Credentials.BeginPasskeyRegistration(r.Context(), m.User, req.Name)
	if err != nil {
		return nil, err
	}
	return beginAnswer{Options: opts}, s.rememberCeremony(w, r, id)
}

func (s *Server) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request, m me, body []byte) (any, error) {
	var req struct {
		Credential json.RawMessage `json:"credential"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	id, err := s.takeCeremonyID(w, r)
	if err != nil {
		return nil, err
	}
	if _, err := s.acct.Credentials.FinishPasskeyRegistration(r.Context(), m.User, id, req.Credential); err != nil {
		return nil, err
	}
	return map[string]string{"redirect": "/security/passkeys?done=added"}, nil
}

func (s *Server) passkeyLoginBegin(w http.ResponseWriter, r *http.Request, _ []byte) (any, error) {
	opts, id, err := s.acct.Credentials.BeginPasskeyLogin(r.Context())
	if err != nil {
		return nil, err
	}
	return beginAnswer{Options: opts}, s.rememberCeremony(w, r, id)
}

// redirectCapture keeps a handler's redirect, so a JSON endpoint can hand
// the location to the script instead of the fetch following it.
type redirectCapture struct {
	http.ResponseWriter
	location string
}

func (c *redirectCapture) WriteHeader(status int) {
	if status >= 300 && status < 400 {
		c.location = c.Header().Get("Location")
		c.Header().Del("Location")
		return
	}
	c.ResponseWriter.WriteHeader(status)
}

func (c *redirectCapture) Write(b []byte) (int, error) {
	if c.location != "" {
		return len(b), nil // the redirect's own body
	}
	return c.ResponseWriter.Write(b)
}

// finishAsJSON runs a sign-in step that ends in a redirect and tells the
// script where to go.
func (s *Server) finishAsJSON(w http.ResponseWriter, step func(w http.ResponseWriter) error) (any, error) {
	capture := &redirectCapture{ResponseWriter: w}
	if err := step(capture); err != nil {
		return nil, err
	}
	if capture.location == "" {
		// progress answers a JSON step with a redirect only; anything
		// else would be half a page written into a JSON answer.
		return nil, errors.New("sign-in step answered without a redirect")
	}
	return map[string]string{"redirect": capture.location}, nil
}

func (s *Server) passkeyLoginFinish(w http.ResponseWriter, r *http.Request, body []byte) (any, error) {
	// The page says which sign-in record (or which page to return to) the
	// sign-in is for; loadFlow checks that this browser owns the record,
	// and safeReturn that return_to stays on this site.
	var req struct {
		AuthRequestID string          `json:"authRequestID"`
		ReturnTo      string          `json:"return_to"`
		Credential    json.RawMessage `json:"credential"`
	}
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	id, err := s.takeCeremonyID(w, r)
	if err != nil {
		return nil, err
	}
	u, amr, err := s.acct.Credentials.FinishPasskeyLogin(r.Context(), id, req.Credential, clientIP(r), r.UserAgent())
	if err != nil {
		return nil, err
	}
	var a storage.AuthRequest
	if id := strings.TrimSpace(req.AuthRequestID); id != "" {
		if a, err = s.loadFlow(r, id); err != nil {
			return nil, err
		}
	}
	return s.finishAsJSON(w, func(w http.ResponseWriter) error {
		// A passkey that verified the person (amr has "mfa") is two
		// factors in itself: nothing more is owed. One that did not is
		// one factor, and the flow decides what is owed after it.
		p, err := s.flow.FirstStepPassed(r.Context(), account.FirstStep{
			Request: a, ReturnTo: safeReturn(req.ReturnTo), User: u, AMR: amr, Visitor: s.visitor(r),
			MayOweSecondFactor: !slices.Contains(amr, "mfa"), DeviceProof: s.deviceProof(r),
		})
		if err != nil {
			return err
		}
		return s.progress(w, r, p, true)
	})
}

// pendingRequest is the body of the passkey second-step calls: the record
// that owes the second factor.
type pendingRequest struct {
	AuthRequestID string          `json:"authRequestID"`
	Remember      bool            `json:"remember_device"`
	Credential    json.RawMessage `json:"credential"`
}

func (s *Server) passkey2FABegin(w http.ResponseWriter, r *http.Request, body []byte) (any, error) {
	var req pendingRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	_, u, err := s.pendingFlow(r, req.AuthRequestID)
	if err != nil {
		return nil, err
	}
	opts, id, err := s.acct.Credentials.BeginPasskeySecondFactor(r.Context(), u)
	if err != nil {
		return nil, err
	}
	return beginAnswer{Options: opts}, s.rememberCeremony(w, r, id)
}

func (s *Server) passkey2FAFinish(w http.ResponseWriter, r *http.Request, body []byte) (any, error) {
	var req pendingRequest
	if err := decodeJSON(body, &req); err != nil {
		return nil, err
	}
	a, u, err := s.pendingFlow(r, req.AuthRequestID)
	if err != nil {
		return nil, err
	}
	id, err := s.takeCeremonyID(w, r)
	if err != nil {
		return nil, err
	}
	amr, err := s.acct.Credentials.FinishPasskeySecondFactor(r.Context(), u, id, req.Credential, clientIP(r), r.UserAgent())
	if err != nil {
		return nil, err
	}
	// amr[0] is "hwk" or "swk"; the first step adds its own and "mfa".
	return s.finishAsJSON(w, func(w http.ResponseWriter) error {
		return s.secondFactorPassed(w, r, a, amr[0], req.Remember, true)
	})
}
