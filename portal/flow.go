package portal

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// loadFlow loads a sign-in record this browser opened.
func (s *Server) loadFlow(r *http.Request, id string) (storage.AuthRequest, error) {
	return s.flow.Get(r.Context(), id, s.web.BrowserID(r))
}

// visitor describes the browser making r to the sign-in flow: who it is
// and where from. The steps that record a sign-in need no more.
func (s *Server) visitor(r *http.Request) account.Visitor {
	return account.Visitor{BrowserID: s.web.BrowserID(r), IP: clientIP(r), UserAgent: r.UserAgent()}
}

// visitorOf is visitor with the browser's session when record a may need
// it: only while nobody has signed in on the record itself (the record's
// sign-in comes first), so a sign-in that just happened does not read
// back the session it wrote.
func (s *Server) visitorOf(r *http.Request, a storage.AuthRequest) account.Visitor {
	v := s.visitor(r)
	if a.UserID == "" {
		v.Session, v.User = s.currentUser(r)
	}
	return v
}

// next asks the flow for the next step of record a and shows it. Step
// handlers record what happened through the flow and come back here; they
// never send the browser to one another.
func (s *Server) next(w http.ResponseWriter, r *http.Request, a storage.AuthRequest) error {
	v := s.visitorOf(r, a)
	step, err := s.flow.Next(r.Context(), a, v)
	if err != nil {
		return err
	}
	// Apply writes what the step decided: the end of the record (done or
	// failed), and a refusal at the account's allowlist in the history,
	// also when the answer is the sign-in page.
	if err := s.flow.Apply(r.Context(), a, step, v); err != nil {
		return err
	}
	switch step.Kind {
	case account.StepSignIn:
		if step.Refusal != nil {
			return s.showLogin(w, r, a, errorText(flowLanguage(r, a, nil), step.Refusal), "", http.StatusForbidden)
		}
		// The app's login_hint fills in the username; else, when the
		// browser's session must sign in again (prompt=login or
		// select_account, max_age, a stronger acr), its account's. A
		// pairwise app's hint by its pairwise sub (LoginHintUserID) is no
		// username: the field offers the session's account only if the
		// hint names it, never the username of anyone else the sub
		// names (the page would tell whoever holds the sub whose it is).
		login := a.LoginHint
		if login == "" && v.User != nil && (a.LoginHintUserID == "" || a.LoginHintUserID == v.User.ID) {
			login = v.User.Username
		}
		return s.showLogin(w, r, a, "", login, http.StatusOK)
	case account.StepSecondFactor:
		http.Redirect(w, r, secondFactorPath(a.ID), http.StatusSeeOther)
		return nil
	case account.StepEnrol:
		http.Redirect(w, r, "/security?return_to="+url.QueryEscape("/login?authRequestID="+a.ID), http.StatusSeeOther)
		return nil
	case account.StepConsent:
		return s.showConsent(w, r, a, step.Client, &step.User)
	case account.StepDenied:
		return s.showDenied(w, r, a, step)
	}
	// Done or failed: the record says which, and the provider answers the
	// app at the callback.
	http.Redirect(w, r, s.callbackURL(a.ID), http.StatusFound)
	return nil
}

// deniedData is the page of a person the app does not admit.
type deniedData struct {
	web.Base
	ClientName  string
	ContinueURL string // the callback, which sends the app access_denied
}

// showDenied tells the person signed in that the app does not admit them
// (its allowed groups), as Keycloak's access-denied page does, with a way
// back to the app, which gets error=access_denied: the record ended so
// (Apply), and the callback answers the app from it.
func (s *Server) showDenied(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, step account.Step) error {
	d := &deniedData{Base: s.flowBase(r, a, &step.User, "Access denied"), ClientName: step.Client.Name, ContinueURL: s.callbackURL(a.ID)}
	s.web.Render(w, r, http.StatusForbidden, "app_denied", d)
	return nil
}

// callbackURL is where the provider answers the app for record id.
func (s *Server) callbackURL(id string) string {
	return s.opts.Issuer + "/authorize/callback?id=" + url.QueryEscape(id)
}

// secondFactorPath is the page that asks for the second factor owed on
// record id.
func secondFactorPath(id string) string {
	return "/login/2fa?authRequestID=" + url.QueryEscape(id)
}

// progress answers the browser after a sign-in step: it keeps the new
// session and remembered device, and goes on to the next step of the
// record, or back to the portal page the sign-in was for. json is for the
// passkey ceremonies, whose script can only follow a location: they get a
// redirect to the dispatcher rather than its page.
func (s *Server) progress(w http.ResponseWriter, r *http.Request, p account.Progress, json bool) error {
	if p.DeviceSecret != "" {
		http.SetCookie(w, &http.Cookie{
			Name: s.deviceCookie(), Value: p.DeviceSecret, Path: "/", HttpOnly: true,
			Secure: s.web.CookieSecure(), SameSite: http.SameSiteLaxMode,
			MaxAge: int(s.acct.Policy().TrustedDeviceLifetime.Seconds()),
		})
	}
	if p.SessionSecret != "" {
		if err := s.adoptSession(w, r, p.SessionSecret); err != nil {
			return err
		}
	}
	a := p.Request
	switch {
	case a.ID == "":
		http.Redirect(w, r, safeReturn(p.ReturnTo), http.StatusSeeOther)
		return nil
	case a.ClientID == "": // a portal sign-in that owes a second factor
		http.Redirect(w, r, secondFactorPath(a.ID), http.StatusSeeOther)
		return nil
	case json:
		http.Redirect(w, r, "/login?authRequestID="+url.QueryEscape(a.ID), http.StatusSeeOther)
		return nil
	}
	return s.next(w, r, a)
}

type loginData struct {
	web.Base
	AuthRequestID string
	ReturnTo      string // a path on this site to go to after signing in (no authorization request)
	ClientName    string
	Login         string
	Error         string
	ShowPasskey   bool
	ShowForgot    bool // mail is configured: offer the forgotten-password page
	Upstream      []upstreamButton
	Notice        string // what just happened (signed out everywhere)
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, errMsg, login string, status int) error {
	d := &loginData{Base: s.flowBase(r, a, nil, "Sign in"), AuthRequestID: a.ID, Login: login, Error: errMsg, ShowPasskey: s.acct.Credentials.PasskeysAvailable(), ShowForgot: s.acct.Mail.Enabled(), Upstream: s.upstreamButtons()}
	if a.ID == "" {
		d.ReturnTo = safeReturn(r.FormValue("return_to"))
		if r.URL.Query().Get("done") == "signed-out-everywhere" {
			d.Notice = web.Translate(d.Lang, "You were signed out everywhere. Sign in again to continue.")
		}
	}
	if a.ClientID != "" {
		if c, err := s.store.GetClient(r.Context(), a.ClientID); err == nil {
			d.ClientName = c.Name
		}
		if d.ShowPasskey && slices.Contains(a.ACRValues, account.ACRPasskey) {
			d.Notice = web.Translate(d.Lang, "This application asks you to sign in with a passkey.")
		}
	}
	s.web.Render(w, r, status, "login", d)
	return nil
}

// loginPage is where the provider sends the browser: /login?authRequestID=…
func (s *Server) loginPage(w http.ResponseWriter, r *http.Request) error {
	id := r.URL.Query().Get("authRequestID")
	if id == "" {
		returnTo := safeReturn(r.URL.Query().Get("return_to"))
		if _, u := s.currentUser(r); u != nil {
			http.Redirect(w, r, returnTo, http.StatusFound)
			return nil
		}
		return s.showLogin(w, r, storage.AuthRequest{}, "", "", http.StatusOK)
	}
	// First sight of this request binds it to this browser.
	a, err := s.flow.Bind(r.Context(), id, s.web.BrowserID(r))
	if err != nil {
		return err
	}
	return s.next(w, r, a)
}

func (s *Server) loginSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	id := r.PostFormValue("authRequestID")
	var a storage.AuthRequest
	if id != "" {
		var err error
		if a, err = s.loadFlow(r, id); err != nil {
			return err
		}
	}
	login := r.PostFormValue("login")
	creds := account.Credentials{Login: login, Password: r.PostFormValue("password"), IP: clientIP(r), UserAgent: r.UserAgent(), DeviceProof: s.deviceProof(r)}
	u, newHash, err := s.acct.SignIn.PasswordStep(r.Context(), creds)
	if err != nil {
		if account.ErrorCode(err) == account.Internal {
			return err
		}
		// Throttled or busy: 429 or 503 with Retry-After, and the page
		// says how long to wait.
		setRetryAfter(w, err)
		return s.showLogin(w, r, a, errorText(flowLanguage(r, a, nil), err), login, statusFor(account.ErrorCode(err)))
	}
	p, err := s.flow.FirstStepPassed(r.Context(), account.FirstStep{
		Request: a, ReturnTo: safeReturn(r.PostFormValue("return_to")), User: u, NewHash: newHash,
		MayOweSecondFactor: true, Visitor: s.visitor(r), DeviceProof: creds.DeviceProof,
	})
	if err != nil {
		return err
	}
	return s.progress(w, r, p, false)
}

type scopeView struct{ Name, Description string }

var scopeDescriptions = map[string]string{
	"openid":         "Sign you in with your Keyport account",
	"profile":        "See your name, username, language and time zone",
	"email":          "See your email address",
	"phone":          "See your phone number",
	"groups":         "See the groups you belong to",
	"offline_access": "Keep access when you are not using it",
}

type consentData struct {
	web.Base
	AuthRequestID string
	ClientName    string
	Scopes        []scopeView
	registrationNote
}

// registrationNote is what the consent page and the device approval page
// (device.go) tell a person about an app that registered itself
// (templates/part_registration.html): one decision for both.
type registrationNote struct {
	// SelfRegistered: the app registered itself (dynamic client
	// registration) and was not set up by an administrator, so its name
	// is its own choice; AdminApproved: an administrator approved it as
	// it now is (it was held for approval). A held app never gets here.
	SelfRegistered, AdminApproved bool
}

func registrationNoteOf(c storage.Client) registrationNote {
	self := c.RegistrationAccessTokenHash != ""
	return registrationNote{SelfRegistered: self, AdminApproved: self && !c.PendingApproval && !c.ApprovedAt.IsZero()}
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, c storage.Client, u *storage.User) error {
	d := &consentData{Base: s.flowBase(r, a, u, "Allow access?"), AuthRequestID: a.ID, ClientName: c.Name, registrationNote: registrationNoteOf(c)}
	for _, sc := range account.ConsentScopes(a) {
		desc := scopeDescriptions[sc]
		if desc == "" && account.IsCustomScope(c, sc) {
			desc = customScopeDescription // the app's custom claims (adminappclaims.go)
		}
		d.Scopes = append(d.Scopes, scopeView{Name: sc, Description: desc})
	}
	s.web.Render(w, r, http.StatusOK, "consent", d)
	return nil
}

func (s *Server) consentPage(w http.ResponseWriter, r *http.Request) error {
	a, err := s.loadFlow(r, r.URL.Query().Get("authRequestID"))
	if err != nil {
		return err
	}
	return s.next(w, r, a)
}

func (s *Server) consentSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	a, err := s.loadFlow(r, r.PostFormValue("authRequestID"))
	if err != nil {
		return err
	}
	// Consent belongs to whoever is signing in for this request.
	who, ok := s.flow.SignedIn(a, s.visitorOf(r, a))
	if !ok {
		return s.next(w, r, a)
	}
	switch r.PostFormValue("decision") {
	case "allow":
	case "deny":
		if err := s.flow.Fail(r.Context(), a.ID, "access_denied", "the user denied the request"); err != nil {
			return err
		}
		http.Redirect(w, r, s.callbackURL(a.ID), http.StatusFound)
		return nil
	default:
		return account.Errorf(account.Invalid, "Choose Allow or Deny.")
	}
	if a, err = s.flow.Consented(r.Context(), a, who.UserID); err != nil {
		return err
	}
	return s.next(w, r, a)
}

// flowLanguage is the language of the pages of sign-in record a: the
// person's own (their profile) when known, else the one the app's request
// asks for with ui_locales, else the browser's: Keycloak's order, as the
// sign-out confirmation (showLogout). The record carries ui_locales, so
// every page of the sign-in follows it, not only the first.
func flowLanguage(r *http.Request, a storage.AuthRequest, u *storage.User) string {
	if u != nil && web.SupportedLanguage(web.BaseLanguage(u.Locale)) {
		return web.BaseLanguage(u.Locale)
	}
	if lang := web.UILocalesLanguage(strings.Join(a.UILocales, " ")); lang != "" {
		return lang
	}
	return web.PickLanguage(r, "")
}

// flowBase is web.Base for a page of sign-in record a, in its language
// (flowLanguage).
func (s *Server) flowBase(r *http.Request, a storage.AuthRequest, u *storage.User, title string) web.Base {
	b := s.web.Base(r, u, title)
	b.Lang = flowLanguage(r, a, u)
	b.Title = web.Translate(b.Lang, title)
	return b
}
