package provider

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/go-jose/go-jose/v4"
)

// signCompact signs payload (JSON claims) as a compact JWS (RFC 7515 §7.1)
// with header {"alg", "kid", "typ":"JWT"}, as go-jose's signer does for
// zitadel's tokens, for the tokens Keyport builds itself. Its header is
// encoded once per key, and nothing else is done but the signature: go-jose
// builds a signer per token and encodes its header each time, which with
// zitadel's claims handling cost about as much CPU as an ES256 signature.
func (k *signingKey) signCompact(payload []byte) (string, error) {
	k.headerOnce.Do(func() {
		h, _ := json.Marshal(struct {
			Alg string `json:"alg"`
			Kid string `json:"kid"`
			Typ string `json:"typ"`
		}{string(k.alg), k.id, "JWT"})
		k.header = base64.RawURLEncoding.EncodeToString(h)
	})
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(k.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(512))
	buf = append(buf, k.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	signingInput := buf
	var sig []byte
	switch key := k.key.(type) {
	case *ecdsa.PrivateKey:
		if k.alg != jose.ES256 || key.Curve.Params().BitSize != 256 {
			return "", fmt.Errorf("sign with key %s: %s with a P-%d key", k.id, k.alg, key.Curve.Params().BitSize)
		}
		// JWS wants r and s side by side, each the curve's size (RFC 7518
		// §3.4), not the ASN.1 that SignASN1 gives.
		digest := sha256.Sum256(signingInput)
		r, s, err := ecdsa.Sign(rand.Reader, key, digest[:])
		if err != nil {
			return "", fmt.Errorf("sign with key %s: %w", k.id, err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case ed25519.PrivateKey:
		if k.alg != jose.EdDSA {
			return "", fmt.Errorf("sign with key %s: %s with an Ed25519 key", k.id, k.alg)
		}
		sig = ed25519.Sign(key, signingInput)
	case *rsa.PrivateKey:
		if k.alg != jose.RS256 {
			return "", fmt.Errorf("sign with key %s: %s with an RSA key", k.id, k.alg)
		}
		digest := sha256.Sum256(signingInput)
		var err error
		if sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:]); err != nil {
			return "", fmt.Errorf("sign with key %s: %w", k.id, err)
		}
	default:
		return "", fmt.Errorf("sign with key %s: keys of type %T are not supported", k.id, k.key)
	}
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return string(buf), nil
}

// jwsHeader is a signingKey's encoded JWS header (signCompact).
type jwsHeader struct {
	headerOnce sync.Once
	header     string
}
