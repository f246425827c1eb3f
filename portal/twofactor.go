package portal

import (
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

func (s *Server) registerTwoFactorRoutes(t *routeTable) {
	t.add(levelSignIn, "GET", "/login/2fa", s.twoFactorPage)
	t.add(levelSignIn, "POST", "/login/2fa", s.twoFactorSubmit)
	t.add(levelSignIn, "POST", "/login/2fa/cancel", s.twoFactorCancel)
}

// A sign-in that owes a second factor is recorded on its record (the
// authorization request, or a portal sign-in record: account.Flow); the
// pages of the second step carry the record's ID, and only the browser
// that opened the record may use it. No session exists until the second
// factor is done.

// pendingFlow loads the record named by the request (query or form) and the
// person who owes it a second factor.
func (s *Server) pendingFlow(r *http.Request, id string) (storage.AuthRequest, storage.User, error) {
	a, err := s.loadFlow(r, id)
	if err != nil {
		if account.ErrorCode(err) == account.NotFound {
			return a, storage.User{}, account.ErrPendingGone
		}
		return a, storage.User{}, err
	}
	u, err := s.flow.PendingUser(r.Context(), a)
	return a, u, err
}

// deviceCookie names the cookie of a remembered device.
func (s *Server) deviceCookie() string { return s.web.CookieName() + "_device" }

// deviceProof is this browser's remembered-device cookie ("" when none).
// The password step passes it on: a device remembered for the account is
// not held back by the account-wide wait that failures elsewhere caused.
func (s *Server) deviceProof(r *http.Request) string {
	if c, err := r.Cookie(s.deviceCookie()); err == nil {
		return c.Value
	}
	return ""
}

// secondFactorPassed finishes the pending sign-in on record a after a
// second factor (method "otp", "hwk", "swk" or "recovery"), remembering
// the device when asked.
func (s *Server) secondFactorPassed(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, method string, remember, json bool) error {
	p, err := s.flow.SecondFactorPassed(r.Context(), a, method, remember, s.visitor(r))
	if err != nil {
		return err
	}
	return s.progress(w, r, p, json)
}

type twoFactorData struct {
	web.Base
	HasTOTP       bool
	HasPasskey    bool
	HasRecovery   bool
	RememberDays  int // 0: remembering devices is off
	Error         string
	AuthRequestID string
	UseRecovery   bool
}

func (s *Server) showTwoFactor(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, u storage.User, errMsg string, status int) error {
	d := &twoFactorData{Base: s.web.Base(r, nil, "Two-factor authentication"), HasTOTP: account.HasTOTP(u), HasRecovery: len(u.RecoveryCodes) > 0,
		RememberDays: rememberDays(s.acct.Policy().TrustedDeviceLifetime), AuthRequestID: a.ID,
		UseRecovery: r.URL.Query().Get("recovery") == "1"}
	d.Lang = flowLanguage(r, a, &u)
	d.Title = web.Translate(d.Lang, "Two-factor authentication")
	if keys, err := s.acct.Credentials.Passkeys(r.Context(), u.ID); err == nil {
		d.HasPasskey = len(keys) > 0
	}
	if errMsg != "" {
		d.Error = web.Translate(d.Lang, errMsg)
	}
	s.web.Render(w, r, status, "twofactor", d)
	return nil
}

func (s *Server) twoFactorPage(w http.ResponseWriter, r *http.Request) error {
	a, u, err := s.pendingFlow(r, r.URL.Query().Get("authRequestID"))
	if errors.Is(err, account.ErrPendingGone) {
		// Nothing owed (any more): back to the sign-in of the same
		// request, if it is still this browser's.
		http.Redirect(w, r, signInPath(a), http.StatusSeeOther)
		return nil
	}
	if err != nil {
		return err
	}
	return s.showTwoFactor(w, r, a, u, "", http.StatusOK)
}

func (s *Server) twoFactorSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	a, u, err := s.pendingFlow(r, r.PostFormValue("authRequestID"))
	if err != nil {
		return err
	}
	method := "otp"
	if code := r.PostFormValue("recovery_code"); code != "" {
		method = "recovery"
		err = s.acct.Credentials.UseRecoveryCode(r.Context(), u, code, clientIP(r), r.UserAgent())
	} else {
		err = s.acct.Credentials.VerifyTOTP(r.Context(), u, r.PostFormValue("code"), clientIP(r), r.UserAgent())
	}
	if err != nil {
		if c := account.ErrorCode(err); c == account.Invalid || c == account.RateLimited {
			setRetryAfter(w, err)
			return s.showTwoFactor(w, r, a, u, errorText(flowLanguage(r, a, &u), err), statusFor(c))
		}
		return err
	}
	return s.secondFactorPassed(w, r, a, method, r.PostFormValue("remember_device") == "1", false)
}

// twoFactorCancel abandons the pending sign-in (wrong account, no device at
// hand) and goes back to the password step of the same request.
func (s *Server) twoFactorCancel(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	a, err := s.loadFlow(r, r.PostFormValue("authRequestID"))
	if err == nil {
		if err := s.flow.CancelPending(r.Context(), a); err != nil {
			return err
		}
	}
	http.Redirect(w, r, signInPath(a), http.StatusSeeOther)
	return nil
}

// signInPath is the sign-in page for record a: the same app's request, or
// for a portal sign-in the page it was for ("/login" when a is none).
func signInPath(a storage.AuthRequest) string {
	switch {
	case a.ClientID != "":
		return "/login?authRequestID=" + url.QueryEscape(a.ID)
	case a.ReturnTo != "" && a.ReturnTo != "/":
		return "/login?return_to=" + url.QueryEscape(a.ReturnTo)
	}
	return "/login"
}

// rememberDays is the lifetime of a remembered device in whole days for the
// page, rounded up so a lifetime under a day still shows the box.
func rememberDays(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	const day = 24 * time.Hour
	return int((d + day - 1) / day)
}
