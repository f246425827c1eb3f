// Package seal encrypts small secrets at rest (signing keys, TOTP secrets,
// directory bind passwords) with AES-256-GCM under one key that lives outside
// the database.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the length of a sealing key in bytes.
const KeySize = 32

// Sealer seals and opens values. The associated data binds a sealed value to
// its purpose, so a value sealed as one thing cannot be opened as another.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer for a 32-byte key.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("sealing key must be %d bytes, got %d", KeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("sealing key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plaintext; the nonce is prepended to the result.
func (s *Sealer) Seal(plaintext []byte, purpose string) []byte {
	nonce := make([]byte, s.aead.NonceSize(), s.aead.NonceSize()+len(plaintext)+s.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		panic("seal: crypto/rand failed: " + err.Error()) // crypto/rand never fails on supported platforms
	}
	return s.aead.Seal(nonce, nonce, plaintext, []byte(purpose))
}

// Open decrypts a value produced by Seal with the same purpose.
func (s *Sealer) Open(sealed []byte, purpose string) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n+s.aead.Overhead() {
		return nil, errors.New("open sealed value: too short")
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], []byte(purpose))
	if err != nil {
		return nil, fmt.Errorf("open sealed value (%s): wrong key or corrupted data", purpose)
	}
	return plain, nil
}

// LoadOrCreateKey reads a key file (hex or base64 of 32 bytes). When the file
// does not exist and create is true it generates one with mode 0600; created
// reports whether that happened.
func LoadOrCreateKey(path string, create bool) (key []byte, created bool, err error) {
	data, err := os.ReadFile(path)
	if err == nil {
		key, err := decodeKey(strings.TrimSpace(string(data)))
		if err != nil {
			return nil, false, fmt.Errorf("read sealing key %s: %w", path, err)
		}
		return key, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) || !create {
		return nil, false, fmt.Errorf("read sealing key %s: %w", path, err)
	}
	key = make([]byte, KeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, false, fmt.Errorf("generate sealing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create directory for sealing key: %w", err)
	}
	// O_EXCL: two processes starting at once must not overwrite each other's key.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreateKey(path, false)
		}
		return nil, false, fmt.Errorf("write sealing key %s: %w", path, err)
	}
	if _, err := f.WriteString(hex.EncodeToString(key) + "\n"); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("write sealing key %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("write sealing key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("write sealing key %s: %w", path, err)
	}
	return key, true, nil
}

func decodeKey(s string) ([]byte, error) {
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	return nil, fmt.Errorf("want %d bytes as hex or base64", KeySize)
}

// Check returns a value that identifies key without revealing it: an HMAC
// of a fixed label. Stored beside sealed data, it tells a wrong or new key
// from the right one before anything fails to open.
func Check(key []byte) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte("keyport sealing key check v1"))
	return mac.Sum(nil)
}
