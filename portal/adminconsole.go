package portal

import (
	"net/http"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The admin console's own pages beyond the directories (admin.go): the
// overview at /admin, and each section's pages in their own files.

type adminOverviewData struct {
	web.Base
	Users, Apps, Directories int
	// FailedDeliveries counts the outbox's failed messages, up to
	// FailedMore (then "or more"): the overview warns when there are any.
	FailedDeliveries int
	FailedMore       bool
}

func (s *Server) adminOverview(w http.ResponseWriter, r *http.Request, m me) error {
	d := &adminOverviewData{Base: s.web.Base(r, &m.User, "Administration")}
	d.Nav, d.AdminSection = "admin", "overview"
	n, err := s.acct.Users.CountUsers(r.Context())
	if err != nil {
		return err
	}
	d.Users = n
	apps, err := s.acct.Clients.ListClients(r.Context())
	if err != nil {
		return err
	}
	d.Apps = len(apps)
	d.Directories = len(s.acct.Directories.DirectoryStatuses(r.Context()))
	failed, more, err := s.acct.Deliveries.List(r.Context(), consoleActor(r, m), storage.OutboxQuery{State: storage.OutboxFailed, Limit: storage.DefaultOutboxLimit})
	if err != nil {
		return err
	}
	d.FailedDeliveries, d.FailedMore = len(failed), more != ""
	s.web.Render(w, r, http.StatusOK, "admin_overview", d)
	return nil
}
