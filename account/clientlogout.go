package account

import (
	"net/url"
	"strings"

	"github.com/keyport/keyport/storage"
)

// The logout URIs of an app (OpenID Connect Front-Channel Logout 1.0 §2,
// Back-Channel Logout 1.0 §2.2): absolute http(s) URLs the app serves,
// https or http on a loopback host (as redirect URIs), with no fragment. A
// query is allowed: the front-channel URI keeps it when iss and sid are
// added, and the logout token is posted to the back-channel URI as it is.
// Neither is a redirect target, so neither takes a custom scheme.

// checkLogoutURIs checks the logout URIs of c, naming the field at fault.
func checkLogoutURIs(c *storage.Client) *Error {
	for _, f := range []struct {
		field, uri string
	}{{"frontchannel_logout_uri", c.FrontchannelLogoutURI}, {"backchannel_logout_uri", c.BackchannelLogoutURI}} {
		if f.uri == "" {
			continue
		}
		if err := checkLogoutURI(f.field, f.uri); err != nil {
			return err
		}
	}
	return nil
}

func checkLogoutURI(field, raw string) *Error {
	if len(raw) > MaxClientURILength {
		return FieldErrorf(field, "The logout URI must be at most %d characters.", MaxClientURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || strings.ContainsAny(raw, "# \t\r\n") {
		return FieldErrorf(field, "Logout URI %q must be an absolute http(s) URL without a fragment.", raw)
	}
	if u.User != nil {
		return FieldErrorf(field, "Logout URI %q must not contain a user name or password.", raw)
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopbackHost(u.Hostname()):
	default:
		return FieldErrorf(field, "Logout URI %q must use https:// (http:// only on 127.0.0.1, [::1] or localhost).", raw)
	}
	return nil
}

// applyLogout sets the logout fields p changes on c.
func (p ClientPatch) applyLogout(c *storage.Client) {
	if p.FrontchannelLogoutURI != nil {
		c.FrontchannelLogoutURI = *p.FrontchannelLogoutURI
	}
	if p.FrontchannelLogoutSessionRequired != nil {
		c.FrontchannelLogoutSessionRequired = *p.FrontchannelLogoutSessionRequired
	}
	if p.BackchannelLogoutURI != nil {
		c.BackchannelLogoutURI = *p.BackchannelLogoutURI
	}
	if p.BackchannelLogoutSessionRequired != nil {
		c.BackchannelLogoutSessionRequired = *p.BackchannelLogoutSessionRequired
	}
}
