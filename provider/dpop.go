package provider

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"sync"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/dpop"
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

// Bounds and names of DPoP at the provider (the proof's own are the dpop
// package's).
const (
	// dpopReplayPurpose is the one-time tokens' purpose of proofs' jti's.
	dpopReplayPurpose = "dpop_proof"
	// dpopJKTLen is the length of a jkt (dpop_jkt): a base64url SHA-256.
	dpopJKTLen = 43

	dpopTokenType = "DPoP" // token_type and the Authorization scheme
	// dpopNonceHeader carries a server nonce (RFC 9449 §8.1).
	dpopNonceHeader = "DPoP-Nonce"
)

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
	proof dpop.Proof // zero: no proof
	// bind: a token request whose tokens are bound to proof.jkt.
	bind bool
	// scheme is the Authorization scheme at /userinfo ("DPoP" or another).
	scheme string
	// onlyBound: [oauth] dpop is off (dpopOffTokenRequest), and the proof
	// counts only for a code or token bound to a key before (provesKey);
	// otherwise it is ignored, not spent, as a server without DPoP would.
	onlyBound bool

	mu         sync.Mutex
	spent      bool        // the jti is recorded
	proved     bool        // provesKey matched: a bound code or token needs the proof
	refusal    *dpop.Error // at /userinfo: why the token was refused
	freshNonce string      // a nonce to hand out with the answer
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
		return n.proof.JKT
	}
	return ""
}

// provesKey tells whether the request carried a proof of key jkt, the key
// a code or token it presents is bound to; the proof is then spent
// (spendDPoPProof) even while [oauth] dpop is off.
func provesKey(ctx context.Context, jkt string) bool {
	n := dpopNoteFrom(ctx)
	if n == nil || jkt == "" || n.proof.JKT != jkt {
		return false
	}
	n.mu.Lock()
	n.proved = true
	n.mu.Unlock()
	return true
}

func (n *dpopNote) refuse(e *dpop.Error) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.refusal = e
}

func (n *dpopNote) refused() *dpop.Error {
	if n == nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.refusal
}

// checkNonce checks the proof's nonce for an app that requires one; a
// stale one passes and notes a fresh one for the answer.
func (n *dpopNote) checkNonce(nonces dpop.Nonces) *dpop.Error {
	ok, stale := nonces.Check(n.proof.Nonce)
	if !ok {
		n.mu.Lock()
		n.freshNonce = nonces.Current()
		n.mu.Unlock()
		if n.proof.Nonce == "" {
			return &dpop.Error{Code: dpop.CodeUseNonce, Description: "this app's DPoP proofs must carry the server's nonce (DPoP-Nonce)"}
		}
		return &dpop.Error{Code: dpop.CodeUseNonce, Description: "the DPoP proof's nonce is unknown or expired; use the one in DPoP-Nonce"}
	}
	if stale {
		n.mu.Lock()
		n.freshNonce = nonces.Current()
		n.mu.Unlock()
	}
	return nil
}

// ignored tells whether n's proof is ignored: DPoP is off and nothing
// the request presents is bound to its key.
func (n *dpopNote) ignored() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.onlyBound && !n.proved
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
	if n == nil || n.proof.JKT == "" || n.ignored() {
		return nil
	}
	replayed, err := s.recordDPoPJTI(ctx, n)
	if err != nil {
		return err
	}
	if replayed {
		return oauthError(dpop.CodeInvalidProof, "DPoP proof refused: its jti was used already")
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
	replayed, err := s.assertions.recordOnce(ctx, dpopReplayPurpose, "dpop\x00"+n.proof.JKT+"\x00"+n.proof.JTI, s.now(), n.proof.IAT.Add(dpop.ProofMaxAge+dpop.ProofSkew))
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
	if t.DPoPJKT == "" && n.proof.JKT == "" {
		return nil
	}
	if t.DPoPJKT != "" && n.proof.JKT == "" {
		n.refuse(&dpop.Error{Code: "invalid_token", Description: "the access token is bound to a DPoP key: present it with the DPoP scheme and a proof"})
		return errInvalidToken
	}
	if t.DPoPJKT == "" {
		// RFC 9449 §4.3 point 12: the proof's key must be the one the
		// token is bound to; a bearer token is bound to none.
		n.refuse(&dpop.Error{Code: "invalid_token", Description: "the access token is not bound to a DPoP key: present it with the Bearer scheme"})
		return errInvalidToken
	}
	if subtle.ConstantTimeCompare([]byte(t.DPoPJKT), []byte(n.proof.JKT)) != 1 {
		n.refuse(&dpop.Error{Code: "invalid_token", Description: "the access token is bound to another DPoP key"})
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
		n.refuse(dpop.BadProof("its jti was used already"))
		return errInvalidToken
	}
	return nil
}

// refreshBinding is the key a new refresh token of app clientID is bound
// to: a bound family keeps its key; any other refresh token issued to a
// public app with a proof takes the proof's key (RFC 9449 §5: one issued
// to a public client that presents a valid proof MUST be bound), so an
// unbound family that a public app refreshes with a proof is bound from
// then on. A confidential app's refresh tokens are bound by its client
// authentication instead, and stay unbound.
func (s *opStorage) refreshBinding(ctx context.Context, req any, clientID string) string {
	if r, ok := req.(*refreshRequest); ok && r.rt.DPoPJKT != "" {
		return r.rt.DPoPJKT // TokenRequestByRefreshToken checked the proof's key
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
	if sub.DPoPJKT == "" || provesKey(ctx, sub.DPoPJKT) {
		return nil
	}
	return oidc.ErrInvalidRequest().WithDescription("subject_token is bound to a DPoP key: the request must carry a proof of that key")
}
