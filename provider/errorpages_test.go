package provider

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestShownValue(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"https://app.example/cb", "https://app.example/cb"},
		{"a\x00b\r\nc\x1b", "a\uFFFDb\uFFFD\uFFFDc\uFFFD"},
		{"bad \xff utf-8", "bad \uFFFD utf-8"},
		// Format characters (Unicode category Cf) reorder or hide text: a
		// right-to-left override makes "evil.example/moc.elgoog" read
		// "google.com/…"; zero-width ones hide a difference between two
		// look-alike values.
		{"https://evil.example/\u202Emoc.elgoog", "https://evil.example/\uFFFDmoc.elgoog"},
		{"a\u2066b\u2067c\u2068d\u2069e", "a\uFFFDb\uFFFDc\uFFFDd\uFFFDe"},
		{"app\u200B\u200C\u200D\u2060\uFEFFid", "app\uFFFD\uFFFD\uFFFD\uFFFD\uFFFDid"},
		{"\u200E\u200F\u061C\u00AD", "\uFFFD\uFFFD\uFFFD\uFFFD"},
		// Letters of any script stay.
		{"bücher.example/ünïcødé/日本/עברית", "bücher.example/ünïcødé/日本/עברית"},
		{strings.Repeat("ü", maxShownValue), strings.Repeat("ü", maxShownValue)},
		{strings.Repeat("ü", maxShownValue+1), strings.Repeat("ü", maxShownValue) + "…"},
	} {
		got := shownValue(c.in)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("shownValue(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
