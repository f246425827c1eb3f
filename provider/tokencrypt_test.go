package provider

import (
	"encoding/base64"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/op"
)

func TestTokenCrypto(t *testing.T) {
	key := [32]byte{1, 2, 3}
	c, err := newTokenCrypto(key)
	if err != nil {
		t.Fatal(err)
	}
	const plain = "06h0vtdsb5b9o4qdos4v9soi2k:y1Jito22hmpmYkg827D2Pg"
	a, _ := c.Encrypt(plain)
	b, _ := c.Encrypt(plain)
	if a == b || strings.Contains(a, "y1Jito22") {
		t.Fatalf("sealing is not randomised or hides nothing: %q %q", a, b)
	}
	if got, err := c.Decrypt(a); err != nil || got != plain {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}

	// Tokens sealed by zitadel's default (before tokenCrypto) still open.
	legacy, err := op.NewAES256GCMCrypto(key, "").Encrypt(plain)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.Decrypt(legacy); err != nil || got != plain {
		t.Errorf("legacy JWE token: %q, %v", got, err)
	}

	raw, _ := base64.RawURLEncoding.DecodeString(a)
	flip := func(i int) string {
		r := append([]byte(nil), raw...)
		r[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(r)
	}
	other, _ := newTokenCrypto([32]byte{9})
	fromOther, _ := other.Encrypt(plain)
	for name, bad := range map[string]string{
		"version byte changed":    flip(0),
		"nonce changed":           flip(5),
		"ciphertext changed":      flip(len(raw) - 20),
		"tag changed":             flip(len(raw) - 1),
		"truncated":               a[:len(a)-4],
		"another key's token":     fromOther,
		"another key's JWE token": mustEncrypt(t, op.NewAES256GCMCrypto([32]byte{9}, ""), plain),
		"a JWT":                   "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln",
		"not base64":              "%%%",
		"empty":                   "",
		"huge":                    strings.Repeat("A", maxSealedLen+4),
		// zitadel's default also opened unauthenticated AES-CFB values.
		"AES-CFB value": base64.RawURLEncoding.EncodeToString(make([]byte, 64)),
	} {
		if got, err := c.Decrypt(bad); err == nil {
			t.Errorf("%s: opened as %q", name, got)
		}
	}
}

func mustEncrypt(t *testing.T, c op.Crypto, s string) string {
	t.Helper()
	out, err := c.Encrypt(s)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func BenchmarkTokenCrypto(b *testing.B) {
	c, _ := newTokenCrypto([32]byte{1})
	for b.Loop() {
		s, _ := c.Encrypt("06h0vtdsb5b9o4qdos4v9soi2k:y1Jito22hmpmYkg827D2Pg")
		_, _ = c.Decrypt(s)
	}
}

// A refresh token kept for its reuse grace opens only as the token it was
// sealed as, under the key it was sealed with.
func TestSealRefresh(t *testing.T) {
	c, err := newTokenCrypto([32]byte{1, 2, 3})
	if err != nil {
		t.Fatal(err)
	}
	value, key := newRefreshToken()
	sealed := c.sealRefresh(value, key)
	if strings.Contains(string(sealed), value[refreshPrefixLen:]) || string(c.sealRefresh(value, key)) == string(sealed) {
		t.Fatal("sealing hides nothing or is not randomised")
	}
	if got, err := c.openRefresh(sealed, key); err != nil || got != value {
		t.Fatalf("openRefresh = %q, %v", got, err)
	}
	other, _ := newTokenCrypto([32]byte{9})
	_, otherKey := newRefreshToken()
	tampered := append([]byte(nil), sealed...)
	tampered[len(tampered)-1] ^= 1
	for name, open := range map[string]func() (string, error){
		"another token's storage key": func() (string, error) { return c.openRefresh(sealed, otherKey) },
		"another token key":           func() (string, error) { return other.openRefresh(sealed, key) },
		"a changed byte":              func() (string, error) { return c.openRefresh(tampered, key) },
		"too short":                   func() (string, error) { return c.openRefresh(sealed[:10], key) },
		"nothing":                     func() (string, error) { return c.openRefresh(nil, key) },
	} {
		if got, err := open(); err == nil || got != "" {
			t.Errorf("%s: opened %q", name, got)
		}
	}
}
