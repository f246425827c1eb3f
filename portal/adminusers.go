package portal

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The console's user pages: a user's detail with the edit form and the
// actions, creating a user, and the one-time links. Every change goes
// through account.AdminService, as the API's and the CLI's do.
func (s *Server) registerAdminUserPages(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/users", s.adminUsersPage)
	t.add(levelAdmin, "GET", "/admin/users/new", s.adminNewUserPage)
	t.add(levelAdmin, "POST", "/admin/users/new", s.adminCreateUser)
	t.add(levelAdmin, "GET", "/admin/users/{id}", s.adminUserPage)
	t.add(levelAdmin, "POST", "/admin/users/{id}/edit", s.adminEditUser)
	t.add(levelAdmin, "POST", "/admin/users/{id}/block", s.adminBlockUser)
	t.add(levelAdmin, "POST", "/admin/users/{id}/unblock", s.adminUnblockUser)
	t.add(levelAdmin, "GET", "/admin/users/{id}/reset-2fa", s.adminResetSecondFactorsPage) // asks first
	t.add(levelAdmin, "POST", "/admin/users/{id}/reset-2fa", s.adminResetSecondFactors)
	t.add(levelAdmin, "POST", "/admin/users/{id}/end-sessions", s.adminEndSessions)
	t.add(levelAdmin, "POST", "/admin/users/{id}/reset-link", s.adminResetLink)
	t.add(levelAdmin, "POST", "/admin/users/{id}/api-tokens", s.adminCreateSystemToken)
	t.add(levelAdmin, "POST", "/admin/users/{id}/api-tokens/{token_id}/revoke", s.adminRevokeUserToken)
	t.add(levelAdmin, "GET", "/admin/users/{id}/delete", s.adminDeleteUserPage) // asks first
	t.add(levelAdmin, "POST", "/admin/users/{id}/delete", s.adminDeleteUser)
}

// consoleActor is the signed-in administrator as the rules see them.
func consoleActor(r *http.Request, m me) account.Actor {
	return account.Actor{Kind: account.ActorUser, UserID: m.User.ID, IP: clientIP(r), UserAgent: r.UserAgent()}
}

type adminUserData struct {
	web.Base
	D      account.UserDetail
	F      userForm // the edit form's values: the stored ones, or the ones posted back
	Notice string
	Error  string
	Field  string // the field an error names
	// Link is a one-time link just made, shown this once.
	Link     string
	LinkWhat string
	MailedTo string // the link went by mail to this address too
}

// userForm is the edit form's fields as text.
type userForm struct {
	ETag                                                                string
	Username, Email, Name, GivenName, FamilyName, Nickname, PhoneNumber string
	Locale, Zoneinfo, Roles, Groups, AppMetadata                        string
	EmailVerified, PhoneVerified, Admin                                 bool
}

func formOf(d account.UserDetail) userForm {
	u := d.User
	md := ""
	if len(u.AppMetadata) > 0 {
		b, _ := json.MarshalIndent(u.AppMetadata, "", "  ")
		md = string(b)
	}
	return userForm{
		ETag: d.ETag, Username: u.Username, Email: u.Email, Name: u.Name, GivenName: u.GivenName, FamilyName: u.FamilyName,
		Nickname: u.Nickname, PhoneNumber: u.PhoneNumber, Locale: u.Locale, Zoneinfo: u.Zoneinfo,
		Roles: strings.Join(u.Roles, ", "), Groups: strings.Join(u.Groups, ", "), AppMetadata: md,
		EmailVerified: u.EmailVerified, PhoneVerified: u.PhoneVerified, Admin: u.Admin,
	}
}

func postedUserForm(r *http.Request) userForm {
	v := r.PostFormValue
	return userForm{
		ETag: v("etag"), Username: v("username"), Email: v("email"), Name: v("name"), GivenName: v("given_name"), FamilyName: v("family_name"),
		Nickname: v("nickname"), PhoneNumber: v("phone_number"), Locale: v("locale"), Zoneinfo: v("zoneinfo"),
		Roles: v("roles"), Groups: v("groups"), AppMetadata: v("app_metadata"),
		EmailVerified: v("email_verified") == "1", PhoneVerified: v("phone_verified") == "1", Admin: v("admin") == "1",
	}
}

// splitList reads a comma-separated list, dropping empty entries.
func splitList(s string) []string {
	out := []string{}
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// patch turns the form into an edit of every field; AdminService changes
// only those that differ, and refuses locked ones only when they would.
func (f userForm) patch() (account.UserPatch, error) {
	roles, groups := splitList(f.Roles), splitList(f.Groups)
	md := map[string]string{}
	if strings.TrimSpace(f.AppMetadata) != "" {
		if err := json.Unmarshal([]byte(f.AppMetadata), &md); err != nil {
			return account.UserPatch{}, account.FieldErrorf("app_metadata", "app_metadata must be a JSON object of strings, such as {\"plan\": \"gold\"}.")
		}
	}
	return account.UserPatch{
		Username: &f.Username, Email: &f.Email, Name: &f.Name, GivenName: &f.GivenName, FamilyName: &f.FamilyName,
		Nickname: &f.Nickname, PhoneNumber: &f.PhoneNumber, Locale: &f.Locale, Zoneinfo: &f.Zoneinfo,
		EmailVerified: &f.EmailVerified, PhoneVerified: &f.PhoneVerified, Admin: &f.Admin,
		Roles: &roles, Groups: &groups, AppMetadata: &md,
	}, nil
}

// showAdminUser renders a user's page; d.F stays as given when set (a
// form posted back with its error).
func (s *Server) showAdminUser(w http.ResponseWriter, r *http.Request, m me, id string, status int, d *adminUserData) error {
	detail, err := s.acct.Admin.User(r.Context(), consoleActor(r, m), id)
	if err != nil {
		return err
	}
	d.Base = s.web.Base(r, &m.User, "User")
	d.Nav, d.AdminSection = "admin", "users"
	d.D = detail
	if d.F.ETag == "" {
		d.F = formOf(detail)
	}
	s.web.Render(w, r, status, "admin_user", d)
	return nil
}

// userNotices are the messages a redirect after an action names.
var userNotices = map[string]string{
	"saved":         "The changes were saved.",
	"created":       "The user was created.",
	"blocked":       "The user is blocked: their sessions ended and their tokens were revoked.",
	"unblocked":     "The user is no longer blocked.",
	"reset-2fa":     "The second factors were removed. The user enrols again at their next sign-in if two-factor authentication is required.",
	"signedout":     "Every session of the user ended and their tokens were revoked.",
	"token-revoked": "The API token was revoked.",
}

func (s *Server) adminUserPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showAdminUser(w, r, m, mux.Vars(r)["id"], http.StatusOK, &adminUserData{Notice: userNotices[r.URL.Query().Get("done")]})
}

// userDone redirects to the user's page with a notice.
func userDone(w http.ResponseWriter, r *http.Request, id, done string) error {
	http.Redirect(w, r, "/admin/users/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

// refusedOnPage shows the user's page with a refusal the admin can act on
// (bad input, a stale form, the last admin); other errors go up.
func (s *Server) refusedOnPage(w http.ResponseWriter, r *http.Request, m me, err error, d *adminUserData) error {
	switch code := account.ErrorCode(err); code {
	case account.Invalid, account.Conflict, account.Forbidden, account.PreconditionFailed:
		if code == account.Forbidden && account.ErrorField(err) == "" {
			return err // not a locked field: a refusal of the person
		}
		d.Error, d.Field = errorText(web.PickLanguage(r, m.User.Locale), err), account.ErrorField(err)
		if code == account.PreconditionFailed {
			d.F = userForm{} // show what is stored now
		}
		return s.showAdminUser(w, r, m, mux.Vars(r)["id"], statusFor(code), d)
	}
	return err
}

func (s *Server) adminEditUser(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	f := postedUserForm(r)
	d := &adminUserData{F: f}
	if f.ETag == "" {
		// The page always sends the version it showed; a form without
		// one (an old page, a crafted post) could overwrite another
		// admin's change unseen.
		return s.refusedOnPage(w, r, m, account.Errorf(account.PreconditionFailed, "Someone else changed this user since you loaded it. Reload and make your change again."), d)
	}
	p, err := f.patch()
	if err == nil {
		_, _, err = s.acct.Admin.UpdateUser(r.Context(), consoleActor(r, m), id, f.ETag, p)
	}
	if err != nil {
		return s.refusedOnPage(w, r, m, err, d)
	}
	return userDone(w, r, id, "saved")
}

func (s *Server) adminBlockUser(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if _, err := s.acct.Admin.BlockUser(r.Context(), consoleActor(r, m), id); err != nil {
		return s.refusedOnPage(w, r, m, err, &adminUserData{})
	}
	return userDone(w, r, id, "blocked")
}

func (s *Server) adminUnblockUser(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if err := s.acct.Admin.UnblockUser(r.Context(), consoleActor(r, m), id); err != nil {
		return s.refusedOnPage(w, r, m, err, &adminUserData{})
	}
	return userDone(w, r, id, "unblocked")
}

// confirmUserAction asks before a destructive action on the user of the
// page's address, naming them; action is the path under the user's page.
func (s *Server) confirmUserAction(w http.ResponseWriter, r *http.Request, m me, title, button, action, message string) error {
	u, err := s.acct.Admin.UserRecord(r.Context(), consoleActor(r, m), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	path := "/admin/users/" + url.PathEscape(u.ID)
	d := s.confirmPage(r, m, "admin", title, button, path+"/"+action, path)
	d.AdminSection = "users"
	d.Detail = u.Username + " <" + u.Email + ">"
	d.Message = web.Translate(d.Lang, message)
	s.showConfirm(w, r, d, nil)
	return nil
}

// adminResetSecondFactorsPage asks before the reset: it removes passkeys
// and the authenticator app for good.
func (s *Server) adminResetSecondFactorsPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.confirmUserAction(w, r, m, "Reset this user's second factors?", "Reset second factors", "reset-2fa",
		"Their authenticator app, passkeys, recovery codes and remembered devices are removed for good. If two-factor authentication is required, they set up a new one at their next sign-in.")
}

func (s *Server) adminResetSecondFactors(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.adminResetSecondFactorsPage(w, r, m)
	}
	id := mux.Vars(r)["id"]
	if _, err := s.acct.Admin.ResetSecondFactors(r.Context(), consoleActor(r, m), id); err != nil {
		return s.refusedOnPage(w, r, m, err, &adminUserData{})
	}
	return userDone(w, r, id, "reset-2fa")
}

func (s *Server) adminEndSessions(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if _, err := s.acct.Admin.EndSessions(r.Context(), consoleActor(r, m), id); err != nil {
		return s.refusedOnPage(w, r, m, err, &adminUserData{})
	}
	return userDone(w, r, id, "signedout")
}

// adminResetLink shows a new password-reset link once, on the user's page
// (the answer to the POST: never in an address or a redirect).
func (s *Server) adminResetLink(w http.ResponseWriter, r *http.Request, m me) error {
	link, err := s.acct.Admin.PasswordResetLink(r.Context(), consoleActor(r, m), mux.Vars(r)["id"])
	if err != nil {
		return s.refusedOnPage(w, r, m, err, &adminUserData{})
	}
	w.Header().Set("Cache-Control", "no-store")
	return s.showAdminUser(w, r, m, mux.Vars(r)["id"], http.StatusOK, &adminUserData{Link: link.URL, LinkWhat: "password-reset"})
}

func (s *Server) adminDeleteUserPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.confirmUserAction(w, r, m, "Delete this user?", "Delete user", "delete",
		"Their passkeys, app passwords, API tokens, sessions, consents and picture are deleted, and every app's tokens for them revoked. Their username and email address stay unavailable for 30 days.")
}

func (s *Server) adminDeleteUser(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.adminDeleteUserPage(w, r, m)
	}
	id := mux.Vars(r)["id"]
	if err := s.acct.Admin.DeleteUser(r.Context(), consoleActor(r, m), id); err != nil {
		return s.refusedOnPage(w, r, m, err, &adminUserData{})
	}
	http.Redirect(w, r, "/admin/users?done=deleted", http.StatusSeeOther)
	return nil
}

type adminNewUserData struct {
	web.Base
	F     account.AdminNewUser
	Error string
	Field string
}

func (s *Server) adminNewUserPage(w http.ResponseWriter, r *http.Request, m me) error {
	d := &adminNewUserData{Base: s.web.Base(r, &m.User, "New user"), F: account.AdminNewUser{Invite: true}}
	d.Nav, d.AdminSection = "admin", "users"
	s.web.Render(w, r, http.StatusOK, "admin_user_new", d)
	return nil
}

func (s *Server) adminCreateUser(w http.ResponseWriter, r *http.Request, m me) error {
	v := r.PostFormValue
	n := account.AdminNewUser{
		Username: v("username"), Email: v("email"), Name: v("name"), EmailVerified: v("email_verified") == "1",
		Admin: v("admin") == "1", Roles: splitList(v("roles")), Groups: splitList(v("groups")),
		Invite: v("how") != "password" && v("how") != "system", System: v("how") == "system",
	}
	if v("how") == "password" {
		n.Password = v("password")
	}
	u, link, err := s.acct.Admin.CreateUser(r.Context(), consoleActor(r, m), n)
	if err != nil {
		code := account.ErrorCode(err)
		if code != account.Invalid && code != account.Conflict {
			return err
		}
		n.Password = ""
		d := &adminNewUserData{Base: s.web.Base(r, &m.User, "New user"), F: n, Error: errorText(web.PickLanguage(r, m.User.Locale), err), Field: account.ErrorField(err)}
		d.Nav, d.AdminSection = "admin", "users"
		s.web.Render(w, r, statusFor(code), "admin_user_new", d)
		return nil
	}
	if link.URL == "" {
		return userDone(w, r, u.ID, "created")
	}
	// The invitation is shown this once, on the new user's page.
	w.Header().Set("Cache-Control", "no-store")
	return s.showAdminUser(w, r, m, u.ID, http.StatusCreated, &adminUserData{Notice: userNotices["created"], Link: link.URL, LinkWhat: "invitation", MailedTo: link.MailedTo})
}

type adminUsersData struct {
	web.Base
	Users []storage.User
	// F is the search form as sent; Next the address of the next page.
	F       url.Values
	Next    string
	Sources []account.DirectoryStatus
	Notice  string
	Error   string
	Field   string
}

// usersPageSize is the console's page of users.
const usersPageSize = 50

func (s *Server) adminUsersPage(w http.ResponseWriter, r *http.Request, m me) error {
	d := &adminUsersData{Base: s.web.Base(r, &m.User, "Users"), F: r.URL.Query()}
	d.Nav, d.AdminSection = "admin", "users"
	d.Sources = s.acct.Directories.DirectoryStatuses(r.Context())
	if r.URL.Query().Get("done") == "deleted" {
		d.Notice = "The user was deleted. Their username and email address stay unavailable for 30 days."
	}
	status := http.StatusOK
	q, err := userQuery(d.F)
	if err == nil {
		q.Limit = usersPageSize
		var page storage.UserPage
		page, err = s.acct.Admin.SearchUsers(r.Context(), consoleActor(r, m), q)
		d.Users = page.Users
		if page.Next != "" {
			nq := url.Values{}
			for k, v := range d.F {
				if k != "done" {
					nq[k] = v
				}
			}
			nq.Set("cursor", page.Next)
			d.Next = "/admin/users?" + nq.Encode()
		}
	}
	if err != nil {
		code := account.ErrorCode(err)
		if code != account.Invalid {
			return err
		}
		status = statusFor(code)
		d.Error, d.Field = errorText(d.Lang, err), account.ErrorField(err)
	}
	s.web.Render(w, r, status, "admin_users", d)
	return nil
}

// adminCreateSystemToken issues an API token for a system account and
// shows it this once on the account's page.
func (s *Server) adminCreateSystemToken(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	days, err := strconv.Atoi(r.PostFormValue("days"))
	if err != nil || days < 1 || days > int(account.MaxSystemTokenLifetime/(24*time.Hour)) {
		return s.refusedOnPage(w, r, m, account.FieldErrorf("expires", "Enter the number of days the token is valid, from 1 to 400."), &adminUserData{})
	}
	token, _, err := s.acct.Admin.CreateAPIToken(r.Context(), consoleActor(r, m), id, account.NewAPIToken{
		Name: r.PostFormValue("name"), Scope: r.PostFormValue("scope"),
		ExpiresAt: time.Now().Add(time.Duration(days) * 24 * time.Hour), AllowedNetworks: r.PostFormValue("networks")})
	if err != nil {
		return s.refusedOnPage(w, r, m, err, &adminUserData{})
	}
	w.Header().Set("Cache-Control", "no-store")
	return s.showAdminUser(w, r, m, id, http.StatusCreated, &adminUserData{Link: token, LinkWhat: "api-token"})
}

// adminRevokeUserToken revokes one API token of a user.
func (s *Server) adminRevokeUserToken(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if err := s.acct.Admin.RevokeAPIToken(r.Context(), consoleActor(r, m), id, mux.Vars(r)["token_id"]); err != nil {
		return s.refusedOnPage(w, r, m, err, &adminUserData{})
	}
	return userDone(w, r, id, "token-revoked")
}
