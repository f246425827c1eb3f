package portal

import (
	"net/http"
	"strconv"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/throttle"
	"github.com/keyport/keyport/web"
)

// A refused attempt (throttled, or the server too busy to check a password)
// is answered at once, never held: the status says why, Retry-After says
// when (RFC 9110 §10.2.3), and a page says it in words.

// setRetryAfter sends err's wait, in whole seconds rounded up, when it has one.
func setRetryAfter(w http.ResponseWriter, err error) {
	if d := account.RetryAfter(err); d > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(throttle.RetryAfterSeconds(d)))
	}
}

// errorText is err's message in lang, with how long to wait when it says.
// A message with args is translated by its format (account.LocalMessage),
// so that "No client %q." is German too.
func errorText(lang string, err error) string {
	msg := account.LocalMessage(err, func(text string) string { return web.Translate(lang, text) })
	if d := account.RetryAfter(err); d > 0 {
		msg += " " + web.Translate(lang, "Please try again in %s.", waitText(lang, d))
	}
	return msg
}

// waitText says a wait the way people count it, rounded up: "45 seconds",
// "1 minute", "14 minutes", "2 hours".
func waitText(lang string, d time.Duration) string {
	unit := func(n int, one, many string) string {
		if n == 1 {
			return web.Translate(lang, one)
		}
		return web.Translate(lang, many, n)
	}
	switch secs := throttle.RetryAfterSeconds(d); {
	case secs < 60:
		return unit(secs, "1 second", "%d seconds")
	case secs < 3600:
		return unit((secs+59)/60, "1 minute", "%d minutes")
	default:
		return unit((secs+3599)/3600, "1 hour", "%d hours")
	}
}
