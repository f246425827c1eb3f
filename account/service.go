package account

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/storage"
)

// Store is the part of storage the account rules need.
type Store interface {
	storage.Users
	storage.Clients
	storage.Sessions
	storage.Tokens
	storage.OneTimeTokens
	storage.LoginAttempts
	storage.Settings
	storage.Directories
	storage.Credentials
	storage.Avatars
}

// Sealer encrypts secrets kept at rest (TOTP secrets). seal.Sealer is one.
type Sealer interface {
	Seal(plaintext []byte, purpose string) []byte
	Open(sealed []byte, purpose string) ([]byte, error)
}

// Policy holds the tunable rules.
type Policy struct {
	Argon2            Argon2Params
	MinPasswordLength int
	MaxLoginAttempts  int           // failed sign-ins per account or IP in LoginWindow; 0 = unlimited
	LoginWindow       time.Duration // window for MaxLoginAttempts
	SessionLifetime   time.Duration
	SetupTokenTTL     time.Duration

	// Issuer is Keyport's public URL: the TOTP label, the WebAuthn relying
	// party and origin, the avatar URLs in the picture claim.
	Issuer string
	// ProfilesLocked: an admin has locked every profile field for users.
	ProfilesLocked bool
	// Require2FA: users without a second factor must enrol one before they
	// reach any app.
	Require2FA bool
	// TrustedDeviceLifetime is how long "remember this device" lasts; 0
	// turns the option off (config.toml's default is 30 days).
	TrustedDeviceLifetime time.Duration
	// RecentAuth is how long after signing in a security change needs no
	// password again (5 minutes).
	RecentAuth time.Duration

	// MinPasswordScore is the lowest zxcvbn score (0-4) a new password may
	// have; 0 turns the strength check off.
	MinPasswordScore int
}

// Service applies the account rules to a store.
type Service struct {
	store   Store
	sealer  Sealer
	policy  Policy
	now     func() time.Time
	log     *slog.Logger
	limiter *limiter
	wa      webauthnState
	// sources are the configured password directories, in order.
	// static are the sources from config.toml; srcs is every source in
	// force (static and stored), swapped whole on changes.
	static []directory.Source
	srcs   atomic.Pointer[sourceSet]
	srcMu  sync.Mutex // serialises changes to srcs
	// dummyHash is verified when no account matches, so a miss costs the
	// same time as a wrong password.
	dummyHash string
}

// New returns a Service. now may be nil (time.Now).
func New(store Store, sealer Sealer, policy Policy, now func() time.Time, log *slog.Logger) (*Service, error) {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	if policy.SetupTokenTTL == 0 {
		policy.SetupTokenTTL = time.Hour
	}
	if policy.RecentAuth == 0 {
		policy.RecentAuth = 5 * time.Minute
	}
	dummy, err := HashPassword(NewSecret(), policy.Argon2)
	if err != nil {
		return nil, err
	}
	return &Service{
		store:     store,
		sealer:    sealer,
		policy:    policy,
		now:       now,
		log:       log,
		limiter:   newLimiter(policy.MaxLoginAttempts, policy.LoginWindow),
		dummyHash: dummy,
	}, nil
}

// Policy returns the rules in force.
func (s *Service) Policy() Policy { return s.policy }

// Credentials is a password sign-in attempt with where it came from.
type Credentials struct {
	Login     string // username or email
	Password  string
	IP        string
	UserAgent string
}

// Authenticate checks a username/email and password. Every failure that could
// reveal whether the account exists gives the same error after the same work.
func (s *Service) Authenticate(ctx context.Context, c Credentials) (storage.User, error) {
	u, _, _, err := s.authenticate(ctx, c, nil)
	return u, err
}

// SignIn is Authenticate for a browser: on success it also starts a session
// (see StartSession) with the given authentication methods.
func (s *Service) SignIn(ctx context.Context, c Credentials, amr []string) (storage.User, string, storage.Session, error) {
	return s.authenticate(ctx, c, amr)
}

func (s *Service) authenticate(ctx context.Context, c Credentials, sessionAMR []string) (storage.User, string, storage.Session, error) {
	user, newHash, err := s.checkPassword(ctx, c)
	if err != nil {
		return storage.User{}, "", storage.Session{}, err
	}
	return s.recordSignIn(ctx, user, newHash, c, sessionAMR)
}

// checkPassword applies the throttle and the password check; on failure it
// records the attempt. newHash is set when the stored hash should be
// replaced (older parameters, or bcrypt from an import).
func (s *Service) checkPassword(ctx context.Context, c Credentials) (user storage.User, newHash string, err error) {
	now := s.now()
	loginKey := "login:" + normalizeLogin(c.Login)
	ipKey := "ip:" + c.IP
	attempt := storage.LoginAttempt{ID: NewID(), Login: c.Login, Time: now, IP: c.IP, UserAgent: c.UserAgent, Method: "pwd"}

	if s.limiter.blocked(loginKey, now) || (c.IP != "" && s.limiter.blocked(ipKey, now)) {
		attempt.Reason = "rate limited"
		s.record(ctx, attempt)
		return storage.User{}, "", Errorf(RateLimited, "Too many failed sign-in attempts. Please wait a few minutes and try again.")
	}
	if c.Login == "" || c.Password == "" || len(c.Login) > 320 || len(c.Password) > 1024 {
		// Still spend the hashing time: an empty field must not be a fast path.
		_, _, _ = VerifyPassword(c.Password, s.dummyHash, s.policy.Argon2)
		return storage.User{}, "", errInvalidCredentials
	}

	user, err = s.store.GetUserByLogin(ctx, c.Login)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, "", &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
	}
	// An account is throttled whichever of its names (username or email, in
	// any case) is typed; otherwise each name would get its own budget.
	userKey := ""
	if err == nil {
		userKey = "user:" + user.ID
		if s.limiter.blocked(userKey, now) {
			attempt.UserID = user.ID
			attempt.Reason = "rate limited"
			s.record(ctx, attempt)
			return storage.User{}, "", Errorf(RateLimited, "Too many failed sign-in attempts. Please wait a few minutes and try again.")
		}
	}
	// Accounts from a directory, and names no local account has, are
	// checked by the directories.
	if (err == nil && user.Source != "") || (err != nil && len(s.sourceSet().password) > 0) {
		return s.checkDirectoryPassword(ctx, c, user, err == nil, attempt, loginKey, userKey, ipKey)
	}
	hash := user.PasswordHash
	if err != nil || hash == "" {
		hash = s.dummyHash
	}
	ok, rehash, verr := VerifyPassword(c.Password, hash, s.policy.Argon2)
	if verr != nil {
		s.log.ErrorContext(ctx, "verify password", "user_id", user.ID, "err", verr)
	}
	if err != nil || user.PasswordHash == "" || !ok {
		s.limiter.fail(loginKey, now)
		if userKey != "" {
			s.limiter.fail(userKey, now)
		}
		if c.IP != "" {
			s.limiter.fail(ipKey, now)
		}
		attempt.UserID = user.ID
		attempt.Reason = "wrong password"
		if user.ID == "" {
			attempt.Reason = "unknown account"
		}
		s.record(ctx, attempt)
		return storage.User{}, "", errInvalidCredentials
	}
	attempt.UserID = user.ID
	if err := CheckActive(user); err != nil {
		attempt.Reason = "account blocked"
		s.record(ctx, attempt)
		return storage.User{}, "", err
	}
	// The allowlist is checked after the password, so it reveals nothing to
	// someone who does not know it.
	if err := s.CheckNetwork(user, c.IP); err != nil {
		attempt.Reason = "network not allowed"
		s.record(ctx, attempt)
		return storage.User{}, "", err
	}
	s.limiter.reset(loginKey)
	s.limiter.reset(userKey)
	if rehash {
		if newHash, err = HashPassword(c.Password, s.policy.Argon2); err != nil {
			s.log.ErrorContext(ctx, "rehash password", "user_id", user.ID, "err", err)
			newHash = ""
		}
	}
	return user, newHash, nil
}

// recordSignIn writes what a successful sign-in changes: the user's sign-in
// fields (and a rehashed password), the history entry and, for browsers, the
// session. The writes are independent, so they run concurrently and the store
// commits them together: sign-in latency is dominated by commits.
func (s *Service) recordSignIn(ctx context.Context, user storage.User, newHash string, c Credentials, sessionAMR []string) (storage.User, string, storage.Session, error) {
	now := s.now()
	attempt := storage.LoginAttempt{ID: NewID(), UserID: user.ID, Login: c.Login, Time: now, IP: c.IP, UserAgent: c.UserAgent, Method: methodOf(sessionAMR), Success: true}
	var (
		wg      sync.WaitGroup
		updated storage.User
		updErr  error
		secret  string
		sess    storage.Session
		sesErr  error
	)
	wg.Add(2)
	go func() {
		defer wg.Done()
		updated, updErr = s.store.UpdateUser(ctx, user.ID, func(u storage.User) (storage.User, error) {
			u.LastIP = c.IP
			u.LastLogin = now
			u.LoginsCount++
			if newHash != "" && u.PasswordHash == user.PasswordHash {
				u.PasswordHash = newHash
			}
			return u, nil
		})
	}()
	go func() {
		defer wg.Done()
		s.record(ctx, attempt)
	}()
	if sessionAMR != nil {
		secret, sess, sesErr = s.StartSession(ctx, user, sessionAMR, c.IP, c.UserAgent)
	}
	wg.Wait()
	if updErr != nil {
		return storage.User{}, "", storage.Session{}, &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("record sign-in of %q: %w", user.ID, updErr)}
	}
	if sesErr != nil {
		return storage.User{}, "", storage.Session{}, sesErr
	}
	return updated, secret, sess, nil
}

// methodOf names the sign-in method for the history from its AMR values.
func methodOf(amr []string) string {
	switch {
	case len(amr) == 0:
		return "pwd"
	case len(amr) == 1:
		return amr[0]
	}
	var parts []string
	for _, m := range amr {
		if m != "mfa" {
			parts = append(parts, m)
		}
	}
	return strings.Join(parts, "+")
}

// PasswordStep is the first step of a browser sign-in: the password (and
// the throttle, block status and IP allowlist). It writes nothing on
// success; FinishSignIn does, once every factor the person owes is done.
// newHash is a rehash of the password to store then (may be "").
func (s *Service) PasswordStep(ctx context.Context, c Credentials) (u storage.User, newHash string, err error) {
	return s.checkPassword(ctx, c)
}

// FinishSignIn records a completed browser sign-in (user fields, history,
// session) and returns the new session and its cookie secret.
func (s *Service) FinishSignIn(ctx context.Context, u storage.User, newHash string, c Credentials, amr []string) (storage.User, string, storage.Session, error) {
	if amr == nil {
		amr = []string{"pwd"}
	}
	if c.Login == "" {
		c.Login = u.Username
	}
	return s.recordSignIn(ctx, u, newHash, c, amr)
}

func (s *Service) record(ctx context.Context, a storage.LoginAttempt) {
	if err := s.store.AddLoginAttempt(ctx, a); err != nil {
		s.log.ErrorContext(ctx, "record login attempt", "err", err)
	}
}

// ActiveUser loads a user and refuses blocked ones.
func (s *Service) ActiveUser(ctx context.Context, id string) (storage.User, error) {
	u, err := s.store.GetUser(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, Errorf(Unauthorized, "This account no longer exists.")
	}
	if err != nil {
		return storage.User{}, &Error{Code: Internal, Message: ErrorMessage(nil), Err: err}
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
