package provider

import (
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// TestSignCompactVerifies: a token signCompact signs verifies with the
// key's public half under go-jose (a relying party's library), for every
// algorithm Keyport makes keys for, with the header relying parties read;
// a key of another algorithm than it claims is refused, and a changed
// payload no longer verifies.
func TestSignCompactVerifies(t *testing.T) {
	payload := []byte(`{"iss":"https://id.example.com","sub":"bot","jti":"s.x"}`)
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		priv, err := newPrivateKey(alg)
		if err != nil {
			t.Fatal(err)
		}
		k := &signingKey{id: "kid-" + string(alg), alg: alg, key: priv}
		token, err := k.signCompact(payload)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{alg})
		if err != nil {
			t.Fatalf("%s: go-jose cannot parse %q: %v", alg, token, err)
		}
		h := jws.Signatures[0].Header
		if h.KeyID != k.id || h.Algorithm != string(alg) || h.ExtraHeaders["typ"] != "JWT" {
			t.Errorf("%s: header %+v", alg, h)
		}
		got, err := jws.Verify(priv.Public())
		if err != nil || string(got) != string(payload) {
			t.Errorf("%s: verify: %v, payload %s", alg, err, got)
		}
		// The same token with one payload byte changed.
		parts := strings.Split(token, ".")
		first := "A"
		if parts[1][0] == 'A' {
			first = "B"
		}
		forged := parts[0] + "." + first + parts[1][1:] + "." + parts[2]
		if f, err := jose.ParseSignedCompact(forged, []jose.SignatureAlgorithm{alg}); err == nil {
			if _, err := f.Verify(priv.Public()); err == nil {
				t.Errorf("%s: a changed payload verifies", alg)
			}
		}
		// A key that claims another algorithm signs nothing.
		wrong := &signingKey{id: "w", alg: map[jose.SignatureAlgorithm]jose.SignatureAlgorithm{jose.RS256: jose.ES256, jose.ES256: jose.EdDSA, jose.EdDSA: jose.RS256}[alg], key: k.key}
		if _, err := wrong.signCompact(payload); err == nil {
			t.Errorf("%s key claiming %s signed", alg, wrong.alg)
		}
	}
}
