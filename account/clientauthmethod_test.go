package account_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// keySet is the JWK Set of keys, as an app would give it.
func keySet(t *testing.T, keys ...any) json.RawMessage {
	t.Helper()
	var set jose.JSONWebKeySet
	for i, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: string(rune('a' + i))})
	}
	raw, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestClientAuthMethodRules(t *testing.T) {
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ec384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	ed, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	small, _ := rsa.GenerateKey(rand.Reader, 1024)
	good := keySet(t, &ec.PublicKey, ed)
	machine := []string{account.GrantClientCredentials}
	long := strings.Repeat("s", account.MinHMACSecretLength)
	for _, tc := range []struct {
		name  string
		n     account.NewClient
		field string // "" for accepted
	}{
		{"private_key_jwt inline", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: good}, ""},
		{"private_key_jwt by URI", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: "https://app.example/jwks"}, ""},
		{"client_secret_jwt", account.NewClient{TokenEndpointAuthMethod: account.AuthClientSecretJWT, Secret: long}, ""},
		{"client_secret_post", account.NewClient{TokenEndpointAuthMethod: account.AuthClientSecretPost}, ""},
		{"none for public", account.NewClient{TokenEndpointAuthMethod: account.AuthNone, Public: true, GrantTypes: []string{account.GrantAuthorizationCode},
			RedirectURIs: []string{"https://spa.example/cb"}}, ""},
		{"unknown method", account.NewClient{TokenEndpointAuthMethod: "tls_client_auth"}, "token_endpoint_auth_method"},
		{"none for confidential", account.NewClient{TokenEndpointAuthMethod: account.AuthNone}, "token_endpoint_auth_method"},
		{"public with a JWT method", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: good, Public: true,
			GrantTypes: []string{account.GrantAuthorizationCode}, RedirectURIs: []string{"https://spa.example/cb"}}, "token_endpoint_auth_method"},
		{"private_key_jwt without keys", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT}, "jwks"},
		{"both jwks and jwks_uri", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: good, JWKSURI: "https://app.example/jwks"}, "jwks"},
		{"a private key", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: keySet(t, edPriv)}, "jwks"},
		{"RSA 1024", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: keySet(t, &small.PublicKey)}, "jwks"},
		{"P-384", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: keySet(t, &ec384.PublicKey)}, "jwks"},
		{"not a key set", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: json.RawMessage(`{"keys":"no"}`)}, "jwks"},
		{"empty key set", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKS: json.RawMessage(`{"keys":[]}`)}, "jwks"},
		{"too many keys", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT,
			JWKS: keySet(t, ed, ed, ed, ed, ed, ed, ed, ed, ed, ed, ed)}, "jwks"},
		{"jwks_uri not a URL", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: "/jwks"}, "jwks_uri"},
		{"jwks_uri with user info", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: "https://u:p@app.example/jwks"}, "jwks_uri"},
		{"jwks_uri over plain http", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: "http://app.example/jwks"}, "jwks_uri"},
		{"jwks_uri over http on loopback", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: "http://127.0.0.1:8081/jwks"}, ""},
		{"jwks_uri file", account.NewClient{TokenEndpointAuthMethod: account.AuthPrivateKeyJWT, JWKSURI: "file:///etc/passwd"}, "jwks_uri"},
		{"client_secret_jwt short secret", account.NewClient{TokenEndpointAuthMethod: account.AuthClientSecretJWT, Secret: strings.Repeat("s", 20)}, "secret"},
		// Signed request objects (RFC 9101) need keys to be signed with.
		{"require_signed_request_object with jwks", account.NewClient{JWKS: good, RequireSignedRequestObject: true}, ""},
		{"require_signed_request_object with jwks_uri", account.NewClient{JWKSURI: "https://app.example/jwks", RequireSignedRequestObject: true}, ""},
		{"require_signed_request_object with client_secret_jwt", account.NewClient{TokenEndpointAuthMethod: account.AuthClientSecretJWT, Secret: long,
			RequireSignedRequestObject: true}, ""},
		{"require_signed_request_object without keys", account.NewClient{RequireSignedRequestObject: true}, "require_signed_request_object"},
	} {
		tc.n.ID = "app"
		if tc.n.GrantTypes == nil {
			tc.n.GrantTypes = machine
		}
		_, _, err := account.BuildClient(tc.n)
		switch {
		case tc.field == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.field != "" && account.ErrorField(err) != tc.field:
			t.Errorf("%s: error %v (field %q), want one for %q", tc.name, err, account.ErrorField(err), tc.field)
		}
	}
}

func TestClientSecretJWTSecretSealed(t *testing.T) {
	f := newClientFixture(t)
	ctx := t.Context()
	// Registered for client_secret_jwt: the secret is kept sealed.
	c, secret, err := f.svc.Clients.RegisterClient(ctx, adminActor, account.NewClient{ID: "hs", GrantTypes: []string{account.GrantClientCredentials},
		TokenEndpointAuthMethod: account.AuthClientSecretJWT})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.SealedSecret) == 0 || strings.Contains(string(c.SealedSecret), secret) {
		t.Fatalf("sealed secret %q", c.SealedSecret)
	}
	// The wiki, a secret app, keeps only the hash.
	if w, _ := f.stored(t); len(w.SealedSecret) != 0 {
		t.Fatal("a client_secret_basic app's secret is kept sealed")
	}
	// Moved to client_secret_jwt, the wiki has no secret for it until the
	// secret is rotated; then it does.
	w, _, err := f.svc.Clients.UpdateClient(ctx, adminActor, "wiki", "", account.ClientPatch{TokenEndpointAuthMethod: ptr(account.AuthClientSecretJWT)})
	if err != nil || len(w.SealedSecret) != 0 {
		t.Fatalf("moved to client_secret_jwt: %v, sealed %q", err, w.SealedSecret)
	}
	if _, err := f.svc.Clients.RotateSecret(ctx, adminActor, "wiki", 0, false); err != nil {
		t.Fatal(err)
	}
	if w, _ = f.stored(t); len(w.SealedSecret) == 0 {
		t.Fatal("rotation of a client_secret_jwt app kept no sealed secret")
	}
	// Moved to private_key_jwt, the sealed copy goes.
	set := json.RawMessage(`{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]}`)
	w, _, err = f.svc.Clients.UpdateClient(ctx, adminActor, "wiki", "", account.ClientPatch{TokenEndpointAuthMethod: ptr(account.AuthPrivateKeyJWT), JWKS: &set})
	if err != nil || len(w.SealedSecret) != 0 || w.TokenEndpointAuthMethod != account.AuthPrivateKeyJWT || len(w.JWKS) == 0 {
		t.Fatalf("moved to private_key_jwt: %v, %+v", err, w)
	}
	evs := f.events(t, account.AuditClientUpdated)
	raw, _ := json.Marshal(evs)
	if !strings.Contains(string(raw), "token_endpoint_auth_method") || strings.Contains(string(raw), "sealed") {
		t.Fatalf("audit of the method change: %s", raw)
	}
	// Made public, the app's method goes back to the default.
	w, _, err = f.svc.Clients.UpdateClient(ctx, adminActor, "wiki", "", account.ClientPatch{Public: ptr(true)})
	if err != nil || w.TokenEndpointAuthMethod != "" {
		t.Fatalf("made public: %v, method %q", err, w.TokenEndpointAuthMethod)
	}
}

// An app stored with a jwks_uri over http, from before the https rule,
// stays editable: the rule applies to a new or changed URI, as stored
// redirect URIs are kept (normalizeClient).
func TestStoredHTTPJWKSURIStaysEditable(t *testing.T) {
	f := newClientFixture(t)
	if _, err := f.db.UpdateClient(t.Context(), "wiki", func(c storage.Client) (storage.Client, error) {
		c.TokenEndpointAuthMethod, c.JWKSURI = account.AuthPrivateKeyJWT, "http://keys.example.com/jwks"
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	name := "Wiki renamed"
	if _, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", "", account.ClientPatch{Name: &name}); err != nil {
		t.Errorf("renaming an app whose stored jwks_uri uses http: %v", err)
	}
	other := "http://other.example.com/jwks"
	if _, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, "wiki", "", account.ClientPatch{JWKSURI: &other}); err == nil {
		t.Errorf("changing the jwks_uri to another http URL was accepted")
	}
}
