// Package directory defines Keyport's external identity sources: password
// sources (LDAP: the source checks the password) and, later, redirect
// sources (upstream OIDC). Sources return plain Identity values; they know
// nothing of Keyport's storage or HTTP, so the account layer decides what a
// sign-in through a source means.
package directory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Errors every source reports in the same way, so callers can decide
// without knowing the source's protocol.
var (
	// ErrInvalidCredentials: unknown user, wrong password, or an empty one.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrDisabled: the source knows the user but reports them disabled.
	ErrDisabled = errors.New("account disabled in the directory")
	// ErrUnavailable: the source could not be reached or failed; the
	// message names the step (dial, TLS, bind, search).
	ErrUnavailable = errors.New("directory unavailable")
)

// Identity is a person as a source describes them.
type Identity struct {
	// ID is the source's stable identifier (e.g. LDAP entryUUID); it never
	// changes when the person is renamed.
	ID            string
	Username      string
	Email         string
	EmailVerified bool
	GivenName     string
	FamilyName    string
	DisplayName   string
	PhoneNumber   string
	Groups        []string
	// Picture is a JPEG or PNG from the source (LDAP jpegPhoto), if any.
	Picture []byte
	// Disabled: the source lists the person but marks them disabled (set
	// by Lister.Users; Login reports ErrDisabled instead).
	Disabled bool
	// AMR is how the upstream authenticated the person (RFC 8176), when
	// it says.
	AMR []string
}

// Capabilities says what a source owns and does.
type Capabilities struct {
	// Provider names the protocol: "ldap", "oidc".
	Provider string
	// OwnedFields are profile keys (account.Attributes) the source sets;
	// they are read-only in the portal.
	OwnedFields []string
	// Groups: the source provides group membership.
	Groups bool
	// SecondFactor: the source handles second factors itself, so Keyport
	// offers no TOTP or passkey enrolment to its users.
	SecondFactor bool
}

// Source is any identity source.
type Source interface {
	ID() string
	Name() string
	Capabilities() Capabilities
}

// PasswordSource checks a username and password.
type PasswordSource interface {
	Source
	Login(ctx context.Context, username, password string) (Identity, error)
}

// CallbackSource sends the browser to sign in elsewhere and takes it back
// (upstream OIDC).
type CallbackSource interface {
	Source
	ButtonLabel() string
	AuthURL(ctx context.Context, state, nonce, pkceVerifier string) (string, error)
	Exchange(ctx context.Context, code, pkceVerifier, nonce string) (Identity, error)
	LinkByVerifiedEmail() bool
	CreateUsers() bool
}

// TestReport is what "test connection" shows.
type TestReport struct {
	Users  int       // how many users the filter finds
	Sample *Identity // one of them, mapped
}

// Tester can check its connection end to end.
type Tester interface {
	Source
	// Test reports success with a user count and a sample, or an error
	// naming the failing step (dial, TLS, bind, search).
	Test(ctx context.Context) (TestReport, error)
}

// Lister can enumerate its users (for sync).
type Lister interface {
	Source
	// Users returns every user in scope (the caller compares it with what
	// it has to find who vanished).
	Users(ctx context.Context) ([]Identity, error)
	// Lookup finds one user by the source's ID; ErrInvalidCredentials when
	// the source no longer knows them.
	Lookup(ctx context.Context, id string) (Identity, error)
}

// Settings is one source type's configuration (ldap.Config, oidc.Config)
// as config.toml and the admin page describe it. Its fields carry the
// config.toml keys as toml tags; stored directories keep it as JSON.
type Settings interface {
	// Secret points at the one field that is sealed when a directory is
	// stored (bind password, client secret) and never shown again.
	Secret() *string
	// Build applies what Keyport rather than the operator decides (env),
	// validates the settings and returns the source. It does not connect.
	Build(env Env) (Source, error)
}

// Env is what Keyport supplies to every source it builds.
type Env struct {
	// ID is the directory's id (config.toml's id, the admin page's ID).
	ID string
	// CallbackURL is where upstream providers send the browser back.
	CallbackURL string
	// Logger and Now serve sources that log outages and keep a schedule.
	Logger *slog.Logger
	Now    func() time.Time
}

// Problem is one thing wrong with a source's settings: the config.toml key
// at fault ("" when no one key is) and what is wrong with it.
type Problem struct {
	Key, Message string
}

// SettingsError is what Build (and a source's Open) reports about settings
// that cannot work, every problem named by its key, so the admin page and
// the management API can point at the field.
type SettingsError struct {
	// Type is the source type ("ldap", "oidc"), ID the directory's id.
	Type, ID string
	Problems []Problem
}

func (e *SettingsError) Error() string {
	parts := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		parts[i] = p.Message
		if p.Key != "" {
			parts[i] = p.Key + ": " + p.Message
		}
	}
	return fmt.Sprintf("%s source %q: %s", e.Type, e.ID, strings.Join(parts, "; "))
}

// Key is the key of the first problem: the field to point at.
func (e *SettingsError) Key() string {
	for _, p := range e.Problems {
		if p.Key != "" {
			return p.Key
		}
	}
	return ""
}
