package account

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/storage"
)

// SignInUpstream turns a verified upstream identity into a Keyport user:
// the account already linked to it; else, when the source allows it, the
// account with the same verified email (never an unverified one); else a
// new account when the source may create them. Every attempt is recorded.
func (s *DirectoryService) SignInUpstream(ctx context.Context, src directory.CallbackSource, ident directory.Identity, ip, userAgent string) (storage.User, error) {
	now := s.now()
	if s.DirectoryDisabled(src.ID()) {
		return storage.User{}, Errorf(Forbidden, "Sign-in with %s is turned off.", src.Name())
	}
	// The method as a successful sign-in records it (methodOf its amr), so
	// the history names failures and successes alike.
	attempt := storage.LoginAttempt{ID: NewID(), Login: ident.Username, Time: now, IP: ip, UserAgent: userAgent, Method: methodOf(UpstreamAMR(ident))}
	fail := func(userID, reason string, err error) (storage.User, error) {
		attempt.UserID, attempt.Reason = userID, reason
		s.record(ctx, attempt)
		return storage.User{}, err
	}
	linked, err := s.store.GetUserByIdentity(ctx, src.ID(), ident.ID)
	switch {
	case err == nil:
		if linked.Source == src.ID() {
			// The username was fixed at the first sign-in (and may have been
			// derived from the upstream's); an upstream's preferred_username
			// is not stable, so later sign-ins refresh the other fields only.
			ident.Username = linked.Username
			if linked, _, err = s.provision(ctx, src, ident); err != nil {
				return fail(linked.ID, "account could not be refreshed", err)
			}
		}
	case errors.Is(err, storage.ErrNotFound):
		linked, err = s.linkOrCreate(ctx, src, ident)
		if err != nil {
			return fail("", "no linked account", err)
		}
	default:
		return storage.User{}, fmt.Errorf("find the account linked to %s user %q: %w", src.ID(), ident.ID, err)
	}
	if err := CheckInteractive(linked); err != nil {
		return fail(linked.ID, signInRefusal(linked), err)
	}
	if err := checkNetwork(linked, ip); err != nil {
		return fail(linked.ID, "network not allowed", err)
	}
	return linked, nil
}

func (s *DirectoryService) linkOrCreate(ctx context.Context, src directory.CallbackSource, ident directory.Identity) (storage.User, error) {
	if src.LinkByVerifiedEmail() && ident.EmailVerified && ident.Email != "" {
		u, err := s.store.GetUserByLogin(ctx, ident.Email)
		if err == nil && u.EmailVerified && strings.EqualFold(u.Email, ident.Email) {
			link := storage.Identity{Connection: src.ID(), Provider: src.Capabilities().Provider, UserID: ident.ID, IsSocial: true}
			u, err = s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
				u.Identities = append(u.Identities, link)
				return u, nil
			})
			if err != nil {
				return storage.User{}, s.linkError(src, ident, err)
			}
			s.log.InfoContext(ctx, "upstream account linked by verified email", "user_id", u.ID, "source", src.ID())
			return u, nil
		}
	}
	if !src.CreateUsers() {
		return storage.User{}, Errorf(Forbidden, "No account here is linked to your %s account. Ask your administrator.", src.Name())
	}
	return s.createUpstreamUser(ctx, src, ident)
}

// UpstreamError is the user-facing error for a failed upstream sign-in.
func UpstreamError(src directory.CallbackSource, err error) error {
	e := Errorf(Unauthorized, "The sign-in with %s could not be verified. Please try again.", src.Name())
	if errors.Is(err, directory.ErrUnavailable) {
		e = Errorf(Unavailable, "%s cannot be reached right now. Please try again later.", src.Name())
	}
	e.Err = err
	return e
}

// UpstreamSessionAMR is the amr a session started through an upstream
// records: UpstreamAMR, less the upstream's "mfa" unless its source
// handles second factors (handles_second_factor, trusted). The class a
// sign-in meets (ACRFor) reads "mfa", and Keyport vouches for a second
// factor only when it asked for one itself or the administrator told it
// to trust the upstream's: the rule by which the upstream's own "mfa"
// never spares anyone Keyport's second factor either. The upstream's other
// values stay, saying how it authenticated the person.
func UpstreamSessionAMR(ident directory.Identity, trusted bool) []string {
	amr := UpstreamAMR(ident)
	if trusted {
		return amr
	}
	return slices.DeleteFunc(amr, func(m string) bool { return m == "mfa" })
}

// maxUpstreamAMR bounds how many of an upstream's amr values are kept.
const maxUpstreamAMR = 8

// UpstreamAMR says how a person signed in through an upstream provider
// (RFC 8176): "fed" (federated), then the upstream's own amr values when
// its ID token has them ("pwd", "otp", "mfa", …), so an app sees both that
// another provider authenticated the person and how. Values that are not
// short tokens are dropped.
func UpstreamAMR(ident directory.Identity) []string {
	amr := []string{"fed"}
	for _, m := range ident.AMR {
		if len(amr) > maxUpstreamAMR {
			break
		}
		if m == "" || len(m) > 32 || strings.ContainsFunc(m, func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
		}) || slices.Contains(amr, m) {
			continue
		}
		amr = append(amr, m)
	}
	return amr
}
