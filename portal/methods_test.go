package portal

import "testing"

// Upstream sign-ins are named, with what the provider checked and any
// factor asked here, in English and German; other methods as before.
func TestMethodText(t *testing.T) {
	for _, c := range []struct{ method, en, de string }{
		{"fed", "Upstream provider", "Vorgeschalteter Anbieter"},
		{"fed+pwd", "Upstream provider (password)", "Vorgeschalteter Anbieter (Passwort)"},
		{"fed+pwd+otp", "Upstream provider (password, code)", "Vorgeschalteter Anbieter (Passwort, Code)"},
		{"fed+hwk", "Upstream provider (passkey)", "Vorgeschalteter Anbieter (Passkey)"},
		{"fed+sms", "Upstream provider (sms)", "Vorgeschalteter Anbieter (sms)"},
		{"pwd+otp", "Password and code", "Passwort und Code"},
		{"refresh_token", "Token refresh by an app", "Token-Erneuerung durch eine App"},
		{"federation", "federation", "federation"},
	} {
		if got := methodText("en", c.method); got != c.en {
			t.Errorf("methodText(en, %q) = %q, want %q", c.method, got, c.en)
		}
		if got := methodText("de", c.method); got != c.de {
			t.Errorf("methodText(de, %q) = %q, want %q", c.method, got, c.de)
		}
	}
}
