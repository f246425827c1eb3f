package portal

import (
	"net/http"
	"net/url"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The console's deliveries: the outbox's failed and pending messages (the
// same as GET /api/v1/outbox), with why the last attempt failed, and a
// button that tries a failed one again.
func (s *Server) registerAdminDeliveryPages(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/deliveries", s.adminDeliveriesPage)
	t.add(levelAdmin, "POST", "/admin/deliveries/{id}/retry", s.adminRetryDelivery)
}

// deliveryList is one state's table: a page of messages and the address
// of the next.
type deliveryList struct {
	State string
	Items []storage.OutboxMessage
	Next  string
}

type adminDeliveriesData struct {
	web.Base
	// Lists are the failed, then the pending messages; one of them when
	// the page is asked for one state (a later page of it).
	Lists  []deliveryList
	Notice string
	Error  string
}

// deliveryPageSize is the console's page of messages per state.
const deliveryPageSize = 50

var deliveryNotices = map[string]string{
	"retried": "The delivery is pending again and goes out shortly.",
}

func (s *Server) adminDeliveriesPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showAdminDeliveries(w, r, m, http.StatusOK, deliveryNotices[r.URL.Query().Get("done")], nil)
}

// showAdminDeliveries renders the page with a notice or the error of an
// action (failure), under status.
func (s *Server) showAdminDeliveries(w http.ResponseWriter, r *http.Request, m me, status int, notice string, failure error) error {
	d := &adminDeliveriesData{Base: s.web.Base(r, &m.User, "Deliveries"), Notice: notice}
	d.Nav, d.AdminSection = "admin", "deliveries"
	if failure != nil {
		d.Error = errorText(d.Lang, failure)
	}
	states := []string{storage.OutboxFailed, storage.OutboxPending}
	q := r.URL.Query()
	if st := q.Get("state"); st != "" {
		states = []string{st}
	}
	for _, st := range states {
		page := storage.OutboxQuery{State: st, Limit: deliveryPageSize}
		if len(states) == 1 {
			page.Cursor = q.Get("cursor")
		}
		msgs, next, err := s.acct.Deliveries.List(r.Context(), consoleActor(r, m), page)
		if err != nil {
			if account.ErrorCode(err) != account.Invalid {
				return err
			}
			status, d.Error = statusFor(account.Invalid), errorText(d.Lang, err)
			break
		}
		l := deliveryList{State: st, Items: msgs}
		if next != "" {
			l.Next = "/admin/deliveries?" + url.Values{"state": {st}, "cursor": {next}}.Encode()
		}
		d.Lists = append(d.Lists, l)
	}
	s.web.Render(w, r, status, "admin_deliveries", d)
	return nil
}

func (s *Server) adminRetryDelivery(w http.ResponseWriter, r *http.Request, m me) error {
	if _, err := s.acct.Deliveries.Retry(r.Context(), consoleActor(r, m), mux.Vars(r)["id"]); err != nil {
		if account.ErrorCode(err) != account.Conflict {
			return err
		}
		return s.showAdminDeliveries(w, r, m, http.StatusConflict, "", err)
	}
	http.Redirect(w, r, "/admin/deliveries?done=retried", http.StatusSeeOther)
	return nil
}
