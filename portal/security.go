package portal

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"html/template"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/web"
)

func (s *Server) registerSecurityRoutes(t *routeTable) {
	t.add(levelSignedIn, "GET", "/security", s.securityPage)
	t.add(levelRecentSignIn, "POST", "/security/password", s.passwordSubmit) // the password always
	t.add(levelRecentSignIn, "POST", "/security/totp/begin", s.totpBegin)
	t.add(levelRecentSignIn, "POST", "/security/totp/confirm", s.totpConfirm)
	t.add(levelRecentSignIn, "POST", "/security/totp/disable", s.totpDisable) // the password always
	t.add(levelRecentSignIn, "POST", "/security/recovery-codes", s.recoveryRegenerate)
	t.add(levelSignedIn, "POST", "/security/devices/forget", s.deviceForget)
	// Pages to come back to: the codes are shown once, in answer to a post;
	// a reload or a bookmark lands on a page that says so and offers new ones.
	t.add(levelSignedIn, "GET", "/security/recovery-codes", s.recoveryCodesPage)
	t.add(levelSignedIn, "GET", "/security/totp/confirm", s.totpConfirmed)
}

type deviceView struct {
	ID, Name, IP, FirstSeen, LastSeen string
}

type securityData struct {
	web.Base
	Notice, Error   string
	FieldErrors     map[string]string
	MinLength       int
	TOTPEnabled     bool
	Enrolment       *account.TOTPEnrolment
	QRDataURL       template.URL
	RecoveryLeft    int
	Devices         []deviceView
	RememberEnabled bool
	NeedsConfirm    bool // the session is not recent: security changes ask for the password
	Required        bool // the admin requires a second factor and the user has none
	ReturnTo        string
	PasskeyCount    int
	ByDirectory     bool // the user's directory handles second factors
}

func (s *Server) securityView(r *http.Request, m me) *securityData {
	u := m.User
	d := &securityData{Base: s.web.Base(r, &u, "Security"), MinLength: s.acct.Policy().MinPasswordLength, TOTPEnabled: account.HasTOTP(u),
		RecoveryLeft: len(u.RecoveryCodes), RememberEnabled: s.acct.Policy().TrustedDeviceLifetime > 0,
		NeedsConfirm: !s.acct.SignIn.RecentlyAuthenticated(m.Session), FieldErrors: map[string]string{}}
	d.Nav = "security"
	if e, ok := s.acct.Credentials.PendingTOTP(u); ok && !d.TOTPEnabled {
		d.Enrolment = &e
		// A data: URL of our own PNG, which the CSP's img-src allows.
		d.QRDataURL = template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QRPNG))
	}
	devices, _ := s.acct.Credentials.ListTrustedDevices(r.Context(), u)
	for _, c := range devices {
		d.Devices = append(d.Devices, deviceView{ID: c.ID, Name: deviceName(d.Lang, c.UserAgent), IP: c.LastIP,
			FirstSeen: formatTime(c.CreatedAt.UTC().Format(time.RFC3339), u.Zoneinfo), LastSeen: formatTime(c.LastUsedAt.UTC().Format(time.RFC3339), u.Zoneinfo)})
	}
	keys, _ := s.acct.Credentials.Passkeys(r.Context(), u.ID)
	d.PasskeyCount = len(keys)
	d.ByDirectory = s.acct.Credentials.SecondFactorByDirectory(u)
	d.Required = s.acct.Credentials.SecondFactorRequired(u) && !d.TOTPEnabled && d.PasskeyCount == 0
	d.ReturnTo = safeReturn(r.FormValue("return_to"))
	return d
}

func (s *Server) securityPage(w http.ResponseWriter, r *http.Request, m me) error {
	d := s.securityView(r, m)
	switch r.URL.Query().Get("done") {
	case "password":
		d.Notice = web.Translate(d.Lang, "Your password was changed. Every other session was signed out.")
	case "totp-off":
		d.Notice = web.Translate(d.Lang, "Two-factor authentication with an authenticator app is off.")
	case "device":
		d.Notice = web.Translate(d.Lang, "The device was forgotten.")
	case "devices":
		d.Notice = web.Translate(d.Lang, "Every remembered device was forgotten. The next sign-in on each asks for the second step again.")
	}
	s.web.Render(w, r, http.StatusOK, "security", d)
	return nil
}

// securityFailed shows the page again with the message at its field.
func (s *Server) securityFailed(w http.ResponseWriter, r *http.Request, m me, err error) error {
	code := account.ErrorCode(err)
	if code != account.Invalid && code != account.Forbidden && code != account.RateLimited && code != account.NotFound {
		return err
	}
	d := s.securityView(r, m)
	d.Error = errorText(d.Lang, err)
	if f := account.ErrorField(err); f != "" {
		d.FieldErrors[f] = d.Error
	}
	setRetryAfter(w, err)
	s.web.Render(w, r, statusFor(code), "security", d)
	return nil
}

func (s *Server) passwordSubmit(w http.ResponseWriter, r *http.Request, m me) error {
	next := r.PostFormValue("new_password")
	if next != r.PostFormValue("new_password_confirm") {
		return s.securityFailed(w, r, m, account.FieldErrorf("new_password_confirm", "The two new passwords do not match."))
	}
	if err := s.acct.Credentials.ChangePassword(r.Context(), m.User, m.Session.ID, r.PostFormValue("current_password"), next, clientIP(r), r.UserAgent()); err != nil {
		return s.securityFailed(w, r, m, err)
	}
	http.Redirect(w, r, "/security?done=password", http.StatusSeeOther)
	return nil
}

func (s *Server) totpBegin(w http.ResponseWriter, r *http.Request, m me) error {
	if account.HasTOTP(m.User) {
		return s.securityFailed(w, r, m, account.Errorf(account.Invalid, "An authenticator app is already set up. Turn it off first to set up another."))
	}
	// Adding a way to sign in is a security change, as for passkeys: a
	// recent sign-in, or the password again.
	if err := s.confirmIdentity(r, m); err != nil {
		return s.securityFailed(w, r, m, err)
	}
	if _, err := s.acct.Credentials.BeginTOTP(r.Context(), m.User); err != nil {
		return err
	}
	target := "/security"
	if rt := safeReturn(r.PostFormValue("return_to")); rt != "/" {
		target += "?return_to=" + url.QueryEscape(rt)
	}
	http.Redirect(w, r, target+"#totp", http.StatusSeeOther)
	return nil
}

type recoveryData struct {
	web.Base
	Codes    []string
	ReturnTo string
}

func (s *Server) showRecoveryCodes(w http.ResponseWriter, r *http.Request, m me, codes []string) error {
	d := &recoveryData{Base: s.web.Base(r, &m.User, "Your recovery codes"), Codes: codes, ReturnTo: safeReturn(r.PostFormValue("return_to"))}
	d.Nav = "security"
	s.web.Render(w, r, http.StatusOK, "recovery_codes", d)
	return nil
}

func (s *Server) totpConfirm(w http.ResponseWriter, r *http.Request, m me) error {
	if account.HasTOTP(m.User) {
		// The form again: a reload of the page that showed the codes.
		return s.totpConfirmed(w, r, m)
	}
	// Checked again here: a session that is no longer recent must not turn
	// on an enrolment someone else began and left on the page.
	if err := s.confirmIdentity(r, m); err != nil {
		return s.securityFailed(w, r, m, err)
	}
	codes, err := s.acct.Credentials.ConfirmTOTP(r.Context(), m.User, r.PostFormValue("code"))
	if err != nil {
		return s.securityFailed(w, r, m, err)
	}
	return s.showRecoveryCodes(w, r, m, codes)
}

func (s *Server) totpDisable(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.acct.Credentials.DisableTOTP(r.Context(), m.User, r.PostFormValue("confirm_password"), clientIP(r), r.UserAgent()); err != nil {
		return s.securityFailed(w, r, m, err)
	}
	http.Redirect(w, r, "/security?done=totp-off", http.StatusSeeOther)
	return nil
}

// totpConfirmed is where the set-up's address leads once the app is on: to
// the page about recovery codes (they were shown once), or back to the
// set-up when it is not finished.
func (s *Server) totpConfirmed(w http.ResponseWriter, r *http.Request, m me) error {
	q := url.Values{}
	if rt := safeReturn(r.FormValue("return_to")); rt != "/" {
		q.Set("return_to", rt)
	}
	target, fragment := "/security", "#totp"
	if account.HasTOTP(m.User) {
		target, fragment = "/security/recovery-codes", ""
		q.Set("done", "totp")
	}
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	http.Redirect(w, r, target+fragment, http.StatusSeeOther)
	return nil
}

// recoveryCodesPage says what became of the recovery codes (shown once,
// so never again) and offers new ones: it is the confirmation page of
// making new codes, which makes the old ones stop working.
func (s *Server) recoveryCodesPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.confirmNewRecoveryCodes(w, r, m, nil)
}

func (s *Server) confirmNewRecoveryCodes(w http.ResponseWriter, r *http.Request, m me, failure error) error {
	if !account.HasTOTP(m.User) {
		http.Redirect(w, r, "/security#totp", http.StatusSeeOther)
		return nil
	}
	d := s.confirmRecentPage(r, m, "security", "Recovery codes", "Make new recovery codes", "/security/recovery-codes", "/security")
	if r.FormValue("done") == "totp" {
		// After the set-up: a page to leave, not a question to cancel.
		d.Notice = web.Translate(d.Lang, "Two-factor authentication with your authenticator app is on.")
		d.CancelLabel = web.Translate(d.Lang, "Back to Security")
	}
	d.Message = web.Translate(d.Lang, "Recovery codes are shown only once, when they are made: Keyport keeps only a fingerprint of each. You have %d left. New codes replace them all, and the old ones stop working.", len(m.User.RecoveryCodes))
	d.Hidden = append(d.Hidden, hiddenField{codeSetField, codeSetFingerprint(m.User.RecoveryCodes)})
	if rt := safeReturn(r.FormValue("return_to")); rt != "/" {
		d.Hidden = append(d.Hidden, hiddenField{"return_to", rt})
		d.Cancel, d.CancelLabel = rt, web.Translate(d.Lang, "Continue")
	}
	s.showConfirm(w, r, d, failure)
	return nil
}

// codeSetField carries, in the form that makes new recovery codes, which
// set of codes it replaces (codeSetFingerprint).
const codeSetField = "code_set"

// codeSetFingerprint names a set of recovery codes by a short hash of
// their stored hashes; it changes whenever new codes are made.
func codeSetFingerprint(hashes []string) string {
	h := sha256.New()
	for _, c := range hashes {
		h.Write([]byte(c))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

func (s *Server) recoveryRegenerate(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.confirmNewRecoveryCodes(w, r, m, nil)
	}
	if sent := r.PostFormValue(codeSetField); subtle.ConstantTimeCompare([]byte(sent), []byte(codeSetFingerprint(m.User.RecoveryCodes))) != 1 {
		// The form was made for codes that are gone: most often a reload of
		// the page that showed the new ones, which sends it again. Making
		// more would cancel the codes just shown; the page about them says
		// they were shown once, and offers new ones for the current set.
		target := "/security/recovery-codes"
		if rt := safeReturn(r.PostFormValue("return_to")); rt != "/" {
			target += "?return_to=" + url.QueryEscape(rt)
		}
		http.Redirect(w, r, target, http.StatusSeeOther)
		return nil
	}
	if err := s.confirmIdentity(r, m); err != nil {
		if account.ErrorCode(err) == account.Internal {
			return err
		}
		return s.confirmNewRecoveryCodes(w, r, m, err)
	}
	codes, err := s.acct.Credentials.RegenerateRecoveryCodes(r.Context(), m.User)
	if err != nil {
		return s.securityFailed(w, r, m, err)
	}
	return s.showRecoveryCodes(w, r, m, codes)
}

func (s *Server) deviceForget(w http.ResponseWriter, r *http.Request, m me) error {
	if r.PostFormValue("all") == "1" {
		if _, err := s.acct.Credentials.ForgetAllDevices(r.Context(), m.User); err != nil {
			return err
		}
		http.Redirect(w, r, "/security?done=devices", http.StatusSeeOther)
		return nil
	}
	id := strings.TrimSpace(r.PostFormValue("id"))
	if id == "" {
		return s.securityFailed(w, r, m, account.Errorf(account.Invalid, "Choose a device to forget."))
	}
	if err := s.acct.Credentials.ForgetDevice(r.Context(), m.User, id); err != nil {
		return s.securityFailed(w, r, m, err)
	}
	http.Redirect(w, r, "/security?done=device", http.StatusSeeOther)
	return nil
}
