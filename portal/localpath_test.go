package portal

import (
	"strings"
	"testing"
)

// One rule for every path a form or link may send the browser on to
// (return_to, the sign-out confirmation's continue), with the caller's
// limit.
func TestLocalPath(t *testing.T) {
	for _, c := range []struct {
		raw   string
		limit int
		ok    bool
	}{
		{"/", 2048, true},
		{"/security?tab=2fa#x", 2048, true},
		{"/end_session?client_id=app&state=%0A", 2048, true},
		{"/" + strings.Repeat("a", 2047), 2048, true},
		{"/" + strings.Repeat("a", 2048), 2048, false},
		{"/" + strings.Repeat("a", 2048), 8 << 10, true},
		{"", 2048, false},
		{"security", 2048, false},
		{"https://evil.example/", 2048, false},
		{"http:evil.example", 2048, false},
		{"//evil.example/", 2048, false},
		{"/\\evil.example/", 2048, false},
		{"/\t/evil.example/", 2048, false},
		{"/a\r\nSet-Cookie: x=1", 2048, false},
		{"/a\x00b", 2048, false},
		{"/a\x7fb", 2048, false},
		{"/a\u0085b", 2048, false}, // NEL, a C1 control
		{"/%zz", 2048, false},
	} {
		got, ok := localPath(c.raw, c.limit)
		if ok != c.ok || ok && got != c.raw {
			t.Errorf("localPath(%.40q, %d) = %q, %v; want ok %v", c.raw, c.limit, got, ok, c.ok)
		}
		if want := map[bool]string{true: c.raw, false: "/"}[c.ok]; c.limit == 2048 && safeReturn(c.raw) != want {
			t.Errorf("safeReturn(%.40q) = %q, want %q", c.raw, safeReturn(c.raw), want)
		}
	}
}
