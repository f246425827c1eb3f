package portal

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

var errFlowGone = account.Errorf(account.NotFound, "This sign-in request has expired or was already used. Go back to the application and start again.")

// loadFlow loads an authorization request that this browser started.
func (s *Server) loadFlow(r *http.Request, id string) (storage.AuthRequest, error) {
	if id == "" {
		return storage.AuthRequest{}, errFlowGone
	}
	a, err := s.flows.Get(r.Context(), id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.AuthRequest{}, errFlowGone
	}
	if err != nil {
		return storage.AuthRequest{}, &account.Error{Code: account.Internal, Message: account.ErrorMessage(nil), Err: err}
	}
	if a.Completed {
		return storage.AuthRequest{}, errFlowGone
	}
	if !s.owns(r, a) {
		return storage.AuthRequest{}, errOtherBrowser
	}
	return a, nil
}

// next is the one dispatcher of the sign-in flow. It looks at the stored
// request and the browser's session and decides the next step: sign in,
// consent, or finish. Step handlers update the request and come back here;
// they never send the browser to one another.
func (s *Server) next(w http.ResponseWriter, r *http.Request, a storage.AuthRequest) error {
	return s.nextStep(w, r, a, false)
}

// nextStep is next for a request whose sign-in fields may not be stored yet
// (unsaved): they are stored before a page that needs them is shown.
func (s *Server) nextStep(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, unsaved bool) error {
	ctx := r.Context()
	none := slices.Contains(a.Prompt, "none")

	// Someone passed the password step for this request in this browser
	// and owes a second factor: that step comes before anything the session
	// could answer (no session exists for them yet).
	if a.UserID == "" {
		if p, ok := s.pending(r); ok && p.AuthRequestID == a.ID {
			if none {
				s.flows.Fail(w, r, a.ID, "login_required", "the user has not finished signing in")
				return nil
			}
			http.Redirect(w, r, "/login/2fa", http.StatusSeeOther)
			return nil
		}
	}

	// Who is signing in: someone who authenticated during this request, or
	// the session, if it is fresh enough for prompt=login and max_age.
	userID, authTime, amr, sessionID := a.UserID, a.AuthTime, a.AMR, a.SessionID
	if userID == "" {
		if sess, u := s.currentUser(r); u != nil && s.sessionAcceptable(a, sess, u) {
			userID, authTime, amr, sessionID = u.ID, sess.AuthTime, sess.AMR, sess.ID
		}
	}
	if userID == "" {
		if none {
			s.flows.Fail(w, r, a.ID, "login_required", "the user is not signed in")
			return nil
		}
		return s.showLogin(w, r, a, "", a.LoginHint, http.StatusOK)
	}
	user, err := s.acct.Users.ActiveUser(ctx, userID)
	if err != nil {
		if none {
			s.flows.Fail(w, r, a.ID, "login_required", "the user must sign in again")
			return nil
		}
		return s.showLogin(w, r, a, account.ErrorMessage(err), "", http.StatusForbidden)
	}
	// The allowlist holds at every authorization, also when a session
	// answers: a browser that signed in inside the list and moved outside
	// it gets no code for any app.
	if err := s.acct.SignIn.CheckNetworkAt(ctx, user, clientIP(r), r.UserAgent(), amr); err != nil {
		if account.ErrorCode(err) == account.Internal {
			return err
		}
		if none {
			s.flows.Fail(w, r, a.ID, "access_denied", "the user may not sign in from this network")
			return nil
		}
		return s.showLogin(w, r, a, account.ErrorMessage(err), "", http.StatusForbidden)
	}

	if s.acct.Policy().Require2FA {
		if needs, err := s.acct.Credentials.NeedsEnrolment(ctx, user); err != nil {
			return err
		} else if needs {
			if none {
				s.flows.Fail(w, r, a.ID, "interaction_required", "the user must set up two-factor authentication")
				return nil
			}
			if unsaved {
				if err := s.saveSignedIn(ctx, a); err != nil {
					return err
				}
			}
			http.Redirect(w, r, "/security?return_to="+url.QueryEscape("/login?authRequestID="+a.ID), http.StatusSeeOther)
			return nil
		}
	}

	client, err := s.store.GetClient(ctx, a.ClientID)
	if err != nil {
		return errFlowGone
	}
	if s.needsConsent(r, a, client, user.ID) {
		if none {
			s.flows.Fail(w, r, a.ID, "consent_required", "the user has not granted these scopes")
			return nil
		}
		if unsaved {
			if err := s.saveSignedIn(ctx, a); err != nil {
				return err
			}
		}
		return s.showConsent(w, r, a, client, &user)
	}

	if err := s.flows.Complete(ctx, a.ID, account.Completion{UserID: user.ID, SessionID: sessionID, AMR: amr, AuthTime: authTime}); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return errFlowGone
		}
		return &account.Error{Code: account.Internal, Message: account.ErrorMessage(nil), Err: err}
	}
	http.Redirect(w, r, s.flows.CallbackURL(ctx, a.ID), http.StatusFound)
	return nil
}

// saveSignedIn stores who signed in for a request before a page that needs
// it is shown.
func (s *Server) saveSignedIn(ctx context.Context, fresh storage.AuthRequest) error {
	_, err := s.opts.Store.UpdateAuthRequest(ctx, fresh.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.UserID, a.AuthTime, a.AMR, a.SessionID = fresh.UserID, fresh.AuthTime, fresh.AMR, fresh.SessionID
		return a, nil
	})
	if err != nil {
		return errFlowGone
	}
	return nil
}

// sessionAcceptable tells whether an existing session may answer a request
// without a new sign-in.
func (s *Server) sessionAcceptable(a storage.AuthRequest, sess *storage.Session, u *storage.User) bool {
	if slices.Contains(a.Prompt, "login") {
		return false
	}
	if a.MaxAge != nil && s.now().Sub(sess.AuthTime) > time.Duration(*a.MaxAge)*time.Second {
		return false
	}
	if a.HintUserID != "" && a.HintUserID != u.ID {
		return false // id_token_hint names someone else
	}
	return true
}

func (s *Server) needsConsent(r *http.Request, a storage.AuthRequest, c storage.Client, userID string) bool {
	if c.SkipConsent || a.ConsentOK {
		return false
	}
	if slices.Contains(a.Prompt, "consent") {
		return true
	}
	g, err := s.store.GetGrant(r.Context(), userID, c.ID)
	if err != nil {
		return true
	}
	for _, sc := range a.Scopes {
		if !slices.Contains(g.Scopes, sc) {
			return true
		}
	}
	return false
}

type loginData struct {
	base
	AuthRequestID string
	ReturnTo      string // a path on this site to go to after signing in (no authorization request)
	ClientName    string
	Login         string
	Error         string
	ShowPasskey   bool
	Upstream      []upstreamButton
	Notice        string // what just happened (signed out everywhere)
}

func (s *Server) showLogin(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, errMsg, login string, status int) error {
	d := &loginData{base: s.base(r, nil, "Sign in"), AuthRequestID: a.ID, Login: login, Error: errMsg, ShowPasskey: s.acct.Credentials.PasskeysAvailable(), Upstream: s.upstreamButtons()}
	if a.ID == "" {
		d.ReturnTo = safeReturn(r.FormValue("return_to"))
		if r.URL.Query().Get("done") == "signed-out-everywhere" {
			d.Notice = translate(d.Lang, "You were signed out everywhere. Sign in again to continue.")
		}
	}
	if a.ClientID != "" {
		if c, err := s.store.GetClient(r.Context(), a.ClientID); err == nil {
			d.ClientName = c.Name
		}
	}
	s.render(w, r, status, "login", d)
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
	a, err := s.flows.Get(r.Context(), id)
	if err != nil || a.Completed {
		return errFlowGone
	}
	if a, err = s.bindFlow(r, a); err != nil {
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
	returnTo := r.PostFormValue("return_to")
	creds := account.Credentials{Login: login, Password: r.PostFormValue("password"), IP: clientIP(r), UserAgent: r.UserAgent(), DeviceProof: s.deviceProof(r)}
	u, newHash, err := s.acct.SignIn.PasswordStep(r.Context(), creds)
	if err != nil {
		if account.ErrorCode(err) == account.Internal {
			return err
		}
		// Throttled or busy: 429 or 503 with Retry-After, and the page
		// says how long to wait.
		setRetryAfter(w, err)
		return s.showLogin(w, r, a, errorText(pickLanguage(r, ""), err), login, statusFor(account.ErrorCode(err)))
	}
	owes, err := s.owesSecondFactor(r, u)
	if err != nil {
		return err
	}
	if owes {
		if err := s.acct.SignIn.StoreRehash(r.Context(), u, newHash); err != nil {
			return err
		}
		// No session yet: the password step is recorded in the signed
		// cookie, and the dispatcher asks for the second factor.
		return s.askSecondFactor(w, r, pendingSignIn{UserID: u.ID, AuthRequestID: id, ReturnTo: safeReturn(returnTo)}, a)
	}
	return s.finishSignInFor(w, r, u, newHash, []string{"pwd"}, a, returnTo, continueFlow)
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
	base
	AuthRequestID string
	ClientName    string
	Scopes        []scopeView
}

func (s *Server) showConsent(w http.ResponseWriter, r *http.Request, a storage.AuthRequest, c storage.Client, u *storage.User) error {
	d := &consentData{base: s.base(r, u, "Allow access?"), AuthRequestID: a.ID, ClientName: c.Name}
	for _, sc := range a.Scopes {
		d.Scopes = append(d.Scopes, scopeView{Name: sc, Description: scopeDescriptions[sc]})
	}
	s.render(w, r, http.StatusOK, "consent", d)
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
	userID := a.UserID
	if userID == "" {
		sess, u := s.currentUser(r)
		if u == nil || !s.sessionAcceptable(a, sess, u) {
			return s.next(w, r, a)
		}
		userID = u.ID
	}
	switch r.PostFormValue("decision") {
	case "allow":
	case "deny":
		s.flows.Fail(w, r, a.ID, "access_denied", "the user denied the request")
		return nil
	default:
		return account.Errorf(account.Invalid, "Choose Allow or Deny.")
	}
	now := s.now()
	g, err := s.store.GetGrant(r.Context(), userID, a.ClientID)
	if err != nil {
		g = storage.Grant{UserID: userID, ClientID: a.ClientID, CreatedAt: now}
	}
	for _, sc := range a.Scopes {
		if !slices.Contains(g.Scopes, sc) {
			g.Scopes = append(g.Scopes, sc)
		}
	}
	g.UpdatedAt = now
	if err := s.store.PutGrant(r.Context(), g); err != nil {
		return &account.Error{Code: account.Internal, Message: account.ErrorMessage(nil), Err: err}
	}
	a, err = s.opts.Store.UpdateAuthRequest(r.Context(), a.ID, func(a storage.AuthRequest) (storage.AuthRequest, error) {
		a.ConsentOK = true
		return a, nil
	})
	if err != nil {
		return errFlowGone
	}
	return s.next(w, r, a)
}
