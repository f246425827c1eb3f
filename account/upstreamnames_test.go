package account

import (
	"slices"
	"testing"

	"github.com/keyport/keyport/directory"
)

func TestUsernameFrom(t *testing.T) {
	for raw, want := range map[string]string{
		"ursula":             "ursula",
		"zoë":                "zoe",
		"ulla@example.org":   "ulla",
		"Zoë Tester":         "zoe-tester",
		"  Jean-Luc  Picard": "jean-luc-picard",
		"ÅSA.öberg_2":        "asa.oberg_2",
		"Weiß":               "weiss",
		"STRAẞE":             "strasse",
		"Ærø":                "aero",
		"Søren Kierkegaard":  "soren-kierkegaard",
		"Łukasz Żółć":        "lukasz-zolc",
		"Đorđe":              "dorde",
		"Þórður":             "thordur",
		"Œuvre cœur":         "oeuvre-coeur",
		"Guðrún":             "gudrun",
		"..hidden":           "hidden",
		"李雷":                 "",
		"@example.org":       "",
		"":                   "",
		"a very long name that goes on and on and on well past the limit of usernames": "a-very-long-name-that-goes-on-and-on-and-on-well-past-th",
	} {
		got := usernameFrom(raw)
		if got != want {
			t.Errorf("usernameFrom(%q) = %q, want %q", raw, got, want)
		}
		if got != "" && !usernamePattern.MatchString(got) {
			t.Errorf("usernameFrom(%q) = %q, not a valid username", raw, got)
		}
	}
}

// TestUpstreamSessionAMR: an upstream's own "mfa" makes a sign-in two-
// factor (acr) only when its source handles second factors.
func TestUpstreamSessionAMR(t *testing.T) {
	ident := directory.Identity{AMR: []string{"pwd", "otp", "mfa"}}
	untrusted := UpstreamSessionAMR(ident, false)
	if !slices.Equal(untrusted, []string{"fed", "pwd", "otp"}) || ACRFor(untrusted, []string{ACRSecondFactor}) != ACRPassword {
		t.Errorf("upstream without handles_second_factor: amr %q, acr %s", untrusted, ACRFor(untrusted, []string{ACRSecondFactor}))
	}
	trusted := UpstreamSessionAMR(ident, true)
	if !slices.Equal(trusted, []string{"fed", "pwd", "otp", "mfa"}) || ACRFor(trusted, []string{ACRSecondFactor}) != ACRSecondFactor {
		t.Errorf("upstream with handles_second_factor: amr %q, acr %s", trusted, ACRFor(trusted, []string{ACRSecondFactor}))
	}
}

func TestUpstreamAMRValues(t *testing.T) {
	for _, c := range []struct{ in, want []string }{
		{nil, []string{"fed"}},
		{[]string{"pwd"}, []string{"fed", "pwd"}},
		{[]string{"pwd", "otp", "mfa", "pwd", "fed"}, []string{"fed", "pwd", "otp", "mfa"}},
		{[]string{"", "a b", "<script>", "hwk"}, []string{"fed", "hwk"}},
		{[]string{"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"}, []string{"fed", "a", "b", "c", "d", "e", "f", "g", "h"}},
	} {
		if got := UpstreamAMR(directory.Identity{AMR: c.in}); !slices.Equal(got, c.want) {
			t.Errorf("UpstreamAMR(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}
