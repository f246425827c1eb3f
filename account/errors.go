// Package account holds the rules about people and the apps they sign in to:
// authentication, password policy, sessions, client registration. It speaks
// in plain values and typed errors and knows nothing of HTTP.
//
// The rules are split by area, one service each, reached through the
// fields of Service: Users (accounts, profile, avatar, setup), Credentials
// (password change, TOTP, recovery codes, passkeys, trusted devices, app
// passwords, API tokens), SignIn (the password step, forward auth,
// sessions, the IP allowlist), Directories (external sources) and Clients.
// Each holds only the part of storage its rules need; what they share
// (policy, clock, log, throttle, hash gate, sources, history) is one core.
//
// Errors people must read are *Error values with a Code; anything else is
// an internal error, wrapped with its context, and ErrorCode maps it to
// Internal with a generic message.
package account

import (
	"errors"
	"fmt"
	"time"
)

// Code classifies an error for the HTTP layers, which map each code to a
// status in one place.
type Code string

const (
	Invalid      Code = "invalid"      // bad input; the message says what
	NotFound     Code = "not_found"    // no such thing
	Conflict     Code = "conflict"     // already exists / clashes
	Unauthorized Code = "unauthorized" // wrong or missing credentials
	Forbidden    Code = "forbidden"    // known, but not allowed
	RateLimited  Code = "rate_limited" // too many attempts
	Internal     Code = "internal"     // our fault; the message is generic
	Unavailable  Code = "unavailable"  // a dependency is down
	// PreconditionFailed: the record changed since the caller read it (a
	// stale ETag); nothing was changed.
	PreconditionFailed Code = "precondition_failed"
)

// Error is an application error with a message that is safe to show a user.
type Error struct {
	Code    Code
	Message string
	// Field names the input at fault (a form field or JSON key), when one is.
	Field string
	Err   error // cause, for logs only
	// RetryAfter is how long to wait before trying again (RateLimited,
	// Unavailable); zero when unknown. The HTTP layers send it as
	// Retry-After and say it on the page.
	RetryAfter time.Duration

	// format and args are what Errorf or FieldErrorf made Message of, kept
	// so that LocalMessage can translate the format, whose words the
	// catalogs know, and then put the args in; Message is formatted
	// already and so never found in a catalog when it has args.
	format string
	args   []any
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %v", e.Message, e.Err)
	}
	return e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf builds an Error whose message is shown to users.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), format: format, args: args}
}

// ErrorCode returns the code of err, or Internal when it is not an *Error.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// ErrorMessage returns the user-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "Something went wrong on our side. Please try again."
}

// errInvalidCredentials is the one answer to every failed password sign-in,
// whether or not the account exists.
var errInvalidCredentials = &Error{Code: Unauthorized, Message: "Incorrect username or password."}

// FieldErrorf is Errorf for bad input in one named field.
func FieldErrorf(field string, format string, args ...any) *Error {
	return &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(format, args...), format: format, args: args}
}

// phrase is an Errorf arg that is fixed English text (a setting's kind, a
// field's label, a message of another package), which LocalMessage
// translates too; any other arg is a value and is put in as it is.
type phrase string

// inField is e about field: a rule's message reported at the input it
// came from, keeping what LocalMessage needs.
func inField(field string, e *Error) *Error {
	f := *e
	f.Code, f.Field = Invalid, field
	return &f
}

// LocalMessage returns the user-safe message of err in a person's
// language. translate turns fixed English text into that language (the
// portal's catalog lookup; text it does not know comes back as it is).
// A message with args is translated by its format, then the args are put
// in, those of them that are phrases translated as well; a format the
// catalog does not know falls back to the finished message. The JSON API
// and the protocol endpoints keep ErrorMessage: machines read English.
func LocalMessage(err error, translate func(text string) string) string {
	var e *Error
	if !errors.As(err, &e) {
		return translate(ErrorMessage(err))
	}
	if len(e.args) == 0 {
		return translate(e.Message)
	}
	local := translate(e.format)
	if local == e.format {
		// Not in the catalog (or English): the whole message may be, as
		// for a "%s" that passes on another rule's message.
		if whole := translate(e.Message); whole != e.Message {
			return whole
		}
	}
	args := make([]any, len(e.args))
	for i, a := range e.args {
		if p, ok := a.(phrase); ok {
			a = translate(string(p))
		}
		args[i] = a
	}
	return fmt.Sprintf(local, args...)
}

// ErrorField returns the field an error is about, or "".
func ErrorField(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}

// RetryAfter returns how long err asks the caller to wait before trying
// again, or zero.
func RetryAfter(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}
