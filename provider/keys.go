package provider

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
)

// SealPurposeSigningKey is the purpose signing keys are sealed for
// (seal.Sealer).
const SealPurposeSigningKey = "signing-key"

// KeyManager owns the token-signing keys. It keeps the current signing key
// and a prepared JWKS document in memory, so issuing a token or serving
// /keys never touches storage.
type KeyManager struct {
	store    storage.Keys
	sealer   *seal.Sealer
	now      func() time.Time
	log      *slog.Logger
	rotation time.Duration // 0: never rotate on schedule
	// keep is how long a retired key stays in JWKS: as long as the longest
	// lived token it can have signed.
	keep time.Duration
	// alg is the algorithm new keys are made for (SetAlgorithm).
	alg jose.SignatureAlgorithm

	mu    sync.Mutex // serialises Load and Rotate
	state atomic.Pointer[keyState]
}

type keyState struct {
	signing *signingKey
	public  []op.Key
	// algs are the algorithms of the published keys, the signing key's
	// first: what a token Keyport issued and still vouches for can be
	// signed with, and so what discovery advertises.
	algs     []jose.SignatureAlgorithm
	jwks     []byte
	jwksETag string
}

// NewKeyManager returns a manager; call Load before use.
func NewKeyManager(store storage.Keys, sealer *seal.Sealer, rotation, keep time.Duration, now func() time.Time, log *slog.Logger) *KeyManager {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &KeyManager{store: store, sealer: sealer, rotation: rotation, keep: keep, now: now, log: log, alg: jose.RS256}
}

// Algorithms are the signing algorithms a KeyManager can make keys for
// ([keys] algorithm).
var Algorithms = []string{string(jose.RS256), string(jose.ES256), string(jose.EdDSA)}

// SetAlgorithm chooses the algorithm of the keys Load and Rotate make
// (RS256 unless set); call it before Load. When the signing key is of
// another algorithm, the next Load replaces it with a key of this one and
// keeps the old key published until its tokens have expired.
func (m *KeyManager) SetAlgorithm(alg string) error {
	if !slices.Contains(Algorithms, alg) {
		return fmt.Errorf("signing algorithm %q: not one of %s", alg, strings.Join(Algorithms, ", "))
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.alg = jose.SignatureAlgorithm(alg)
	return nil
}

// Load reads the keys, drops expired retired ones, creates the first key when
// there is none, and rotates when the current key is older than the rotation
// period.
func (m *KeyManager) Load(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.load(ctx, false)
}

// Rotate replaces the signing key now. The old key stays in JWKS until the
// tokens it signed have expired.
func (m *KeyManager) Rotate(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.load(ctx, true)
}

// Refresh reads the keys another process may have changed (a replica
// that rotated) and publishes them, generating, rotating and deleting
// nothing: that is the work of the process that runs Run.
func (m *KeyManager) Refresh(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	now := m.now()
	var active *storage.SigningKey
	var kept []storage.SigningKey
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && now.After(k.VerifyTill) {
			continue
		}
		kept = append(kept, k)
		if k.RetiredAt.IsZero() {
			active = &k
		}
	}
	if active == nil {
		return errors.New("refresh signing keys: none is active")
	}
	return m.publish(kept, *active)
}

// Run rotates on schedule until ctx ends.
func (m *KeyManager) Run(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := m.Load(ctx); err != nil {
				m.log.ErrorContext(ctx, "refresh signing keys", "err", err)
			}
		}
	}
}

func (m *KeyManager) load(ctx context.Context, forceRotate bool) error {
	now := m.now()
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	var active *storage.SigningKey
	var kept []storage.SigningKey
	for _, k := range keys {
		if !k.RetiredAt.IsZero() && now.After(k.VerifyTill) {
			if err := m.store.DeleteSigningKey(ctx, k.ID); err != nil {
				return fmt.Errorf("delete expired signing key %q: %w", k.ID, err)
			}
			m.log.InfoContext(ctx, "removed expired signing key from JWKS", "kid", k.ID)
			continue
		}
		kept = append(kept, k)
		if k.RetiredAt.IsZero() {
			k := k
			active = &k // the newest unretired key wins (list is oldest first)
		}
	}
	due := active != nil && m.rotation > 0 && now.Sub(active.CreatedAt) >= m.rotation
	// The configured algorithm changed: a key of the new one signs from
	// now on, the old key is retired like a rotated one.
	switched := active != nil && jose.SignatureAlgorithm(active.Algorithm) != m.alg
	if active == nil || forceRotate || due || switched {
		fresh, err := m.generate(now)
		if err != nil {
			return err
		}
		if err := m.store.PutSigningKey(ctx, fresh); err != nil {
			return fmt.Errorf("store signing key: %w", err)
		}
		// Retire the old ones only after the new key is safely stored.
		for i := range kept {
			if kept[i].RetiredAt.IsZero() {
				kept[i].RetiredAt = now
				kept[i].VerifyTill = now.Add(m.keep)
				if err := m.store.PutSigningKey(ctx, kept[i]); err != nil {
					return fmt.Errorf("retire signing key %q: %w", kept[i].ID, err)
				}
			}
		}
		if active == nil && !forceRotate {
			m.log.InfoContext(ctx, "generated the first signing key", "kid", fresh.ID, "alg", fresh.Algorithm)
		} else {
			m.log.InfoContext(ctx, "rotated signing key", "kid", fresh.ID, "alg", fresh.Algorithm, "old_keys_kept_until", now.Add(m.keep))
		}
		kept = append(kept, fresh)
		active = &fresh
	}
	return m.publish(kept, *active)
}

func (m *KeyManager) generate(now time.Time) (storage.SigningKey, error) {
	priv, err := newPrivateKey(m.alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("encode %s key: %w", m.alg, err)
	}
	id := account.RandomString(12)
	pub, err := json.Marshal(jose.JSONWebKey{Key: priv.Public(), KeyID: id, Algorithm: string(m.alg), Use: "sig"})
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("encode public JWK: %w", err)
	}
	return storage.SigningKey{
		ID:        id,
		Algorithm: string(m.alg),
		SealedKey: m.sealer.Seal(der, SealPurposeSigningKey),
		PublicJWK: pub,
		CreatedAt: now,
	}, nil
}

// newPrivateKey makes a key for alg: RSA 2048 for RS256, P-256 for ES256,
// Ed25519 for EdDSA.
func newPrivateKey(alg jose.SignatureAlgorithm) (crypto.Signer, error) {
	var (
		priv crypto.Signer
		err  error
	)
	switch alg {
	case jose.RS256:
		priv, err = rsa.GenerateKey(rand.Reader, 2048)
	case jose.ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.EdDSA:
		_, priv, err = ed25519.GenerateKey(rand.Reader)
	default:
		return nil, fmt.Errorf("generate signing key: unsupported algorithm %q", alg)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return priv, nil
}

// signerFor returns the private key in der as go-jose signs with it for
// alg, and refuses a key of another type: a stored key's algorithm and key
// must agree, or tokens would carry an alg their signature does not match.
func signerFor(alg jose.SignatureAlgorithm, der []byte) (any, error) {
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, err
	}
	switch k := parsed.(type) {
	case *rsa.PrivateKey:
		if alg == jose.RS256 {
			k.Precompute()
			return k, nil
		}
	case *ecdsa.PrivateKey:
		if alg == jose.ES256 && k.Curve == elliptic.P256() {
			return k, nil
		}
	case ed25519.PrivateKey:
		if alg == jose.EdDSA {
			return k, nil
		}
	}
	return nil, fmt.Errorf("a %T is not a key for %q", parsed, alg)
}

func (m *KeyManager) publish(keys []storage.SigningKey, active storage.SigningKey) error {
	der, err := m.sealer.Open(active.SealedKey, SealPurposeSigningKey)
	if err != nil {
		return fmt.Errorf("open signing key %q (is secret_key_file the one this data was created with?): %w", active.ID, err)
	}
	alg := jose.SignatureAlgorithm(active.Algorithm)
	priv, err := signerFor(alg, der)
	if err != nil {
		return fmt.Errorf("parse signing key %q: %w", active.ID, err)
	}
	st := &keyState{
		signing: &signingKey{id: active.ID, alg: alg, key: priv},
		algs:    []jose.SignatureAlgorithm{alg},
	}
	set := jose.JSONWebKeySet{}
	for _, k := range keys {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.PublicJWK, &jwk); err != nil {
			return fmt.Errorf("parse public key %q: %w", k.ID, err)
		}
		set.Keys = append(set.Keys, jwk)
		st.public = append(st.public, &publicKey{jwk: jwk})
		if a := jose.SignatureAlgorithm(jwk.Algorithm); !slices.Contains(st.algs, a) {
			st.algs = append(st.algs, a)
		}
	}
	if st.jwks, err = json.Marshal(set); err != nil {
		return fmt.Errorf("encode JWKS: %w", err)
	}
	st.jwksETag = etagOf(st.jwks)
	m.state.Store(st)
	return nil
}

func (m *KeyManager) current() (*keyState, error) {
	st := m.state.Load()
	if st == nil {
		return nil, errors.New("signing keys not loaded")
	}
	return st, nil
}

// JWKS returns the prepared JSON Web Key Set document.
func (m *KeyManager) JWKS() []byte {
	if st := m.state.Load(); st != nil {
		return st.jwks
	}
	return []byte(`{"keys":[]}`)
}

// jwksDocument returns the prepared JWKS and its ETag, from one state.
func (m *KeyManager) jwksDocument() ([]byte, string) {
	if st := m.state.Load(); st != nil {
		return st.jwks, st.jwksETag
	}
	body := []byte(`{"keys":[]}`)
	return body, etagOf(body)
}

// SignatureAlgorithms returns the algorithms of the published keys, the
// signing key's first.
func (m *KeyManager) SignatureAlgorithms() []jose.SignatureAlgorithm {
	if st := m.state.Load(); st != nil {
		return st.algs
	}
	return nil
}

// AlgorithmChanged tells whether the published signing key is of another
// algorithm than SetAlgorithm chose, so that the next Load replaces it.
func (m *KeyManager) AlgorithmChanged() bool {
	st := m.state.Load()
	m.mu.Lock()
	defer m.mu.Unlock()
	return st != nil && st.signing.alg != m.alg
}

// SigningKeyID returns the ID of the key that signs new tokens.
func (m *KeyManager) SigningKeyID() string {
	if st := m.state.Load(); st != nil {
		return st.signing.id
	}
	return ""
}

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key any // *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey (signerFor)
}

func (k *signingKey) SignatureAlgorithm() jose.SignatureAlgorithm { return k.alg }
func (k *signingKey) Key() any                                    { return k.key }
func (k *signingKey) ID() string                                  { return k.id }

type publicKey struct{ jwk jose.JSONWebKey }

func (k *publicKey) ID() string { return k.jwk.KeyID }
func (k *publicKey) Algorithm() jose.SignatureAlgorithm {
	return jose.SignatureAlgorithm(k.jwk.Algorithm)
}
func (k *publicKey) Use() string { return k.jwk.Use }
func (k *publicKey) Key() any    { return k.jwk.Key }
