package provider

import (
	"errors"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The provider's error pages speak to the person in the browser, not to the
// app's developer: what went wrong and what to do, in plain words the
// package web translates (its catalogs hold the German of every heading and
// message here), with the value that was wrong shown as sent (escaped by
// the page's template, shortened here). zitadel's own descriptions are
// technical and English ("unable to retrieve client by id"); they appear
// only as the detail of a case this file does not name.

// pageError is one error page.
type pageError struct {
	status  int
	heading string
	message string // English; "%s" marks where value goes
	value   string
}

// maxShownValue bounds a value shown on an error page, in characters.
const maxShownValue = 200

// showError renders e through the shared error page (package web).
func (p *Provider) showError(w http.ResponseWriter, r *http.Request, e pageError) {
	var args []any
	if strings.Contains(e.message, "%s") {
		args = append(args, shownValue(e.value))
	}
	p.opts.Web.ErrorPage(w, r, e.status, e.heading, e.message, args...)
}

// shownValue makes a value fit for a page: control characters, format
// characters and invalid UTF-8 become U+FFFD, and more than maxShownValue
// characters are cut with an ellipsis. Format characters (Unicode category
// Cf: bidi overrides and isolates, zero-width spaces and joiners) change
// how the text around them reads without showing themselves, so a value
// could pass for another. HTML escaping is the template's job.
func shownValue(s string) string {
	s = strings.Map(func(c rune) rune {
		if unicode.IsControl(c) || unicode.Is(unicode.Cf, c) {
			return utf8.RuneError
		}
		return c
	}, strings.ToValidUTF8(s, string(utf8.RuneError)))
	if utf8.RuneCountInString(s) <= maxShownValue {
		return s
	}
	runes := []rune(s)
	return string(runes[:maxShownValue]) + "…"
}

// invalidRequest is the page for a request the application got wrong, with
// detail saying how.
func invalidRequest(status int, detail string) pageError {
	return pageError{status: status, heading: "This request cannot be processed",
		message: "The application sent a request Keyport cannot accept (%s). Go back to the application and try again; if this keeps happening, tell its administrator.",
		value:   detail}
}

var (
	errPageServer = pageError{status: http.StatusInternalServerError, heading: "Something went wrong",
		message: "Keyport could not complete this request. Please try again."}
	errPageOtherBrowser = pageError{status: http.StatusBadRequest, heading: "This sign-in request belongs to another browser",
		message: "Go back to the application and start signing in again from this browser."}
	errPageExpired = pageError{status: http.StatusBadRequest, heading: "This sign-in request has expired",
		message: "Go back to the application and start again."}
	errPageCallback = pageError{status: http.StatusBadRequest, heading: "This sign-in request cannot be used",
		message: "This sign-in request has expired or was already used. Go back to the application and start again."}
)

// explain turns zitadel's refusal of a browser-facing request (its status,
// OAuth error code and description) into a page.
func (p *Provider) explain(r *http.Request, path string, status int, code, description string) pageError {
	clientID := r.Form.Get("client_id")
	switch path {
	case "/authorize":
		if clientID != "" && !p.clientExists(r, clientID) {
			return pageError{status: http.StatusBadRequest, heading: "Unknown application",
				message: "The application that sent you here is not registered with Keyport (client_id “%s”). Nothing was sent to it. Go back and tell the application's administrator.",
				value:   clientID}
		}
		switch {
		case strings.Contains(description, "redirect_uri is missing in the client configuration"):
			return pageError{status: http.StatusBadRequest, heading: "This application cannot sign you in here",
				message: "The application asked Keyport to send you back to an address that is not registered for it: “%s”. Keyport did not go there. Go back and tell the application's administrator.",
				value:   r.Form.Get("redirect_uri")}
		case strings.Contains(description, "redirect_uri is") && strings.Contains(description, "not allowed"):
			// zitadel refuses a registered address by its scheme and the
			// client's type: "is http and is not allowed", "is using a
			// custom schema and is not allowed" (a confidential client that
			// registered a native app's private-use scheme).
			return pageError{status: http.StatusBadRequest, heading: "This application cannot sign you in here",
				message: "The application asked Keyport to send you back to “%s”. The address is registered for it, but this kind of application may not use an address of that kind. Keyport did not go there. Go back and tell the application's administrator.",
				value:   r.Form.Get("redirect_uri")}
		}
		return invalidRequest(status, description)
	case "/authorize/callback":
		return errPageCallback
	case "/end_session":
		refused := func(message, value string) pageError {
			return pageError{status: http.StatusBadRequest, heading: "Sign-out request not accepted", message: message, value: value}
		}
		switch {
		case code == "invalid_client" || clientID != "" && !p.clientExists(r, clientID):
			return refused("The sign-out request comes from an application that is not registered with Keyport (client_id “%s”). Keyport did not sign you out.", clientID)
		case strings.HasPrefix(description, "client_id does not match"):
			return refused("The sign-out request names an application (client_id “%s”) other than the one its token was issued to. Keyport did not sign you out. Go back and tell the application's administrator.", clientID)
		case strings.HasPrefix(description, "id_token_hint"):
			return refused("The sign-out request carries a token Keyport cannot verify (id_token_hint). Keyport did not sign you out. To sign out, open Keyport's start page and choose “Sign out”.", "")
		case strings.HasPrefix(description, "post_logout_redirect_uri"):
			return refused("The application asked to send you, after signing out, to an address that is not registered for it: “%s”. Keyport did not sign you out and did not go there. Go back and tell the application's administrator.",
				r.Form.Get("post_logout_redirect_uri"))
		}
		return refused("The application sent a sign-out request Keyport cannot accept (%s). Keyport did not sign you out.", description)
	}
	return invalidRequest(status, description)
}

// answerCallback answers /authorize/callback itself when the sign-in
// record says so, and reports whether it did: a record this browser did
// not open (or one that is gone, or the portal's own) gets an error page,
// and one the sign-in ended with an OAuth error sends that error to the
// app. A finished record is left to zitadel, which hands out the code.
func (p *Provider) answerCallback(w http.ResponseWriter, r *http.Request) bool {
	id := r.Form.Get("id")
	a, err := p.opts.Store.GetAuthRequest(r.Context(), id)
	switch {
	case id == "" || errors.Is(err, storage.ErrNotFound) || err == nil && a.ClientID == "":
		p.showError(w, r, errPageCallback)
		return true
	case err != nil:
		p.log.ErrorContext(r.Context(), "load auth request at the callback", "err", err)
		p.showError(w, r, errPageServer)
		return true
	case !account.Owns(a, p.opts.Web.BrowserID(r)):
		p.showError(w, r, errPageOtherBrowser)
		return true
	case a.FailCode != "":
		p.fail(w, r, id, a.FailCode, a.FailDescription)
		return true
	}
	return false
}

// clientExists tells whether id names a registered client; a failed lookup
// counts as existing, so a storage fault is not reported as a bad request.
func (p *Provider) clientExists(r *http.Request, id string) bool {
	_, err := p.opts.Store.GetClient(r.Context(), id)
	return !errors.Is(err, storage.ErrNotFound)
}
