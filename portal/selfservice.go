package portal

import (
	"net/http"
	"strings"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The self-service pages' own controls: the apps a user consented to
// (on the App access page) and signing out one browser (on the Activity
// page). Both take access away, like revoking an app password, so a
// signed-in browser may use them without confirming the password.
func (s *Server) registerSelfServiceRoutes(t *routeTable) {
	t.add(levelSignedIn, "POST", "/security/connected-apps/revoke", s.connectedAppRevoke)
	t.add(levelSignedIn, "POST", "/security/activity/sessions/end", s.sessionEnd)
}

// connectedAppView is a row of the connected apps.
type connectedAppView struct {
	ClientID, Name      string
	Deleted             bool
	Scopes              []scopeView
	Consented, LastUsed string
}

// connectedAppViews lists u's connected apps for the page; a listing that
// fails shows as empty, as the other lists of the page do.
func (s *Server) connectedAppViews(r *http.Request, u storage.User, lang string) []connectedAppView {
	apps, err := s.acct.SignIn.ConnectedApps(r.Context(), u.ID)
	if err != nil {
		s.log.ErrorContext(r.Context(), "list connected apps", "user_id", u.ID, "err", err)
		return nil
	}
	out := make([]connectedAppView, 0, len(apps))
	for _, a := range apps {
		v := connectedAppView{ClientID: a.ClientID, Name: a.Name, Deleted: a.Deleted,
			Consented: showTime(a.ConsentedAt, u.Zoneinfo), LastUsed: showTime(a.LastUsedAt, u.Zoneinfo)}
		if v.Name == "" {
			v.Name = a.ClientID
		}
		if a.LastUsedAt.IsZero() {
			v.LastUsed = web.Translate(lang, "Not since the consent")
		}
		for _, sc := range a.Scopes {
			v.Scopes = append(v.Scopes, scopeView{Name: sc, Description: scopeDescriptions[sc]})
		}
		out = append(out, v)
	}
	return out
}

// selfActor is the signed-in user acting on their own account.
func selfActor(m me) account.Actor {
	return account.Actor{Kind: account.ActorUser, UserID: m.User.ID}
}

// connectedAppRevoke takes back the consent to one app and its tokens.
func (s *Server) connectedAppRevoke(w http.ResponseWriter, r *http.Request, m me) error {
	clientID := strings.TrimSpace(r.PostFormValue("app"))
	if err := s.acct.SignIn.RevokeApp(r.Context(), selfActor(m), m.User.ID, clientID); err != nil {
		return s.accessFailed(w, r, m, err)
	}
	http.Redirect(w, r, "/security/access?done=app-revoked#connected-apps", http.StatusSeeOther)
	return nil
}

// sessionEnd signs out one of the user's browsers. Ending this browser's
// own session signs it out here, as the sign-out page does.
func (s *Server) sessionEnd(w http.ResponseWriter, r *http.Request, m me) error {
	ended, err := s.acct.SignIn.EndUserSession(r.Context(), selfActor(m), m.User.ID, r.PostFormValue("session"))
	if err != nil {
		code := account.ErrorCode(err)
		if code != account.NotFound && code != account.Forbidden {
			return err
		}
		d, verr := s.activityView(r, m)
		if verr != nil {
			return verr
		}
		d.Error = errorText(d.Lang, err)
		s.web.Render(w, r, statusFor(code), "activity", d)
		return nil
	}
	if ended.ID == m.Session.ID {
		if err := s.signOut(w, r); err != nil {
			return err
		}
		http.Redirect(w, r, "/logged-out", http.StatusSeeOther)
		return nil
	}
	http.Redirect(w, r, "/security/activity?done=session-ended#sessions", http.StatusSeeOther)
	return nil
}
