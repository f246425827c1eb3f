package portal

import (
	"net/http"
	"strings"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The outbox through the management API: what Keyport sends out (mails,
// webhook calls, back-channel logouts), the ones that failed and why, and
// a retry for a failed one. A message's payload is never shown: it is
// sealed, and a mail may hold a link that signs someone in.
func (s *Server) registerAdminOutboxAPI(at *routeTable) {
	query := append([]apiParam{
		{"state", "string", "pending, delivered or failed"},
		{"kind", "string", "the kind of message (mail, webhook, backchannel_logout)"},
	}, pageQuery...)
	at.addAPI(levelAdminAPI, "GET", "/outbox", s.apiListOutbox, apiOp{Summary: "Outgoing messages (never their content), newest first, a page at a time", Query: query, Response: listJSON[outboxMessageJSON]{}})
	at.addAPI(levelAdminAPI, "POST", "/outbox/{id}/retry", s.apiRetryOutbox, apiOp{Summary: "Make a failed message pending again, due now, with a fresh day of retries", Response: outboxMessageJSON{}})
}

// outboxMessageJSON is an outbox message as admins see it: everything
// but the payload.
type outboxMessageJSON struct {
	ID            string     `json:"id"`
	Kind          string     `json:"kind"`
	State         string     `json:"state"`
	Attempts      int        `json:"attempts"`
	LastError     string     `json:"last_error,omitempty"`
	CreatedAt     time.Time  `json:"created_at"`
	NextAttemptAt time.Time  `json:"next_attempt_at"`
	Deadline      time.Time  `json:"deadline"`
	DeliveredAt   *time.Time `json:"delivered_at,omitempty"` // delivered, or given up
}

func newOutboxMessageJSON(m storage.OutboxMessage) outboxMessageJSON {
	out := outboxMessageJSON{ID: m.ID, Kind: m.Kind, State: m.State, Attempts: m.Attempts, LastError: m.LastError,
		CreatedAt: m.CreatedAt, NextAttemptAt: m.NextAttemptAt, Deadline: m.Deadline}
	if !m.DeliveredAt.IsZero() {
		at := m.DeliveredAt
		out.DeliveredAt = &at
	}
	return out
}

func (s *Server) apiListOutbox(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	limit, cursor, err := pageParams(r, storage.MaxOutboxLimit)
	if err != nil {
		return err
	}
	q := storage.OutboxQuery{State: strings.TrimSpace(r.URL.Query().Get("state")), Kind: strings.TrimSpace(r.URL.Query().Get("kind")), Cursor: cursor, Limit: limit}
	msgs, next, err := s.acct.Deliveries.List(r.Context(), a, q)
	if err != nil {
		return err
	}
	out := make([]outboxMessageJSON, len(msgs))
	for i, m := range msgs {
		out[i] = newOutboxMessageJSON(m)
	}
	writeJSON(w, http.StatusOK, newList(out, next))
	return nil
}

func (s *Server) apiRetryOutbox(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "delivery")
	if err != nil {
		return err
	}
	m, err := s.acct.Deliveries.Retry(r.Context(), a, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newOutboxMessageJSON(m))
	return nil
}
