// Command keyport runs the Keyport OpenID Connect provider and administers
// its data.
package main

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/directory/ldap"
	"github.com/keyport/keyport/portal"
	"github.com/keyport/keyport/provider"
	"github.com/keyport/keyport/seal"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/storage/bolt"
	"github.com/keyport/keyport/templates"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
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

	db     *bolt.DB
	sealer *seal.Sealer
	// directories are the configured LDAP sources.
	directories []*ldap.Source
	sealKey     []byte
	server      *http.Server
}

// openStore opens the database and the sealing key. CLI commands stop here;
// serve goes on to Load.
func openStore(cfg *config.Config, log *slog.Logger, lockWait time.Duration, now func() time.Time) (*Main, error) {
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
	m := &Main{Config: cfg, Logger: log, Now: now}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data_dir %s: %w", cfg.DataDir, err)
	}
	key, created, err := seal.LoadOrCreateKey(cfg.SecretKeyPath(), cfg.SecretKeyFile == "")
	if err != nil {
		return nil, err
	}
	if created {
		log.Info("generated the secret key that seals secrets at rest; back it up with the database", "path", cfg.SecretKeyPath())
	}
	if m.sealer, err = seal.New(key); err != nil {
		return nil, err
	}
	m.sealKey = key
	m.db, err = bolt.Open(cfg.DBPath(), bolt.Options{Now: now, Timeout: lockWait, Logger: log})
	if err != nil {
		if errors.Is(err, bolt.ErrLocked) {
			return nil, fmt.Errorf("the database %s is in use by another process: is `keyport serve` running? Stop it first (a later version will let the CLI talk to the running server)", cfg.DBPath())
		}
		return nil, err
	}
	m.Store = storage.WithStaticClients(m.db, static)
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
	}, now, log)
	if err != nil {
		m.db.Close()
		return nil, err
	}
	if m.directories, err = openDirectories(cfg.Directories); err != nil {
		m.db.Close()
		return nil, err
	}
	upstream, err := upstreamSources(cfg.Issuer, cfg.Directories, log, now)
	if err != nil {
		m.db.Close()
		return nil, err
	}
	m.Accounts.UseDirectories(allSources(m.directories, upstream)...)
	if err := m.Accounts.LoadStoredDirectories(context.Background()); err != nil {
		m.db.Close()
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

func staticClients(cs []config.Client) ([]storage.Client, error) {
	out := make([]storage.Client, 0, len(cs))
	for i, c := range cs {
		sc, _, err := account.BuildClient(account.NewClient{
			ID: c.ID, Name: c.Name, RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs,
			GrantTypes: c.GrantTypes, Public: c.Public, AccessTokenJWT: c.AccessTokenJWT, SkipConsent: c.SkipConsent, Secret: c.Secret,
		})
		if err != nil {
			return nil, fmt.Errorf("clients[%d] (%s): %s", i, c.ID, account.ErrorMessage(err))
		}
		out = append(out, sc)
	}
	return out, nil
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
func Load(cfg *config.Config, log *slog.Logger, now func() time.Time) (*Main, error) {
	m, err := openStore(cfg, log, 2*time.Second, now)
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
	keep := max(life.Access, life.ID) + 5*time.Minute
	m.Keys = provider.NewKeyManager(m.Store, m.sealer, cfg.Keys.RotationPeriod.Duration, keep, m.Now, log)
	if err := m.Keys.Load(context.Background()); err != nil {
		return fmt.Errorf("load signing keys: %w", err)
	}

	var tmpl fs.FS = templates.FS
	if cfg.TemplatesDir != "" {
		tmpl = os.DirFS(cfg.TemplatesDir)
	}
	sameSite := http.SameSiteLaxMode
	if cfg.Session.SameSite == "strict" {
		sameSite = http.SameSiteStrictMode
	}
	var err error
	var prov *provider.Provider
	m.Portal, err = portal.New(portal.Options{
		Issuer:          cfg.Issuer,
		Accounts:        m.Accounts,
		AuthRequests:    lazyFlows{&prov},
		Store:           m.Store,
		Templates:       tmpl,
		CookieKey:       m.subkey("session cookie", 64),
		CookieName:      cfg.Session.CookieName,
		CookieSecure:    cfg.SecureCookie(),
		CookieSameSite:  sameSite,
		SessionLifetime: cfg.Session.Lifetime.Duration,
		MaxBodyBytes:    cfg.Limits.MaxBodyBytes,
		Now:             m.Now,
		Logger:          log,
	})
	if err != nil {
		return err
	}
	var tokenKey [32]byte
	copy(tokenKey[:], m.subkey("access tokens", 32))
	prov, err = provider.New(provider.Options{
		Issuer:       cfg.Issuer,
		Store:        m.Store,
		Keys:         m.Keys,
		TokenKey:     tokenKey,
		Lifetimes:    life,
		MaxBodyBytes: cfg.Limits.MaxBodyBytes,
		Now:          m.Now,
		Logger:       log,
		ErrorPage:    m.Portal.ErrorPage,
		OnLogout:     m.Portal.EndBrowserSession,
		SignedInUser: m.Portal.SignedInUserID,
		LogoutPrompt: m.Portal.LogoutPrompt,
		LoggedOutURL: cfg.Issuer + "/logged-out",
		OwnsRequest:  m.Portal.OwnsRequest,
		Throttle:     m.Accounts.Throttle(),
		CheckRefresh: m.Accounts.CheckRefreshNetwork,
		PendingSignIns: storage.PendingLimits{
			PerOrigin: cfg.Limits.MaxPendingSignInsPerAddress,
			Total:     cfg.Limits.MaxPendingSignIns,
		},
		// A cross-site end_session that came without the cookie comes back
		// once through Keyport, with it (portal/hop.go).
		RetryWithCookie: m.Portal.RetryWithCookie,
	})
	if err != nil {
		return err
	}
	m.Provider = prov

	mux := http.NewServeMux()
	for _, p := range provider.Routes {
		mux.Handle(p, prov)
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
	m.Handler = strictTransport(cfg.StrictTransportSecurity(), ips.Middleware(mux))
	return nil
}

// lazyFlows lets the portal and the provider be built in either order: each
// needs something of the other (the provider renders the portal's error
// page; the portal completes the provider's requests).
type lazyFlows struct{ p **provider.Provider }

func (l lazyFlows) Get(ctx context.Context, id string) (storage.AuthRequest, error) {
	return (*l.p).Get(ctx, id)
}
func (l lazyFlows) Complete(ctx context.Context, id string, c account.Completion) error {
	return (*l.p).Complete(ctx, id, c)
}
func (l lazyFlows) CallbackURL(ctx context.Context, id string) string {
	return (*l.p).CallbackURL(ctx, id)
}
func (l lazyFlows) Fail(w http.ResponseWriter, r *http.Request, id, code, desc string) {
	(*l.p).Fail(w, r, id, code, desc)
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
		return err
	}
	bg, cancel := context.WithCancel(ctx)
	defer cancel()
	go m.Keys.Run(bg)
	go m.sweep(bg)
	m.syncDirectories(bg)

	errc := make(chan error, 1)
	go func() { errc <- m.server.Serve(ln) }()
	if !m.Accounts.PasskeysAvailable() {
		log.Warn("passkeys are off: WebAuthn needs a host name in the issuer, not an IP address", "issuer", m.Config.Issuer)
	}
	log.Info("keyport is running", "issuer", m.Config.Issuer, "listen", ln.Addr().String(), "data_dir", m.Config.DataDir)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutdownCtx, done := context.WithTimeout(context.Background(), 10*time.Second)
	defer done()
	if err := m.server.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// announceSetup logs the one-time link for creating the first administrator
// when there are no users yet.
func (m *Main) announceSetup(ctx context.Context) error {
	need, err := m.Accounts.NeedsSetup(ctx)
	if err != nil || !need {
		return err
	}
	tok, err := m.Accounts.CreateSetupToken(ctx)
	if err != nil {
		return err
	}
	m.Logger.Warn("no users yet: open this link within 1 hour to create the first administrator (or run `keyport user create --admin`)",
		"url", m.Config.Issuer+"/setup?token="+tok)
	return nil
}

func (m *Main) sweep(ctx context.Context) {
	every(ctx, 5*time.Minute, false, func() {
		rep, err := m.Store.Sweep(ctx)
		if err != nil {
			m.Logger.Error("sweep expired records", "err", err)
			return
		}
		m.Logger.Debug("swept expired records", "report", rep)
	})
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
	for _, d := range m.directories {
		d.Close()
	}
	m.directories = nil
	if m.db == nil {
		return nil
	}
	err := m.db.Close()
	m.db = nil
	return err
}

func newLogger(level string, w io.Writer) *slog.Logger {
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
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
