package provider

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/appdoc"
	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/webhook"
)

const assertionIssuer = logoutIssuer

// appKey is a private key of an app and the algorithm it signs with.
type appKey struct {
	alg jose.SignatureAlgorithm
	key crypto.Signer
	kid string
}

func newAppKey(t *testing.T, alg jose.SignatureAlgorithm, kid string) appKey {
	t.Helper()
	var k crypto.Signer
	var err error
	switch alg {
	case jose.RS256, jose.PS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, k, err = ed25519.GenerateKey(rand.Reader)
	}
	if err != nil {
		t.Fatal(err)
	}
	return appKey{alg: alg, key: k, kid: kid}
}

// jwks is the public JWK Set of keys.
func jwks(t *testing.T, keys ...appKey) json.RawMessage {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.kid, Use: "sig"})
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// assertionFixture is a provider on a real bolt store with apps for each
// method: "pk" (private_key_jwt, inline keys), "hs" (client_secret_jwt),
// "sec" (a secret).
type assertionFixture struct {
	t      *testing.T
	p      *Provider
	db     *bolt.DB
	clock  *testclock.Clock
	sealer *seal.Sealer
	pk     appKey
	hsKey  string
	secret string
}

func newAssertionFixture(t *testing.T, guard *webhook.Guard) *assertionFixture {
	t.Helper()
	ctx := context.Background()
	clock := testclock.At(time.Now().Truncate(time.Second))
	db, err := bolt.Open(filepath.Join(t.TempDir(), "a.db"), bolt.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	sealer, err := seal.New(bytes.Repeat([]byte{3}, 32))
	if err != nil {
		t.Fatal(err)
	}
	f := &assertionFixture{t: t, db: db, clock: clock, sealer: sealer, pk: newAppKey(t, jose.ES256, "k1"),
		hsKey: strings.Repeat("h", 40), secret: "a-secret-of-thirty-two-characters"}
	machine := []string{account.GrantClientCredentials}
	f.register(account.NewClient{ID: "pk", GrantTypes: machine, TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: jwks(t, f.pk)}, "")
	f.register(account.NewClient{ID: "hs", GrantTypes: machine, TokenEndpointAuthMethod: account.AuthClientSecretJWT}, f.hsKey)
	f.register(account.NewClient{ID: "sec", GrantTypes: machine}, f.secret)
	keys := NewKeyManager(db, sealer, 30*24*time.Hour, 2*time.Hour, clock.Now, nil)
	if err := keys.Load(ctx); err != nil {
		t.Fatal(err)
	}
	f.p, err = New(Options{Subjects: testSubjects(t), Issuer: assertionIssuer, Store: db, Keys: keys, Logger: slog.New(slog.DiscardHandler), Now: clock.Now,
		Lifetimes: Lifetimes{Access: time.Hour, ID: time.Hour, Code: time.Minute, Refresh: time.Hour, RefreshIdle: time.Hour, AuthRequest: time.Minute},
		Web:       logoutWeb(t), SignOut: logoutSignOut{&logoutFixture{}}, LoggedOutURL: assertionIssuer + "/logged-out",
		ClientAssertions: ClientAssertionOptions{Sealer: sealer, JWKSGuard: guard}})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// register stores app n with secret ("" generates one), sealed as the
// account service does.
func (f *assertionFixture) register(n account.NewClient, secret string) {
	f.t.Helper()
	n.Secret = secret
	c, plain, err := account.BuildClient(n)
	if err != nil {
		f.t.Fatalf("build %s: %v", n.ID, err)
	}
	account.SealClientSecret(f.sealer, &c, plain)
	c.CreatedAt = f.clock.Now()
	if err := f.db.CreateClient(context.Background(), c); err != nil {
		f.t.Fatal(err)
	}
}

// claims are an assertion's claims for client id at the token endpoint,
// valid for a minute.
func (f *assertionFixture) claims(id string) map[string]any {
	now := f.clock.Now()
	return map[string]any{"iss": id, "sub": id, "aud": assertionIssuer + "/oauth/token", "exp": now.Add(time.Minute).Unix(),
		"iat": now.Unix(), "jti": account.NewID()}
}

// sign signs claims with k.
func signAs(t *testing.T, k appKey, claims map[string]any) string {
	t.Helper()
	return signWith(t, jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.key, KeyID: k.kid}}, claims)
}

// signHS signs claims with HS256 under secret.
func signHS(t *testing.T, secret string, claims map[string]any) string {
	t.Helper()
	return signWith(t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte(secret)}, claims)
}

func signWith(t *testing.T, key jose.SigningKey, claims map[string]any) string {
	t.Helper()
	signer, err := jose.NewSigner(key, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// post sends form to path, with HTTP Basic when basic is set.
func (f *assertionFixture) post(path string, form url.Values, basic ...string) *httptest.ResponseRecorder {
	f.t.Helper()
	r := httptest.NewRequest(http.MethodPost, assertionIssuer+path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		r.SetBasicAuth(basic[0], basic[1])
	}
	w := httptest.NewRecorder()
	f.p.ServeHTTP(w, r)
	return w
}

// machineToken asks for a client_credentials token with assertion.
func (f *assertionFixture) machineToken(assertion string) *httptest.ResponseRecorder {
	f.t.Helper()
	return f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"},
		"client_assertion_type": {ClientAssertionType}, "client_assertion": {assertion}})
}

// wantToken checks that w issued an access token.
func wantToken(t *testing.T, what string, w *httptest.ResponseRecorder) string {
	t.Helper()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.AccessToken == "" {
		t.Fatalf("%s: %d %s", what, w.Code, w.Body)
	}
	return body.AccessToken
}

// wantInvalidClient checks that w refused the client with 401
// invalid_client, its description containing why.
func wantInvalidClient(t *testing.T, what string, w *httptest.ResponseRecorder, why string) {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	if w.Code != http.StatusUnauthorized || json.Unmarshal(w.Body.Bytes(), &body) != nil || body.Error != "invalid_client" {
		t.Errorf("%s: %d %s, want 401 invalid_client", what, w.Code, w.Body)
		return
	}
	if !strings.Contains(body.Description, why) {
		t.Errorf("%s: description %q, want it to say %q", what, body.Description, why)
	}
}

func TestPrivateKeyJWTEveryAlgorithm(t *testing.T) {
	f := newAssertionFixture(t, nil)
	for _, alg := range AssertionAlgorithms {
		k := newAppKey(t, alg, "key-"+string(alg))
		f.register(account.NewClient{ID: "app-" + string(alg), GrantTypes: []string{account.GrantClientCredentials},
			TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: jwks(t, k)}, "")
		wantToken(t, string(alg), f.machineToken(signAs(t, k, f.claims("app-"+string(alg)))))
	}
}

func TestClientAssertionAudienceForms(t *testing.T) {
	f := newAssertionFixture(t, nil)
	for _, aud := range []any{assertionIssuer, assertionIssuer + "/oauth/token", []string{"https://elsewhere.example", assertionIssuer}} {
		c := f.claims("pk")
		c["aud"] = aud
		wantToken(t, "aud "+toJSON(aud), f.machineToken(signAs(t, f.pk, c)))
	}
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestClientSecretJWT(t *testing.T) {
	f := newAssertionFixture(t, nil)
	wantToken(t, "client_secret_jwt", f.machineToken(signHS(t, f.hsKey, f.claims("hs"))))
	wantInvalidClient(t, "HS256 with another secret", f.machineToken(signHS(t, strings.Repeat("x", 40), f.claims("hs"))), "does not verify")
	// The secret is sealed in the record, never there in the clear.
	c, err := f.db.GetClient(context.Background(), "hs")
	if err != nil || len(c.SealedSecret) == 0 || bytes.Contains(c.SealedSecret, []byte(f.hsKey)) {
		t.Fatalf("stored secret of a client_secret_jwt app: %q (%v)", c.SealedSecret, err)
	}
	// Sealed under another key (secret.key replaced): refused, not a 5xx.
	other, _ := seal.New(bytes.Repeat([]byte{9}, 32))
	c.ID = "hs2"
	c.SealedSecret = other.Seal([]byte(f.hsKey), account.ClientSecretSealPurpose("hs2"))
	if err := f.db.CreateClient(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	wantInvalidClient(t, "sealed under another key", f.machineToken(signHS(t, f.hsKey, f.claims("hs2"))), "no secret for client_secret_jwt")
}

func TestClientAssertionRefusals(t *testing.T) {
	f := newAssertionFixture(t, nil)
	other := newAppKey(t, jose.ES256, "k1")
	with := func(change func(map[string]any)) map[string]any {
		c := f.claims("pk")
		change(c)
		return c
	}
	big := f.claims("pk")
	big["pad"] = strings.Repeat("x", maxAssertionBytes)
	for _, tc := range []struct {
		name, assertion, why string
	}{
		{"wrong key", signAs(t, other, f.claims("pk")), "does not verify"},
		{"unknown kid", signAs(t, appKey{alg: jose.ES256, key: other.key, kid: "k9"}, f.claims("pk")), "does not verify"},
		{"wrong aud", signAs(t, f.pk, with(func(c map[string]any) { c["aud"] = "https://other.example.com" })), "aud must be"},
		{"aud of another endpoint", signAs(t, f.pk, with(func(c map[string]any) { c["aud"] = assertionIssuer + "/revoke" })), "aud must be"},
		{"sub not the client", signAs(t, f.pk, with(func(c map[string]any) { c["sub"] = "someone" })), "sub must be the client_id"},
		{"iss another client", signAs(t, f.pk, with(func(c map[string]any) { c["iss"] = "hs" })), "registered for client_secret_jwt"},
		{"iss unknown", signAs(t, f.pk, with(func(c map[string]any) { c["iss"], c["sub"] = "nobody", "nobody" })), "unknown client"},
		{"expired", signAs(t, f.pk, with(func(c map[string]any) { c["exp"] = f.clock.Now().Add(-time.Minute).Unix() })), "expired"},
		{"exp too far", signAs(t, f.pk, with(func(c map[string]any) { c["exp"] = f.clock.Now().Add(time.Hour).Unix() })), "more than"},
		{"no exp", signAs(t, f.pk, with(func(c map[string]any) { delete(c, "exp") })), "exp is missing"},
		{"nbf ahead", signAs(t, f.pk, with(func(c map[string]any) { c["nbf"] = f.clock.Now().Add(5 * time.Minute).Unix() })), "not valid yet"},
		{"no jti", signAs(t, f.pk, with(func(c map[string]any) { delete(c, "jti") })), "jti is missing"},
		{"long jti", signAs(t, f.pk, with(func(c map[string]any) { c["jti"] = strings.Repeat("j", maxJTIBytes+1) })), "jti is longer"},
		{"HS256 for a private_key_jwt app", signHS(t, f.hsKey, f.claims("pk")), "registered for private_key_jwt"},
		{"assertion of a secret app", signHS(t, f.secret+f.secret, f.claims("sec")), "not registered for private_key_jwt or client_secret_jwt"},
		{"oversized", signAs(t, f.pk, big), "longer than"},
		{"not a JWT", "not.a.jwt", "not a JWT"},
		{"unsigned", "eyJhbGciOiJub25lIn0.eyJpc3MiOiJwayJ9.", "not a JWT"},
		// Request objects (RFC 9101) cross the browser: one with sub, jti
		// and exp is still no client assertion.
		{"a request object's claims", signAs(t, f.pk, with(func(c map[string]any) { c["response_type"], c["redirect_uri"] = "code", "https://app.example.com/cb" })), "a request object is no client assertion"},
		{"typed as a request object", func() string {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: f.pk.alg, Key: jose.JSONWebKey{Key: f.pk.key, KeyID: f.pk.kid}}, (&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"))
			if err != nil {
				t.Fatal(err)
			}
			payload, _ := json.Marshal(f.claims("pk"))
			jws, err := signer.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			out, _ := jws.CompactSerialize()
			return out
		}(), "typed as a request object"},
	} {
		wantInvalidClient(t, tc.name, f.machineToken(tc.assertion), tc.why)
	}
	good := signAs(t, f.pk, f.claims("pk"))
	wrongType := f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {"urn:x"}, "client_assertion": {good}})
	wantInvalidClient(t, "wrong client_assertion_type", wrongType, "client_assertion_type must be")
	noAssertion := f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType}})
	wantInvalidClient(t, "type without assertion", noAssertion, "client_assertion is missing")
	otherID := f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {"hs"},
		"client_assertion_type": {ClientAssertionType}, "client_assertion": {good}})
	wantInvalidClient(t, "client_id not the iss", otherID, "client_id is not")
	// None of the refusals spent the good assertion.
	wantToken(t, "the good assertion after the refusals", f.machineToken(good))
}

func TestClientAssertionReplay(t *testing.T) {
	f := newAssertionFixture(t, nil)
	claims := f.claims("pk")
	a := signAs(t, f.pk, claims)
	wantToken(t, "first use", f.machineToken(a))
	wantInvalidClient(t, "replay", f.machineToken(a), "jti was used already")
	// Another assertion with the same jti is a replay too: the jti is
	// what is recorded.
	claims["iat"] = f.clock.Now().Unix() + 1
	wantInvalidClient(t, "same jti, new signature", f.machineToken(signAs(t, f.pk, claims)), "jti was used already")
	// The same jti of another app is that app's own.
	hs := f.claims("hs")
	hs["jti"] = claims["jti"]
	wantToken(t, "same jti, other app", f.machineToken(signHS(t, f.hsKey, hs)))

	// A second provider on the same store (a replica) refuses it too.
	second, err := New(Options{Subjects: testSubjects(t), Issuer: assertionIssuer, Store: f.db, Keys: f.p.opts.Keys, Logger: slog.New(slog.DiscardHandler), Now: f.clock.Now,
		Web: logoutWeb(t), SignOut: logoutSignOut{&logoutFixture{}}, ClientAssertions: ClientAssertionOptions{Sealer: f.sealer}})
	if err != nil {
		t.Fatal(err)
	}
	fresh := signAs(t, f.pk, f.claims("pk"))
	wantToken(t, "on the first replica", f.machineToken(fresh))
	f2 := *f
	f2.p = second
	wantInvalidClient(t, "replayed on the second replica", f2.machineToken(fresh), "jti was used already")
}

func TestClientAuthMethodEnforced(t *testing.T) {
	f := newAssertionFixture(t, nil)
	// A private_key_jwt app's secret (it has one, generated and never
	// shown) does not stand in for its assertion; nor does a
	// client_secret_jwt app's secret.
	for _, id := range []string{"pk", "hs"} {
		secret := f.hsKey
		if id == "pk" {
			secret = "whatever-it-may-be-of-32-characters"
		}
		w := f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, id, secret)
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s with a secret by Basic: %d %s", id, w.Code, w.Body)
		}
		w = f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
		if w.Code != http.StatusUnauthorized {
			t.Errorf("%s with a secret in the form: %d %s", id, w.Code, w.Body)
		}
	}
	// The client_secret_jwt app's real secret, sent as a secret: refused.
	if w := f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "hs", f.hsKey); w.Code != http.StatusUnauthorized {
		t.Errorf("client_secret_jwt app sending its secret: %d %s", w.Code, w.Body)
	}
	// The secret app still authenticates with its secret.
	wantToken(t, "secret app", f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}}, "sec", f.secret))
	// An assertion and Basic at once: two methods.
	w := f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType},
		"client_assertion": {signAs(t, f.pk, f.claims("pk"))}}, "sec", f.secret)
	if w.Code != http.StatusBadRequest {
		t.Errorf("assertion and Basic: %d %s", w.Code, w.Body)
	}
	w = f.post("/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType},
		"client_assertion": {signAs(t, f.pk, f.claims("pk"))}, "client_secret": {"whatever-it-may-be-of-32-characters"}})
	if w.Code != http.StatusBadRequest {
		t.Errorf("assertion and client_secret: %d %s", w.Code, w.Body)
	}
}

func TestClientAssertionAtIntrospectionAndRevocation(t *testing.T) {
	f := newAssertionFixture(t, nil)
	token := wantToken(t, "token", f.machineToken(signAs(t, f.pk, f.claims("pk"))))
	at := func(path string) url.Values {
		c := f.claims("pk")
		c["aud"] = assertionIssuer + path
		return url.Values{"token": {token}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {signAs(t, f.pk, c)}}
	}
	w := f.post("/oauth/introspect", at("/oauth/introspect"))
	var intro struct {
		Active   bool   `json:"active"`
		ClientID string `json:"client_id"`
	}
	if w.Code != http.StatusOK || json.Unmarshal(w.Body.Bytes(), &intro) != nil || !intro.Active || intro.ClientID != "pk" {
		t.Fatalf("introspection with an assertion: %d %s", w.Code, w.Body)
	}
	bad := at("/oauth/introspect")
	bad.Set("client_assertion", signAs(t, newAppKey(t, jose.ES256, "k1"), f.claims("pk")))
	wantInvalidClient(t, "introspection, wrong key", f.post("/oauth/introspect", bad), "does not verify")

	if w := f.post("/revoke", at("/revoke")); w.Code != http.StatusOK {
		t.Fatalf("revocation with an assertion: %d %s", w.Code, w.Body)
	}
	w = f.post("/oauth/introspect", at("/oauth/introspect"))
	if json.Unmarshal(w.Body.Bytes(), &intro) != nil || intro.Active {
		t.Fatalf("the revoked token is still active: %s", w.Body)
	}
}

// TestAuthenticateClient is the check a handler outside zitadel (PAR)
// calls: each method, and the refusals.
func TestAuthenticateClient(t *testing.T) {
	f := newAssertionFixture(t, nil)
	f.register(account.NewClient{ID: "spa", Public: true, RedirectURIs: []string{"https://spa.example.com/cb"}}, "")
	req := func(form url.Values, basic ...string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, assertionIssuer+"/par", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if len(basic) == 2 {
			r.SetBasicAuth(basic[0], basic[1])
		}
		if err := r.ParseForm(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	claims := f.claims("pk")
	claims["aud"] = assertionIssuer + "/par"
	for _, tc := range []struct {
		name string
		r    *http.Request
		want string // client ID, "" for a refusal
	}{
		{"private_key_jwt", req(url.Values{"client_assertion_type": {ClientAssertionType}, "client_assertion": {signAs(t, f.pk, claims)}}), "pk"},
		{"private_key_jwt replayed", req(url.Values{"client_assertion_type": {ClientAssertionType}, "client_assertion": {signAs(t, f.pk, claims)}}), ""},
		{"secret by Basic", req(url.Values{}, "sec", f.secret), "sec"},
		{"secret in the form", req(url.Values{"client_id": {"sec"}, "client_secret": {f.secret}}), "sec"},
		{"wrong secret", req(url.Values{"client_id": {"sec"}, "client_secret": {"wrong-secret-of-enough-length"}}), ""},
		{"secret of an assertion app", req(url.Values{}, "hs", f.hsKey), ""},
		{"public client by its ID", req(url.Values{"client_id": {"spa"}}), "spa"},
		{"confidential client by its ID alone", req(url.Values{"client_id": {"sec"}}), ""},
	} {
		c, err := f.p.AuthenticateClient(tc.r, "/par")
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("%s: authenticated %q", tc.name, c.ID)
		case tc.want != "" && (err != nil || c.ID != tc.want):
			t.Errorf("%s: %q, %v; want %q", tc.name, c.ID, err, tc.want)
		}
	}
}

func TestClientAuthDiscovery(t *testing.T) {
	f := newAssertionFixture(t, nil)
	r := httptest.NewRequest(http.MethodGet, assertionIssuer+"/.well-known/openid-configuration", nil)
	w := httptest.NewRecorder()
	f.p.ServeHTTP(w, r)
	var d map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	list := func(k string) []string {
		var out []string
		for _, v := range d[k].([]any) {
			out = append(out, v.(string))
		}
		slices.Sort(out)
		return out
	}
	algs := []string{"ES256", "EdDSA", "HS256", "PS256", "RS256"}
	for k, want := range map[string][]string{
		"token_endpoint_auth_methods_supported":                    {"client_secret_basic", "client_secret_jwt", "client_secret_post", "none", "private_key_jwt"},
		"introspection_endpoint_auth_methods_supported":            {"client_secret_basic", "client_secret_jwt", "client_secret_post", "private_key_jwt"},
		"revocation_endpoint_auth_methods_supported":               {"client_secret_basic", "client_secret_jwt", "client_secret_post", "none", "private_key_jwt"},
		"token_endpoint_auth_signing_alg_values_supported":         algs,
		"introspection_endpoint_auth_signing_alg_values_supported": algs,
		"revocation_endpoint_auth_signing_alg_values_supported":    algs,
	} {
		if got := list(k); !slices.Equal(got, want) {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// jwksServer serves the public keys of an app, counting the requests.
type jwksServer struct {
	*httptest.Server
	keys  atomic.Pointer[json.RawMessage]
	calls atomic.Int32
}

func newJWKSServer(t *testing.T, keys json.RawMessage) *jwksServer {
	s := &jwksServer{}
	s.keys.Store(&keys)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=600")
		_, _ = w.Write(*s.keys.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func loopbackGuard(t *testing.T) *webhook.Guard {
	g, err := webhook.NewGuard([]string{"127.0.0.0/8", "::1/128"})
	if err != nil {
		t.Fatal(err)
	}
	return g
}

func TestPrivateKeyJWTFromJWKSURI(t *testing.T) {
	f := newAssertionFixture(t, loopbackGuard(t))
	k1 := newAppKey(t, jose.RS256, "r1")
	srv := newJWKSServer(t, jwks(t, k1))
	f.register(account.NewClient{ID: "remote", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: srv.URL + "/jwks"}, "")
	wantToken(t, "first", f.machineToken(signAs(t, k1, f.claims("remote"))))
	wantToken(t, "second", f.machineToken(signAs(t, k1, f.claims("remote"))))
	if n := srv.calls.Load(); n != 1 {
		t.Fatalf("fetched the keys %d times for two assertions, want once (cached)", n)
	}
	// The app rotates: an assertion with the new kid fetches the set again.
	k2 := newAppKey(t, jose.ES256, "e2")
	both := jwks(t, k1, k2)
	srv.keys.Store(&both)
	f.clock.Add(appdoc.RefetchInterval) // the first fetch was just now
	wantToken(t, "after the app's rotation", f.machineToken(signAs(t, k2, f.claims("remote"))))
	if n := srv.calls.Load(); n != 2 {
		t.Fatalf("fetched %d times, want 2 (a refetch for the new kid)", n)
	}
	// Made-up kids do not make Keyport fetch again and again.
	for i := range 5 {
		wantInvalidClient(t, "made-up kid", f.machineToken(signAs(t, appKey{alg: jose.ES256, key: k2.key, kid: "x" + string(rune('a'+i))}, f.claims("remote"))), "does not verify")
	}
	if n := srv.calls.Load(); n != 2 {
		t.Fatalf("fetched %d times after made-up kids, want still 2 (at most one refetch every %s)", n, appdoc.RefetchInterval)
	}
	// Past the cache's age, the set is fetched again.
	f.clock.Add(11 * time.Minute)
	wantToken(t, "after max-age", f.machineToken(signAs(t, k1, f.claims("remote"))))
	if n := srv.calls.Load(); n != 3 {
		t.Fatalf("fetched %d times after max-age, want 3", n)
	}
}

func TestJWKSURIUnreachableOrRefused(t *testing.T) {
	k := newAppKey(t, jose.ES256, "k")
	srv := newJWKSServer(t, jwks(t, k))
	// Without the setting, a loopback jwks_uri is refused before any
	// connection is made.
	f := newAssertionFixture(t, nil)
	f.register(account.NewClient{ID: "local", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: srv.URL + "/jwks"}, "")
	wantInvalidClient(t, "loopback jwks_uri without the setting", f.machineToken(signAs(t, k, f.claims("local"))), "cannot be fetched")
	if n := srv.calls.Load(); n != 0 {
		t.Fatalf("the guard let %d requests through to loopback", n)
	}
	// Allowed but down: invalid_client, not a 5xx.
	g := newAssertionFixture(t, loopbackGuard(t))
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	g.register(account.NewClient{ID: "down", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: downURL + "/jwks"}, "")
	wantInvalidClient(t, "jwks_uri unreachable", g.machineToken(signAs(t, k, g.claims("down"))), "cannot be fetched")
	// An answer too large, or not a key set: refused too.
	huge := newJWKSServer(t, json.RawMessage(`{"keys":[],"pad":"`+strings.Repeat("x", appdoc.MaxJWKSBytes)+`"}`))
	g.register(account.NewClient{ID: "huge", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: huge.URL}, "")
	wantInvalidClient(t, "jwks_uri answer too large", g.machineToken(signAs(t, k, g.claims("huge"))), "cannot be fetched")
}

// The jti records are one-time tokens that expire with the assertion.
func TestClientAssertionReplayRecordExpires(t *testing.T) {
	f := newAssertionFixture(t, nil)
	claims := f.claims("pk")
	wantToken(t, "use", f.machineToken(signAs(t, f.pk, claims)))
	rec := account.HashSecret("pk\x00" + claims["jti"].(string))
	got, err := f.db.PeekOneTimeToken(context.Background(), rec, assertionReplayPurpose)
	if err != nil {
		t.Fatalf("no replay record: %v", err)
	}
	if want := time.Unix(claims["exp"].(int64), 0).Add(assertionSkew); !got.ExpiresAt.Equal(want) {
		t.Errorf("record expires %s, want %s", got.ExpiresAt, want)
	}
	if _, err := f.db.PeekOneTimeToken(context.Background(), rec, "setup"); err == nil {
		t.Error("the record is found under another purpose")
	}
}

// A caller that goes away while its assertion's jwks_uri is being fetched
// must not lock the app out: the fetch is the app's, not the caller's, so
// its cancellation was remembered as the app's failure and every
// assertion of that app was refused for appdoc.RefetchInterval.
func TestJWKSFetchOutlivesTheCaller(t *testing.T) {
	f := newAssertionFixture(t, loopbackGuard(t))
	k := newAppKey(t, jose.ES256, "k")
	keys := jwks(t, k)
	arrived, release := make(chan struct{}, 1), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
			<-release // the first fetch answers only once its caller left
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(keys)
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		select {
		case <-release:
		default:
			close(release)
		}
	})
	f.register(account.NewClient{ID: "remote", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: srv.URL + "/jwks"}, "")

	// An anonymous caller names the app with a made-up assertion and
	// hangs up while Keyport fetches the app's keys.
	form := url.Values{"grant_type": {"client_credentials"}, "client_assertion_type": {ClientAssertionType},
		"client_assertion": {signAs(t, newAppKey(t, jose.ES256, "k"), f.claims("remote"))}}
	ctx, cancel := context.WithCancel(context.Background())
	r := httptest.NewRequestWithContext(ctx, http.MethodPost, assertionIssuer+"/oauth/token", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.p.ServeHTTP(httptest.NewRecorder(), r)
	}()
	<-arrived
	cancel()
	close(release)
	<-done

	// The app itself, a moment later, is not refused for it.
	wantToken(t, "the app after an anonymous caller hung up", f.machineToken(signAs(t, k, f.claims("remote"))))
}

// The token endpoint's URL is an audience every client-authenticated
// endpoint accepts: RFC 9126 §2 requires it at the pushed authorization
// request endpoint, and OpenID Connect Core §9 names it as the aud of
// client assertions, which relying parties then send to introspection and
// revocation too. Other endpoints' URLs stay refused at the token endpoint.
func TestClientAssertionTokenEndpointAudience(t *testing.T) {
	f := newAssertionFixture(t, nil)
	token := wantToken(t, "token", f.machineToken(signAs(t, f.pk, f.claims("pk"))))
	for _, path := range []string{"/oauth/introspect", "/revoke", parPath} {
		form := url.Values{"token": {token}, "client_assertion_type": {ClientAssertionType}, "client_assertion": {signAs(t, f.pk, f.claims("pk"))}}
		if path == parPath {
			form = url.Values{"response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {"https://pk.example/cb"},
				"client_assertion_type": {ClientAssertionType}, "client_assertion": {signAs(t, f.pk, f.claims("pk"))}}
		}
		w := f.post(path, form)
		if w.Code == http.StatusUnauthorized || strings.Contains(w.Body.String(), "invalid_client") {
			t.Errorf("%s with aud the token endpoint: %d %s", path, w.Code, w.Body)
		}
	}
}
