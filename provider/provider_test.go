package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/internal/testclock"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
)

func TestClaimsNeverLeakInternalFields(t *testing.T) {
	u := storage.User{
		ID: "u1", Username: "alice", Email: "a@example.com", EmailVerified: true, Name: "Alice A",
		GivenName: "Alice", FamilyName: "A", Nickname: "al", Locale: "de-DE", Zoneinfo: "Europe/Berlin",
		PhoneNumber: "+4912345", PhoneVerified: true, Groups: []string{"ops"}, Admin: true,
		UpdatedAt:    time.Unix(1700000000, 0),
		PasswordHash: "$argon2id$secret", Blocked: true, LastIP: "203.0.113.7", LastLogin: time.Now(), LoginsCount: 42,
	}
	u.Roles = []string{"editor"}
	u.AppMetadata = map[string]string{"plan": "secret-plan"}
	u.CustomData = map[string]string{"team": "secret-team"}
	u.TOTPSecret, u.RecoveryCodes, u.AllowedNetworks = []byte("totp-secret"), []string{"recovery-hash"}, []string{"10.9.9.0/24"}
	u.RecoveryEmail = "recovery@example.com"
	all := []string{"openid", "profile", "email", "phone", "groups", "offline_access", "address"}
	st := &opStorage{issuer: "https://id.example.com"}
	var info oidc.UserInfo
	st.setClaims(&info, u, u.ID, all)
	raw, err := json.Marshal(&info)
	if err != nil {
		t.Fatal(err)
	}
	for _, leak := range []string{"argon2id", "203.0.113.7", "blocked", "last_ip", "last_login", "logins_count", "42", "admin", "password",
		"secret-plan", "secret-team", "totp", "recovery", "10.9.9.0"} {
		if bytes.Contains(raw, []byte(leak)) {
			t.Errorf("claims contain %q: %s", leak, raw)
		}
	}
	var got map[string]any
	json.Unmarshal(raw, &got)
	want := map[string]any{
		"sub": "u1", "preferred_username": "alice", "email": "a@example.com", "email_verified": true, "name": "Alice A",
		"given_name": "Alice", "family_name": "A", "nickname": "al", "locale": "de-DE", "zoneinfo": "Europe/Berlin",
		"phone_number": "+4912345", "phone_number_verified": true, "updated_at": float64(1700000000),
		"picture": "https://id.example.com/avatar/u1",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("claim %s = %v, want %v", k, got[k], v)
		}
	}
	if g, _ := got["groups"].([]any); len(g) != 1 || g[0] != "ops" {
		t.Errorf("groups = %v", got["groups"])
	}
	if r, _ := got["roles"].([]any); len(r) != 1 || r[0] != "editor" {
		t.Errorf("roles = %v", got["roles"])
	}

	// Only what the scopes release.
	var narrow oidc.UserInfo
	st.setClaims(&narrow, u, u.ID, []string{"openid", "email"})
	raw, _ = json.Marshal(&narrow)
	got = nil
	json.Unmarshal(raw, &got)
	if len(got) != 3 || got["sub"] != "u1" || got["email"] != "a@example.com" {
		t.Errorf("openid+email released %v", got)
	}
}

func TestWithIssuer(t *testing.T) {
	p := &Provider{opts: Options{Issuer: "https://id.example.com", LoginPath: "/login"}}
	cases := map[string]string{
		"https://app.example.com/cb?code=abc&state=s":     "https://app.example.com/cb?code=abc&iss=https%3A%2F%2Fid.example.com&state=s",
		"https://app.example.com/cb?error=login_required": "https://app.example.com/cb?error=login_required&iss=https%3A%2F%2Fid.example.com",
		"https://app.example.com/cb#code=abc&state=s":     "https://app.example.com/cb#code=abc&iss=https%3A%2F%2Fid.example.com&state=s",
		// The fragment is read as sent: an encoded + & = or % in the
		// state stays encoded, and the response still gets iss.
		"https://app.example.com/cb#code=abc&state=a%2Bb%26c%3Dd": "https://app.example.com/cb#code=abc&iss=https%3A%2F%2Fid.example.com&state=a%2Bb%26c%3Dd",
		"https://app.example.com/cb#error=x&state=100%25":         "https://app.example.com/cb#error=x&iss=https%3A%2F%2Fid.example.com&state=100%25",
		"https://id.example.com/login?authRequestID=x":            "https://id.example.com/login?authRequestID=x",
		"/login?authRequestID=x":                                  "/login?authRequestID=x",
		"https://app.example.com/other":                           "https://app.example.com/other",
	}
	for in, want := range cases {
		if got := p.withIssuer(in); got != want {
			t.Errorf("withIssuer(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOAuthErrorCodes(t *testing.T) {
	for _, code := range []string{"login_required", "consent_required", "access_denied", "interaction_required"} {
		e := oauthError(code, "why")
		raw, _ := json.Marshal(e)
		if !strings.Contains(string(raw), `"error":"`+code+`"`) || e.Description != "why" {
			t.Errorf("%s: %s", code, raw)
		}
	}
}

func TestKeyManagerRotation(t *testing.T) {
	clock := testclock.At(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC))
	db, err := bolt.Open(filepath.Join(t.TempDir(), "k.db"), bolt.Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	sealer, _ := seal.New(bytes.Repeat([]byte{1}, 32))
	ctx := context.Background()
	m := NewKeyManager(db, sealer, 30*24*time.Hour, 2*time.Hour, clock.Now, nil)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	first := m.SigningKeyID()
	stored, _ := db.ListSigningKeys(ctx)
	if len(stored) != 1 || bytes.Contains(stored[0].SealedKey, []byte("PRIVATE")) {
		t.Fatalf("stored keys: %d", len(stored))
	}
	// A reload keeps the key.
	if err := m.Load(ctx); err != nil || m.SigningKeyID() != first {
		t.Fatalf("reload changed the key: %v", err)
	}
	// The rotation period passes: a new key signs, the old one is still published.
	clock.Add(31 * 24 * time.Hour)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	second := m.SigningKeyID()
	if second == first || !strings.Contains(string(m.JWKS()), first) || !strings.Contains(string(m.JWKS()), second) {
		t.Fatalf("after scheduled rotation: %s -> %s, JWKS %s", first, second, m.JWKS())
	}
	// Once the old key's tokens have expired it leaves JWKS.
	clock.Add(3 * time.Hour)
	if err := m.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(m.JWKS()), first) || m.SigningKeyID() != second {
		t.Fatalf("old key still published after its tokens expired: %s", m.JWKS())
	}
	// A different sealing key cannot open the stored key.
	other, _ := seal.New(bytes.Repeat([]byte{2}, 32))
	if err := NewKeyManager(db, other, 0, time.Hour, clock.Now, nil).Load(ctx); err == nil {
		t.Fatal("loaded signing keys with the wrong sealing key")
	}
}

// Refresh is how a replica that does not rotate follows the one that
// does: it publishes what is stored (a new key signs, the old one stays in
// JWKS), and with no key stored it fails rather than make one.
func TestKeyManagerRefreshFollowsAnotherRotation(t *testing.T) {
	f := newKeysFixture(t)
	db, sealer, clock := f.db, f.sealer, f.clock
	ctx := context.Background()
	follower := NewKeyManager(db, sealer, 30*24*time.Hour, 2*time.Hour, clock.Now, nil)
	if err := follower.Refresh(ctx); err == nil {
		t.Fatal("Refresh with no key stored succeeded")
	}
	if keys, _ := db.ListSigningKeys(ctx); len(keys) != 0 {
		t.Fatalf("Refresh made %d keys", len(keys))
	}
	leader := NewKeyManager(db, sealer, 30*24*time.Hour, 2*time.Hour, clock.Now, nil)
	if err := leader.Load(ctx); err != nil {
		t.Fatal(err)
	}
	if err := follower.Refresh(ctx); err != nil || follower.SigningKeyID() != leader.SigningKeyID() {
		t.Fatalf("after the leader's first key: %q, want %q (%v)", follower.SigningKeyID(), leader.SigningKeyID(), err)
	}
	first := leader.SigningKeyID()
	if err := leader.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	if err := follower.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if follower.SigningKeyID() != leader.SigningKeyID() || !strings.Contains(string(follower.JWKS()), first) {
		t.Fatalf("after the leader rotated: signs with %q (want %q), JWKS %s", follower.SigningKeyID(), leader.SigningKeyID(), follower.JWKS())
	}
	if keys, _ := db.ListSigningKeys(ctx); len(keys) != 2 {
		t.Errorf("%d keys stored after one rotation and refreshes, want 2", len(keys))
	}
}
