// Package dpop checks DPoP proofs (RFC 9449 §4.3) and makes and checks
// the server's stateless nonces (§8, §9). It keeps nothing and serves
// nothing: the provider decides which endpoint's URL a proof must name,
// records each proof's jti against replay, and binds tokens to the key
// thumbprint a proof carries (its JKT).
package dpop

import (
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
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Algorithms are the algorithms of DPoP proofs: asymmetric only (RFC
// 9449 §4.3 refuses MACs and none), the ones Keyport accepts for client
// assertions.
var Algorithms = []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256, jose.EdDSA}

// Bounds of a DPoP proof.
const (
	// MaxProofBytes bounds the DPoP header, which an unauthenticated
	// caller sends: a proof carrying an RSA 4096 key is under 2.5 KB.
	MaxProofBytes = 8 << 10
	// ProofMaxAge is how old a proof's iat may be: a proof is made for
	// one request, and its jti is kept that long.
	ProofMaxAge = 2 * time.Minute
	// ProofSkew is how far ahead of the server's clock iat may be.
	ProofSkew = 30 * time.Second
	// NonceWindow is how long a nonce is the current one; it is accepted
	// for one window more.
	NonceWindow = 5 * time.Minute
	// MaxJTIBytes bounds a proof's jti, which is kept for ProofMaxAge.
	MaxJTIBytes = 256
)

// Error codes of RFC 9449 §12.2.
const (
	CodeInvalidProof = "invalid_dpop_proof"
	CodeUseNonce     = "use_dpop_nonce"
)

// Error is a refused proof: Code is invalid_dpop_proof or use_dpop_nonce.
type Error struct {
	Code, Description string
}

func (e *Error) Error() string { return e.Code + ": " + e.Description }

func BadProof(format string, args ...any) *Error {
	return &Error{Code: CodeInvalidProof, Description: "DPoP proof refused: " + fmt.Sprintf(format, args...)}
}

// Proof is a DPoP proof that passed every check but its jti's replay and
// its nonce, which depend on the request.
type Proof struct {
	JKT   string // the key's RFC 7638 thumbprint, base64url
	JTI   string
	IAT   time.Time
	Nonce string
}

// claims are a proof's claims (RFC 9449 §4.2).
type claims struct {
	JTI   string          `json:"jti"`
	HTM   string          `json:"htm"`
	HTU   string          `json:"htu"`
	IAT   json.RawMessage `json:"iat"`
	ATH   string          `json:"ath"`
	Nonce json.RawMessage `json:"nonce"`
}

// Verify checks the proof in the DPoP header values of a request
// with method to htu (the endpoint's URL, no query) made at now; when
// accessToken is set (a resource request), ath must be its hash. It
// checks everything RFC 9449 §4.3 lists except the jti's replay and the
// nonce.
func Verify(values []string, method, htu, accessToken string, now time.Time) (Proof, error) {
	switch {
	case len(values) == 0:
		return Proof{}, BadProof("the DPoP header is missing")
	case len(values) > 1:
		return Proof{}, BadProof("more than one DPoP header")
	case len(values[0]) > MaxProofBytes:
		return Proof{}, BadProof("longer than %d bytes", MaxProofBytes)
	}
	raw := strings.TrimSpace(values[0])
	jws, err := jose.ParseSignedCompact(raw, Algorithms)
	if err != nil || len(jws.Signatures) != 1 {
		return Proof{}, BadProof("%s", unparsedProofProblem(raw))
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); typ != "dpop+jwt" {
		return Proof{}, BadProof("typ must be dpop+jwt")
	}
	jwk := h.JSONWebKey
	switch {
	case jwk == nil:
		return Proof{}, BadProof("the jwk header is missing")
	case !jwk.IsPublic():
		// RFC 9449 §4.3 point 7: a private key must never be sent.
		return Proof{}, BadProof("the jwk header must be a public key")
	case !jwk.Valid():
		return Proof{}, BadProof("the jwk header is not a usable key")
	}
	payload, err := jws.Verify(jwk.Key)
	if err != nil {
		return Proof{}, BadProof("the signature does not verify with the jwk header")
	}
	var c claims
	if err := json.Unmarshal(payload, &c); err != nil {
		return Proof{}, BadProof("its claims cannot be read")
	}
	iat, iatOK := numericDate(c.IAT)
	switch {
	case c.JTI == "":
		return Proof{}, BadProof("jti is missing")
	case len(c.JTI) > MaxJTIBytes:
		return Proof{}, BadProof("jti is longer than %d bytes", MaxJTIBytes)
	case c.HTM != method:
		return Proof{}, BadProof("htm must be %s", method)
	case !SameHTU(c.HTU, htu):
		return Proof{}, BadProof("htu must be %s", htu)
	case !iatOK:
		return Proof{}, BadProof("iat is missing or not a number")
	case iat.Before(now.Add(-ProofMaxAge)):
		return Proof{}, BadProof("iat is more than %s old", ProofMaxAge)
	case iat.After(now.Add(ProofSkew)):
		return Proof{}, BadProof("iat is in the future")
	}
	if accessToken != "" {
		sum := sha256.Sum256([]byte(accessToken))
		want := base64.RawURLEncoding.EncodeToString(sum[:])
		if c.ATH == "" {
			return Proof{}, BadProof("ath is missing")
		}
		if subtle.ConstantTimeCompare([]byte(c.ATH), []byte(want)) != 1 {
			return Proof{}, BadProof("ath is not the hash of the access token")
		}
	}
	var nonce string
	if len(c.Nonce) > 0 && string(c.Nonce) != "null" {
		if err := json.Unmarshal(c.Nonce, &nonce); err != nil || nonce == "" {
			return Proof{}, BadProof("nonce must be a string")
		}
	}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return Proof{}, BadProof("the jwk header has no thumbprint")
	}
	return Proof{JKT: base64.RawURLEncoding.EncodeToString(thumb), JTI: c.JTI, IAT: iat, Nonce: nonce}, nil
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
		if h.Alg != "" && !slices.Contains(Algorithms, jose.SignatureAlgorithm(h.Alg)) {
			return "alg must be one of " + AlgNames(Algorithms)
		}
		for _, private := range []string{"d", "p", "q", "dp", "dq", "qi", "k"} {
			if _, ok := h.JWK[private]; ok {
				return "the jwk header must be a public key"
			}
		}
	}
	return "not a JWT signed with one of " + AlgNames(Algorithms)
}

// SameHTU compares a proof's htu with the endpoint's URL as RFC 9449 §4.3
// says: without query and fragment, after RFC 3986's syntax- and
// scheme-based normalisation (case of scheme and host, the default port,
// an empty path, percent-encoding, dot segments).
func SameHTU(got, want string) bool {
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

// Nonces makes and checks stateless nonces (RFC 9449 §8, §9): an HMAC of
// a time window under Key, so every replica with the same Key makes and
// accepts the same ones and nothing is stored. A nonce is accepted in its
// own window and the next one.
type Nonces struct {
	Key [32]byte
	Now func() time.Time
}

func (n Nonces) window(t time.Time) int64 { return t.UnixNano() / int64(NonceWindow) }

func (n Nonces) forWindow(w int64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(w))
	mac := hmac.New(sha256.New, n.Key[:])
	mac.Write([]byte("keyport dpop nonce"))
	mac.Write(b[:8])
	copy(b[8:], mac.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Current is the nonce to hand out now.
func (n Nonces) Current() string { return n.forWindow(n.window(n.Now())) }

// Check tells whether nonce is one of the current or the previous window,
// and whether it is the previous one (stale: the answer hands out a new one).
func (n Nonces) Check(nonce string) (ok, stale bool) {
	b, err := base64.RawURLEncoding.DecodeString(nonce)
	if err != nil || len(b) != 24 {
		return false, false
	}
	w := int64(binary.BigEndian.Uint64(b[:8]))
	now := n.window(n.Now())
	if w != now && w != now-1 {
		return false, false
	}
	if !hmac.Equal([]byte(n.forWindow(w)), []byte(nonce)) {
		return false, false
	}
	return true, w != now
}

// AlgNames lists algs for an error description: "RS256, ES256".
func AlgNames(algs []jose.SignatureAlgorithm) string {
	names := make([]string, len(algs))
	for i, a := range algs {
		names[i] = string(a)
	}
	return strings.Join(names, ", ")
}
