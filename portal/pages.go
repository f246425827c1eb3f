package portal

import (
	"net/http"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

type homeData struct{ web.Base }

func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	_, u := s.currentUser(r)
	s.web.Render(w, r, http.StatusOK, "home", &homeData{Base: s.web.Base(r, u, "Home")})
	return nil
}

func (s *Server) loggedOut(w http.ResponseWriter, r *http.Request) error {
	s.web.Render(w, r, http.StatusOK, "logged_out", &loggedOutData{Base: s.web.Base(r, nil, "Signed out")})
	return nil
}

// logoutData is the sign-out confirmation. Continue is where the browser
// goes once signed out: an app's end_session request, or "" for the
// signed-out page.
type logoutData struct {
	web.Base
	Continue string
}

// logoutPage asks whether to sign out; signing out is a POST with the CSRF
// token, so that a link on another site cannot do it.
func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) error {
	_, u := s.currentUser(r)
	if u == nil {
		http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
		return nil
	}
	s.showLogout(w, r, u, "")
	return nil
}

// showLogout renders the confirmation in the language of the person's
// profile, else the one an app's request asks for with ui_locales, else
// the browser's (Keycloak's order).
func (s *Server) showLogout(w http.ResponseWriter, r *http.Request, u *storage.User, continueURL string) {
	b := s.web.Base(r, u, "Sign out?")
	if !web.SupportedLanguage(web.BaseLanguage(u.Locale)) {
		if lang := web.UILocalesLanguage(r.FormValue("ui_locales")); lang != "" {
			b.Lang, b.Title = lang, web.Translate(lang, "Sign out?")
		}
	}
	s.web.Render(w, r, http.StatusOK, "logout", &logoutData{Base: b, Continue: continueURL})
}

// LogoutPrompt shows the sign-out confirmation for an app's end_session
// request that does not clearly come from the app (see package provider).
// Confirming signs out, then goes on to continueURL.
func (s *Server) LogoutPrompt(w http.ResponseWriter, r *http.Request, continueURL string) {
	_, u := s.currentUser(r)
	if u == nil {
		// Signed out in the meantime: nothing to confirm.
		http.Redirect(w, r, continueURL, http.StatusFound)
		return
	}
	s.showLogout(w, r, u, continueURL)
}

// SignedInUserID is the ID of the user signed in in the browser making r,
// or "".
func (s *Server) SignedInUserID(r *http.Request) string {
	if _, u := s.currentUser(r); u != nil {
		return u.ID
	}
	return ""
}

func (s *Server) logoutSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	frames, err := s.signOutTelling(w, r)
	if err != nil {
		return err
	}
	next := "/logged-out"
	if c, ok := localPath(r.PostFormValue("continue"), maxContinue); ok {
		next = c
	}
	if len(frames) > 0 {
		s.showSignedOut(w, r, frames, next)
		return nil
	}
	http.Redirect(w, r, next, http.StatusSeeOther)
	return nil
}

// maxContinue bounds the confirmation's continue URL: an end_session
// request with an ID token as its hint. An end_session request checks its
// own parameters again when it runs.
const maxContinue = 8 << 10

type setupData struct {
	web.Base
	Token, Username, Email, Name, Error string
	MinLength                           int
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) error {
	tok := r.URL.Query().Get("token")
	if err := s.acct.Users.CheckSetupToken(r.Context(), tok); err != nil {
		return err
	}
	s.web.Render(w, r, http.StatusOK, "setup", &setupData{Base: s.web.Base(r, nil, "Set up Keyport"), Token: tok, MinLength: s.acct.Policy().MinPasswordLength})
	return nil
}

func (s *Server) setupSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	d := &setupData{
		Base:      s.web.Base(r, nil, "Set up Keyport"),
		Token:     r.PostFormValue("token"),
		Username:  r.PostFormValue("username"),
		Email:     r.PostFormValue("email"),
		Name:      r.PostFormValue("name"),
		MinLength: s.acct.Policy().MinPasswordLength,
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password_confirm") {
		d.Error = "The two passwords do not match."
		s.web.Render(w, r, http.StatusBadRequest, "setup", d)
		return nil
	}
	u, err := s.acct.Users.CompleteSetup(r.Context(), d.Token, account.NewUser{Username: d.Username, Email: d.Email, Name: d.Name, Password: pw})
	if err != nil {
		code := account.ErrorCode(err)
		if code == account.Invalid || code == account.Conflict {
			d.Error = errorText(d.Lang, err)
			s.web.Render(w, r, statusFor(code), "setup", d)
			return nil
		}
		return err
	}
	s.log.InfoContext(r.Context(), "first administrator created through the setup link", "username", u.Username, "user_id", u.ID)
	if _, err := s.signIn(w, r, u, []string{"pwd"}); err != nil {
		return err
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
	return nil
}
