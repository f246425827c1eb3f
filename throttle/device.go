package throttle

import "context"

// ScopeUserCodes is the limit on the user codes of the device flow (RFC
// 8628) one signed-in person types.
const ScopeUserCodes Scope = "user_codes"

// UserCode reserves one check of a device flow's user code typed by the
// signed-in person userID from addr. A user code is short (RFC 8628 §6.1),
// so guesses are limited per person and per address, as one-time codes
// are, but under a key of the person's own: a mistyped user code never
// counts against their second factor. A right code forgives nothing: the
// person's own device's code, typed between guesses, must not wipe them
// out; the window (the sign-in's) lets old mistakes go.
func (l *Limiter) UserCode(ctx context.Context, userID, addr string) (*Reservation, error) {
	checks := []check{{key: key("dc", part(userID)), scope: ScopeUserCodes, window: l.rules().AccountAddress, enforce: true}}
	return l.reserve(ctx, l.withAddress(checks, Address(addr)))
}
