package web

import (
	"net/http"

	"github.com/keyport/keyport/requestlog"
)

type errorData struct {
	Base
	Heading, Message, RequestID string
}

// ErrorPage renders the friendly error page, for the portal and the
// provider alike. heading and message are English, translated here; args
// (the value that was wrong, say) are formatted into the translated
// message and escaped like all text on the page.
func (s *Web) ErrorPage(w http.ResponseWriter, r *http.Request, status int, heading, message string, args ...any) {
	s.ErrorPageWithRef(w, r, status, heading, message, "", args...)
}

// ErrorPageWithRef is ErrorPage with the reference of a log line (ref, or
// ""), shown so that a report can be matched with the log. Without one the
// page shows the request's id (requestlog), which is on the request's log
// line and in the X-Request-Id header.
func (s *Web) ErrorPageWithRef(w http.ResponseWriter, r *http.Request, status int, heading, message, ref string, args ...any) {
	if ref == "" {
		ref = requestlog.ID(r.Context())
	}
	b := s.Base(r, nil, heading)
	s.Render(w, r, status, "error", &errorData{Base: b, Heading: Translate(b.Lang, heading), Message: Translate(b.Lang, message, args...), RequestID: ref})
}
