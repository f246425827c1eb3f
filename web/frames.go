package web

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// FrameSource is the CSP source expression (scheme://host[:port]) of an
// http(s) URL a page loads in an iframe, or false when the URL has no
// origin a policy can name safely.
func FrameSource(raw string) (string, bool) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", false
	}
	host := strings.ToLower(u.Host)
	for _, r := range host {
		ok := r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || strings.ContainsRune(".-:[]", r)
		if !ok {
			return "", false
		}
	}
	return u.Scheme + "://" + host, true
}

// RenderFraming is Render for a page that loads sources (FrameSource
// values) in iframes: its Content-Security-Policy gains a frame-src
// naming exactly those, and nothing else about it changes. The signed-out
// page uses it for the apps' front-channel logout URIs.
func (s *Web) RenderFraming(w http.ResponseWriter, r *http.Request, status int, page string, data any, sources []string) {
	if len(sources) == 0 {
		s.Render(w, r, status, page, data)
		return
	}
	s.Render(&framingWriter{ResponseWriter: w, sources: slices.Compact(slices.Sorted(slices.Values(sources)))}, r, status, page, data)
}

// framingWriter adds frame-src to the policy Render sets, as the header
// goes out.
type framingWriter struct {
	http.ResponseWriter
	sources []string
}

func (f *framingWriter) WriteHeader(status int) {
	h := f.Header()
	if csp := h.Get("Content-Security-Policy"); csp != "" {
		h.Set("Content-Security-Policy", csp+"; frame-src "+strings.Join(f.sources, " "))
	}
	f.ResponseWriter.WriteHeader(status)
}
