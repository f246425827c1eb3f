package portal

import (
	"net/http"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/web"
)

// Email verification by mail (account.MailService): the profile asks for a
// link; the link's page shows what it confirms and spends it only on a
// POST, so a mail scanner that opens links changes nothing.

type verifyEmailData struct {
	web.Base
	Token string
	Link  account.EmailLink
	Done  bool
}

func (s *Server) verifyEmailRequest(w http.ResponseWriter, r *http.Request, m me) error {
	if err := s.acct.Mail.SendVerification(r.Context(), m.User, web.PickLanguage(r, m.User.Locale)); err != nil {
		code := account.ErrorCode(err)
		if code != account.Conflict && code != account.RateLimited && code != account.Forbidden {
			return err
		}
		d := s.profileView(r, m.User)
		d.Error = errorText(d.Lang, err)
		s.web.Render(w, r, statusFor(code), "profile", d)
		return nil
	}
	http.Redirect(w, r, "/profile?saved=verify", http.StatusSeeOther)
	return nil
}

func (s *Server) verifyEmailPage(w http.ResponseWriter, r *http.Request) error {
	d := &verifyEmailData{Base: s.web.Base(r, nil, "Confirm your email address"), Token: r.URL.Query().Get("token")}
	var err error
	if d.Link, err = s.acct.Mail.CheckEmailLink(r.Context(), d.Token, clientIP(r)); err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	s.web.Render(w, r, http.StatusOK, "verify_email", d)
	return nil
}

func (s *Server) verifyEmailSubmit(w http.ResponseWriter, r *http.Request) error {
	if err := s.checkCSRF(r); err != nil {
		return err
	}
	d := &verifyEmailData{Base: s.web.Base(r, nil, "Confirm your email address")}
	_, link, err := s.acct.Mail.ConfirmEmail(r.Context(), r.PostFormValue("token"), clientIP(r), r.UserAgent())
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	d.Done, d.Link = true, link
	s.web.Render(w, r, http.StatusOK, "verify_email", d)
	return nil
}
