package provider

import (
	"context"
	"net/netip"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// authorizeParamLimits are the largest values /authorize accepts for the
// parameters an authorization request stores, in bytes. Real clients send
// far less: state and nonce are usually random strings of 16 to 64
// characters, at most a nonce plus a return URL; 2 KiB is many times that,
// and both together still fit the 8 KiB request line nginx accepts by
// default, and most deployments are reached through such a proxy. A
// login_hint is a username or an email address (at most 254 characters,
// RFC 5321). A code_challenge is at most 128 characters (RFC 7636 §4.2;
// S256 gives 43). Keyport offers two acr values and four prompt values, and
// a few locale tags say what a browser prefers, so a few hundred bytes hold
// any honest list.
//
// With these, a stored request takes at most 16 KiB, with a redirect URI of
// 256 bytes (TestWorstCaseAuthRequestSize), and that bounds the flow file:
// see storage.PendingLimits and [limits] in config.toml.
var authorizeParamLimits = []struct {
	name string
	max  int
}{
	{"state", 2048},
	{"nonce", 2048},
	{"login_hint", 512},
	{"code_challenge", 128},
	{"acr_values", 256},
	{"ui_locales", 256},
	{"prompt", 64},
}

// authorizeProblem is why /authorize refuses a request's parameters, found
// by the middleware before zitadel parses them. It travels in the
// request's context to CreateAuthRequest, which zitadel calls only once the
// client and the redirect URI are known to be good: there the refusal goes
// back to the app as invalid_request (RFC 6749 §4.1.2.1), and with a bad
// client or redirect URI zitadel's error page comes first.
type authorizeProblem struct {
	err   *oidc.Error
	param string
}

type authorizeProblemKey struct{}

func withAuthorizeProblem(ctx context.Context, p authorizeProblem) context.Context {
	return context.WithValue(ctx, authorizeProblemKey{}, p)
}

func authorizeProblemFrom(ctx context.Context) (authorizeProblem, bool) {
	p, ok := ctx.Value(authorizeProblemKey{}).(authorizeProblem)
	return p, ok
}

// checkAuthorizeParams returns what is wrong with the parameters of an
// authorization request that would be stored, if anything.
func checkAuthorizeParams(form url.Values) (authorizeProblem, bool) {
	for _, l := range authorizeParamLimits {
		v := form.Get(l.name)
		switch {
		case len(v) > l.max:
			return authorizeProblem{param: l.name, err: oidc.ErrInvalidRequest().WithDescription(
				"%s is longer than %d bytes", l.name, l.max)}, true
		case !printableText(v):
			return authorizeProblem{param: l.name, err: oidc.ErrInvalidRequest().WithDescription(
				"%s contains control characters or is not UTF-8", l.name)}, true
		}
	}
	if scope := form.Get("scope"); scope != "" {
		if err := checkScopeTokens(strings.Fields(scope)); err != nil {
			return authorizeProblem{param: "scope", err: err}, true
		}
	}
	return authorizeProblem{}, false
}

// printableText reports whether s is UTF-8 without control characters.
// Such text takes at most twice its length once stored as JSON (a quote or
// a backslash is escaped); a control character or an invalid byte would
// take six.
func printableText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// originOf is the origin a client address counts under for the pending
// sign-in limit: an IPv4 address stands for itself, an IPv6 address for its
// /64, the block one subscriber or one machine gets (RFC 6177), so an
// attacker cannot take a fresh address from their block for each request.
func originOf(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ""
	}
	a = a.Unmap()
	if a.Is4() {
		return a.String()
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ""
	}
	return p.String()
}
