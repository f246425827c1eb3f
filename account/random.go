package account

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"time"
)

// NewID returns a random 128-bit identifier, URL-safe.
func NewID() string { return RandomString(16) }

// NewOrderedID returns a 128-bit identifier whose first 48 bits are the
// current Unix time in milliseconds and the other 80 random, in an encoding
// whose byte order is the time order (lower-case base32hex, 26 characters).
//
// It is for records written often and keyed by their ID (tokens): bbolt
// keeps keys sorted, so random IDs put every new record on a random page of
// the B+tree, and a commit writes one page per record; IDs that grow with
// time land on the last pages, which many records share.
func NewOrderedID() string { return newOrderedID(time.Now()) }

// NewOrderedIDAt is NewOrderedID for time t: an ID whose time
// (OrderedIDTime) is later compared with times from the same clock.
func NewOrderedIDAt(t time.Time) string { return newOrderedID(t) }

func newOrderedID(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	for i := 5; i >= 0; i-- {
		b[i] = byte(ms)
		ms >>= 8
	}
	if _, err := rand.Read(b[6:]); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	return orderedEncoding.EncodeToString(b[:])
}

// OrderedIDTime is the time, to the millisecond, at which NewOrderedID
// made id; false for a string that is not one.
func OrderedIDTime(id string) (time.Time, bool) {
	var b [16]byte
	if len(id) != orderedEncoding.EncodedLen(len(b)) {
		return time.Time{}, false
	}
	if n, err := orderedEncoding.Decode(b[:], []byte(id)); err != nil || n != len(b) {
		return time.Time{}, false
	}
	var ms uint64
	for _, c := range b[:6] {
		ms = ms<<8 | uint64(c)
	}
	return time.UnixMilli(int64(ms)), true
}

// orderedEncoding is base32hex: its alphabet is in ASCII order, so encoded
// strings of equal length sort as the bytes they encode.
var orderedEncoding = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// NewSecret returns a random 256-bit secret, URL-safe, SecretLen characters.
func NewSecret() string { return RandomString(secretBytes) }

const secretBytes = 32

// SecretLen is the length of a NewSecret.
var SecretLen = base64.RawURLEncoding.EncodedLen(secretBytes)

// RandomString returns n random bytes, base64url without padding.
func RandomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic("crypto/rand failed: " + err.Error()) // never fails on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// HashSecret is how high-entropy secrets (client secrets, refresh tokens,
// codes, session and one-time tokens) are stored: hex SHA-256. A slow hash
// adds nothing for 128+ bit random values and would cap the token endpoint.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// SecretMatches compares a presented secret with a stored HashSecret value in
// constant time.
func SecretMatches(secret, storedHash string) bool {
	got := HashSecret(secret)
	return storedHash != "" && subtle.ConstantTimeCompare([]byte(got), []byte(storedHash)) == 1
}

// randomFrom returns n characters drawn uniformly from alphabet (rejection
// sampling, so no character is likelier than another).
func randomFrom(alphabet string, n int) string {
	limit := 256 - 256%len(alphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+16)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			panic("crypto/rand failed: " + err.Error())
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, alphabet[int(b)%len(alphabet)])
			}
		}
	}
	return string(out)
}
