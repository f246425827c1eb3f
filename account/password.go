package account

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"

	"golang.org/x/crypto/argon2"
)

// Argon2Params are the argon2id cost parameters.
type Argon2Params struct {
	MemoryKiB   uint32
	Iterations  uint32
	Parallelism uint8
}

const (
	saltLen = 16
	keyLen  = 32
)

// HashPassword returns an argon2id PHC string:
// $argon2id$v=19$m=7168,t=5,p=1$<salt>$<hash>.
func HashPassword(password string, p Argon2Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	key := argon2.IDKey([]byte(password), salt, p.Iterations, p.MemoryKiB, p.Parallelism, keyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.MemoryKiB, p.Iterations, p.Parallelism,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// VerifyPassword checks password against a stored hash: argon2id (ours),
// or a hash imported from another system (ParsePasswordHash lists the
// formats). needsRehash is true when the hash should be replaced by an
// argon2id one with the current parameters: always for an imported
// format, and for argon2id with other parameters. A hash outside the
// bounds ParsePasswordHash sets is an error, never worked on.
func VerifyPassword(password, encoded string, current Argon2Params) (ok, needsRehash bool, err error) {
	h, err := ParsePasswordHash(encoded)
	if err != nil {
		return false, false, err
	}
	if !h.matches(password) {
		return false, false, nil
	}
	return true, !h.isCurrent(current), nil
}
