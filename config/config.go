// Package config loads Keyport's TOML configuration.
//
// The embedded default (the root config.toml, keyport.DefaultConfig) is
// decoded first and the operator's file on top of it, both strictly: an
// unknown key is an error. Environment overrides come next, then
// normalisation (which fills in derived values), then Validate, which only
// checks and reports every problem at once, each prefixed with its TOML key.
package config

import (
	"bytes"
	"encoding"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/keyport/keyport"
	"github.com/pelletier/go-toml/v2"
)

// Config mirrors config.toml. See that file for what each key means.
type Config struct {
	Issuer   string `toml:"issuer"`
	Listen   string `toml:"listen"`
	DataDir  string `toml:"data_dir"`
	LogLevel string `toml:"log_level"`
	// LogFormat is "text" (logfmt-style key=value lines) or "json".
	LogFormat     string `toml:"log_format"`
	TemplatesDir  string `toml:"templates_dir"`
	SecretKeyFile string `toml:"secret_key_file"`
	// TrustedProxies are the peers (addresses or CIDR ranges) whose
	// ClientIPHeader is believed; see package clientip.
	TrustedProxies []string `toml:"trusted_proxies"`
	ClientIPHeader string   `toml:"client_ip_header"`

	Session  Session  `toml:"session"`
	Tokens   Tokens   `toml:"tokens"`
	Keys     Keys     `toml:"keys"`
	Database Database `toml:"database"`
	Storage  Storage  `toml:"storage"`
	Password Password `toml:"password"`
	Limits   Limits   `toml:"limits"`
	Accounts Accounts `toml:"accounts"`
	HTTP     HTTP     `toml:"http"`
	Audit    Audit    `toml:"audit"`
	Mail     Mail     `toml:"mail"`
	Webhooks Webhooks `toml:"webhooks"`
	Clients  []Client `toml:"clients"`
	// Directories are external identity sources (LDAP for now).
	Directories []Directory `toml:"directories"`

	// Notifications: which security events are mailed to the user.
	Notifications Notifications `toml:"notifications"`

	// Metrics is the [metrics] table: the Prometheus listener.
	Metrics Metrics `toml:"metrics"`

	// ClientAuth is the [client_auth] table: apps that authenticate with
	// signed assertions (RFC 7523).
	ClientAuth ClientAuth `toml:"client_auth"`

	// OAuth is the [oauth] table: protocol features switched on or off
	// for every app.
	OAuth OAuth `toml:"oauth"`
}

// ClientAuth is the [client_auth] table.
type ClientAuth struct {
	// JWKSAllowNetworks are CIDRs an app's jwks_uri may reach although
	// they are not public (loopback, private, link-local...); empty:
	// public addresses only, as for webhooks.
	JWKSAllowNetworks []string `toml:"jwks_allow_networks"`
}

// OAuth is the [oauth] table.
type OAuth struct {
	// RequirePushedAuthorizationRequests makes every app push its
	// authorization requests (RFC 9126 §5); an app can also be made to
	// alone ([[clients]] require_pushed_authorization_requests).
	RequirePushedAuthorizationRequests bool `toml:"require_pushed_authorization_requests"`

	// DeviceFlow serves the device authorization grant (RFC 8628): the
	// device authorization endpoint, the portal's /device page and the
	// device_code grant for apps that list it.
	DeviceFlow bool `toml:"device_flow"`
	// DeviceCodeLifetime is how long a device has for its person to
	// approve it.
	DeviceCodeLifetime Duration `toml:"device_code_lifetime"`
	// DevicePollInterval is the least time between two polls of a device.
	DevicePollInterval Duration `toml:"device_poll_interval"`

	// DynamicRegistration serves dynamic client registration (RFC 7591)
	// and its management protocol (RFC 7592) at /oauth/register, for
	// holders of an initial access token an administrator made.
	DynamicRegistration bool `toml:"dynamic_registration"`

	// The features below are on by default: each takes effect only for
	// an app that uses it, and off, it is neither served nor advertised
	// (account.FeaturesOff).

	// PushedAuthorizationRequests serves the pushed authorization request
	// endpoint (RFC 9126).
	PushedAuthorizationRequests bool `toml:"pushed_authorization_requests"`
	// RequestObjects accepts signed request objects (RFC 9101) at the
	// authorization and pushed authorization request endpoints.
	RequestObjects bool `toml:"request_objects"`
	// DPoP binds tokens to the keys of the DPoP proofs apps send (RFC
	// 9449).
	DPoP bool `toml:"dpop"`
	// TokenExchange serves the token exchange grant (RFC 8693) to the
	// apps that list it.
	TokenExchange bool `toml:"token_exchange"`
	// PairwiseSubjects lets apps be given pairwise subject identifiers
	// (OpenID Connect Core 1.0 §8).
	PairwiseSubjects bool `toml:"pairwise_subjects"`
}

// Metrics is the [metrics] table.
type Metrics struct {
	// Listen is the host:port /metrics (and /healthz, /readyz) are
	// served on, apart from the public listener; "" turns metrics off.
	Listen string `toml:"listen"`
	// Profiling serves Go's profiles (net/http/pprof) under
	// /debug/pprof/ on the same listener: CPU, heap and goroutines of a
	// running server, for finding where its time goes (the mutex and
	// block profiles stay empty: nothing sets their sampling rates).
	Profiling bool `toml:"profiling"`
}

// Session is the [session] table: the single sign-on cookie.
type Session struct {
	CookieName string   `toml:"cookie_name"`
	Lifetime   Duration `toml:"lifetime"`
	// SecureCookie is "auto", "true" or "false"; use Config.SecureCookie
	// for the resolved value.
	SecureCookie string `toml:"secure_cookie"`
	// SameSite is "lax" or "strict".
	SameSite string `toml:"same_site"`
}

// Tokens is the [tokens] table: lifetimes of what Keyport issues.
type Tokens struct {
	Code        Duration `toml:"code"`
	Access      Duration `toml:"access"`
	ID          Duration `toml:"id"`
	Refresh     Duration `toml:"refresh"`
	RefreshIdle Duration `toml:"refresh_idle"`
	AuthRequest Duration `toml:"auth_request"`
	// RefreshReuseGrace: a refresh token presented again this soon after
	// its rotation gets the same successor instead of revoking its family.
	RefreshReuseGrace Duration `toml:"refresh_reuse_grace"`
}

// Keys is the [keys] table: token signing keys.
type Keys struct {
	// RotationPeriod zero disables rotation.
	RotationPeriod Duration `toml:"rotation_period"`
	// Algorithm signs new ID tokens and JWT access tokens: "RS256",
	// "ES256" or "EdDSA".
	Algorithm string `toml:"algorithm"`
}

// Database is the [database] table: how Keyport treats its database file.
type Database struct {
	// Check runs the consistency check when the file is opened.
	Check bool `toml:"check"`
	// CheckTimeout is how long start-up waits for the check.
	CheckTimeout Duration `toml:"check_timeout"`
}

// Storage is the [storage] table: where Keyport keeps its records.
type Storage struct {
	// Type is StorageBolt (one file in data_dir, one process) or
	// StoragePostgres (a PostgreSQL database that several keyport
	// processes can share).
	Type string `toml:"type"`
	// DSN is the PostgreSQL connection string; after Load it also holds
	// the contents of DSNFile when that was set. Never log it.
	DSN     string `toml:"dsn"`
	DSNFile string `toml:"dsn_file"`
	// MaxConns bounds the connections of one process to PostgreSQL.
	MaxConns int `toml:"max_conns"`
}

// Storage types.
const (
	StorageBolt     = "bolt"
	StoragePostgres = "postgres"
)

// Password is the [password] table: argon2id parameters and password policy.
type Password struct {
	MemoryKiB   int `toml:"memory_kib"`
	Iterations  int `toml:"iterations"`
	Parallelism int `toml:"parallelism"`
	MinLength   int `toml:"min_length"`
	// MinScore is the lowest zxcvbn score (0-4) a new password may have.
	MinScore int `toml:"min_score"`
}

// Accounts holds the rules for people's own accounts.
type Accounts struct {
	// ProfilesLocked stops users from editing any profile field.
	ProfilesLocked bool `toml:"profiles_locked"`
	// Require2FA makes users enrol a second factor before reaching any app.
	Require2FA bool `toml:"require_2fa"`
	// TrustedDeviceLifetime is how long "remember this device" lasts.
	TrustedDeviceLifetime Duration `toml:"trusted_device_lifetime"`
	// RecentAuth is how long after signing in a security change needs no
	// password again.
	RecentAuth Duration `toml:"recent_auth"`
}

// HTTP is the [http] table: what every response tells browsers.
type HTTP struct {
	// HSTSMaxAge is the Strict-Transport-Security max-age, sent when the
	// issuer is https; zero sends none. Use Config.StrictTransportSecurity
	// for the header.
	HSTSMaxAge            Duration `toml:"hsts_max_age"`
	HSTSIncludeSubdomains bool     `toml:"hsts_include_subdomains"`
	// ShutdownTimeout bounds how long serve, told to stop (SIGTERM,
	// SIGINT), waits for requests in progress before it cuts them.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`
}

// Audit is the [audit] table: the audit log.
type Audit struct {
	// Retention is how long an audit event is kept.
	Retention Duration `toml:"retention"`
}

// Mail is the [mail] table: the SMTP server Keyport sends mail through.
// Without host, mail is off.
type Mail struct {
	Host string `toml:"host"`
	// Port defaults by TLS: 587 for "starttls", 465 for "implicit", 25
	// for "none".
	Port int `toml:"port"`
	// TLS is "starttls" (the default), "implicit" or "none" (loopback
	// hosts only); see the MailTLS constants.
	TLS      string `toml:"tls"`
	Username string `toml:"username"`
	// Password holds the SMTP password; after Load it also holds the
	// contents of PasswordFile when that was set. Never log it.
	Password     string `toml:"password"`
	PasswordFile string `toml:"password_file"`
	// From is the RFC 5322 address mail comes from, such as
	// "Keyport <id@example.com>".
	From string `toml:"from"`
	// CAFile is a PEM file of roots to trust instead of the system's.
	CAFile string `toml:"ca_file"`
	// HELO is the name Keyport gives in EHLO; empty: the machine's name.
	HELO    string   `toml:"helo"`
	Timeout Duration `toml:"timeout"`
}

// The values of mail.tls.
const (
	MailTLSStartTLS = "starttls"
	MailTLSImplicit = "implicit"
	MailTLSNone     = "none"
)

// Notifications is the [notifications] table: which security events
// are mailed to the user they concern (when mail is on). Each is a
// default an admin may change on the console's settings page.
type Notifications struct {
	NewDevice       bool `toml:"new_device"`
	PasswordChanged bool `toml:"password_changed"`
	SecondFactor    bool `toml:"second_factor"`
	Credentials     bool `toml:"credentials"`
	TokenExpiry     bool `toml:"token_expiry"`
	Blocked         bool `toml:"blocked"`
}

// Enabled reports whether mail is configured (mail.host is set).
func (m Mail) Enabled() bool { return m.Host != "" }

// Webhooks is the [webhooks] table: what webhook calls may reach.
type Webhooks struct {
	// AllowNetworks are CIDRs webhook calls may reach although they are
	// not public (loopback, private, link-local...); empty: public
	// addresses only.
	AllowNetworks []string `toml:"allow_networks"`
	// MaxFailures is how many failed delivery attempts in a row turn a
	// webhook off; 0 means the default, 20.
	MaxFailures int `toml:"max_failures"`
}

// Limits is the [limits] table.
type Limits struct {
	MaxBodyBytes     int64    `toml:"max_body_bytes"`
	MaxLoginAttempts int      `toml:"max_login_attempts"`
	LoginWindow      Duration `toml:"login_window"`

	// Throttling that cannot be turned against users: per client address,
	// account-wide waits that grow, and the bound on password hashing.
	MaxLoginAttemptsPerAddress int      `toml:"max_login_attempts_per_address"`
	AccountLockoutFailures     int      `toml:"account_lockout_failures"`
	AccountLockoutWait         Duration `toml:"account_lockout_wait"`
	AccountLockoutMaxWait      Duration `toml:"account_lockout_max_wait"`
	AccountLockoutReset        Duration `toml:"account_lockout_reset"`
	PasswordHashConcurrency    int      `toml:"password_hash_concurrency"`
	PasswordHashQueue          int      `toml:"password_hash_queue"`

	// Pending sign-ins (authorization requests waiting in the flow file),
	// in all and per client address.
	MaxPendingSignIns           int `toml:"max_pending_sign_ins"`
	MaxPendingSignInsPerAddress int `toml:"max_pending_sign_ins_per_address"`

	// Unexpired device authorizations (RFC 8628) one client address may
	// hold.
	MaxDeviceAuthorizationsPerAddress int `toml:"max_device_authorizations_per_address"`
}

// Client is one [[clients]] entry.
type Client struct {
	ID   string `toml:"id"`
	Name string `toml:"name"`
	// Secret holds the client secret; after Load it also holds the contents
	// of SecretFile when that was set.
	Secret                 string   `toml:"secret"`
	SecretFile             string   `toml:"secret_file"`
	RedirectURIs           []string `toml:"redirect_uris"`
	PostLogoutRedirectURIs []string `toml:"post_logout_redirect_uris"`
	GrantTypes             []string `toml:"grant_types"`
	Public                 bool     `toml:"public"`
	AccessTokenJWT         bool     `toml:"access_token_jwt"`
	SkipConsent            bool     `toml:"skip_consent"`

	// Logout to the app (OpenID Connect Front-Channel and Back-Channel
	// Logout 1.0).
	FrontchannelLogoutURI             string `toml:"frontchannel_logout_uri"`
	FrontchannelLogoutSessionRequired bool   `toml:"frontchannel_logout_session_required"`
	BackchannelLogoutURI              string `toml:"backchannel_logout_uri"`
	BackchannelLogoutSessionRequired  bool   `toml:"backchannel_logout_session_required"`

	// Client authentication (RFC 7591 names): the method, and the app's
	// public keys for private_key_jwt, inline (a JWK Set as a JSON
	// string) or by URL.
	TokenEndpointAuthMethod string `toml:"token_endpoint_auth_method"`
	JWKS                    string `toml:"jwks"`
	JWKSURI                 string `toml:"jwks_uri"`
	// The app's authorization requests must come through the pushed
	// authorization request endpoint (RFC 9126 §6).
	RequirePushedAuthorizationRequests bool `toml:"require_pushed_authorization_requests"`
	// IDTokenSignedResponseAlg signs the app's ID tokens (and its JWT
	// access tokens and logout tokens): "RS256", "ES256", "EdDSA", or ""
	// for [keys] algorithm.
	IDTokenSignedResponseAlg string `toml:"id_token_signed_response_alg"`
	// UserinfoSignedResponseAlg makes /userinfo answer the app with a
	// JWT of this algorithm; "" (the default) answers with JSON.
	UserinfoSignedResponseAlg string `toml:"userinfo_signed_response_alg"`

	// TokenExchangeAudiences: the audiences (other apps' IDs, or resource
	// URIs) the app may exchange a user's access token for (RFC 8693).
	TokenExchangeAudiences []string `toml:"token_exchange_audiences"`

	// RequireSignedRequestObject accepts the app's authorization requests
	// only as request objects signed with its keys (RFC 9101 §10.5).
	RequireSignedRequestObject bool `toml:"require_signed_request_object"`

	// Pairwise subjects (OpenID Connect Core 1.0 §8): SubjectType "public"
	// (the default) or "pairwise"; SectorIdentifierURI, an https URL of a
	// JSON array of redirect URIs whose host names the sector.
	SubjectType         string `toml:"subject_type"`
	SectorIdentifierURI string `toml:"sector_identifier_uri"`

	// Resources (resource indicators, RFC 8707): the resource URIs the
	// app may ask access tokens for with the resource parameter.
	Resources []string `toml:"resources"`

	// DPoP (RFC 9449): the app must send a DPoP proof with every token
	// request (RFC 7591's dpop_bound_access_tokens), and its proofs must
	// carry the server's nonce.
	DPoPBoundAccessTokens bool `toml:"dpop_bound_access_tokens"`
	RequireDPoPNonce      bool `toml:"require_dpop_nonce"`

	// CustomClaims map user data to claims of the app's own naming
	// ([[clients.custom_claims]]). Their rules are the account package's,
	// the same as the console's and the API's: they are checked when the
	// clients are built at startup, with messages naming the TOML key.
	CustomClaims []ClaimMapping `toml:"custom_claims"`
}

// ClaimMapping is one [[clients.custom_claims]] entry.
type ClaimMapping struct {
	Claim  string   `toml:"claim"`
	Source string   `toml:"source"`
	Scope  string   `toml:"scope"`
	In     []string `toml:"in"`
}

// Directory is one [[directories]] entry.
type Directory struct {
	ID   string `toml:"id"`
	Name string `toml:"name"`
	Type string `toml:"type"` // "ldap"

	URL                string `toml:"url"`
	StartTLS           bool   `toml:"start_tls"`
	CACertFile         string `toml:"ca_cert_file"`
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"`
	BindDN             string `toml:"bind_dn"`
	// BindPassword holds the service account's password; after Load it also
	// holds the contents of BindPasswordFile when that was set.
	BindPassword     string `toml:"bind_password"`
	BindPasswordFile string `toml:"bind_password_file"`

	UserBaseDN      string   `toml:"user_base_dn"`
	UserFilter      string   `toml:"user_filter"`
	LoginAttributes []string `toml:"login_attributes"`
	DisabledFilter  string   `toml:"disabled_filter"`

	IDAttribute          string `toml:"id_attribute"`
	UsernameAttribute    string `toml:"username_attribute"`
	EmailAttribute       string `toml:"email_attribute"`
	GivenNameAttribute   string `toml:"given_name_attribute"`
	FamilyNameAttribute  string `toml:"family_name_attribute"`
	DisplayNameAttribute string `toml:"display_name_attribute"`
	PhoneAttribute       string `toml:"phone_attribute"`
	PictureAttribute     string `toml:"picture_attribute"`

	GroupBaseDN        string `toml:"group_base_dn"`
	GroupFilter        string `toml:"group_filter"`
	MemberAttribute    string `toml:"member_attribute"`
	GroupNameAttribute string `toml:"group_name_attribute"`

	// Upstream OpenID Connect (type = "oidc").
	Issuer              string   `toml:"issuer"`
	ClientID            string   `toml:"client_id"`
	ClientSecret        string   `toml:"client_secret"`
	ClientSecretFile    string   `toml:"client_secret_file"`
	Scopes              []string `toml:"scopes"`
	UsernameClaim       string   `toml:"username_claim"`
	EmailClaim          string   `toml:"email_claim"`
	GivenNameClaim      string   `toml:"given_name_claim"`
	FamilyNameClaim     string   `toml:"family_name_claim"`
	NameClaim           string   `toml:"name_claim"`
	GroupsClaim         string   `toml:"groups_claim"`
	ButtonLabel         string   `toml:"button_label"`
	LinkByVerifiedEmail bool     `toml:"link_by_verified_email"`
	CreateUsers         bool     `toml:"create_users"`

	// HandlesSecondFactor: the directory enforces second factors itself.
	HandlesSecondFactor bool `toml:"handles_second_factor"`

	PageSize     int      `toml:"page_size"`
	Timeout      Duration `toml:"timeout"`
	SyncInterval Duration `toml:"sync_interval"`
}

// Grant types a client may list in grant_types.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	// GrantDeviceCode is the device authorization grant (RFC 8628).
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// GrantTokenExchange is OAuth 2.0 Token Exchange (RFC 8693).
const GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// DefaultGrantTypes are given to a client whose grant_types is empty.
func DefaultGrantTypes() []string {
	return []string{GrantAuthorizationCode, GrantRefreshToken}
}

// HasGrant reports whether the client lists grant type g.
func (c Client) HasGrant(g string) bool {
	for _, have := range c.GrantTypes {
		if have == g {
			return true
		}
	}
	return false
}

// Duration is a time.Duration written in TOML as a quoted Go duration
// string such as "15m" or "720h".
type Duration struct {
	time.Duration
}

// UnmarshalText parses a Go duration string.
func (d *Duration) UnmarshalText(text []byte) error {
	v, err := time.ParseDuration(string(text))
	if err != nil {
		return fmt.Errorf("invalid duration %q: write a quoted Go duration such as \"15m\" or \"720h\"", text)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration in Go syntax.
func (d Duration) MarshalText() ([]byte, error) {
	return []byte(d.Duration.String()), nil
}

// Environment variables that override keys of the file when set and not
// empty.
const (
	EnvIssuer  = "KEYPORT_ISSUER"
	EnvListen  = "KEYPORT_LISTEN"
	EnvDataDir = "KEYPORT_DATA_DIR"
	// EnvStorageDSN is storage.dsn: the connection string holds a
	// password, which containers pass in the environment.
	EnvStorageDSN = "KEYPORT_STORAGE_DSN"
	// EnvSecretKeyFile is secret_key_file: replicas share one sealing
	// key, which containers mount as a secret file.
	EnvSecretKeyFile = "KEYPORT_SECRET_KEY_FILE"
)

// Load builds the configuration: the embedded default, then the file at path
// on top of it (skipped when path is ""), then the environment overrides read
// through getenv (nil means no environment), then normalisation, then
// Validate. It returns the configuration, Validate's warnings, and an error
// that lists every problem found. On a decoding error (unreadable file, bad
// TOML, unknown key, wrong type) the configuration is nil.
func Load(path string, getenv func(string) string) (*Config, []string, error) {
	return load(keyport.DefaultConfig, path, getenv)
}

func load(defaults []byte, path string, getenv func(string) string) (*Config, []string, error) {
	c := new(Config)
	if err := decode(c, "embedded default config", defaults); err != nil {
		return nil, nil, err
	}
	if path != "" {
		data, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("config file %s does not exist", path)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("reading config file: %w", err)
		}
		// go-toml/v2 replaces slices, maps and arrays of tables that a
		// document sets, and leaves alone what it does not mention. We rely
		// on that for everything except clients, where we make it explicit:
		// [[clients]] in the file replaces the default's list, and a file
		// without clients keeps it.
		defaultClients := c.Clients
		c.Clients = nil
		if err := decode(c, path, data); err != nil {
			return nil, nil, err
		}
		if c.Clients == nil {
			c.Clients = defaultClients
		}
	}
	if getenv != nil {
		applyEnv(c, getenv)
	}
	normErr := c.normalize()
	warnings, err := c.Validate()
	return c, warnings, errors.Join(normErr, err)
}

// decode decodes one TOML document onto c, refusing unknown keys. Errors
// name the source and the line, and the key where go-toml knows it.
func decode(c *Config, name string, data []byte) error {
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	err := d.Decode(c)
	if err == nil {
		return keysInAnotherCase(name, data)
	}
	var strict *toml.StrictMissingError
	if errors.As(err, &strict) {
		errs := make([]error, 0, len(strict.Errors))
		for i := range strict.Errors {
			e := &strict.Errors[i]
			line, col := e.Position()
			errs = append(errs, fmt.Errorf("%s:%d:%d: unknown key %q", name, line, col, strings.Join(e.Key(), ".")))
		}
		return errors.Join(errs...)
	}
	var de *toml.DecodeError
	if errors.As(err, &de) {
		line, col := de.Position()
		msg := strings.TrimPrefix(de.Error(), "toml: ")
		if key := de.Key(); len(key) > 0 {
			k := strings.Join(key, ".")
			if k == "session.secure_cookie" {
				msg += ` (it is a quoted string: "auto", "true" or "false")`
			}
			return fmt.Errorf("%s:%d:%d: %s: %s", name, line, col, k, msg)
		}
		return fmt.Errorf("%s:%d:%d: %s", name, line, col, msg)
	}
	// go-toml reports some errors from UnmarshalText, such as for an
	// unquoted duration, without position or key. Find the keys ourselves.
	if keys := unquotedDurations(data); len(keys) > 0 {
		errs := make([]error, 0, len(keys))
		for _, k := range keys {
			errs = append(errs, fmt.Errorf("%s: %s: durations are quoted strings with a unit, such as \"15m\" or \"720h\"", name, k))
		}
		return errors.Join(errs...)
	}
	return fmt.Errorf("%s: %w", name, err)
}

// tomlKey is one key of a TOML document with the Config field it sets.
type tomlKey struct {
	// path names the key as messages do: dotted, with an index in each
	// array of tables ("clients[0].custom_claims[1].source"), each key as
	// written.
	path  string
	field reflect.StructField
	// tag is the field's TOML name; key != tag when the key names it in
	// another case, which go-toml accepts.
	key, tag string
	value    any
}

// walkTOML decodes data without a schema and calls visit for every key
// that names a field of Config, at every depth: tables, inline tables,
// arrays of tables and arrays of inline tables, nested. A key that matches
// no field is skipped with what is under it (strict decoding reports it).
// A key in another case is visited and descended into, as go-toml decodes
// it. Keys come in sorted order within each table, so messages are stable.
//
// Both checks of the document use it (keysInAnotherCase and
// unquotedDurations), so neither can miss a kind of table the other sees.
func walkTOML(data []byte, visit func(tomlKey)) {
	var doc map[string]any
	if toml.Unmarshal(data, &doc) != nil {
		return // the strict decoder reports it with its position
	}
	walkTable("", reflect.TypeFor[Config](), doc, visit)
}

func walkTable(prefix string, typ reflect.Type, m map[string]any, visit func(tomlKey)) {
	for _, k := range slices.Sorted(maps.Keys(m)) {
		f, tag, ok := tomlField(typ, k)
		if !ok {
			continue
		}
		v := m[k]
		visit(tomlKey{path: prefix + k, field: f, key: k, tag: tag, value: v})
		t := f.Type
		if t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		switch v := v.(type) {
		case map[string]any:
			if isTOMLTable(t) {
				walkTable(prefix+k+".", t, v, visit)
			}
		case []any:
			if t.Kind() != reflect.Slice && t.Kind() != reflect.Array {
				break
			}
			elem := t.Elem()
			if elem.Kind() == reflect.Pointer {
				elem = elem.Elem()
			}
			if !isTOMLTable(elem) {
				break
			}
			for i, item := range v {
				if sub, ok := item.(map[string]any); ok {
					walkTable(fmt.Sprintf("%s%s[%d].", prefix, k, i), elem, sub, visit)
				}
			}
		}
	}
}

// tomlField finds the field of struct type typ that key k sets: the one
// whose toml tag is k, else, as go-toml matches keys in any case, one whose
// tag is k in another case.
func tomlField(typ reflect.Type, k string) (reflect.StructField, string, bool) {
	var field reflect.StructField
	var fieldTag string
	found := false
	for f := range typ.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		if tag == k {
			return f, tag, true
		}
		if !found && strings.EqualFold(tag, k) {
			field, fieldTag, found = f, tag, true
		}
	}
	return field, fieldTag, found
}

// isTOMLTable reports whether a value of type t is written as a table whose
// keys are its fields; a Duration, which decodes itself from a string, is
// not.
func isTOMLTable(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && !reflect.PointerTo(t).Implements(reflect.TypeFor[encoding.TextUnmarshaler]())
}

// keysInAnotherCase refuses the keys of data that name a setting in another
// case ("Public", "Skip_Consent"), as unknown keys are refused: go-toml
// matches keys in any case, so such a key would be taken for the setting,
// and a table could set one setting twice, the last silently winning.
func keysInAnotherCase(name string, data []byte) error {
	var errs []error
	walkTOML(data, func(k tomlKey) {
		if k.key != k.tag {
			errs = append(errs, fmt.Errorf("%s: unknown key %q (keys are case-sensitive: %q)", name, k.path, k.tag))
		}
	})
	return errors.Join(errs...)
}

// unquotedDurations returns the keys of data that map to a Duration field
// of Config but hold something other than a string.
func unquotedDurations(data []byte) []string {
	var keys []string
	walkTOML(data, func(k tomlKey) {
		if _, isString := k.value.(string); k.field.Type == reflect.TypeFor[Duration]() && !isString {
			keys = append(keys, k.path)
		}
	})
	return keys
}

func applyEnv(c *Config, getenv func(string) string) {
	for _, o := range []struct {
		env string
		dst *string
	}{
		{EnvIssuer, &c.Issuer},
		{EnvListen, &c.Listen},
		{EnvDataDir, &c.DataDir},
		{EnvStorageDSN, &c.Storage.DSN},
		{EnvSecretKeyFile, &c.SecretKeyFile},
	} {
		if v := getenv(o.env); v != "" {
			*o.dst = v
		}
	}
}

// normalize fills in derived values: it trims the issuer's trailing slash,
// reads secret files, names unnamed clients after their id and gives
// clients without grant types the defaults. It checks nothing it does not
// need to do its job; its errors are about files it could not read or
// settings it cannot reconcile.
func (c *Config) normalize() error {
	var errs []error
	c.Issuer = strings.TrimRight(c.Issuer, "/")
	for i := range c.Clients {
		cl := &c.Clients[i]
		key := fmt.Sprintf("clients[%d]", i)
		if cl.Name == "" {
			cl.Name = cl.ID
		}
		if len(cl.GrantTypes) == 0 {
			cl.GrantTypes = DefaultGrantTypes()
		}
		if cl.SecretFile != "" {
			if cl.Secret != "" {
				errs = append(errs, fmt.Errorf("%s.secret_file: set either secret or secret_file, not both", key))
				continue
			}
			b, err := os.ReadFile(cl.SecretFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.secret_file: %w", key, err))
				continue
			}
			cl.Secret = strings.TrimSpace(string(b))
			if cl.Secret == "" {
				errs = append(errs, fmt.Errorf("%s.secret_file: %s is empty", key, cl.SecretFile))
			}
		}
	}
	for i := range c.Directories {
		d := &c.Directories[i]
		key := fmt.Sprintf("directories[%d]", i)
		d.fillDefaults()
		if d.ClientSecretFile != "" {
			b, err := os.ReadFile(d.ClientSecretFile)
			if err != nil || d.ClientSecret != "" {
				errs = append(errs, fmt.Errorf("%s.client_secret_file: set either client_secret or a readable client_secret_file (%v)", key, err))
				continue
			}
			d.ClientSecret = strings.TrimSpace(string(b))
		}
		if d.BindPasswordFile != "" {
			if d.BindPassword != "" {
				errs = append(errs, fmt.Errorf("%s.bind_password_file: set either bind_password or bind_password_file, not both", key))
				continue
			}
			b, err := os.ReadFile(d.BindPasswordFile)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s.bind_password_file: %w", key, err))
				continue
			}
			d.BindPassword = strings.TrimRight(string(b), "\r\n")
		}
	}
	if err := c.Mail.normalize(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Storage.normalize(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// normalize fills in the [mail] defaults that depend on other keys (the
// port on tls) and reads password_file.
func (m *Mail) normalize() error {
	if m.TLS == "" {
		m.TLS = MailTLSStartTLS
	}
	if m.Port == 0 {
		switch m.TLS {
		case MailTLSStartTLS:
			m.Port = 587
		case MailTLSImplicit:
			m.Port = 465
		case MailTLSNone:
			m.Port = 25
		}
	}
	if m.Timeout.Duration == 0 {
		m.Timeout.Duration = 10 * time.Second
	}
	if m.PasswordFile == "" {
		return nil
	}
	if m.Password != "" {
		return errors.New("mail.password_file: set either password or password_file, not both")
	}
	b, err := os.ReadFile(m.PasswordFile)
	if err != nil {
		return fmt.Errorf("mail.password_file: %w", err)
	}
	// One trailing newline is what editors and `echo` add; anything else
	// may belong to the password.
	m.Password = strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if m.Password == "" {
		return fmt.Errorf("mail.password_file: %s is empty", m.PasswordFile)
	}
	return nil
}

// normalize reads dsn_file.
func (s *Storage) normalize() error {
	if s.DSNFile == "" {
		return nil
	}
	if s.DSN != "" {
		return errors.New("storage.dsn_file: set either dsn (or KEYPORT_STORAGE_DSN) or dsn_file, not both")
	}
	b, err := os.ReadFile(s.DSNFile)
	if err != nil {
		return fmt.Errorf("storage.dsn_file: %w", err)
	}
	s.DSN = strings.TrimSpace(string(b))
	if s.DSN == "" {
		return fmt.Errorf("storage.dsn_file: %s is empty", s.DSNFile)
	}
	return nil
}

// fillDefaults gives keys left out of the table their default values.
func (d *Directory) fillDefaults() {
	if d.Name == "" {
		d.Name = d.ID
	}
	if d.SyncInterval.Duration == 0 {
		d.SyncInterval.Duration = time.Hour
	}
	if d.Timeout.Duration == 0 {
		d.Timeout.Duration = 5 * time.Second
	}
}

// DBPath is the bbolt database file: data_dir/keyport.db.
func (c *Config) DBPath() string {
	return filepath.Join(c.DataDir, "keyport.db")
}

// SecretKeyPath is the file holding the key that seals secrets at rest:
// secret_key_file, or data_dir/secret.key when that is empty.
func (c *Config) SecretKeyPath() string {
	if c.SecretKeyFile != "" {
		return c.SecretKeyFile
	}
	return filepath.Join(c.DataDir, "secret.key")
}

// SecureCookie resolves session.secure_cookie: "true" and "false" mean what
// they say, and "auto" (or anything else) means Secure when the issuer is
// an https:// URL.
func (c *Config) SecureCookie() bool {
	switch c.Session.SecureCookie {
	case "true":
		return true
	case "false":
		return false
	}
	return issuerIsHTTPS(c.Issuer)
}

func issuerIsHTTPS(issuer string) bool {
	scheme, _, ok := strings.Cut(issuer, "://")
	return ok && strings.EqualFold(scheme, "https")
}

// StrictTransportSecurity is the Strict-Transport-Security header value for
// every response, or "" when none is sent: with an http:// issuer (browsers
// ignore the header over http anyway, and a local test server must stay
// reachable over http), with a loopback issuer (HSTS holds for every port
// of a host: https://localhost would pin every development server on
// localhost to https for the max-age), or when http.hsts_max_age is 0.
func (c *Config) StrictTransportSecurity() string {
	secs := int64(c.HTTP.HSTSMaxAge.Seconds())
	if !issuerIsHTTPS(c.Issuer) || secs <= 0 || issuerIsLoopback(c.Issuer) {
		return ""
	}
	v := fmt.Sprintf("max-age=%d", secs)
	if c.HTTP.HSTSIncludeSubdomains {
		v += "; includeSubDomains"
	}
	return v
}
