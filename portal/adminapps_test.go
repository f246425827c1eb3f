package portal

import (
	"testing"
	"time"
)

// The app form writes a lifetime the way it reads it back, so saving an
// unchanged form changes nothing.
func TestLifetimeTextRoundTrip(t *testing.T) {
	for _, c := range []struct {
		d    time.Duration
		text string
	}{
		{0, ""}, {10 * time.Minute, "10m"}, {time.Hour, "1h"}, {90 * time.Minute, "1h30m"},
		{30 * 24 * time.Hour, "30d"}, {45 * time.Second, "45s"}, {time.Hour + 5*time.Second, "1h0m5s"},
	} {
		if got := lifetimeText(c.d); got != c.text {
			t.Errorf("lifetimeText(%s) = %q, want %q", c.d, got, c.text)
		}
		if back, err := parseLifetime("f", c.text); err != nil || back != c.d {
			t.Errorf("parseLifetime(%q) = %s, %v; want %s", c.text, back, err, c.d)
		}
	}
	for _, bad := range []string{"soon", "-5m", "10", "xd", "-1d", "99999d"} {
		if _, err := parseLifetime("f", bad); err == nil {
			t.Errorf("parseLifetime(%q) accepted", bad)
		}
	}
}
