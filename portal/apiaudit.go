package portal

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The audit log through the management API: a page at a time, or a whole
// query as JSON Lines.
func (s *Server) registerAdminAuditAPI(at *routeTable) {
	query := append([]apiParam{
		{"actor", "string", "the acting user's or app's ID"},
		{"user", "string", "the ID of the user the events are about"},
		{"type", "string", "event types, comma separated (signin.failed,user.blocked)"},
		{"from", "string", "events at or after this time (RFC 3339, or a date)"},
		{"to", "string", "events before this time (RFC 3339, or a date)"},
	}, pageQuery...)
	at.addAPI(levelAdminAPI, "GET", "/audit", s.apiListAudit, apiOp{Summary: "Audit events, newest first, a page at a time", Query: query, Response: listJSON[storage.AuditEvent]{}})
	at.addAPI(levelAdminAPI, "GET", "/audit/export", s.apiExportAudit, apiOp{Summary: "Every audit event the query selects, newest first, as JSON Lines (application/x-ndjson)", Query: query, ContentType: "application/x-ndjson"})
}

// auditQuery reads the filters of an audit query from a URL's query.
func auditQuery(q url.Values) (storage.AuditQuery, error) {
	out := storage.AuditQuery{ActorID: strings.TrimSpace(q.Get("actor")), TargetUserID: strings.TrimSpace(q.Get("user")), Cursor: q.Get("cursor")}
	for _, t := range strings.Split(q.Get("type"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			out.Types = append(out.Types, t)
		}
	}
	var err error
	if out.From, err = queryTime(q.Get("from"), "from"); err != nil {
		return out, err
	}
	if out.To, err = queryTime(q.Get("to"), "to"); err != nil {
		return out, err
	}
	return out, nil
}

// queryTime reads an RFC 3339 time or a date (midnight UTC); "" is zero.
func queryTime(v, field string) (time.Time, error) {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, nil
		}
	}
	return time.Time{}, account.FieldErrorf(field, "%s must be a time like 2026-12-06T10:00:00Z or a date like 2026-12-06.", field)
}

func (s *Server) apiListAudit(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	q, err := auditQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if q.Limit, _, err = pageParams(r, storage.MaxAuditLimit); err != nil {
		return err
	}
	events, next, err := s.acct.Audit.List(r.Context(), a, q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(events, next))
	return nil
}

func (s *Server) apiExportAudit(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	q, err := auditQuery(r.URL.Query())
	if err != nil {
		return err
	}
	// Check the query (and the reader) before the answer starts: an
	// error after the first line could not change the status.
	if _, _, err := s.acct.Audit.List(r.Context(), a, storage.AuditQuery{ActorID: q.ActorID, TargetUserID: q.TargetUserID, Types: q.Types, From: q.From, To: q.To, Cursor: q.Cursor, Limit: 1}); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Content-Disposition", `attachment; filename="keyport-audit.jsonl"`)
	if _, err := s.acct.Audit.Export(r.Context(), a, q, w); err != nil {
		// The status is sent; the log says why the stream is short.
		s.log.ErrorContext(r.Context(), "audit export failed part-way", "err", err)
	}
	return nil
}
