// Package oidc is a directory source on an upstream OpenID Connect provider:
// the browser signs in there and comes back with a code (authorization code
// flow with PKCE, state and nonce); the ID token is verified fully.
package oidc

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/directory"
)

// Config describes one upstream provider. The toml tags are the keys of a
// [[directories]] table in config.toml; stored directories keep the Go
// field names as JSON keys.
type Config struct {
	ID           string   `toml:"id"`
	Name         string   `toml:"name"`
	Issuer       string   `toml:"issuer"`
	ClientID     string   `toml:"client_id"`
	ClientSecret string   `toml:"client_secret"`
	Scopes       []string `toml:"scopes"` // default openid profile email
	// RedirectURL is Keyport's callback, registered at the upstream.
	RedirectURL string `toml:"-"`
	// Claim names; empty values use the standard claims.
	UsernameClaim       string `toml:"username_claim"`
	EmailClaim          string `toml:"email_claim"`
	GivenNameClaim      string `toml:"given_name_claim"`
	FamilyNameClaim     string `toml:"family_name_claim"`
	NameClaim           string `toml:"name_claim"`
	GroupsClaim         string `toml:"groups_claim"`
	ButtonLabel         string `toml:"button_label"`
	LinkByVerifiedEmail bool   `toml:"link_by_verified_email"`
	CreateUsers         bool   `toml:"create_users"`
	// HandlesSecondFactor: the upstream asks for second factors itself, so
	// Keyport offers its users none and require_2fa does not apply to them
	// (as for an LDAP directory that does).
	HandlesSecondFactor bool         `toml:"handles_second_factor"`
	HTTPClient          *http.Client `toml:"-"`

	// Logger gets the outage lines (default slog.Default()); Now is the
	// clock of the refresh schedule (default time.Now).
	Logger *slog.Logger     `json:"-" toml:"-"`
	Now    func() time.Time `json:"-" toml:"-"`
}

var _ directory.Settings = (*Config)(nil)

// Secret is the client secret: sealed when stored.
func (c *Config) Secret() *string { return &c.ClientSecret }

// Build is Open for the directory registry: the source gets env's ID,
// callback, logger and clock.
func (c *Config) Build(env directory.Env) (directory.Source, error) {
	c.ID, c.RedirectURL = env.ID, env.CallbackURL
	c.Logger, c.Now = env.Logger, env.Now
	src, err := c.Open()
	if err != nil {
		return nil, err
	}
	return src, nil
}

// The schedule on which an upstream is looked at again. Discovery is what
// a sign-in needs first, so it doubles as the health check.
const (
	// checkEvery: a sign-in button press fetches the discovery document
	// again when the last successful fetch is older than this, so a dead
	// upstream is noticed at once while many presses cost at most one
	// request to it per interval.
	checkEvery = 5 * time.Second
	// checkTimeout bounds one discovery fetch: the person is waiting.
	checkTimeout = 5 * time.Second
	// exchangeTimeout bounds a code exchange with the ID token's check
	// (which may fetch the signing keys).
	exchangeTimeout = 10 * time.Second
	// keysMaxAge: the provider, and with it the cached signing keys, is
	// built anew at least this often (and whenever discovery changes).
	keysMaxAge = time.Hour
	// retryFirst and retryMax: after a failed discovery, presses get the
	// outage page without a request until the retry time, which starts
	// soon and backs off to retryMax while the upstream stays down. The cap
	// is short because a press that finds the upstream back is what ends
	// the outage page: nothing else looks in between.
	retryFirst = 5 * time.Second
	retryMax   = 30 * time.Second
)

// Where an outage was first seen: discovery (the button cannot send anyone
// there) or the code exchange (discovery answers, the token endpoint does
// not). An outage ends where it began: a working discovery says nothing
// about a token endpoint that failed.
const (
	stepDiscovery = "discovery"
	stepExchange  = "code exchange"
)

// Source is an upstream OIDC provider.
type Source struct {
	cfg Config
	log *slog.Logger
	now func() time.Time

	mu        sync.Mutex
	provider  *gooidc.Provider // nil until the first discovery succeeds
	builtAt   time.Time        // when provider was built
	checkedAt time.Time        // the last successful discovery
	checking  chan struct{}    // non-nil while a discovery runs; closed when it ends
	// Discovery fails: presses get lastErr without a request until retryAt.
	unreachable bool
	lastErr     error
	retryAt     time.Time
	backoff     time.Duration
	// recheck: an exchange failed, so the next press fetches discovery
	// whatever checkEvery says.
	recheck bool
	// The outage as logged: open from its WARN line to its INFO line.
	outage      bool
	outageSince time.Time
	outageStep  string
}

var _ directory.CallbackSource = (*Source)(nil)

// Open validates the configuration; discovery waits until the first
// sign-in, so an upstream that is down does not stop Keyport.
func (c Config) Open() (*Source, error) {
	var problems []directory.Problem
	bad := func(key, msg string) { problems = append(problems, directory.Problem{Key: key, Message: msg}) }
	if c.ID == "" {
		bad("id", "must be set")
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		bad("issuer", "must be an https:// URL (http:// only for localhost)")
	}
	if c.ClientID == "" {
		bad("client_id", "must be set")
	}
	if c.RedirectURL == "" {
		bad("", "redirect URL: must be set") // Keyport's, not a setting
	}
	if len(problems) > 0 {
		return nil, &directory.SettingsError{Type: "oidc", ID: c.ID, Problems: problems}
	}
	if c.Name == "" {
		c.Name = c.ID
	}
	if c.ButtonLabel == "" {
		c.ButtonLabel = "Sign in with " + c.Name
	}
	if len(c.Scopes) == 0 {
		c.Scopes = []string{gooidc.ScopeOpenID, "profile", "email"}
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.UsernameClaim, "preferred_username")
	def(&c.EmailClaim, "email")
	def(&c.GivenNameClaim, "given_name")
	def(&c.FamilyNameClaim, "family_name")
	def(&c.NameClaim, "name")
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	s := &Source{cfg: c, log: c.Logger, now: c.Now}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}

func (s *Source) ID() string          { return s.cfg.ID }
func (s *Source) Name() string        { return s.cfg.Name }
func (s *Source) ButtonLabel() string { return s.cfg.ButtonLabel }

// LinkByVerifiedEmail: an existing account with the same verified email may
// be linked on first sign-in.
func (s *Source) LinkByVerifiedEmail() bool { return s.cfg.LinkByVerifiedEmail }

// CreateUsers: first sign-ins may create accounts.
func (s *Source) CreateUsers() bool { return s.cfg.CreateUsers }

func (s *Source) Capabilities() directory.Capabilities {
	return directory.Capabilities{Provider: "oidc", OwnedFields: []string{"given_name", "family_name", "name", "email"}, Groups: s.cfg.GroupsClaim != "",
		SecondFactor: s.cfg.HandlesSecondFactor}
}

func (s *Source) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, s.cfg.HTTPClient)
}

// discover returns the provider for a new sign-in, fetching discovery
// again on the schedule above. One fetch runs at a time: presses that
// arrive meanwhile wait for its answer instead of sending their own, and
// while the upstream is down they get ErrUnavailable without a request
// until the retry time.
func (s *Source) discover(ctx context.Context) (*gooidc.Provider, error) {
	for {
		s.mu.Lock()
		now := s.now()
		switch {
		case s.unreachable && now.Before(s.retryAt):
			err := s.lastErr
			s.mu.Unlock()
			return nil, err
		case !s.unreachable && !s.recheck && s.provider != nil && now.Sub(s.checkedAt) < checkEvery:
			p := s.provider
			s.mu.Unlock()
			return p, nil
		case s.checking != nil:
			wait := s.checking
			s.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %v", directory.ErrUnavailable, ctx.Err())
			}
		}
		s.checking = make(chan struct{})
		s.mu.Unlock()
		return s.check(ctx)
	}
}

// check runs one discovery and records its outcome. The deferred part runs
// even when the fetch panics, so presses never wait for a check that ended.
func (s *Source) check(ctx context.Context) (p *gooidc.Provider, err error) {
	defer func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		close(s.checking)
		s.checking = nil
		switch {
		case err != nil:
			err = s.discoveryFailedLocked(err)
		case p != nil:
			s.discoveryWorkedLocked(p)
			p = s.provider
		}
	}()
	return s.fetch(ctx)
}

// fetch reads the discovery document once, within checkTimeout.
func (s *Source) fetch(ctx context.Context) (*gooidc.Provider, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), checkTimeout)
	defer cancel()
	return gooidc.NewProvider(s.ctx(ctx), s.cfg.Issuer)
}

// discoveryWorkedLocked records a successful discovery. The provider in use
// is kept (with the signing keys it has cached) unless discovery changed or
// it is older than keysMaxAge. It ends an outage that began at discovery.
func (s *Source) discoveryWorkedLocked(fresh *gooidc.Provider) {
	now := s.now()
	if s.provider == nil || now.Sub(s.builtAt) >= keysMaxAge || !sameDiscovery(s.provider, fresh) {
		s.provider, s.builtAt = fresh, now
	}
	s.checkedAt, s.recheck = now, false
	s.unreachable, s.lastErr, s.backoff = false, nil, 0
	if s.outageStep == stepDiscovery {
		s.endOutageLocked()
	}
}

// discoveryFailedLocked records a failed discovery and returns the error to
// report (wrapping directory.ErrUnavailable): presses get it without a
// request until the retry time, which backs off to retryMax.
func (s *Source) discoveryFailedLocked(cause error) error {
	now := s.now()
	err := fmt.Errorf("%w: %s: %v", directory.ErrUnavailable, s.cfg.Issuer, cause)
	if s.unreachable {
		s.backoff = min(2*s.backoff, retryMax)
	} else {
		s.unreachable, s.backoff = true, retryFirst
	}
	s.lastErr, s.retryAt = err, now.Add(s.backoff)
	s.beginOutageLocked(stepDiscovery, cause)
	return err
}

// exchangeFailed records a code exchange that got no answer, a server error
// or "too many requests". It does not close the sign-in button by itself
// (a token endpoint can fail while discovery answers); it has the next
// press check discovery at once, and opens an outage if none is open.
func (s *Source) exchangeFailed(cause error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.recheck = true
	s.beginOutageLocked(stepExchange, cause)
	return fmt.Errorf("%w: %s: %v", directory.ErrUnavailable, s.cfg.Issuer, cause)
}

// exchangeAnswered ends any outage: the token endpoint has just answered
// (with tokens, or with a refusal of this code).
func (s *Source) exchangeAnswered() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.endOutageLocked()
}

// beginOutageLocked logs the start of an outage once, at WARN; failures
// while it is open add nothing to the log.
func (s *Source) beginOutageLocked(step string, cause error) {
	if s.outage {
		return
	}
	s.outage, s.outageSince, s.outageStep = true, s.now(), step
	s.log.Warn("upstream OpenID provider cannot be reached; its sign-ins fail until it answers again",
		"directory", s.cfg.ID, "issuer", s.cfg.Issuer, "step", step, "err", cause)
}

// endOutageLocked logs the end of an open outage, at INFO.
func (s *Source) endOutageLocked() {
	if !s.outage {
		return
	}
	s.log.Info("upstream OpenID provider reachable again", "directory", s.cfg.ID, "issuer", s.cfg.Issuer,
		"down_for", s.now().Sub(s.outageSince).Round(time.Second).String())
	s.outage, s.outageStep = false, ""
}

// sameDiscovery tells whether two providers were discovered from the same
// document (endpoints, keys URL, algorithms).
func sameDiscovery(a, b *gooidc.Provider) bool {
	var ca, cb map[string]any
	if a.Claims(&ca) != nil || b.Claims(&cb) != nil {
		return false
	}
	ja, _ := json.Marshal(ca)
	jb, _ := json.Marshal(cb)
	return bytes.Equal(ja, jb)
}

// current is the provider of the last discovery, for finishing a sign-in
// that discover began (nil when there was none).
func (s *Source) current() *gooidc.Provider {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.provider
}

func (s *Source) oauth(p *gooidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: s.cfg.ClientID, ClientSecret: s.cfg.ClientSecret, Endpoint: p.Endpoint(), RedirectURL: s.cfg.RedirectURL, Scopes: s.cfg.Scopes}
}

// AuthURL is where the browser goes: state, nonce and a PKCE challenge
// (S256) bind the answer to this browser and this attempt.
func (s *Source) AuthURL(ctx context.Context, state, nonce, verifier string) (string, error) {
	p, err := s.discover(ctx)
	if err != nil {
		return "", err
	}
	return s.oauth(p).AuthCodeURL(state, gooidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier)), nil
}

// Exchange redeems the code and verifies the ID token: signature, issuer,
// audience, expiry and the nonce.
func (s *Source) Exchange(ctx context.Context, code, verifier, nonce string) (directory.Identity, error) {
	// The browser was sent here by this provider a moment ago: use it as it
	// was discovered, and let the exchange itself tell whether it is up.
	p := s.current()
	if p == nil {
		var err error
		if p, err = s.discover(ctx); err != nil {
			return directory.Identity{}, err
		}
	}
	// The exchange runs to the upstream's answer even when the browser goes
	// away meanwhile: a dropped connection says nothing about the upstream,
	// and taking its cancellation for an outage would let anyone who can
	// press the button and drop the callback close it for everyone.
	xctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), exchangeTimeout)
	defer cancel()
	tok, err := s.oauth(p).Exchange(s.ctx(xctx), code, oauth2.VerifierOption(verifier))
	var answer *oauth2.RetrieveError
	switch {
	case errors.As(err, &answer) && answer.Response != nil && answer.Response.StatusCode == http.StatusTooManyRequests:
		// "Try later": for the person, the same as an outage.
		return directory.Identity{}, fmt.Errorf("code exchange: %w", s.exchangeFailed(err))
	case errors.As(err, &answer) && answer.Response != nil && answer.Response.StatusCode < 500:
		// The upstream answered, and said no (a used or forged code, a wrong
		// PKCE verifier, a wrong client secret).
		s.exchangeAnswered()
		return directory.Identity{}, fmt.Errorf("%w: code exchange: %v", directory.ErrInvalidCredentials, err)
	case err != nil:
		// No answer, or a server error (a proxy in front of a dead
		// upstream answers 502): the upstream is down or unreachable.
		return directory.Identity{}, fmt.Errorf("code exchange: %w", s.exchangeFailed(err))
	}
	s.exchangeAnswered()
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return directory.Identity{}, fmt.Errorf("%w: no ID token in the token response", directory.ErrInvalidCredentials)
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: s.cfg.ClientID}).Verify(s.ctx(xctx), raw)
	if err != nil {
		return directory.Identity{}, fmt.Errorf("%w: ID token: %v", directory.ErrInvalidCredentials, err)
	}
	if idt.Nonce == "" || idt.Nonce != nonce {
		return directory.Identity{}, fmt.Errorf("%w: ID token nonce does not match", directory.ErrInvalidCredentials)
	}
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return directory.Identity{}, fmt.Errorf("%w: ID token claims: %v", directory.ErrInvalidCredentials, err)
	}
	str := func(k string) string { v, _ := claims[k].(string); return v }
	id := directory.Identity{
		ID: idt.Subject, Username: str(s.cfg.UsernameClaim), Email: str(s.cfg.EmailClaim),
		GivenName: str(s.cfg.GivenNameClaim), FamilyName: str(s.cfg.FamilyNameClaim), DisplayName: str(s.cfg.NameClaim),
	}
	id.EmailVerified, _ = claims["email_verified"].(bool)
	if amr, ok := claims["amr"].([]any); ok {
		for _, m := range amr {
			if m, ok := m.(string); ok {
				id.AMR = append(id.AMR, m)
			}
		}
	}
	if s.cfg.GroupsClaim != "" {
		if gs, ok := claims[s.cfg.GroupsClaim].([]any); ok {
			for _, g := range gs {
				if g, ok := g.(string); ok {
					id.Groups = append(id.Groups, g)
				}
			}
		}
	}
	if id.ID == "" {
		return directory.Identity{}, errors.New("ID token without subject")
	}
	return id, nil
}
