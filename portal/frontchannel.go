package portal

import (
	"net/http"
	"strings"

	"github.com/keyport/keyport/web"
)

// Front-channel logout (OpenID Connect Front-Channel Logout 1.0): when a
// person signs out of Keyport in a browser, the signed-out page loads the
// front-channel logout URI of every app that got tokens in that browser
// session (account.FrontChannelLogoutURLs) in a hidden iframe, so each app
// can clear its own session in the same browser. The page's policy allows
// frames from exactly those origins. When the sign-out goes on somewhere
// (an app's post_logout_redirect_uri, an end_session request), a script
// from /static waits for the frames to load, for three seconds at most,
// and then goes on; a "Continue" link does the same without scripts.

// loggedOutData is the signed-out page: the apps' logout frames, and
// where to go once they loaded ("" to stay).
type loggedOutData struct {
	web.Base
	Frames   []string
	Continue string
}

// signOutTelling signs the browser out as signOut does and returns the
// front-channel logout URLs of the session it ended.
func (s *Server) signOutTelling(w http.ResponseWriter, r *http.Request) ([]string, error) {
	var frames []string
	if sess, _ := s.currentUser(r); sess != nil {
		frames = s.acct.SignIn.FrontChannelLogoutURLs(r.Context(), strings.TrimSuffix(s.opts.Issuer, "/"), *sess)
	}
	if err := s.signOut(w, r); err != nil {
		return nil, err
	}
	return frames, nil
}

// showSignedOut renders the signed-out page with the apps' logout frames,
// going on to next once they loaded ("" or the signed-out page itself:
// stay).
func (s *Server) showSignedOut(w http.ResponseWriter, r *http.Request, frames []string, next string) {
	if next == "/logged-out" || next == strings.TrimSuffix(s.opts.Issuer, "/")+"/logged-out" {
		next = ""
	}
	var kept, sources []string
	for _, f := range frames {
		if src, ok := web.FrameSource(f); ok {
			kept, sources = append(kept, f), append(sources, src)
		}
	}
	d := &loggedOutData{Base: s.web.Base(r, nil, "Signed out"), Frames: kept, Continue: next}
	s.web.RenderFraming(w, r, http.StatusOK, "logged_out", d, sources)
}
