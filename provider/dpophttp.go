package provider

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/rs/cors"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/dpop"
	"github.com/keyport/keyport/storage"
)

// The HTTP side of DPoP (dpop.go): what the middleware does with proofs
// at the token endpoint, /userinfo and the authorization endpoints, and
// how it answers them (RFC 9449 §5, §7, §8, §10).

// dpopTokenRequest checks the DPoP proof of a token request, ahead of
// zitadel and of every grant Keyport serves itself, and answers a refusal:
// a bad proof (invalid_dpop_proof), a proof without the server's nonce for
// an app that requires one (use_dpop_nonce), no proof from an app
// registered with dpop_bound_access_tokens (invalid_request). A good proof
// rides in the context: the grant binds what it issues to its key.
func (p *Provider) dpopTokenRequest(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	values := r.Header.Values("DPoP")
	c, found := p.tokenRequestClient(r)
	if p.opts.Off.DPoP {
		return p.dpopOffTokenRequest(w, r, values, found && c.DPoPBoundAccessTokens)
	}
	if len(values) == 0 {
		if found && c.DPoPBoundAccessTokens {
			// RFC 9449 §5.2: the app promised to send proofs.
			writeDPoPTokenError(w, "invalid_request", "this app must send a DPoP proof with its token requests (dpop_bound_access_tokens)", "")
			return r, true
		}
		return r, false
	}
	proof, err := dpop.Verify(values, http.MethodPost, p.opts.Issuer+"/oauth/token", "", p.opts.Now())
	var bad *dpop.Error
	if errors.As(err, &bad) {
		writeDPoPTokenError(w, bad.Code, bad.Description, "")
		return r, true
	}
	n := &dpopNote{proof: proof, bind: true}
	if found && c.RequireDPoPNonce {
		if e := n.checkNonce(p.storage.dpopNonces); e != nil {
			writeDPoPTokenError(w, e.Code, e.Description, n.nonceToSend())
			return r, true
		}
	}
	return r.WithContext(withDPoPNote(r.Context(), n)), false
}

// dpopOffTokenRequest is dpopTokenRequest while [oauth] dpop is off: no
// token is bound to a key any more, and a proof is read only for the
// tokens bound before, whose refresh or code still needs one (a bad proof
// counts as none: a server without DPoP ignores the header, RFC 9449 §5).
// An app registered with dpop_bound_access_tokens is refused rather than
// given bearer tokens it said it must not get.
func (p *Provider) dpopOffTokenRequest(w http.ResponseWriter, r *http.Request, values []string, appBound bool) (*http.Request, bool) {
	if appBound {
		writeDPoPTokenError(w, "invalid_request", "this app must get DPoP-bound tokens (dpop_bound_access_tokens), and DPoP is off on this server", "")
		return r, true
	}
	if len(values) == 0 {
		return r, false
	}
	proof, err := dpop.Verify(values, http.MethodPost, p.opts.Issuer+"/oauth/token", "", p.opts.Now())
	if err != nil {
		return r, false
	}
	return r.WithContext(withDPoPNote(r.Context(), &dpopNote{proof: proof, onlyBound: true})), false
}

// tokenRequestClient is the app a token request names (by HTTP Basic, the
// form, or the assertion the middleware checked), for its DPoP settings;
// found is false for none. Whether the app authenticated is checked
// later, by the grant.
func (p *Provider) tokenRequestClient(r *http.Request) (storage.Client, bool) {
	if c, ok := assertedClientFrom(r.Context()); ok {
		return c, true
	}
	id, _, err := clientCredentials(r)
	if err != nil || id == "" || len(id) > 128 || strings.ContainsRune(id, 0) {
		return storage.Client{}, false
	}
	c, cerr := p.storage.getClient(r.Context(), id)
	return c, cerr == nil
}

// writeDPoPTokenError answers a token request refused for its DPoP proof
// (RFC 9449 §5.1, §8): 400 with the error code, and the nonce to use.
func writeDPoPTokenError(w http.ResponseWriter, code, description, nonce string) {
	w.Header().Set("Cache-Control", "no-store")
	if nonce != "" {
		w.Header().Set(dpopNonceHeader, nonce)
		w.Header().Set("Access-Control-Expose-Headers", dpopNonceHeader)
	}
	writeJSONError(w, http.StatusBadRequest, code, description)
}

// dpopUserinfoRequest reads the credentials of a /userinfo request: an
// access token with the DPoP scheme (RFC 9449 §7.1) must come with a
// proof of this request, whose ath is the token's hash; it is handed to
// zitadel as a bearer token, and the proof rides in the context for the
// storage adapter to check the token's binding (checkDPoPBinding). A bad
// proof is refused here.
func (p *Provider) dpopUserinfoRequest(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	n := &dpopNote{}
	auth := r.Header.Values("Authorization")
	scheme, token, _ := strings.Cut(strings.TrimSpace(strings.Join(auth, "")), " ")
	if len(auth) == 1 && strings.EqualFold(scheme, dpopTokenType) {
		n.scheme = dpopTokenType
		token = strings.TrimSpace(token)
		if token == "" {
			// RFC 6750 §3.1: no credentials, no error code.
			w.Header().Set("WWW-Authenticate", dpopChallengeValue("", ""))
			w.Header().Set("Cache-Control", "no-store")
			writeJSONError(w, http.StatusUnauthorized, "invalid_request", "access token missing")
			return r, true
		}
		proof, err := dpop.Verify(r.Header.Values("DPoP"), r.Method, p.opts.Issuer+"/userinfo", token, p.opts.Now())
		var bad *dpop.Error
		if errors.As(err, &bad) {
			p.writeDPoPChallenge(w, http.StatusUnauthorized, bad.Code, bad.Description, "")
			return r, true
		}
		n.proof = proof
		r.Header.Set("Authorization", "Bearer "+token)
	}
	return r.WithContext(withDPoPNote(r.Context(), n)), false
}

// dpopChallenge answers a /userinfo request refused with the DPoP scheme,
// or refused because its token is DPoP-bound, and reports whether it did:
// 401 with WWW-Authenticate: DPoP and the error (RFC 9449 §7.1, §9).
func (p *Provider) dpopChallenge(w http.ResponseWriter, r *http.Request, h http.Header) bool {
	n := dpopNoteFrom(r.Context())
	if n == nil {
		return false
	}
	e := n.refused()
	if e == nil && n.scheme != dpopTokenType {
		return false
	}
	if e == nil {
		e = &dpop.Error{Code: "invalid_token", Description: "the access token is invalid, expired or revoked"}
	}
	copyHeader(w.Header(), h)
	p.writeDPoPChallenge(w, http.StatusUnauthorized, e.Code, e.Description, n.nonceToSend())
	return true
}

// writeDPoPChallenge answers a resource request refused for its DPoP
// credentials; nonce, when set, is the one to use next.
func (p *Provider) writeDPoPChallenge(w http.ResponseWriter, status int, code, description, nonce string) {
	h := w.Header()
	h.Set("Cache-Control", "no-store")
	h.Set("WWW-Authenticate", dpopChallengeValue(code, description))
	if nonce != "" {
		h.Set(dpopNonceHeader, nonce)
		h.Set("Access-Control-Expose-Headers", "WWW-Authenticate, "+dpopNonceHeader)
	}
	writeJSONError(w, status, code, description)
}

// dpopChallenge is the start of the DPoP challenge of RFC 9449 §7.1: the
// algorithms proofs may use.
var dpopChallenge = `DPoP algs="` + strings.ReplaceAll(dpop.AlgNames(dpop.Algorithms), ", ", " ") + `"`

// dpopChallengeValue is the DPoP challenge with its error, if any.
func dpopChallengeValue(code, description string) string {
	v := dpopChallenge
	if code != "" {
		v += `, error="` + code + `", error_description=` + strconv.Quote(description)
	}
	return v
}

// dpopAnswer corrects the answer to a request that carried a DPoP proof
// before it leaves: a token response says token_type DPoP (RFC 9449 §5),
// and a fresh nonce rides along when the proof's is about to expire.
func (p *Provider) dpopAnswer(r *http.Request, path string, rec *recorder) {
	n := dpopNoteFrom(r.Context())
	if n == nil {
		return
	}
	if nonce := n.nonceToSend(); nonce != "" {
		rec.header.Set(dpopNonceHeader, nonce)
		rec.header.Set("Access-Control-Expose-Headers", dpopNonceHeader)
	}
	if path != "/oauth/token" || !n.bind || (rec.status != 0 && rec.status != http.StatusOK) {
		return
	}
	var body map[string]any
	if json.Unmarshal(rec.body.Bytes(), &body) != nil {
		return
	}
	if _, ok := body["access_token"]; !ok {
		return
	}
	body["token_type"] = dpopTokenType
	out, err := json.Marshal(body)
	if err != nil {
		return
	}
	rec.body.Reset()
	rec.body.Write(out)
	rec.header.Del("Content-Length")
}

// dpopJKTKey carries the key an authorization request binds its code to
// (RFC 9449 §10) to CreateAuthRequest.
type dpopJKTKey struct{}

func withDPoPJKT(ctx context.Context, jkt string) context.Context {
	return context.WithValue(ctx, dpopJKTKey{}, jkt)
}

func dpopJKTFrom(ctx context.Context) string {
	jkt, _ := ctx.Value(dpopJKTKey{}).(string)
	return jkt
}

// validJKT tells whether s has the shape of a JWK SHA-256 thumbprint.
func validJKT(s string) bool {
	if len(s) != dpopJKTLen {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// dpopAuthorizeParam reads dpop_jkt at /authorize (RFC 9449 §10): a bad
// one is refused like any bad parameter, back at the app.
func (p *Provider) dpopAuthorizeParam(r *http.Request) *http.Request {
	if p.opts.Off.DPoP || !r.Form.Has("dpop_jkt") {
		return r
	}
	jkt := r.Form.Get("dpop_jkt")
	if !validJKT(jkt) {
		if _, bad := authorizeProblemFrom(r.Context()); bad {
			return r
		}
		return r.WithContext(withAuthorizeProblem(r.Context(), authorizeProblem{param: "dpop_jkt",
			err: oidc.ErrInvalidRequest().WithDescription("dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638), base64url")}))
	}
	return r.WithContext(withDPoPJKT(r.Context(), jkt))
}

// dpopPushed checks the DPoP proof a pushed authorization request
// carried, ahead of the app's authentication, and answers a refusal. A
// good proof rides in the context for dpopPushedJKT.
func (p *Provider) dpopPushed(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	values := r.Header.Values("DPoP")
	if len(values) == 0 || p.opts.Off.DPoP {
		return r, false
	}
	proof, err := dpop.Verify(values, http.MethodPost, p.opts.Issuer+parPath, "", p.opts.Now())
	var bad *dpop.Error
	if errors.As(err, &bad) {
		writeDPoPTokenError(w, bad.Code, bad.Description, "")
		return r, true
	}
	n := &dpopNote{proof: proof}
	if c, found := p.tokenRequestClient(r); found && c.RequireDPoPNonce {
		// As at the token endpoint: the app's proofs carry the nonce.
		if e := n.checkNonce(p.storage.dpopNonces); e != nil {
			writeDPoPTokenError(w, e.Code, e.Description, n.nonceToSend())
			return r, true
		}
	}
	// Its jti is recorded with the pushed request (CreateAuthRequest,
	// spendPushedDPoPProof), once the app is authenticated and the
	// request good.
	return r.WithContext(withDPoPNote(r.Context(), n)), false
}

// dpopPushedJKT reads the key a pushed authorization request binds its
// code to: dpop_jkt, or the key of the DPoP proof the push carried (RFC
// 9449 §10.1); with both, they must be the same key. It runs once r's
// form holds the request's parameters, a request object's when there is
// one (RFC 9101 §5, RFC 9126 §3), and answers a refusal.
func (p *Provider) dpopPushedJKT(w http.ResponseWriter, r *http.Request) (*http.Request, bool) {
	if p.opts.Off.DPoP {
		return r, false // codes are not bound to keys
	}
	jkt := r.Form.Get("dpop_jkt")
	if r.Form.Has("dpop_jkt") && !validJKT(jkt) {
		writeDPoPTokenError(w, "invalid_request", "dpop_jkt must be a JWK SHA-256 thumbprint (RFC 7638), base64url", "")
		return r, true
	}
	if n := dpopNoteFrom(r.Context()); n != nil && n.proof.JKT != "" {
		if nonce := n.nonceToSend(); nonce != "" {
			// The proof's nonce is about to expire (dpopPushed).
			w.Header().Set(dpopNonceHeader, nonce)
		}
		if jkt != "" && jkt != n.proof.JKT {
			writeDPoPTokenError(w, dpop.CodeInvalidProof, "DPoP proof refused: its key is not the one dpop_jkt names", "")
			return r, true
		}
		jkt = n.proof.JKT
	}
	if jkt == "" {
		return r, false
	}
	return r.WithContext(withDPoPJKT(r.Context(), jkt)), false
}

// dpopRequest reads the DPoP proof of a request to path (the token
// endpoint, /userinfo or the pushed authorization request endpoint) and
// answers a refusal.
func (p *Provider) dpopRequest(w http.ResponseWriter, r *http.Request, path string) (*http.Request, bool) {
	var before http.Header
	if r.Header.Get("Origin") != "" {
		// A refusal here is Keyport's own answer, which zitadel's CORS
		// handler never sees; without its headers a browser app could
		// not read use_dpop_nonce and the nonce (RFC 9449 §8). Headers
		// of an answer zitadel gives are zitadel's.
		before = w.Header().Clone()
		dpopCORSHandler.HandlerFunc(w, r)
	}
	out, answered := p.dpopRefusal(w, r, path)
	if before != nil && !answered {
		clear(w.Header())
		copyHeader(w.Header(), before)
	}
	return out, answered
}

// dpopCORSHandler adds the CORS headers of dpopCORS to an answer.
var dpopCORSHandler = cors.New(*dpopCORS())

// dpopRefusal checks the proof of a request to path, by endpoint.
func (p *Provider) dpopRefusal(w http.ResponseWriter, r *http.Request, path string) (*http.Request, bool) {
	switch path {
	case "/oauth/token":
		return p.dpopTokenRequest(w, r)
	case "/userinfo":
		return p.dpopUserinfoRequest(w, r)
	case parPath:
		return p.dpopPushed(w, r)
	}
	return r, false
}

// dpopCORS are zitadel's CORS rules with DPoP's headers added: browser
// apps, the public clients DPoP is for, send the DPoP header across
// origins (the preflight must allow it) and must read DPoP-Nonce and the
// DPoP challenge from the answers.
func dpopCORS() *cors.Options {
	return &cors.Options{
		AllowCredentials: true,
		AllowedHeaders:   []string{"Origin", "Accept", "Accept-Language", "Authorization", "Content-Type", "X-Requested-With", "DPoP"},
		AllowedMethods:   []string{http.MethodGet, http.MethodHead, http.MethodPost},
		ExposedHeaders:   []string{"Location", "Content-Length", dpopNonceHeader, "WWW-Authenticate"},
		AllowOriginFunc:  func(string) bool { return true },
	}
}
