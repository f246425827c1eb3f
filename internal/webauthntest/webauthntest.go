// Package webauthntest is a software WebAuthn authenticator for tests: a
// real P-256 key answering registration and sign-in options as a browser
// would (attestation "none"), so every check of go-webauthn runs without a
// browser. The Chromium tests use CDP's virtual authenticator instead.
package webauthntest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"slices"
	"testing"

	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
)

// Authenticator is a software authenticator holding one passkey.
type Authenticator struct {
	T          testing.TB
	Key        *ecdsa.PrivateKey
	ID         []byte // the credential ID
	Origin     string // the page the browser would be on
	RPID       string // "" signs for the RP ID the options name
	Counter    uint32
	UV, Backup bool   // user verified; a synced (backup-eligible) passkey
	UserHandle []byte // set at registration from the options' user.id
}

// New makes an authenticator with a fresh P-256 key that verifies the user.
func New(t testing.TB, origin string) *Authenticator {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	return &Authenticator{T: t, Key: key, ID: id, Origin: origin, UV: true}
}

var b64 = base64.RawURLEncoding

// Options are the parts of WebAuthn begin options the tests read.
type Options struct {
	PublicKey struct {
		Challenge string `json:"challenge"`
		RPID      string `json:"rpId"`
		RP        struct {
			ID string `json:"id"`
		} `json:"rp"`
		User struct {
			ID          string `json:"id"`
			Name        string `json:"name"`
			DisplayName string `json:"displayName"`
		} `json:"user"`
		AuthenticatorSelection struct {
			ResidentKey      string `json:"residentKey"`
			UserVerification string `json:"userVerification"`
		} `json:"authenticatorSelection"`
		UserVerification   string `json:"userVerification"`
		ExcludeCredentials []struct {
			ID string `json:"id"`
		} `json:"excludeCredentials"`
		AllowCredentials []struct {
			ID string `json:"id"`
		} `json:"allowCredentials"`
	} `json:"publicKey"`
}

// ParseOptions reads begin options (the {"publicKey": …} object).
func ParseOptions(t testing.TB, raw []byte) Options {
	t.Helper()
	var o Options
	if err := json.Unmarshal(raw, &o); err != nil {
		t.Fatalf("options: %v\n%s", err, raw)
	}
	return o
}

func (k *Authenticator) clientData(typ, challenge string) []byte {
	b, _ := json.Marshal(map[string]any{"type": typ, "challenge": challenge, "origin": k.Origin, "crossOrigin": false})
	return b
}

func (k *Authenticator) authData(rpID string, attested bool) []byte {
	if k.RPID != "" {
		rpID = k.RPID
	}
	h := sha256.Sum256([]byte(rpID))
	flags := byte(0x01) // user present
	if k.UV {
		flags |= 0x04
	}
	if k.Backup {
		flags |= 0x08
	}
	if attested {
		flags |= 0x40
	}
	out := append(h[:], flags)
	out = binary.BigEndian.AppendUint32(out, k.Counter)
	if attested {
		out = append(out, make([]byte, 16)...) // AAGUID
		out = binary.BigEndian.AppendUint16(out, uint16(len(k.ID)))
		out = append(out, k.ID...)
		point, err := k.Key.PublicKey.Bytes()
		if err != nil {
			k.T.Fatal(err)
		}
		cose, err := webauthncbor.Marshal(webauthncose.EC2PublicKeyData{
			PublicKeyData: webauthncose.PublicKeyData{KeyType: int64(webauthncose.EllipticKey), Algorithm: int64(webauthncose.AlgES256)},
			Curve:         1, XCoord: point[1:33], YCoord: point[33:],
		})
		if err != nil {
			k.T.Fatal(err)
		}
		out = append(out, cose...)
	}
	return out
}

// register answers creation options like navigator.credentials.create.
func (k *Authenticator) Register(options []byte) []byte {
	k.T.Helper()
	o := ParseOptions(k.T, options).PublicKey
	handle, err := b64.DecodeString(o.User.ID)
	if err != nil {
		k.T.Fatalf("user.id: %v", err)
	}
	k.UserHandle = handle
	att, err := webauthncbor.Marshal(map[string]any{"fmt": "none", "attStmt": map[string]any{}, "authData": k.authData(o.RP.ID, true)})
	if err != nil {
		k.T.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.ID), "rawId": b64.EncodeToString(k.ID), "type": "public-key",
		"response": map[string]any{"clientDataJSON": b64.EncodeToString(k.clientData("webauthn.create", o.Challenge)), "attestationObject": b64.EncodeToString(att)},
	})
	return body
}

// assert answers request options like navigator.credentials.get.
func (k *Authenticator) Assert(options []byte) []byte {
	k.T.Helper()
	o := ParseOptions(k.T, options).PublicKey
	k.Counter++
	ad := k.authData(o.RPID, false)
	cd := k.clientData("webauthn.get", o.Challenge)
	cdHash := sha256.Sum256(cd)
	digest := sha256.Sum256(append(slices.Clone(ad), cdHash[:]...))
	sig, err := ecdsa.SignASN1(rand.Reader, k.Key, digest[:])
	if err != nil {
		k.T.Fatal(err)
	}
	body, _ := json.Marshal(map[string]any{
		"id": b64.EncodeToString(k.ID), "rawId": b64.EncodeToString(k.ID), "type": "public-key",
		"response": map[string]any{
			"clientDataJSON": b64.EncodeToString(cd), "authenticatorData": b64.EncodeToString(ad),
			"signature": b64.EncodeToString(sig), "userHandle": b64.EncodeToString(k.UserHandle),
		},
	})
	return body
}
