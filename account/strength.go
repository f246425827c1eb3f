package account

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
)

// strengthRunes is how much of a password the strength estimator reads.
// Its matchers are superlinear: 64 characters cost at most about 10 ms,
// 1024 characters of a repeated pattern more than 10 s. A password whose
// first 64 characters are strong is strong; one whose first 64 are not is
// refused like a short weak one.
const strengthRunes = 64

// checkStrength refuses a password that zxcvbn scores below the policy's
// minimum (0 to 4; 0 checks nothing). personal are the person's own
// username, email and names: a password built from them is easy for anyone
// who knows the person, so they count as guessable words.
func (s *Service) checkStrength(password string, personal []string) error {
	if s.policy.MinPasswordScore <= 0 {
		return nil
	}
	if utf8.RuneCountInString(password) > strengthRunes {
		password = string([]rune(password)[:strengthRunes])
	}
	res := zxcvbn.PasswordStrength(password, personalWords(personal))
	if res.Score >= s.policy.MinPasswordScore {
		return nil
	}
	for _, m := range res.Sequence {
		if m.DictionaryName == "user_inputs" {
			return Errorf(Invalid, "This password is too easy to guess because it contains your name, username or email address. Choose one without them, for example four or five unrelated words.")
		}
	}
	// The message says what to do instead; the portal translates it.
	return Errorf(Invalid, "This password is too easy to guess. Use a longer one, for example four or five unrelated words, and avoid common passwords, names, dates and keyboard patterns.")
}

// personalWords turns a person's username, email and names into the words
// zxcvbn looks for: each value whole and split at anything that is not a
// letter or digit ("alice.smith@example.org" gives "alice", "smith",
// "example", ...), words of fewer than three characters left out.
func personalWords(values []string) []string {
	var out []string
	add := func(w string) {
		if utf8.RuneCountInString(w) >= 3 {
			out = append(out, strings.ToLower(w))
		}
	}
	for _, v := range values {
		v = strings.TrimSpace(v)
		add(v)
		if addr, err := mail.ParseAddress(v); err == nil {
			local, _, _ := strings.Cut(addr.Address, "@")
			add(local)
		}
		for _, w := range strings.FieldsFunc(v, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) }) {
			add(w)
		}
	}
	return out
}
