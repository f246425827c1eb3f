package portal

import (
	"net/http"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/web"
)

// The pages behind the one-time links an administrator hands out
// (account.AdminService): an invitation, where a new user sets their
// first password, and a password reset. Both are public: the link is the
// credential. A link that is unknown, expired or used gets a clear page
// and changes nothing; guesses count against the address's throttle.

type passwordLinkData struct {
	web.Base
	Invite    bool   // an invitation, else a password reset
	Action    string // the form's path
	Token     string
	Username  string
	Error     string
	MinLength int
	Done      bool // the password is set
}

// passwordLink is one kind of link: its path, title and account calls.
type passwordLink struct {
	invite bool
	path   string
	title  string
	check  func(s *Server, r *http.Request, secret string) (string, error)
	redeem func(s *Server, r *http.Request, secret, password string) error
}

var (
	invitationLink = passwordLink{invite: true, path: account.InvitationPath, title: "Set your password",
		check: func(s *Server, r *http.Request, secret string) (string, error) {
			u, err := s.acct.Admin.CheckInvitation(r.Context(), secret, clientIP(r))
			return u.Username, err
		},
		redeem: func(s *Server, r *http.Request, secret, password string) error {
			_, err := s.acct.Admin.RedeemInvitation(r.Context(), secret, password, clientIP(r), r.UserAgent())
			return err
		}}
	resetLink = passwordLink{path: account.PasswordResetPath, title: "Choose a new password",
		check: func(s *Server, r *http.Request, secret string) (string, error) {
			u, err := s.acct.Admin.CheckPasswordResetLink(r.Context(), secret, clientIP(r))
			return u.Username, err
		},
		redeem: func(s *Server, r *http.Request, secret, password string) error {
			_, err := s.acct.Admin.ResetPasswordWithLink(r.Context(), secret, password, clientIP(r), r.UserAgent())
			return err
		}}
)

func (s *Server) registerPasswordLinkRoutes(t *routeTable) {
	for _, l := range []passwordLink{invitationLink, resetLink} {
		t.add(levelPublic, "GET", l.path, s.passwordLinkPage(l))
		t.add(levelPublic, "POST", l.path, s.passwordLinkSubmit(l))
	}
}

func (s *Server) passwordLinkData(r *http.Request, l passwordLink, token string) *passwordLinkData {
	return &passwordLinkData{Base: s.web.Base(r, nil, l.title), Invite: l.invite, Action: l.path, Token: token,
		MinLength: s.acct.Policy().MinPasswordLength}
}

func (s *Server) passwordLinkPage(l passwordLink) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		d := s.passwordLinkData(r, l, r.URL.Query().Get("token"))
		var err error
		if d.Username, err = l.check(s, r, d.Token); err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		s.web.Render(w, r, http.StatusOK, "password_link", d)
		return nil
	}
}

func (s *Server) passwordLinkSubmit(l passwordLink) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		if err := s.checkCSRF(r); err != nil {
			return err
		}
		d := s.passwordLinkData(r, l, r.PostFormValue("token"))
		var err error
		if d.Username, err = l.check(s, r, d.Token); err != nil {
			return err
		}
		w.Header().Set("Cache-Control", "no-store")
		pw := r.PostFormValue("password")
		if pw != r.PostFormValue("password_confirm") {
			d.Error = "The two passwords do not match."
			s.web.Render(w, r, http.StatusBadRequest, "password_link", d)
			return nil
		}
		if err := l.redeem(s, r, d.Token, pw); err != nil {
			if account.ErrorCode(err) == account.Invalid {
				d.Error = errorText(d.Lang, err)
				s.web.Render(w, r, http.StatusBadRequest, "password_link", d)
				return nil
			}
			return err
		}
		d.Done, d.Token = true, ""
		s.web.Render(w, r, http.StatusOK, "password_link", d)
		return nil
	}
}
