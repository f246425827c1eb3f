package provider

import (
	"fmt"
	"net/http"
	"net/url"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// RP-Initiated Logout 1.0 §2: the OP SHOULD ask the user whether to log
// out when the request is not clearly from the RP the user is signed in
// to. A link or redirect from any site reaches /end_session, and without an
// id_token_hint nothing says who sent it, so Keyport asks whenever someone
// is signed in in the browser and the request carries no valid hint for
// that very person. A hint for them (expired ones too, as the
// specification allows) shows the request comes from an app they signed in
// to, and they are signed out at once, as before. Nobody signed in: nothing
// to protect, and the request runs as always.

// A browser sends no SameSite=Lax cookie with a POST from another site, so
// an app's logout form reaches /end_session as if nobody were signed in:
// zitadel would end nobody's session and send the browser back to the app
// as signed out, while Keyport's session lives on. Such a request is sent
// once around through Keyport (RetryWithCookie: a page whose Refresh
// header repeats it as a same-origin GET), and comes back with the cookie
// and its parameters, to be answered by the rules above: a hint for the
// signed-in person signs out at once, anything else asks.

// holdEndSession answers an end_session request that must not run yet: one
// that came without the cookie from another site, or one the person must
// confirm. It reports whether it answered and, when someone is signed in
// and the request is valid, the request as validated here: the caller runs
// it with that (endSession) rather than let zitadel verify the hint and
// read the client again.
func (p *Provider) holdEndSession(w http.ResponseWriter, r *http.Request) (bool, *op.EndSessionRequest) {
	continueURL := endSessionContinue(r)
	if p.opts.SignOut.RetryWithCookie(w, r, continueURL) {
		return true, nil
	}
	session, confirm := p.logoutNeedsConfirmation(r)
	if confirm {
		p.opts.SignOut.LogoutPrompt(w, r, continueURL)
		return true, nil
	}
	return false, session
}

// endSessionParams are the parameters of an end_session request (RP-
// Initiated Logout 1.0 §2); only they are carried through the confirmation.
var endSessionParams = []string{"id_token_hint", "logout_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"}

// logoutNeedsConfirmation tells whether the end_session request r must be
// confirmed by the person signed in, and gives the request validated when
// someone is. An invalid request is not confirmed: zitadel refuses it with
// its error page, which signs nobody out.
func (p *Provider) logoutNeedsConfirmation(r *http.Request) (*op.EndSessionRequest, bool) {
	userID := p.opts.SignOut.SignedInUserID(r)
	if userID == "" {
		return nil, false
	}
	req, err := op.ParseEndSessionRequest(r, p.op.Decoder())
	if err != nil {
		return nil, false
	}
	ctx := op.ContextWithIssuer(r.Context(), p.opts.Issuer)
	session, err := op.ValidateEndSessionRequest(ctx, req, p.op)
	if err != nil {
		return nil, false
	}
	// The hint's sub is the one its app knows the person by (pairwise
	// or not): read back, it must be the person signed in.
	hinted := ""
	if session.UserID != "" {
		if hinted, err = p.storage.userOf(ctx, session.ClientID, session.UserID); err != nil {
			return nil, false
		}
	}
	return session, hinted != userID
}

// endSession runs an end_session request validated by holdEndSession as
// zitadel's EndSession would: the user's tokens for the client are
// revoked, and the browser goes on to the validated redirect.
func (p *Provider) endSession(w http.ResponseWriter, r *http.Request, session *op.EndSessionRequest) {
	if err := p.storage.TerminateSession(r.Context(), session.UserID, session.ClientID); err != nil {
		op.RequestError(w, r, oidc.DefaultToServerError(err, "error terminating session"), nil)
		return
	}
	http.Redirect(w, r, session.RedirectURI, http.StatusFound)
}

// Bounds of an end_session request, which is carried whole through the
// confirmation page and the same-origin hop (endSessionContinue). state
// goes back to the app as /authorize's does and is bounded the same
// (authorizeParamLimits); the whole request is bounded as the portal
// bounds the confirmation's continue URL (8 KiB), beyond which the hop and
// the page would drop it and the app would never hear back.
const (
	maxEndSessionState    = 2048
	maxEndSessionContinue = 8 << 10
)

// endSessionProblem tells why the end_session request r is refused before
// anything runs, or "".
func endSessionProblem(r *http.Request) string {
	if n := len(r.Form.Get("state")); n > maxEndSessionState {
		return fmt.Sprintf("state is %d bytes long, more than %d", n, maxEndSessionState)
	}
	if n := len(endSessionContinue(r)); n > maxEndSessionContinue {
		return fmt.Sprintf("the sign-out request is %d bytes long, more than %d", n, maxEndSessionContinue)
	}
	return ""
}

// endSessionContinue is r again as a path on this server, with only the
// end_session parameters: where the confirmation goes once the person has
// signed out. zitadel checks it again then (post_logout_redirect_uri
// against the client's registered ones), so nothing is trusted from the
// round trip through the page.
func endSessionContinue(r *http.Request) string {
	q := url.Values{}
	for _, k := range endSessionParams {
		if v := r.Form.Get(k); v != "" {
			q.Set(k, v)
		}
	}
	if len(q) == 0 {
		return r.URL.Path
	}
	return r.URL.Path + "?" + q.Encode()
}
