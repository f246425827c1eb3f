package account

import (
	"log/slog"
	"time"

	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// Store is the part of storage the account rules need: every area's
// store, the sign-in history and the throttle's records.
type Store interface {
	UserStore
	CredentialStore
	SignInStore
	DirectoryStore
	ClientStore
	storage.LoginAttempts
	storage.Throttles
	storage.Audit
	AdminStore
	MailStore
	DeliveryStore
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
	MaxLoginAttempts  int           // failed sign-ins per account (or login name) and client address in LoginWindow; 0 = unlimited
	LoginWindow       time.Duration // the sliding window of both limits
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
	// Require2FAForAdmins: administrators without a second factor must
	// enrol one (Require2FA covers them too); set on the console.
	Require2FAForAdmins bool
	// TrustedDeviceLifetime is how long "remember this device" lasts; 0
	// turns the option off (config.toml's default is 30 days).
	TrustedDeviceLifetime time.Duration
	// RecentAuth is how long after signing in a security change needs no
	// password again (5 minutes).
	RecentAuth time.Duration

	// MinPasswordScore is the lowest zxcvbn score (0-4) a new password may
	// have; 0 turns the strength check off.
	MinPasswordScore int
	// MaxLoginAttemptsPerAddress: failed sign-ins per client address (all
	// accounts, app passwords, API tokens) in LoginWindow, and, counted
	// apart, failed client authentications (client secrets) per address;
	// 0 = unlimited.
	MaxLoginAttemptsPerAddress int
	// The account-wide waits (Keycloak's brute-force detection): once an
	// account has AccountLockoutFailures failures from anywhere, every
	// further failure makes it wait AccountLockoutWait, doubling with each
	// further round of AccountLockoutFailures failures up to
	// AccountLockoutMaxWait; AccountLockoutReset without a failure, or a
	// success, forgets the count. 0 failures turns them off.
	AccountLockoutFailures int
	AccountLockoutWait     time.Duration
	AccountLockoutMaxWait  time.Duration
	AccountLockoutReset    time.Duration
	// HashConcurrency bounds the password hashes computed at once (0: one
	// per core); HashQueue how many more may wait (0: DefaultHashQueue).
	// Beyond that, sign-ins get 503 with Retry-After.
	HashConcurrency int
	HashQueue       int

	// The lifetimes of what the provider issues where an app has none of
	// its own (config.toml's [tokens]); the provider asks for them per
	// request (Service.Policy), so a change on the settings page applies
	// to the next token. RefreshTokenLifetime is a refresh-token family's
	// absolute life, RefreshTokenIdle how long it may go unused.
	AccessTokenLifetime  time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration
	RefreshTokenIdle     time.Duration

	// Notify says which security events are mailed to the user they
	// concern (notifications.go); config.toml's [notifications].
	Notify Notify
}

// Service is the account rules, one area service per exported field:
// each holds the narrow store its rules need and shares the core.
type Service struct {
	Users       *UserService
	Credentials *CredentialService
	SignIn      *SignInService
	Directories *DirectoryService
	Clients     *ClientService
	Audit       *AuditService // reading the audit log
	// Admin is administrators acting on users (adminedit.go,
	// adminactions.go, adminlinks.go).
	Admin *AdminService
	// Mail sends what needs mail (a forgotten password), through the outbox.
	Mail *MailService
	// Webhooks is nil until EnableWebhooks.
	Webhooks *WebhookService
	// Deliveries shows admins the outbox and retries failed messages.
	Deliveries *DeliveryService
	// Registration is dynamic client registration (registration.go).
	Registration *RegistrationService

	core *core
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
	c := &core{
		defaults: policy,
		now:      now,
		log:      log,
		sealer:   sealer,
		limiter:  throttle.New(store, throttlePolicy(policy), now),
		hashes:   newHashGate(policy.HashConcurrency, policy.HashQueue),
		history:  store,
		auditLog: store,
	}
	c.effective.Store(&policy)

	users := &UserService{core: c, store: store}
	creds := &CredentialService{core: c, store: store, users: users}
	dirs := &DirectoryService{core: c, store: store, users: users}
	clients := &ClientService{core: c, store: store}
	mailer := &MailService{core: c, store: store, users: users, limits: newHourlyLimits(), addressLimits: newHourlyLimits(), work: make(chan struct{}, mailWorkers)}
	return &Service{
		Mail:        mailer,
		Users:       users,
		Credentials: creds,
		SignIn: &SignInService{core: c, store: store, users: users, creds: creds, dirs: dirs,
			guesses: throttle.NewGuesses[checkedGuess](), dummyHash: dummy, refreshWarns: &warnLimiter{every: refreshWarnEvery}},
		Directories: dirs,
		Clients:     clients,
		Audit:       &AuditService{core: c, store: store},
		Admin:       &AdminService{core: c, store: store, users: users, credentials: creds, mail: mailer, settings: store},
		Deliveries:  &DeliveryService{core: c, store: store},
		core:        c,

		Registration: &RegistrationService{core: c, store: store, clients: clients},
	}, nil
}

// Policy returns the rules in force.
func (s *Service) Policy() Policy { return s.core.policy() }

// Throttle is the limiter every guessable secret goes through; the provider
// uses it for client secrets, so both sides share one view of an address.
func (s *Service) Throttle() *throttle.Limiter { return s.core.limiter }

// Notify says which security events are mailed to the user they concern
// (when mail is on): config.toml's [notifications], changed on the
// settings page.
type Notify struct {
	NewDevice       bool // a sign-in from a browser not seen lately
	PasswordChanged bool
	SecondFactor    bool // an authenticator app, passkey or recovery codes added or removed
	Credentials     bool // a new API token or app password
	TokenExpiry     bool // an API token expiring within 7 days
	Blocked         bool
}
