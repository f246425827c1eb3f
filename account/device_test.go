package account_test

import (
	"testing"

	"github.com/keyport/keyport/account"
)

// What people type is read generously (case, the dash, spaces); anything
// else is no user code and costs no store read.
func TestNormalizeUserCode(t *testing.T) {
	for typed, want := range map[string]string{
		"BCDF-GHJK":                             "BCDFGHJK",
		"bcdf-ghjk":                             "BCDFGHJK",
		" bcdf ghjk ":                           "BCDFGHJK",
		"BCDFGHJK":                              "BCDFGHJK",
		"BCDF-GHJ":                              "", // too short
		"BCDF-GHJKL":                            "", // too long
		"BCDA-GHJK":                             "", // a vowel: not in the alphabet
		"BCDF-GHJ1":                             "", // a digit
		"BCDF-GHJK\x00":                         "", // a NUL
		"ＢＣＤＦ-ＧＨＪＫ":                             "", // full-width letters
		"":                                      "",
		"BCDF-GHJK" + string(make([]byte, 100)): "",
	} {
		if got := account.NormalizeUserCode(typed); got != want {
			t.Errorf("NormalizeUserCode(%q) = %q, want %q", typed, got, want)
		}
	}
	if got := account.FormatUserCode("BCDFGHJK"); got != "BCDF-GHJK" {
		t.Errorf("FormatUserCode = %q", got)
	}
}
