package provider

import (
	"context"
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/storage"
)

// DPoP, RFC 9449: sender-constrained tokens. An app that sends a DPoP
// proof (a JWT signed with a key of its own, whose public half rides in the
// proof's header) with its token request gets access tokens bound to that
// key: each use must come with a fresh proof from it. The binding is the
// key's JWK SHA-256 thumbprint (RFC 7638), the "jkt".
//
// A proof is checked in two steps. Its shape, signature and claims are
// checked ahead of zitadel, and a bad one is refused at once
// (invalid_dpop_proof). Its jti is recorded only once the request has shown
// it holds something the server issued: at the token endpoint when a grant
// is about to issue tokens (spendDPoPProof), at /userinfo when the access
// token it comes with is bound to its key. Anyone can make a valid proof
// with a key of their own; only a grant or a token lets them store a jti,
// so a flood of proofs writes nothing. The records are the one-time tokens
// client assertions' jti's use, kept until the proof's iat leaves the
// accepted window and swept like every expired one-time token.
//
// Nonces (§8, §9) are stateless: an HMAC of a time window under a key
// derived from the sealing key, so every replica makes and accepts the
// same ones and nothing is stored. A nonce is accepted in its own window
// and the next one.

// DPoPAlgorithms are the algorithms of DPoP proofs: asymmetric only (RFC
// 9449 §4.3 refuses MACs and none), the ones Keyport accepts for client
// assertions.
var DPoPAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// Bounds of a DPoP proof.
const (
	// maxDPoPProofBytes bounds the DPoP header, which an unauthenticated
	// caller sends: a proof carrying an RSA 4096 key is under 2.5 KB.
	maxDPoPProofBytes = 8 << 10
	// dpopProofMaxAge is how old a proof's iat may be: a proof is made
	// for one request, and its jti is kept that long.
	dpopProofMaxAge = 2 * time.Minute
	// dpopProofSkew is how far ahead of the server's clock iat may be.
	dpopProofSkew = 30 * time.Second
	// dpopNonceWindow is how long a nonce is the current one; it is
	// accepted for one window more.
	dpopNonceWindow = 5 * time.Minute
	// dpopReplayPurpose is the one-time tokens' purpose of proofs' jti's.
	dpopReplayPurpose = "dpop_proof"
	// dpopJKTLen is the length of a jkt (dpop_jkt): a base64url SHA-256.
	dpopJKTLen = 43

	dpopTokenType = "DPoP" // token_type and the Authorization scheme
	// dpopNonceHeader carries a server nonce (RFC 9449 §8.1).
	dpopNonceHeader = "DPoP-Nonce"
)

// Error codes of RFC 9449 §12.2.
const (
	errInvalidDPoPProof = "invalid_dpop_proof"
	errUseDPoPNonce     = "use_dpop_nonce"
)

// dpopError is a refused proof: code is invalid_dpop_proof or
// use_dpop_nonce.
type dpopError struct {
	code, description string
}

func (e *dpopError) Error() string { return e.code + ": " + e.description }

func badProof(format string, args ...any) *dpopError {
	return &dpopError{code: errInvalidDPoPProof, description: "DPoP proof refused: " + fmt.Sprintf(format, args...)}
}

// dpopProof is a DPoP proof that passed every check but its jti's replay
// and its nonce, which depend on the request.
type dpopProof struct {
	jkt   string // the key's RFC 7638 thumbprint, base64url
	jti   string
	iat   time.Time
	nonce string
}

// dpopClaims are a proof's claims (RFC 9449 §4.2).
type dpopClaims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   string          `json:"ath"`
	Nonce json.RawMessage `json:"nonce"`
}

// verifyDPoPProof checks the proof in the DPoP header values of a request
// with method to htu (the endpoint's URL, no query) made at now; when
// accessToken is set (a resource request), ath must be its hash. It
// checks everything RFC 9449 §4.3 lists except the jti's replay and the
// nonce.
func verifyDPoPProof(values []string, method, htu, accessToken string, now time.Time) (dpopProof, error) {
	switch {
	case len(values) == 0:
		return dpopProof{}, badProof("the DPoP header is missing")
	case len(values) > 1:
		return dpopProof{}, badProof("more than one DPoP header")
	case len(values[0]) > maxDPoPProofBytes:
		return dpopProof{}, badProof("longer than %d bytes", maxDPoPProofBytes)
	}
	raw := strings.TrimSpace(values[0])
	jws, err := jose.ParseSignedCompact(raw, DPoPAlgorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return dpopProof{}, badProof("%s", unparsedProofProblem(raw))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return dpopProof{}, badProof("typ must be dpop+jwt")
	}
	jwk := h.JSONWebKey
	switch {
	case jwk == nil:
		return dpopProof{}, badProof("the jwk header is missing")
	case !jwk.IsPublic():
		// RFC 9449 §4.3 point 7: a private key must never be sent.
		return dpopProof{}, badProof("the jwk header must be a public key")
	case !jwk.Valid():
		return dpopProof{}, badProof("the jwk header is not a usable key")
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return dpopProof{}, badProof("the signature does not verify with the jwk header")
	}
	var c dpopClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return dpopProof{}, badProof("its claims cannot be read")
	}
	iat, iatOK := numericDate(c.IAT)
	switch {
	case c.JTI == "":
		return dpopProof{}, badProof("jti is missing")
	case len(c.JTI) > maxJTIBytes:
		return dpopProof{}, badProof("jti is longer than %d bytes", maxJTIBytes)
	case c.HTM != method:
		return dpopProof{}, badProof("htm must be %s", method)
	case !sameHTU(c.HTU, htu):
		return dpopProof{}, badProof("htu must be %s", htu)
	case !iatOK:
		return dpopProof{}, badProof("iat is missing or not a number")
	case iat.Before(now.Add(-dpopProofMaxAge)):
		return dpopProof{}, badProof("iat is more than %s old", dpopProofMaxAge)
	case iat.After(now.Add(dpopProofSkew)):
		return dpopProof{}, badProof("iat is in the future")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if c.ATH == "" {
			return dpopProof{}, badProof("ath is missing")
		}
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(want)) != 1 {
			return dpopProof{}, badProof("ath is not the hash of the access token")
		}
	}
	var nonce string
	if len(c.Nonce) > 0 && string(c.Nonce) != "null" {
		if err := json.Unmarshal(c.Nonce, &nonce); err != nil || nonce == "" {
			return dpopProof{}, badProof("nonce must be a string")
		}
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return dpopProof{}, badProof("the jwk header has no thumbprint")
	}
	return dpopProof{jkt: base64.RawURLEncoding.EncodeToString(thumb), jti: c.JTI, iat: iat, nonce: nonce}, nil
}

// numericDate reads a JWT NumericDate (RFC 7519 §2): a JSON number of
// seconds, which may have a fraction; not a string.
func numericDate(raw json.RawMessage) (time.Time, bool) {
	if len(raw) == 0 || raw[0] != '-' && (raw[0] < '0' || raw[0] > '9') {
		return time.Time{}, false
	}
	f, err := strconv.ParseFloat(string(raw), 64)
	if err != nil || f < 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true
}

// unparsedProofProblem says why go-jose would not parse a proof: its alg,
// a private key in its jwk header (which go-jose refuses to read), or its
// shape.
func unparsedProofProblem(raw string) string {
	var h struct {
		Alg string         `json:"alg"`
		JWK map[string]any `json:"jwk"`
	}
	seg, _, _ := strings.Cut(raw, ".")
	if b, err := base64.RawURLEncoding.DecodeString(seg); err == nil && json.Unmarshal(b, &h) == nil {
		if h.Alg != "" && !slices.Contains(DPoPAlgorithms, jose.SignatureAlgorithm(h.Alg)) {
			return "alg must be one of " + algNames(DPoPAlgorithms)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := h.JWK[private]; ok {
				return "the jwk header must be a public key"
			}
		}
	}
	return "not a JWT signed with one of " + algNames(DPoPAlgorithms)
}

// sameHTU compares a proof's htu with the endpoint's URL as RFC 9449 §4.3
// says: without query and fragment, after RFC 3986's syntax- and
// scheme-based normalisation (case of scheme and host, the default port,
// an empty path, percent-encoding, dot segments).
func sameHTU(got, want string) bool {
	g, err1 := normalizeHTU(got)
	w, err2 := normalizeHTU(want)
	return err1 == nil && err2 == nil && g == w
}

func normalizeHTU(s string) (string, error) {
	if len(s) > 2048 {
		return "", errors.New("htu too long")
	}
	u, err := url.Parse(s)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" || u.User != nil {
		return "", errors.New("htu is not an absolute http(s) URL")
	}
	scheme := strings.ToLower(u.Scheme)
	host, port := strings.ToLower(u.Hostname()), u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if port != "" {
		host += ":" + port
	}
	path := removeDotSegments(normalizePercents(u.EscapedPath()))
	if path == "" {
		path = "/"
	}
	return scheme + "://" + host + path, nil
}

// normalizePercents is RFC 3986 §6.2.2.1 and §6.2.2.2 on an escaped
// path: percent-encoded unreserved characters decoded, the others' hex
// digits in upper case. Reserved ones stay encoded: "%2F" is not "/".
func normalizePercents(p string) string {
	if !strings.Contains(p, "%") {
		return p
	}
	const hexUpper = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		hi, lo := -1, -1
		if p[i] == '%' && i+2 < len(p) {
			hi, lo = strings.IndexByte(hexUpper, upperASCII(p[i+1])), strings.IndexByte(hexUpper, upperASCII(p[i+2]))
		}
		if hi < 0 || lo < 0 {
			b.WriteByte(p[i])
			continue
		}
		c := byte(hi<<4 | lo)
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
			b.WriteByte(c)
		} else {
			b.WriteString("%" + hexUpper[hi:hi+1] + hexUpper[lo:lo+1])
		}
		i += 2
	}
	return b.String()
}

func upperASCII(c byte) byte {
	if c >= 'a' && c <= 'z' {
		return c - 'a' + 'A'
	}
	return c
}

// removeDotSegments is RFC 3986 §5.2.4 on an absolute path: "." and ".."
// segments resolved, as §6.2.2.3 asks of a normalised URI.
func removeDotSegments(p string) string {
	if !strings.Contains(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	for i, seg := range segs {
		last := i == len(segs)-1
		switch {
		case i == 0:
			out = append(out, seg) // "" before the leading "/"
		case seg == ".":
			if last {
				out = append(out, "")
			}
		case seg == "..":
			if len(out) > 1 {
				out = out[:len(out)-1]
			}
			if last {
				out = append(out, "")
			}
		default:
			out = append(out, seg)
		}
	}
	return strings.Join(out, "/")
}

// dpopNonces makes and checks stateless nonces.
type dpopNonces struct {
	key [32]byte
	now func() time.Time
}

func (n dpopNonces) window(t time.Time) int64 { return t.UnixNano() / int64(dpopNonceWindow) }

func (n dpopNonces) forWindow(w int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(w))
	mac := hmac.New(sha256.New, n.key[:])
	mac.Write([]byte("keyport dpop nonce"))
	mac.Write(b[:8])
	copy(b[8:], mac.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// current is the nonce to hand out now.
func (n dpopNonces) current() string { return n.forWindow(n.window(n.now())) }

// check tells whether nonce is one of the current or the previous window,
// and whether it is the previous one (stale: the answer hands out a new one).
func (n dpopNonces) check(nonce string) (ok, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false, false
	}
	w := int64(binary.BigEndian.Uint64(b[:8]))
	now := n.window(n.now())
	if w != now && w != now-1 {
		return false, false
	}
	if !hmac.Equal([]byte(n.forWindow(w)), []byte(nonce)) {
		return false, false
	}
	return true, w != now
}

// dpopNonceKey derives the nonces' key from the provider's token key when
// Options.DPoPNonceKey is not set: both come from the sealing key, the same
// on every replica.
func dpopNonceKey(o Options) [32]byte {
	if o.DPoPNonceKey != ([32]byte{}) {
		return o.DPoPNonceKey
	}
	mac := hmac.New(sha256.New, o.TokenKey[:])
	mac.Write([]byte("keyport dpop nonces"))
	var k [32]byte
	copy(k[:], mac.Sum(nil))
	return k
}

// dpopNote carries a request's DPoP proof from the middleware to the
// storage adapter, and what the adapter decided back to the middleware.
type dpopNote struct {
	proof dpopProof // zero: no proof
	// bind: a token request whose tokens are bound to proof.jkt.
	bind bool
	// scheme is the Authorization scheme at /userinfo ("DPoP" or another).
	scheme string

	mu         sync.Mutex
	spent      bool       // the jti is recorded
	refusal    *dpopError // at /userinfo: why the token was refused
	freshNonce string     // a nonce to hand out with the answer
}

type dpopNoteKey struct{}

func withDPoPNote(ctx context.Context, n *dpopNote) context.Context {
	return context.WithValue(ctx, dpopNoteKey{}, n)
}

func dpopNoteFrom(ctx context.Context) *dpopNote {
	n, _ := ctx.Value(dpopNoteKey{}).(*dpopNote)
	return n
}

// dpopBinding is the jkt the tokens a token request issues are bound to,
// or "".
func dpopBinding(ctx context.Context) string {
	if n := dpopNoteFrom(ctx); n != nil && n.bind {
		return n.proof.jkt
	}
	return ""
}

// presentedJKT is the key of the proof a request carried, or "".
func presentedJKT(ctx context.Context) string {
	if n := dpopNoteFrom(ctx); n != nil {
		return n.proof.jkt
	}
	return ""
}

func (n *dpopNote) refuse(e *dpopError) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refusal = e
}

func (n *dpopNote) refused() *dpopError {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.refusal
}

// checkNonce checks the proof's nonce for an app that requires one; a
// stale one passes and notes a fresh one for the answer.
func (n *dpopNote) checkNonce(nonces dpopNonces) *dpopError {
	ok, stale := nonces.check(n.proof.nonce)
	if !ok {
		n.mu.Lock()
		n.freshNonce = nonces.current()
		n.mu.Unlock()
		if n.proof.nonce == "" {
			return &dpopError{code: errUseDPoPNonce, description: "this app's DPoP proofs must carry the server's nonce (DPoP-Nonce)"}
		}
		return &dpopError{code: errUseDPoPNonce, description: "the DPoP proof's nonce is unknown or expired; use the one in DPoP-Nonce"}
	}
	if stale {
		n.mu.Lock()
		n.freshNonce = nonces.current()
		n.mu.Unlock()
	}
	return nil
}

func (n *dpopNote) nonceToSend() string {
	if n == nil {
		return ""
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.freshNonce
}

// spendDPoPProof records the jti of the request's proof, once, so the
// proof cannot be used again while its iat is accepted (RFC 9449 §11.1):
// a replay is refused with invalid_dpop_proof. A request without a proof
// records nothing.
func (s *opStorage) spendDPoPProof(ctx context.Context) error {
	n := dpopNoteFrom(ctx)
	if n == nil || n.proof.jkt == "" {
		return nil
	}
	replayed, err := s.recordDPoPJTI(ctx, n)
	if err != nil {
		return err
	}
	if replayed {
		return oauthError(errInvalidDPoPProof, "DPoP proof refused: its jti was used already")
	}
	return nil
}

// recordDPoPJTI records the jti of n's proof unless it was already, and
// tells whether another request recorded it first.
func (s *opStorage) recordDPoPJTI(ctx context.Context, n *dpopNote) (replayed bool, _ error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.spent {
		return false, nil
	}
	// Keyed by the proof's key and jti, so two keys' jti's never collide.
	replayed, err := s.assertions.recordOnce(ctx, dpopReplayPurpose, "dpop\x00"+n.proof.jkt+"\x00"+n.proof.jti, s.now(), n.proof.iat.Add(dpopProofMaxAge+dpopProofSkew))
	switch {
	case err != nil:
		return false, s.internal(ctx, "record the jti of a DPoP proof", err)
	case replayed:
		return true, nil
	}
	n.spent = true
	return false, nil
}

// dpopClaimsFor is the confirmation claim (RFC 9449 §6.1) of the JWT access
// tokens a token request issues: cnf.jkt, or nothing for bearer tokens.
func dpopClaimsFor(ctx context.Context) map[string]any {
	if jkt := dpopBinding(ctx); jkt != "" {
		return map[string]any{"cnf": map[string]any{"jkt": jkt}}
	}
	return nil
}

// checkDPoPBinding applies, at /userinfo, the binding of access token t
// to the proof the request carried: a bound token needs a proof of its
// key (a bound token presented as Bearer is refused, RFC 9449 §7.1, and
// a bearer token presented with a proof too, §4.3 point 12), the
// nonce when its app requires one, and a jti not seen before. A refusal
// is noted for the middleware, which answers with the DPoP challenge.
func (s *opStorage) checkDPoPBinding(ctx context.Context, t storage.AccessToken) error {
	n := dpopNoteFrom(ctx)
	if n == nil {
		if t.DPoPJKT != "" {
			return errInvalidToken
		}
		return nil
	}
	if t.DPoPJKT == "" && n.proof.jkt == "" {
		return nil
	}
	if t.DPoPJKT != "" && n.proof.jkt == "" {
		n.refuse(&dpopError{code: "invalid_token", description: "the access token is bound to a DPoP key: present it with the DPoP scheme and a proof"})
		return errInvalidToken
	}
	if t.DPoPJKT == "" {
		// RFC 9449 §4.3 point 12: the proof's key must be the one the
		// token is bound to; a bearer token is bound to none.
		n.refuse(&dpopError{code: "invalid_token", description: "the access token is not bound to a DPoP key: present it with the Bearer scheme"})
		return errInvalidToken
	}
	if subtle.ConstantTimeCompare([]byte(t.DPoPJKT), []byte(n.proof.jkt)) != 1 {
		n.refuse(&dpopError{code: "invalid_token", description: "the access token is bound to another DPoP key"})
		return errInvalidToken
	}
	if c, err := s.getClient(ctx, t.ClientID); err == nil && c.RequireDPoPNonce {
		if e := n.checkNonce(s.dpopNonces); e != nil {
			n.refuse(e)
			return errInvalidToken
		}
	}
	replayed, err := s.recordDPoPJTI(ctx, n)
	if err != nil {
		return err
	}
	if replayed {
		n.refuse(badProof("its jti was used already"))
		return errInvalidToken
	}
	return nil
}

// refreshBinding is the key a new refresh token of app clientID is bound
// to: a family keeps its key; a new one of a public app takes the key of
// the request's proof (RFC 9449 §5). A confidential app's refresh tokens
// are bound by its client authentication instead, and stay unbound.
func (s *opStorage) refreshBinding(ctx context.Context, req any, clientID string) string {
	if r, ok := req.(*refreshRequest); ok {
		return r.rt.DPoPJKT
	}
	jkt := dpopBinding(ctx)
	if jkt == "" {
		return ""
	}
	if c, err := s.getClient(ctx, clientID); err == nil && c.Public {
		return jkt
	}
	return ""
}

// spendPushedDPoPProof records the jti of a pushed request's proof. Only an
// authenticated (confidential) app's: anyone may push for a public app,
// whose pushed requests are bounded by evicting the oldest (pending sign-in
// limits), and the jti records would not be; and a replayed proof binds
// the code to the key that signed it, which whoever replays it does not
// hold: they gain nothing.
func (s *opStorage) spendPushedDPoPProof(ctx context.Context) error {
	if n, ok := pushedFrom(ctx); !ok || n.public {
		return nil
	}
	return s.spendDPoPProof(ctx)
}

// subjectTokenBinding refuses a token exchange whose DPoP-bound subject
// token does not come with a proof of its key: a bound token is accepted
// only with one (RFC 9449 §7.1), and the exchange would otherwise strip
// its binding or move it to another key. Keycloak refuses it too.
func subjectTokenBinding(ctx context.Context, sub storage.AccessToken) error {
	if sub.DPoPJKT == "" || sub.DPoPJKT == presentedJKT(ctx) {
		return nil
	}
	return oidc.ErrInvalidRequest().WithDescription("subject_token is bound to a DPoP key: the request must carry a proof of that key")
}
