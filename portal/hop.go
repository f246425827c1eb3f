package portal

import (
	"html/template"
	"net/http"
	"strings"
)

// A browser withholds its Keyport cookie from some requests that another
// site starts: with SameSite=Lax from a cross-site POST (a form on another
// site posting to /end_session), with SameSite=Strict from any cross-site
// navigation (a link to the portal, an app sending the browser to
// /authorize and on to /login). Such a request looks like one from a
// browser nobody ever signed in with, and answering it as one is wrong both
// ways: end_session would sign "nobody" out and the app would believe its
// user gone, and the portal would give the browser a fresh cookie that
// replaces the session it still holds.
//
// So such a request is sent once around through Keyport itself: a page
// whose Refresh header starts a new navigation to the same address. That
// navigation is started by a page of Keyport's, so it is same-origin, the
// browser sends the cookie, and the request is answered as usual: single
// sign-on, or the sign-out confirmation. Only navigations that say they
// come from another site (Fetch Metadata: Sec-Fetch-Site: cross-site,
// Sec-Fetch-Mode: navigate) and carry no Keyport cookie take the hop; the
// hop's own request is same-origin, so it never takes another, and scripts
// (which send no Fetch Metadata) never take one. The hop goes to the same
// path and query on the issuer's origin and nowhere else.

// crossSiteNavigationWithoutCookie tells whether r is a browser's
// top-level navigation from another site that arrived without Keyport's
// cookie.
func (s *Server) crossSiteNavigationWithoutCookie(r *http.Request) bool {
	if r.Header.Get("Sec-Fetch-Site") != "cross-site" || r.Header.Get("Sec-Fetch-Mode") != "navigate" {
		return false
	}
	if dest := r.Header.Get("Sec-Fetch-Dest"); dest != "" && dest != "document" {
		return false
	}
	_, err := r.Cookie(s.web.CookieName())
	return err != nil
}

// RetryWithCookie answers a cross-site navigation that arrived without the
// browser's cookie with the hop to target (a path on this server, with its
// query), and reports whether it did. The provider asks it for
// end_session, whose POST from another site never carries the cookie.
func (s *Server) RetryWithCookie(w http.ResponseWriter, r *http.Request, target string) bool {
	if !s.crossSiteNavigationWithoutCookie(r) {
		return false
	}
	return s.hop(w, r, target)
}

// hopForStrictCookie takes the hop instead of giving a fresh cookie to a
// cross-site GET navigation when the cookie is SameSite=Strict (the
// browser may hold a session it did not send).
func (s *Server) hopForStrictCookie(w http.ResponseWriter, r *http.Request) bool {
	if s.web.CookieSameSite() != http.SameSiteStrictMode || r.Method != http.MethodGet || !s.crossSiteNavigationWithoutCookie(r) {
		return false
	}
	return s.hop(w, r, r.URL.RequestURI())
}

// hop renders the page that sends the browser on to target on the
// issuer's origin; a target that is not a path on this site, or is longer
// than a confirmation's continue URL, is not taken (false).
func (s *Server) hop(w http.ResponseWriter, r *http.Request, target string) bool {
	path, ok := localPath(target, maxContinue)
	if !ok {
		return false
	}
	s.log.DebugContext(r.Context(), "cross-site navigation without the cookie: same-origin hop", "path", r.URL.Path)
	// The issuer is an http or https URL (config checks it).
	s.handOverPage(w, r, template.URL(strings.TrimSuffix(s.opts.Issuer, "/")+path))
	return true
}
