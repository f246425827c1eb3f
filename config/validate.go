package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyport/keyport/clientip"
	"github.com/keyport/keyport/directory/sources"
)

// Bounds enforced by Validate; config.toml documents them too.
const (
	// minMemoryKiB is the smallest argon2id memory OWASP lists (7 MiB, with
	// t=5); minMemoryTimesIterations is the matching memory * iterations
	// floor, which all of OWASP's equivalent settings meet.
	minMemoryKiB             = 7168
	maxMemoryKiB             = 1 << 20 // 1 GiB
	minMemoryTimesIterations = 7168 * 5
	maxIterations            = 64
	maxParallelism           = 64
	minPasswordLength        = 8
	maxPasswordLength        = 128
	minBodyBytes             = 1024
	maxBodyBytes             = 10 << 20 // 10 MiB
	maxLoginAttempts         = 1000
	maxHashConcurrency       = 256
	maxHashQueue             = 10000
	minClientSecretLength    = 16
	maxClientIDLength        = 128
	minRotationPeriod        = time.Hour
	// maxHSTSMaxAge is two years, the longest value browsers' HSTS preload
	// lists ask for; longer gains nothing.
	maxHSTSMaxAge = 2 * 365 * 24 * time.Hour
	// maxCodeLifetime is RFC 6749's recommended maximum; longer is a warning.
	maxCodeLifetime = 10 * time.Minute
	// maxRefreshReuseGrace: Okta's grace period goes up to a minute; longer
	// would let a stolen, already used refresh token pass as a retry.
	maxRefreshReuseGrace = time.Minute
	// Pending sign-ins: a store needs room for a few at least, and at 16 KiB
	// a request, a million keep the flow file under about 16 GiB.
	minPendingSignIns = 10
	maxPendingSignIns = 1_000_000
)

// Validate checks the configuration without changing it or touching the
// file system. It reports every error at once, joined with errors.Join, and
// returns warnings separately. Every message starts with the TOML key it is
// about, such as "tokens.access: must be positive".
func (c *Config) Validate() (warnings []string, err error) {
	var p problems
	c.validateTop(&p)
	c.validateSession(&p)
	c.validateTokens(&p)
	c.validateKeys(&p)
	c.validateDatabase(&p)
	c.validateStorage(&p)
	c.validatePassword(&p)
	c.validateLimits(&p)
	c.validateAccounts(&p)
	c.validateHTTP(&p)
	c.validateAudit(&p)
	c.validateMail(&p)
	c.validateWebhooks(&p)
	c.validateClientAuth(&p)
	c.validateClients(&p)
	c.validateDirectories(&p)
	c.validateMetrics(&p)
	c.validateOAuth(&p)
	return p.warnings, errors.Join(p.errs...)
}

// problems collects what Validate finds.
type problems struct {
	errs     []error
	warnings []string
}

func (p *problems) errorf(key, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (p *problems) warnf(key, format string, args ...any) {
	p.warnings = append(p.warnings, key+": "+fmt.Sprintf(format, args...))
}

var logLevels = []string{"debug", "info", "warn", "error"}

var logFormats = []string{"text", "json"}

func (c *Config) validateTop(p *problems) {
	validateIssuer(p, c.Issuer)

	if c.Listen == "" {
		p.errorf("listen", "must be set")
	} else if _, port, err := net.SplitHostPort(c.Listen); err != nil || !validPort(port) {
		p.errorf("listen", "must be host:port, such as \"localhost:8080\" or \":8080\", not %q", c.Listen)
	}

	if c.DataDir == "" {
		p.errorf("data_dir", "must be set")
	}

	if !oneOf(c.LogLevel, logLevels...) {
		p.errorf("log_level", "must be one of %s, not %q", quoteList(logLevels), c.LogLevel)
	}
	if c.LogFormat != "" && !oneOf(c.LogFormat, logFormats...) { // "": text, for a Config built in code
		p.errorf("log_format", "must be one of %s, not %q", quoteList(logFormats), c.LogFormat)
	}

	for i, t := range c.TrustedProxies {
		pfx, err := clientip.ParsePrefix(t)
		if err != nil {
			p.errorf(fmt.Sprintf("trusted_proxies[%d]", i), "%v", err)
		} else if pfx.Bits() == 0 {
			p.warnf(fmt.Sprintf("trusted_proxies[%d]", i), "%s trusts every peer: anyone can choose the address Keyport sees for them", t)
		}
	}
	if _, err := clientip.ParseHeader(c.ClientIPHeader); err != nil {
		p.errorf("client_ip_header", "must be \"X-Forwarded-For\" or \"Forwarded\", not %q", c.ClientIPHeader)
	}
}

func validPort(s string) bool {
	n, err := strconv.Atoi(s)
	return err == nil && n >= 0 && n <= 65535 && s == strconv.Itoa(n)
}

const issuerRule = "must be an absolute https:// URL (http:// is allowed only for localhost, 127.0.0.1 and ::1)"

func validateIssuer(p *problems, issuer string) {
	if issuer == "" {
		p.errorf("issuer", "must be set: %s", issuerRule)
		return
	}
	u, err := url.Parse(issuer)
	if err != nil || u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		p.errorf("issuer", "%s, not %q", issuerRule, issuer)
		return
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !isLoopbackName(u.Hostname()) {
			p.errorf("issuer", "%s, not %q", issuerRule, issuer)
			return
		}
		p.warnf("issuer", "uses http://; fine for local testing only")
	default:
		p.errorf("issuer", "%s, not %q", issuerRule, issuer)
		return
	}
	if u.User != nil {
		p.errorf("issuer", "must not contain a user name or password")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(issuer, "#") {
		p.errorf("issuer", "must not have a query or fragment")
	}
}

// isLoopbackName reports whether host (without brackets or port) is one of
// the names for which the issuer may use http://.
func isLoopbackName(host string) bool {
	return strings.EqualFold(host, "localhost") || host == "127.0.0.1" || host == "::1"
}

// isLoopbackHost is looser than isLoopbackName: any loopback address counts,
// for warnings about http:// redirect URIs.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// issuerIsLoopback tells whether the issuer's host is a loopback one:
// localhost, a name under .localhost, or a loopback address.
func issuerIsLoopback(issuer string) bool {
	u, err := url.Parse(issuer)
	if err != nil {
		return false
	}
	host := strings.TrimSuffix(u.Hostname(), ".")
	return isLoopbackHost(host) || strings.HasSuffix(strings.ToLower(host), ".localhost")
}

func (c *Config) validateSession(p *problems) {
	s := c.Session
	if s.CookieName == "" {
		p.errorf("session.cookie_name", "must be set")
	} else if !validCookieName(s.CookieName) {
		p.errorf("session.cookie_name", "may contain only letters, digits and !#$%%&'*+-.^_`|~, not %q", s.CookieName)
	}
	positive(p, "session.lifetime", s.Lifetime)

	secureOK := true
	switch s.SecureCookie {
	case "auto", "true", "false":
	default:
		secureOK = false
		p.errorf("session.secure_cookie", "must be \"auto\", \"true\" or \"false\", not %q", s.SecureCookie)
	}
	if secureOK {
		if s.SecureCookie == "false" && issuerIsHTTPS(c.Issuer) {
			p.warnf("session.secure_cookie", "false with an https:// issuer; the session cookie will also be sent over plain http")
		}
		if !c.SecureCookie() && (strings.HasPrefix(s.CookieName, "__Host-") || strings.HasPrefix(s.CookieName, "__Secure-")) {
			p.errorf("session.cookie_name", "a name starting with __Host- or __Secure- needs a Secure cookie (https:// issuer or session.secure_cookie = \"true\")")
		}
	}

	if !oneOf(s.SameSite, "lax", "strict") {
		p.errorf("session.same_site", "must be \"lax\" or \"strict\", not %q", s.SameSite)
	}
}

// validCookieName reports whether s is an RFC 6265 cookie-name (an RFC 2616
// token).
func validCookieName(s string) bool {
	for i := 0; i < len(s); i++ {
		b := s[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0:
		default:
			return false
		}
	}
	return true
}

func (c *Config) validateTokens(p *problems) {
	t := c.Tokens
	positive(p, "tokens.code", t.Code)
	positive(p, "tokens.access", t.Access)
	positive(p, "tokens.id", t.ID)
	positive(p, "tokens.refresh", t.Refresh)
	positive(p, "tokens.refresh_idle", t.RefreshIdle)
	positive(p, "tokens.auth_request", t.AuthRequest)
	if t.Code.Duration > maxCodeLifetime {
		p.warnf("tokens.code", "%s is longer than the %s RFC 6749 recommends", t.Code, maxCodeLifetime)
	}
	if t.Refresh.Duration > 0 && t.RefreshIdle.Duration > t.Refresh.Duration {
		p.warnf("tokens.refresh_idle", "%s is longer than tokens.refresh (%s), so it never takes effect", t.RefreshIdle, t.Refresh)
	}
	if g := t.RefreshReuseGrace.Duration; g < 0 || g > maxRefreshReuseGrace {
		p.errorf("tokens.refresh_reuse_grace", "must be between 0s (off) and %s, not %s", maxRefreshReuseGrace, t.RefreshReuseGrace)
	}
}

func (c *Config) validateKeys(p *problems) {
	k := c.Keys
	if r := k.RotationPeriod.Duration; r < 0 || (r > 0 && r < minRotationPeriod) {
		p.errorf("keys.rotation_period", "must be 0 (no rotation) or at least %s, not %s", minRotationPeriod, k.RotationPeriod)
	}
	switch k.Algorithm {
	case "RS256", "ES256", "EdDSA":
	default:
		p.errorf("keys.algorithm", "must be \"RS256\", \"ES256\" or \"EdDSA\", not %q", k.Algorithm)
	}
}

func (c *Config) validateDatabase(p *problems) {
	if t := c.Database.CheckTimeout.Duration; c.Database.Check && (t < time.Second || t > 24*time.Hour) {
		p.errorf("database.check_timeout", "must be between 1s and 24h, not %s", t)
	}
}

func (c *Config) validateStorage(p *problems) {
	s := c.Storage
	switch s.Type {
	case StorageBolt:
		if s.DSN != "" {
			p.warnf("storage.dsn", "is ignored: storage.type is %q, which keeps its records in data_dir", StorageBolt)
		}
	case StoragePostgres:
		if s.DSN == "" {
			p.errorf("storage.dsn", "must be set (or storage.dsn_file, or %s) when storage.type is %q", EnvStorageDSN, StoragePostgres)
		}
	default:
		p.errorf("storage.type", "must be %q or %q, not %q", StorageBolt, StoragePostgres, s.Type)
	}
	if s.MaxConns < 2 || s.MaxConns > 1000 {
		p.errorf("storage.max_conns", "must be between 2 and 1000, not %d", s.MaxConns)
	}
}

func (c *Config) validatePassword(p *problems) {
	pw := c.Password
	if pw.MemoryKiB < minMemoryKiB {
		p.errorf("password.memory_kib", "must be at least %d (OWASP minimum), not %d", minMemoryKiB, pw.MemoryKiB)
	} else if pw.MemoryKiB > maxMemoryKiB {
		p.errorf("password.memory_kib", "must be at most %d (1 GiB), not %d", maxMemoryKiB, pw.MemoryKiB)
	}
	iterOK := between(p, "password.iterations", pw.Iterations, 1, maxIterations)
	between(p, "password.parallelism", pw.Parallelism, 1, maxParallelism)
	between(p, "password.min_length", pw.MinLength, minPasswordLength, maxPasswordLength)
	between(p, "password.min_score", pw.MinScore, 0, 4)
	if iterOK && pw.MemoryKiB >= minMemoryKiB && pw.MemoryKiB <= maxMemoryKiB &&
		pw.MemoryKiB*pw.Iterations < minMemoryTimesIterations {
		need := (minMemoryTimesIterations + pw.MemoryKiB - 1) / pw.MemoryKiB
		p.errorf("password.iterations", "must be at least %d with memory_kib = %d: OWASP asks for memory_kib * iterations >= %d (m=7168 t=5, m=9216 t=4, m=12288 t=3, m=19456 t=2)",
			need, pw.MemoryKiB, minMemoryTimesIterations)
	}
}

func (c *Config) validateLimits(p *problems) {
	l := c.Limits
	if l.MaxBodyBytes < minBodyBytes || l.MaxBodyBytes > maxBodyBytes {
		p.errorf("limits.max_body_bytes", "must be between %d and %d, not %d", minBodyBytes, maxBodyBytes, l.MaxBodyBytes)
	}
	between(p, "limits.max_login_attempts", l.MaxLoginAttempts, 1, maxLoginAttempts)
	positive(p, "limits.login_window", l.LoginWindow)
	totalOK := between(p, "limits.max_pending_sign_ins", l.MaxPendingSignIns, minPendingSignIns, maxPendingSignIns)
	perAddressOK := between(p, "limits.max_pending_sign_ins_per_address", l.MaxPendingSignInsPerAddress, 1, maxPendingSignIns)
	if totalOK && perAddressOK && l.MaxPendingSignInsPerAddress > l.MaxPendingSignIns {
		p.errorf("limits.max_pending_sign_ins_per_address", "must not be more than limits.max_pending_sign_ins (%d), not %d", l.MaxPendingSignIns, l.MaxPendingSignInsPerAddress)
	}
	between(p, "limits.max_device_authorizations_per_address", l.MaxDeviceAuthorizationsPerAddress, 1, maxDeviceAuthorizations)
	c.validateThrottle(p)
}

// validateThrottle checks the throttle keys beside max_login_attempts.
func (c *Config) validateThrottle(p *problems) {
	l := c.Limits
	between(p, "limits.max_login_attempts_per_address", l.MaxLoginAttemptsPerAddress, 0, maxLoginAttempts)
	if between(p, "limits.account_lockout_failures", l.AccountLockoutFailures, 0, maxLoginAttempts) && l.AccountLockoutFailures > 0 {
		positive(p, "limits.account_lockout_wait", l.AccountLockoutWait)
		if l.AccountLockoutMaxWait.Duration < l.AccountLockoutWait.Duration {
			p.errorf("limits.account_lockout_max_wait", "must be at least account_lockout_wait (%s), not %s", l.AccountLockoutWait, l.AccountLockoutMaxWait)
		}
		positive(p, "limits.account_lockout_reset", l.AccountLockoutReset)
	}
	between(p, "limits.password_hash_concurrency", l.PasswordHashConcurrency, 0, maxHashConcurrency)
	between(p, "limits.password_hash_queue", l.PasswordHashQueue, 0, maxHashQueue)
}

func (c *Config) validateAccounts(p *problems) {
	a := c.Accounts
	if d := a.TrustedDeviceLifetime.Duration; d < 0 || d > 400*24*time.Hour {
		p.errorf("accounts.trusted_device_lifetime", "must be between 0 (off) and 9600h (400 days), not %s", d)
	}
	if d := a.RecentAuth.Duration; d < time.Minute || d > time.Hour {
		p.errorf("accounts.recent_auth", "must be between 1m and 1h, not %s", d)
	}
}

func (c *Config) validateAudit(p *problems) {
	if d := c.Audit.Retention.Duration; d <= 0 {
		p.errorf("audit.retention", "must be more than 0 (events older than this are deleted), not %s", d)
	}
}

// maxWebhookFailures bounds webhooks.max_failures: with the outbox's
// backoff, 30 failures in a row take about the outbox's 24 hours.
const maxWebhookFailures = 1000

func (c *Config) validateWebhooks(p *problems) {
	for i, n := range c.Webhooks.AllowNetworks {
		if _, err := netip.ParsePrefix(n); err != nil {
			p.errorf(fmt.Sprintf("webhooks.allow_networks[%d]", i), "%q is not a CIDR such as \"10.0.0.0/8\"", n)
		}
	}
	if f := c.Webhooks.MaxFailures; f < 0 || f > maxWebhookFailures {
		p.errorf("webhooks.max_failures", "must be from 1 to %d (0: the default, 20)", maxWebhookFailures)
	}
}

// maxMailTimeout bounds mail.timeout: an outbox worker waits this long
// for a dead server before retrying.
const maxMailTimeout = 5 * time.Minute

func (c *Config) validateMail(p *problems) {
	m := c.Mail
	if !m.Enabled() {
		for _, k := range []struct {
			key string
			set bool
		}{
			{"mail.from", m.From != ""}, {"mail.username", m.Username != ""},
			{"mail.password", m.Password != ""}, {"mail.ca_file", m.CAFile != ""},
		} {
			if k.set {
				p.warnf(k.key, "has no effect while mail.host is not set (mail is off)")
			}
		}
		return
	}
	if !validMailHost(m.Host) {
		p.errorf("mail.host", "must be a host name or IP address without a scheme or port, such as \"smtp.example.com\", not %q", m.Host)
	}
	if m.Port < 1 || m.Port > 65535 {
		p.errorf("mail.port", "must be between 1 and 65535, not %d", m.Port)
	}
	switch m.TLS {
	case MailTLSStartTLS, MailTLSImplicit:
	case MailTLSNone:
		if !isLoopbackHost(m.Host) {
			p.errorf("mail.tls", "\"none\" is allowed only for a loopback host (localhost, 127.0.0.1, ::1), not %q: use \"starttls\" or \"implicit\"", m.Host)
		}
		if m.CAFile != "" {
			p.warnf("mail.ca_file", "has no effect with tls = \"none\"")
		}
	default:
		p.errorf("mail.tls", "must be \"starttls\", \"implicit\" or \"none\", not %q", m.TLS)
	}
	if m.From == "" {
		p.errorf("mail.from", "must be set when mail.host is: the address mail comes from, such as \"Keyport <id@example.com>\"")
	} else if _, err := mail.ParseAddress(m.From); err != nil {
		p.errorf("mail.from", "must be one RFC 5322 address, such as \"Keyport <id@example.com>\", not %q (%v)", m.From, err)
	}
	if m.Username != "" && m.Password == "" {
		p.errorf("mail.password", "must be set (or mail.password_file) when mail.username is")
	}
	if m.Username == "" && m.Password != "" {
		p.errorf("mail.username", "must be set when mail.password (or mail.password_file) is")
	}
	if m.HELO != "" && !validMailHost(m.HELO) {
		p.errorf("mail.helo", "must be a host name, not %q", m.HELO)
	}
	if d := m.Timeout.Duration; d < time.Second || d > maxMailTimeout {
		p.errorf("mail.timeout", "must be between 1s and 5m, not %s", d)
	}
}

// validMailHost accepts an IP address or a DNS name of letters, digits,
// hyphens and dots.
func validMailHost(h string) bool {
	if net.ParseIP(h) != nil {
		return true
	}
	if h == "" || len(h) > 253 || strings.HasPrefix(h, ".") || strings.HasPrefix(h, "-") {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

func (c *Config) validateHTTP(p *problems) {
	h := c.HTTP
	if d := h.HSTSMaxAge.Duration; d < 0 || (d > 0 && d < time.Second) || d > maxHSTSMaxAge {
		p.errorf("http.hsts_max_age", "must be 0 (off) or between 1s and 17520h (2 years), not %s", d)
	}
	if h.HSTSIncludeSubdomains && h.HSTSMaxAge.Duration == 0 {
		p.warnf("http.hsts_include_subdomains", "has no effect while http.hsts_max_age is 0")
	}
	if d := h.ShutdownTimeout.Duration; d < time.Second || d > maxShutdownTimeout {
		p.errorf("http.shutdown_timeout", "must be between 1s and 10m, not %s", d)
	}
}

// maxShutdownTimeout bounds http.shutdown_timeout: a supervisor kills a
// process that takes longer to stop anyway (systemd after 90s by default,
// Kubernetes after 30s).
const maxShutdownTimeout = 10 * time.Minute

func (c *Config) validateDirectories(p *problems) {
	seen := map[string]int{}
	for i, d := range c.Directories {
		key := fmt.Sprintf("directories[%d]", i)
		switch {
		case d.ID == "":
			p.errorf(key+".id", "must be set")
		case !validClientID(d.ID) || len(d.ID) > 64:
			p.errorf(key+".id", "may contain only letters, digits and . _ ~ - (at most 64), not %q", d.ID)
		}
		if first, dup := seen[d.ID]; dup && d.ID != "" {
			p.errorf(key+".id", "duplicate: %q is also the id of directories[%d]", d.ID, first)
		} else {
			seen[d.ID] = i
		}
		d.warnOtherTypesKeys(p, key)
		if d.Type == "oidc" {
			if !strings.HasPrefix(d.Issuer, "https://") && !strings.HasPrefix(d.Issuer, "http://localhost") && !strings.HasPrefix(d.Issuer, "http://127.0.0.1") {
				p.errorf(key+".issuer", "must be an https:// URL (http:// only for localhost), not %q", d.Issuer)
			}
			if d.ClientID == "" {
				p.errorf(key+".client_id", "must be set")
			}
			continue
		}
		if d.Type != "ldap" {
			p.errorf(key+".type", "must be \"ldap\" or \"oidc\", not %q", d.Type)
			continue
		}
		if !strings.HasPrefix(d.URL, "ldap://") && !strings.HasPrefix(d.URL, "ldaps://") {
			p.errorf(key+".url", "must start with ldap:// or ldaps://, not %q", d.URL)
		}
		if d.StartTLS && strings.HasPrefix(d.URL, "ldaps://") {
			p.errorf(key+".start_tls", "not with ldaps://, which is TLS already")
		}
		if d.UserBaseDN == "" {
			p.errorf(key+".user_base_dn", "must be set")
		}
		if d.BindDN != "" && d.BindPassword == "" {
			p.errorf(key+".bind_password", "must be set (or bind_password_file) when bind_dn is")
		}
		if d.InsecureSkipVerify {
			p.warnf(key+".insecure_skip_verify", "TLS certificates are not checked; use it for tests only")
		}
		if d.SyncInterval.Duration < time.Minute && d.SyncInterval.Duration != 0 {
			p.errorf(key+".sync_interval", "must be at least 1m, not %s", d.SyncInterval.Duration)
		}
		if d.PageSize < 0 || d.PageSize > 10000 {
			p.errorf(key+".page_size", "must be between 0 (default) and 10000, not %d", d.PageSize)
		}
	}
}

// warnOtherTypesKeys warns about keys that only other directory types
// take: they would be ignored without a word. The keys come from the
// source registry, so a new type or setting is covered without a list
// here. A key counts as set when it is neither zero nor the default Load
// fills in when it is left out (timeout, sync_interval).
func (d Directory) warnOtherTypesKeys(p *problems, key string) {
	own, err := sources.Lookup(d.Type)
	if err != nil {
		return // validateDirectories reports the type
	}
	ownKeys := own.Keys()
	omitted := Directory{ID: d.ID, Type: d.Type}
	omitted.fillDefaults()
	set, absent := reflect.ValueOf(d), reflect.ValueOf(omitted)
	warned := map[string]bool{}
	for _, t := range sources.Types() {
		for _, k := range t.Keys() {
			if slices.Contains(ownKeys, k) || warned[k] {
				continue
			}
			i, ok := directoryFields[k]
			if ok && !set.Field(i).IsZero() && !reflect.DeepEqual(set.Field(i).Interface(), absent.Field(i).Interface()) {
				warned[k] = true
			}
		}
	}
	for _, k := range slices.Sorted(maps.Keys(warned)) {
		p.warnf(key+"."+k, "has no effect for type = %q", d.Type)
	}
}

// directoryFields indexes Directory's fields by config.toml key.
var directoryFields = func() map[string]int {
	fields := map[string]int{}
	t := reflect.TypeFor[Directory]()
	for i := range t.NumField() {
		fields[t.Field(i).Tag.Get("toml")] = i
	}
	return fields
}()

var grantTypes = []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode, GrantTokenExchange}

func (c *Config) validateClients(p *problems) {
	seen := make(map[string]int, len(c.Clients))
	for i, cl := range c.Clients {
		key := fmt.Sprintf("clients[%d]", i)

		switch {
		case cl.ID == "":
			p.errorf(key+".id", "must be set")
		case len(cl.ID) > maxClientIDLength:
			p.errorf(key+".id", "must be at most %d characters", maxClientIDLength)
		case !validClientID(cl.ID):
			p.errorf(key+".id", "may contain only letters, digits and . _ ~ -, not %q", cl.ID)
		}
		if cl.ID != "" {
			if first, dup := seen[cl.ID]; dup {
				p.errorf(key+".id", "duplicate: %q is also the id of clients[%d]", cl.ID, first)
			} else {
				seen[cl.ID] = i
			}
		}

		if cl.Public {
			if cl.Secret != "" || cl.SecretFile != "" {
				p.errorf(key+".secret", "must not be set for a public client")
			}
		} else if cl.Secret == "" {
			// An app that signs its assertions with its own key has no
			// use for a secret; it cannot authenticate with one either.
			if cl.SecretFile == "" && cl.TokenEndpointAuthMethod != authPrivateKeyJWT {
				p.errorf(key+".secret", "must be set (or secret_file) for a confidential client; set public = true for apps that cannot keep a secret")
			}
			// With secret_file set, Load has already reported why it could
			// not read it.
		} else if len(cl.Secret) < minClientSecretLength {
			sk := key + ".secret"
			if cl.SecretFile != "" {
				sk = key + ".secret_file"
			}
			p.errorf(sk, "must be at least %d characters", minClientSecretLength)
		}

		if len(cl.GrantTypes) == 0 {
			p.errorf(key+".grant_types", "must list at least one of %s", quoteList(grantTypes))
		}
		grants := make(map[string]bool, len(cl.GrantTypes))
		for j, g := range cl.GrantTypes {
			gk := fmt.Sprintf("%s.grant_types[%d]", key, j)
			switch {
			case !oneOf(g, grantTypes...):
				p.errorf(gk, "unknown grant type %q; must be one of %s", g, quoteList(grantTypes))
			case grants[g]:
				p.errorf(gk, "duplicate %q", g)
			}
			grants[g] = true
		}
		if cl.Public && grants[GrantClientCredentials] {
			p.errorf(key+".grant_types", "a public client may not use %q", GrantClientCredentials)
		}
		if grants[GrantRefreshToken] && !grants[GrantAuthorizationCode] && !grants[GrantDeviceCode] {
			p.errorf(key+".grant_types", "%q needs %q or %q", GrantRefreshToken, GrantAuthorizationCode, GrantDeviceCode)
		}
		if grants[GrantDeviceCode] && !c.OAuth.DeviceFlow {
			p.errorf(key+".grant_types", "%q needs oauth.device_flow = true", GrantDeviceCode)
		}
		if grants[GrantTokenExchange] && !c.OAuth.TokenExchange {
			p.errorf(key+".grant_types", "%q needs oauth.token_exchange = true", GrantTokenExchange)
		}
		c.validateClientFeatures(p, key, cl)
		validateTokenExchange(p, key, cl, grants)
		if grants[GrantAuthorizationCode] && len(cl.RedirectURIs) == 0 {
			p.errorf(key+".redirect_uris", "must list at least one URI for %q", GrantAuthorizationCode)
		}

		for j, u := range cl.RedirectURIs {
			validateRedirectURI(p, fmt.Sprintf("%s.redirect_uris[%d]", key, j), u)
		}
		for j, u := range cl.PostLogoutRedirectURIs {
			validateRedirectURI(p, fmt.Sprintf("%s.post_logout_redirect_uris[%d]", key, j), u)
		}
		switch cl.IDTokenSignedResponseAlg {
		case "", "RS256", "ES256", "EdDSA":
		default:
			p.errorf(key+".id_token_signed_response_alg", "must be \"RS256\", \"ES256\", \"EdDSA\" or empty ([keys] algorithm), not %q", cl.IDTokenSignedResponseAlg)
		}
		switch cl.UserinfoSignedResponseAlg {
		case "", "RS256", "ES256", "EdDSA":
		default:
			p.errorf(key+".userinfo_signed_response_alg", "must be \"RS256\", \"ES256\", \"EdDSA\" or empty (plain JSON), not %q", cl.UserinfoSignedResponseAlg)
		}
		validateClientAuthMethod(p, key, cl)
		if cl.RequireSignedRequestObject && cl.JWKS == "" && cl.JWKSURI == "" && cl.TokenEndpointAuthMethod != "client_secret_jwt" {
			p.errorf(key+".require_signed_request_object", "needs the app's keys: jwks or jwks_uri (or token_endpoint_auth_method = \"client_secret_jwt\")")
		}
	}
}

// Client authentication methods (RFC 7591 token_endpoint_auth_method).
const authPrivateKeyJWT = "private_key_jwt"

var authMethods = []string{"client_secret_basic", "client_secret_post", "client_secret_jwt", authPrivateKeyJWT, "none"}

// validateClientAuthMethod checks a client's token_endpoint_auth_method,
// jwks and jwks_uri as far as the file goes; the keys themselves are
// checked when the clients are built (account.BuildClient).
func validateClientAuthMethod(p *problems, key string, cl Client) {
	m := cl.TokenEndpointAuthMethod
	switch {
	case m != "" && !oneOf(m, authMethods...):
		p.errorf(key+".token_endpoint_auth_method", "unknown method %q; must be one of %s", m, quoteList(authMethods))
	case m == "none" && !cl.Public:
		p.errorf(key+".token_endpoint_auth_method", "\"none\" is for public clients (public = true)")
	case cl.Public && m != "" && m != "none":
		p.errorf(key+".token_endpoint_auth_method", "a public client has no credentials; use \"none\" or leave it unset")
	case m == authPrivateKeyJWT && cl.JWKS == "" && cl.JWKSURI == "":
		p.errorf(key+".jwks", "private_key_jwt needs the app's public keys: set jwks or jwks_uri")
	}
	if cl.JWKS != "" && cl.JWKSURI != "" {
		p.errorf(key+".jwks", "set either jwks or jwks_uri, not both")
	}
	if cl.JWKS != "" && !json.Valid([]byte(cl.JWKS)) {
		p.errorf(key+".jwks", "must be a JWK Set in JSON, such as {\"keys\": [...]}")
	}
	if cl.JWKSURI != "" {
		if u, err := url.Parse(cl.JWKSURI); err != nil || !u.IsAbs() || u.Host == "" ||
			(u.Scheme != "https" && !(u.Scheme == "http" && isLoopbackName(u.Hostname()))) {
			p.errorf(key+".jwks_uri", "must be an absolute https URL (http only on 127.0.0.1, [::1] or localhost)")
		}
	}
}

// validClientID reports whether id uses only URL-unreserved characters.
func validClientID(id string) bool {
	for i := 0; i < len(id); i++ {
		b := id[i]
		switch {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case b == '.', b == '_', b == '~', b == '-':
		default:
			return false
		}
	}
	return true
}

// validateRedirectURI checks one entry of redirect_uris or
// post_logout_redirect_uris. Private-use schemes of native apps
// ("com.example.app:/callback", RFC 8252) are allowed.
func validateRedirectURI(p *problems, key, s string) {
	if s == "" {
		p.errorf(key, "must not be empty")
		return
	}
	u, err := url.Parse(s)
	if err != nil {
		p.errorf(key, "not a valid URL: %q", s)
		return
	}
	if !u.IsAbs() {
		p.errorf(key, "must be an absolute URL, not %q", s)
		return
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		p.errorf(key, "must not contain a fragment (#): %q", s)
	}
	if strings.Contains(s, "*") {
		p.errorf(key, "wildcards are not supported: %q", s)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		if u.Hostname() == "" {
			p.errorf(key, "must have a host: %q", s)
		}
	case "http":
		if u.Hostname() == "" {
			p.errorf(key, "must have a host: %q", s)
		} else if !isLoopbackHost(u.Hostname()) {
			p.warnf(key, "uses http:// on a host other than localhost; anyone on the network path can intercept what is sent there")
		}
	case "javascript", "data", "file", "vbscript":
		p.errorf(key, "the %s: scheme is not allowed: %q", strings.ToLower(u.Scheme), s)
	}
}

func positive(p *problems, key string, d Duration) {
	if d.Duration <= 0 {
		p.errorf(key, "must be positive, not %s", d)
	}
}

func between(p *problems, key string, v, lo, hi int) bool {
	if v < lo || v > hi {
		p.errorf(key, "must be between %d and %d, not %d", lo, hi, v)
		return false
	}
	return true
}

func oneOf(s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	return false
}

func quoteList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// validateMetrics checks the [metrics] table. The listener must differ
// from the public one: /metrics never answers there.
func (c *Config) validateMetrics(p *problems) {
	l := c.Metrics.Listen
	if l == "" {
		if c.Metrics.Profiling {
			p.errorf("metrics.profiling", "needs metrics.listen: the profiles are served on the metrics listener")
		}
		return
	}
	host, port, err := net.SplitHostPort(l)
	if err != nil || !validPort(port) {
		p.errorf("metrics.listen", "must be host:port, such as \"127.0.0.1:9090\", or \"\" (off), not %q", l)
		return
	}
	if l == c.Listen && port != "0" {
		p.errorf("metrics.listen", "must differ from listen (%q): metrics are never served on the public listener", c.Listen)
		return
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && !ip.IsLoopback()) && host != "localhost" {
		p.warnf("metrics.listen", "%s is reachable from other machines: the metrics show traffic and sign-in counts; prefer a loopback or internal address", l)
		if c.Metrics.Profiling {
			p.warnf("metrics.profiling", "serves Go's profiles, unauthenticated, on %s, reachable from other machines: anyone there can run CPU profiles and execution traces (load on the server) and read goroutine stacks and the command line; prefer a loopback address", l)
		}
	}
}

// Bounds of the device flow's timing ([oauth]).
const (
	// maxDeviceAuthorizations is storage.MaxDeviceAuthorizations, the
	// most the store holds: a per-address limit above it means nothing.
	maxDeviceAuthorizations = 10000

	minDeviceCodeLifetime = time.Minute
	maxDeviceCodeLifetime = time.Hour
	minDevicePollInterval = time.Second
	maxDevicePollInterval = time.Minute
)

func (c *Config) validateOAuth(p *problems) {
	o := c.OAuth
	if o.RequirePushedAuthorizationRequests && !o.PushedAuthorizationRequests {
		p.errorf("oauth.require_pushed_authorization_requests", "needs oauth.pushed_authorization_requests = true")
	}
	if d := o.DeviceCodeLifetime.Duration; d < minDeviceCodeLifetime || d > maxDeviceCodeLifetime {
		p.errorf("oauth.device_code_lifetime", "must be between %s and %s, not %s", minDeviceCodeLifetime, maxDeviceCodeLifetime, o.DeviceCodeLifetime)
	}
	if d := o.DevicePollInterval.Duration; d < minDevicePollInterval || d > maxDevicePollInterval || d%time.Second != 0 {
		p.errorf("oauth.device_poll_interval", "must be whole seconds between %s and %s, not %s", minDevicePollInterval, maxDevicePollInterval, o.DevicePollInterval)
	}
}

// validateClientFeatures refuses the settings of [[clients]] entry key that
// need an [oauth] feature that is off: the app could not sign in, or
// would not get what it asked for.
func (c *Config) validateClientFeatures(p *problems, key string, cl Client) {
	o := c.OAuth
	if cl.RequirePushedAuthorizationRequests && !o.PushedAuthorizationRequests {
		p.errorf(key+".require_pushed_authorization_requests", "needs oauth.pushed_authorization_requests = true")
	}
	if cl.RequireSignedRequestObject && !o.RequestObjects {
		p.errorf(key+".require_signed_request_object", "needs oauth.request_objects = true")
	}
	if cl.DPoPBoundAccessTokens && !o.DPoP {
		p.errorf(key+".dpop_bound_access_tokens", "needs oauth.dpop = true")
	}
	if cl.RequireDPoPNonce && !o.DPoP {
		p.errorf(key+".require_dpop_nonce", "needs oauth.dpop = true")
	}
	if cl.SubjectType == "pairwise" && !o.PairwiseSubjects {
		p.errorf(key+".subject_type", "\"pairwise\" needs oauth.pairwise_subjects = true")
	}
}

// validateClientAuth checks [client_auth].
func (c *Config) validateClientAuth(p *problems) {
	for i, n := range c.ClientAuth.JWKSAllowNetworks {
		if _, err := netip.ParsePrefix(strings.TrimSpace(n)); err != nil {
			p.errorf(fmt.Sprintf("client_auth.jwks_allow_networks[%d]", i), "%q is not a CIDR such as \"10.0.0.0/8\"", n)
		}
	}
}
