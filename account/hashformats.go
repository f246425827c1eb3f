package account

import (
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/crypto/scrypt"
)

// Password hashes from other systems, so admins migrate users from Auth0,
// Keycloak, Authelia, Dex or Django without resetting passwords. Each
// verifies at sign-in and is replaced by argon2id at the next successful
// one (VerifyPassword's needsRehash).
//
// A stored hash decides how much work checking a password costs, and
// checking runs for anyone who types the account's name. So every format
// has bounds, refused at import with the line and at sign-in as an error:
// one hash may ask for at most about a second of a core and 1 GiB (the
// ceiling config.toml allows for argon2id).
const (
	// MaxBcryptCost is 2^14 rounds, about a second on one core.
	MaxBcryptCost = 14
	// MaxScryptLogN bounds N (2^20); maxScryptBlocks bounds N*r*p, which
	// is both the memory of one lane (128*N*r bytes) and the work of all
	// p lanes: 2^23 is 1 GiB, or N=2^20 with r=8, p=1.
	MaxScryptLogN   = 20
	maxScryptBlocks = 1 << 23
	// MaxPBKDF2Iterations is a few seconds of one core.
	MaxPBKDF2Iterations = 10_000_000

	// The argon2 bounds are config.toml's: a hash Keyport made with the
	// parameters its admin chose must always verify.
	maxArgon2MemoryKiB   = 1 << 20
	maxArgon2Iterations  = 64
	maxArgon2Parallelism = 64

	// Derived keys of 16 to 64 bytes and salts of at most 256 bytes cover
	// every implementation we know of; PBKDF2's work grows with the key.
	minHashKey, maxHashKey = 16, 64
	maxHashSalt            = 256
	// maxHashLen bounds the whole string before it is parsed.
	maxHashLen = 512
)

// maxImportedArgon2Work bounds memory × passes (KiB) of an argon2 hash
// that comes in through an import, which config.toml's bounds (1 GiB × 64
// passes, minutes of work) do not: 2^21 is about a second of one core.
// Keyport's default, 19 MiB × 2 passes, is 38,912 and takes about 20 ms.
const maxImportedArgon2Work = 1 << 21

// importWorkError says why an imported hash would cost too much at
// sign-in, or "" when it would not. ParsePasswordHash's bounds apply too.
func (h PasswordHash) importWorkError() string {
	if h.Algorithm != AlgArgon2id && h.Algorithm != AlgArgon2i {
		return ""
	}
	if work := uint64(h.argon.MemoryKiB) * uint64(h.argon.Iterations); work > maxImportedArgon2Work {
		return fmt.Sprintf("argon2 memory × passes is %d KiB; an imported hash may ask for at most %d (about a second per sign-in)", work, maxImportedArgon2Work)
	}
	return ""
}

// Hash algorithms, as PasswordHashInfo names them.
const (
	AlgArgon2id     = "argon2id"
	AlgArgon2i      = "argon2i"
	AlgBcrypt       = "bcrypt"
	AlgScrypt       = "scrypt"
	AlgPBKDF2SHA256 = "pbkdf2-sha256"
)

// PasswordHash is a parsed stored password hash.
type PasswordHash struct {
	Algorithm string
	argon     Argon2Params
	cost      int // bcrypt
	logN      int // scrypt
	r, p      int // scrypt
	iter      int // pbkdf2
	salt, key []byte
	encoded   string // bcrypt keeps its own encoding
}

// ParsePasswordHash parses a stored hash and checks it against the work
// bounds above. The formats:
//
//   - argon2id and argon2i PHC strings, version 19:
//     $argon2id$v=19$m=65536,t=3,p=4$<salt>$<hash>
//   - bcrypt: $2a$, $2b$ and $2y$ (the same algorithm; $2y$ is PHP's
//     name for $2b$). Not $2x$, PHP's marker for hashes of its old bug.
//   - scrypt PHC strings, as passlib, Django-scrypt and the Rust and Node
//     PHC libraries write them: $scrypt$ln=15,r=8,p=1$<salt>$<hash>
//     (parameters in any order). Not the $7$ crypt encoding and not
//     Firebase's modified scrypt.
//   - PBKDF2-HMAC-SHA256: passlib's (and Authelia's)
//     $pbkdf2-sha256$<iterations>$<salt>$<hash>, the PHC form
//     $pbkdf2-sha256$i=<iterations>[,l=<key bytes>]$<salt>$<hash> (which
//     a Keycloak export converts to: its JSON credential's salt, value and
//     hashIterations, both in base64), and Django's
//     pbkdf2_sha256$<iterations>$<salt as text>$<hash>.
//
// Salts and hashes may be in base64 with either alphabet (standard or
// URL), passlib's adapted base64 ("." for "+"), padded or not.
func ParsePasswordHash(encoded string) (PasswordHash, error) {
	if len(encoded) > maxHashLen {
		return PasswordHash{}, fmt.Errorf("parse password hash: longer than %d bytes", maxHashLen)
	}
	switch {
	case strings.HasPrefix(encoded, "$argon2id$"), strings.HasPrefix(encoded, "$argon2i$"):
		return parseArgon2(encoded)
	case strings.HasPrefix(encoded, "$2"):
		return parseBcrypt(encoded)
	case strings.HasPrefix(encoded, "$scrypt$"):
		return parseScrypt(encoded)
	case strings.HasPrefix(encoded, "$pbkdf2-sha256$"):
		return parsePBKDF2(strings.TrimPrefix(encoded, "$pbkdf2-sha256$"), false)
	case strings.HasPrefix(encoded, "pbkdf2_sha256$"):
		return parsePBKDF2(strings.TrimPrefix(encoded, "pbkdf2_sha256$"), true)
	}
	return PasswordHash{}, fmt.Errorf("parse password hash: unknown format (argon2id, argon2i, bcrypt, scrypt and pbkdf2-sha256 are supported)")
}

// matches computes the hash of password and compares it in constant time.
func (h PasswordHash) matches(password string) bool {
	var got []byte
	switch h.Algorithm {
	case AlgBcrypt:
		return bcrypt.CompareHashAndPassword([]byte(h.encoded), []byte(password)) == nil
	case AlgArgon2id:
		got = argon2.IDKey([]byte(password), h.salt, h.argon.Iterations, h.argon.MemoryKiB, h.argon.Parallelism, uint32(len(h.key)))
	case AlgArgon2i:
		got = argon2.Key([]byte(password), h.salt, h.argon.Iterations, h.argon.MemoryKiB, h.argon.Parallelism, uint32(len(h.key)))
	case AlgScrypt:
		var err error
		if got, err = scrypt.Key([]byte(password), h.salt, 1<<h.logN, h.r, h.p, len(h.key)); err != nil {
			return false
		}
	case AlgPBKDF2SHA256:
		var err error
		if got, err = pbkdf2.Key(sha256.New, password, h.salt, h.iter, len(h.key)); err != nil {
			return false
		}
	default:
		return false
	}
	return subtle.ConstantTimeCompare(got, h.key) == 1
}

// isCurrent tells whether h is what HashPassword makes with p: anything
// else is replaced at the next successful sign-in.
func (h PasswordHash) isCurrent(p Argon2Params) bool {
	return h.Algorithm == AlgArgon2id && h.argon == p && len(h.key) == keyLen
}

func parseArgon2(encoded string) (PasswordHash, error) {
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 {
		return PasswordHash{}, fmt.Errorf("parse argon2 hash: want $%s$v=19$m=..,t=..,p=..$salt$hash", parts[1])
	}
	h := PasswordHash{Algorithm: parts[1]}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return h, fmt.Errorf("parse argon2 hash: unsupported version %q (only v=%d)", parts[2], argon2.Version)
	}
	params, err := phcParams(parts[3], "m", "t", "p")
	if err != nil {
		return h, fmt.Errorf("parse argon2 hash: %w", err)
	}
	m, t, par := params["m"], params["t"], params["p"]
	switch {
	case m < 8*par || m > maxArgon2MemoryKiB:
		return h, fmt.Errorf("parse argon2 hash: memory m=%d KiB out of bounds (8*p to %d)", m, maxArgon2MemoryKiB)
	case t < 1 || t > maxArgon2Iterations:
		return h, fmt.Errorf("parse argon2 hash: iterations t=%d out of bounds (1 to %d)", t, maxArgon2Iterations)
	case par < 1 || par > maxArgon2Parallelism:
		return h, fmt.Errorf("parse argon2 hash: parallelism p=%d out of bounds (1 to %d)", par, maxArgon2Parallelism)
	}
	h.argon = Argon2Params{MemoryKiB: uint32(m), Iterations: uint32(t), Parallelism: uint8(par)}
	if h.salt, h.key, err = saltAndKey(parts[4], parts[5]); err != nil {
		return h, fmt.Errorf("parse argon2 hash: %w", err)
	}
	return h, nil
}

func parseBcrypt(encoded string) (PasswordHash, error) {
	h := PasswordHash{Algorithm: AlgBcrypt, encoded: encoded}
	// $2b$12$ + 22 characters of salt + 31 of hash.
	if len(encoded) != 60 || !(strings.HasPrefix(encoded, "$2a$") || strings.HasPrefix(encoded, "$2b$") || strings.HasPrefix(encoded, "$2y$")) || encoded[6] != '$' {
		return h, fmt.Errorf("parse bcrypt hash: want $2a$, $2b$ or $2y$, a two-digit cost and 53 characters")
	}
	cost, err := bcrypt.Cost([]byte(encoded))
	if err != nil {
		return h, fmt.Errorf("parse bcrypt hash: %w", err)
	}
	if cost < bcrypt.MinCost || cost > MaxBcryptCost {
		return h, fmt.Errorf("parse bcrypt hash: cost %d out of bounds (%d to %d)", cost, bcrypt.MinCost, MaxBcryptCost)
	}
	h.cost = cost
	return h, nil
}

func parseScrypt(encoded string) (PasswordHash, error) {
	parts := strings.Split(encoded, "$")
	h := PasswordHash{Algorithm: AlgScrypt}
	if len(parts) != 5 {
		return h, fmt.Errorf("parse scrypt hash: want $scrypt$ln=..,r=..,p=..$salt$hash")
	}
	params, err := phcParams(parts[2], "ln", "r", "p")
	if err != nil {
		return h, fmt.Errorf("parse scrypt hash: %w", err)
	}
	h.logN, h.r, h.p = params["ln"], params["r"], params["p"]
	switch {
	case h.logN < 1 || h.logN > MaxScryptLogN:
		return h, fmt.Errorf("parse scrypt hash: ln=%d out of bounds (1 to %d)", h.logN, MaxScryptLogN)
	case h.r < 1 || h.p < 1 || uint64(1)<<h.logN*uint64(h.r)*uint64(h.p) > maxScryptBlocks:
		return h, fmt.Errorf("parse scrypt hash: r=%d, p=%d with ln=%d out of bounds (N*r*p at most 2^23: 1 GiB of memory, or as much work)", h.r, h.p, h.logN)
	}
	if h.salt, h.key, err = saltAndKey(parts[3], parts[4]); err != nil {
		return h, fmt.Errorf("parse scrypt hash: %w", err)
	}
	return h, nil
}

// parsePBKDF2 parses what follows the algorithm: <iterations>$<salt>$<hash>
// (passlib; Django with rawSalt), or i=<iterations>[,l=<key length>]$...
func parsePBKDF2(rest string, rawSalt bool) (PasswordHash, error) {
	h := PasswordHash{Algorithm: AlgPBKDF2SHA256}
	parts := strings.Split(rest, "$")
	if len(parts) != 3 {
		return h, fmt.Errorf("parse pbkdf2-sha256 hash: want $pbkdf2-sha256$<iterations>$salt$hash")
	}
	var err error
	if strings.HasPrefix(parts[0], "i=") && !rawSalt {
		var params map[string]int
		if params, err = phcParams(parts[0], "i", "l"); err == nil {
			h.iter = params["i"]
			if l, ok := params["l"]; ok && l != base64DecodedLen(parts[2]) {
				err = fmt.Errorf("l=%d is not the length of the hash", l)
			}
		}
	} else {
		h.iter, err = decimal(parts[0])
	}
	if err != nil {
		return h, fmt.Errorf("parse pbkdf2-sha256 hash: %w", err)
	}
	if h.iter < 1 || h.iter > MaxPBKDF2Iterations {
		return h, fmt.Errorf("parse pbkdf2-sha256 hash: %d iterations out of bounds (1 to %d)", h.iter, MaxPBKDF2Iterations)
	}
	if rawSalt {
		// Django uses the salt's text as it is.
		if parts[1] == "" || len(parts[1]) > maxHashSalt {
			return h, fmt.Errorf("parse pbkdf2-sha256 hash: salt empty or longer than %d bytes", maxHashSalt)
		}
		h.salt = []byte(parts[1])
		_, h.key, err = saltAndKey("", parts[2])
	} else {
		h.salt, h.key, err = saltAndKey(parts[1], parts[2])
	}
	if err != nil {
		return h, fmt.Errorf("parse pbkdf2-sha256 hash: %w", err)
	}
	return h, nil
}

// phcParams parses PHC parameters ("m=65536,t=3,p=4") in any order: each
// of want at most once, nothing else, all decimal; the first of want is
// required, and so are all but a last one named "l".
func phcParams(s string, want ...string) (map[string]int, error) {
	out := make(map[string]int, len(want))
	for _, kv := range strings.Split(s, ",") {
		k, v, _ := strings.Cut(kv, "=")
		known := false
		for _, w := range want {
			known = known || w == k
		}
		if _, dup := out[k]; !known || dup {
			return nil, fmt.Errorf("bad parameters %q", s)
		}
		n, err := decimal(v)
		if err != nil {
			return nil, fmt.Errorf("parameter %s: %w", k, err)
		}
		out[k] = n
	}
	for _, w := range want {
		if _, ok := out[w]; !ok && w != "l" {
			return nil, fmt.Errorf("parameter %s missing in %q", w, s)
		}
	}
	return out, nil
}

// decimal parses a non-negative decimal of at most 9 digits (no sign, no
// leading zeros), so no bound check can overflow.
func decimal(s string) (int, error) {
	if s == "" || len(s) > 9 || (len(s) > 1 && s[0] == '0') || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return strconv.Atoi(s)
}

// saltAndKey decodes a salt and a derived key and checks their lengths.
func saltAndKey(salt, key string) ([]byte, []byte, error) {
	s, err := decodeBase64(salt)
	if err != nil || len(s) > maxHashSalt {
		return nil, nil, fmt.Errorf("salt is not base64 of at most %d bytes", maxHashSalt)
	}
	k, err := decodeBase64(key)
	if err != nil || len(k) < minHashKey || len(k) > maxHashKey {
		return nil, nil, fmt.Errorf("hash is not base64 of %d to %d bytes", minHashKey, maxHashKey)
	}
	return s, k, nil
}

// decodeBase64 reads base64 in any of the alphabets hash formats use:
// standard, URL-safe, and passlib's adapted one ("." for "+"), padded or
// not. Their extra characters never overlap, so one mapping reads all.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	s = strings.NewReplacer(".", "+", "-", "+", "_", "/").Replace(s)
	return base64.RawStdEncoding.DecodeString(s)
}

// base64DecodedLen is how many bytes s decodes to (-1 when it does not).
func base64DecodedLen(s string) int {
	b, err := decodeBase64(s)
	if err != nil {
		return -1
	}
	return len(b)
}
