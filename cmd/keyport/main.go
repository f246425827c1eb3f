// Command keyport runs the Keyport OpenID Connect provider and administers
// its data.
package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/control"
	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/health"
	"github.com/keyport/keyport/loglimit"
	"github.com/keyport/keyport/metrics"
	"github.com/keyport/keyport/outbox"
	"github.com/keyport/keyport/portal"
	"github.com/keyport/keyport/provider"
	"github.com/keyport/keyport/requestlog"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/storage/postgres"
	"github.com/keyport/keyport/templates"
	"github.com/keyport/keyport/web"
	"github.com/keyport/keyport/webhook"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts a graceful shutdown; a second one, with the
	// signals back to their default, ends the process at once.
	go func() {
		<-ctx.Done()
		stop()
	}()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv))
}

// Main is the whole program wired together. main() and the end-to-end tests
// both use it, so tests run the wiring operators run.
type Main struct {
	Config   *config.Config
	Logger   *slog.Logger
	Store    storage.Store
	Accounts *account.Service
	Keys     *provider.KeyManager
	Provider *provider.Provider
	Portal   *portal.Server
	Handler  http.Handler
	// Listener, when set before Run, is used instead of listening on
	// Config.Listen (tests pass a loopback listener on a free port).
	Listener net.Listener
	Now      func() time.Time
	// Outbox delivers the store's outbox while serve runs; producers
	// register their deliverers (Handle) in load, before Run.
	Outbox *outbox.Worker
	// Metrics are the Prometheus metrics, nil unless [metrics] listen is
	// set; MetricsListener, when set before Run, is used instead of
	// listening on it (tests).
	Metrics         *metrics.Metrics
	MetricsListener net.Listener
	// Ready answers /readyz; a part that must be ready before this
	// instance takes traffic adds its check in load.
	Ready *health.Readiness

	// The store (backend.go): db with bbolt, pg with PostgreSQL; store is
	// whichever is open, shared its leads and notices (PostgreSQL only).
	db     *bolt.DB
	pg     *postgres.DB
	store  storage.Store
	shared storage.Shared
	// storeClosed: Close (or a failed open) closed the store.
	storeClosed bool
	sealer      *seal.Sealer
	// directories are the sources of config.toml's [[directories]].
	directories []directory.Source
	sealKey     []byte
	server      *http.Server
	// metricsAddr is where the metrics listener listens, once Run has
	// opened it.
	metricsAddr atomic.Pointer[string]
}

// openStore opens the database and the sealing key. CLI commands stop here;
// serve goes on to Load.
func openStore(cfg *config.Config, log *slog.Logger, lockWait time.Duration, now func() time.Time) (*Main, error) {
	return openObservedStore(cfg, log, lockWait, now, nil)
}

// openObservedStore is openStore with the store's operations timed into
// met (nil: not timed).
func openObservedStore(cfg *config.Config, log *slog.Logger, lockWait time.Duration, now func() time.Time, met *metrics.Metrics) (*Main, error) {
	if now == nil {
		now = time.Now
	}
	// Static clients go through the same rules as registered ones; check
	// them before anything is written, so a bad [[clients]] entry creates
	// no files.
	static, err := staticClients(cfg.Clients)
	if err != nil {
		return nil, err
	}
	m := &Main{Config: cfg, Logger: log, Now: now, Metrics: met}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
	}
	if err := m.openBackend(context.Background(), lockWait); err != nil {
		return nil, err
	}
	// The database opens first: whether a missing key may be generated
	// depends on what it holds. Replicas starting together check (and the
	// first remembers) the key one at a time.
	var key []byte
	err = m.whileLeading(context.Background(), "sealing-key", func() (err error) {
		key, err = m.openSealingKey(context.Background())
		return err
	})
	if err != nil {
		m.closeBackend()
		return nil, err
	}
	if m.sealer, err = seal.New(key); err != nil {
		m.closeBackend()
		return nil, err
	}
	m.sealKey = key
	for i := range static {
		// A client_secret_jwt app's secret is kept sealed, in memory
		// only for an app of the file (account.SealClientSecret).
		account.SealClientSecret(m.sealer, &static[i], cfg.Clients[i].Secret)
	}
	m.Store = storage.WithStaticClients(m.store, static)
	if met != nil {
		// Every consumer gets the timed store; m.store (health, backups,
		// the control socket) stays untimed.
		m.Store = met.Store(m.Store)
	}
	m.Accounts, err = account.New(m.Store, m.sealer, account.Policy{
		Argon2: account.Argon2Params{
			MemoryKiB:   uint32(cfg.Password.MemoryKiB),
			Iterations:  uint32(cfg.Password.Iterations),
			Parallelism: uint8(cfg.Password.Parallelism),
		},
		MinPasswordLength: cfg.Password.MinLength,
		MaxLoginAttempts:  cfg.Limits.MaxLoginAttempts,
		LoginWindow:       cfg.Limits.LoginWindow.Duration,
		SessionLifetime:   cfg.Session.Lifetime.Duration,
		SetupTokenTTL:     time.Hour,
		Issuer:            cfg.Issuer,

		ProfilesLocked:        cfg.Accounts.ProfilesLocked,
		Require2FA:            cfg.Accounts.Require2FA,
		TrustedDeviceLifetime: cfg.Accounts.TrustedDeviceLifetime.Duration,
		RecentAuth:            cfg.Accounts.RecentAuth.Duration,

		MinPasswordScore:           cfg.Password.MinScore,
		MaxLoginAttemptsPerAddress: cfg.Limits.MaxLoginAttemptsPerAddress,
		AccountLockoutFailures:     cfg.Limits.AccountLockoutFailures,
		AccountLockoutWait:         cfg.Limits.AccountLockoutWait.Duration,
		AccountLockoutMaxWait:      cfg.Limits.AccountLockoutMaxWait.Duration,
		AccountLockoutReset:        cfg.Limits.AccountLockoutReset.Duration,
		HashConcurrency:            cfg.Limits.PasswordHashConcurrency,
		HashQueue:                  hashQueue(cfg.Limits.PasswordHashQueue),

		AccessTokenLifetime:  cfg.Tokens.Access.Duration,
		IDTokenLifetime:      cfg.Tokens.ID.Duration,
		RefreshTokenLifetime: cfg.Tokens.Refresh.Duration,
		RefreshTokenIdle:     cfg.Tokens.RefreshIdle.Duration,

		Notify: account.Notify{
			NewDevice:       cfg.Notifications.NewDevice,
			PasswordChanged: cfg.Notifications.PasswordChanged,
			SecondFactor:    cfg.Notifications.SecondFactor,
			Credentials:     cfg.Notifications.Credentials,
			TokenExpiry:     cfg.Notifications.TokenExpiry,
			Blocked:         cfg.Notifications.Blocked,
		},
	}, now, log)
	if err != nil {
		m.closeBackend()
		return nil, err
	}
	if m.directories, err = openDirectories(cfg.Directories, directoryEnv(cfg.Issuer, log, now)); err != nil {
		m.closeBackend()
		return nil, err
	}
	m.Accounts.Directories.UseDirectories(m.directories...)
	if err := m.Accounts.Directories.LoadStoredDirectories(context.Background()); err != nil {
		m.closeBackend()
		return nil, err
	}
	if err := m.Accounts.Admin.LoadSettings(context.Background()); err != nil {
		m.closeBackend()
		return nil, err
	}
	return m, nil
}

// hashQueue maps password_hash_queue (0: no waiting) onto the account
// policy, where 0 means the default.
func hashQueue(n int) int {
	if n == 0 {
		return -1
	}
	return n
}

// settingSealCheck holds seal.Check of the sealing key the database's
// secrets are sealed with.
const settingSealCheck = "seal-key-check"

// openSealingKey reads the key that seals secrets at rest, generating it on
// the first start. It never generates one beside a database that holds
// secrets sealed with the old key (signing keys, TOTP secrets, directory
// passwords): those could not be opened with a new key, and the old one
// would then be overwritten by nothing but a restore. Nor does it accept a
// key other than the one the database remembers (seal.Check), such as a
// secret.key restored from a different backup.
func (m *Main) openSealingKey(ctx context.Context) ([]byte, error) {
	cfg := m.Config
	path := cfg.SecretKeyPath()
	key, _, err := seal.LoadOrCreateKey(path, false)
	created := false
	if errors.Is(err, os.ErrNotExist) && m.pg != nil {
		// Every replica must seal with the same key: a key made here
		// would be this replica's alone.
		return nil, fmt.Errorf("the sealing key %s is missing: with storage.type \"postgres\" every replica uses the same key, made once with `keyport keys new-sealing-key --to FILE` and given to each (secret_key_file, or %s); if the database holds secrets already, use the key they were sealed with",
			path, config.EnvSecretKeyFile)
	}
	if errors.Is(err, os.ErrNotExist) && cfg.SecretKeyFile == "" {
		sealed, _, serr := sealedData(ctx, m.store)
		if serr != nil {
			return nil, serr
		}
		if sealed != "" {
			return nil, fmt.Errorf("the sealing key %s is missing, but the database %s holds %s sealed with it: restore %s from the backup you keep with the database (a new key could not open them)",
				path, m.storeName(), sealed, filepath.Base(path))
		}
		key, created, err = seal.LoadOrCreateKey(path, true)
	}
	if err != nil {
		return nil, err
	}
	if created {
		m.Logger.Info("generated the secret key that seals secrets at rest; back it up with the database", "path", path)
	}
	want := seal.Check(key)
	stored, err := m.store.GetSetting(ctx, settingSealCheck)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, fmt.Errorf("read the sealing key check: %w", err)
	}
	switch {
	case created:
		// Nothing was sealed with a key before (see above): this one is it.
		err = m.rememberSealingKey(ctx, want)
	case stored != nil:
		if subtle.ConstantTimeCompare(stored, want) != 1 {
			return nil, fmt.Errorf("the sealing key %s is not the key the secrets in %s were sealed with: restore the %s that belongs to this database from your backup",
				path, m.storeName(), filepath.Base(path))
		}
	default:
		// A database from before the check was kept: remember the key once
		// it has opened a secret sealed there, right away when nothing is
		// sealed. Not later (once the signing key opens, say): a signing key
		// due for rotation is replaced before it is opened, sealed with
		// whatever key this is, and the wrong key would be remembered.
		var sample *sealedSample
		if _, sample, err = sealedData(ctx, m.store); err == nil && sample != nil {
			err = sample.opensWith(key)
			if err != nil {
				return nil, fmt.Errorf("the sealing key %s does not open the %s in %s: restore the %s that belongs to this database from your backup",
					path, sample.what, m.storeName(), filepath.Base(path))
			}
		}
		if err == nil {
			err = m.rememberSealingKey(ctx, want)
		}
	}
	if err != nil {
		return nil, err
	}
	return key, nil
}

// rememberSealingKey stores the check of the key in use.
func (m *Main) rememberSealingKey(ctx context.Context, check []byte) error {
	if err := m.store.PutSetting(ctx, settingSealCheck, check); err != nil {
		return fmt.Errorf("store the sealing key check: %w", err)
	}
	return nil
}

// sealedSample is one secret sealed in the store, to prove a key with.
type sealedSample struct {
	what, purpose string
	sealed        []byte
}

func (s *sealedSample) opensWith(key []byte) error {
	sealer, err := seal.New(key)
	if err != nil {
		return err
	}
	_, err = sealer.Open(s.sealed, s.purpose)
	return err
}

// sealedData names the kinds of sealed secrets the store holds ("" for
// none) and returns one of them (nil for none). It reads every user, so it
// runs only when the key is missing or not yet remembered.
func sealedData(ctx context.Context, s storage.Store) (string, *sealedSample, error) {
	var kinds []string
	var sample *sealedSample
	found := func(kind string, sealed []byte, purpose string) {
		kinds = append(kinds, kind)
		if sample == nil {
			sample = &sealedSample{what: kind, purpose: purpose, sealed: sealed}
		}
	}
	keys, err := s.ListSigningKeys(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("look for sealed data: %w", err)
	}
	for _, k := range keys {
		// A retired key's private half is gone (provider.KeyManager).
		if len(k.SealedKey) > 0 {
			found("signing keys", k.SealedKey, provider.SealPurposeSigningKey)
			break
		}
	}
	users, err := s.ListUsers(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("look for sealed data: %w", err)
	}
	for _, u := range users {
		sealed := u.TOTPSecret
		if len(sealed) == 0 {
			sealed = u.TOTPPending
		}
		if len(sealed) > 0 {
			found("TOTP secrets", sealed, account.TOTPSealPurpose(u.ID))
			break
		}
	}
	dirs, err := s.ListDirectories(ctx)
	if err != nil {
		return "", nil, fmt.Errorf("look for sealed data: %w", err)
	}
	for _, d := range dirs {
		if len(d.SealedSecret) > 0 {
			found("directory passwords", d.SealedSecret, account.BindSealPurpose(d.ID))
			break
		}
	}
	return strings.Join(kinds, ", "), sample, nil
}

func staticClients(cs []config.Client) ([]storage.Client, error) {
	out := make([]storage.Client, 0, len(cs))
	for i, c := range cs {
		sc, _, err := account.BuildClient(account.NewClient{
			ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			GrantTypes: c.GrantTypes, Public: c.Public, AccessTokenJWT: c.AccessTokenJWT, SkipConsent: c.SkipConsent, Secret: c.Secret,
			FrontchannelLogoutURI: c.FrontchannelLogoutURI, FrontchannelLogoutSessionRequired: c.FrontchannelLogoutSessionRequired,
			BackchannelLogoutURI: c.BackchannelLogoutURI, BackchannelLogoutSessionRequired: c.BackchannelLogoutSessionRequired,
			TokenEndpointAuthMethod: c.TokenEndpointAuthMethod, JWKS: json.RawMessage(c.JWKS), JWKSURI: c.JWKSURI,
			RequirePushedAuthorizationRequests: c.RequirePushedAuthorizationRequests,
			IDTokenSignedResponseAlg:           c.IDTokenSignedResponseAlg, UserinfoSignedResponseAlg: c.UserinfoSignedResponseAlg,
			TokenExchangeAudiences: c.TokenExchangeAudiences,

			RequireSignedRequestObject: c.RequireSignedRequestObject,

			DPoPBoundAccessTokens: c.DPoPBoundAccessTokens, RequireDPoPNonce: c.RequireDPoPNonce,
			CustomClaims: claimMappings(c.CustomClaims),
			Resources:    c.Resources,
			SubjectType:  c.SubjectType, SectorIdentifierURI: c.SectorIdentifierURI,
		})
		if f := account.ErrorField(err); f != "" {
			// The rules are account's, the same as the console's and the
			// API's; its fields are the TOML keys, so the message names
			// the key at fault.
			return nil, fmt.Errorf("clients[%d].%s: %s", i, f, account.ErrorMessage(err))
		}
		if err != nil {
			return nil, fmt.Errorf("clients[%d] (%s): %s", i, c.ID, account.ErrorMessage(err))
		}
		out = append(out, sc)
	}
	return out, nil
}

// claimMappings are a [[clients]] entry's custom claims as stored.
func claimMappings(ms []config.ClaimMapping) []storage.ClaimMapping {
	out := make([]storage.ClaimMapping, 0, len(ms))
	for _, m := range ms {
		out = append(out, storage.ClaimMapping{Claim: m.Claim, Source: m.Source, Scope: m.Scope, In: m.In})
	}
	return out
}

// subkey derives a purpose-specific key from the sealing key, so one secret
// file serves every use without reusing a key across purposes.
func (m *Main) subkey(purpose string, n int) []byte {
	k, err := hkdf.Key(sha256.New, m.sealKey, nil, "keyport "+purpose, n)
	if err != nil {
		panic(err) // only fails for impossible lengths
	}
	return k
}

// Load opens everything serve needs: store, keys, provider and portal.
// outboxPollInterval is how often the outbox worker looks for due
// messages unwoken; 0 is outbox's default. Producers wake it at once, so
// this only paces retries; tests lengthen it to show that every producer
// does wake it.
var outboxPollInterval time.Duration

func Load(cfg *config.Config, log *slog.Logger, now func() time.Time) (*Main, error) {
	var met *metrics.Metrics
	if cfg.Metrics.Listen != "" {
		met = metrics.New()
	}
	m, err := openObservedStore(cfg, log, 2*time.Second, now, met)
	if err != nil {
		return nil, err
	}
	if err := m.load(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (m *Main) load() error {
	cfg, log := m.Config, m.Logger
	life := provider.Lifetimes{
		Code:        cfg.Tokens.Code.Duration,
		Access:      cfg.Tokens.Access.Duration,
		ID:          cfg.Tokens.ID.Duration,
		Refresh:     cfg.Tokens.Refresh.Duration,
		RefreshIdle: cfg.Tokens.RefreshIdle.Duration,
		AuthRequest: cfg.Tokens.AuthRequest.Duration,

		RefreshReuseGrace: cfg.Tokens.RefreshReuseGrace.Duration,
	}
	// The lifetimes an admin may change while Keyport runs (the runtime
	// settings) come from the account policy in force, asked per request;
	// the code's and the authorization request's stay config.toml's.
	lifeInForce := func() provider.Lifetimes {
		p, l := m.Accounts.Policy(), life
		l.Access, l.ID, l.Refresh, l.RefreshIdle = p.AccessTokenLifetime, p.IDTokenLifetime, p.RefreshTokenLifetime, p.RefreshTokenIdle
		return l
	}
	// An app may be given longer-lived tokens than the defaults, up to
	// account.MaxClientTokenLifetime, and the settings as long as that or
	// config.toml's: retired keys stay published as long as any token
	// signed with them can live.
	keep := m.Accounts.MaxSignedTokenLifetime() + 5*time.Minute
	m.Keys = provider.NewKeyManager(m.Store, m.sealer, cfg.Keys.RotationPeriod.Duration, keep, m.Now, log)
	if err := m.Keys.SetAlgorithm(cfg.Keys.Algorithm); err != nil {
		return fmt.Errorf("keys.algorithm: %w", err)
	}
	// An app may send an ID token back as id_token_hint, expired, for as
	// long as the person's session lasts: a retired key verifies hints
	// that long, out of JWKS.
	m.Keys.SetHintRetention(max(cfg.Session.Lifetime.Duration, m.Accounts.Policy().SessionLifetime))
	// Apps that ask for another algorithm (id_token_signed_response_alg)
	// get a key of theirs, made when an app is given it and rotated with
	// the default one.
	m.Keys.SetAlgorithmsInUse(func(ctx context.Context) ([]string, error) {
		clients, err := m.Store.ListClients(ctx)
		return account.ClientSigningAlgorithms(clients), err
	})
	m.Accounts.Clients.SetSigningKeys(m.Keys.EnsureAlgorithm)
	m.Accounts.Clients.SetFeaturesOff(featuresOff(cfg.OAuth))
	var deliveries func(kind, outcome string)
	if m.Metrics != nil {
		deliveries = m.Metrics.OutboxDelivery
		m.Accounts.SetObserver(m.Metrics)
		m.Metrics.OutboxDepth(m.Store, outboxDepthTTL, outboxDepthLimit)
	}
	m.Outbox = outbox.New(outbox.Options{Store: m.Store, Logger: log, Now: m.Now, Observe: deliveries, PollInterval: outboxPollInterval})
	m.Accounts.SetOutboxWake(m.Outbox.Notify)
	if err := m.enableMail(); err != nil {
		return fmt.Errorf("mail: %w", err)
	}
	if err := m.enableWebhooks(); err != nil {
		return err
	}
	if err := m.loadSigningKeys(context.Background()); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}
	m.Ready = m.readiness()

	var tmpl fs.FS = templates.FS
	if cfg.TemplatesDir != "" {
		tmpl = os.DirFS(cfg.TemplatesDir)
	}
	sameSite := http.SameSiteLaxMode
	if cfg.Session.SameSite == "strict" {
		sameSite = http.SameSiteStrictMode
	}
	// The browser's cookie and the pages come first, for both sides. The
	// portal is built next: it reaches the provider only by sending the
	// browser to the callback, and the provider asks the portal only about
	// signing out (provider.SignOut). The sign-in flow writes the records
	// both read.
	pages, err := web.New(web.Options{
		Issuer:          cfg.Issuer,
		Templates:       tmpl,
		CookieKey:       m.subkey("session cookie", 64),
		CookieName:      cfg.Session.CookieName,
		CookieSecure:    cfg.SecureCookie(),
		CookieSameSite:  sameSite,
		SessionLifetime: func() time.Duration { return m.Accounts.Policy().SessionLifetime },
		Logger:          log,
	})
	if err != nil {
		return err
	}
	pending := storage.PendingLimits{
		PerOrigin: cfg.Limits.MaxPendingSignInsPerAddress,
		Total:     cfg.Limits.MaxPendingSignIns,
	}
	// The portal is built first (see above) but reads the provider's
	// access tokens at request time, for apps calling the management API.
	tokens := &lateAccessTokens{}
	m.Portal, err = portal.New(portal.Options{
		Issuer:       cfg.Issuer,
		Accounts:     m.Accounts,
		Flow:         account.NewFlow(m.Store, m.Accounts, pending),
		Store:        m.Store,
		Web:          pages,
		MaxBodyBytes: cfg.Limits.MaxBodyBytes,
		Now:          m.Now,
		Logger:       log,
		Health:       m.storeHealth,
		Ready:        m.Ready,
		AccessTokens: tokens,
		Keys:         m.Keys,
		DeviceFlow:   m.deviceFlow(cfg),

		DynamicRegistration: cfg.OAuth.DynamicRegistration,
	})
	if err != nil {
		return err
	}
	var tokenKey [32]byte
	copy(tokenKey[:], m.subkey("access tokens", 32))
	jwksGuard, err := webhook.NewGuard(cfg.ClientAuth.JWKSAllowNetworks)
	if err != nil {
		return fmt.Errorf("client_auth.jwks_allow_networks: %w", err)
	}
	subjects, err := m.enablePairwiseSubjects(jwksGuard)
	if err != nil {
		return err
	}
	prov, err := provider.New(provider.Options{
		Issuer:         cfg.Issuer,
		Store:          m.Store,
		Keys:           m.Keys,
		TokenKey:       tokenKey,
		Lifetimes:      life,
		MaxBodyBytes:   cfg.Limits.MaxBodyBytes,
		Now:            m.Now,
		Logger:         log,
		Web:            pages,
		SignOut:        m.Portal,
		LoggedOutURL:   cfg.Issuer + "/logged-out",
		Throttle:       m.Accounts.Throttle(),
		CheckRefresh:   m.Accounts.SignIn.CheckRefreshNetwork,
		PendingSignIns: pending,

		LifetimesInForce: lifeInForce,
		Observer:         m.providerObserver(),
		Device:           deviceOptions(cfg),
		ClientAssertions: provider.ClientAssertionOptions{Sealer: m.sealer, JWKSGuard: jwksGuard},

		RequirePushedAuthorizationRequests: cfg.OAuth.RequirePushedAuthorizationRequests,
		Off:                                featuresOff(cfg.OAuth),

		VerifyAppPassword: m.Accounts.SignIn.VerifyAppPassword,

		DPoPNonceKey:         [32]byte(m.subkey("dpop nonces", 32)),
		RegistrationEndpoint: registrationEndpoint(cfg),
		Subjects:             subjects,
	})
	if err != nil {
		return err
	}
	m.Provider = prov
	m.enableBackChannelLogout()
	m.enableLinkExpiry()
	tokens.p = prov

	mux := http.NewServeMux()
	for _, r := range provider.Routes {
		mux.Handle(r.Path, requestlog.Route(r.Path, prov))
	}
	if cfg.OAuth.DeviceFlow {
		mux.Handle(provider.DeviceAuthorizationPath, requestlog.Route(provider.DeviceAuthorizationPath, prov))
	}
	mux.Handle("/", m.Portal)
	header, err := clientip.ParseHeader(cfg.ClientIPHeader)
	if err != nil {
		return err
	}
	ips, err := clientip.New(cfg.TrustedProxies, header)
	if err != nil {
		return fmt.Errorf("trusted_proxies: %w", err)
	}
	m.Handler = strictTransport(cfg.StrictTransportSecurity(), ips.Middleware(m.logRequests(mux)))
	return nil
}

// Run serves until ctx ends, then shuts down gracefully.
func (m *Main) Run(ctx context.Context) error {
	log := m.Logger
	ln := m.Listener
	if ln == nil {
		var err error
		if ln, err = net.Listen("tcp", m.Config.Listen); err != nil {
			return fmt.Errorf("listen on %s: %w", m.Config.Listen, err)
		}
	}
	m.server = &http.Server{
		Handler:           m.Handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if err := m.announceSetup(ctx); err != nil {
		ln.Close() // nobody will serve it: refuse connections rather than hold them
		return err
	}
	// Background work ends with bg, which ends with ctx; Run returns only
	// once every worker has stopped (the probe and the outbox write,
	// deliveries record their outcomes or leave them to their lease), so
	// that Close finds no one still using the database.
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	var workers sync.WaitGroup
	if m.Outbox != nil {
		workers.Go(func() { m.Outbox.Run(bg) })
	}
	// Jobs that must run in one process at a time run where their lead
	// is (every job here with bbolt); every replica delivers the outbox
	// (claims are leased) and reloads what other replicas change.
	workers.Go(func() { m.led(bg, "signing-key-rotation", m.Keys.Run) })
	workers.Go(func() { m.led(bg, "sweep", m.sweep) })
	workers.Go(func() {
		m.led(bg, "token-expiry-warnings", func(ctx context.Context) {
			every(ctx, tokenExpiryCheckInterval, true, func() { m.warnExpiringTokens(ctx) })
		})
	})
	workers.Go(func() {
		m.led(bg, "directory-sync", func(ctx context.Context) {
			var syncs sync.WaitGroup
			m.syncDirectories(ctx, &syncs)
			<-ctx.Done()
			syncs.Wait()
		})
	})
	workers.Go(func() { m.watchChanges(bg) })
	if m.db != nil {
		workers.Go(func() { every(bg, probeInterval, true, func() { _ = m.db.Probe() }) })
	}
	ctl, err := control.Listen(filepath.Join(m.Config.DataDir, control.SocketName), m.store, m.Portal.LocalAPI(), log)
	if err != nil {
		log.Warn("no control socket: `keyport backup` needs the server stopped", "err", err)
	} else {
		go func() {
			if err := ctl.Serve(); err != nil {
				log.Warn("control socket stopped", "err", err)
			}
		}()
		defer ctl.Close()
	}

	metricsSrv, err := m.serveMetrics(ln)
	if err != nil {
		return err
	}
	if metricsSrv != nil {
		defer metricsSrv.Close()
	}

	errc := make(chan error, 1)
	go func() { errc <- m.server.Serve(ln) }()
	if !m.Accounts.Credentials.PasskeysAvailable() {
		log.Warn("passkeys are off: WebAuthn needs a host name in the issuer, not an IP address", "issuer", m.Config.Issuer)
	}
	log.Info("keyport is running", "issuer", m.Config.Issuer, "listen", ln.Addr().String(), "data_dir", m.Config.DataDir)
	select {
	case err := <-errc:
		cancel()
		workers.Wait()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	return m.shutdown(cancel, &workers, metricsSrv)
}

// shutdown stops serve gracefully, within http.shutdown_timeout: the
// listener closes at once (new connections are refused), requests in
// progress finish (idle keep-alive connections close), and background
// work stops (ctx has ended already; it stops in parallel with the
// requests). What outlasts the timeout is cut and logged; the database
// is closed by Close after Run returns either way, so the next start
// finds it closed cleanly.
func (m *Main) shutdown(cancel context.CancelFunc, workers *sync.WaitGroup, metricsSrv *http.Server) error {
	log := m.Logger
	start := time.Now()
	timeout := m.Config.HTTP.ShutdownTimeout.Duration
	log.Info("shutting down: no new connections; finishing requests in progress", "timeout", timeout)
	cancel()
	// The workers stop while the requests finish: both within the timeout.
	stopped := make(chan struct{})
	go func() {
		workers.Wait()
		close(stopped)
	}()
	ctx, done := context.WithTimeout(context.Background(), timeout)
	defer done()
	if metricsSrv != nil {
		_ = metricsSrv.Shutdown(ctx)
	}
	if err := m.server.Shutdown(ctx); err != nil {
		log.Warn("requests still in progress after http.shutdown_timeout were cut", "timeout", timeout, "err", err)
		_ = m.server.Close()
	}
	select {
	case <-stopped:
	default:
		select {
		case <-stopped:
		case <-ctx.Done():
			// A worker that ignores its context (a directory that stopped
			// answering) must not keep the process up; its store calls fail
			// once the database is closed.
			log.Warn("background work still running after http.shutdown_timeout; closing the database anyway", "timeout", timeout)
		}
	}
	log.Info("stopped", "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// announceSetup logs the one-time link for creating the first administrator
// when there are no users yet.
func (m *Main) announceSetup(ctx context.Context) error {
	need, err := m.Accounts.Users.NeedsSetup(ctx)
	if err != nil || !need {
		return err
	}
	tok, err := m.Accounts.Users.CreateSetupToken(ctx)
	if err != nil {
		return err
	}
	m.Logger.Warn("no users yet: open this link within 1 hour to create the first administrator (or run `keyport user create --admin`)",
		"url", m.Config.Issuer+"/setup?token="+tok)
	return nil
}

// probeInterval is how often the store checks that it can write (see
// bolt.DB.Probe): /healthz reports failing writes until a probe succeeds.
const probeInterval = 5 * time.Second

func (m *Main) sweep(ctx context.Context) {
	every(ctx, 5*time.Minute, false, func() { m.sweepOnce(ctx) })
}

// sweepOnce deletes what has expired, and the audit events older than
// the retention (audit.retention).
func (m *Main) sweepOnce(ctx context.Context) {
	rep, err := m.Store.Sweep(ctx)
	if err != nil {
		m.Logger.Error("sweep expired records", "err", err)
	} else {
		m.Logger.Debug("swept expired records", "report", rep)
	}
	n, err := m.Store.SweepAudit(ctx, m.Now().Add(-m.Config.Audit.Retention.Duration))
	if err != nil {
		m.Logger.Error("sweep old audit events", "err", err)
		return
	}
	m.Logger.Debug("swept old audit events", "audit_events", n)
}

// tokenExpiryCheckInterval is how often the owners of API tokens that
// expire soon are warned (each token once; a restart checks at once).
const tokenExpiryCheckInterval = 24 * time.Hour

// warnExpiringTokens mails the owners of API tokens that expire within a
// week (account.MailService.WarnExpiringTokens; nothing without mail).
func (m *Main) warnExpiringTokens(ctx context.Context) {
	n, err := m.Accounts.Mail.WarnExpiringTokens(ctx)
	if err != nil {
		m.Logger.Error("warn of expiring API tokens", "warned", n, "err", err)
		return
	}
	if n > 0 {
		m.Logger.Info("warned of expiring API tokens", "warned", n)
	}
}

// every calls fn every d until ctx ends, the first time at once when now is
// set.
func every(ctx context.Context, d time.Duration, now bool, fn func()) {
	t := time.NewTicker(d)
	defer t.Stop()
	if now {
		fn()
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}

// Close releases the database.
func (m *Main) Close() error {
	closeSources(m.directories)
	m.directories = nil
	if m.store == nil || m.storeClosed {
		return nil
	}
	if m.Accounts != nil {
		m.Accounts.Mail.Wait() // password-reset requests still writing
	}
	return m.closeBackend()
}

func newLogger(level string, w io.Writer) *slog.Logger {
	return newFormatLogger(level, "text", w)
}

// newFormatLogger writes records at level and above to w as text
// (key=value) or JSON lines, with each request's id on the records
// logged with its context (requestlog.Handler).
func newFormatLogger(level, format string, w io.Writer) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	// A failing disk makes every request log the same error, and a client
	// hammering a throttled account the same refusal.
	opts := &slog.HandlerOptions{Level: l}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	// The limiter sees records without the request id, which it adds to
	// none of them: what makes records "the same" stays their message.
	return slog.New(loglimit.New(requestlog.Handler(h), loglimit.Options{
		Messages: []string{account.LogRefused, provider.LogClientRefused},
	}))
}

// flushLog writes what the log limiter still holds back.
func flushLog(log *slog.Logger) {
	if h, ok := log.Handler().(*loglimit.Handler); ok {
		h.Flush()
	}
}

// inUseError: another process (a running `keyport serve`) holds the
// database.
type inUseError struct {
	path string
	err  error
}

func (e *inUseError) Error() string {
	return fmt.Sprintf("the database %s is in use by another process: is `keyport serve` running? Stop it first (`keyport backup` works while it runs)", e.path)
}

func (e *inUseError) Unwrap() error { return e.err }

// lateAccessTokens hands the portal's management API the provider's
// access tokens; the provider is set before the server serves.
type lateAccessTokens struct{ p *provider.Provider }

func (l *lateAccessTokens) ReadAccessToken(ctx context.Context, raw string) (storage.AccessToken, error) {
	if l.p == nil {
		return storage.AccessToken{}, errors.New("the provider is not ready")
	}
	return l.p.ReadAccessToken(ctx, raw)
}

// registrationEndpoint is the portal's dynamic client registration
// endpoint for discovery, or "" while [oauth] dynamic_registration is off.
func registrationEndpoint(cfg *config.Config) string {
	if !cfg.OAuth.DynamicRegistration {
		return ""
	}
	return strings.TrimSuffix(cfg.Issuer, "/") + portal.RegistrationPath
}
