package account

import (
	"context"
	"net/mail"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/trustelem/zxcvbn"
)

// strengthRunes is how much of a password the strength estimator reads.
// Its matchers are superlinear, and the l33t matcher worst of all: it tries
// every substitution of the characters that stand for letters
// ("4@8({[<3691!|70$5+%2"), so a password made of them costs, in the
// slowest of many random ones measured on an idle core, 1.9 ms at 16
// runes, 18 ms at 32, 108 ms at 48 and 384 ms at 64 (1024 runes of a
// repeated pattern took 13 s). At 32 the worst case costs about what one
// argon2id hash does, and 32 characters are far past what any score
// needs: a password whose first 32 characters are strong is strong; one
// whose first 32 are not is refused like a short weak one.
const strengthRunes = 32

// checkStrength refuses a password that zxcvbn scores below the policy's
// minimum (0 to 4; 0 checks nothing). personal are the person's own
// username, email and names: a password built from them is easy for anyone
// who knows the person, so they count as guessable words.
//
// The estimate runs through the password-hash gate: it costs about what a
// hash does, and the setup page (with a setup link) and every signed-in
// person can ask for it, so it shares the hashes' bound on cores and
// queue, and a burst gets 503 with Retry-After instead of the CPU.
func (s *core) checkStrength(ctx context.Context, password string, personal []string) error {
	if s.policy().MinPasswordScore <= 0 {
		return nil
	}
	if utf8.RuneCountInString(password) > strengthRunes {
		password = string([]rune(password)[:strengthRunes])
	}
	var (
		res  zxcvbn.Result
		took time.Duration
	)
	if err := s.hashes.do(ctx, func() {
		start := time.Now()
		res = zxcvbn.PasswordStrength(password, personalWords(personal))
		took = time.Since(start)
	}); err != nil {
		return err
	}
	s.log.DebugContext(ctx, "password strength estimated", "score", res.Score, "took", took)
	if res.Score >= s.policy().MinPasswordScore {
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
