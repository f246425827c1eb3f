package appdoc

import (
	"testing"
	"time"
)

// TestMaxAge: how long a key set is kept by its Cache-Control header.
func TestMaxAge(t *testing.T) {
	for cc, want := range map[string]time.Duration{
		"":                       DefaultAge,
		"max-age=120":            2 * time.Minute,
		"public, max-age=5":      MinAge,
		"max-age=999999999999":   MaxAge,
		"no-store":               MinAge,
		"max-age=\"300\", other": 5 * time.Minute,
	} {
		if got := maxAge(cc); got != want {
			t.Errorf("maxAge(%q) = %s, want %s", cc, got, want)
		}
	}
}
