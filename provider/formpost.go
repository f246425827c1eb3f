package provider

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"html/template"
	"net/http"
	"net/url"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"golang.org/x/net/idna"

	"github.com/keyport/keyport/storage"
)

// Form Post Response Mode (OAuth 2.0 Form Post Response Mode, advertised in
// discovery): the authorization response reaches the client as a POST that
// the browser submits by itself.
//
// zitadel's own form has no iss (RFC 9207) and no error fields (its errors
// go back as query redirects instead), and submits from an inline onload
// handler. So Keyport lets zitadel answer every
// authorization response as a redirect (authRequest.GetResponseMode says
// query for form_post) and turns that redirect into the form here: one path
// builds the parameters for every response mode, successes and errors alike.

// formPostNote carries, for one request, the redirect URI of an
// authorization request that asked for form_post, from the storage read
// that sees the request to the response writer.
type formPostNote struct{ redirectURI string }

type formPostKey struct{}

func withFormPostNote(ctx context.Context) context.Context {
	return context.WithValue(ctx, formPostKey{}, &formPostNote{})
}

// noteResponseMode remembers a's redirect URI when it asked for form_post.
func noteResponseMode(ctx context.Context, a storage.AuthRequest) {
	if n, ok := ctx.Value(formPostKey{}).(*formPostNote); ok && a.ResponseMode == string(oidc.ResponseModeFormPost) {
		n.redirectURI = a.RedirectURI
	}
}

// formPostTarget returns the redirect URI to post the response of r to, or
// "" when the response is a plain redirect.
func formPostTarget(r *http.Request) string {
	if n, ok := r.Context().Value(formPostKey{}).(*formPostNote); ok && n.redirectURI != "" {
		return n.redirectURI
	}
	// Errors found before the request is stored (a bad code_challenge_method,
	// say) come from /authorize itself.
	if r.URL.Path == "/authorize" && r.Form.Get("response_mode") == string(oidc.ResponseModeFormPost) {
		return r.Form.Get("redirect_uri")
	}
	return ""
}

// responseParams are what an authorization response may carry (RFC 6749
// §4.1.2 and §4.1.2.1, RFC 9207). Only they are posted, never the redirect
// URI's own query.
var responseParams = []string{"code", "state", "iss", "error", "error_description", "error_uri"}

type formField struct{ Name, Value string }

// formPostScript is the page's only script, allowed by its hash.
const formPostScript = `document.forms[0].submit();`

var formPostScriptHash = func() string {
	sum := sha256.Sum256([]byte(formPostScript))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// formPostCSP is the policy of the page that posts to redirectURI: its one
// script, and its form may go to that redirect URI's origin and nowhere
// else (not to Keyport, not to the client's other redirect URIs), or, for
// a host no source expression can name, to that scheme (see cspSource).
//
// Chromium applies form-action to every redirect that follows the post as
// well, so an app whose form_post callback redirects to another origin is
// stopped there: such an app uses the query response mode, or redirects
// within its own origin.
func formPostCSP(redirectURI string) string {
	return "default-src 'none'; script-src " + formPostScriptHash + "; form-action " + cspSource(redirectURI) + "; base-uri 'none'; frame-ancestors 'none'"
}

// cspSource is the CSP source expression (CSP3 §2.3.1) for uri's origin:
// "https://app.example:8443", "https://xn--bcher-kva.example" for an
// internationalised name (browsers match the punycode form), or
// "com.example.app:" for a private-use scheme without a host (RFC 8252
// §7.1). A host-source cannot spell every host: it has no IPv6 literals
// (a native app's loopback redirect URI on [::1], RFC 8252 §7.3), no
// underscores, no wildcards Keyport would want. Those get their scheme
// ("http:"), the narrowest expression that still lets the browser post:
// 'none' would stop the sign-in instead. Only a URI without a scheme gets
// 'none'; nothing of uri but its scheme or a checked host goes into the
// policy.
func cspSource(uri string) string {
	scheme, _, ok := strings.Cut(uri, ":")
	if !ok || !validScheme(scheme) {
		return "'none'"
	}
	scheme = strings.ToLower(scheme)
	u, err := url.Parse(uri)
	if err != nil || u.Host == "" {
		return scheme + ":"
	}
	host, err := idna.Lookup.ToASCII(u.Hostname())
	if err != nil || !validHost(host) {
		return scheme + ":"
	}
	if port := u.Port(); port != "" {
		host += ":" + port
	}
	return scheme + "://" + host
}

// validScheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) (RFC 3986 §3.1).
func validScheme(s string) bool {
	for i, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case i > 0 && (c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// validHost accepts what a host-source's host-part spells without a
// wildcard: labels of ASCII letters, digits and hyphens joined by dots (a
// DNS name in punycode, or an IPv4 address).
func validHost(s string) bool {
	for _, label := range strings.Split(s, ".") {
		if label == "" {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

var formPostPage = template.Must(template.New("form_post").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Returning to the application</title></head>
<body><form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}<noscript><p>Scripts are off in this browser. Continue to return to the application.</p><button type="submit">Continue</button></noscript>
</form><script>` + formPostScript + `</script></body></html>
`))

// formPostBody renders the page that posts the response parameters of
// location (a redirect to redirectURI) to redirectURI. It reports false when
// location does not go to redirectURI.
func formPostBody(redirectURI, location string) ([]byte, bool) {
	target, err := url.Parse(redirectURI)
	if err != nil {
		return nil, false
	}
	loc, err := url.Parse(location)
	if err != nil || loc.Scheme != target.Scheme || loc.Host != target.Host || loc.Path != target.Path || loc.Opaque != target.Opaque {
		return nil, false
	}
	own, params := target.Query(), loc.Query()
	if len(params) == 0 && loc.EscapedFragment() != "" {
		// zitadel writes its answer to the implicit types (id_token,
		// "id_token token") into the fragment whatever the response
		// mode, refusals included; form_post posts it all the same.
		if frag, err := url.ParseQuery(loc.EscapedFragment()); err == nil {
			params = frag
		}
	}
	var fields []formField
	for _, k := range responseParams {
		if params.Has(k) && !own.Has(k) {
			fields = append(fields, formField{k, params.Get(k)})
		}
	}
	var buf bytes.Buffer
	// The URI is a registered redirect URI (zitadel matched it exactly), which
	// may have a custom scheme that html/template would otherwise blank.
	err = formPostPage.Execute(&buf, struct {
		Action template.URL
		Fields []formField
	}{template.URL(redirectURI), fields})
	if err != nil {
		return nil, false
	}
	return buf.Bytes(), true
}

// writeFormPost sends a page from formPostBody that posts to redirectURI.
func writeFormPost(w http.ResponseWriter, body []byte, redirectURI string) {
	h := w.Header()
	h.Del("Location")
	h.Del("Content-Length")
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	h.Set("Content-Security-Policy", formPostCSP(redirectURI))
	// frame-ancestors for browsers that know CSP, this for older ones: a
	// page that sends a code on its own must never load in someone's frame.
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}
