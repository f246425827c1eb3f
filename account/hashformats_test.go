package account_test

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"

	"github.com/keyport/keyport/account"
)

// foreignHash is a password hash made by another implementation, and the
// password it was made of.
type foreignHash struct {
	name, password, hash string
}

// phc64 is unpadded standard base64, as PHC strings carry salts and hashes.
func phc64(b []byte) string { return base64.RawStdEncoding.EncodeToString(b) }

// ab64 is passlib's adapted base64: "." for "+", no padding.
func ab64(b []byte) string { return strings.ReplaceAll(phc64(b), "+", ".") }

// foreignHashes makes one hash of each imported format with the real
// algorithm (x/crypto's bcrypt and scrypt, the standard library's PBKDF2,
// x/crypto's argon2i), encoded by the test as the other systems encode
// them, plus fixed vectors that other implementations made.
func foreignHashes(t testing.TB) []foreignHash {
	t.Helper()
	salt := []byte("sixteen byte slt")
	bc, err := bcrypt.GenerateFromPassword([]byte("bcrypt pass 2b"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	sk, err := scrypt.Key([]byte("scrypt pass 1"), salt, 1<<10, 8, 1, 32)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := pbkdf2.Key(sha256.New, "pbkdf2 pass 1", salt, 2000, 32)
	if err != nil {
		t.Fatal(err)
	}
	ak := argon2.Key([]byte("argon2i pass 1"), salt, 3, 4096, 1, 32)
	return []foreignHash{
		{"bcrypt $2b$ (x/crypto)", "bcrypt pass 2b", string(bc)},
		// $2a$ and $2y$ mark the same algorithm.
		{"bcrypt $2a$", "bcrypt pass 2b", "$2a$" + string(bc[4:])},
		{"bcrypt $2y$ (PHP)", "bcrypt pass 2b", "$2y$" + string(bc[4:])},
		{"scrypt PHC (x/crypto)", "scrypt pass 1", fmt.Sprintf("$scrypt$ln=10,r=8,p=1$%s$%s", phc64(salt), phc64(sk))},
		{"scrypt PHC, other order, padded", "scrypt pass 1", fmt.Sprintf("$scrypt$ln=10,p=1,r=8$%s$%s",
			base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(sk))},
		{"pbkdf2-sha256 passlib (stdlib)", "pbkdf2 pass 1", fmt.Sprintf("$pbkdf2-sha256$2000$%s$%s", ab64(salt), ab64(pk))},
		{"pbkdf2-sha256 PHC i=,l=", "pbkdf2 pass 1", fmt.Sprintf("$pbkdf2-sha256$i=2000,l=32$%s$%s", phc64(salt), phc64(pk))},
		{"argon2i (x/crypto)", "argon2i pass 1", fmt.Sprintf("$argon2i$v=19$m=4096,t=3,p=1$%s$%s", phc64(salt), phc64(ak))},

		// Made by passlib (its own test vectors, passlib/tests).
		{"pbkdf2-sha256 passlib vector", "password", "$pbkdf2-sha256$1212$4vjV83LKPjQzk31VI4E0Vw$hsYF68OiOUPdDZ1Fg.fJPeq1h/gXXY7acBp9/6c.tmQ"},
		{"scrypt passlib vector", "test", "$scrypt$ln=8,r=8,p=1$wlhLyXmP8b53bm1NKYVQqg$mTpvG8lzuuDk+DWz8HZIB6Vum6erDuUm0As5yU+VxWA"},
		// Made on this machine with Python's hashlib (pbkdf2_hmac, scrypt),
		// encoded as a Keycloak export converts (standard base64, padded),
		// as passlib writes scrypt, and as Django writes PBKDF2.
		{"pbkdf2-sha256 Python hashlib, Keycloak-style", "Pässwort import 1", "$pbkdf2-sha256$i=27500$a2V5cG9ydC1pbXBvcnQtcw==$IVWzjunbDf3iaySppuiIaWyux4KoPpolc9d4ixM8CQA="},
		{"scrypt Python hashlib", "Pässwort import 2", "$scrypt$ln=14,r=8,p=1$a2V5cG9ydC1pbXBvcnQtcw$OJWUGDr9m7Os8MltpZapDUZzNtdRn0glJMXl84e7Jwg"},
		{"pbkdf2_sha256 Django (Python hashlib)", "django migration pw", "pbkdf2_sha256$600000$Zb6XN9p0aTqV$fy1APsUcn1wAPZ3Dd95/MY/ri58V89auMLZTQJXY7aE="},
	}
}

func TestVerifyForeignHashes(t *testing.T) {
	for _, h := range foreignHashes(t) {
		t.Run(h.name, func(t *testing.T) {
			ok, rehash, err := account.VerifyPassword(h.password, h.hash, testArgon)
			if !ok || !rehash || err != nil {
				t.Fatalf("right password: ok=%v rehash=%v err=%v", ok, rehash, err)
			}
			ok, rehash, err = account.VerifyPassword(h.password+"x", h.hash, testArgon)
			if ok || rehash || err != nil {
				t.Fatalf("wrong password: ok=%v rehash=%v err=%v", ok, rehash, err)
			}
		})
	}
}

// TestPasswordHashBounds: a hash that asks for more work than the bounds,
// or that no implementation would write, is refused before any work.
func TestPasswordHashBounds(t *testing.T) {
	key := phc64([]byte("thirty-two bytes of derived key."))
	salt := phc64([]byte("salt of sixteen."))
	bc14, err := bcrypt.GenerateFromPassword([]byte("x"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	within := []string{
		"$2b$14$" + string(bc14[7:]),
		"$scrypt$ln=20,r=8,p=1$" + salt + "$" + key,
		"$scrypt$ln=16,r=8,p=16$" + salt + "$" + key,
		"$pbkdf2-sha256$10000000$" + salt + "$" + key,
		"$argon2id$v=19$m=1048576,t=64,p=64$" + salt + "$" + key,
	}
	for _, h := range within {
		if _, err := account.ParsePasswordHash(h); err != nil {
			t.Errorf("%s: %v", h, err)
		}
	}
	beyond := map[string]string{
		"$2b$15$" + string(bc14[7:]):                                 "cost 15",
		"$2x$04$" + string(bc14[7:]):                                 "want $2a$, $2b$ or $2y$",
		"$2b$4$" + string(bc14[7:]):                                  "bcrypt",
		"$scrypt$ln=21,r=1,p=1$" + salt + "$" + key:                  "ln=21",
		"$scrypt$ln=20,r=9,p=1$" + salt + "$" + key:                  "r=9",
		"$scrypt$ln=16,r=8,p=17$" + salt + "$" + key:                 "p=17",
		"$scrypt$ln=16,r=8$" + salt + "$" + key:                      "p missing",
		"$scrypt$ln=16,r=8,p=1,x=1$" + salt + "$" + key:              "bad parameters",
		"$pbkdf2-sha256$10000001$" + salt + "$" + key:                "10000001 iterations",
		"$pbkdf2-sha256$i=1000,l=16$" + salt + "$" + key:             "l=16",
		"$pbkdf2-sha256$01000$" + salt + "$" + key:                   "not a number",
		"$pbkdf2-sha256$1000$" + salt + "$" + phc64([]byte("short")): "hash is not base64",
		"$argon2id$v=19$m=1048577,t=1,p=1$" + salt + "$" + key:       "memory",
		"$argon2id$v=16$m=7168,t=5,p=1$" + salt + "$" + key:          "version",
		"$argon2d$v=19$m=7168,t=5,p=1$" + salt + "$" + key:           "unknown format",
		"$6$rounds=5000$saltsalt$abc":                                "unknown format",
		"$pbkdf2-sha512$1000$" + salt + "$" + key:                    "unknown format",
		strings.Repeat("$", 600):                                     "longer than",
	}
	for h, want := range beyond {
		_, err := account.ParsePasswordHash(h)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%.60s: got %v, want an error containing %q", h, err, want)
		}
		// Sign-in refuses it too, without a match.
		if ok, _, err := account.VerifyPassword("x", h, testArgon); ok || err == nil {
			t.Errorf("%.60s verified: ok=%v err=%v", h, ok, err)
		}
	}
}
