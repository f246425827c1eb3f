package account

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// App passwords sign non-browser clients in (mail apps, WebDAV, a reverse
// proxy's forward auth). They look like "k7m2px-9c4tqz-..." (5 groups of 6
// from an alphabet without look-alikes: 30 characters, about 148 bits) and
// are stored only as hashes, found through the credentials' hash index.
const appPasswordAlphabet = "23456789abcdefghjkmnpqrstuvwxyz"

func newAppPassword() string {
	raw := randomFrom(appPasswordAlphabet, 30)
	var parts []string
	for i := 0; i < len(raw); i += 6 {
		parts = append(parts, raw[i:i+6])
	}
	return strings.Join(parts, "-")
}

// normalizeAppPassword is the form that is hashed: people may type an app
// password in capitals, with spaces instead of dashes, or with no
// separators at all.
func normalizeAppPassword(p string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || unicode.IsSpace(r) {
			return -1
		}
		return unicode.ToLower(r)
	}, p)
}

// checkCredentialName validates a name for a credential and makes sure the
// user has no other credential of that kind with it (in any case). Passkeys
// use it too.
func (s *CredentialService) checkCredentialName(ctx context.Context, userID, kind, name string) (string, error) {
	name = strings.TrimSpace(name)
	if name == "" || utf8.RuneCountInString(name) > 64 || strings.ContainsFunc(name, unicode.IsControl) {
		return "", FieldErrorf("name", "Give it a name of 1 to 64 characters.")
	}
	existing, err := s.store.ListCredentials(ctx, userID, kind)
	if err != nil {
		return "", fmt.Errorf("list %s credentials of %q: %w", kind, userID, err)
	}
	for _, c := range existing {
		if strings.EqualFold(c.Name, name) {
			return "", &Error{Code: Conflict, Field: "name", Message: "You already have one with this name."}
		}
	}
	return name, nil
}

// CreateAppPassword makes a new app password, for every app (clientID "")
// or one app only. The secret is returned once and never stored.
func (s *CredentialService) CreateAppPassword(ctx context.Context, u storage.User, name, clientID string) (string, storage.Credential, error) {
	name, err := s.checkCredentialName(ctx, u.ID, storage.KindAppPassword, name)
	if err != nil {
		return "", storage.Credential{}, err
	}
	if clientID != "" {
		if _, err := GetLiveClient(ctx, s.store, clientID); err != nil {
			return "", storage.Credential{}, FieldErrorf("client_id", "Choose an app from the list.")
		}
	}
	secret := newAppPassword()
	c := storage.Credential{ID: NewID(), UserID: u.ID, Kind: storage.KindAppPassword, Name: name, ClientID: clientID,
		Hash: HashSecret(normalizeAppPassword(secret)), CreatedAt: s.now()}
	if err := s.store.CreateCredential(ctx, c); err != nil {
		return "", storage.Credential{}, fmt.Errorf("create app password for %q: %w", u.ID, err)
	}
	s.log.InfoContext(ctx, "app password created", "user_id", u.ID, "credential_id", c.ID, "client_id", clientID)
	s.audit(ctx, userActor(u.ID), storage.AuditEvent{Type: EventAppPasswordCreated, TargetUserID: u.ID, ClientID: clientID, Changes: credentialNamed(c)})
	return secret, c, nil
}

// ListAppPasswords lists the user's app passwords (hashes only, of course).
func (s *CredentialService) ListAppPasswords(ctx context.Context, userID string) ([]storage.Credential, error) {
	return s.listCredentials(ctx, userID, storage.KindAppPassword)
}

// RevokeAppPassword deletes one of the user's app passwords.
func (s *CredentialService) RevokeAppPassword(ctx context.Context, u storage.User, id string) error {
	return s.RevokeCredential(ctx, u.ID, storage.KindAppPassword, id)
}

func (s *CredentialService) listCredentials(ctx context.Context, userID, kind string) ([]storage.Credential, error) {
	cs, err := s.store.ListCredentials(ctx, userID, kind)
	if err != nil {
		return nil, fmt.Errorf("list %s credentials of %q: %w", kind, userID, err)
	}
	return cs, nil
}

// RevokeCredential deletes one of the user's credentials of the given kind.
// A credential of another user or kind looks the same as a missing one.
func (s *CredentialService) RevokeCredential(ctx context.Context, userID, kind, id string) error {
	c, err := s.store.GetCredential(ctx, userID, id)
	if err == nil && c.Kind != kind {
		err = storage.ErrNotFound
	}
	if err == nil {
		err = s.store.DeleteCredential(ctx, userID, id)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return Errorf(NotFound, "It does not exist or was already revoked.")
	}
	if err != nil {
		return fmt.Errorf("revoke %s %q of %q: %w", kind, id, userID, err)
	}
	s.log.InfoContext(ctx, "credential revoked", "user_id", userID, "kind", kind, "credential_id", id)
	if typ, ok := revokedEvent[kind]; ok {
		s.audit(ctx, actorIn(ctx, userActor(userID)), storage.AuditEvent{Type: typ, TargetUserID: userID, ClientID: c.ClientID, Changes: credentialNamed(c)})
	}
	return nil
}

// errNotHere answers credentials that are right but may not be used for
// this request (another app's app password, a blocked account, a network
// outside the allowlist). Forward auth shows it as a plain 401.
var errNotHere = Errorf(Forbidden, "These credentials may not be used here.")

// reasonNotInAppGroups is the history's reason for an app password refused
// because the person is not in its app's allowed groups.
const reasonNotInAppGroups = "not in the app's allowed groups"

// ErrNotInAppGroups is in the chain (errors.Is) of MayUseClient's refusal
// of a person outside an app's allowed groups: forward auth answers it
// 403, not with a prompt to sign in again.
var ErrNotInAppGroups = errors.New(reasonNotInAppGroups)

// tryAppPassword checks password as one of user's app passwords and
// returns the ID of the one it is. The ID is "" when it is none of them
// (the caller then tries the account password); err is set when it is one
// but may not be used here. app is the registered app the password is
// used for (the token exchange's, or the one forward auth names; nil when
// none): a person outside its allowed groups is refused here, so that the
// refusal is a failed attempt in the history and no use of the app
// password, as it is for every other reason. The refusal is
// MayUseClient's, not errNotHere: the credentials are right, the person
// is not let in. exchange refuses an app password not limited to
// clientID (one for every app), which forward auth takes.
func (s *CredentialService) tryAppPassword(ctx context.Context, user storage.User, login, password, ip, userAgent, clientID string, now time.Time, app *storage.Client, exchange bool) (storage.User, string, error) {
	// The lookup is by the SHA-256 of the normalised secret: a guess
	// reveals nothing through timing that is not already in the hash.
	c, err := s.store.GetCredentialByHash(ctx, HashSecret(normalizeAppPassword(password)))
	if errors.Is(err, storage.ErrNotFound) || (err == nil && (c.Kind != storage.KindAppPassword || user.ID == "" || c.UserID != user.ID)) {
		return storage.User{}, "", nil
	}
	if err != nil {
		return storage.User{}, "", fmt.Errorf("forward auth: find app password: %w", err)
	}
	attempt := storage.LoginAttempt{ID: NewID(), UserID: user.ID, Login: login, Time: now, IP: ip, UserAgent: userAgent, Method: "app_password"}
	var notInGroups error
	if app != nil {
		notInGroups = MayUseClient(user, *app)
	}
	switch {
	case c.ClientID != "" && c.ClientID != clientID:
		attempt.Reason = "app password for another app"
	case exchange && c.ClientID == "":
		attempt.Reason = "app password not limited to this app"
	case CheckInteractive(user) != nil:
		attempt.Reason = signInRefusal(user)
	case !NetworkAllows(user.AllowedNetworks, ip):
		attempt.Reason = "network not allowed"
	case notInGroups != nil:
		// Groups change after the app password was made for the app, and
		// one for every app is no way into an app of some groups.
		attempt.Reason = reasonNotInAppGroups
	}
	if attempt.Reason == "" {
		if err := s.CheckTwoFactorPolicy(ctx, user); err != nil {
			if ErrorCode(err) == Internal {
				return storage.User{}, "", err
			}
			attempt.Reason = "second factor required but not set up"
		}
	}
	if attempt.Reason != "" {
		// The secret was right, so this is no guess and is not counted;
		// it is a failed sign-in all the same.
		s.logFailure(ctx, attempt.Method, login, ip, attempt.Reason)
		s.record(ctx, attempt)
		if attempt.Reason == reasonNotInAppGroups {
			return storage.User{}, "", notInGroups
		}
		return storage.User{}, "", errNotHere
	}
	attempt.Success = true
	s.record(ctx, attempt)
	if _, err := s.store.UpdateCredential(ctx, user.ID, c.ID, func(c storage.Credential) (storage.Credential, error) {
		c.LastUsedAt, c.LastIP = now, ip
		return c, nil
	}); err != nil {
		// The sign-in stands; only the "last used" column is behind.
		s.log.WarnContext(ctx, "note app password use", "user_id", user.ID, "credential_id", c.ID, "err", err)
	}
	return user, c.ID, nil
}
