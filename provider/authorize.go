package provider

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/throttle"
)

// authorizeParamLimits are the largest values /authorize accepts for the
// parameters an authorization request stores, in bytes. Real clients send
// far less: state and nonce are usually random strings of 16 to 64
// characters, a state at most a nonce plus a return URL; 2 KiB of state and
// 1 KiB of nonce are many times that, and both together still fit the 8 KiB
// request line nginx accepts by default, and most deployments are reached
// through such a proxy. (The nonce had 2 KiB until the resource, DPoP and
// custom-claim fields joined the stored request: 1 KiB keeps the worst case
// within storage.MaxAuthRequestBytes.) A
// login_hint is a username or an email address (at most 254 characters,
// RFC 5321), or a pairwise app's pairwise sub (some 70). A code_challenge is at most 128 characters (RFC 7636 §4.2;
// S256 gives 43). Keyport offers two acr values and four prompt values, and
// a few locale tags say what a browser prefers, so a few hundred bytes hold
// any honest list. The other stored parameters are bounded elsewhere:
// response_mode and code_challenge_method by authorizeParamValues, the
// redirect URI by redirectURIProblem, the scopes by checkScopeTokens.
//
// With these, a stored request takes at most storage.MaxAuthRequestBytes
// (TestWorstCaseAuthRequestSize), and the store refuses anything larger
// whatever field grew; that bounds the flow file: see storage.PendingLimits
// and [limits] in config.toml.
var authorizeParamLimits = []struct {
	name string
	max  int
}{
	{"state", 2048},
	{"nonce", 1024},
	{"login_hint", 512},
	{"code_challenge", 128},
	{"acr_values", 256},
	{"ui_locales", 256},
	{"prompt", 64},
}

// authorizeParamValues are the stored parameters that name one of a few
// values: anything else is refused rather than stored. Keyport offers the
// response modes its discovery document lists, and S256 as the only PKCE
// method.
var authorizeParamValues = []struct {
	name   string
	values []string
}{
	{"response_mode", []string{"", "query", "fragment", "form_post"}},
	{"code_challenge_method", []string{"", "S256"}},
}

// maxRedirectURI is the longest redirect_uri /authorize accepts, in bytes.
// Registered redirect URIs are usually under 100 bytes; Keycloak stores
// them in columns of 255 characters.
const maxRedirectURI = 2048

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
	for _, p := range authorizeParamValues {
		if v := form.Get(p.name); !slices.Contains(p.values, v) {
			return authorizeProblem{param: p.name, err: oidc.ErrInvalidRequest().WithDescription(
				"%s must be one of %s", p.name, strings.Join(p.values[1:], ", "))}, true
		}
	}
	if !maxAgeParses(form.Get("max_age")) {
		return authorizeProblem{param: "max_age", err: oidc.ErrInvalidRequest().WithDescription(
			"max_age must be a whole number of seconds")}, true
	}
	if scope := form.Get("scope"); scope != "" {
		if err := checkScopeTokens(strings.Fields(scope)); err != nil {
			return authorizeProblem{param: "scope", err: err}, true
		}
	}
	return authorizeProblem{}, false
}

// maxAgeParses tells whether zitadel's decoder reads max_age v, as an
// unsigned integer ("" is none). One it cannot read fails the whole
// request before zitadel knows the redirect URI, so the problem would be
// the person's error page instead of the app's answer.
func maxAgeParses(v string) bool {
	if v == "" {
		return true
	}
	_, err := strconv.ParseUint(v, 10, 64)
	return err == nil
}

// readableByZitadel drops a max_age zitadel cannot decode from an
// /authorize request already refused for it (checkAuthorizeParams), so
// zitadel parses the rest, checks the client and redirect URI, and
// CreateAuthRequest sends the refusal there (RFC 6749 §4.1.2.1).
func readableByZitadel(form url.Values) {
	if !maxAgeParses(form.Get("max_age")) {
		form.Del("max_age")
	}
}

// redirectURIProblem says what is wrong with a redirect_uri zitadel has
// matched to the client's registered ones, or returns "". zitadel compares
// a native client's loopback redirect URI by path and query only (RFC 8252
// §7.3 lets the port vary), so whatever else such a URI carries would be
// stored unchecked: a port of any length, a user name and password, or a
// fragment, which RFC 6749 §3.1.2 forbids. The characters are those of a URI (RFC 3986, or
// RFC 3987's non-ASCII letters): none takes more room once stored as JSON,
// which keeps the stored request within its bound.
func redirectURIProblem(raw string) string {
	switch {
	case len(raw) > maxRedirectURI:
		return fmt.Sprintf("redirect_uri is longer than %d bytes", maxRedirectURI)
	case !uriText(raw):
		return "redirect_uri contains characters a URI may not contain"
	case strings.Contains(raw, "#"):
		return "redirect_uri must not contain a fragment"
	}
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return "redirect_uri must not contain a user name or password"
	}
	return ""
}

// uriText reports whether s is UTF-8 made only of characters a URI (or an
// IRI) may contain: printable, and none of the ASCII characters RFC 3986
// leaves out (space " < > \ ^ ` { | }). JSON stores what remains
// unescaped.
func uriText(s string) bool {
	if !utf8.ValidString(s) || strings.ContainsAny(s, " \"<>\\^`{|}") {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
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
// attacker cannot take a fresh address from their block for each request:
// the address the throttles count by.
func originOf(ip string) string {
	return throttle.Address(ip)
}

// originGroupOf is the wider block an address belongs to when the total
// limit chooses whom to evict from (storage.PendingLimits); the portal's
// own sign-in records use the same (account.Flow).
func originGroupOf(ip string) string {
	return throttle.AddressGroup(ip)
}
