package provider

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage/bolt"
)

// keysFixture is a bolt store and a sealer for KeyManagers that share them.
type keysFixture struct {
	db     *bolt.DB
	sealer *seal.Sealer
	clock  *testclock.Clock
}

func newKeysFixture(t *testing.T) *keysFixture {
	t.Helper()
	clock := testclock.At(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	db, err := bolt.Open(filepath.Join(t.TempDir(), "k.db"), bolt.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	sealer, err := seal.New(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return &keysFixture{db: db, sealer: sealer, clock: clock}
}

// manager is a KeyManager of alg, loaded.
func (f *keysFixture) manager(t *testing.T, alg string) *KeyManager {
	t.Helper()
	m := NewKeyManager(f.db, f.sealer, 30*24*time.Hour, 2*time.Hour, f.clock.Now, nil)
	if err := m.SetAlgorithm(alg); err != nil {
		t.Fatal(err)
	}
	if err := m.Load(context.Background()); err != nil {
		t.Fatalf("load %s keys: %v", alg, err)
	}
	return m
}

// jwks is the manager's JWKS document as a relying party reads it.
func jwksOf(t *testing.T, m *KeyManager) jose.JSONWebKeySet {
	t.Helper()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(m.JWKS(), &set); err != nil {
		t.Fatalf("JWKS %s: %v", m.JWKS(), err)
	}
	return set
}

// sign signs payload as zitadel signs ID tokens and JWT access tokens.
func sign(t *testing.T, m *KeyManager, payload string) string {
	t.Helper()
	st, err := m.current()
	if err != nil {
		t.Fatal(err)
	}
	signer, err := op.SignerFromKey(st.signing)
	if err != nil {
		t.Fatalf("signer for %s: %v", st.signing.alg, err)
	}
	jws, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	token, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return token
}

// verify checks token against the key of its kid in set, accepting only
// alg, as a relying party does.
func verify(t *testing.T, set jose.JSONWebKeySet, alg, token string) string {
	t.Helper()
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(alg)})
	if err != nil {
		t.Fatalf("parse %s token: %v", alg, err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("JWKS has %d keys of kid %q", len(keys), jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("verify %s token with its JWK: %v", alg, err)
	}
	return string(payload)
}

// For each algorithm: the key is generated, sealed and stored; another
// manager loads it back; what it signs verifies with the public JWK from
// JWKS, which has the right kty, crv, alg, use and kid.
func TestKeyManagerAlgorithms(t *testing.T) {
	for _, tc := range []struct {
		alg, kty, crv string
		private       func(any) bool
	}{
		{"RS256", "RSA", "", func(k any) bool { r, ok := k.(*rsa.PrivateKey); return ok && r.N.BitLen() == 2048 }},
		{"ES256", "EC", "P-256", func(k any) bool { e, ok := k.(*ecdsa.PrivateKey); return ok && e.Curve == elliptic.P256() }},
		{"EdDSA", "OKP", "Ed25519", func(k any) bool { _, ok := k.(ed25519.PrivateKey); return ok }},
	} {
		t.Run(tc.alg, func(t *testing.T) {
			f := newKeysFixture(t)
			ctx := context.Background()
			made := f.manager(t, tc.alg)
			stored, err := f.db.ListSigningKeys(ctx)
			if err != nil || len(stored) != 1 {
				t.Fatalf("stored keys: %d, %v", len(stored), err)
			}
			k := stored[0]
			if k.Algorithm != tc.alg || k.ID != made.SigningKeyID() {
				t.Fatalf("stored key %q of %q, want %q of %q", k.ID, k.Algorithm, made.SigningKeyID(), tc.alg)
			}
			der, err := f.sealer.Open(k.SealedKey, SealPurposeSigningKey)
			if err != nil {
				t.Fatalf("open the sealed key: %v", err)
			}
			if bytes.Contains(k.SealedKey, der) {
				t.Fatal("the stored key holds its PKCS#8 in the clear")
			}
			parsed, err := x509.ParsePKCS8PrivateKey(der)
			if err != nil || !tc.private(parsed) {
				t.Fatalf("sealed key is a %T (%v), not a %s key", parsed, err, tc.alg)
			}

			// Another process loads the same key back.
			loaded := f.manager(t, tc.alg)
			if loaded.SigningKeyID() != k.ID {
				t.Fatalf("reloaded signing key %q, want %q", loaded.SigningKeyID(), k.ID)
			}
			var raw struct{ Keys []map[string]any }
			if err := json.Unmarshal(loaded.JWKS(), &raw); err != nil || len(raw.Keys) != 1 {
				t.Fatalf("JWKS %s: %v", loaded.JWKS(), err)
			}
			jwk := raw.Keys[0]
			if jwk["kty"] != tc.kty || jwk["alg"] != tc.alg || jwk["use"] != "sig" || jwk["kid"] != k.ID || (tc.crv != "" && jwk["crv"] != tc.crv) {
				t.Fatalf("JWK %v, want kty %s crv %q alg %s use sig kid %s", jwk, tc.kty, tc.crv, tc.alg, k.ID)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := jwk[private]; ok {
					t.Fatalf("JWKS publishes the private member %q", private)
				}
			}
			if got := loaded.SignatureAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(tc.alg)}) {
				t.Fatalf("algorithms %v, want [%s]", got, tc.alg)
			}
			token := sign(t, loaded, `{"sub":"u1"}`)
			if got := verify(t, jwksOf(t, made), tc.alg, token); got != `{"sub":"u1"}` {
				t.Fatalf("verified payload %q", got)
			}

			// A rotation makes a key of the same algorithm; both verify.
			if err := loaded.Rotate(ctx); err != nil {
				t.Fatal(err)
			}
			set := jwksOf(t, loaded)
			rotated := set.Key(loaded.SigningKeyID())
			if loaded.SigningKeyID() == k.ID || len(set.Keys) != 2 || len(rotated) != 1 || rotated[0].Algorithm != tc.alg {
				t.Fatalf("after a rotation: signing %q, JWKS %s", loaded.SigningKeyID(), loaded.JWKS())
			}
			verify(t, set, tc.alg, token)
			verify(t, set, tc.alg, sign(t, loaded, `{"sub":"u2"}`))
		})
	}
}

// A changed [keys] algorithm: at the next Load a key of the new algorithm
// signs, the old key stays in JWKS (and its algorithm in the list
// discovery shows) until its tokens have expired, and then both leave.
func TestKeyManagerAlgorithmSwitch(t *testing.T) {
	f := newKeysFixture(t)
	old := f.manager(t, "RS256")
	oldToken := sign(t, old, `{"sub":"before"}`)

	f.clock.Add(time.Minute)
	m := f.manager(t, "EdDSA")
	if m.SigningKeyID() == old.SigningKeyID() {
		t.Fatal("the RS256 key still signs after the algorithm changed to EdDSA")
	}
	if got := m.SignatureAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.EdDSA, jose.RS256}) {
		t.Fatalf("algorithms %v, want [EdDSA RS256]", got)
	}
	set := jwksOf(t, m)
	if len(set.Keys) != 2 {
		t.Fatalf("JWKS has %d keys, want the EdDSA one and the retired RS256 one: %s", len(set.Keys), m.JWKS())
	}
	verify(t, set, "RS256", oldToken)
	verify(t, set, "EdDSA", sign(t, m, `{"sub":"after"}`))
	stored, _ := f.db.ListSigningKeys(context.Background())
	for _, k := range stored {
		if retired := !k.RetiredAt.IsZero(); retired != (k.Algorithm == "RS256") {
			t.Fatalf("key %s of %s retired %v", k.ID, k.Algorithm, retired)
		}
	}

	// Loading again with the same algorithm changes nothing.
	if err := m.Load(context.Background()); err != nil || len(jwksOf(t, m).Keys) != 2 {
		t.Fatalf("reload: %v, JWKS %s", err, m.JWKS())
	}
	// The RS256 key's tokens have expired: it leaves JWKS, and RS256 the list.
	f.clock.Add(3 * time.Hour)
	if err := m.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := m.SignatureAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.EdDSA}) || len(jwksOf(t, m).Keys) != 1 {
		t.Fatalf("after the RS256 key expired: algorithms %v, JWKS %s", got, m.JWKS())
	}
}

// A stored key whose algorithm does not match its private key is refused:
// Keyport would otherwise sign tokens whose alg lies.
func TestKeyManagerRefusesMismatchedKey(t *testing.T) {
	f := newKeysFixture(t)
	f.manager(t, "ES256")
	ctx := context.Background()
	stored, _ := f.db.ListSigningKeys(ctx)
	k := stored[0]
	k.Algorithm = "RS256"
	if err := f.db.PutSigningKey(ctx, k); err != nil {
		t.Fatal(err)
	}
	m := NewKeyManager(f.db, f.sealer, 0, time.Hour, f.clock.Now, nil)
	if err := m.Refresh(ctx); err == nil {
		t.Fatal("published an ECDSA key as RS256")
	}
	if err := m.SetAlgorithm("HS256"); err == nil {
		t.Fatal("SetAlgorithm accepted HS256")
	}
}

// Discovery lists the published keys' algorithms and follows them while
// the server runs: after a switch, both; once the old key expired, one.
func TestDiscoveryFollowsKeyAlgorithms(t *testing.T) {
	f := newLogoutFixture(t)
	algs := func() []string {
		rec := httptest.NewRecorder()
		f.p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, logoutIssuer+"/.well-known/openid-configuration", nil))
		var doc struct {
			Algs []string `json:"id_token_signing_alg_values_supported"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
			t.Fatalf("discovery %d %s: %v", rec.Code, rec.Body, err)
		}
		return doc.Algs
	}
	if got := algs(); !slices.Equal(got, []string{"RS256"}) {
		t.Fatalf("discovery algorithms %v, want [RS256]", got)
	}
	if err := f.keys.SetAlgorithm("ES256"); err != nil {
		t.Fatal(err)
	}
	if err := f.keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := algs(); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("discovery algorithms after the switch %v, want [ES256 RS256]", got)
	}
	keys, _ := f.db.ListSigningKeys(context.Background())
	for _, k := range keys {
		if k.Algorithm == "RS256" {
			k.VerifyTill = time.Now().Add(-time.Second)
			if err := f.db.PutSigningKey(context.Background(), k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := f.keys.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := algs(); !slices.Equal(got, []string{"ES256"}) {
		t.Fatalf("discovery algorithms after the RS256 key expired %v, want [ES256]", got)
	}
}

// BenchmarkSign is one token signature per op with a key of each
// algorithm, as zitadel signs ID tokens and JWT access tokens: the ceiling
// of a token endpoint on one core (run with -cpu 1, pinned).
func BenchmarkSign(b *testing.B) {
	payload := []byte(`{"iss":"https://id.example.com","sub":"0f8fad5bd9cb469fa16570867728950e","aud":["app"],"exp":1767225600,"iat":1767222000,"auth_time":1767222000,"nonce":"n-0S6_WzA2Mj","at_hash":"77QmUPtjPfzWtF2AnpK9RQ","sid":"s1","email":"alice@example.com","email_verified":true}`)
	for _, alg := range Algorithms {
		b.Run(alg, func(b *testing.B) {
			db, err := bolt.Open(filepath.Join(b.TempDir(), "k.db"), bolt.Options{})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			sealer, _ := seal.New(bytes.Repeat([]byte{1}, 32))
			m := NewKeyManager(db, sealer, 0, time.Hour, nil, nil)
			if err := m.SetAlgorithm(alg); err != nil {
				b.Fatal(err)
			}
			if err := m.Load(context.Background()); err != nil {
				b.Fatal(err)
			}
			st, _ := m.current()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				signer, err := op.SignerFromKey(st.signing)
				if err != nil {
					b.Fatal(err)
				}
				jws, err := signer.Sign(payload)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := jws.CompactSerialize(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "sigs/s")
		})
	}
}
