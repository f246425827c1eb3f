package portal

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
)

func TestWaitText(t *testing.T) {
	for _, c := range []struct {
		d      time.Duration
		en, de string
	}{
		{time.Millisecond, "1 second", "1 Sekunde"},
		{59 * time.Second, "59 seconds", "59 Sekunden"},
		{59*time.Second + time.Millisecond, "1 minute", "1 Minute"},
		{61 * time.Second, "2 minutes", "2 Minuten"},
		{14*time.Minute + time.Second, "15 minutes", "15 Minuten"},
		{time.Hour, "1 hour", "1 Stunde"},
		{90 * time.Minute, "2 hours", "2 Stunden"},
	} {
		if got := waitText("en", c.d); got != c.en {
			t.Errorf("waitText(en, %s) = %q, want %q", c.d, got, c.en)
		}
		if got := waitText("de", c.d); got != c.de {
			t.Errorf("waitText(de, %s) = %q, want %q", c.d, got, c.de)
		}
	}
}

// The answers to refused attempts reach the page in German, wait and all,
// and Retry-After counts whole seconds, rounded up.
func TestRefusalText(t *testing.T) {
	for msg, want := range map[string]string{
		"Too many failed sign-in attempts.":              "Zu viele fehlgeschlagene Anmeldeversuche. Bitte versuchen Sie es in 3 Minuten erneut.",
		"Too many wrong codes.":                          "Zu viele falsche Codes. Bitte versuchen Sie es in 3 Minuten erneut.",
		"Too many failed attempts.":                      "Zu viele fehlgeschlagene Versuche. Bitte versuchen Sie es in 3 Minuten erneut.",
		"Too many sign-ins are being checked right now.": "Gerade werden zu viele Anmeldungen geprüft. Bitte versuchen Sie es in 3 Minuten erneut.",
	} {
		err := &account.Error{Code: account.RateLimited, Message: msg, RetryAfter: 150*time.Second + time.Millisecond}
		if got := errorText("de", err); got != want {
			t.Errorf("errorText(de, %q) = %q, want %q", msg, got, want)
		}
		w := httptest.NewRecorder()
		setRetryAfter(w, err)
		if got := w.Header().Get("Retry-After"); got != "151" {
			t.Errorf("Retry-After = %q, want 151", got)
		}
	}
	w := httptest.NewRecorder()
	setRetryAfter(w, account.Errorf(account.Unauthorized, "Incorrect username or password."))
	if got := w.Header().Get("Retry-After"); got != "" {
		t.Errorf("Retry-After on an error without a wait: %q", got)
	}
}

// A message with args reaches a German page in German, args and all; the
// JSON API's English is the message as it was formatted.
func TestFormattedErrorText(t *testing.T) {
	err := account.FieldErrorf("redirect_uris", "Redirect URI %q has no host.", "https:///cb")
	if got, want := errorText("de", err), `Die Weiterleitungs-URI "https:///cb" hat keinen Host.`; got != want {
		t.Errorf("errorText(de) = %q, want %q", got, want)
	}
	if got := errorText("en", err); got != err.Message || got != `Redirect URI "https:///cb" has no host.` {
		t.Errorf("errorText(en) = %q", got)
	}
}
