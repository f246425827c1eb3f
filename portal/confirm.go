package portal

import (
	"net/http"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/web"
)

// Destructive one-click actions (removing a passkey or a directory, new
// recovery codes, signing out everywhere) ask first, without JavaScript:
// the list links to a confirmation page (GET, no side effects), whose form
// posts the action with the CSRF token and confirm=yes. A post without
// confirm=yes (an old page, a crafted form) gets the confirmation page too
// and changes nothing.

// confirmData is a confirmation page: what is about to happen, and the one
// form that does it.
type confirmData struct {
	web.Base
	Heading string
	Message string // what the action does and what it undoes, translated
	Detail  string // the thing it acts on (a name), shown on its own line
	Action  string // where the form posts
	Hidden  []hiddenField
	Button  string // the label of the button that does it, translated
	Cancel  string // where "Cancel" leads
	// CancelLabel replaces "Cancel" (translated), for a page that is also
	// a stop on the way somewhere.
	CancelLabel string
	Notice      string // what just happened, above the question
	// NeedsPassword asks for the current password on the page (the
	// session is not recent and the action needs it).
	NeedsPassword bool
	Error         string // set by showConfirm from its failure
}

type hiddenField struct{ Name, Value string }

// confirmField is the form field that says the person confirmed.
const confirmField = "confirm"

// confirmed tells whether a destructive action's form was sent from its
// confirmation page.
func confirmed(r *http.Request) bool {
	return r.Method == http.MethodPost && r.PostFormValue(confirmField) == "yes"
}

// showConfirm renders a confirmation page; d.base must be set. failure,
// when not nil, is why the last try was refused (a missing or wrong
// password, too many of them): the page says so, with how long to wait
// when it is a wait, in the status and Retry-After too.
func (s *Server) showConfirm(w http.ResponseWriter, r *http.Request, d *confirmData, failure error) {
	status := http.StatusOK
	if failure != nil {
		status = statusFor(account.ErrorCode(failure))
		d.Error = errorText(d.Lang, failure)
		setRetryAfter(w, failure)
	}
	s.web.Render(w, r, status, "confirm", d)
}

// confirmPage starts the confirmation page of an action of m's: its title
// (the heading too) and its button, in English and translated here, under
// the menu entry nav; the form posts to action, and Cancel leads to cancel.
func (s *Server) confirmPage(r *http.Request, m me, nav, title, button, action, cancel string) *confirmData {
	d := &confirmData{Base: s.web.Base(r, &m.User, title), Action: action, Cancel: cancel}
	d.Nav = nav
	d.Heading = d.Title
	d.Button = web.Translate(d.Lang, button)
	return d
}

// confirmRecentPage is confirmPage for an action that needs a recent
// sign-in (a change to how m signs in): without one, the page asks for the
// password too.
func (s *Server) confirmRecentPage(r *http.Request, m me, nav, title, button, action, cancel string) *confirmData {
	d := s.confirmPage(r, m, nav, title, button, action, cancel)
	d.NeedsPassword = !s.acct.SignIn.RecentlyAuthenticated(m.Session)
	return d
}
