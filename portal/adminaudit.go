package portal

import (
	"net/http"
	"net/url"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The console's audit log: the same query as GET /api/v1/audit, as a page
// with its filters, and its export as JSON Lines.
func (s *Server) registerAdminAuditPages(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/audit", s.adminAuditPage)
	t.add(levelAdmin, "GET", "/admin/audit/export", s.adminAuditExport)
}

type adminAuditData struct {
	web.Base
	Events []storage.AuditEvent
	// F is the filter form as sent; Next the address of the next page,
	// Export the export of the same query.
	F            url.Values
	Next, Export string
	Error        string
	Field        string
}

// auditPageSize is the console's page of events.
const auditPageSize = 50

func (s *Server) adminAuditPage(w http.ResponseWriter, r *http.Request, m me) error {
	d := &adminAuditData{Base: s.web.Base(r, &m.User, "Audit log"), F: r.URL.Query()}
	d.Nav, d.AdminSection = "admin", "audit"
	status := http.StatusOK
	q, err := auditQuery(d.F)
	if err == nil {
		q.Limit = auditPageSize
		var next string
		d.Events, next, err = s.acct.Audit.List(r.Context(), consoleActor(r, m), q)
		if next != "" {
			nq := url.Values{}
			for k, v := range d.F {
				nq[k] = v
			}
			nq.Set("cursor", next)
			d.Next = "/admin/audit?" + nq.Encode()
		}
		eq := url.Values{}
		for k, v := range d.F {
			if k != "cursor" {
				eq[k] = v
			}
		}
		d.Export = "/admin/audit/export?" + eq.Encode()
	}
	if err != nil {
		code := account.ErrorCode(err)
		if code != account.Invalid {
			return err
		}
		status = statusFor(code)
		d.Error, d.Field = errorText(d.Lang, err), account.ErrorField(err)
	}
	s.web.Render(w, r, status, "admin_audit", d)
	return nil
}

func (s *Server) adminAuditExport(w http.ResponseWriter, r *http.Request, m me) error {
	q, err := auditQuery(r.URL.Query())
	if err != nil {
		return err
	}
	a := consoleActor(r, m)
	check := q
	check.Limit = 1
	if _, _, err := s.acct.Audit.List(r.Context(), a, check); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="keyport-audit.jsonl"`)
	w.Header().Set("Cache-Control", "no-store")
	if _, err := s.acct.Audit.Export(r.Context(), a, q, w); err != nil {
		s.log.ErrorContext(r.Context(), "audit export failed part-way", "err", err)
	}
	return nil
}
