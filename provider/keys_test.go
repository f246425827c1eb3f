package provider

import (
	"bytes"
	"cmp"
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
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/internal/cputime"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
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
// the server runs: after a switch, both; once the old key expired, the
// new one, and RS256 all the same (OpenID Connect Discovery 1.0 §3: "The
// algorithm RS256 MUST be included"), though JWKS no longer has its key.
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
	if got := algs(); !slices.Equal(got, []string{"ES256", "RS256"}) {
		t.Fatalf("discovery algorithms after the RS256 key expired %v, want [ES256 RS256]", got)
	}
	if got := f.keys.SignatureAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.ES256}) {
		t.Fatalf("published algorithms after the RS256 key expired %v, want [ES256]", got)
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
			// CPU time per signature as well as wall time: on a shared
			// machine the wall time includes waiting for the core.
			cpu0 := cputime.Process()
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
			if used := cputime.Process() - cpu0; used > 0 {
				b.ReportMetric(float64(used.Nanoseconds())/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// signWithKeyOf signs payload with m's key of alg ("" the default), as the
// token endpoint does for an app that asked for alg.
func signWithKeyOf(t *testing.T, m *KeyManager, alg, payload string) (token, kid string) {
	t.Helper()
	key, err := m.signer(context.Background(), alg)
	if err != nil {
		t.Fatalf("signer for %q: %v", alg, err)
	}
	signer, err := op.SignerFromKey(key)
	if err != nil {
		t.Fatalf("signer for %s: %v", key.alg, err)
	}
	jws, err := signer.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	if token, err = jws.CompactSerialize(); err != nil {
		t.Fatal(err)
	}
	return token, key.id
}

// appAlgorithms is what SetAlgorithmsInUse asks: the algorithms the apps
// use, changed by the test as an admin changes apps.
type appAlgorithms struct {
	mu   sync.Mutex
	algs []string
}

func (a *appAlgorithms) set(algs ...string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.algs = algs
}

func (a *appAlgorithms) list(context.Context) ([]string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return slices.Clone(a.algs), nil
}

// multiManager is a loaded KeyManager of default alg whose apps use what
// apps lists.
func (f *keysFixture) multiManager(t *testing.T, alg string, apps *appAlgorithms) *KeyManager {
	t.Helper()
	m := NewKeyManager(f.db, f.sealer, 30*24*time.Hour, 2*time.Hour, f.clock.Now, nil)
	if err := m.SetAlgorithm(alg); err != nil {
		t.Fatal(err)
	}
	m.SetAlgorithmsInUse(apps.list)
	if err := m.Load(context.Background()); err != nil {
		t.Fatalf("load keys: %v", err)
	}
	return m
}

// activeKeys maps each algorithm to the IDs of its stored active keys.
func activeKeys(t *testing.T, f *keysFixture) map[string][]string {
	t.Helper()
	stored, err := f.db.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, k := range stored {
		if k.RetiredAt.IsZero() {
			out[k.Algorithm] = append(out[k.Algorithm], k.ID)
		}
	}
	return out
}

// With apps using ES256 and EdDSA on an RS256 server there is one active
// key of each algorithm: each signs what is asked of it, with its own kid,
// and verifies through JWKS; discovery's list has the three, the default
// first; another process loading the same store makes no key of its own.
func TestKeyManagerSeveralAlgorithms(t *testing.T) {
	f := newKeysFixture(t)
	apps := &appAlgorithms{}
	apps.set("EdDSA", "ES256", "EdDSA")
	m := f.multiManager(t, "RS256", apps)
	if got := m.SignatureAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}) {
		t.Fatalf("algorithms %v, want [RS256 ES256 EdDSA]", got)
	}
	active := activeKeys(t, f)
	if len(active) != 3 || len(active["RS256"]) != 1 || len(active["ES256"]) != 1 || len(active["EdDSA"]) != 1 {
		t.Fatalf("active keys %v, want one of each algorithm", active)
	}
	set := jwksOf(t, m)
	if len(set.Keys) != 3 {
		t.Fatalf("JWKS has %d keys, want 3: %s", len(set.Keys), m.JWKS())
	}
	for _, alg := range []string{"", "RS256", "ES256", "EdDSA"} {
		want := cmp.Or(alg, "RS256")
		token, kid := signWithKeyOf(t, m, alg, `{"sub":"x"}`)
		if kid != active[want][0] {
			t.Errorf("%q signed by %s, want the %s key %s", alg, kid, want, active[want][0])
		}
		verify(t, set, want, token)
	}
	if m.SigningKeyID() != active["RS256"][0] {
		t.Errorf("the default signing key is %s, want the RS256 one", m.SigningKeyID())
	}

	again := f.multiManager(t, "RS256", apps)
	if got := activeKeys(t, f); !reflect.DeepEqual(got, active) || !bytes.Equal(again.JWKS(), m.JWKS()) {
		t.Fatalf("a second Load changed the keys: %v, want %v", got, active)
	}
}

// Rotation, asked for or on schedule, replaces the key of every algorithm
// in use at once, even one made later than the others; the old keys stay
// in JWKS, so tokens signed before still verify.
func TestKeyManagerRotatesEveryAlgorithm(t *testing.T) {
	f := newKeysFixture(t)
	ctx := context.Background()
	apps := &appAlgorithms{}
	apps.set("ES256")
	m := f.multiManager(t, "RS256", apps)
	before := map[string]string{}
	for _, alg := range []string{"RS256", "ES256"} {
		before[alg], _ = signWithKeyOf(t, m, alg, `{"sub":"before"}`)
	}
	old := activeKeys(t, f)

	f.clock.Add(time.Minute)
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	rotated := activeKeys(t, f)
	for _, alg := range []string{"RS256", "ES256"} {
		if len(rotated[alg]) != 1 || rotated[alg][0] == old[alg][0] {
			t.Errorf("%s: active %v after the rotation, before %v", alg, rotated[alg], old[alg])
		}
	}
	set := jwksOf(t, m)
	if len(set.Keys) != 4 {
		t.Fatalf("JWKS has %d keys after the rotation, want 4: %s", len(set.Keys), m.JWKS())
	}
	for alg, token := range before {
		verify(t, set, alg, token)
		after, kid := signWithKeyOf(t, m, alg, `{"sub":"after"}`)
		if kid != rotated[alg][0] {
			t.Errorf("%s signed by %s after the rotation, want %s", alg, kid, rotated[alg][0])
		}
		verify(t, set, alg, after)
	}

	// An app starts using EdDSA 20 days later; 10 days after that the
	// other keys are due, and the EdDSA key is rotated with them.
	f.clock.Add(20 * 24 * time.Hour)
	apps.set("ES256", "EdDSA")
	if err := m.EnsureAlgorithm(ctx, "EdDSA"); err != nil {
		t.Fatal(err)
	}
	eddsa := activeKeys(t, f)["EdDSA"]
	f.clock.Add(10 * 24 * time.Hour)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	due := activeKeys(t, f)
	rotated["EdDSA"] = eddsa
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		if len(due[alg]) != 1 || due[alg][0] == rotated[alg][0] {
			t.Errorf("%s: active %v after the scheduled rotation, before %v", alg, due[alg], rotated[alg])
		}
	}
}

// An algorithm no app uses any more: its key stops signing at the next
// Load but stays in JWKS (and discovery's list) until its last token can
// have expired, then leaves the store, JWKS and the list.
func TestKeyManagerRetiresUnusedAlgorithm(t *testing.T) {
	f := newKeysFixture(t)
	ctx := context.Background()
	apps := &appAlgorithms{}
	apps.set("ES256")
	m := f.multiManager(t, "RS256", apps)
	token, kid := signWithKeyOf(t, m, "ES256", `{"sub":"x"}`)

	apps.set()
	f.clock.Add(time.Minute)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if active := activeKeys(t, f); len(active) != 1 || len(active["RS256"]) != 1 {
		t.Fatalf("active keys %v, want the RS256 one alone", active)
	}
	set := jwksOf(t, m)
	if len(set.Keys) != 2 || len(set.Key(kid)) != 1 {
		t.Fatalf("JWKS %s, want the RS256 key and the retired ES256 %s", m.JWKS(), kid)
	}
	verify(t, set, "ES256", token)
	if got := m.SignatureAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256, jose.ES256}) {
		t.Errorf("algorithms %v while the ES256 key is published, want [RS256 ES256]", got)
	}

	// Keep is 2 h in the fixture.
	f.clock.Add(2*time.Hour + time.Second)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if set := jwksOf(t, m); len(set.Keys) != 1 || len(set.Key(kid)) != 0 {
		t.Fatalf("JWKS %s after the ES256 key's tokens expired", m.JWKS())
	}
	if got := m.SignatureAlgorithms(); !slices.Equal(got, []jose.SignatureAlgorithm{jose.RS256}) {
		t.Errorf("algorithms %v, want [RS256]", got)
	}
	if stored, _ := f.db.ListSigningKeys(ctx); len(stored) != 1 {
		t.Errorf("%d keys stored, want 1", len(stored))
	}
	// An app asks for ES256 again: a new key is made on demand.
	_, again := signWithKeyOf(t, m, "ES256", `{"sub":"y"}`)
	if again == kid || len(activeKeys(t, f)["ES256"]) != 1 {
		t.Errorf("ES256 signed by %s, the expired key was %s; active %v", again, kid, activeKeys(t, f))
	}
}

// Two processes on one store (replicas): an algorithm one of them made a
// key for is taken from the store by the other, which makes none; two
// that make one at the same moment both publish theirs until the next
// Load retires the older, which stays in JWKS. An unknown algorithm is
// refused and makes nothing.
func TestKeyManagerEnsureAlgorithmAcrossProcesses(t *testing.T) {
	f := newKeysFixture(t)
	ctx := context.Background()
	apps := &appAlgorithms{}
	a := f.multiManager(t, "RS256", apps)
	b := f.multiManager(t, "RS256", apps)

	apps.set("EdDSA")
	if err := a.EnsureAlgorithm(ctx, "EdDSA"); err != nil {
		t.Fatal(err)
	}
	made := activeKeys(t, f)["EdDSA"]
	token, kid := signWithKeyOf(t, b, "EdDSA", `{"sub":"x"}`) // b has not heard of it
	if len(made) != 1 || kid != made[0] || len(activeKeys(t, f)["EdDSA"]) != 1 {
		t.Fatalf("b signed with %s; EdDSA keys %v, made by a %v", kid, activeKeys(t, f)["EdDSA"], made)
	}
	verify(t, jwksOf(t, a), "EdDSA", token)

	// Both make an ES256 key before either sees the other's.
	apps.set("EdDSA", "ES256")
	for _, m := range []*KeyManager{a, b} {
		k, err := m.generate(jose.ES256, f.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if err := f.db.PutSigningKey(ctx, k); err != nil {
			t.Fatal(err)
		}
		f.clock.Add(time.Second)
	}
	if err := a.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	twins := activeKeys(t, f)["ES256"]
	published := jwksOf(t, a)
	if len(twins) != 2 || len(published.Key(twins[0])) != 1 || len(published.Key(twins[1])) != 1 {
		t.Fatalf("ES256 keys %v, JWKS %s", twins, a.JWKS())
	}
	f.clock.Add(time.Minute)
	if err := a.Load(ctx); err != nil {
		t.Fatal(err)
	}
	published = jwksOf(t, a)
	if got := activeKeys(t, f)["ES256"]; len(got) != 1 || got[0] != twins[1] || len(published.Key(twins[0])) != 1 {
		t.Fatalf("after Load: active ES256 %v, want the newer %s with the older still in JWKS %s", got, twins[1], a.JWKS())
	}

	for _, bad := range []string{"HS256", "none", "es256"} {
		if err := a.EnsureAlgorithm(ctx, bad); err == nil {
			t.Errorf("EnsureAlgorithm accepted %q", bad)
		}
	}
	if stored, _ := f.db.ListSigningKeys(ctx); len(stored) != 4 {
		t.Errorf("%d keys stored, want 4 (RS256, EdDSA, two ES256)", len(stored))
	}
}

// A retired key leaves JWKS once its tokens have expired (keep), but
// stays for Keyport's own checks (KeySet: expired id_token_hints) until
// the hint retention after its retirement has passed, in the process
// that rotates and in a replica that only refreshes; then it is deleted.
func TestKeyManagerKeepsRetiredKeysForHints(t *testing.T) {
	f := newKeysFixture(t)
	ctx := context.Background()
	newManager := func() *KeyManager {
		m := NewKeyManager(f.db, f.sealer, 30*24*time.Hour, 2*time.Hour, f.clock.Now, nil)
		m.SetHintRetention(48 * time.Hour)
		return m
	}
	m := newManager()
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	oldKid := m.SigningKeyID()
	if err := m.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	replica := newManager()
	verifiesWith := func(m *KeyManager) []string {
		st, err := m.current()
		if err != nil {
			t.Fatal(err)
		}
		var kids []string
		for _, k := range st.public {
			kids = append(kids, k.ID())
		}
		return kids
	}
	check := func(what string, inJWKS, verifies, stored bool) {
		t.Helper()
		if err := m.Load(ctx); err != nil {
			t.Fatal(err)
		}
		if err := replica.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		for name, km := range map[string]*KeyManager{"rotating process": m, "replica": replica} {
			set := jwksOf(t, km)
			if got := len(set.Key(oldKid)) == 1; got != inJWKS {
				t.Errorf("%s, %s: old key in JWKS %v, want %v", what, name, got, inJWKS)
			}
			if got := slices.Contains(verifiesWith(km), oldKid); got != verifies {
				t.Errorf("%s, %s: old key verifies %v, want %v", what, name, got, verifies)
			}
		}
		keys, _ := f.db.ListSigningKeys(ctx)
		if got := slices.ContainsFunc(keys, func(k storage.SigningKey) bool { return k.ID == oldKid }); got != stored {
			t.Errorf("%s: old key stored %v, want %v", what, got, stored)
		}
	}
	check("just rotated", true, true, true)
	// The retired key keeps its public half only; one retired by an older
	// version with its private half loses it at the next load.
	keys, _ := f.db.ListSigningKeys(ctx)
	for _, k := range keys {
		if !k.RetiredAt.IsZero() {
			k.SealedKey = []byte("sealed by an older version")
			if err := f.db.PutSigningKey(ctx, k); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ = f.db.ListSigningKeys(ctx)
	for _, k := range keys {
		if retired := !k.RetiredAt.IsZero(); retired != (len(k.SealedKey) == 0) {
			t.Errorf("key %s (retired %v) keeps %d bytes of its sealed private half", k.ID, retired, len(k.SealedKey))
		}
	}
	f.clock.Add(2*time.Hour + time.Second)
	check("its tokens expired", false, true, true)
	f.clock.Add(46 * time.Hour)
	check("the hint retention passed", false, false, false)
}
