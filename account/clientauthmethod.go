package account

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/keyport/keyport/storage"
)

// How an app authenticates at the token, introspection and revocation
// endpoints: the values of RFC 7591's token_endpoint_auth_method that
// Keyport serves (storage.Client.TokenEndpointAuthMethod; "" is a secret
// by either transport, as before the setting existed).
const (
	AuthClientSecretBasic = "client_secret_basic"
	AuthClientSecretPost  = "client_secret_post"
	AuthClientSecretJWT   = "client_secret_jwt" // RFC 7523 §2.2, HMAC with the secret
	AuthPrivateKeyJWT     = "private_key_jwt"   // RFC 7523 §2.2, signed with the app's key
	AuthNone              = "none"              // public clients
)

// TokenEndpointAuthMethods lists the methods an app may be registered
// for, as discovery lists them.
var TokenEndpointAuthMethods = []string{AuthClientSecretBasic, AuthClientSecretPost, AuthClientSecretJWT, AuthPrivateKeyJWT, AuthNone}

// Bounds of an app's keys.
const (
	// MinHMACSecretLength is the shortest secret of a client_secret_jwt
	// app: an HS256 key must have at least 256 bits (RFC 7518 §3.2).
	MinHMACSecretLength = 32

	MaxClientJWKSBytes = 16 << 10
	MaxClientJWKSKeys  = 10
)

// ClientSecretSealPurpose is the purpose an app's secret is sealed for
// (seal.Sealer) when it authenticates with client_secret_jwt.
func ClientSecretSealPurpose(id string) string { return "client-secret:" + id }

// SealClientSecret keeps c's plain secret sealed when c authenticates
// with client_secret_jwt, whose HMAC is keyed with the secret itself and
// cannot be checked against its hash; for every other method it keeps
// nothing but the hash (and drops a sealed copy left from before).
func SealClientSecret(sealer Sealer, c *storage.Client, secret string) {
	c.SealedSecret = nil
	if c.TokenEndpointAuthMethod == AuthClientSecretJWT && secret != "" && sealer != nil {
		c.SealedSecret = sealer.Seal([]byte(secret), ClientSecretSealPurpose(c.ID))
	}
}

// UsesAssertion tells whether app c authenticates with a signed JWT
// (RFC 7523) rather than by sending its secret.
func UsesAssertion(c storage.Client) bool {
	return c.TokenEndpointAuthMethod == AuthClientSecretJWT || c.TokenEndpointAuthMethod == AuthPrivateKeyJWT
}

// checkClientAuth checks c's authentication method and keys, naming the
// field at fault: a method Keyport serves that fits the app (none exactly
// for public apps), keys for private_key_jwt (inline or by URI, never
// both), and only public keys Keyport can verify with.
func checkClientAuth(c *storage.Client, kept *storage.Client) *Error {
	m := c.TokenEndpointAuthMethod
	switch m {
	case "", AuthClientSecretBasic, AuthClientSecretPost, AuthClientSecretJWT, AuthPrivateKeyJWT:
		if c.Public && m != "" {
			return FieldErrorf("token_endpoint_auth_method", "A public client has no credentials: use none.")
		}
	case AuthNone:
		if !c.Public {
			return FieldErrorf("token_endpoint_auth_method", "none is for public clients only.")
		}
	default:
		return FieldErrorf("token_endpoint_auth_method", "Unknown method %q (use %s).", m, strings.Join(TokenEndpointAuthMethods, ", "))
	}
	if len(c.JWKS) > 0 && c.JWKSURI != "" {
		return FieldErrorf("jwks", "Give the app's keys inline (jwks) or by URL (jwks_uri), not both.")
	}
	if m == AuthPrivateKeyJWT && len(c.JWKS) == 0 && c.JWKSURI == "" {
		return FieldErrorf("jwks", "private_key_jwt needs the app's public keys: jwks or jwks_uri.")
	}
	if len(c.JWKS) > 0 {
		compact, err := checkClientJWKS(c.JWKS)
		if err != nil {
			return err
		}
		c.JWKS = compact
	}
	if c.JWKSURI != "" {
		// An app stored before jwks_uri had to use https keeps its URI
		// through edits of anything else, as redirect URIs are kept.
		if err := checkJWKSURI(c.JWKSURI, kept != nil && kept.JWKSURI == c.JWKSURI); err != nil {
			return err
		}
	}
	return nil
}

// checkClientJWKS checks an inline JWK Set and returns it compacted.
func checkClientJWKS(raw json.RawMessage) (json.RawMessage, *Error) {
	if len(raw) > MaxClientJWKSBytes {
		return nil, FieldErrorf("jwks", "The key set must be at most %d bytes.", MaxClientJWKSBytes)
	}
	set, err := ParseClientJWKS(raw)
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, inField("jwks", e)
		}
		return nil, FieldErrorf("jwks", "%s", err.Error())
	}
	if len(set.Keys) == 0 {
		return nil, FieldErrorf("jwks", "The key set holds no key.")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return nil, FieldErrorf("jwks", "The key set is not valid JSON.")
	}
	return buf.Bytes(), nil
}

// ParseClientJWKS parses an app's JWK Set (inline, or fetched from its
// jwks_uri) and checks each key: public, and of a kind Keyport verifies
// (RSA of at least 2048 bits, EC P-256, Ed25519); at most
// MaxClientJWKSKeys keys. Keys for encryption (use "enc") are left out.
func ParseClientJWKS(raw []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(raw, &set); err != nil {
		return jose.JSONWebKeySet{}, Errorf(Invalid, "The key set is not a JWK Set: %s", clip(err.Error(), 200))
	}
	if len(set.Keys) > MaxClientJWKSKeys {
		return jose.JSONWebKeySet{}, Errorf(Invalid, "The key set holds more than %d keys.", MaxClientJWKSKeys)
	}
	kept := set.Keys[:0]
	for i, k := range set.Keys {
		if !k.IsPublic() {
			return jose.JSONWebKeySet{}, Errorf(Invalid, "Key %d is a private key: give only the public key.", i+1)
		}
		switch key := k.Key.(type) {
		case *rsa.PublicKey:
			if key.N.BitLen() < 2048 {
				return jose.JSONWebKeySet{}, Errorf(Invalid, "Key %d: RSA keys must have at least 2048 bits.", i+1)
			}
		case *ecdsa.PublicKey:
			if key.Curve != elliptic.P256() {
				return jose.JSONWebKeySet{}, Errorf(Invalid, "Key %d: EC keys must use P-256.", i+1)
			}
		case ed25519.PublicKey:
		default:
			return jose.JSONWebKeySet{}, Errorf(Invalid, "Key %d is of a kind Keyport does not verify with (use RSA, EC P-256 or Ed25519).", i+1)
		}
		if k.Use == "enc" {
			continue
		}
		kept = append(kept, k)
	}
	set.Keys = kept
	return set, nil
}

// checkJWKSURI checks the shape of an app's jwks_uri: an absolute https
// URL without user info or fragment, or http on a loopback host. The keys
// it serves decide who may authenticate as the app (private_key_jwt) and
// sign its request objects, so they must not be fetched where anyone on
// the path can replace them; logout URIs follow the same rule (kept: the
// app's stored URI, unchanged by this edit, is not held to it). Which
// addresses it may reach is decided when it is fetched (the provider's
// SSRF guard), since a name may resolve elsewhere later.
func checkJWKSURI(raw string, kept bool) *Error {
	if len(raw) > MaxClientURILength {
		return FieldErrorf("jwks_uri", "The URL must be at most %d characters.", MaxClientURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Fragment != "" || u.User != nil || strings.ContainsAny(raw, "# \t\r\n") ||
		(u.Scheme != "https" && u.Scheme != "http") {
		return FieldErrorf("jwks_uri", "jwks_uri %q must be an absolute http(s) URL without user info or fragment.", raw)
	}
	if u.Scheme == "http" && !isLoopbackHost(u.Hostname()) && !kept {
		return FieldErrorf("jwks_uri", "jwks_uri %q must use https:// (http:// only on 127.0.0.1, [::1] or localhost).", raw)
	}
	return nil
}

// applyClientAuth sets the authentication fields p changes on c. A
// change of method drops a sealed secret that no longer applies; an app
// moved to client_secret_jwt has none until its secret is rotated, as an
// app made confidential has no secret until then.
func (p ClientPatch) applyClientAuth(c *storage.Client) {
	if p.TokenEndpointAuthMethod != nil && *p.TokenEndpointAuthMethod != c.TokenEndpointAuthMethod {
		c.TokenEndpointAuthMethod = *p.TokenEndpointAuthMethod
		c.SealedSecret = nil
	}
	if p.JWKS != nil {
		c.JWKS = bytes.Clone(*p.JWKS)
		if len(bytes.TrimSpace(c.JWKS)) == 0 || string(bytes.TrimSpace(c.JWKS)) == "null" {
			c.JWKS = nil
		}
	}
	if p.JWKSURI != nil {
		c.JWKSURI = *p.JWKSURI
	}
}

// checkRequestObjectKeys checks that an app that must sign its
// authorization requests (RFC 9101 §10.5) has keys to sign them with:
// its public keys, or its secret for client_secret_jwt (HS256).
func checkRequestObjectKeys(c *storage.Client) *Error {
	if c.RequireSignedRequestObject && len(c.JWKS) == 0 && c.JWKSURI == "" && c.TokenEndpointAuthMethod != AuthClientSecretJWT {
		return FieldErrorf("require_signed_request_object", "Signed request objects need the app's keys: jwks or jwks_uri (or client_secret_jwt, signing with HS256).")
	}
	return nil
}
