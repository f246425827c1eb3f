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
		{strings.Repeat("ü", maxShownValue), strings.Repeat("ü", maxShownValue)},
		{strings.Repeat("ü", maxShownValue+1), strings.Repeat("ü", maxShownValue) + "…"},
	} {
		got := shownValue(c.in)
		if got != c.want || !utf8.ValidString(got) {
			t.Errorf("shownValue(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
