package seal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestSealOpen(t *testing.T) {
	s, err := New(bytes.Repeat([]byte{7}, KeySize))
	if err != nil {
		t.Fatal(err)
	}
	sealed := s.Seal([]byte("secret"), "totp")
	if bytes.Contains(sealed, []byte("secret")) {
		t.Fatal("plaintext visible in sealed value")
	}
	got, err := s.Open(sealed, "totp")
	if err != nil || string(got) != "secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(sealed, "signing-key"); err == nil {
		t.Fatal("opened with the wrong purpose")
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(sealed, "totp"); err == nil {
		t.Fatal("opened a tampered value")
	}
	if _, err := s.Open([]byte("x"), "totp"); err == nil {
		t.Fatal("opened a truncated value")
	}
	if _, err := New([]byte("short")); err == nil {
		t.Fatal("accepted a short key")
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "secret.key")
	if _, _, err := LoadOrCreateKey(path, false); err == nil {
		t.Fatal("missing key file without create should fail")
	}
	k1, created, err := LoadOrCreateKey(path, true)
	if err != nil || !created || len(k1) != KeySize {
		t.Fatalf("create: %v created=%v len=%d", err, created, len(k1))
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode = %v, %v", st.Mode().Perm(), err)
	}
	k2, created, err := LoadOrCreateKey(path, true)
	if err != nil || created || !bytes.Equal(k1, k2) {
		t.Fatalf("reload: %v created=%v same=%v", err, created, bytes.Equal(k1, k2))
	}
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(path, true); err == nil {
		t.Fatal("accepted a malformed key file")
	}
}
