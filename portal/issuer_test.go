package portal

import (
	"testing"
)

// The issuer is parsed once, when the portal is built: one that does not
// parse stops start-up, and the comparisons with it hold as before.
func TestIssuerParsedOnce(t *testing.T) {
	if _, err := New(Options{Web: testWeb(t), Issuer: "https://id.example.com:8443/%zz"}); err == nil {
		t.Error("started with an issuer that does not parse")
	}
	s, err := New(Options{Web: testWeb(t), Issuer: "https://id.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	for location, want := range map[string]bool{
		"/login":                               true,
		"https://id.example.com/login":         true,
		"HTTPS://ID.EXAMPLE.COM/login":         true,
		"http://id.example.com/login":          false,
		"https://id.example.com:8443/login":    false,
		"https://evil.example.com/login":       false,
		"https://id.example.com/end_session":   false,
		"https://user@id.example.com/login":    false,
		"https://id.example.com/no-such-route": false,
	} {
		if got := s.portalPage(location); got != want {
			t.Errorf("portalPage(%q) = %v, want %v", location, got, want)
		}
	}
	for _, tc := range []struct {
		host, scheme string
		want         bool
	}{
		{"id.example.com", "https", true},
		{"id.example.com:443", "https", true},
		{"ID.example.com", "", true},
		{"id.example.com", "http", false},
		{"id.example.com:8443", "https", false},
		{"other.example.com", "https", false},
	} {
		if got := s.isIssuerHost(tc.host, tc.scheme); got != tc.want {
			t.Errorf("isIssuerHost(%q, %q) = %v, want %v", tc.host, tc.scheme, got, tc.want)
		}
	}
}
