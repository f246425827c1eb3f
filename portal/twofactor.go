package portal

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

func (s *Server) registerTwoFactorRoutes(t *routeTable) {
	t.add(levelSignIn, "GET", "/login/2fa", s.twoFactorPage)
	t.add(levelSignIn, "POST", "/login/2fa", s.twoFactorSubmit)
	t.add(levelSignIn, "POST", "/login/2fa/cancel", s.twoFactorCancel)
}

// A password sign-in that owes a second factor leaves its state in the
// signed cookie: who passed the password, for which authorization request
// (or which page to return to), and when. No session exists until the
// second factor is done.
const (
	keyPendingUser    = "p2fa_uid"
	keyPendingRequest = "p2fa_req"
	keyPendingReturn  = "p2fa_ret"
	keyPendingAt      = "p2fa_at"
	keyPendingAMR     = "p2fa_amr"
	pendingLifetime   = 5 * time.Minute
)

type pendingSignIn struct {
	UserID, AuthRequestID, ReturnTo string
	// AMR is how the first step authenticated the person: nil for
	// Keyport's password, ["fed", …] for an upstream provider.
	AMR []string
}

func (s *Server) setPending(w http.ResponseWriter, r *http.Request, p pendingSignIn) error {
	c := s.cookie(r)
	c.Values[keyPendingUser] = p.UserID
	c.Values[keyPendingRequest] = p.AuthRequestID
	c.Values[keyPendingReturn] = p.ReturnTo
	c.Values[keyPendingAt] = s.now().Unix()
	c.Values[keyPendingAMR] = strings.Join(p.AMR, " ") // amr values are short tokens without spaces
	return s.save(w, r)
}

// askSecondFactor records that p passed the first step and owes a second
// factor, and hands over to the dispatcher (a, when the sign-in is for an
// app: a.ID is "" otherwise), which asks for it. No session exists yet.
func (s *Server) askSecondFactor(w http.ResponseWriter, r *http.Request, p pendingSignIn, a storage.AuthRequest) error {
	if err := s.setPending(w, r, p); err != nil {
		return err
	}
	if a.ID != "" {
		return s.next(w, r, a)
	}
	http.Redirect(w, r, "/login/2fa", http.StatusSeeOther)
	return nil
}

func (s *Server) pending(r *http.Request) (pendingSignIn, bool) {
	c := s.cookie(r)
	uid, _ := c.Values[keyPendingUser].(string)
	at, _ := c.Values[keyPendingAt].(int64)
	if uid == "" || s.now().Sub(time.Unix(at, 0)) > pendingLifetime {
		return pendingSignIn{}, false
	}
	req, _ := c.Values[keyPendingRequest].(string)
	ret, _ := c.Values[keyPendingReturn].(string)
	amr, _ := c.Values[keyPendingAMR].(string)
	return pendingSignIn{UserID: uid, AuthRequestID: req, ReturnTo: ret, AMR: strings.Fields(amr)}, true
}

func (s *Server) clearPending(r *http.Request) {
	c := s.cookie(r)
	for _, k := range []string{keyPendingUser, keyPendingRequest, keyPendingReturn, keyPendingAt, keyPendingAMR} {
		delete(c.Values, k)
	}
}

// pendingSecondFactor is the user who passed the password step in this
// browser and owes a second factor.
func (s *Server) pendingSecondFactor(r *http.Request) (string, bool) {
	p, ok := s.pending(r)
	return p.UserID, ok
}

// deviceCookie names the cookie of a remembered device.
func (s *Server) deviceCookie() string { return s.opts.CookieName + "_device" }

// deviceProof is this browser's remembered-device cookie ("" when none).
// The password step passes it on: a device remembered for the account is
// not held back by the account-wide wait that failures elsewhere caused.
func (s *Server) deviceProof(r *http.Request) string {
	if c, err := r.Cookie(s.deviceCookie()); err == nil {
		return c.Value
	}
	return ""
}

// owesSecondFactor tells whether u must show a second factor in this
// browser after a password.
func (s *Server) owesSecondFactor(r *http.Request, u storage.User) (bool, error) {
	has, err := s.acct.Credentials.HasSecondFactor(r.Context(), u)
	if err != nil || !has {
		return false, err
	}
	if c, err := r.Cookie(s.deviceCookie()); err == nil && s.acct.Credentials.DeviceTrusted(r.Context(), u, c.Value, clientIP(r)) {
		return false, nil
	}
	return true, nil
}

// signInMode says how the browser is answered once a sign-in is recorded.
type signInMode int

const (
	// continueFlow runs the dispatcher at once (form posts).
	continueFlow signInMode = iota
	// redirectToFlow stores who signed in on the request and redirects to
	// the dispatcher: a script (the passkey ceremonies) cannot show a page
	// in answer to its fetch, only follow a location.
	redirectToFlow
)

func (s *Server) finishSignIn(w http.ResponseWriter, r *http.Request, u storage.User, newHash string, amr []string, authRequestID, returnTo string) error {
	return s.finishSignInAs(w, r, u, newHash, amr, authRequestID, returnTo, continueFlow)
}

func (s *Server) finishSignInAs(w http.ResponseWriter, r *http.Request, u storage.User, newHash string, amr []string, authRequestID, returnTo string, mode signInMode) error {
	var a storage.AuthRequest
	if authRequestID != "" {
		var err error
		if a, err = s.loadFlow(r, authRequestID); err != nil {
			return err
		}
	}
	return s.finishSignInFor(w, r, u, newHash, amr, a, returnTo, mode)
}

// finishSignInFor is finishSignInAs for a request the caller has loaded
// already (a.ID is "" when there is none), so the sign-in path reads it once.
func (s *Server) finishSignInFor(w http.ResponseWriter, r *http.Request, u storage.User, newHash string, amr []string, a storage.AuthRequest, returnTo string, mode signInMode) error {
	u, secret, sess, err := s.acct.SignIn.FinishSignIn(r.Context(), u, newHash, account.Credentials{IP: clientIP(r), UserAgent: r.UserAgent()}, amr)
	if err != nil {
		return err
	}
	s.clearPending(r)
	if err := s.adoptSession(w, r, secret); err != nil {
		return err
	}
	if a.ID == "" {
		http.Redirect(w, r, safeReturn(returnTo), http.StatusSeeOther)
		return nil
	}
	// Who signed in is written with the next step's own write (consent or
	// completion), not separately: every commit is on the sign-in path.
	a.UserID, a.AuthTime, a.AMR, a.SessionID = u.ID, sess.AuthTime, amr, sess.ID
	if mode == redirectToFlow {
		if err := s.saveSignedIn(r.Context(), a); err != nil {
			return err
		}
		http.Redirect(w, r, "/login?authRequestID="+url.QueryEscape(a.ID), http.StatusSeeOther)
		return nil
	}
	return s.nextStep(w, r, a, true)
}

// secondFactorPassed finishes the pending sign-in after a second factor
// (method "otp", "hwk", "swk" or "recovery"), remembering the device when
// the form asked for it.
func (s *Server) secondFactorPassed(w http.ResponseWriter, r *http.Request, method string) error {
	return s.passSecondFactor(w, r, method, r.PostFormValue("remember_device") == "1", continueFlow)
}

func (s *Server) passSecondFactor(w http.ResponseWriter, r *http.Request, method string, remember bool, mode signInMode) error {
	p, ok := s.pending(r)
	if !ok {
		return errPendingGone
	}
	u, err := s.acct.Users.ActiveUser(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	// The amr values (RFC 8176): the first step's ("pwd" for the password,
	// "fed" and the upstream's own for an upstream provider), the second
	// factor's own value, and "mfa" because there were two. A recovery code
	// is a one-time password, so it is "otp" like an app code; passkeys are
	// "hwk" (or "swk").
	if method == "recovery" {
		method = "otp"
	}
	amr := p.AMR
	if len(amr) == 0 {
		amr = []string{"pwd"}
	}
	amr = slices.Clone(amr)
	for _, m := range []string{method, "mfa"} {
		if !slices.Contains(amr, m) {
			amr = append(amr, m)
		}
	}
	if remember && s.acct.Policy().TrustedDeviceLifetime > 0 {
		secret, err := s.acct.Credentials.TrustDevice(r.Context(), u, clientIP(r), r.UserAgent())
		if err != nil {
			return err
		}
		http.SetCookie(w, &http.Cookie{
			Name: s.deviceCookie(), Value: secret, Path: "/", HttpOnly: true,
			Secure: s.opts.CookieSecure, SameSite: http.SameSiteLaxMode,
			MaxAge: int(s.acct.Policy().TrustedDeviceLifetime.Seconds()),
		})
	}
	return s.finishSignInAs(w, r, u, "", amr, p.AuthRequestID, p.ReturnTo, mode)
}

var errPendingGone = account.Errorf(account.Unauthorized, "Your sign-in has timed out. Please sign in again.")

type twoFactorData struct {
	base
	HasTOTP       bool
	HasPasskey    bool
	HasRecovery   bool
	RememberDays  int // 0: remembering devices is off
	Error         string
	AuthRequestID string
	UseRecovery   bool
}

func (s *Server) showTwoFactor(w http.ResponseWriter, r *http.Request, p pendingSignIn, errMsg string, status int) error {
	u, err := s.acct.Users.ActiveUser(r.Context(), p.UserID)
	if err != nil {
		return err
	}
	d := &twoFactorData{base: s.base(r, nil, "Two-factor authentication"), HasTOTP: account.HasTOTP(u), HasRecovery: len(u.RecoveryCodes) > 0,
		RememberDays: rememberDays(s.acct.Policy().TrustedDeviceLifetime), AuthRequestID: p.AuthRequestID,
		UseRecovery: r.URL.Query().Get("recovery") == "1"}
	d.Lang = pickLanguage(r, u.Locale)
	d.Title = translate(d.Lang, "Two-factor authentication")
	if keys, err := s.acct.Credentials.Passkeys(r.Context(), u.ID); err == nil {
		d.HasPasskey = len(keys) > 0
	}
	if errMsg != "" {
		d.Error = translate(d.Lang, errMsg)
	}
	s.render(w, r, status, "twofactor", d)
	return nil
}

func (s *Server) twoFactorPage(w http.ResponseWriter, r *http.Request) error {
	p, ok := s.pending(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return nil
	}
	return s.showTwoFactor(w, r, p, "", http.StatusOK)
}

func (s *Server) twoFactorSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	p, ok := s.pending(r)
	if !ok {
		return errPendingGone
	}
	u, err := s.acct.Users.ActiveUser(r.Context(), p.UserID)
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
			return s.showTwoFactor(w, r, p, errorText(pickLanguage(r, u.Locale), err), statusFor(c))
		}
		return err
	}
	return s.secondFactorPassed(w, r, method)
}

// twoFactorCancel abandons the pending sign-in (wrong account, no device at
// hand) and goes back to the password step of the same request.
func (s *Server) twoFactorCancel(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	p, _ := s.pending(r)
	s.clearPending(r)
	if err := s.save(w, r); err != nil {
		return err
	}
	target := "/login"
	switch {
	case p.AuthRequestID != "":
		target += "?authRequestID=" + url.QueryEscape(p.AuthRequestID)
	case p.ReturnTo != "" && p.ReturnTo != "/":
		target += "?return_to=" + url.QueryEscape(p.ReturnTo)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
	return nil
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
