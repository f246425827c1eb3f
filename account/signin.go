package account

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// Credentials is a password sign-in attempt with where it came from.
type Credentials struct {
	Login     string // username or email
	Password  string
	IP        string
	UserAgent string
	// DeviceProof is the browser's remembered-device cookie, if it has one:
	// a live one of this account spares the sign-in the account-wide wait
	// that failures elsewhere caused.
	DeviceProof string
}

// SignInStore is the part of storage SignInService needs: the users it
// signs in (and whose allowlist and rehashed password it writes), the
// one write that records a sign-in, the browsers' sessions, and the
// clients whose refreshes it checks.
type SignInStore interface {
	storage.Users
	storage.SignIns
	storage.Sessions
	storage.Clients
	storage.Grants // connected apps
	storage.Tokens // their tokens, revoked with the consent
}

// SignInService signs people in: the password step (throttle, hash gate,
// directories), forward auth, browser sessions and their history, recent
// sign-in, and the IP allowlist.
type SignInService struct {
	*core
	store SignInStore
	users *UserService
	creds *CredentialService // trusted devices, app passwords, second factors
	dirs  *DirectoryService  // directory passwords
	// guesses makes parallel checks of one guess one check.
	guesses *throttle.Guesses[checkedGuess]
	// dummyHash is verified when no account matches, so a miss costs the
	// same time as a wrong password.
	dummyHash string
	// refreshWarns limits the WARN lines of refused refreshes.
	refreshWarns *warnLimiter
}

// Authenticate checks a username/email and password. Every failure that could
// reveal whether the account exists gives the same error after the same work.
func (s *SignInService) Authenticate(ctx context.Context, c Credentials) (storage.User, error) {
	user, newHash, err := s.checkPassword(ctx, c)
	if err != nil {
		return storage.User{}, err
	}
	u, _, _, err := s.recordSignIn(ctx, user, newHash, c, nil)
	return u, err
}

// checkPassword applies the throttle and the password check; on failure it
// records the attempt. newHash is set when the stored hash should be
// replaced (older parameters, or any hash from an import: VerifyPassword).
func (s *SignInService) checkPassword(ctx context.Context, c Credentials) (user storage.User, newHash string, err error) {
	return s.checkPasswordOr(ctx, c, "")
}

// checkPasswordOr is checkPassword that, when refuse is set, refuses even
// the right password with that reason, after the same throttle and the
// same work as a wrong one (forward auth's "password alone" rule).
func (s *SignInService) checkPasswordOr(ctx context.Context, c Credentials, refuse string) (user storage.User, newHash string, err error) {
	name, err := s.loginName(ctx, "pwd", c.Login, c.Password, c.IP)
	if err != nil {
		return storage.User{}, "", err
	}
	user, known, err := userByLogin(ctx, s.store, name)
	if err != nil {
		return storage.User{}, "", err
	}
	return s.checkGuess(ctx, c, guess{user: user, known: known, name: name, refuse: refuse})
}

// loginName is the login name as it is looked up and throttled: trimmed
// and lower-cased. One normalisation for both: were they to differ, a
// spelling that finds no account would spend the budget of a name that
// does not exist, and tell which names do. Missing and oversized fields
// are refused before anything is looked up or hashed, and so is a name
// with a NUL, which no account has and PostgreSQL cannot look up.
func (s *SignInService) loginName(ctx context.Context, method, login, password, ip string) (string, error) {
	name := normalizeLogin(login)
	if name == "" || password == "" || len(login) > 320 || len(password) > 1024 || strings.ContainsRune(name, 0) {
		s.logFailure(ctx, method, login, ip, "missing or oversized field")
		return "", errInvalidCredentials
	}
	return name, nil
}

// userByLogin finds the account of a normalised login name (username or
// email); known is false when there is none.
func userByLogin(ctx context.Context, users storage.Users, name string) (u storage.User, known bool, err error) {
	u, err = users.GetUserByLogin(ctx, name)
	if errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, false, nil
	}
	if err != nil {
		return storage.User{}, false, fmt.Errorf("find %q: %w", name, err)
	}
	return u, true, nil
}

// guess is one password presented for an account (or a name no account
// has), and what decides how it is checked.
type guess struct {
	user   storage.User
	known  bool
	name   string // normalised
	refuse string // see checkPasswordOr
	// appPasswordMiss: forward auth's Basic password, found to be none of
	// the account's app passwords, now tried as the account password.
	appPasswordMiss bool
}

// checkedGuess is the outcome of one password check, shared by every
// request that presented the same guess while it ran.
type checkedGuess struct {
	user    storage.User
	newHash string
	err     error
}

// checkGuess reserves the attempt and checks the password under it.
// Requests that present the same password for the same account, from the
// same address and in the same way, while a check of it runs, share that
// check: one guess, counted once and hashed once (throttle.Guesses). So
// a client sending the right password on many parallel requests is
// neither refused by reservations of its own requests nor turned away by
// the hash gate; different passwords still each need a reservation.
func (s *SignInService) checkGuess(ctx context.Context, c Credentials, g guess) (storage.User, string, error) {
	// An account is throttled whichever of its names (username or email, in
	// any case) is typed; otherwise each name would get its own budget.
	subj := subject(g.user, g.known, g.name)
	// The device cookie is a part: a request with a made-up cookie must
	// not share the check of one whose remembered device spares it the
	// account-wide wait.
	parts := []string{string(subj), c.IP, c.DeviceProof, strconv.FormatBool(g.appPasswordMiss), g.refuse, c.Password}
	out := s.guesses.Check(parts, func() checkedGuess {
		u, h, err := s.checkGuessOnce(ctx, c, g, subj)
		return checkedGuess{u, h, err}
	})
	return out.user, out.newHash, out.err
}

// reservePassword reserves the check of g's password with the throttle.
// A remembered device of the account spares it the account-wide wait that
// failures elsewhere caused. The device is looked up only when that wait
// refuses the attempt: otherwise it changes nothing, and a sign-in reads
// it once, when its second factor is decided (DeviceTrusted). The lookup
// reads by hash whether or not the account exists, so a made-up name
// costs the same.
func (s *SignInService) reservePassword(ctx context.Context, c Credentials, g guess, subj throttle.Subject) (*throttle.Reservation, error) {
	// An app-password miss counts even during the account-wide wait: it
	// was checked (looked up), so it is a guess like any other.
	res, err := s.limiter.Password(ctx, subj, c.IP, g.appPasswordMiss)
	var r *throttle.Refused
	if err == nil || c.DeviceProof == "" || !errors.As(err, &r) || r.Scope != throttle.ScopeAccount {
		return res, err
	}
	if _, ok := s.creds.trustedDevice(ctx, g.user, c.DeviceProof); !ok {
		return nil, err
	}
	return s.limiter.Password(ctx, subj, c.IP, true)
}

func (s *SignInService) checkGuessOnce(ctx context.Context, c Credentials, g guess, subj throttle.Subject) (storage.User, string, error) {
	attempt := storage.LoginAttempt{ID: NewID(), UserID: g.user.ID, Login: c.Login, Time: s.now(), IP: c.IP, UserAgent: c.UserAgent, Method: "pwd"}
	res, err := s.reservePassword(ctx, c, g, subj)
	if err != nil {
		return storage.User{}, "", s.refused(ctx, err, msgTooManySignIns, attempt.Method, c.Login, c.IP)
	}
	if w := res.Waived(); w != nil && g.appPasswordMiss {
		// The account waits: its password is not checked now. The
		// app-password guess was, and failed.
		attempt.Method = "app_password"
		s.failed(ctx, res, attempt, "wrong app password")
		return storage.User{}, "", &Error{Code: RateLimited, Message: msgTooManySignIns, RetryAfter: w.RetryAfter}
	}
	// Accounts from a directory, and names no local account has, are
	// checked by the directories.
	if g.refuse == "" && ((g.known && g.user.Source != "") || (!g.known && len(s.sourceSet().password) > 0)) {
		return s.dirs.checkDirectoryPassword(ctx, c, g.user, g.known, attempt, res)
	}
	rehash, err := s.checkLocalPassword(ctx, c, g, attempt, res)
	if err != nil {
		return storage.User{}, "", err
	}
	if err := s.admit(ctx, res, attempt, g.user); err != nil {
		return storage.User{}, "", err
	}
	newHash := ""
	if rehash {
		if newHash, err = s.hashPassword(ctx, c.Password); err != nil {
			// Busy or broken: the old hash still works; next time, then.
			s.log.WarnContext(ctx, "rehash password", "user_id", g.user.ID, "err", err)
			newHash = ""
		}
	}
	return g.user, newHash, nil
}

// checkLocalPassword checks g's password against the account's own hash
// and ends the reservation as a failure when it is wrong. A name without
// an account, an account without a password and a refused password are
// checked against a made-up hash, so they cost the same and fail alike.
// rehash tells that the hash should be replaced (older parameters, or
// a bcrypt, scrypt, PBKDF2 or argon2i hash from an import).
func (s *SignInService) checkLocalPassword(ctx context.Context, c Credentials, g guess, attempt storage.LoginAttempt, res *throttle.Reservation) (rehash bool, err error) {
	own := g.known && g.user.PasswordHash != "" && g.refuse == ""
	hash := s.dummyHash
	if own {
		hash = g.user.PasswordHash
	}
	ok, rehash, verr := s.verifyPassword(ctx, c.Password, hash)
	if errors.Is(verr, errBusy) {
		res.Cancel() // not checked: it counts neither way
		return false, verr
	}
	if verr != nil {
		s.log.ErrorContext(ctx, "verify password", "user_id", g.user.ID, "err", verr)
	}
	if own && ok {
		return rehash, nil
	}
	reason := "wrong password"
	switch {
	case !g.known:
		reason = "unknown account"
	case g.refuse != "":
		reason = g.refuse
	}
	s.failed(ctx, res, attempt, reason)
	return false, errInvalidCredentials
}

// recordSignIn writes what a successful sign-in changes: the user's sign-in
// fields (and a rehashed password), the history entry and, for browsers, the
// session, in one storage write (storage.SignIns), so a sign-in costs one
// commit and is recorded whole or not at all.
func (s *SignInService) recordSignIn(ctx context.Context, user storage.User, newHash string, c Credentials, sessionAMR []string) (storage.User, string, storage.Session, error) {
	now := s.now()
	w := storage.SignInWrite{
		UserID: user.ID,
		Update: func(u storage.User) (storage.User, error) {
			u.LastIP = c.IP
			u.LastLogin = now
			u.LoginsCount++
			if newHash != "" && u.PasswordHash == user.PasswordHash {
				u.PasswordHash = newHash
			}
			return u, nil
		},
		Attempt: storage.LoginAttempt{ID: NewID(), UserID: user.ID, Login: c.Login, Time: now, IP: c.IP, UserAgent: c.UserAgent, Method: methodOf(sessionAMR), Success: true},
	}
	var (
		secret string
		sess   storage.Session
	)
	if sessionAMR != nil {
		secret, sess = s.newSession(user, sessionAMR, c.IP, c.UserAgent)
		w.Session = &sess
	}
	audit := s.attemptEvent(ctx, w.Attempt)
	if sessionAMR != nil {
		ctx = withBrowserSignIn(ctx) // an interactive sign-in (notifications.go)
	}
	w.Audit, w.Outbox = &audit, s.reactions(ctx, audit)
	updated, err := s.store.RecordSignIn(ctx, w)
	if auditRefused(err) {
		// The sign-in stands without its event, as core.audit would have it.
		s.log.ErrorContext(ctx, "write audit event", "type", audit.Type, "target", audit.TargetUserID, "err", err)
		w.Audit, w.Outbox = nil, nil
		updated, err = s.store.RecordSignIn(ctx, w)
	}
	if err != nil {
		return storage.User{}, "", storage.Session{}, fmt.Errorf("record sign-in of %q: %w", user.ID, err)
	}
	s.observe(func(o Observer) { o.SignInAttempt(w.Attempt.Method, true) })
	s.reacted(w.Outbox)
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
func (s *SignInService) PasswordStep(ctx context.Context, c Credentials) (u storage.User, newHash string, err error) {
	return s.checkPassword(ctx, c)
}

// StoreRehash keeps a stronger hash of a password that was just verified
// (older argon2 parameters, or a hash from an import) when the sign-in goes
// on to a second step: otherwise people with a second factor would keep the
// weak hash forever. A hash changed meanwhile is left alone.
func (s *SignInService) StoreRehash(ctx context.Context, u storage.User, newHash string) error {
	if newHash == "" {
		return nil
	}
	_, err := s.store.UpdateUser(ctx, u.ID, func(cur storage.User) (storage.User, error) {
		if cur.PasswordHash == u.PasswordHash {
			cur.PasswordHash = newHash
		}
		return cur, nil
	})
	if err != nil {
		return fmt.Errorf("store rehashed password of %q: %w", u.ID, err)
	}
	return nil
}

// FinishSignIn records a completed browser sign-in (user fields, history,
// session) and returns the new session and its cookie secret.
func (s *SignInService) FinishSignIn(ctx context.Context, u storage.User, newHash string, c Credentials, amr []string) (storage.User, string, storage.Session, error) {
	if amr == nil {
		amr = []string{"pwd"}
	}
	if c.Login == "" {
		c.Login = u.Username
	}
	return s.recordSignIn(ctx, u, newHash, c, amr)
}
