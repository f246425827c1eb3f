package portal

import (
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/directory/sources"
	"github.com/keyport/keyport/web"
)

func (s *Server) registerAdminRoutes(t *routeTable) {
	s.registerAdminDirectoryForms(t) // before the {id} routes below
	s.registerAdminUpstreamForms(t)
	t.add(levelAdmin, "GET", "/admin", s.adminOverview)
	s.registerAdminUserPages(t)
	s.registerAdminAuditPages(t)
	s.registerAdminAppPages(t)
	s.registerAdminGroupPages(t)
	s.registerAdminSettingsPages(t)
	s.registerAdminDeliveryPages(t)
	s.registerAdminWebhookPages(t)
	t.add(levelAdmin, "GET", "/admin/directories", s.adminDirectories)
	t.add(levelAdmin, "POST", "/admin/directories/{id}/test", s.adminDirectoryTest)
	t.add(levelAdmin, "POST", "/admin/directories/{id}/sync", s.adminDirectorySync)
	t.add(levelAdmin, "POST", "/admin/directories/{id}/toggle", s.adminDirectoryToggle)
}

var errNotAdmin = account.Errorf(account.Forbidden, "Only administrators can open this page.")

// withAdmin is withUser for administrators; everyone else gets 403.
func (s *Server) withAdmin(h userHandler) http.Handler {
	return s.withUser(func(w http.ResponseWriter, r *http.Request, m me) error {
		if !m.User.Admin {
			return errNotAdmin
		}
		return h(w, r, m)
	})
}

type adminDirectoriesData struct {
	web.Base
	Directories []account.DirectoryStatus
	Notice      string
	Error       string
	TestedID    string
	Test        string
}

func (s *Server) showAdminDirectories(w http.ResponseWriter, r *http.Request, m me, status int, d *adminDirectoriesData) error {
	d.Base = s.web.Base(r, &m.User, "Directories")
	d.Nav, d.AdminSection = "admin", "directories"
	d.Directories = s.acct.Directories.DirectoryStatuses(r.Context())
	s.web.Render(w, r, status, "admin_directories", d)
	return nil
}

func (s *Server) adminDirectories(w http.ResponseWriter, r *http.Request, m me) error {
	d := &adminDirectoriesData{}
	switch r.URL.Query().Get("done") {
	case "sync":
		d.Notice = "Sync finished; see the last report below."
	case "saved":
		d.Notice = "The directory was saved."
	case "removed":
		d.Notice = "The directory was removed. Its users keep their Keyport accounts but can no longer sign in through it."
	case "upstream-saved":
		d.Notice = "The upstream provider was saved."
	case "upstream-removed":
		d.Notice = "The upstream provider was removed. Its users keep their Keyport accounts but can no longer sign in through it."
	}
	return s.showAdminDirectories(w, r, m, http.StatusOK, d)
}

func (s *Server) adminDirectoryTest(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	d := &adminDirectoriesData{TestedID: id}
	rep, err := s.acct.Directories.TestDirectory(r.Context(), id)
	if err != nil {
		if account.ErrorCode(err) == account.NotFound {
			return err
		}
		lang := web.PickLanguage(r, m.User.Locale)
		d.Error = web.Translate(lang, "Test of %s failed: %s", id, errorText(lang, err))
		return s.showAdminDirectories(w, r, m, http.StatusBadGateway, d)
	}
	d.Test = "Connected and bound; the filter finds " + strconv.Itoa(rep.Users) + " users."
	if rep.Sample != nil {
		d.Test += " Sample: " + rep.Sample.Username + " <" + rep.Sample.Email + ">, " + rep.Sample.DisplayName
	}
	return s.showAdminDirectories(w, r, m, http.StatusOK, d)
}

func (s *Server) adminDirectorySync(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if _, err := s.acct.Directories.SyncDirectory(r.Context(), id); err != nil {
		code := account.ErrorCode(err)
		if code == account.NotFound {
			return err
		}
		return s.showAdminDirectories(w, r, m, statusFor(code), &adminDirectoriesData{Error: errorText(web.PickLanguage(r, m.User.Locale), err)})
	}
	http.Redirect(w, r, "/admin/directories?done=sync", http.StatusSeeOther)
	return nil
}

func (s *Server) adminDirectoryToggle(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if err := s.acct.Directories.SetDirectoryDisabled(r.Context(), id, r.PostFormValue("disabled") == "1"); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/directories?id="+url.QueryEscape(id), http.StatusSeeOther)
	return nil
}

func (s *Server) registerAdminDirectoryForms(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/directories/new", s.adminDirectoryForm)
	t.add(levelAdmin, "POST", "/admin/directories/new", s.adminDirectorySave)
	t.add(levelAdmin, "GET", "/admin/directories/{id}/edit", s.adminDirectoryForm)
	t.add(levelAdmin, "POST", "/admin/directories/{id}/edit", s.adminDirectorySave)
	t.add(levelAdmin, "GET", "/admin/directories/{id}/delete", s.adminDirectoryDeletePage) // asks first
	t.add(levelAdmin, "POST", "/admin/directories/{id}/delete", s.adminDirectoryDelete)
}

type directoryFormData struct {
	web.Base
	Create bool
	// F is the form's fields by Go field name (sources.Type.FormValues).
	F           map[string]any
	HasPassword bool
	Error       string
}

// directoryType is the source type of the admin page's directory (LDAP)
// and upstream provider (OpenID Connect) forms.
func directoryType(name string) sources.Type {
	t, err := sources.Lookup(name)
	if err != nil {
		panic(err) // the registry lost a type the portal has a page for
	}
	return t
}

// formValue reads one input of a submitted form.
func formValue(r *http.Request) func(string) string {
	return func(key string) string { return r.PostFormValue(key) }
}

func (s *Server) adminDirectoryForm(w http.ResponseWriter, r *http.Request, m me) error {
	id, editing := mux.Vars(r)["id"]
	d := &directoryFormData{Base: s.web.Base(r, &m.User, "Directory"), Create: !editing}
	d.Nav, d.AdminSection = "admin", "directories"
	typ := directoryType("ldap")
	if editing {
		settings, err := s.acct.Directories.StoredSettings(r.Context(), typ.Name, id)
		if err != nil {
			return err
		}
		d.F = typ.FormValues(id, settings)
		d.HasPassword = d.F["BindDN"] != ""
	} else {
		d.F = typ.NewForm()
	}
	s.web.Render(w, r, http.StatusOK, "admin_directory", d)
	return nil
}

// saveDirectoryForm stores the directory of type typeName that the posted
// form describes (a new one, or the one of the page's address). A refusal
// the form can mend (bad or clashing input) comes back as refused, with the
// form's values to show again and the status to show them with.
func (s *Server) saveDirectoryForm(r *http.Request, typeName string) (form map[string]any, editing bool, refused error, status int, err error) {
	id, editing := mux.Vars(r)["id"]
	if !editing {
		id = strings.TrimSpace(r.PostFormValue("id"))
	}
	typ := directoryType(typeName)
	settings, err := typ.FromForm(id, formValue(r))
	if err != nil {
		return nil, editing, nil, 0, err
	}
	form = typ.FormValues(id, settings) // before saving, which completes the settings
	err = s.acct.Directories.SaveStoredDirectory(r.Context(), typ.Name, id, settings, !editing)
	if code := account.ErrorCode(err); err != nil && (code == account.Invalid || code == account.Conflict) {
		return form, editing, err, statusFor(code), nil
	}
	return form, editing, nil, 0, err
}

func (s *Server) adminDirectorySave(w http.ResponseWriter, r *http.Request, m me) error {
	form, editing, refused, status, err := s.saveDirectoryForm(r, "ldap")
	if err != nil {
		return err
	}
	if refused != nil {
		d := &directoryFormData{Base: s.web.Base(r, &m.User, "Directory"), Create: !editing, F: form}
		d.Error = errorText(d.Lang, refused)
		d.Nav, d.AdminSection = "admin", "directories"
		s.web.Render(w, r, status, "admin_directory", d)
		return nil
	}
	http.Redirect(w, r, "/admin/directories?done=saved", http.StatusSeeOther)
	return nil
}

// adminDirectoryDeletePage asks before a directory or an upstream
// provider added here is removed; one from config.toml cannot be, so it is
// not found here.
func (s *Server) adminDirectoryDeletePage(w http.ResponseWriter, r *http.Request, m me) error {
	dir, err := s.storedDirectory(r)
	if err != nil {
		return err
	}
	title, button := "Remove this directory?", "Remove directory"
	if upstream(dir) {
		title, button = "Remove this upstream provider?", "Remove upstream provider"
	}
	d := s.confirmPage(r, m, "admin", title, button, "/admin/directories/"+url.PathEscape(dir.ID)+"/delete", "/admin/directories")
	d.Detail = dir.Name + " (" + dir.ID + ")"
	d.Message = web.Translate(d.Lang, "Its settings are deleted. Its users keep their Keyport accounts, but they can no longer sign in through it until it is added again.")
	s.showConfirm(w, r, d, nil)
	return nil
}

// storedDirectory is the directory or upstream provider of the page's
// address that was added here.
func (s *Server) storedDirectory(r *http.Request) (account.DirectoryStatus, error) {
	id := mux.Vars(r)["id"]
	dirs := s.acct.Directories.DirectoryStatuses(r.Context())
	i := slices.IndexFunc(dirs, func(d account.DirectoryStatus) bool { return d.ID == id && d.Stored })
	if i < 0 {
		return account.DirectoryStatus{}, account.Errorf(account.NotFound, "There is no directory %q that can be edited here.", id)
	}
	return dirs[i], nil
}

// upstream tells an upstream OpenID Connect provider from a directory.
func upstream(d account.DirectoryStatus) bool { return d.Provider == "oidc" }

func (s *Server) adminDirectoryDelete(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.adminDirectoryDeletePage(w, r, m)
	}
	dir, err := s.storedDirectory(r)
	if err != nil {
		return err
	}
	if err := s.acct.Directories.DeleteDirectory(r.Context(), dir.ID); err != nil {
		return err
	}
	done := "removed"
	if upstream(dir) {
		done = "upstream-removed"
	}
	http.Redirect(w, r, "/admin/directories?done="+done, http.StatusSeeOther)
	return nil
}

func (s *Server) registerAdminUpstreamForms(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/upstreams/new", s.adminUpstreamForm)
	t.add(levelAdmin, "POST", "/admin/upstreams/new", s.adminUpstreamSave)
	t.add(levelAdmin, "GET", "/admin/upstreams/{id}/edit", s.adminUpstreamForm)
	t.add(levelAdmin, "POST", "/admin/upstreams/{id}/edit", s.adminUpstreamSave)
}

type upstreamFormData struct {
	web.Base
	Create bool
	// F is the form's fields by Go field name (sources.Type.FormValues).
	F           map[string]any
	Scopes      string
	CallbackURL string
	HasSecret   bool
	Error       string
}

func (s *Server) adminUpstreamForm(w http.ResponseWriter, r *http.Request, m me) error {
	id, editing := mux.Vars(r)["id"]
	d := &upstreamFormData{Base: s.web.Base(r, &m.User, "Upstream provider"), Create: !editing, CallbackURL: s.acct.Directories.UpstreamCallbackURL()}
	d.Nav, d.AdminSection = "admin", "directories"
	typ := directoryType("oidc")
	if editing {
		settings, err := s.acct.Directories.StoredSettings(r.Context(), typ.Name, id)
		if err != nil {
			return err
		}
		d.F, d.HasSecret = typ.FormValues(id, settings), true
	} else {
		d.F = typ.NewForm()
	}
	d.Scopes, _ = d.F["Scopes"].(string)
	s.web.Render(w, r, http.StatusOK, "admin_upstream", d)
	return nil
}

func (s *Server) adminUpstreamSave(w http.ResponseWriter, r *http.Request, m me) error {
	form, editing, refused, status, err := s.saveDirectoryForm(r, "oidc")
	if err != nil {
		return err
	}
	if refused != nil {
		d := &upstreamFormData{Base: s.web.Base(r, &m.User, "Upstream provider"), Create: !editing, F: form, Scopes: strings.TrimSpace(r.PostFormValue("scopes")),
			CallbackURL: s.acct.Directories.UpstreamCallbackURL()}
		d.Error = errorText(d.Lang, refused)
		d.Nav, d.AdminSection = "admin", "directories"
		s.web.Render(w, r, status, "admin_upstream", d)
		return nil
	}
	http.Redirect(w, r, "/admin/directories?done=upstream-saved", http.StatusSeeOther)
	return nil
}
