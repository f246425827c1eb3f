package portal

import (
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

func (s *Server) registerAccessRoutes(t *routeTable) {
	t.add(levelSignedIn, "GET", "/security/access", s.accessPage)
	t.add(levelRecentSignIn, "POST", "/security/app-passwords", s.appPasswordCreate)
	t.add(levelSignedIn, "POST", "/security/app-passwords/revoke", s.appPasswordRevoke)
	t.add(levelRecentSignIn, "POST", "/security/api-tokens", s.apiTokenCreate)
	t.add(levelSignedIn, "POST", "/security/api-tokens/revoke", s.apiTokenRevoke)
	t.add(levelRecentSignIn, "POST", "/security/allowlist", s.allowlistSubmit)
	t.add(levelSignedIn, "GET", "/security/activity", s.activityPage)
	t.add(levelSignedIn, "GET", "/security/activity/signout-everywhere", s.signOutEverywherePage) // asks first
	t.add(levelSignedIn, "POST", "/security/activity/signout-everywhere", s.signOutEverywhere)
}

type credentialView struct {
	ID, Name, App, Scope, Created, Expires, LastUsed, LastIP string
}

type clientOption struct{ ID, Name string }

type accessData struct {
	web.Base
	Notice, Error string
	FieldErrors   map[string]string
	AppPasswords  []credentialView
	Tokens        []credentialView
	Clients       []clientOption
	Networks      string
	CurrentIP     string
	NeedsConfirm  bool
	AskLockout    bool // the new allowlist leaves out the current address
	// LockoutWarning says so, beside the box that saves it anyway.
	LockoutWarning string
	Form           map[string]string
	MinExpiry      string

	// AllowlistNotice says the allowlist was saved, in its own section:
	// the page opens there (#allowlist), not at the top.
	AllowlistNotice string

	// Apps are the apps the user consented to (selfservice.go), with their
	// own notice (AppsNotice) in their section, #connected-apps.
	Apps       []connectedAppView
	AppsNotice string
}

func (s *Server) accessView(r *http.Request, m me) *accessData {
	u := m.User
	d := &accessData{Base: s.web.Base(r, &u, "App access"), FieldErrors: map[string]string{}, Form: map[string]string{},
		Networks: strings.Join(u.AllowedNetworks, "\n"), CurrentIP: clientIP(r),
		NeedsConfirm: !s.acct.SignIn.RecentlyAuthenticated(m.Session), MinExpiry: s.now().AddDate(0, 0, 1).Format("2006-01-02")}
	d.Nav = "access"
	clients, _ := s.store.ListClients(r.Context())
	names := map[string]string{}
	for _, c := range clients {
		name := c.Name
		if name == "" {
			name = c.ID
		}
		names[c.ID] = name
		if !c.PendingApproval { // held for approval: no one's to choose yet
			d.Clients = append(d.Clients, clientOption{ID: c.ID, Name: name})
		}
	}
	view := func(c storage.Credential) credentialView {
		v := credentialView{ID: c.ID, Name: c.Name, Scope: c.Scope, Created: showTime(c.CreatedAt, u.Zoneinfo),
			LastUsed: showTime(c.LastUsedAt, u.Zoneinfo), LastIP: c.LastIP, Expires: showTime(c.ValidUntil, u.Zoneinfo)}
		if c.ClientID != "" {
			v.App = names[c.ClientID]
			if v.App == "" {
				v.App = c.ClientID
			}
		}
		return v
	}
	// A listing that fails shows as empty; the page stays usable.
	aps, _ := s.acct.Credentials.ListAppPasswords(r.Context(), u.ID)
	for _, c := range aps {
		d.AppPasswords = append(d.AppPasswords, view(c))
	}
	toks, _ := s.acct.Credentials.ListAPITokens(r.Context(), u.ID)
	for _, c := range toks {
		d.Tokens = append(d.Tokens, view(c))
	}
	d.Apps = s.connectedAppViews(r, u, d.Lang)
	return d
}

// showTime formats a time in the user's zone; zero is "—".
func showTime(t time.Time, tz string) string {
	if t.IsZero() {
		return "—"
	}
	return formatTime(t.UTC().Format(time.RFC3339), tz)
}

func (s *Server) accessPage(w http.ResponseWriter, r *http.Request, m me) error {
	d := s.accessView(r, m)
	switch r.URL.Query().Get("done") {
	case "revoked":
		d.Notice = web.Translate(d.Lang, "Revoked. It no longer works.")
	case "allowlist":
		d.AllowlistNotice = web.Translate(d.Lang, "Your IP allowlist was saved.")
	case "app-revoked":
		d.AppsNotice = web.Translate(d.Lang, "The app's access was revoked. It asks for your consent again the next time you sign in to it.")
	}
	s.web.Render(w, r, http.StatusOK, "access", d)
	return nil
}

// accessFailed shows the page again with what was typed and the message.
func (s *Server) accessFailed(w http.ResponseWriter, r *http.Request, m me, err error) error {
	code := account.ErrorCode(err)
	if code != account.Invalid && code != account.Forbidden && code != account.Conflict && code != account.NotFound && code != account.RateLimited {
		return err
	}
	d := s.accessView(r, m)
	d.Error = accessMessage(d.Lang, err)
	if f := account.ErrorField(err); f == "confirm_password" {
		// Three forms ask for the password; the message goes to the one sent.
		d.FieldErrors[confirmFieldOf[r.URL.Path]] = d.Error
	} else if f != "" {
		d.FieldErrors[f] = d.Error
	}
	for _, k := range []string{"name", "ap_name", "client_id", "scope", "expires", "allowed_networks", "token_networks"} {
		d.Form[k] = r.PostFormValue(k)
	}
	if r.URL.Path == "/security/allowlist" {
		d.Networks = r.PostFormValue("allowed_networks")
	}
	setRetryAfter(w, err)
	s.web.Render(w, r, statusFor(code), "access", d)
	return nil
}

// confirmFieldOf names each form's password confirmation for its messages.
var confirmFieldOf = map[string]string{
	"/security/app-passwords": "confirm_password_ap",
	"/security/api-tokens":    "confirm_password_tok",
	"/security/allowlist":     "confirm_password_allow",
}

// accessMessage is an error's message in the page's language; the one
// message with a variable part (the bad network entry) is formatted here.
func accessMessage(lang string, err error) string {
	var bad *account.BadNetworkError
	if errors.As(err, &bad) {
		return web.Translate(lang, account.BadNetworkFormat, bad.Entry)
	}
	return errorText(lang, err)
}

// renameField points an error at the form field that holds the value: the
// page has two name fields and two network fields.
func renameField(err error, from, to string) error {
	var e *account.Error
	if errors.As(err, &e) && e.Field == from {
		c := *e
		c.Field = to
		return &c
	}
	return err
}

type secretData struct {
	web.Base
	Kind, Name, Secret string
}

// showSecret shows a new secret once; the page is never cached.
func (s *Server) showSecret(w http.ResponseWriter, r *http.Request, m me, kind, name, secret string) error {
	d := &secretData{Base: s.web.Base(r, &m.User, "Copy it now"), Kind: kind, Name: name, Secret: secret}
	d.Nav = "access"
	s.web.Render(w, r, http.StatusOK, "secret_shown", d)
	return nil
}

// appPasswordCreate needs confirmIdentity like a new API token: an app
// password signs in without the second factor, so a borrowed session must
// not be able to mint one.
func (s *Server) appPasswordCreate(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.confirmIdentity(r, m); err != nil {
		return s.accessFailed(w, r, m, err)
	}
	secret, c, err := s.acct.Credentials.CreateAppPassword(r.Context(), m.User, r.PostFormValue("ap_name"), r.PostFormValue("client_id"))
	if err != nil {
		return s.accessFailed(w, r, m, renameField(err, "name", "ap_name"))
	}
	return s.showSecret(w, r, m, "app_password", c.Name, secret)
}

func (s *Server) appPasswordRevoke(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.acct.Credentials.RevokeAppPassword(r.Context(), m.User, r.PostFormValue("id")); err != nil {
		return s.accessFailed(w, r, m, err)
	}
	http.Redirect(w, r, "/security/access?done=revoked", http.StatusSeeOther)
	return nil
}

func (s *Server) apiTokenCreate(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.confirmIdentity(r, m); err != nil {
		return s.accessFailed(w, r, m, err)
	}
	n := account.NewAPIToken{Name: r.PostFormValue("name"), Scope: r.PostFormValue("scope"), AllowedNetworks: r.PostFormValue("token_networks")}
	if exp := strings.TrimSpace(r.PostFormValue("expires")); exp != "" {
		day, err := time.Parse("2006-01-02", exp)
		if err != nil {
			return s.accessFailed(w, r, m, account.FieldErrorf("expires", "Enter the expiry as a date."))
		}
		loc := time.UTC
		if l, err := time.LoadLocation(m.User.Zoneinfo); err == nil && m.User.Zoneinfo != "" {
			loc = l
		}
		// The token works through the whole chosen day in the user's zone.
		n.ExpiresAt = time.Date(day.Year(), day.Month(), day.Day()+1, 0, 0, 0, 0, loc)
	}
	token, c, err := s.acct.Credentials.CreateAPIToken(r.Context(), m.User, n)
	if err != nil {
		return s.accessFailed(w, r, m, renameField(err, "allowed_networks", "token_networks"))
	}
	return s.showSecret(w, r, m, "api_token", c.Name, token)
}

func (s *Server) apiTokenRevoke(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.acct.Credentials.RevokeAPIToken(r.Context(), m.User, r.PostFormValue("id")); err != nil {
		return s.accessFailed(w, r, m, err)
	}
	http.Redirect(w, r, "/security/access?done=revoked", http.StatusSeeOther)
	return nil
}

func (s *Server) allowlistSubmit(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.confirmIdentity(r, m); err != nil {
		return s.accessFailed(w, r, m, err)
	}
	_, warn, err := s.acct.SignIn.SetAllowedNetworks(r.Context(), m.User, r.PostFormValue("allowed_networks"), clientIP(r), r.PostFormValue("confirm_lockout") == "1")
	if err != nil {
		return s.accessFailed(w, r, m, err)
	}
	if warn {
		d := s.accessView(r, m)
		d.Networks = r.PostFormValue("allowed_networks")
		d.AskLockout = true
		d.LockoutWarning = web.Translate(d.Lang, "Your current address %s is not in this list: you could not sign in from here again. Tick the box to save it anyway.", clientIP(r))
		s.web.Render(w, r, http.StatusConflict, "access", d)
		return nil
	}
	// Back where the form was, where the notice is too.
	http.Redirect(w, r, "/security/access?done=allowlist#allowlist", http.StatusSeeOther)
	return nil
}

type attemptView struct {
	Time, IP, Device, Method, Result string
	Success                          bool
}

type sessionView struct {
	Device, IP, Since string
	Current           bool
	// Handle names the session in its "Sign out" form (account.SessionHandle).
	Handle string
}

type activityData struct {
	web.Base
	Attempts []attemptView
	Sessions []sessionView
	// Notice and Error are about signing one browser out (selfservice.go).
	Notice, Error string
}

func (s *Server) activityPage(w http.ResponseWriter, r *http.Request, m me) error {
	d, err := s.activityView(r, m)
	if err != nil {
		return err
	}
	if r.URL.Query().Get("done") == "session-ended" {
		d.Notice = web.Translate(d.Lang, "That browser was signed out.")
	}
	s.web.Render(w, r, http.StatusOK, "activity", d)
	return nil
}

func (s *Server) activityView(r *http.Request, m me) (*activityData, error) {
	u := m.User
	d := &activityData{Base: s.web.Base(r, &u, "Activity")}
	d.Nav = "activity"
	attempts, err := s.acct.SignIn.History(r.Context(), u.ID, 5)
	if err != nil {
		return nil, err
	}
	for _, a := range attempts {
		v := attemptView{Time: showTime(a.Time, u.Zoneinfo), IP: a.IP, Device: deviceName(d.Lang, a.UserAgent), Method: methodText(d.Lang, a.Method), Success: a.Success}
		if a.Success {
			v.Result = web.Translate(d.Lang, "Signed in")
		} else {
			v.Result = web.Translate(d.Lang, "Failed: %s", web.Translate(d.Lang, a.Reason))
		}
		d.Attempts = append(d.Attempts, v)
	}
	sessions, err := s.acct.SignIn.Sessions(r.Context(), u.ID)
	if err != nil {
		return nil, err
	}
	for _, sess := range sessions {
		d.Sessions = append(d.Sessions, sessionView{Device: deviceName(d.Lang, sess.UserAgent), IP: sess.IP, Since: showTime(sess.AuthTime, u.Zoneinfo), Current: sess.ID == m.Session.ID,
			Handle: account.SessionHandle(sess)})
	}
	return d, nil
}

// deviceName summarises a user agent in the page's language: "Firefox on
// Linux", "Firefox unter Linux".
func deviceName(lang, ua string) string {
	browser, system := account.DeviceParts(ua)
	browser = web.Translate(lang, browser)
	if system == "" {
		return browser
	}
	return web.Translate(lang, web.DeviceSummary, browser, system)
}

func methodName(m string) string {
	switch m {
	case "pwd":
		return "Password"
	case "pwd+otp":
		return "Password and code"
	case "pwd+hwk", "pwd+swk":
		return "Password and passkey"
	case "pwd+recovery", "pwd+recovery_code":
		return "Password and recovery code"
	case "otp":
		return "Code"
	case "recovery", "recovery_code":
		return "Recovery code"
	case "hwk", "swk", "passkey":
		return "Passkey"
	case "app_password":
		return "App password"
	case "api_token":
		return "API token"
	case account.MethodRefresh:
		return "Token refresh by an app"
	}
	return m
}

// signOutEverywherePage asks before every session ends, this one included.
func (s *Server) signOutEverywherePage(w http.ResponseWriter, r *http.Request, m me) error {
	d := s.confirmPage(r, m, "activity", "Sign out everywhere?", "Sign out everywhere", "/security/activity/signout-everywhere", "/security/activity")
	d.Message = web.Translate(d.Lang, "Every browser signed in to your account is signed out, this one too, and the apps you signed in to lose their access. App passwords and API tokens keep working; revoke them on the App access page.")
	s.showConfirm(w, r, d, nil)
	return nil
}

func (s *Server) signOutEverywhere(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.signOutEverywherePage(w, r, m)
	}
	if err := s.acct.SignIn.SignOutEverywhere(r.Context(), m.User.ID); err != nil {
		return err
	}
	if err := s.signOut(w, r); err != nil {
		return err
	}
	// The sign-in page says what happened.
	http.Redirect(w, r, "/login?done=signed-out-everywhere", http.StatusSeeOther)
	return nil
}
