// Package oidc is a directory source on an upstream OpenID Connect provider:
// the browser signs in there and comes back with a code (authorization code
// flow with PKCE, state and nonce); the ID token is verified fully.
package oidc

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/keyport/keyport/directory"
)

// Config describes one upstream provider.
type Config struct {
	ID, Name     string
	Issuer       string
	ClientID     string
	ClientSecret string
	Scopes       []string // default openid profile email
	// RedirectURL is Keyport's callback, registered at the upstream.
	RedirectURL string
	// Claim names; empty values use the standard claims.
	UsernameClaim, EmailClaim, GivenNameClaim, FamilyNameClaim, NameClaim, GroupsClaim string
	ButtonLabel                                                                        string
	LinkByVerifiedEmail                                                                bool
	CreateUsers                                                                        bool
	HTTPClient                                                                         *http.Client
}

// Source is an upstream OIDC provider.
type Source struct {
	cfg      Config
	mu       sync.Mutex
	provider *gooidc.Provider // discovered on first use
}

var _ directory.CallbackSource = (*Source)(nil)

// Open validates the configuration; discovery waits until the first
// sign-in, so an upstream that is down does not stop Keyport.
func (c Config) Open() (*Source, error) {
	var problems []string
	if c.ID == "" {
		problems = append(problems, "id: must be set")
	}
	if u, err := url.Parse(c.Issuer); err != nil || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname()))) {
		problems = append(problems, "issuer: must be an https:// URL (http:// only for localhost)")
	}
	if c.ClientID == "" {
		problems = append(problems, "client_id: must be set")
	}
	if c.RedirectURL == "" {
		problems = append(problems, "redirect URL: must be set")
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("oidc source %q: %s", c.ID, strings.Join(problems, "; "))
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
	return &Source{cfg: c}, nil
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
	return directory.Capabilities{Provider: "oidc", OwnedFields: []string{"given_name", "family_name", "name", "email"}, Groups: s.cfg.GroupsClaim != ""}
}

func (s *Source) ctx(ctx context.Context) context.Context {
	return gooidc.ClientContext(ctx, s.cfg.HTTPClient)
}

func (s *Source) discover(ctx context.Context) (*gooidc.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.provider != nil {
		return s.provider, nil
	}
	p, err := gooidc.NewProvider(s.ctx(ctx), s.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%w: discovery at %s: %v", directory.ErrUnavailable, s.cfg.Issuer, err)
	}
	s.provider = p
	return p, nil
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
	p, err := s.discover(ctx)
	if err != nil {
		return directory.Identity{}, err
	}
	tok, err := s.oauth(p).Exchange(s.ctx(ctx), code, oauth2.VerifierOption(verifier))
	if err != nil {
		return directory.Identity{}, fmt.Errorf("%w: code exchange: %v", directory.ErrInvalidCredentials, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return directory.Identity{}, fmt.Errorf("%w: no ID token in the token response", directory.ErrInvalidCredentials)
	}
	idt, err := p.Verifier(&gooidc.Config{ClientID: s.cfg.ClientID}).Verify(s.ctx(ctx), raw)
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
