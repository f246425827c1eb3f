package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const testHTU = "https://id.example.com/oauth/token"

var b64 = base64.RawURLEncoding

// rawES256 signs header and claims as a compact JWS with ES256, whatever
// the header says: proofs a conforming library would not make.
func rawES256(t *testing.T, key *ecdsa.PrivateKey, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	sum := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64.EncodeToString(sig)
}

func ecJWK(key *ecdsa.PrivateKey, private bool) map[string]any {
	point, _ := key.PublicKey.Bytes() // 0x04 || X || Y
	m := map[string]any{"kty": "EC", "crv": "P-256", "x": b64.EncodeToString(point[1:33]), "y": b64.EncodeToString(point[33:])}
	if private {
		d, _ := key.Bytes()
		m["d"] = b64.EncodeToString(d)
	}
	return m
}

// ecThumbprint is RFC 7638's thumbprint of key, computed by hand: the
// required members in lexicographic order, no whitespace.
func ecThumbprint(key *ecdsa.PrivateKey) string {
	j := ecJWK(key, false)
	canon := `{"crv":"P-256","kty":"EC","x":"` + j["x"].(string) + `","y":"` + j["y"].(string) + `"}`
	sum := sha256.Sum256([]byte(canon))
	return b64.EncodeToString(sum[:])
}

func proofClaims(now time.Time) map[string]any {
	return map[string]any{"jti": "j-" + b64.EncodeToString(big.NewInt(now.UnixNano()).Bytes()), "htm": "POST", "htu": testHTU, "iat": now.Unix()}
}

func TestVerifyDPoPProof(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	header := func() map[string]any {
		return map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(key, false)}
	}
	good := func(edit func(h, c map[string]any)) string {
		h, c := header(), proofClaims(now)
		if edit != nil {
			edit(h, c)
		}
		return rawES256(t, key, h, c)
	}
	token := "an-access-token"
	sum := sha256.Sum256([]byte(token))
	ath := b64.EncodeToString(sum[:])

	p, err := Verify([]string{good(nil)}, "POST", testHTU, "", now)
	if err != nil {
		t.Fatalf("good proof refused: %v", err)
	}
	if p.JKT != ecThumbprint(key) {
		t.Fatalf("jkt %q, want RFC 7638 thumbprint %q", p.JKT, ecThumbprint(key))
	}
	// htu is compared without query and fragment, after normalisation.
	for _, htu := range []string{testHTU + "?x=1", testHTU + "#f", "HTTPS://ID.example.com:443/oauth/token", "https://id.example.com/oauth/%74oken"} {
		if _, err := Verify([]string{good(func(_, c map[string]any) { c["htu"] = htu })}, "POST", testHTU, "", now); err != nil {
			t.Errorf("htu %q refused: %v", htu, err)
		}
	}
	// RFC 3986 §6.2.2: dot segments are removed, and only unreserved
	// characters are decoded; an encoded "/" is another path.
	for htu, same := range map[string]bool{
		"https://id.example.com/oauth/./token":        true,
		"https://id.example.com/oauth/x/../token":     true,
		"https://id.example.com/x/../oauth/%74oken":   true,
		"https://id.example.com/oauth%2Ftoken":        false,
		"https://id.example.com/oauth%2ftoken":        false,
		"https://id.example.com/oauth/token/":         false,
		"https://id.example.com/oauth/token/..":       false,
		"https://id.example.com/oauth/token/x/%2E%2E": false,
	} {
		_, err := Verify([]string{good(func(_, c map[string]any) { c["htu"] = htu })}, "POST", testHTU, "", now)
		if same != (err == nil) {
			t.Errorf("htu %q: %v, want the same URI as %s: %v", htu, err, testHTU, same)
		}
	}
	if _, err := Verify([]string{good(func(_, c map[string]any) { c["ath"] = ath })}, "GET", testHTU, token, now.Add(-time.Minute)); err == nil {
		t.Error("htm POST accepted for GET")
	}
	withATH, err := Verify([]string{good(func(_, c map[string]any) { c["ath"] = ath; c["htm"] = "GET" })}, "GET", testHTU, token, now)
	if err != nil || withATH.JKT != p.JKT {
		t.Errorf("resource proof with ath refused: %v", err)
	}

	// iat is a NumericDate (RFC 7519 §2), which may have a fraction, as
	// some libraries send it.
	if _, err := Verify([]string{good(func(_, c map[string]any) { c["iat"] = json.Number("1800000000.25") })}, "POST", testHTU, "", now); err != nil {
		t.Errorf("a fractional iat refused: %v", err)
	}
	for _, iat := range []string{"1e300", "-1e300", "null", `"1800000000"`} {
		if _, err := Verify([]string{good(func(_, c map[string]any) { c["iat"] = json.RawMessage(iat) })}, "POST", testHTU, "", now); err == nil {
			t.Errorf("iat %s accepted", iat)
		}
	}

	hs := func() string {
		h, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "HS256", "jwk": ecJWK(key, false)})
		c, _ := json.Marshal(proofClaims(now))
		in := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
		m := hmac.New(sha256.New, []byte("k"))
		m.Write([]byte(in))
		return in + "." + b64.EncodeToString(m.Sum(nil))
	}()
	refusals := map[string]struct {
		values []string
		method string
		token  string
		want   string
	}{
		"no header":       {nil, "POST", "", "missing"},
		"two headers":     {[]string{good(nil), good(nil)}, "POST", "", "more than one"},
		"oversized":       {[]string{strings.Repeat("a", MaxProofBytes+1)}, "POST", "", "longer than"},
		"not a JWT":       {[]string{"abc"}, "POST", "", "not a JWT"},
		"symmetric alg":   {[]string{hs}, "POST", "", "alg must be one of"},
		"wrong typ":       {[]string{good(func(h, _ map[string]any) { h["typ"] = "JWT" })}, "POST", "", "typ"},
		"no jwk":          {[]string{good(func(h, _ map[string]any) { delete(h, "jwk") })}, "POST", "", "jwk header is missing"},
		"private jwk":     {[]string{good(func(h, _ map[string]any) { h["jwk"] = ecJWK(key, true) })}, "POST", "", "public key"},
		"wrong htm":       {[]string{good(nil)}, "GET", "", "htm"},
		"wrong htu":       {[]string{good(func(_, c map[string]any) { c["htu"] = "https://id.example.com/userinfo" })}, "POST", "", "htu"},
		"other host htu":  {[]string{good(func(_, c map[string]any) { c["htu"] = "https://evil.example/oauth/token" })}, "POST", "", "htu"},
		"no jti":          {[]string{good(func(_, c map[string]any) { delete(c, "jti") })}, "POST", "", "jti"},
		"iat too old":     {[]string{good(func(_, c map[string]any) { c["iat"] = now.Add(-ProofMaxAge - time.Second).Unix() })}, "POST", "", "old"},
		"iat in future":   {[]string{good(func(_, c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() })}, "POST", "", "future"},
		"iat missing":     {[]string{good(func(_, c map[string]any) { delete(c, "iat") })}, "POST", "", "iat"},
		"ath missing":     {[]string{good(nil)}, "POST", token, "ath is missing"},
		"ath wrong":       {[]string{good(func(_, c map[string]any) { c["ath"] = b64.EncodeToString(make([]byte, 32)) })}, "POST", token, "ath is not"},
		"nonce not text":  {[]string{good(func(_, c map[string]any) { c["nonce"] = 5 })}, "POST", "", "nonce"},
		"other key's sig": {[]string{otherKeySigned(t, now)}, "POST", "", "signature"},
	}
	for name, tc := range refusals {
		_, err := Verify(tc.values, tc.method, testHTU, tc.token, now)
		var de *Error
		if !errors.As(err, &de) || de.Code != CodeInvalidProof || !strings.Contains(de.Description, tc.want) {
			t.Errorf("%s: got %v, want invalid_dpop_proof saying %q", name, err, tc.want)
		}
	}
}

// otherKeySigned is a proof whose jwk header is not the key that signed it.
func otherKeySigned(t *testing.T, now time.Time) string {
	signer, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	shown, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return rawES256(t, signer, map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": ecJWK(shown, false)}, proofClaims(now))
}

// TestDPoPProofAlgorithms: proofs made by go-jose with every algorithm
// discovery lists are accepted, with the key's thumbprint as jkt.
func TestDPoPProofAlgorithms(t *testing.T) {
	now := time.Now()
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	keys := map[jose.SignatureAlgorithm]crypto.Signer{jose.RS256: rsaKey, jose.PS256: rsaKey, jose.ES256: ecKey, jose.EdDSA: edKey}
	for _, alg := range Algorithms {
		key := keys[alg]
		signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(proofClaims(now))
		jws, err := signer.Sign(body)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := jws.CompactSerialize()
		p, err := Verify([]string{raw}, "POST", testHTU, "", now)
		if err != nil {
			t.Errorf("%s: %v", alg, err)
			continue
		}
		thumb, _ := (&jose.JSONWebKey{Key: key.Public()}).Thumbprint(crypto.SHA256)
		if p.JKT != b64.EncodeToString(thumb) {
			t.Errorf("%s: jkt %q is not the key's thumbprint", alg, p.JKT)
		}
	}
}

// TestDPoPNonces: a nonce is accepted in its window and the next, and
// then asks for a fresh one; nonces of another key, or forged, are not.
func TestDPoPNonces(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	clock := func() time.Time { return now }
	n := Nonces{Key: [32]byte{1}, Now: clock}
	first := n.Current()
	if ok, stale := n.Check(first); !ok || stale {
		t.Fatalf("current nonce: ok=%v stale=%v", ok, stale)
	}
	now = now.Add(NonceWindow)
	if ok, stale := n.Check(first); !ok || !stale {
		t.Errorf("previous window's nonce: ok=%v stale=%v, want accepted and stale", ok, stale)
	}
	if n.Current() == first {
		t.Error("the nonce did not change with the window")
	}
	now = now.Add(NonceWindow)
	if ok, _ := n.Check(first); ok {
		t.Error("a nonce two windows old was accepted")
	}
	other := Nonces{Key: [32]byte{2}, Now: clock}
	if ok, _ := n.Check(other.Current()); ok {
		t.Error("a nonce made with another key was accepted")
	}
	forged, _ := b64.DecodeString(n.Current())
	forged[len(forged)-1] ^= 1
	for _, bad := range []string{"", "x", b64.EncodeToString(forged), strings.Repeat("A", 32)} {
		if ok, _ := n.Check(bad); ok {
			t.Errorf("nonce %q accepted", bad)
		}
	}
	// A replica with the same key makes and accepts the same nonces.
	if (Nonces{Key: [32]byte{1}, Now: clock}).Current() != n.Current() {
		t.Error("two replicas with one key disagree")
	}
}

// BenchmarkVerifyDPoPProof measures what checking a proof adds to a token
// or userinfo request (the jti's record aside).
func BenchmarkVerifyDPoPProof(b *testing.B) {
	now := time.Now()
	for _, alg := range []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA, jose.RS256} {
		var key crypto.Signer
		switch alg {
		case jose.ES256:
			key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		case jose.EdDSA:
			_, key, _ = ed25519.GenerateKey(rand.Reader)
		default:
			key, _ = rsa.GenerateKey(rand.Reader, 2048)
		}
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: key}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
		body, _ := json.Marshal(proofClaims(now))
		jws, _ := signer.Sign(body)
		raw, _ := jws.CompactSerialize()
		b.Run(string(alg), func(b *testing.B) {
			for b.Loop() {
				if _, err := Verify([]string{raw}, "POST", testHTU, "", now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
