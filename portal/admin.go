package portal

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
)

func (s *Server) registerAdminRoutes(r *mux.Router) {
	r.Handle("/admin/directories", s.withAdmin(s.adminDirectories)).Methods(http.MethodGet)
	r.Handle("/admin/directories/{id}/test", s.withAdmin(s.adminDirectoryTest)).Methods(http.MethodPost)
	r.Handle("/admin/directories/{id}/sync", s.withAdmin(s.adminDirectorySync)).Methods(http.MethodPost)
	r.Handle("/admin/directories/{id}/toggle", s.withAdmin(s.adminDirectoryToggle)).Methods(http.MethodPost)
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
	base
	Directories []account.DirectoryStatus
	Notice      string
	Error       string
	TestedID    string
	Test        string
}

func (s *Server) showAdminDirectories(w http.ResponseWriter, r *http.Request, m me, status int, d *adminDirectoriesData) error {
	d.base = s.base(r, &m.User, "Directories")
	d.Nav = "admin"
	d.Directories = s.acct.DirectoryStatuses(r.Context())
	s.render(w, r, status, "admin_directories", d)
	return nil
}

func (s *Server) adminDirectories(w http.ResponseWriter, r *http.Request, m me) error {
	d := &adminDirectoriesData{}
	if r.URL.Query().Get("done") == "sync" {
		d.Notice = "Sync finished; see the last report below."
	}
	return s.showAdminDirectories(w, r, m, http.StatusOK, d)
}

func (s *Server) adminDirectoryTest(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	d := &adminDirectoriesData{TestedID: id}
	rep, err := s.acct.TestDirectory(r.Context(), id)
	if err != nil {
		if account.ErrorCode(err) == account.NotFound {
			return err
		}
		d.Error = "Test of " + id + " failed: " + account.ErrorMessage(err)
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
	if _, err := s.acct.SyncDirectory(r.Context(), id); err != nil {
		code := account.ErrorCode(err)
		if code == account.NotFound {
			return err
		}
		return s.showAdminDirectories(w, r, m, statusFor(code), &adminDirectoriesData{Error: account.ErrorMessage(err)})
	}
	http.Redirect(w, r, "/admin/directories?done=sync", http.StatusSeeOther)
	return nil
}

func (s *Server) adminDirectoryToggle(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if err := s.acct.SetDirectoryDisabled(r.Context(), id, r.PostFormValue("disabled") == "1"); err != nil {
		return err
	}
	http.Redirect(w, r, "/admin/directories?id="+url.QueryEscape(id), http.StatusSeeOther)
	return nil
}
