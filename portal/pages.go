package portal

import (
	"net/http"

	"github.com/keyport/keyport/account"
)

type homeData struct{ base }

func (s *Server) home(w http.ResponseWriter, r *http.Request) error {
	_, u := s.currentUser(r)
	s.render(w, r, http.StatusOK, "home", &homeData{base: s.base(r, u, "Home")})
	return nil
}

func (s *Server) loggedOut(w http.ResponseWriter, r *http.Request) error {
	s.render(w, r, http.StatusOK, "logged_out", &homeData{base: s.base(r, nil, "Signed out")})
	return nil
}

// logoutPage offers the sign-out button; signing out is a POST so that a
// link on another site cannot do it.
func (s *Server) logoutPage(w http.ResponseWriter, r *http.Request) error {
	if _, u := s.currentUser(r); u == nil {
		http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
		return nil
	}
	return s.home(w, r)
}

func (s *Server) logoutSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	if err := s.signOut(w, r); err != nil {
		return err
	}
	http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
	return nil
}

type setupData struct {
	base
	Token, Username, Email, Name, Error string
	MinLength                           int
}

func (s *Server) setupPage(w http.ResponseWriter, r *http.Request) error {
	tok := r.URL.Query().Get("token")
	if err := s.acct.CheckSetupToken(r.Context(), tok); err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "setup", &setupData{base: s.base(r, nil, "Set up Keyport"), Token: tok, MinLength: s.acct.Policy().MinPasswordLength})
	return nil
}

func (s *Server) setupSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	d := &setupData{
		base:      s.base(r, nil, "Set up Keyport"),
		Token:     r.PostFormValue("token"),
		Username:  r.PostFormValue("username"),
		Email:     r.PostFormValue("email"),
		Name:      r.PostFormValue("name"),
		MinLength: s.acct.Policy().MinPasswordLength,
	}
	pw := r.PostFormValue("password")
	if pw != r.PostFormValue("password_confirm") {
		d.Error = "The two passwords do not match."
		s.render(w, r, http.StatusBadRequest, "setup", d)
		return nil
	}
	u, err := s.acct.CompleteSetup(r.Context(), d.Token, account.NewUser{Username: d.Username, Email: d.Email, Name: d.Name, Password: pw})
	if err != nil {
		code := account.ErrorCode(err)
		if code == account.Invalid || code == account.Conflict {
			d.Error = account.ErrorMessage(err)
			s.render(w, r, statusFor(code), "setup", d)
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
