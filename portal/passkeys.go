package portal

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

func (s *Server) registerPasskeyRoutes(r *mux.Router) {
	r.Handle("/security/passkeys", s.withUser(s.passkeysPage)).Methods(http.MethodGet)
	r.Handle("/security/passkeys/rename", s.withUser(s.passkeyRename)).Methods(http.MethodPost)
	r.Handle("/security/passkeys/remove", s.withUser(s.passkeyRemove)).Methods(http.MethodPost) // confirmIdentity
	// JSON ceremonies for webauthn.js; the CSRF token travels in X-CSRF-Token.
	r.Handle("/security/passkeys/register/begin", s.jsonUser(s.passkeyRegisterBegin)).Methods(http.MethodPost)
	r.Handle("/security/passkeys/register/finish", s.jsonUser(s.passkeyRegisterFinish)).Methods(http.MethodPost)
	r.Handle("/login/passkey/begin", s.jsonHandle(s.passkeyLoginBegin)).Methods(http.MethodPost)
	r.Handle("/login/passkey/finish", s.jsonHandle(s.passkeyLoginFinish)).Methods(http.MethodPost)
	r.Handle("/login/2fa/passkey/begin", s.jsonHandle(s.passkey2FABegin)).Methods(http.MethodPost)
	r.Handle("/login/2fa/passkey/finish", s.jsonHandle(s.passkey2FAFinish)).Methods(http.MethodPost)
}

// The ceremony ID lives in the signed cookie between begin and finish.
const keyCeremony = "wa_ceremony"

type passkeyView struct {
	ID, Name, Created, LastUsed string
}

type passkeysData struct {
	base
	Passkeys     []passkeyView
	Notice       string
	Error        string
	NeedsConfirm bool
	ReturnTo     string
	ByDirectory  bool
}

func (s *Server) passkeysPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showPasskeys(w, r, m, http.StatusOK, "")
}

func (s *Server) showPasskeys(w http.ResponseWriter, r *http.Request, m me, status int, errMsg string) error {
	u := m.User
	d := &passkeysData{base: s.base(r, &u, "Passkeys"), NeedsConfirm: !s.acct.RecentlyAuthenticated(m.Session), ReturnTo: safeReturn(r.FormValue("return_to"))}
	d.Nav = "passkeys"
	d.ByDirectory = s.acct.SecondFactorByDirectory(u)
	keys, err := s.acct.Passkeys(r.Context(), u.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		d.Passkeys = append(d.Passkeys, passkeyView{ID: k.ID, Name: k.Name, Created: showTime(k.CreatedAt, u.Zoneinfo), LastUsed: showTime(k.LastUsedAt, u.Zoneinfo)})
	}
	switch r.URL.Query().Get("done") {
	case "added":
		d.Notice = translate(d.Lang, "Your passkey was added.")
	case "removed":
		d.Notice = translate(d.Lang, "The passkey was removed.")
	}
	if errMsg != "" {
		d.Error = translate(d.Lang, errMsg)
	}
	s.render(w, r, status, "passkeys", d)
	return nil
}

func (s *Server) passkeyRename(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.acct.RenamePasskey(r.Context(), m.User, r.PostFormValue("id"), r.PostFormValue("name")); err != nil {
		if c := account.ErrorCode(err); c == account.Internal {
			return err
		}
		return s.showPasskeys(w, r, m, statusFor(account.ErrorCode(err)), account.ErrorMessage(err))
	}
	http.Redirect(w, r, "/security/passkeys", http.StatusSeeOther)
	return nil
}

func (s *Server) passkeyRemove(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.confirmIdentity(r, m); err != nil {
		return s.showPasskeys(w, r, m, statusFor(account.ErrorCode(err)), account.ErrorMessage(err))
	}
	if err := s.acct.RevokeCredential(r.Context(), m.User.ID, storage.KindPasskey, r.PostFormValue("id")); err != nil {
		if account.ErrorCode(err) == account.Internal {
			return err
		}
		return s.showPasskeys(w, r, m, statusFor(account.ErrorCode(err)), account.ErrorMessage(err))
	}
	http.Redirect(w, r, "/security/passkeys?done=removed", http.StatusSeeOther)
	return nil
}

// jsonFunc is a JSON endpoint handler; errors become JSON answers.
type jsonFunc func(w http.ResponseWriter, r *http.Request, body []byte) (any, error)

// jsonHandle reads a small JSON body, checks the CSRF header (the page's
// token, sent by webauthn.js) and writes the result or the error as JSON.
func (s *Server) jsonHandle(h jsonFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		want := s.csrfToken(r)
		if want == "" || subtle.ConstantTimeCompare([]byte(r.Header.Get("X-CSRF-Token")), []byte(want)) != 1 {
			s.apiError(w, r, errCSRF)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			s.apiError(w, r, errTooLarge)
			return
		}
		out, err := h(w, r, body)
		if err != nil {
			s.apiError(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, out)
	})
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

// beginAnswer is what begin endpoints send: the options for the browser.
type beginAnswer struct {
	Options json.RawMessage `json:"options"`
}

func (s *Server) rememberCeremony(w http.ResponseWriter, r *http.Request, id string) error {
	s.cookie(r).Values[keyCeremony] = id
	return s.save(w, r)
}

func (s *Server) takeCeremonyID(w http.ResponseWriter, r *http.Request) string {
	c := s.cookie(r)
	id, _ := c.Values[keyCeremony].(string)
	delete(c.Values, keyCeremony)
	_ = s.save(w, r)
	return id
}

func (s *Server) passkeyRegisterBegin(w http.ResponseWriter, r *http.Request, m me, body []byte) (any, error) {
	// Adding a way to sign in is a security change.
	var req struct {
		Password string `json:"confirm_password"`
	}
	_ = json.Unmarshal(body, &req)
	if err := s.acct.Reauthenticate(r.Context(), m.User, m.Session, req.Password, clientIP(r), r.UserAgent()); err != nil {
		return nil, err
	}
	opts, id, err := s.acct.BeginPasskeyRegistration(r.Context(), m.User)
	if err != nil {
		return nil, err
	}
	return beginAnswer{Options: opts}, s.rememberCeremony(w, r, id)
}

func (s *Server) passkeyRegisterFinish(w http.ResponseWriter, r *http.Request, m me, body []byte) (any, error) {
	var req struct {
		Name       string          `json:"name"`
		Credential json.RawMessage `json:"credential"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, account.Errorf(account.Invalid, "The passkey answer could not be read.")
	}
	if _, err := s.acct.FinishPasskeyRegistration(r.Context(), m.User, s.takeCeremonyID(w, r), req.Name, req.Credential); err != nil {
		return nil, err
	}
	return map[string]string{"redirect": "/security/passkeys?done=added"}, nil
}

func (s *Server) passkeyLoginBegin(w http.ResponseWriter, r *http.Request, _ []byte) (any, error) {
	opts, id, err := s.acct.BeginPasskeyLogin(r.Context())
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
	status   int
}

func (c *redirectCapture) WriteHeader(status int) {
	if status >= 300 && status < 400 {
		c.location, c.status = c.Header().Get("Location"), status
		c.Header().Del("Location")
		return
	}
	c.status = status
	c.ResponseWriter.WriteHeader(status)
}

func (c *redirectCapture) Write(b []byte) (int, error) {
	if c.location != "" {
		return len(b), nil // the redirect's own body
	}
	return c.ResponseWriter.Write(b)
}

// finishAsJSON runs a step that ends in a redirect (or a page) and tells the
// script where to go.
func (s *Server) finishAsJSON(w http.ResponseWriter, r *http.Request, step func(w http.ResponseWriter) error) (any, error) {
	capture := &redirectCapture{ResponseWriter: w}
	if err := step(capture); err != nil {
		return nil, err
	}
	if capture.location == "" {
		// Steps answer scripts with redirects only (redirectToFlow).
		return nil, account.Errorf(account.Internal, "sign-in step answered without a redirect")
	}
	return map[string]string{"redirect": capture.location}, nil
}

func (s *Server) passkeyLoginFinish(w http.ResponseWriter, r *http.Request, body []byte) (any, error) {
	var req struct {
		AuthRequestID string          `json:"authRequestID"`
		ReturnTo      string          `json:"return_to"`
		Credential    json.RawMessage `json:"credential"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, account.Errorf(account.Invalid, "The passkey answer could not be read.")
	}
	u, amr, err := s.acct.FinishPasskeyLogin(r.Context(), s.takeCeremonyID(w, r), req.Credential, clientIP(r), r.UserAgent())
	if err != nil {
		return nil, err
	}
	return s.finishAsJSON(w, r, func(w http.ResponseWriter) error {
		return s.finishSignInAs(w, r, u, "", amr, strings.TrimSpace(req.AuthRequestID), req.ReturnTo, redirectToFlow)
	})
}

func (s *Server) passkey2FABegin(w http.ResponseWriter, r *http.Request, _ []byte) (any, error) {
	p, ok := s.pending(r)
	if !ok {
		return nil, errPendingGone
	}
	u, err := s.acct.ActiveUser(r.Context(), p.UserID)
	if err != nil {
		return nil, err
	}
	opts, id, err := s.acct.BeginPasskeySecondFactor(r.Context(), u)
	if err != nil {
		return nil, err
	}
	return beginAnswer{Options: opts}, s.rememberCeremony(w, r, id)
}

func (s *Server) passkey2FAFinish(w http.ResponseWriter, r *http.Request, body []byte) (any, error) {
	var req struct {
		Remember   bool            `json:"remember_device"`
		Credential json.RawMessage `json:"credential"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, account.Errorf(account.Invalid, "The passkey answer could not be read.")
	}
	p, ok := s.pending(r)
	if !ok {
		return nil, errPendingGone
	}
	u, err := s.acct.ActiveUser(r.Context(), p.UserID)
	if err != nil {
		return nil, err
	}
	amr, err := s.acct.FinishPasskeySecondFactor(r.Context(), u, s.takeCeremonyID(w, r), req.Credential, clientIP(r), r.UserAgent())
	if err != nil {
		return nil, err
	}
	return s.finishAsJSON(w, r, func(w http.ResponseWriter) error {
		return s.passSecondFactor(w, r, amr[0], req.Remember, redirectToFlow)
	})
}
