package portal

import (
	"strings"

	"github.com/keyport/keyport/web"
)

// methodText is how the activity page names the method of a sign-in
// attempt, in lang. An upstream provider's sign-in is recorded as "fed"
// followed by what the provider said it checked and any factor Keyport
// asked for after it ("fed+pwd", "fed+pwd+otp"): it is named as the
// upstream provider with those steps in words. Values of an upstream that
// Keyport has no words for are shown as they are (they are short tokens).
func methodText(lang, m string) string {
	rest, ok := strings.CutPrefix(m, "fed")
	if !ok || rest != "" && rest[0] != '+' {
		return web.Translate(lang, methodName(m))
	}
	var steps []string
	for _, step := range strings.Split(rest, "+") {
		if step != "" {
			steps = append(steps, web.Translate(lang, stepName(step)))
		}
	}
	if len(steps) == 0 {
		return web.Translate(lang, "Upstream provider")
	}
	return web.Translate(lang, "Upstream provider (%s)", strings.Join(steps, ", "))
}

// stepName names one amr value inside an upstream sign-in.
func stepName(amr string) string {
	switch amr {
	case "pwd":
		return "password"
	case "otp":
		return "code"
	case "hwk", "swk":
		return "passkey"
	}
	return amr
}
