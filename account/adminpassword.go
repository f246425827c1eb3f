package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyport/keyport/storage"
)

// SetPassword sets the password of local user id to one the
// administrator chose (the command line's `user set-password`; Keycloak's
// "set password" on a user's credentials). The password policy applies
// (Invalid, field "password"), as for a user choosing one. Like a reset,
// it ends every session and revokes every refresh and access token: a
// password the administrator replaces may have leaked. Accounts of a
// directory or upstream provider keep their password there (Forbidden).
// Event: "user.password_set" (never the password), with what was ended.
func (s *AdminService) SetPassword(ctx context.Context, actor Actor, id, password string) (SignedOut, error) {
	if err := s.authorize(ctx, actor, true); err != nil {
		return SignedOut{}, err
	}
	u, err := s.loadUser(ctx, id)
	if err != nil {
		return SignedOut{}, err
	}
	if u.Source != "" || u.System {
		return SignedOut{}, s.passwordElsewhere(u)
	}
	if err := s.users.CheckPassword(ctx, password, u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, u.Nickname); err != nil {
		return SignedOut{}, passwordField(err)
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return SignedOut{}, fmt.Errorf("hash the new password of %q: %w", id, err)
	}
	now := s.now()
	_, err = s.store.UpdateUser(ctx, id, func(u storage.User) (storage.User, error) {
		if u.Source != "" { // linked to a directory meanwhile
			return u, s.passwordElsewhere(u)
		}
		u.PasswordHash, u.PasswordChangedAt, u.UpdatedAt = hash, now, now
		return u, nil
	})
	var ae *Error
	switch {
	case errors.As(err, &ae):
		return SignedOut{}, ae
	case errors.Is(err, storage.ErrNotFound):
		return SignedOut{}, errNoSuchUser
	case err != nil:
		return SignedOut{}, fmt.Errorf("set password of %q: %w", id, err)
	}
	out, err := s.signOut(ctx, id)
	if err != nil {
		return out, err
	}
	e := userEvent("user.password_set", u, storage.AuditChange{Field: "password"})
	e.Reason = out.reason()
	s.audit(ctx, actor, e)
	s.log.InfoContext(ctx, "password set by an administrator", "user_id", id, "sessions_ended", out.Sessions, "tokens_revoked", out.Tokens)
	return out, nil
}

// maxLoginLen bounds a login looked up by UserByLogin: usernames and
// email addresses are far shorter, and the error message quotes it.
const maxLoginLen = 320

// UserByLogin is User for the account whose username or email is login
// (case-insensitive, as at sign-in), so the command line can name users
// as people do. An unknown login is NotFound, quoting it.
func (s *AdminService) UserByLogin(ctx context.Context, actor Actor, login string) (UserDetail, error) {
	if err := s.authorize(ctx, actor, false); err != nil {
		return UserDetail{}, err
	}
	login = strings.TrimSpace(login)
	if login == "" || len(login) > maxLoginLen {
		return UserDetail{}, Errorf(NotFound, "No user %q.", truncateLogin(login))
	}
	u, err := s.store.GetUserByLogin(ctx, login)
	if errors.Is(err, storage.ErrNotFound) {
		return UserDetail{}, Errorf(NotFound, "No user %q.", login)
	}
	if err != nil {
		return UserDetail{}, fmt.Errorf("look up user %q: %w", login, err)
	}
	return s.User(ctx, actor, u.ID)
}

func truncateLogin(s string) string {
	if len(s) <= 64 {
		return s
	}
	return strings.ToValidUTF8(s[:64], "") + "…"
}
