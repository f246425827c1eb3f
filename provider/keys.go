package provider

import (
	"cmp"
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

// KeyManager owns the token-signing keys. It keeps one active key per
// algorithm in use (the [keys] algorithm, and those apps chose with
// id_token_signed_response_alg or userinfo_signed_response_alg) and a
// prepared JWKS document in memory, so issuing a token or serving /keys
// never touches storage.
type KeyManager struct {
	store    storage.Keys
	sealer   *seal.Sealer
	now      func() time.Time
	log      *slog.Logger
	rotation time.Duration // 0: never rotate on schedule
	// keep is how long a retired key stays in JWKS: as long as the longest
	// lived token it can have signed.
	keep time.Duration
	// hintKeep is how long after its retirement a key still verifies what
	// Keyport is shown again itself, out of JWKS (SetHintRetention).
	hintKeep time.Duration
	// alg is the default algorithm ([keys] algorithm, SetAlgorithm): of
	// the key that signs whatever no app chose an algorithm for.
	alg jose.SignatureAlgorithm
	// inUse lists the algorithms apps ask for (SetAlgorithmsInUse); nil:
	// none but alg.
	inUse func(context.Context) ([]string, error)

	mu    sync.Mutex // serialises Load and Rotate
	state atomic.Pointer[keyState]
}

type keyState struct {
	// signing is the key of the default algorithm (or, on a replica
	// whose default has no key yet, the newest active key).
	signing *signingKey
	// signers is the active key of each algorithm that has one.
	signers map[jose.SignatureAlgorithm]*signingKey
	// public are the keys Keyport verifies its own tokens with (KeySet):
	// those in JWKS, and retired ones kept for hints (SetHintRetention).
	public []op.Key
	// algs are the algorithms of the published keys, the signing key's
	// first, the others in the order of Algorithms: what a token Keyport
	// issued and still vouches for can be signed with, and so what
	// discovery advertises.
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
// ([keys] algorithm, and an app's id_token_signed_response_alg).
var Algorithms = account.SigningAlgorithms

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

// Rotate replaces the signing key of every algorithm in use now. The old
// keys stay in JWKS until the tokens they signed have expired.
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
	var kept []storage.SigningKey
	for _, k := range keys {
		if m.gone(k, now) {
			continue
		}
		kept = append(kept, k)
	}
	return m.publish(kept, now)
}

// SetHintRetention keeps a retired key d after its retirement (d longer
// than keep), out of JWKS, for Keyport's own checks of the ID tokens it
// is shown again after they expired: an id_token_hint at end_session or
// /authorize, which OpenID Connect lets an RP send expired, and which an
// RP keeps for as long as the person's session, weeks. Without it, once a
// rotation's old key left JWKS its hints were "a token Keyport cannot
// verify" and the person was not signed out. Call it before Load.
func (m *KeyManager) SetHintRetention(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hintKeep = d
}

// gone tells whether k is done with: retired, out of JWKS (VerifyTill)
// and past its time for hints (SetHintRetention).
func (m *KeyManager) gone(k storage.SigningKey, now time.Time) bool {
	return !k.RetiredAt.IsZero() && now.After(k.VerifyTill) && now.After(k.RetiredAt.Add(m.hintKeep))
}

// inJWKS tells whether k is published: active, or retired and a token
// it signed may still live.
func inJWKS(k storage.SigningKey, now time.Time) bool {
	return k.RetiredAt.IsZero() || !now.After(k.VerifyTill)
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

// load makes the stored keys what they should be, then publishes them:
// expired retired keys deleted; one active key for each algorithm in use
// (the default and those apps ask for), made where there is none;
// every active key replaced when forceRotate, or when the oldest of them
// reached the rotation period, so that all algorithms rotate together;
// active keys of an algorithm nobody uses any more, and all but the
// newest of one algorithm (two replicas that made one at once), retired.
// A retired key stays published for keep: as long as a token it signed
// can live.
func (m *KeyManager) load(ctx context.Context, forceRotate bool) error {
	now := m.now()
	wanted, err := m.wanted(ctx)
	if err != nil {
		return err
	}
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	slices.SortStableFunc(keys, keyOrder)
	var kept []storage.SigningKey
	active := map[jose.SignatureAlgorithm]storage.SigningKey{}
	for _, k := range keys {
		if m.gone(k, now) {
			if err := m.store.DeleteSigningKey(ctx, k.ID); err != nil {
				return fmt.Errorf("delete expired signing key %q: %w", k.ID, err)
			}
			m.log.InfoContext(ctx, "deleted expired signing key", "kid", k.ID)
			continue
		}
		if !k.RetiredAt.IsZero() && len(k.SealedKey) > 0 {
			// Retired by a version that kept private halves (see the
			// retirement below): drop it now.
			k.SealedKey = []byte{}
			if err := m.store.PutSigningKey(ctx, k); err != nil {
				return fmt.Errorf("drop the private half of retired signing key %q: %w", k.ID, err)
			}
		}
		kept = append(kept, k)
		if k.RetiredAt.IsZero() {
			active[jose.SignatureAlgorithm(k.Algorithm)] = k // the newest wins (list is oldest first)
		}
	}
	first := len(active) == 0
	due := false
	for _, alg := range wanted {
		if k, ok := active[alg]; ok && m.rotation > 0 && now.Sub(k.CreatedAt) >= m.rotation {
			due = true
		}
	}
	for _, alg := range wanted {
		if _, ok := active[alg]; ok && !forceRotate && !due {
			continue
		}
		fresh, err := m.generate(alg, now)
		if err != nil {
			return err
		}
		if err := m.store.PutSigningKey(ctx, fresh); err != nil {
			return fmt.Errorf("store signing key: %w", err)
		}
		switch {
		case first && !forceRotate:
			m.log.InfoContext(ctx, "generated the first signing key", "kid", fresh.ID, "alg", fresh.Algorithm)
		case forceRotate || due:
			m.log.InfoContext(ctx, "rotated signing key", "kid", fresh.ID, "alg", fresh.Algorithm, "old_keys_kept_until", now.Add(m.keep))
		default:
			m.log.InfoContext(ctx, "generated a signing key for an algorithm now in use", "kid", fresh.ID, "alg", fresh.Algorithm)
		}
		kept = append(kept, fresh)
		active[alg] = fresh
	}
	// Retire the others only after the new keys are safely stored.
	for i, k := range kept {
		alg := jose.SignatureAlgorithm(k.Algorithm)
		if !k.RetiredAt.IsZero() || (slices.Contains(wanted, alg) && active[alg].ID == k.ID) {
			continue
		}
		kept[i].RetiredAt = now
		kept[i].VerifyTill = now.Add(m.keep)
		// A retired key never signs again (publish opens only active
		// ones), and it stays stored for as long as hints may name it
		// (SetHintRetention): weeks. Its private half goes now, so the
		// store holds no more private keys than sign.
		kept[i].SealedKey = []byte{}
		if err := m.store.PutSigningKey(ctx, kept[i]); err != nil {
			return fmt.Errorf("retire signing key %q: %w", k.ID, err)
		}
		if !slices.Contains(wanted, alg) {
			m.log.InfoContext(ctx, "retired the signing key of an algorithm no longer in use", "kid", k.ID, "alg", k.Algorithm, "kept_until", kept[i].VerifyTill)
		}
	}
	return m.publish(kept, now)
}

// keyOrder orders keys oldest first, and keys made at the same moment by
// ID, so that every process takes the same one for the newest of its
// algorithm and serves the same JWKS (and ETag).
func keyOrder(a, b storage.SigningKey) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
}

// wanted are the algorithms that need an active key: the default first,
// then those apps ask for, in the order of Algorithms.
func (m *KeyManager) wanted(ctx context.Context) ([]jose.SignatureAlgorithm, error) {
	wanted := []jose.SignatureAlgorithm{m.alg}
	if m.inUse == nil {
		return wanted, nil
	}
	algs, err := m.inUse(ctx)
	if err != nil {
		return nil, fmt.Errorf("signing algorithms the apps use: %w", err)
	}
	for _, a := range Algorithms {
		if slices.Contains(algs, a) && !slices.Contains(wanted, jose.SignatureAlgorithm(a)) {
			wanted = append(wanted, jose.SignatureAlgorithm(a))
		}
	}
	return wanted, nil
}

// SetAlgorithmsInUse tells the manager how to find the algorithms apps
// ask for (id_token_signed_response_alg, userinfo_signed_response_alg),
// besides the default: Load keeps an active key for each and retires
// the key of one nobody uses any more. Call it before Load.
func (m *KeyManager) SetAlgorithmsInUse(inUse func(context.Context) ([]string, error)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.inUse = inUse
}

// EnsureAlgorithm makes sure an active key of alg ("" is the default) is
// published, making and storing one if no process has: called when an
// app is given alg, and when a token is about to be signed with an
// algorithm that has no key here yet (another replica made the app's key,
// and its notice has not arrived). It never rotates, retires or deletes:
// that is Load's work, in the process leading the rotation. Two replicas
// that make a key of alg at the same moment both store one; both are
// published, and the next Load retires the older.
func (m *KeyManager) EnsureAlgorithm(ctx context.Context, alg string) error {
	if alg == "" {
		return nil
	}
	if !slices.Contains(Algorithms, alg) {
		return fmt.Errorf("signing algorithm %q: not one of %s", alg, strings.Join(Algorithms, ", "))
	}
	a := jose.SignatureAlgorithm(alg)
	if st := m.state.Load(); st != nil && st.signers[a] != nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if st := m.state.Load(); st != nil && st.signers[a] != nil {
		return nil
	}
	keys, err := m.store.ListSigningKeys(ctx)
	if err != nil {
		return fmt.Errorf("list signing keys: %w", err)
	}
	now := m.now()
	var kept []storage.SigningKey
	found := false
	for _, k := range keys {
		if m.gone(k, now) {
			continue
		}
		kept = append(kept, k)
		found = found || (k.RetiredAt.IsZero() && k.Algorithm == alg)
	}
	if !found {
		fresh, err := m.generate(a, now)
		if err != nil {
			return err
		}
		if err := m.store.PutSigningKey(ctx, fresh); err != nil {
			return fmt.Errorf("store signing key: %w", err)
		}
		m.log.InfoContext(ctx, "generated a signing key for an algorithm now in use", "kid", fresh.ID, "alg", alg)
		kept = append(kept, fresh)
	}
	return m.publish(kept, now)
}

// EnsureInUse makes sure each algorithm apps use has an active key
// (EnsureAlgorithm): for a replica's start, which takes the keys as
// they are and leaves rotating and retiring to the lead.
func (m *KeyManager) EnsureInUse(ctx context.Context) error {
	m.mu.Lock()
	wanted, err := m.wanted(ctx)
	m.mu.Unlock()
	if err != nil {
		return err
	}
	for _, alg := range wanted[1:] {
		if err := m.EnsureAlgorithm(ctx, string(alg)); err != nil {
			return err
		}
	}
	return nil
}

// signer returns the active key of alg ("" is the default algorithm),
// making one when there is none yet (EnsureAlgorithm).
func (m *KeyManager) signer(ctx context.Context, alg string) (*signingKey, error) {
	st, err := m.current()
	if err != nil {
		return nil, err
	}
	if alg == "" {
		return st.signing, nil
	}
	if k := st.signers[jose.SignatureAlgorithm(alg)]; k != nil {
		return k, nil
	}
	if err := m.EnsureAlgorithm(ctx, alg); err != nil {
		return nil, err
	}
	if st, err = m.current(); err != nil {
		return nil, err
	}
	if k := st.signers[jose.SignatureAlgorithm(alg)]; k != nil {
		return k, nil
	}
	return nil, fmt.Errorf("no %s signing key", alg)
}

func (m *KeyManager) generate(alg jose.SignatureAlgorithm, now time.Time) (storage.SigningKey, error) {
	priv, err := newPrivateKey(alg)
	if err != nil {
		return storage.SigningKey{}, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("encode %s key: %w", alg, err)
	}
	id := account.RandomString(12)
	pub, err := json.Marshal(jose.JSONWebKey{Key: priv.Public(), KeyID: id, Algorithm: string(alg), Use: "sig"})
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("encode public JWK: %w", err)
	}
	return storage.SigningKey{
		ID:        id,
		Algorithm: string(alg),
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

// publish makes keys (the live ones, oldest first) what the manager signs
// with and serves: the newest active key of each algorithm signs, the
// default algorithm's by default; every key still in JWKS at now is
// published, and every key verifies (KeySet: a key kept only for hints
// too, SetHintRetention).
func (m *KeyManager) publish(keys []storage.SigningKey, now time.Time) error {
	keys = slices.SortedStableFunc(slices.Values(keys), keyOrder)
	st := &keyState{signers: map[jose.SignatureAlgorithm]*signingKey{}}
	var newest *signingKey
	for _, k := range keys {
		if !k.RetiredAt.IsZero() {
			continue
		}
		der, err := m.sealer.Open(k.SealedKey, SealPurposeSigningKey)
		if err != nil {
			return fmt.Errorf("open signing key %q (is secret_key_file the one this data was created with?): %w", k.ID, err)
		}
		alg := jose.SignatureAlgorithm(k.Algorithm)
		priv, err := signerFor(alg, der)
		if err != nil {
			return fmt.Errorf("parse signing key %q: %w", k.ID, err)
		}
		newest = &signingKey{id: k.ID, alg: alg, key: priv}
		st.signers[alg] = newest
	}
	if newest == nil {
		return errors.New("publish signing keys: none is active")
	}
	st.signing = st.signers[m.alg]
	if st.signing == nil {
		// A replica whose [keys] algorithm has no key yet
		// (AlgorithmChanged): until it makes one, the newest signs.
		st.signing = newest
	}
	set := jose.JSONWebKeySet{}
	published := map[jose.SignatureAlgorithm]bool{}
	for _, k := range keys {
		var jwk jose.JSONWebKey
		if err := json.Unmarshal(k.PublicJWK, &jwk); err != nil {
			return fmt.Errorf("parse public key %q: %w", k.ID, err)
		}
		st.public = append(st.public, &publicKey{jwk: jwk})
		if !inJWKS(k, now) {
			continue
		}
		set.Keys = append(set.Keys, jwk)
		published[jose.SignatureAlgorithm(jwk.Algorithm)] = true
	}
	// The default first, then the others in a fixed order, so that
	// discovery reads the same in every process.
	st.algs = []jose.SignatureAlgorithm{st.signing.alg}
	for _, a := range Algorithms {
		if a := jose.SignatureAlgorithm(a); published[a] && a != st.signing.alg {
			st.algs = append(st.algs, a)
		}
	}
	var err error
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

// SigningKeyIDs returns the ID of the active key of each algorithm, by
// algorithm: what a rotation made, apps' algorithms too.
func (m *KeyManager) SigningKeyIDs() map[string]string {
	ids := map[string]string{}
	if st := m.state.Load(); st != nil {
		for alg, k := range st.signers {
			ids[string(alg)] = k.id
		}
	}
	return ids
}

type signingKey struct {
	id  string
	alg jose.SignatureAlgorithm
	key any // *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey (signerFor)
	jwsHeader
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
