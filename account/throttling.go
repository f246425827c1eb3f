package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// throttlePolicy turns the account policy into the throttle's.
func throttlePolicy(p Policy) throttle.Policy {
	return throttle.Policy{
		AccountAddress: throttle.Window{Limit: p.MaxLoginAttempts, Window: p.LoginWindow},
		Address:        throttle.Window{Limit: p.MaxLoginAttemptsPerAddress, Window: p.LoginWindow},
		// Apps' client authentications get a budget of their own, of the
		// same size: people's failures behind a shared address must not
		// stop its apps, nor the apps' the people.
		ClientAddress: throttle.Window{Limit: p.MaxLoginAttemptsPerAddress, Window: p.LoginWindow},
		Account: throttle.Backoff{
			Failures: p.AccountLockoutFailures, Wait: p.AccountLockoutWait,
			MaxWait: p.AccountLockoutMaxWait, Reset: p.AccountLockoutReset,
		},
	}
}

// subject is how the throttle knows the person behind a login name: the
// account when there is one, else the name itself, so names that exist and
// names that do not are throttled alike.
func subject(u storage.User, known bool, login string) throttle.Subject {
	if known {
		return throttle.User(u.ID)
	}
	return throttle.Name(normalizeLogin(login))
}

// Messages of refused attempts; the HTTP layers add how long to wait.
const (
	msgTooManySignIns = "Too many failed sign-in attempts."
	msgTooManyCodes   = "Too many wrong codes."
	msgTooManyTokens  = "Too many failed attempts."
)

// LogRefused is the message of the INFO line written for each refused
// attempt. Anyone can repeat it at will, so the log's handler limits it
// (loglimit.Options.Messages); the WARN lines of failures are never held.
const LogRefused = "sign-in refused: throttled"

// refused turns a reservation's error into the answer: RateLimited with
// the wait for a throttled attempt; anything else wrapped (Internal).
func (s *core) refused(ctx context.Context, err error, message, method, login, ip string) error {
	var r *throttle.Refused
	if errors.As(err, &r) {
		// At INFO, one line per refusal: the message stays the same and
		// what varies is in attributes, so the log's handler folds a flood
		// of them (LogRefused); the failures before it and the trip are at
		// WARN.
		s.observe(func(o Observer) { o.Throttled(method) })
		s.log.InfoContext(ctx, LogRefused, "client_ip", ip, "client_net", throttle.Address(ip), "method", method, "login", LogName(login), "limit", r.Scope, "retry_after", r.RetryAfter)
		return &Error{Code: RateLimited, Message: message, RetryAfter: r.RetryAfter}
	}
	return fmt.Errorf("reserve a %s attempt: %w", method, err)
}

// failed ends a reservation as a failure: it is counted, logged (with any
// limit it reached) and recorded in the history.
func (s *core) failed(ctx context.Context, res *throttle.Reservation, a storage.LoginAttempt, reason string) {
	trips, err := res.Fail(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "count failed sign-in", "err", err)
	}
	s.logFailure(ctx, a.Method, a.Login, a.IP, reason)
	for _, t := range trips {
		args := []any{"client_ip", a.IP, "client_net", throttle.Address(a.IP), "method", a.Method, "login", LogName(a.Login), "limit", t.Scope, "retry_after", t.For}
		if t.Round > 0 {
			args = append(args, "round", t.Round)
		}
		s.log.WarnContext(ctx, "sign-in throttled", args...)
	}
	a.Reason = reason
	s.record(ctx, a)
}

// admit lets in a person whose password (or directory sign-in) was right,
// unless the account is blocked or the address is outside its allowlist:
// the allowlist is checked after the password, so it reveals nothing to
// someone who does not know the password. A refusal is no guess: the
// reservation is cancelled, and the attempt recorded with the reason. On
// admission the reservation succeeds, which forgives earlier failures.
func (s *core) admit(ctx context.Context, res *throttle.Reservation, attempt storage.LoginAttempt, u storage.User) error {
	reason, err := signInRefusal(u), CheckInteractive(u)
	if err == nil {
		reason, err = "network not allowed", checkNetwork(u, attempt.IP)
	}
	if err != nil {
		res.Cancel()
		attempt.UserID, attempt.Reason = u.ID, reason
		s.record(ctx, attempt)
		return err
	}
	if err := res.Succeed(ctx); err != nil {
		s.log.ErrorContext(ctx, "forgive failed sign-ins", "user_id", u.ID, "err", err)
	}
	return nil
}

// logFailure writes the one line per failed sign-in that operators and
// fail2ban read (docs/fail2ban). Its shape is stable: the fixed message,
// then the client address and the network it is throttled as (the address
// itself for IPv4, its /64 for IPv6: what fail2ban should ban), then what
// the caller sent. The address comes before anything a caller chooses, so
// a login name such as `x client_ip=192.0.2.1` can never stand where a
// filter looks for the address.
func (s *core) logFailure(ctx context.Context, method, login, ip, reason string) {
	s.log.WarnContext(ctx, "sign-in failed", "client_ip", ip, "client_net", throttle.Address(ip), "method", method, "login", LogName(login), "reason", reason)
}

// maxLoggedLogin bounds a login name in the log, in characters.
const maxLoggedLogin = 64

// LogName is a name as typed (a login name, a client ID), fit for a log
// line: control and format characters (newlines, escapes, direction
// overrides) removed, and at most maxLoggedLogin characters, with "…" when
// it was longer.
func LogName(login string) string {
	cut := false
	if len(login) > 4*maxLoggedLogin {
		login, cut = login[:4*maxLoggedLogin], true // enough bytes for maxLoggedLogin characters
	}
	if !utf8.ValidString(login) {
		login = strings.ToValidUTF8(login, "\uFFFD")
	}
	clean := strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || r == '\u2028' || r == '\u2029' {
			return -1
		}
		return r
	}, login)
	if runes := []rune(clean); len(runes) > maxLoggedLogin {
		clean, cut = string(runes[:maxLoggedLogin]), true
	}
	if cut {
		clean += "…"
	}
	return clean
}
