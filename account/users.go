package account

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// UserStore is the part of storage UserService needs: the users, their
// avatars, the setup link (a one-time token), and the sessions and tokens
// it ends when a password is reset or an account blocked.
type UserStore interface {
	storage.Users
	storage.Avatars
	storage.OneTimeTokens
	storage.Sessions
	storage.Tokens
}

// UserService keeps the accounts: creating them (and the first
// administrator through the setup link), the administrator's password
// resets and blocks, the profile with its locks, the avatar.
type UserService struct {
	*core
	store UserStore
	// subjects reads pairwise apps' avatar IDs (SetSubjects).
	subjects *Subjects
}

// NewUser is what it takes to create an account.
type NewUser struct {
	Username string
	Email    string
	// EmailVerified says the administrator vouches for the address: apps
	// such as oauth2-proxy accept only a verified email claim.
	EmailVerified bool
	Name          string
	Admin         bool
	Password      string
}

var usernamePattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$`)

func normalizeLogin(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// validateNewUser checks and normalises the fields of a new account.
func (s *UserService) validateNewUser(ctx context.Context, n *NewUser) error {
	n.Username = strings.TrimSpace(n.Username)
	n.Email = strings.TrimSpace(n.Email)
	n.Name = strings.TrimSpace(n.Name)
	if !usernamePattern.MatchString(n.Username) {
		return Errorf(Invalid, "Username must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit.")
	}
	if err := validateEmail(n.Email); err != nil {
		return err
	}
	if utf8.RuneCountInString(n.Name) > 200 {
		return Errorf(Invalid, "Name must be at most 200 characters.")
	}
	return s.CheckPassword(ctx, n.Password, n.Username, n.Email, n.Name)
}

func validateEmail(email string) error {
	if email == "" {
		return Errorf(Invalid, "Email address is required.")
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || len(email) > 254 || !strings.Contains(email[strings.LastIndexByte(email, '@'):], ".") {
		return Errorf(Invalid, "%q is not a valid email address.", email)
	}
	return nil
}

// CheckPassword applies the password policy: length, not the username or
// email, and strong enough (see checkStrength). names are the person's
// other names (display, first, last), which make a password as guessable
// as the username does. The strength estimate waits for a place at the
// password-hash gate (and is refused as busy when there is none).
func (s *UserService) CheckPassword(ctx context.Context, password, username, email string, names ...string) error {
	n := utf8.RuneCountInString(password)
	switch {
	case n < s.policy().MinPasswordLength:
		return Errorf(Invalid, "Password must be at least %d characters long.", s.policy().MinPasswordLength)
	case len(password) > 1024:
		return Errorf(Invalid, "Password must be at most 1024 bytes long.")
	case strings.EqualFold(password, username) || (email != "" && strings.EqualFold(password, email)):
		return Errorf(Invalid, "Password must not be the same as the username or email address.")
	}
	return s.checkStrength(ctx, password, append([]string{username, email}, names...))
}

// CreateUser validates and stores a new local account.
func (s *UserService) CreateUser(ctx context.Context, n NewUser) (storage.User, error) {
	if err := s.validateNewUser(ctx, &n); err != nil {
		return storage.User{}, err
	}
	u, err := s.newLocalUser(ctx, n)
	if err != nil {
		return storage.User{}, err
	}
	return u, s.storeNewUser(ctx, u)
}

// newLocalUser builds the record of a new local account whose fields
// validateNewUser has checked, hashing its password (through the hash gate,
// so it may be refused as busy). It stores nothing.
func (s *UserService) newLocalUser(ctx context.Context, n NewUser) (storage.User, error) {
	hash, err := s.hashPassword(ctx, n.Password)
	if err != nil {
		return storage.User{}, fmt.Errorf("hash the password of new user %q: %w", n.Username, err)
	}
	now := s.now()
	u := storage.User{
		ID:            NewID(),
		Username:      n.Username,
		Email:         n.Email,
		EmailVerified: n.EmailVerified,
		Name:          n.Name,
		Admin:         n.Admin,
		PasswordHash:  hash,
		CreatedAt:     now,
		UpdatedAt:     now,
	}
	rememberVerifiedEmail(&u)
	return u, nil
}

// storeNewUser stores a record newLocalUser built.
func (s *UserService) storeNewUser(ctx context.Context, u storage.User) error {
	if err := s.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, storage.ErrConflict) {
			return Errorf(Conflict, "A user with that username or email address already exists.")
		}
		return fmt.Errorf("create user %q: %w", u.Username, err)
	}
	return nil
}

// ListUsers returns every account.
func (s *UserService) ListUsers(ctx context.Context) ([]storage.User, error) {
	return s.store.ListUsers(ctx)
}

// lookup finds a user by username or email with a user-facing error.
func (s *UserService) lookup(ctx context.Context, login string) (storage.User, error) {
	u, err := s.store.GetUserByLogin(ctx, login)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, Errorf(NotFound, "No user %q.", login)
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("load user %q: %w", login, err)
	}
	return u, nil
}

// SetPassword replaces a user's password and ends their sessions and refresh
// tokens, so a leaked password stops working everywhere at once.
func (s *UserService) SetPassword(ctx context.Context, login, password string) error {
	u, err := s.lookup(ctx, login)
	if err != nil {
		return err
	}
	if err := s.CheckPassword(ctx, password, u.Username, u.Email, u.Name, u.GivenName, u.FamilyName, u.Nickname); err != nil {
		return err
	}
	hash, err := s.hashPassword(ctx, password)
	if err != nil {
		return fmt.Errorf("hash the new password of %q: %w", u.ID, err)
	}
	if _, err := s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.PasswordHash = hash
		u.UpdatedAt = s.now()
		return u, nil
	}); err != nil {
		return fmt.Errorf("set password of %q: %w", u.ID, err)
	}
	s.audit(ctx, actorIn(ctx, cliActor), storage.AuditEvent{Type: EventPasswordChanged, TargetUserID: u.ID})
	_, _, err = s.signOut(ctx, u.ID, "")
	return err
}

// SetBlocked blocks or unblocks a user. Blocking ends their sessions and tokens.
func (s *UserService) SetBlocked(ctx context.Context, login string, blocked bool) error {
	u, err := s.lookup(ctx, login)
	if err != nil {
		return err
	}
	if _, err := s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.Blocked = blocked
		u.UpdatedAt = s.now()
		return u, nil
	}); err != nil {
		return fmt.Errorf("block user %q: %w", u.ID, err)
	}
	s.audit(ctx, actorIn(ctx, cliActor), storage.AuditEvent{Type: blockEvent(blocked), TargetUserID: u.ID})
	if blocked {
		_, _, err = s.signOut(ctx, u.ID, "")
		return err
	}
	return nil
}

// signOut ends the user's sessions, every one or all but keepSessionID,
// and revokes every refresh and access token: whatever a password that is
// no longer theirs, or an account that is now blocked, gave is gone.
func (s *UserService) signOut(ctx context.Context, userID, keepSessionID string) (ended, revoked int, err error) {
	if keepSessionID == "" {
		s.logoutUser(ctx, userID)
		if ended, err = s.store.DeleteUserSessions(ctx, userID); err != nil {
			return 0, 0, fmt.Errorf("end sessions of %q: %w", userID, err)
		}
	} else {
		sessions, err := s.store.ListUserSessions(ctx, userID)
		if err != nil {
			return 0, 0, fmt.Errorf("list sessions of %q: %w", userID, err)
		}
		for _, sess := range sessions {
			if sess.ID == keepSessionID {
				continue
			}
			s.logoutSession(ctx, sess)
			if err := s.store.DeleteSession(ctx, sess.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
				return ended, 0, fmt.Errorf("end session of %q: %w", userID, err)
			}
			ended++
		}
	}
	if revoked, err = s.store.RevokeUserClient(ctx, userID, ""); err != nil {
		return ended, 0, fmt.Errorf("revoke tokens of %q: %w", userID, err)
	}
	return ended, revoked, nil
}

// ActiveUser loads a user and refuses blocked ones.
func (s *UserService) ActiveUser(ctx context.Context, id string) (storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, Errorf(Unauthorized, "This account no longer exists.")
	}
	if err != nil {
		return storage.User{}, fmt.Errorf("load user %q: %w", id, err)
	}
	if err := CheckActive(u); err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// CheckActive is the one rule for whether an account may be used at all:
// to sign in, to hold a session, or behind a token.
func CheckActive(u storage.User) error {
	if u.Blocked {
		return errAccountDisabled
	}
	return nil
}

var errAccountDisabled = Errorf(Forbidden, "This account is disabled. Please contact your administrator.")

// CheckInteractive is CheckActive for a person signing in (password,
// passkey, upstream provider, app password): a system account acts only
// through its API tokens.
func CheckInteractive(u storage.User) error {
	if err := CheckActive(u); err != nil {
		return err
	}
	if u.System {
		return errSystemAccount
	}
	return nil
}

var errSystemAccount = Errorf(Forbidden, "This is a system account: it cannot sign in, only use its API tokens.")

// signInRefusal is the reason a sign-in history records for an account
// CheckInteractive refuses.
func signInRefusal(u storage.User) string {
	if u.System && !u.Blocked {
		return "system account"
	}
	return "account blocked"
}
