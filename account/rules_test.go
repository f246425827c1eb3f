package account

import (
	"strings"
	"testing"

	"github.com/keyport/keyport/storage"
)

func TestDeviceParts(t *testing.T) {
	for ua, want := range map[string][2]string{
		"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36":                   {"Chrome", "Linux"},
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 Version/17.0 Mobile/15E148 Safari/604.1": {"Safari", "iOS"},
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0":                                    {"Firefox", "Windows"},
		"curl/8.5.0": {"curl", ""},
		"":           {"Unknown browser", ""},
	} {
		if browser, system := DeviceParts(ua); browser != want[0] || system != want[1] {
			t.Errorf("DeviceParts(%q) = %q, %q, want %q", ua, browser, system, want)
		}
	}
}

func TestInitialsSVGEscapes(t *testing.T) {
	svg := string(InitialsSVG(storage.User{ID: "u1", Name: `<script>alert(1)</script> & "Bob"`}))
	if strings.Contains(svg, "<script") || !strings.HasPrefix(svg, "<svg") {
		t.Fatalf("unescaped: %s", svg)
	}
	if got := initialsOf("Ärger Özdemir"); got != "ÄÖ" {
		t.Errorf("initials of non-ASCII name: %q", got)
	}
	if got := initialsOf("   "); got != "?" {
		t.Errorf("initials of nothing: %q", got)
	}
}

func TestSniffImage(t *testing.T) {
	for name, c := range map[string]struct {
		data []byte
		ok   bool
	}{
		"png":  {[]byte("\x89PNG\r\n\x1a\n...."), true},
		"jpeg": {[]byte{0xFF, 0xD8, 0xFF, 0xE0}, true},
		"webp": {[]byte("RIFF\x00\x00\x00\x00WEBPVP8 "), true},
		"gif":  {[]byte("GIF89a"), false},
		"svg":  {[]byte("<svg xmlns=\"http://www.w3.org/2000/svg\"/>"), false},
		"riff": {[]byte("RIFF\x00\x00\x00\x00WAVE"), false},
	} {
		if sniffImage(c.data) != c.ok {
			t.Errorf("%s: sniff = %v", name, !c.ok)
		}
	}
}

func TestRecoveryCodes(t *testing.T) {
	codes, hashes := newRecoveryCodes()
	if len(codes) != RecoveryCodeCount || len(hashes) != RecoveryCodeCount {
		t.Fatalf("%d codes", len(codes))
	}
	seen := map[string]bool{}
	for i, c := range codes {
		if len(c) != 11 || c[5] != '-' || strings.ContainsAny(c, "01ilo") || seen[c] {
			t.Errorf("bad code %q", c)
		}
		seen[c] = true
		if HashSecret(normalizeRecoveryCode(" "+strings.ToUpper(c)+" ")) != hashes[i] {
			t.Errorf("code %q does not match its hash after normalising", c)
		}
	}
}
