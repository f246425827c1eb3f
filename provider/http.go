package provider

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/account"
)

// recorder buffers a response so the middleware can correct it before it
// leaves. Provider responses are small; buffering costs a copy.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: make(http.Header)} }

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(b)
}
func (r *recorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
}

// isPreflight tells a CORS preflight request (Fetch standard, "CORS-preflight
// request") from any other OPTIONS request.
func isPreflight(r *http.Request) bool {
	return r.Method == http.MethodOptions && r.Header.Get("Origin") != "" && r.Header.Get("Access-Control-Request-Method") != ""
}

// browserFacing endpoints answer people, so their errors are HTML pages.
func browserFacing(path string) bool {
	return path == "/authorize" || path == "/authorize/callback" || path == "/end_session"
}

// queryHasCredential tells whether a query string carries a client secret
// or assertion (other spellings of the names are refused before:
// caseSensitiveParams).
func queryHasCredential(rawQuery string) bool {
	if rawQuery == "" {
		return false
	}
	q, _ := url.ParseQuery(rawQuery)
	return q.Has("client_secret") || q.Has("client_assertion")
}

// postOnly endpoints accept only POST (RFC 6749 §3.2, RFC 7009 §2.1, RFC 7662 §2.1).
func postOnly(path string) bool {
	return path == "/oauth/token" || path == "/oauth/introspect" || path == "/revoke" || path == parPath ||
		path == DeviceAuthorizationPath // RFC 8628 §3.1
}

// Parameters that may repeat; every other one must appear at most once
// (RFC 6749 §3.1).
var repeatable = map[string]bool{"resource": true, "audience": true} // audience: RFC 8693 §2.1

// caseSensitiveParams are the parameters zitadel decodes (oidc.AuthRequest
// and the token request types) or Keyport reads itself before it: spelled
// in any other case they are refused (formProblem), since zitadel's
// decoder would take them and Keyport's checks would not see them.
var caseSensitiveParams = []string{
	"scope", "response_type", "client_id", "redirect_uri", "state", "nonce",
	"response_mode", "display", "prompt", "max_age", "ui_locales",
	"id_token_hint", "login_hint", "acr_values", "code_challenge",
	"code_challenge_method", "request", "request_uri", "claims",
	"client_secret", "client_assertion", "client_assertion_type",
	"grant_type", "code", "code_verifier", "refresh_token", "token",
	"token_type_hint",
	"access_token", // userinfo's form body (RFC 6750 §2.2): one token per request
}

// foldName is parameter name k folded as strings.EqualFold compares (the
// way zitadel's form decoder matches names): each rune replaced by the
// lower case of the smallest rune of its Unicode simple-folding orbit, so
// "CLIENT_ID" and "client_id" fold alike, and so do the Kelvin sign and
// "k", or "ſ" and "s".
func foldName(k string) string {
	return strings.Map(func(r rune) rune {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		return unicode.ToLower(least)
	}, k)
}

// middleware checks requests before zitadel sees them and fixes responses
// where zitadel falls short of the specifications:
//   - bodies are size-limited, forms pre-parsed (a parse error is a 400, not
//     a 500), and repeated parameters refused;
//   - token, introspection and userinfo responses get Cache-Control: no-store
//     (RFC 6749 §5.1);
//   - 401s get WWW-Authenticate: Bearer at userinfo (RFC 6750 §3) and Basic at
//     the client-authenticated endpoints (RFC 6749 §5.2);
//   - authorization responses carry iss (RFC 9207);
//   - browser-facing errors become a friendly page, and 5xx bodies never leak
//     internals;
//   - /authorize parameters that would be stored are bounded (authorize.go);
//   - a code exchange authenticates its client before zitadel looks at the
//     code (tokenclient.go);
//   - the token endpoint signs with the key of the app's algorithm, and
//     userinfo answers with a JWT for apps that asked for one (signing.go).
func (p *Provider) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		if isPreflight(r) {
			// Browser apps (public clients) call the endpoints across
			// origins. A preflight carries no credentials, parameters or
			// body, and zitadel's CORS handler answers it and goes no further.
			next.ServeHTTP(w, r)
			return
		}
		if p.refuseMalformed(w, r, path) {
			return
		}
		r, answered := p.beforeZitadel(w, r, path)
		if answered {
			return
		}
		rec := newRecorder()
		next.ServeHTTP(rec, r)
		if path == "/userinfo" {
			p.signUserinfo(r.Context(), rec)
		}
		answerTargetRefusal(r, rec) // resources.go
		if refused := clientAuthNoteFrom(r.Context()).get(); refused != nil {
			writeThrottled(w, refused)
			return
		}
		p.finish(w, r, path, rec)
	})
}

// refuseMalformed answers a request that no endpoint takes (wrong method,
// a body too large or unparseable, a parameter repeated, two client
// authentications, a grant Keyport does not offer, a missing token or
// client) and reports whether it did. It parses the form.
func (p *Provider) refuseMalformed(w http.ResponseWriter, r *http.Request, path string) bool {
	if postOnly(path) && r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSONError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodOptions: // OPTIONS: CORS preflight
	default:
		// zitadel serves any method; a PUT to /end_session would sign out.
		w.Header().Set("Allow", "GET, HEAD, POST")
		p.badRequest(w, r, http.StatusMethodNotAllowed, "method "+strconv.Quote(truncate(r.Method, 64))+" is not allowed")
		return true
	}
	r.Body = http.MaxBytesReader(w, r.Body, p.opts.MaxBodyBytes)
	if err := r.ParseForm(); err != nil {
		status, msg := http.StatusBadRequest, "the request could not be parsed"
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			status, msg = http.StatusRequestEntityTooLarge, "the request body is too large"
		}
		p.badRequest(w, r, status, msg)
		return true
	}
	if problem := formProblem(r, path); problem != "" {
		p.badRequest(w, r, http.StatusBadRequest, problem)
		return true
	}
	if gt := r.Form.Get("grant_type"); path == "/oauth/token" && gt != "" && !slices.Contains(p.offeredGrantTypes(), gt) {
		// zitadel handles some grants Keyport does not offer (the JWT
		// bearer grant answers invalid_client); RFC 6749 §5.2 has one code
		// for them all.
		w.Header().Set("Cache-Control", "no-store")
		writeJSONError(w, http.StatusBadRequest, "unsupported_grant_type", "grant type "+strconv.Quote(truncate(gt, 64))+" is not supported")
		return true
	}
	return false
}

// formProblem says what is wrong with the parameters of a request to path
// that zitadel would take in, or answer as its own fault; "" when nothing.
// The checks read r.Form, the query string included, as zitadel does
// (r.FormValue, and r.Form for the rest).
func formProblem(r *http.Request, path string) string {
	folded := make(map[string]bool, len(r.Form))
	for k, v := range r.Form {
		if len(v) > 1 && !repeatable[k] {
			return "parameter " + strconv.Quote(truncate(k, 64)) + " must not be repeated"
		}
		// zitadel decodes parameters by name ignoring case; Keyport's own
		// checks read them by their exact name. Two spellings of one
		// name would let zitadel take one Keyport did not check (and
		// pick at random between them), and a lone other spelling of a
		// name Keyport checks would pass unchecked.
		f := foldName(k)
		if folded[f] {
			return "parameter " + strconv.Quote(truncate(f, 64)) + " must not be repeated"
		}
		folded[f] = true
		if f != k && slices.Contains(caseSensitiveParams, f) {
			return "parameter names are case-sensitive: " + strconv.Quote(truncate(k, 64)) + " is not " + strconv.Quote(f)
		}
	}
	if (postOnly(path) || path == "/userinfo") && len(r.Header.Values("Authorization")) > 1 {
		// One set of credentials per request (RFC 6749 §2.3, §5.2; RFC
		// 6750 §2, §3.1): with two, the endpoint would take the first and
		// a proxy or log might read the other.
		return "the Authorization header must not be repeated"
	}
	if postOnly(path) && queryHasCredential(r.URL.RawQuery) {
		// RFC 6749 §2.3.1: client credentials MUST NOT be in the request
		// URI, which access logs, proxies and browser histories keep.
		return "client credentials must be sent in the request body or the Authorization header, not in the URL"
	}
	basicID, _, basic := r.BasicAuth()
	if basic && postOnly(path) && (r.Form.Has("client_secret") || r.Form.Has("client_assertion")) {
		// RFC 6749 §2.3: one authentication method per request. zitadel
		// checks this for code and refresh grants only.
		return "client authentication must not use more than one method"
	}
	if basic && postOnly(path) && r.Form.Get("client_id") != "" { // empty is omitted (RFC 6749 §3.1)
		// One client per request: the pushed request endpoint refuses a
		// client_id naming another app than the Authorization header
		// (par.go), as an assertion's must match (RFC 7521 §4.2); the
		// others took the header's and ignored the other.
		if decoded, err := url.QueryUnescape(basicID); err == nil && decoded != r.Form.Get("client_id") {
			return "client_id is not the client of the Authorization header"
		}
	}
	if postOnly(path) && r.Form.Has("client_secret") && presentsAssertion(r.Form) {
		// A secret and an assertion (clientassertion.go): two methods too.
		return "client authentication must not use more than one method"
	}
	if path == "/oauth/token" && r.Form.Get("grant_type") == string(oidc.GrantTypeCode) {
		// Refused before the code is looked at, so that it stays unspent
		// (tokenclient.go).
		if v := r.Form.Get("code_verifier"); v != "" && !validCodeVerifier(v) {
			return "code_verifier must be 43 to 128 characters from A-Z a-z 0-9 - . _ ~ (RFC 7636 §4.1)"
		}
	}
	if path == "/userinfo" && r.Header.Get("Authorization") != "" && r.Form.Has("access_token") {
		// RFC 6750 §2: one method per request; zitadel would take the
		// header's token and ignore the other.
		return "the access token must be sent one way: in the Authorization header or as access_token, not both"
	}
	if (path == "/oauth/introspect" || path == "/revoke") && r.PostForm.Get("token") == "" {
		// token is REQUIRED (RFC 7662 §2.1, RFC 7009 §2.1); zitadel
		// would answer {"active":false} or 200.
		return "token missing"
	}
	if path == "/authorize" {
		required := []string{"client_id", "redirect_uri"}
		if r.Form.Has("request_uri") || r.Form.Has("request") {
			// A pushed request holds the rest (RFC 9126 §4), and so
			// does a request object (requestobject.go).
			required = required[:1]
		}
		if r.Form.Has("request_uri") && r.Form.Has("request") {
			return "request and request_uri must not both be sent (RFC 9101 §5)"
		}
		// zitadel refuses these too, but as server errors in its log.
		for _, k := range required {
			if r.Form.Get(k) == "" {
				return k + " is missing"
			}
		}
	}
	return ""
}

// beforeZitadel runs what Keyport does ahead of zitadel on path: notes in
// the request's context for the steps zitadel calls back into, and the
// answers Keyport gives itself (an introspected refresh token, the
// callback of a sign-in that failed or is not this browser's, a sign-out
// to confirm or already validated, a refused code client). It returns the
// request to hand on, and whether it answered.
func (p *Provider) beforeZitadel(w http.ResponseWriter, r *http.Request, path string) (*http.Request, bool) {
	if postOnly(path) || path == "/authorize" || path == "/userinfo" {
		// These read their client more than once (a refresh its user
		// too): Keyport's checks (the pushed-request rule, client
		// assertions, signed userinfo) and then zitadel's; see readMemo.
		r = r.WithContext(withReadMemo(r.Context()))
	}
	if path == "/authorize" {
		if r.Form.Has("request_uri") {
			if p.opts.Off.PushedRequests {
				// OpenID Connect Core 1.0 §6.3: request_uri_not_supported;
				// its only source, the push endpoint, is off.
				p.showError(w, r, invalidRequest(http.StatusBadRequest, "request_uri_not_supported: pushed authorization requests are off on this server"))
				return r, true
			}
			p.authorizePushed(w, r)
			return r, true
		}
		if p.mustPush(r) {
			msg := "this application must push its sign-in requests first (RFC 9126)"
			if p.opts.Off.PushedRequests {
				msg = "this application must push its sign-in requests (RFC 9126), but pushed authorization requests are off on this server"
			}
			p.showError(w, r, invalidRequest(http.StatusBadRequest, msg))
			return r, true
		}
		if problem, bad := p.authorizeRequestObject(r); bad {
			// requestobject.go
			r = r.WithContext(withAuthorizeProblem(r.Context(), problem))
		} else if problem, bad := checkAuthorizeParams(r.Form); bad {
			r = r.WithContext(withAuthorizeProblem(r.Context(), problem))
		} else if cr, err := parseClaimsParam(r.Form.Get("claims")); err != nil {
			r = r.WithContext(withAuthorizeProblem(r.Context(), authorizeProblem{param: "claims", err: err}))
		} else {
			r = r.WithContext(withClaimsRequest(r.Context(), cr))
		}
		if _, refused := authorizeProblemFrom(r.Context()); refused {
			readableByZitadel(r.Form) // authorize.go
		}
		r = p.dpopAuthorizeParam(r) // RFC 9449 §10 (dpophttp.go)

		// The request object's, when there is one (resources.go).
		r = r.WithContext(withResources(r.Context(), r.Form["resource"]))
	}
	if path == "/oauth/token" {
		// resources.go: a malformed value is refused whatever the grant.
		if err := resourceProblem(r.Form["resource"]); err != nil {
			w.Header().Set("Cache-Control", "no-store")
			writeJSONError(w, http.StatusBadRequest, string(err.ErrorType), err.Description)
			return r, true
		}
		r = r.WithContext(withResources(r.Context(), r.Form["resource"]))
	}
	if postOnly(path) {
		// A client secret refused by the throttle comes back through
		// the context (clientauth.go).
		r = r.WithContext(withClientAuthNote(r.Context()))
		if presentsAssertion(r.Form) {
			var answered bool
			if r, answered = p.checkClientAssertion(w, r, path); answered {
				return r, true
			}
		}
	}
	switch path {
	case "/oauth/token", "/userinfo", parPath: // DPoP proofs (dpophttp.go)
		var answered bool
		if r, answered = p.dpopRequest(w, r, path); answered {
			return r, true
		}
	}
	switch path {
	case parPath:
		p.pushAuthorizationRequest(w, r)
		return r, true
	case "/oauth/introspect":
		secretInBodyAsBasic(r)
		if p.introspectRefreshToken(w, r) {
			return r, true
		}
		r = withPresentedToken(r) // accesstokens.go
	case "/revoke":
		lookPastAccessTokenHint(r)
		r = withPresentedToken(r)
	case "/authorize/callback":
		return r.WithContext(withFormPostNote(r.Context())), p.answerCallback(w, r)
	case "/end_session":
		return r, p.answerEndSession(w, r)
	}
	if path == "/oauth/token" || path == "/userinfo" {
		r = r.WithContext(withSigningNote(r.Context()))
	}
	if path == "/oauth/token" && r.Form.Get("grant_type") == string(oidc.GrantTypeCode) {
		return p.checkCodeClient(w, r)
	}
	if path == "/oauth/token" && r.Form.Get("grant_type") == string(oidc.GrantTypeClientCredentials) {
		p.serveClientCredentials(w, r) // clientcredentials.go
		return r, true
	}
	if p.deviceEnabled() && (path == DeviceAuthorizationPath || path == "/oauth/token" && r.Form.Get("grant_type") == account.GrantDeviceCode) {
		p.serveDevice(w, r, path)
		return r, true
	}
	if path == "/oauth/token" && r.Form.Get("grant_type") == string(oidc.GrantTypeTokenExchange) {
		p.serveTokenExchange(w, r) // tokenexchange.go
		return r, true
	}
	return r, false
}

// answerEndSession answers an end_session request Keyport handles itself:
// one too long to carry, one held (a hop for the cookie, or a
// confirmation), or one validated already while deciding whether to ask.
func (p *Provider) answerEndSession(w http.ResponseWriter, r *http.Request) bool {
	if problem := endSessionProblem(r); problem != "" {
		p.badRequest(w, r, http.StatusBadRequest, problem)
		return true
	}
	// The hint's client is read to validate it and again to read its sub
	// back (pairwise subjects): once, with the memo.
	r = r.WithContext(withReadMemo(r.Context()))
	held, session := p.holdEndSession(w, r)
	if held {
		return true
	}
	if session == nil {
		return false
	}
	// Validated by holdEndSession already: once is enough.
	rec := newRecorder()
	p.endSession(rec, r, session)
	p.finish(w, r, "/end_session", rec)
	return true
}

// checkCodeClient authenticates the client of a code exchange ahead of
// zitadel, so a throttled or refused client secret is answered here and
// the client is read once.
func (p *Provider) checkCodeClient(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	client, err := p.authenticateCodeClient(r)
	var failed error // a nil *oidc.Error is not a nil error
	if err != nil {
		failed = err
	}
	if p.answerClientRefusal(w, r, "/oauth/token", failed) {
		return r, true
	}
	return r.WithContext(withCodeClient(r.Context(), client)), false
}

// secretInBodyAsBasic lets a resource server authenticate at introspection
// with client_secret_post, as it can at the token and revocation endpoints
// (RFC 7662 §2.1 accepts any method the server supports). zitadel's
// introspection reads only HTTP Basic, so the form's credentials move into
// that header, encoded as RFC 6749 §2.3.1 says.
func secretInBodyAsBasic(r *http.Request) {
	if _, _, basic := r.BasicAuth(); basic {
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	if id == "" || secret == "" {
		return
	}
	r.SetBasicAuth(url.QueryEscape(id), url.QueryEscape(secret))
	for _, form := range []url.Values{r.PostForm, r.Form} {
		form.Del("client_id")
		form.Del("client_secret")
	}
}

// lookPastAccessTokenHint drops token_type_hint=access_token from the
// revocation of a refresh token. zitadel looks for refresh tokens only
// under any other hint: it would search the access tokens alone, find
// nothing and answer 200, and the refresh token would live on. RFC 7009
// §2.1 has the server search past a wrong hint. Nothing else Keyport
// issues has a refresh token's length (refreshShaped).
func lookPastAccessTokenHint(r *http.Request) {
	if r.Form.Get("token_type_hint") != "access_token" || !refreshShaped(r.Form.Get("token")) {
		return
	}
	for _, form := range []url.Values{r.PostForm, r.Form} {
		form.Del("token_type_hint")
	}
}

func (p *Provider) badRequest(w http.ResponseWriter, r *http.Request, status int, msg string) {
	if browserFacing(r.URL.Path) {
		p.showError(w, r, invalidRequest(status, msg))
		return
	}
	if r.URL.Path == "/oauth/token" || r.URL.Path == "/oauth/introspect" || r.URL.Path == "/userinfo" {
		w.Header().Set("Cache-Control", "no-store")
	}
	if r.URL.Path == "/userinfo" && status == http.StatusBadRequest {
		// RFC 6750 §3, §3.1: the protected resource's error code.
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.opts.Issuer+`", error="invalid_request"`)
	}
	writeJSONError(w, status, "invalid_request", msg)
}

// finish applies the response corrections and writes the recorded response.
func (p *Provider) finish(w http.ResponseWriter, r *http.Request, path string, rec *recorder) {
	status := rec.status
	if status == 0 {
		status = http.StatusOK
	}
	p.dpopAnswer(r, path, rec) // dpophttp.go
	h := rec.header
	switch path {
	case "/oauth/token", "/oauth/introspect", "/userinfo", DeviceAuthorizationPath:
		h.Set("Cache-Control", "no-store")
		h.Set("Pragma", "no-cache")
	}

	if path == "/userinfo" && (status == http.StatusUnauthorized || status == http.StatusForbidden) && p.dpopChallenge(w, r, h) {
		return
	}
	switch {
	case status >= 500:
		p.log.ErrorContext(r.Context(), "provider error", "path", path, "status", status, "body", truncate(rec.body.String(), 500))
		if browserFacing(path) {
			p.showError(w, r, errPageServer)
			return
		}
		copyHeader(w.Header(), h)
		writeJSONError(w, http.StatusInternalServerError, "server_error", "internal error")
		return

	case path == "/userinfo" && (status == http.StatusUnauthorized || status == http.StatusForbidden):
		copyHeader(w.Header(), h)
		if !presentsBearer(r) {
			// RFC 6750 §3.1: no credentials, no error code.
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.opts.Issuer+`"`)
			writeJSONError(w, http.StatusUnauthorized, "invalid_request", "access token missing")
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+p.opts.Issuer+`", error="invalid_token", error_description="the access token is invalid, expired or revoked"`)
		writeJSONError(w, http.StatusUnauthorized, "invalid_token", "the access token is invalid, expired or revoked")
		return

	case status == http.StatusUnauthorized && (path == "/oauth/token" || path == "/oauth/introspect" || path == "/revoke" || path == DeviceAuthorizationPath):
		copyHeader(w.Header(), h)
		w.Header().Set("WWW-Authenticate", `Basic realm="`+p.opts.Issuer+`", charset="UTF-8"`)
		if !isJSON(h) {
			writeJSONError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(rec.body.Bytes())
		return

	case browserFacing(path) && status >= 400:
		code, msg := "", strings.TrimSpace(rec.body.String())
		if isJSON(h) {
			var e struct {
				Error       string `json:"error"`
				Description string `json:"error_description"`
			}
			if json.Unmarshal(rec.body.Bytes(), &e) == nil {
				code, msg = e.Error, e.Description
				if msg == "" {
					msg = e.Error
				}
			}
		}
		p.showError(w, r, p.explain(r, path, status, code, msg))
		return

	case status == http.StatusFound && path == "/end_session":
		if p.opts.SignOut.EndBrowserSession(w, r, h.Get("Location")) {
			return
		}

	case status == http.StatusFound && (path == "/authorize" || path == "/authorize/callback"):
		location := p.withIssuer(implicitErrorInFragment(r, unsupportedResponseType(r, h.Get("Location"))))
		if target := formPostTarget(r); target != "" {
			if body, ok := formPostBody(target, location); ok {
				copyHeader(w.Header(), h)
				writeFormPost(w, body, target)
				return
			}
		}
		h.Set("Location", location)
	}
	if path == "/oauth/token" && status == http.StatusOK && p.opts.Observer != nil {
		// refuseMalformed let only the grants Keyport offers through.
		p.opts.Observer.TokenIssued(r.Form.Get("grant_type"))
	}
	copyHeader(w.Header(), h)
	w.WriteHeader(status)
	_, _ = w.Write(rec.body.Bytes())
}

// withIssuer adds RFC 9207's iss parameter to an authorization response
// going back to a client. Redirects into our own login pages are left alone.
func (p *Provider) withIssuer(location string) string {
	if location == "" || strings.HasPrefix(location, p.opts.Issuer+p.opts.LoginPath) || strings.HasPrefix(location, p.opts.LoginPath) {
		return location
	}
	u, err := url.Parse(location)
	if err != nil {
		return location
	}
	q := u.Query()
	if q.Has("code") || q.Has("error") {
		q.Set("iss", p.opts.Issuer)
		u.RawQuery = q.Encode()
		return u.String()
	}
	if frag, err := url.ParseQuery(u.EscapedFragment()); err == nil && (frag.Has("code") || frag.Has("error")) {
		frag.Set("iss", p.opts.Issuer)
		setFragment(u, frag)
		return u.String()
	}
	return location
}

// setFragment makes params u's fragment, form-encoded as zitadel writes
// a fragment response. The fragment must be read back the same way, from
// u.EscapedFragment(): u.Fragment is decoded once already, so a state
// holding + & = or % would come out changed (a space, a parameter of its
// own) or not at all.
func setFragment(u *url.URL, params url.Values) {
	u.RawFragment = params.Encode()
	u.Fragment, _ = url.PathUnescape(u.RawFragment)
}

// unsupportedResponseType corrects zitadel's refusal of a response type
// other than code. zitadel says unauthorized_client ("missing in the client
// configuration"), but Keyport offers no other type to any client, which RFC
// 6749 §4.1.2.1 calls unsupported_response_type.
func unsupportedResponseType(r *http.Request, location string) string {
	rt := r.Form.Get("response_type")
	if r.URL.Path != "/authorize" || rt == "" || rt == string(oidc.ResponseTypeCode) {
		return location
	}
	u, err := url.Parse(location)
	if err != nil {
		return location
	}
	fix := func(q url.Values) bool {
		if q.Get("error") != string(oidc.UnauthorizedClient) {
			return false
		}
		q.Set("error", "unsupported_response_type")
		q.Set("error_description", "only response_type=code is supported")
		return true
	}
	// The error is in the fragment for types that would have used it.
	if q := u.Query(); fix(q) {
		u.RawQuery = q.Encode()
	} else if f, err := url.ParseQuery(u.EscapedFragment()); err == nil && fix(f) {
		setFragment(u, f)
	}
	return u.String()
}

// implicitErrorInFragment moves an error zitadel sent in the query to the
// fragment for a response type whose answers go there unless
// response_mode says otherwise: any with token or id_token (RFC 6749
// §4.2.2.1; OAuth 2.0 Multiple Response Type Encoding Practices §2.1,
// §3, §5). zitadel does so for id_token and "id_token token" alone, and
// an implicit app, reading only the fragment, never saw the refusal.
func implicitErrorInFragment(r *http.Request, location string) string {
	if r.URL.Path != "/authorize" || r.Form.Get("response_mode") != "" {
		return location
	}
	if !slices.ContainsFunc(strings.Fields(r.Form.Get("response_type")), func(t string) bool { return t == "token" || t == "id_token" }) {
		return location
	}
	u, err := url.Parse(location)
	if err != nil || u.Fragment != "" {
		return location
	}
	q := u.Query()
	if !q.Has("error") {
		return location
	}
	f := url.Values{}
	for _, k := range []string{"error", "error_description", "error_uri", "state"} {
		if v, ok := q[k]; ok {
			f[k] = v
			q.Del(k)
		}
	}
	u.RawQuery = q.Encode()
	setFragment(u, f)
	return u.String()
}

func presentsBearer(r *http.Request) bool {
	if a := r.Header.Get("Authorization"); a != "" {
		return true
	}
	return r.Form.Get("access_token") != ""
}

func isJSON(h http.Header) bool {
	return strings.HasPrefix(h.Get("Content-Type"), "application/json")
}

func copyHeader(dst, src http.Header) {
	for k, v := range src {
		dst[k] = v
	}
}

func writeJSONError(w http.ResponseWriter, status int, code, description string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Del("Content-Length")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": code, "error_description": description})
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}
