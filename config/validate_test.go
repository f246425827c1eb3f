package config

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/directory/sources"
)

// validConfig is a configuration without errors or warnings, for tests to
// break one piece at a time.
func validConfig() *Config {
	return &Config{
		Issuer:   "https://id.example.com",
		Listen:   ":8080",
		DataDir:  "/var/lib/keyport",
		LogLevel: "info",
		// ClientIPHeader has no zero value that is valid.
		ClientIPHeader: "X-Forwarded-For",
		Session: Session{
			CookieName:   "keyport_session",
			Lifetime:     Duration{720 * time.Hour},
			SecureCookie: "auto",
			SameSite:     "lax",
		},
		Tokens: Tokens{
			Code:        Duration{time.Minute},
			Access:      Duration{15 * time.Minute},
			ID:          Duration{time.Hour},
			Refresh:     Duration{720 * time.Hour},
			RefreshIdle: Duration{168 * time.Hour},
			AuthRequest: Duration{30 * time.Minute},

			RefreshReuseGrace: Duration{5 * time.Second},
		},
		Keys:     Keys{RotationPeriod: Duration{720 * time.Hour}, Algorithm: "RS256"},
		Storage:  Storage{Type: StorageBolt, MaxConns: 10},
		Password: Password{MemoryKiB: 7168, Iterations: 5, Parallelism: 1, MinLength: 10},
		Limits: Limits{MaxBodyBytes: 65536, MaxLoginAttempts: 10, LoginWindow: Duration{15 * time.Minute},
			MaxPendingSignIns: 5000, MaxPendingSignInsPerAddress: 100, MaxDeviceAuthorizationsPerAddress: 20},
		Accounts: Accounts{TrustedDeviceLifetime: Duration{720 * time.Hour}, RecentAuth: Duration{5 * time.Minute}},
		Audit:    Audit{Retention: Duration{2160 * time.Hour}},
		HTTP:     HTTP{ShutdownTimeout: Duration{20 * time.Second}},
		OAuth: OAuth{DeviceCodeLifetime: Duration{10 * time.Minute}, DevicePollInterval: Duration{5 * time.Second},
			PushedAuthorizationRequests: true, RequestObjects: true, DPoP: true, TokenExchange: true, PairwiseSubjects: true},
		Clients: []Client{
			{
				ID:           "wiki",
				Name:         "Wiki",
				Secret:       "0123456789abcdef",
				RedirectURIs: []string{"https://wiki.example.com/cb"},
				GrantTypes:   []string{"authorization_code", "refresh_token"},
			},
			{
				ID:           "spa",
				Name:         "SPA",
				Public:       true,
				RedirectURIs: []string{"https://spa.example.com/cb"},
				GrantTypes:   []string{"authorization_code", "refresh_token"},
			},
		},
	}
}

// withMail turns mail on with valid settings.
func withMail(c *Config) {
	c.Mail = Mail{Host: "smtp.example.com", Port: 587, TLS: MailTLSStartTLS, From: "Keyport <id@example.com>",
		Username: "keyport", Password: "smtp-secret", Timeout: Duration{10 * time.Second}}
}

func TestValidConfig(t *testing.T) {
	warnings, err := validConfig().Validate()
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(warnings) != 0 {
		t.Fatalf("warnings: %q", warnings)
	}
}

// Each signing algorithm Keyport can make keys for is a valid
// [keys] algorithm.
func TestValidKeyAlgorithms(t *testing.T) {
	for _, alg := range []string{"RS256", "ES256", "EdDSA"} {
		c := validConfig()
		c.Keys.Algorithm = alg
		if _, err := c.Validate(); err != nil {
			t.Errorf("keys.algorithm %q: %v", alg, err)
		}
	}
}

func TestValidateErrors(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   string // the error must contain this; it starts with the key
	}{
		{"empty issuer", func(c *Config) { c.Issuer = "" }, "issuer: must be set"},
		{"http issuer elsewhere", func(c *Config) { c.Issuer = "http://id.example.com" },
			"issuer: must be an absolute https:// URL (http:// is allowed only for localhost, 127.0.0.1 and ::1)"},
		{"relative issuer", func(c *Config) { c.Issuer = "id.example.com" }, "issuer: must be an absolute https:// URL"},
		{"ftp issuer", func(c *Config) { c.Issuer = "ftp://id.example.com" }, "issuer: must be an absolute https:// URL"},
		{"issuer with query", func(c *Config) { c.Issuer = "https://id.example.com/?x=1" }, "issuer: must not have a query or fragment"},
		{"issuer with fragment", func(c *Config) { c.Issuer = "https://id.example.com/#x" }, "issuer: must not have a query or fragment"},
		{"issuer with user", func(c *Config) { c.Issuer = "https://me@id.example.com" }, "issuer: must not contain a user name"},
		{"empty listen", func(c *Config) { c.Listen = "" }, "listen: must be set"},
		{"listen without port", func(c *Config) { c.Listen = "localhost" }, "listen: must be host:port"},
		{"listen bad port", func(c *Config) { c.Listen = "localhost:http" }, "listen: must be host:port"},
		{"listen port too big", func(c *Config) { c.Listen = ":70000" }, "listen: must be host:port"},
		{"empty data_dir", func(c *Config) { c.DataDir = "" }, "data_dir: must be set"},
		{"log_level", func(c *Config) { c.LogLevel = "verbose" }, `log_level: must be one of "debug", "info", "warn", "error"`},
		{"log_format", func(c *Config) { c.LogFormat = "logfmt" }, `log_format: must be one of "text", "json", not "logfmt"`},
		{"metrics.listen without port", func(c *Config) { c.Metrics.Listen = "127.0.0.1" }, "metrics.listen: must be host:port"},
		{"profiling without a metrics listener", func(c *Config) { c.Metrics.Profiling = true }, "metrics.profiling: needs metrics.listen"},
		{"metrics.listen on the public listener", func(c *Config) { c.Metrics.Listen = c.Listen }, "metrics.listen: must differ from listen"},
		{"trusted_proxies", func(c *Config) { c.TrustedProxies = []string{"10.0.0.0/8", "proxy.example.com"} }, `trusted_proxies[1]: "proxy.example.com" is not an IP address or CIDR range`},
		{"client_ip_header", func(c *Config) { c.ClientIPHeader = "X-Real-IP" }, `client_ip_header: must be "X-Forwarded-For" or "Forwarded", not "X-Real-IP"`},

		{"cookie_name empty", func(c *Config) { c.Session.CookieName = "" }, "session.cookie_name: must be set"},
		{"cookie_name bad", func(c *Config) { c.Session.CookieName = "my session" }, "session.cookie_name: may contain only"},
		{"__Host- cookie without Secure", func(c *Config) { c.Session.CookieName = "__Host-kp"; c.Session.SecureCookie = "false" },
			"session.cookie_name: a name starting with __Host-"},
		{"session lifetime", func(c *Config) { c.Session.Lifetime = Duration{} }, "session.lifetime: must be positive"},
		{"secure_cookie", func(c *Config) { c.Session.SecureCookie = "yes" }, `session.secure_cookie: must be "auto", "true" or "false"`},
		{"same_site none", func(c *Config) { c.Session.SameSite = "none" }, `session.same_site: must be "lax" or "strict"`},

		{"tokens.code", func(c *Config) { c.Tokens.Code = Duration{} }, "tokens.code: must be positive"},
		{"tokens.access", func(c *Config) { c.Tokens.Access = Duration{-time.Minute} }, "tokens.access: must be positive"},
		{"tokens.id", func(c *Config) { c.Tokens.ID = Duration{} }, "tokens.id: must be positive"},
		{"tokens.refresh", func(c *Config) { c.Tokens.Refresh = Duration{} }, "tokens.refresh: must be positive"},
		{"tokens.refresh_idle", func(c *Config) { c.Tokens.RefreshIdle = Duration{} }, "tokens.refresh_idle: must be positive"},
		{"tokens.auth_request", func(c *Config) { c.Tokens.AuthRequest = Duration{} }, "tokens.auth_request: must be positive"},

		{"rotation negative", func(c *Config) { c.Keys.RotationPeriod = Duration{-time.Hour} }, "keys.rotation_period: must be 0"},
		{"rotation tiny", func(c *Config) { c.Keys.RotationPeriod = Duration{time.Second} }, "keys.rotation_period: must be 0"},
		{"algorithm", func(c *Config) { c.Keys.Algorithm = "HS256" }, `keys.algorithm: must be "RS256", "ES256" or "EdDSA", not "HS256"`},
		{"algorithm case", func(c *Config) { c.Keys.Algorithm = "eddsa" }, `keys.algorithm: must be "RS256", "ES256" or "EdDSA", not "eddsa"`},
		{"check_timeout zero", func(c *Config) { c.Database.Check = true }, "database.check_timeout: must be between 1s and 24h, not 0s"},
		{"check_timeout huge", func(c *Config) { c.Database = Database{Check: true, CheckTimeout: Duration{48 * time.Hour}} }, "database.check_timeout: must be between 1s and 24h"},

		{"memory too small", func(c *Config) { c.Password.MemoryKiB = 4096 }, "password.memory_kib: must be at least 7168 (OWASP minimum)"},
		{"memory too big", func(c *Config) { c.Password.MemoryKiB = 4 << 20 }, "password.memory_kib: must be at most"},
		{"iterations zero", func(c *Config) { c.Password.Iterations = 0 }, "password.iterations: must be between 1 and 64"},
		{"iterations too many", func(c *Config) { c.Password.Iterations = 1000 }, "password.iterations: must be between 1 and 64"},
		{"below OWASP product", func(c *Config) { c.Password.MemoryKiB = 19456; c.Password.Iterations = 1 }, "password.iterations: must be at least 2 with memory_kib = 19456"},
		{"parallelism zero", func(c *Config) { c.Password.Parallelism = 0 }, "password.parallelism: must be between 1 and 64"},
		{"min_length short", func(c *Config) { c.Password.MinLength = 4 }, "password.min_length: must be between 8 and 128"},
		{"min_score negative", func(c *Config) { c.Password.MinScore = -1 }, "password.min_score: must be between 0 and 4, not -1"},
		{"min_score above zxcvbn's scale", func(c *Config) { c.Password.MinScore = 5 }, "password.min_score: must be between 0 and 4, not 5"},

		{"max_body_bytes small", func(c *Config) { c.Limits.MaxBodyBytes = 10 }, "limits.max_body_bytes: must be between"},
		{"max_body_bytes big", func(c *Config) { c.Limits.MaxBodyBytes = 1 << 30 }, "limits.max_body_bytes: must be between"},
		{"max_login_attempts", func(c *Config) { c.Limits.MaxLoginAttempts = 0 }, "limits.max_login_attempts: must be between 1 and 1000"},
		{"login_window", func(c *Config) { c.Limits.LoginWindow = Duration{} }, "limits.login_window: must be positive"},
		{"refresh_reuse_grace negative", func(c *Config) { c.Tokens.RefreshReuseGrace = Duration{-time.Second} },
			"tokens.refresh_reuse_grace: must be between 0s (off) and 1m0s, not -1s"},
		{"refresh_reuse_grace long", func(c *Config) { c.Tokens.RefreshReuseGrace = Duration{2 * time.Minute} },
			"tokens.refresh_reuse_grace: must be between 0s (off) and 1m0s, not 2m0s"},
		{"max_pending_sign_ins small", func(c *Config) { c.Limits.MaxPendingSignIns = 9 }, "limits.max_pending_sign_ins: must be between 10 and 1000000, not 9"},
		{"max_pending_sign_ins big", func(c *Config) { c.Limits.MaxPendingSignIns = 1_000_001 }, "limits.max_pending_sign_ins: must be between 10 and 1000000"},
		{"max_pending_sign_ins_per_address zero", func(c *Config) { c.Limits.MaxPendingSignInsPerAddress = 0 },
			"limits.max_pending_sign_ins_per_address: must be between 1 and 1000000, not 0"},
		{"max_pending_sign_ins_per_address above the total", func(c *Config) { c.Limits.MaxPendingSignIns, c.Limits.MaxPendingSignInsPerAddress = 50, 51 },
			"limits.max_pending_sign_ins_per_address: must not be more than limits.max_pending_sign_ins (50), not 51"},
		{"max_device_authorizations_per_address zero", func(c *Config) { c.Limits.MaxDeviceAuthorizationsPerAddress = 0 },
			"limits.max_device_authorizations_per_address: must be between 1 and 10000, not 0"},
		{"max_device_authorizations_per_address above the store's bound", func(c *Config) { c.Limits.MaxDeviceAuthorizationsPerAddress = 10001 },
			"limits.max_device_authorizations_per_address: must be between 1 and 10000, not 10001"},
		{"max_login_attempts_per_address", func(c *Config) { c.Limits.MaxLoginAttemptsPerAddress = -1 }, "limits.max_login_attempts_per_address: must be between 0 and 1000"},
		{"account_lockout_failures", func(c *Config) { c.Limits.AccountLockoutFailures = 1001 }, "limits.account_lockout_failures: must be between 0 and 1000"},
		{"account_lockout_wait", func(c *Config) {
			c.Limits.AccountLockoutFailures, c.Limits.AccountLockoutReset = 30, Duration{time.Hour}
		}, "limits.account_lockout_wait: must be positive"},
		{"account_lockout_max_wait", func(c *Config) {
			c.Limits.AccountLockoutFailures, c.Limits.AccountLockoutWait, c.Limits.AccountLockoutMaxWait, c.Limits.AccountLockoutReset = 30, Duration{time.Hour}, Duration{time.Minute}, Duration{time.Hour}
		}, "limits.account_lockout_max_wait: must be at least account_lockout_wait (1h0m0s), not 1m0s"},
		{"account_lockout_reset", func(c *Config) {
			c.Limits.AccountLockoutFailures, c.Limits.AccountLockoutWait, c.Limits.AccountLockoutMaxWait = 30, Duration{time.Minute}, Duration{time.Hour}
		}, "limits.account_lockout_reset: must be positive"},
		{"password_hash_concurrency", func(c *Config) { c.Limits.PasswordHashConcurrency = -1 }, "limits.password_hash_concurrency: must be between 0 and 256"},
		{"password_hash_queue", func(c *Config) { c.Limits.PasswordHashQueue = 20000 }, "limits.password_hash_queue: must be between 0 and 10000"},
		{"directory type", func(c *Config) {
			c.Directories = []Directory{{ID: "d", Type: "ad", URL: "ldap://x", UserBaseDN: "dc=x"}}
		}, "directories[0].type: must be \"ldap\" or \"oidc\""},
		{"directory url", func(c *Config) {
			c.Directories = []Directory{{ID: "d", Type: "ldap", URL: "http://x", UserBaseDN: "dc=x"}}
		}, "directories[0].url: must start with ldap://"},
		{"directory base", func(c *Config) { c.Directories = []Directory{{ID: "d", Type: "ldap", URL: "ldap://x"}} }, "directories[0].user_base_dn: must be set"},
		{"directory bind password", func(c *Config) {
			c.Directories = []Directory{{ID: "d", Type: "ldap", URL: "ldap://x", UserBaseDN: "dc=x", BindDN: "cn=k"}}
		}, "directories[0].bind_password: must be set"},
		{"directory duplicate", func(c *Config) {
			c.Directories = []Directory{{ID: "d", Type: "ldap", URL: "ldap://x", UserBaseDN: "dc=x"}, {ID: "d", Type: "ldap", URL: "ldap://y", UserBaseDN: "dc=y"}}
		}, "directories[1].id: duplicate"},
		{"recent_auth short", func(c *Config) { c.Accounts.RecentAuth = Duration{time.Second} }, "accounts.recent_auth: must be between 1m and 1h"},
		{"trusted devices forever", func(c *Config) { c.Accounts.TrustedDeviceLifetime = Duration{24 * 500 * time.Hour} }, "accounts.trusted_device_lifetime: must be between"},
		{"audit retention zero", func(c *Config) { c.Audit.Retention = Duration{} }, "audit.retention: must be more than 0"},
		{"audit retention negative", func(c *Config) { c.Audit.Retention = Duration{-time.Hour} }, "audit.retention: must be more than 0"},
		{"hsts negative", func(c *Config) { c.HTTP.HSTSMaxAge = Duration{-time.Hour} }, "http.hsts_max_age: must be 0 (off) or between 1s and 17520h"},
		{"hsts under a second", func(c *Config) { c.HTTP.HSTSMaxAge = Duration{time.Millisecond} }, "http.hsts_max_age: must be 0 (off) or between 1s"},
		{"shutdown timeout zero", func(c *Config) { c.HTTP.ShutdownTimeout = Duration{0} }, "http.shutdown_timeout: must be between 1s and 10m, not 0s"},
		{"shutdown timeout beyond ten minutes", func(c *Config) { c.HTTP.ShutdownTimeout = Duration{time.Hour} }, "http.shutdown_timeout: must be between 1s and 10m, not 1h0m0s"},
		{"hsts beyond two years", func(c *Config) { c.HTTP.HSTSMaxAge = Duration{3 * 8760 * time.Hour} }, "http.hsts_max_age: must be 0 (off) or between"},

		{"client id empty", func(c *Config) { c.Clients[0].ID = "" }, "clients[0].id: must be set"},
		{"client signing alg", func(c *Config) { c.Clients[1].IDTokenSignedResponseAlg = "HS256" },
			`clients[1].id_token_signed_response_alg: must be "RS256", "ES256", "EdDSA" or empty ([keys] algorithm), not "HS256"`},
		{"client signing alg none", func(c *Config) { c.Clients[0].IDTokenSignedResponseAlg = "none" }, `clients[0].id_token_signed_response_alg: must be`},
		{"client userinfo alg", func(c *Config) { c.Clients[0].UserinfoSignedResponseAlg = "HS256" },
			`clients[0].userinfo_signed_response_alg: must be "RS256", "ES256", "EdDSA" or empty (plain JSON), not "HS256"`},
		{"signed request objects without keys", func(c *Config) { c.Clients[0].RequireSignedRequestObject = true },
			`clients[0].require_signed_request_object: needs the app's keys: jwks or jwks_uri`},
		{"client id chars", func(c *Config) { c.Clients[1].ID = "my app" }, "clients[1].id: may contain only"},
		{"client id slash", func(c *Config) { c.Clients[1].ID = "a/b" }, "clients[1].id: may contain only"},
		{"client id long", func(c *Config) { c.Clients[0].ID = strings.Repeat("a", 129) }, "clients[0].id: must be at most 128"},
		{"client id duplicate", func(c *Config) { c.Clients[1].ID = "wiki" }, `clients[1].id: duplicate: "wiki" is also the id of clients[0]`},
		{"confidential without secret", func(c *Config) { c.Clients[0].Secret = "" }, "clients[0].secret: must be set"},
		{"short secret", func(c *Config) { c.Clients[0].Secret = "short" }, "clients[0].secret: must be at least 16 characters"},
		{"public with secret", func(c *Config) { c.Clients[1].Secret = "0123456789abcdef" }, "clients[1].secret: must not be set for a public client"},
		{"public with secret_file", func(c *Config) { c.Clients[1].SecretFile = "/run/secret" }, "clients[1].secret: must not be set for a public client"},
		{"public client_credentials", func(c *Config) { c.Clients[1].GrantTypes = []string{"authorization_code", "client_credentials"} },
			`clients[1].grant_types: a public client may not use "client_credentials"`},
		{"unknown grant", func(c *Config) { c.Clients[0].GrantTypes = []string{"authorization_code", "password"} },
			`clients[0].grant_types[1]: unknown grant type "password"`},
		{"implicit grant", func(c *Config) { c.Clients[0].GrantTypes = []string{"implicit"} }, `clients[0].grant_types[0]: unknown grant type "implicit"`},
		{"duplicate grant", func(c *Config) { c.Clients[0].GrantTypes = []string{"authorization_code", "authorization_code"} },
			`clients[0].grant_types[1]: duplicate "authorization_code"`},
		{"no grants", func(c *Config) { c.Clients[0].GrantTypes = nil }, "clients[0].grant_types: must list at least one"},
		{"refresh alone", func(c *Config) { c.Clients[0].GrantTypes = []string{"refresh_token"} }, `clients[0].grant_types: "refresh_token" needs "authorization_code" or "urn:ietf:params:oauth:grant-type:device_code"`},
		{"device code without the device flow", func(c *Config) {
			c.Clients[0].GrantTypes = []string{"urn:ietf:params:oauth:grant-type:device_code", "refresh_token"}
		}, `clients[0].grant_types: "urn:ietf:params:oauth:grant-type:device_code" needs oauth.device_flow = true`},
		{"require PAR with PAR off", func(c *Config) {
			c.OAuth.RequirePushedAuthorizationRequests, c.OAuth.PushedAuthorizationRequests = true, false
		}, "oauth.require_pushed_authorization_requests: needs oauth.pushed_authorization_requests = true"},
		{"app requires PAR with PAR off", func(c *Config) {
			c.Clients[0].RequirePushedAuthorizationRequests, c.OAuth.PushedAuthorizationRequests = true, false
		}, "clients[0].require_pushed_authorization_requests: needs oauth.pushed_authorization_requests = true"},
		{"app requires request objects with them off", func(c *Config) {
			c.Clients[0].RequireSignedRequestObject, c.Clients[0].TokenEndpointAuthMethod, c.OAuth.RequestObjects = true, "client_secret_jwt", false
		}, "clients[0].require_signed_request_object: needs oauth.request_objects = true"},
		{"app requires DPoP with DPoP off", func(c *Config) { c.Clients[1].DPoPBoundAccessTokens, c.OAuth.DPoP = true, false },
			"clients[1].dpop_bound_access_tokens: needs oauth.dpop = true"},
		{"app requires DPoP nonces with DPoP off", func(c *Config) { c.Clients[1].RequireDPoPNonce, c.OAuth.DPoP = true, false },
			"clients[1].require_dpop_nonce: needs oauth.dpop = true"},
		{"pairwise app with pairwise subjects off", func(c *Config) { c.Clients[1].SubjectType, c.OAuth.PairwiseSubjects = "pairwise", false },
			`clients[1].subject_type: "pairwise" needs oauth.pairwise_subjects = true`},
		{"token exchange with it off", func(c *Config) {
			c.Clients[0].GrantTypes, c.OAuth.TokenExchange = []string{"client_credentials", GrantTokenExchange}, false
		}, `clients[0].grant_types: "urn:ietf:params:oauth:grant-type:token-exchange" needs oauth.token_exchange = true`},
		{"device_code_lifetime short", func(c *Config) { c.OAuth.DeviceCodeLifetime = Duration{30 * time.Second} }, "oauth.device_code_lifetime: must be between 1m0s and 1h0m0s, not 30s"},
		{"device_code_lifetime long", func(c *Config) { c.OAuth.DeviceCodeLifetime = Duration{2 * time.Hour} }, "oauth.device_code_lifetime: must be between 1m0s and 1h0m0s"},
		{"device_poll_interval zero", func(c *Config) { c.OAuth.DevicePollInterval = Duration{} }, "oauth.device_poll_interval: must be whole seconds between 1s and 1m0s, not 0s"},
		{"device_poll_interval fraction", func(c *Config) { c.OAuth.DevicePollInterval = Duration{1500 * time.Millisecond} }, "oauth.device_poll_interval: must be whole seconds"},
		{"code without redirect", func(c *Config) { c.Clients[0].RedirectURIs = nil }, "clients[0].redirect_uris: must list at least one URI"},
		{"relative redirect", func(c *Config) { c.Clients[1].RedirectURIs = []string{"https://ok.example.com/cb", "/cb"} },
			"clients[1].redirect_uris[1]: must be an absolute URL"},
		{"redirect with fragment", func(c *Config) { c.Clients[1].RedirectURIs = []string{"https://spa.example.com/cb#x"} },
			"clients[1].redirect_uris[0]: must not contain a fragment"},
		{"redirect empty", func(c *Config) { c.Clients[0].RedirectURIs = []string{""} }, "clients[0].redirect_uris[0]: must not be empty"},
		{"redirect unparsable", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://exa mple.com/%zz"} }, "clients[0].redirect_uris[0]: not a valid URL"},
		{"redirect without host", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https:///cb"} }, "clients[0].redirect_uris[0]: must have a host"},
		{"redirect wildcard", func(c *Config) { c.Clients[0].RedirectURIs = []string{"https://*.example.com/cb"} }, "clients[0].redirect_uris[0]: wildcards are not supported"},
		{"redirect javascript", func(c *Config) { c.Clients[0].RedirectURIs = []string{"javascript:alert(1)"} }, "clients[0].redirect_uris[0]: the javascript: scheme is not allowed"},
		{"post logout relative", func(c *Config) { c.Clients[0].PostLogoutRedirectURIs = []string{"https://wiki.example.com/", "bye"} },
			"clients[0].post_logout_redirect_uris[1]: must be an absolute URL"},

		{"webhook network", func(c *Config) { c.Webhooks.AllowNetworks = []string{"127.0.0.0/8", "localhost"} }, `webhooks.allow_networks[1]: "localhost" is not a CIDR`},
		{"webhook failures", func(c *Config) { c.Webhooks.MaxFailures = -1 }, "webhooks.max_failures: must be from 1 to 1000"},
		{"jwks network", func(c *Config) { c.ClientAuth.JWKSAllowNetworks = []string{"10.0.0.0/8", "intranet"} }, `client_auth.jwks_allow_networks[1]: "intranet" is not a CIDR`},
		{"auth method unknown", func(c *Config) { c.Clients[0].TokenEndpointAuthMethod = "tls_client_auth" }, `clients[0].token_endpoint_auth_method: unknown method "tls_client_auth"`},
		{"auth method none confidential", func(c *Config) { c.Clients[0].TokenEndpointAuthMethod = "none" }, `clients[0].token_endpoint_auth_method: "none" is for public clients`},
		{"private_key_jwt without keys", func(c *Config) { c.Clients[0].TokenEndpointAuthMethod = "private_key_jwt" }, "clients[0].jwks: private_key_jwt needs the app's public keys"},
		{"jwks and jwks_uri", func(c *Config) {
			c.Clients[0].JWKS, c.Clients[0].JWKSURI = `{"keys":[]}`, "https://wiki.example.com/jwks"
		}, "clients[0].jwks: set either jwks or jwks_uri, not both"},
		{"jwks not json", func(c *Config) { c.Clients[0].JWKS = "{keys" }, "clients[0].jwks: must be a JWK Set in JSON"},
		{"jwks_uri relative", func(c *Config) { c.Clients[0].JWKSURI = "/jwks" }, "clients[0].jwks_uri: must be an absolute https URL"},
		{"mail without from", func(c *Config) { withMail(c); c.Mail.From = "" }, "mail.from: must be set when mail.host is"},
		{"mail from two addresses", func(c *Config) { withMail(c); c.Mail.From = "a@example.com, b@example.com" }, "mail.from: must be one RFC 5322 address"},
		{"mail from not an address", func(c *Config) { withMail(c); c.Mail.From = "Keyport" }, "mail.from: must be one RFC 5322 address"},
		{"mail host with scheme", func(c *Config) { withMail(c); c.Mail.Host = "smtp://smtp.example.com" }, "mail.host: must be a host name or IP address"},
		{"mail host with port", func(c *Config) { withMail(c); c.Mail.Host = "smtp.example.com:587" }, "mail.host: must be a host name or IP address"},
		{"mail unix socket", func(c *Config) { withMail(c); c.Mail.Host = "unix:///run/smtp.sock" }, "mail.host: must be a host name or IP address"},
		{"mail port", func(c *Config) { withMail(c); c.Mail.Port = 70000 }, "mail.port: must be between 1 and 65535, not 70000"},
		{"mail tls unknown", func(c *Config) { withMail(c); c.Mail.TLS = "ssl" }, `mail.tls: must be "starttls", "implicit" or "none", not "ssl"`},
		{"mail tls none remote", func(c *Config) { withMail(c); c.Mail.TLS = "none" }, `mail.tls: "none" is allowed only for a loopback host`},
		{"mail tls none private address", func(c *Config) { withMail(c); c.Mail.TLS, c.Mail.Host = "none", "10.0.0.25" }, `mail.tls: "none" is allowed only for a loopback host`},
		{"mail tls none localhost lookalike", func(c *Config) { withMail(c); c.Mail.TLS, c.Mail.Host = "none", "localhost.example.com" }, `mail.tls: "none" is allowed only for a loopback host`},
		{"mail username without password", func(c *Config) { withMail(c); c.Mail.Password = "" }, "mail.password: must be set (or mail.password_file) when mail.username is"},
		{"mail password without username", func(c *Config) { withMail(c); c.Mail.Username = "" }, "mail.username: must be set when mail.password"},
		{"mail helo", func(c *Config) { withMail(c); c.Mail.HELO = "id example" }, `mail.helo: must be a host name, not "id example"`},
		{"mail timeout zero", func(c *Config) { withMail(c); c.Mail.Timeout = Duration{} }, "mail.timeout: must be between 1s and 5m, not 0s"},
		{"mail timeout long", func(c *Config) { withMail(c); c.Mail.Timeout = Duration{time.Hour} }, "mail.timeout: must be between 1s and 5m, not 1h0m0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.modify(c)
			_, err := c.Validate()
			if err == nil {
				t.Fatalf("Validate succeeded, want an error containing %q", tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error:\n%v\ndoes not contain %q", err, tt.want)
			}
			// Every line of the joined error starts with a key path.
			for _, line := range strings.Split(err.Error(), "\n") {
				key, _, ok := strings.Cut(line, ": ")
				if !ok || strings.ContainsAny(key, " \"") {
					t.Errorf("error line %q does not start with a key path", line)
				}
			}
		})
	}
}

func TestValidateReportsEverything(t *testing.T) {
	c := validConfig()
	c.Tokens.Access = Duration{}
	c.Session.SameSite = "none"
	c.Password.MemoryKiB = 1024
	c.Clients[1].RedirectURIs = []string{"/relative"}
	_, err := c.Validate()
	if err == nil {
		t.Fatal("Validate succeeded")
	}
	for _, key := range []string{"tokens.access:", "session.same_site:", "password.memory_kib:", "clients[1].redirect_uris[0]:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error:\n%v\ndoes not mention %s", err, key)
		}
	}
	if n := len(strings.Split(err.Error(), "\n")); n != 4 {
		t.Errorf("got %d problems, want 4:\n%v", n, err)
	}
}

func TestLoadReportsEverything(t *testing.T) {
	path := writeFile(t, "keyport.toml", `
issuer = "http://id.example.com"
[tokens]
access = "0s"
`)
	_, _, err := Load(path, nil)
	if err == nil {
		t.Fatal("Load succeeded")
	}
	for _, key := range []string{"issuer:", "tokens.access:"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error:\n%v\ndoes not mention %s", err, key)
		}
	}
}

func TestValidateWarnings(t *testing.T) {
	tests := []struct {
		name   string
		modify func(c *Config)
		want   []string // prefixes, in order
	}{
		{"http localhost issuer", func(c *Config) { c.Issuer = "http://localhost:8080" }, []string{"issuer: uses http://"}},
		{"http 127.0.0.1 issuer", func(c *Config) { c.Issuer = "http://127.0.0.1:8080/sso" }, []string{"issuer: uses http://"}},
		{"http ::1 issuer", func(c *Config) { c.Issuer = "http://[::1]:8080" }, []string{"issuer: uses http://"}},
		{"insecure cookie with https", func(c *Config) { c.Session.SecureCookie = "false" }, []string{"session.secure_cookie: false with an https:// issuer"}},
		{"refresh_idle beyond refresh", func(c *Config) { c.Tokens.RefreshIdle = Duration{1000 * time.Hour} }, []string{"tokens.refresh_idle: "}},
		{"long code", func(c *Config) { c.Tokens.Code = Duration{time.Hour} }, []string{"tokens.code: "}},
		{"http redirect elsewhere", func(c *Config) { c.Clients[0].RedirectURIs = []string{"http://wiki.example.com/cb"} },
			[]string{"clients[0].redirect_uris[0]: uses http://"}},
		{"http redirect loopback", func(c *Config) {
			c.Clients[1].RedirectURIs = []string{"http://localhost:5173/cb", "http://127.0.0.1/cb", "http://[::1]/cb", "com.example.app:/cb"}
		}, nil},
		{"rotation disabled", func(c *Config) { c.Keys.RotationPeriod = Duration{} }, nil},
		{"every peer trusted", func(c *Config) { c.TrustedProxies = []string{"10.0.0.1", "0.0.0.0/0"} }, []string{"trusted_proxies[1]: 0.0.0.0/0 trusts every peer"}},
		{"metrics on loopback", func(c *Config) { c.Metrics.Listen = "127.0.0.1:9090" }, nil},
		{"metrics on every address", func(c *Config) { c.Metrics.Listen = ":9090" }, []string{"metrics.listen: :9090 is reachable from other machines"}},
		{"profiles on every address", func(c *Config) { c.Metrics.Listen, c.Metrics.Profiling = ":9090", true }, []string{"metrics.listen: :9090 is reachable from other machines", "metrics.profiling: serves Go's profiles, unauthenticated"}},
		{"profiles on loopback", func(c *Config) { c.Metrics.Listen, c.Metrics.Profiling = "127.0.0.1:9090", true }, nil},
		{"json logs", func(c *Config) { c.LogFormat = "json" }, nil},
		{"hsts subdomains while off", func(c *Config) { c.HTTP.HSTSIncludeSubdomains = true }, []string{"http.hsts_include_subdomains: has no effect"}},
		{"mail", withMail, nil},
		{"mail tls none on loopback", func(c *Config) {
			withMail(c)
			c.Mail.TLS, c.Mail.Port, c.Mail.Host = "none", 25, "localhost"
		}, nil},
		{"mail tls none on ::1 with a ca_file", func(c *Config) {
			withMail(c)
			c.Mail.TLS, c.Mail.Host, c.Mail.CAFile = "none", "::1", "/etc/ca.pem"
		}, []string{`mail.ca_file: has no effect with tls = "none"`}},
		{"mail keys without host", func(c *Config) { c.Mail = Mail{From: "id@example.com", CAFile: "/etc/ca.pem"} },
			[]string{"mail.from: has no effect while mail.host is not set", "mail.ca_file: has no effect while mail.host is not set"}},
		{"upstream with second factors", func(c *Config) {
			c.Directories = []Directory{{ID: "up", Type: "oidc", Issuer: "https://up.example.com", ClientID: "k", HandlesSecondFactor: true}}
		}, nil},
		{"upstream with LDAP keys", func(c *Config) {
			c.Directories = []Directory{{ID: "up", Type: "oidc", Issuer: "https://up.example.com", ClientID: "k", URL: "ldap://x", UserBaseDN: "dc=x"}}
		}, []string{`directories[0].url: has no effect for type = "oidc"`, `directories[0].user_base_dn: has no effect for type = "oidc"`}},
		{"LDAP with upstream keys", func(c *Config) {
			c.Directories = []Directory{{ID: "d", Type: "ldap", URL: "ldap://x", UserBaseDN: "dc=x", CreateUsers: true, HandlesSecondFactor: true}}
		}, []string{`directories[0].create_users: has no effect for type = "ldap"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.modify(c)
			warnings, err := c.Validate()
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if len(warnings) != len(tt.want) {
				t.Fatalf("warnings = %q, want %d starting %q", warnings, len(tt.want), tt.want)
			}
			for i, w := range tt.want {
				if !strings.HasPrefix(warnings[i], w) {
					t.Errorf("warning %q does not start with %q", warnings[i], w)
				}
			}
		})
	}
}

func TestValidateIsPure(t *testing.T) {
	c := validConfig()
	c.Issuer = "https://id.example.com/"
	c.Clients[0].GrantTypes = nil
	c.Clients[0].Name = ""
	before := *c
	before.Clients = slices.Clone(c.Clients)
	_, _ = c.Validate()
	if c.Issuer != before.Issuer || c.Clients[0].GrantTypes != nil || c.Clients[0].Name != "" {
		t.Error("Validate changed the configuration")
	}
}

func TestSecureCookie(t *testing.T) {
	tests := []struct {
		issuer, setting string
		want            bool
	}{
		{"https://id.example.com", "auto", true},
		{"HTTPS://id.example.com", "auto", true},
		{"http://localhost:8080", "auto", false},
		{"http://localhost:8080", "true", true},
		{"https://id.example.com", "false", false},
	}
	for _, tt := range tests {
		c := validConfig()
		c.Issuer, c.Session.SecureCookie = tt.issuer, tt.setting
		if got := c.SecureCookie(); got != tt.want {
			t.Errorf("SecureCookie() with issuer %s, secure_cookie %q = %v, want %v", tt.issuer, tt.setting, got, tt.want)
		}
	}
}

func TestStrictTransportSecurity(t *testing.T) {
	tests := []struct {
		issuer     string
		maxAge     time.Duration
		subdomains bool
		want       string
	}{
		{"https://id.example.com", 8760 * time.Hour, false, "max-age=31536000"},
		{"HTTPS://id.example.com/sso", 300 * time.Second, false, "max-age=300"},
		{"https://id.example.com", 8760 * time.Hour, true, "max-age=31536000; includeSubDomains"},
		{"https://id.example.com", 0, true, ""},
		// Over http browsers ignore it, and a local server must stay
		// reachable over http.
		{"http://localhost:8080", 8760 * time.Hour, false, ""},
		// HSTS is per host, for every port: a loopback issuer over https
		// would pin plain-http development servers on any port for a year.
		{"https://localhost:8443", 8760 * time.Hour, false, ""},
		{"https://LOCALHOST", 8760 * time.Hour, true, ""},
		{"https://keyport.localhost:8443", 8760 * time.Hour, false, ""},
		{"https://127.0.0.1:8443", 8760 * time.Hour, false, ""},
		{"https://127.1.2.3", 8760 * time.Hour, false, ""},
		{"https://[::1]:8443", 8760 * time.Hour, false, ""},
		{"https://localhost.example.com", 8760 * time.Hour, false, "max-age=31536000"},
		{"https://127.0.0.1.nip.io", 8760 * time.Hour, false, "max-age=31536000"},
	}
	for _, tt := range tests {
		c := validConfig()
		c.Issuer, c.HTTP.HSTSMaxAge, c.HTTP.HSTSIncludeSubdomains = tt.issuer, Duration{tt.maxAge}, tt.subdomains
		if got := c.StrictTransportSecurity(); got != tt.want {
			t.Errorf("issuer %s, max age %s, subdomains %v: %q, want %q", tt.issuer, tt.maxAge, tt.subdomains, got, tt.want)
		}
	}
}

func TestPaths(t *testing.T) {
	c := validConfig()
	if got, want := c.DBPath(), "/var/lib/keyport/keyport.db"; got != want {
		t.Errorf("DBPath() = %q, want %q", got, want)
	}
	if got, want := c.SecretKeyPath(), "/var/lib/keyport/secret.key"; got != want {
		t.Errorf("SecretKeyPath() = %q, want %q", got, want)
	}
	c.SecretKeyFile = "/etc/keyport/key"
	if got, want := c.SecretKeyPath(), "/etc/keyport/key"; got != want {
		t.Errorf("SecretKeyPath() = %q, want %q", got, want)
	}
}

// setDirectoryKey gives d's field for config.toml key a value that is
// neither zero nor a default Load fills in.
func setDirectoryKey(t *testing.T, d *Directory, key string) {
	t.Helper()
	v := reflect.ValueOf(d).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("toml") != key {
			continue
		}
		switch f := v.Field(i); {
		case f.Type() == reflect.TypeFor[Duration]():
			f.Set(reflect.ValueOf(Duration{3 * time.Minute}))
		case f.Kind() == reflect.String:
			f.SetString("set-" + key)
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Int:
			f.SetInt(7)
		case f.Kind() == reflect.Slice:
			f.Set(reflect.ValueOf([]string{"set-" + key}))
		default:
			t.Fatalf("no test value for %s (%v)", key, f.Type())
		}
		return
	}
	t.Fatalf("Directory has no field for key %q", key)
}

// For every registered directory type, each key that only other types
// take is warned about, so no setting is silently ignored.
func TestOtherTypesKeysAreWarnedAbout(t *testing.T) {
	valid := map[string]Directory{
		"ldap": {ID: "d", Type: "ldap", URL: "ldap://x", UserBaseDN: "dc=x"},
		"oidc": {ID: "d", Type: "oidc", Issuer: "https://up.example.com", ClientID: "k"},
	}
	for _, own := range sources.Types() {
		base, ok := valid[own.Name]
		if !ok {
			t.Fatalf("no valid directory of type %q to test with", own.Name)
		}
		for _, other := range sources.Types() {
			for _, key := range other.Keys() {
				if slices.Contains(own.Keys(), key) {
					continue
				}
				t.Run(own.Name+"/"+key, func(t *testing.T) {
					c := validConfig()
					d := base
					setDirectoryKey(t, &d, key)
					c.Directories = []Directory{d}
					warnings, err := c.Validate()
					if err != nil {
						t.Fatalf("Validate: %v", err)
					}
					want := fmt.Sprintf("directories[0].%s: has no effect for type = %q", key, own.Name)
					if !slices.Contains(warnings, want) {
						t.Errorf("warnings = %q, want %q", warnings, want)
					}
				})
			}
		}
	}
}

// Every [[directories]] key belongs to a registered type (or to all:
// id, name, type), and every key a type takes can be written in
// config.toml, so the warning above covers the whole table.
func TestDirectoryKeysAreRegistered(t *testing.T) {
	registered := map[string]bool{"id": true, "name": true, "type": true}
	for _, typ := range sources.Types() {
		for _, key := range typ.Keys() {
			registered[key] = true
			if _, ok := directoryFields[key]; !ok {
				t.Errorf("type %s takes key %q, which config.Directory lacks", typ.Name, key)
			}
		}
	}
	for key := range directoryFields {
		if !registered[key] {
			t.Errorf("config.Directory key %q belongs to no directory type", key)
		}
	}
}

// Load fills in defaults (timeout, sync_interval) for every directory;
// they are not taken for keys the operator set.
func TestLoadedUpstreamHasNoWarnings(t *testing.T) {
	_, warnings := mustLoad(t, `
[[directories]]
id = "up"
type = "oidc"
issuer = "https://up.example.com"
client_id = "keyport"
client_secret = "upstream-secret"
`, env(nil))
	for _, w := range warnings {
		if strings.HasPrefix(w, "directories[0].") {
			t.Errorf("warning %q", w)
		}
	}
}

func TestStorageValidation(t *testing.T) {
	dsnFile := filepath.Join(t.TempDir(), "dsn")
	if err := os.WriteFile(dsnFile, []byte("postgres://keyport:pw@db/keyport\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name    string
		storage Storage
		env     string
		want    string // "" for valid
		dsn     string // the DSN after Load
	}{
		{name: "bolt", storage: Storage{Type: StorageBolt, MaxConns: 10}},
		{name: "postgres", storage: Storage{Type: StoragePostgres, DSN: "postgres://db/keyport", MaxConns: 10}, dsn: "postgres://db/keyport"},
		{name: "postgres from the environment", storage: Storage{Type: StoragePostgres, MaxConns: 10}, env: "postgres://env/keyport", dsn: "postgres://env/keyport"},
		{name: "postgres from a file", storage: Storage{Type: StoragePostgres, DSNFile: dsnFile, MaxConns: 10}, dsn: "postgres://keyport:pw@db/keyport"},
		{name: "postgres without a DSN", storage: Storage{Type: StoragePostgres, MaxConns: 10}, want: "storage.dsn: must be set"},
		{name: "dsn and dsn_file", storage: Storage{Type: StoragePostgres, DSN: "x", DSNFile: dsnFile, MaxConns: 10}, want: "storage.dsn_file: set either"},
		{name: "unknown type", storage: Storage{Type: "mysql", MaxConns: 10}, want: `storage.type: must be "bolt" or "postgres", not "mysql"`},
		{name: "one connection", storage: Storage{Type: StoragePostgres, DSN: "x", MaxConns: 1}, want: "storage.max_conns: must be between 2 and 1000"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "config.toml")
			toml := fmt.Sprintf("issuer = \"https://id.example.com\"\n[storage]\ntype = %q\ndsn = %q\ndsn_file = %q\nmax_conns = %d\n",
				c.storage.Type, c.storage.DSN, c.storage.DSNFile, c.storage.MaxConns)
			if err := os.WriteFile(path, []byte(toml), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg, _, err := Load(path, func(k string) string {
				if k == EnvStorageDSN {
					return c.env
				}
				return ""
			})
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("got %v, want an error with %q", err, c.want)
			case c.want == "" && cfg.Storage.DSN != c.dsn:
				t.Errorf("dsn %q, want %q", cfg.Storage.DSN, c.dsn)
			}
		})
	}
}

// With [oauth] device_flow on, an app may use the device code grant with
// refresh tokens and no redirect URIs.
func TestDeviceFlowClient(t *testing.T) {
	c := validConfig()
	c.OAuth.DeviceFlow = true
	c.Clients = append(c.Clients, Client{ID: "tv", Name: "TV", Public: true, GrantTypes: []string{GrantDeviceCode, GrantRefreshToken}})
	if _, err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
}

// Dynamic client registration is off in the built-in default, and a
// configuration that turns it on is valid as it is: it needs no other key.
func TestDynamicRegistrationSetting(t *testing.T) {
	c, _ := mustLoad(t, "", nil)
	if c.OAuth.DynamicRegistration {
		t.Error("[oauth] dynamic_registration is on by default")
	}
	on, _ := mustLoad(t, "[oauth]\ndynamic_registration = true\n", nil)
	if !on.OAuth.DynamicRegistration {
		t.Error("[oauth] dynamic_registration = true was not read")
	}
	if _, err := on.Validate(); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

// The [oauth] features an app opts into are on in the built-in default,
// so an upgrade keeps serving what apps used before the switches existed.
func TestOAuthFeaturesOnByDefault(t *testing.T) {
	c, _ := mustLoad(t, "", nil)
	o := c.OAuth
	if !o.PushedAuthorizationRequests || !o.RequestObjects || !o.DPoP || !o.TokenExchange || !o.PairwiseSubjects {
		t.Errorf("built-in [oauth]: %+v", o)
	}
	if o.DeviceFlow || o.DynamicRegistration || o.RequirePushedAuthorizationRequests {
		t.Errorf("built-in [oauth] turns on what is off by default: %+v", o)
	}
}
