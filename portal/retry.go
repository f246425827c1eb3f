package portal

import (
	"maps"
	"net/http"
	"strconv"
	"time"

	"github.com/keyport/keyport/account"
)

// A refused attempt (throttled, or the server too busy to check a password)
// is answered at once, never held: the status says why, Retry-After says
// when (RFC 9110 §10.2.3), and a page says it in words.

// setRetryAfter sends err's wait, in whole seconds rounded up, when it has one.
func setRetryAfter(w http.ResponseWriter, err error) {
	if d := account.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(retrySeconds(d)))
	}
}

func retrySeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// errorText is err's message in lang, with how long to wait when it says.
func errorText(lang string, err error) string {
	msg := translate(lang, account.ErrorMessage(err))
	if d := account.RetryAfter(err); d > 0 {
		msg += " " + translate(lang, "Please try again in %s.", waitText(lang, d))
	}
	return msg
}

// waitText says a wait the way people count it, rounded up: "45 seconds",
// "1 minute", "14 minutes", "2 hours".
func waitText(lang string, d time.Duration) string {
	unit := func(n int, one, many string) string {
		if n == 1 {
			return translate(lang, one)
		}
		return translate(lang, many, n)
	}
	switch secs := retrySeconds(d); {
	case secs < 60:
		return unit(secs, "1 second", "%d seconds")
	case secs < 3600:
		return unit((secs+59)/60, "1 minute", "%d minutes")
	default:
		return unit((secs+3599)/3600, "1 hour", "%d hours")
	}
}

// deThrottle is German for the answers to refused attempts.
var deThrottle = map[string]string{
	"Too many failed sign-in attempts.":              "Zu viele fehlgeschlagene Anmeldeversuche.",
	"Too many wrong codes.":                          "Zu viele falsche Codes.",
	"Too many failed attempts.":                      "Zu viele fehlgeschlagene Versuche.",
	"Too many sign-ins are being checked right now.": "Gerade werden zu viele Anmeldungen geprüft.",
	"Please try again in %s.":                        "Bitte versuche es in %s erneut.",
	"1 second":                                       "1 Sekunde",
	"%d seconds":                                     "%d Sekunden",
	"1 minute":                                       "1 Minute",
	"%d minutes":                                     "%d Minuten",
	"1 hour":                                         "1 Stunde",
	"%d hours":                                       "%d Stunden",
}

func init() { maps.Copy(catalogs["de"], deThrottle) }
