package portal

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/web"
)

// The device flow's page (RFC 8628 §3.3): the verification URI a device
// shows its person. A signed-in person types the user code (or finds it
// filled in from verification_uri_complete) and continues; the page then
// shows the app and the scopes it asks for, and the person approves or
// denies. Both steps are POSTs with the CSRF token: typing a code is a
// guess the throttle counts (account.DeviceFlow.Find), which a page from
// another site must not be able to spend. The routes exist whether the
// device flow is on or not, so their levels are always in the table; off,
// they match nothing and answer as unknown pages, to the signed-out too
// (who would otherwise be sent to sign in first, for a 404).

// DevicePath is the device flow's verification URI on the portal.
const DevicePath = "/device"

func (s *Server) registerDeviceRoutes(t *routeTable) {
	on := t.router.MatcherFunc(func(*http.Request, *mux.RouteMatch) bool { return s.opts.DeviceFlow != nil }).Subrouter()
	dt := t.within(on)
	dt.add(levelSignedIn, "GET", DevicePath, s.devicePage)
	dt.add(levelSignedIn, "POST", DevicePath, s.deviceSubmit)
}

type deviceData struct {
	web.Base
	// UserCode is what the code field holds (the entry step), or the
	// code of the request shown (the decision step).
	UserCode string
	Error    string
	// The decision step: the app and what it asks for.
	Decide     bool
	ClientName string
	Scopes     []scopeView
	// Whether the app registered itself and an administrator approved
	// it, as the consent page says (flow.go).
	registrationNote
	// Done: the person decided; Approved says how.
	Done, Approved bool
}

const deviceTitle = "Connect a device"

// maxShownUserCode bounds what the page echoes back of a typed code.
const maxShownUserCode = 32

func (s *Server) devicePage(w http.ResponseWriter, r *http.Request, m me) error {
	d := &deviceData{Base: s.web.Base(r, &m.User, deviceTitle)}
	// verification_uri_complete fills the code in; the person still
	// compares it with the device's and continues.
	if code := account.NormalizeUserCode(r.URL.Query().Get("user_code")); code != "" {
		d.UserCode = account.FormatUserCode(code)
	}
	s.web.Render(w, r, http.StatusOK, "device", d)
	return nil
}

func (s *Server) deviceSubmit(w http.ResponseWriter, r *http.Request, m me) error {
	d := &deviceData{Base: s.web.Base(r, &m.User, deviceTitle)}
	typed := r.PostFormValue("user_code")
	if len(typed) > maxShownUserCode {
		typed = typed[:maxShownUserCode]
	}
	d.UserCode = typed
	decision := r.PostFormValue("decision")
	var (
		req account.DeviceRequest
		err error
	)
	switch decision {
	case "":
		req, err = s.opts.DeviceFlow.Find(r.Context(), m.User, clientIP(r), typed)
	case "approve", "deny":
		req, err = s.opts.DeviceFlow.Decide(r.Context(), m.Session, m.User, clientIP(r), r.UserAgent(), typed, decision == "approve")
	default:
		return account.Errorf(account.Invalid, "Choose Approve or Deny.")
	}
	switch code := account.ErrorCode(err); {
	case err == nil && decision == "":
		d.Decide, d.UserCode, d.ClientName = true, account.FormatUserCode(req.Auth.UserCode), req.Client.Name
		d.registrationNote = registrationNoteOf(req.Client)
		for _, sc := range req.Auth.Scopes {
			desc := scopeDescriptions[sc]
			if desc == "" && account.IsCustomScope(req.Client, sc) {
				desc = customScopeDescription // as the consent page (adminappclaims.go)
			}
			d.Scopes = append(d.Scopes, scopeView{Name: sc, Description: desc})
		}
		s.web.Render(w, r, http.StatusOK, "device", d)
		return nil
	case err == nil:
		d.Done, d.Approved = true, decision == "approve"
		s.web.Render(w, r, http.StatusOK, "device", d)
		return nil
	case code == account.NotFound || code == account.RateLimited || code == account.Invalid:
		// Back to the entry step, with what went wrong.
		setRetryAfter(w, err)
		d.Error = errorText(d.Lang, err)
		s.web.Render(w, r, statusFor(code), "device", d)
		return nil
	case code == account.Forbidden:
		// Not allowed the app (the request is denied, as the code flow
		// answers access_denied) or not from this network (it waits).
		d.Done, d.Error = true, errorText(d.Lang, err)
		s.web.Render(w, r, http.StatusForbidden, "device", d)
		return nil
	default:
		return err
	}
}
