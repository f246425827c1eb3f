package portal

import (
	"context"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"

	"github.com/gorilla/mux"
	"github.com/keyport/keyport/web"
)

// Every portal page allows forms to post to Keyport only (form-action
// 'self'). Chromium checks form-action against every redirect that follows
// a form submission, all the way along the chain: a sign-in form whose
// answer redirects through the provider's callback to the app, and from
// the app on to wherever the app sends the browser next (an oauth2-proxy
// going back to the page that was asked for, a broker such as Dex going
// back to its own app), would be stopped at the first address the page did
// not list, and none of the later ones can be known. So when the answer to
// a form post leaves the portal, it ends the form's navigation here: a
// page that hands the browser on with a Refresh header, which starts a new
// navigation that no form-action governs. Redirects between portal pages
// stay redirects.
//
// Only browsers enforce form-action. Those that send Fetch Metadata mark a
// form's navigation with Sec-Fetch-Mode: navigate; WebKit before 16.4
// (Safari on iOS 16.3 and older) enforces form-action on redirects too but
// sends no Fetch Metadata, and a navigation of it asks for text/html in its
// Accept header. Other clients (scripts, test harnesses, command-line
// tools signing in on a person's behalf: curl, Python's requests, Go's
// client, x/oauth2) send neither and get the plain redirect RFC 6749
// describes: a Refresh header means nothing to them, and the answer they
// get stays what it has always been.

// browserNavigation tells a browser's form navigation from any other POST.
func browserNavigation(r *http.Request) bool {
	if mode := r.Header.Get("Sec-Fetch-Mode"); mode != "" {
		return mode == "navigate"
	}
	return strings.Contains(strings.ToLower(r.Header.Get("Accept")), "text/html")
}

// handOver wraps the response to a form post.
func (s *Server) handOver(w http.ResponseWriter, r *http.Request) http.ResponseWriter {
	return &handOverWriter{ResponseWriter: w, s: s, r: r}
}

type handOverWriter struct {
	http.ResponseWriter
	s       *Server
	r       *http.Request
	written bool // the hand-over page replaced the redirect; drop its body
}

func (h *handOverWriter) WriteHeader(code int) {
	if h.written {
		return
	}
	if loc := h.Header().Get("Location"); code >= 300 && code < 400 && loc != "" && !h.s.portalPage(loc) {
		if link, ok := h.s.handOverLink(h.r.Context(), loc); ok {
			h.written = true
			h.Header().Del("Location")
			h.s.handOverPage(h.ResponseWriter, h.r, link)
			return
		}
	}
	h.ResponseWriter.WriteHeader(code)
}

func (h *handOverWriter) Write(b []byte) (int, error) {
	if h.written {
		return len(b), nil
	}
	return h.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (h *handOverWriter) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// portalPage tells whether location is a page the portal serves: a path
// its router knows, on Keyport's own origin. The provider's endpoints (the
// authorization callback, end_session) and other sites are not.
func (s *Server) portalPage(location string) bool {
	u, err := url.Parse(location)
	if err != nil || u.Opaque != "" || u.User != nil {
		return false
	}
	if u.Scheme != "" || u.Host != "" {
		if !strings.EqualFold(u.Scheme, s.issuer.Scheme) || !strings.EqualFold(u.Host, s.issuer.Host) {
			return false
		}
	}
	path := u.Path
	if path == "" {
		path = "/"
	}
	var m mux.RouteMatch
	req := &http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}, Host: u.Host}
	return s.router.Match(req, &m) && m.MatchErr == nil
}

// linkSchemesRefused run code or read local files when a link to them is
// followed: never a link, even if a client registered one.
var linkSchemesRefused = []string{"javascript", "data", "vbscript", "file"}

// handOverLink returns location as the target of the hand-over page (its
// Refresh header and its link), or false when it is none Keyport hands a
// browser to: a reference on this site, http or https, or a scheme a
// client registered for its redirect URIs (a native app's private-use
// scheme, RFC 8252 §7.1). html/template would blank any other scheme in
// the link to "#ZgotmplZ"; these are vouched for here.
func (s *Server) handOverLink(ctx context.Context, location string) (template.URL, bool) {
	u, err := url.Parse(location)
	if err != nil || strings.ContainsFunc(location, unicode.IsControl) {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	switch {
	case scheme == "" || scheme == "http" || scheme == "https":
		return template.URL(location), true
	case slices.Contains(linkSchemesRefused, scheme):
		return "", false
	}
	clients, err := s.store.ListClients(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "list clients for a hand-over", "err", err)
		return "", false
	}
	for _, c := range clients {
		for _, registered := range c.RedirectURIs {
			if rs, _, ok := strings.Cut(registered, ":"); ok && strings.EqualFold(rs, scheme) {
				return template.URL(location), true
			}
		}
	}
	return "", false
}

type handOverData struct {
	web.Base
	URL template.URL // checked by handOverLink
}

// handOverPage sends the browser on to location: at once through the
// Refresh header, or through its link in a browser that ignores the header.
func (s *Server) handOverPage(w http.ResponseWriter, r *http.Request, location template.URL) {
	w.Header().Set("Refresh", "0; url="+string(location))
	s.web.Render(w, r, http.StatusOK, "continue", &handOverData{Base: s.web.Base(r, nil, "Continuing"), URL: location})
}
