package portal

import (
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The console's local groups: the list with the create form, and a
// group's page (rename, members, delete). Every change goes through
// account.AdminService, as the API's and the CLI's do.
func (s *Server) registerAdminGroupPages(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/groups", s.adminGroupsPage)
	t.add(levelAdmin, "POST", "/admin/groups", s.adminCreateGroup)
	t.add(levelAdmin, "GET", "/admin/groups/{id}", s.adminGroupPage)
	t.add(levelAdmin, "POST", "/admin/groups/{id}/edit", s.adminEditGroup)
	t.add(levelAdmin, "POST", "/admin/groups/{id}/members", s.adminAddMember)
	t.add(levelAdmin, "POST", "/admin/groups/{id}/members/{user_id}/remove", s.adminRemoveMember)
	t.add(levelAdmin, "GET", "/admin/groups/{id}/delete", s.adminDeleteGroupPage) // asks first
	t.add(levelAdmin, "POST", "/admin/groups/{id}/delete", s.adminDeleteGroup)
}

type adminGroupsData struct {
	web.Base
	Groups []storage.Group
	// Name and Description are the create form's values posted back.
	Name, Description string
	Notice            string
	Error             string
	Field             string
}

// groupNotices are the messages a redirect after an action names.
var groupNotices = map[string]string{
	"created": "The group was created.",
	"saved":   "The changes were saved.",
	"added":   "The member was added.",
	"removed": "The member was removed.",
	"deleted": "The group was deleted.",
}

// memberPageSize is the console's page of members.
const memberPageSize = 100

func (s *Server) showAdminGroups(w http.ResponseWriter, r *http.Request, m me, status int, d *adminGroupsData) error {
	groups, err := s.acct.Admin.ListGroups(r.Context(), consoleActor(r, m))
	if err != nil {
		return err
	}
	d.Base = s.web.Base(r, &m.User, "Groups")
	d.Nav, d.AdminSection = "admin", "groups"
	d.Groups = groups
	s.web.Render(w, r, status, "admin_groups", d)
	return nil
}

func (s *Server) adminGroupsPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showAdminGroups(w, r, m, http.StatusOK, &adminGroupsData{Notice: groupNotices[r.URL.Query().Get("done")]})
}

func (s *Server) adminCreateGroup(w http.ResponseWriter, r *http.Request, m me) error {
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	g, err := s.acct.Admin.CreateGroup(r.Context(), consoleActor(r, m), name, desc)
	if err != nil {
		code := account.ErrorCode(err)
		if code != account.Invalid && code != account.Conflict {
			return err
		}
		d := &adminGroupsData{Name: name, Description: desc, Error: errorText(web.PickLanguage(r, m.User.Locale), err), Field: account.ErrorField(err)}
		return s.showAdminGroups(w, r, m, statusFor(code), d)
	}
	return groupDone(w, r, g.ID, "created")
}

type adminGroupData struct {
	web.Base
	G       storage.Group
	ETag    string
	Members []storage.User
	// Next is the address of the next page of members; "" on the last.
	Next string
	// Name and Description are the rename form's values; Login the add
	// form's.
	Name, Description, Login string
	Notice                   string
	Error                    string
	Field                    string
}

// showAdminGroup renders a group's page; d.Name stays as given when set (a
// form posted back with its error).
func (s *Server) showAdminGroup(w http.ResponseWriter, r *http.Request, m me, status int, d *adminGroupData) error {
	a := consoleActor(r, m)
	id := mux.Vars(r)["id"]
	g, err := s.acct.Admin.Group(r.Context(), a, id)
	if err != nil {
		return err
	}
	cursor := r.URL.Query().Get("cursor")
	if len(cursor) > maxCursor {
		cursor = ""
	}
	page, err := s.acct.Admin.GroupMembers(r.Context(), a, id, cursor, memberPageSize)
	if account.ErrorCode(err) == account.Invalid { // an old or made-up cursor: start over
		page, err = s.acct.Admin.GroupMembers(r.Context(), a, id, "", memberPageSize)
	}
	if err != nil {
		return err
	}
	d.Base = s.web.Base(r, &m.User, "Group")
	d.Nav, d.AdminSection = "admin", "groups"
	d.G, d.ETag, d.Members = g, account.GroupETag(g), page.Users
	if page.Next != "" {
		d.Next = "/admin/groups/" + url.PathEscape(g.ID) + "?cursor=" + url.QueryEscape(page.Next)
	}
	if d.Field != "name" && d.Field != "description" {
		d.Name, d.Description = g.Name, g.Description
	}
	s.web.Render(w, r, status, "admin_group", d)
	return nil
}

func (s *Server) adminGroupPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showAdminGroup(w, r, m, http.StatusOK, &adminGroupData{Notice: groupNotices[r.URL.Query().Get("done")]})
}

// groupDone redirects to the group's page with a notice.
func groupDone(w http.ResponseWriter, r *http.Request, id, done string) error {
	http.Redirect(w, r, "/admin/groups/"+url.PathEscape(id)+"?done="+done, http.StatusSeeOther)
	return nil
}

// refusedOnGroupPage shows the group's page with a refusal the admin can
// act on (bad input, a taken name, a stale form, a directory's user);
// other errors go up.
func (s *Server) refusedOnGroupPage(w http.ResponseWriter, r *http.Request, m me, err error, d *adminGroupData) error {
	code := account.ErrorCode(err)
	switch {
	case code == account.Invalid, code == account.Conflict, code == account.PreconditionFailed,
		code == account.NotFound && account.ErrorField(err) == "username":
	case code == account.Forbidden && account.ErrorField(err) == "groups":
		// The rules name the directory in English; say it here in the
		// admin's language.
		d.Error, d.Field = web.Translate(web.PickLanguage(r, m.User.Locale), "This user's groups come from their directory; change them there."), "username"
		return s.showAdminGroup(w, r, m, statusFor(code), d)
	default:
		return err
	}
	d.Error, d.Field = errorText(web.PickLanguage(r, m.User.Locale), err), account.ErrorField(err)
	if code == account.PreconditionFailed {
		d.Field = "" // show what is stored now
	}
	return s.showAdminGroup(w, r, m, statusFor(code), d)
}

func (s *Server) adminEditGroup(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	name, desc := r.PostFormValue("name"), r.PostFormValue("description")
	_, err := s.acct.Admin.UpdateGroup(r.Context(), consoleActor(r, m), id, r.PostFormValue("etag"), account.GroupPatch{Name: &name, Description: &desc})
	if err != nil {
		return s.refusedOnGroupPage(w, r, m, err, &adminGroupData{Name: name, Description: desc})
	}
	return groupDone(w, r, id, "saved")
}

func (s *Server) adminAddMember(w http.ResponseWriter, r *http.Request, m me) error {
	id, login := mux.Vars(r)["id"], r.PostFormValue("login")
	a := consoleActor(r, m)
	u, err := s.acct.Admin.MemberByLogin(r.Context(), a, login)
	if err == nil {
		err = s.acct.Admin.AddMember(r.Context(), a, id, u.ID)
	}
	if err != nil {
		return s.refusedOnGroupPage(w, r, m, err, &adminGroupData{Login: login})
	}
	return groupDone(w, r, id, "added")
}

func (s *Server) adminRemoveMember(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if err := s.acct.Admin.RemoveMember(r.Context(), consoleActor(r, m), id, mux.Vars(r)["user_id"]); err != nil {
		return s.refusedOnGroupPage(w, r, m, err, &adminGroupData{})
	}
	return groupDone(w, r, id, "removed")
}

func (s *Server) adminDeleteGroupPage(w http.ResponseWriter, r *http.Request, m me) error {
	g, err := s.acct.Admin.Group(r.Context(), consoleActor(r, m), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	path := "/admin/groups/" + url.PathEscape(g.ID)
	d := s.confirmPage(r, m, "admin", "Delete this group?", "Delete group", path+"/delete", path)
	d.AdminSection = "groups"
	d.Detail = g.Name
	d.Message = web.Translate(d.Lang, "The group is taken out of every member's groups, so their next tokens no longer carry it. Apps that allow only this group's members let them in no more.")
	s.showConfirm(w, r, d, nil)
	return nil
}

func (s *Server) adminDeleteGroup(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.adminDeleteGroupPage(w, r, m)
	}
	if err := s.acct.Admin.DeleteGroup(r.Context(), consoleActor(r, m), mux.Vars(r)["id"]); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/groups?done=deleted", http.StatusSeeOther)
	return nil
}
