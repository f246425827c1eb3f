package portal

import (
	"net/http"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/web"
)

// The forgotten password: a public form that has a reset link mailed
// (account.MailService). Its answer is the same whether or not the account
// exists; the link leads to the reset page of passwordlinks.go.

type forgotPasswordData struct {
	web.Base
	Login string
	Error string
	Sent  bool
}

func (s *Server) registerForgotPasswordRoutes(t *routeTable) {
	t.add(levelPublic, "GET", "/forgot-password", s.forgotPasswordPage)
	t.add(levelPublic, "POST", "/forgot-password", s.forgotPasswordSubmit)
}

func (s *Server) forgotPasswordPage(w http.ResponseWriter, r *http.Request) error {
	if !s.acct.Mail.Enabled() {
		return account.Errorf(account.NotFound, "Password reset by email is not available here. Please ask your administrator.")
	}
	s.web.Render(w, r, http.StatusOK, "forgot_password", &forgotPasswordData{Base: s.web.Base(r, nil, "Forgot your password?")})
	return nil
}

func (s *Server) forgotPasswordSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	d := &forgotPasswordData{Base: s.web.Base(r, nil, "Forgot your password?"), Login: r.PostFormValue("login")}
	err := s.acct.Mail.RequestPasswordReset(r.Context(), d.Login, clientIP(r), d.Lang)
	switch code := account.ErrorCode(err); {
	case err == nil:
		d.Sent, d.Login = true, ""
		s.web.Render(w, r, http.StatusOK, "forgot_password", d)
		return nil
	case code == account.Invalid || code == account.RateLimited:
		d.Error = errorText(d.Lang, err)
		s.web.Render(w, r, statusFor(code), "forgot_password", d)
		return nil
	default:
		return err
	}
}
