// Package ldap is a directory source on an LDAP server (RFC 4511): users are
// found with a service account and checked by binding as them.
package ldap

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	goldap "github.com/go-ldap/ldap/v3"

	"github.com/keyport/keyport/directory"
)

// Config describes one LDAP source. The toml tags are the keys of a
// [[directories]] table in config.toml; stored directories keep the Go
// field names as JSON keys.
type Config struct {
	ID   string `toml:"id"`
	Name string `toml:"name"`

	URL                string `toml:"url"` // ldap://host:389 or ldaps://host:636
	StartTLS           bool   `toml:"start_tls"`
	CACertFile         string `toml:"ca_cert_file"`         // PEM; empty uses the system roots
	InsecureSkipVerify bool   `toml:"insecure_skip_verify"` // for tests only
	BindDN             string `toml:"bind_dn"`
	BindPassword       string `toml:"bind_password"`

	UserBaseDN      string   `toml:"user_base_dn"`
	UserFilter      string   `toml:"user_filter"`      // e.g. (objectClass=inetOrgPerson)
	LoginAttributes []string `toml:"login_attributes"` // e.g. uid, mail
	// DisabledFilter matches users the directory marks disabled, e.g.
	// (pwdAccountLockedTime=*); empty means none are.
	DisabledFilter string `toml:"disabled_filter"`

	// Attribute mapping; empty values use the defaults.
	IDAttribute          string `toml:"id_attribute"`           // entryUUID
	UsernameAttribute    string `toml:"username_attribute"`     // uid
	EmailAttribute       string `toml:"email_attribute"`        // mail
	GivenNameAttribute   string `toml:"given_name_attribute"`   // givenName
	FamilyNameAttribute  string `toml:"family_name_attribute"`  // sn
	DisplayNameAttribute string `toml:"display_name_attribute"` // displayName (cn when empty)
	PhoneAttribute       string `toml:"phone_attribute"`        // mobile
	PictureAttribute     string `toml:"picture_attribute"`      // jpegPhoto

	GroupBaseDN     string `toml:"group_base_dn"`
	GroupFilter     string `toml:"group_filter"`         // e.g. (objectClass=groupOfNames)
	MemberAttribute string `toml:"member_attribute"`     // member, uniqueMember (DN) or memberUid (username)
	GroupNameAttr   string `toml:"group_name_attribute"` // cn

	// HandlesSecondFactor: the directory's own sign-in enforces second
	// factors, so Keyport offers its users no enrolment.
	HandlesSecondFactor bool `toml:"handles_second_factor"`

	PageSize int           `toml:"page_size"`
	Timeout  time.Duration `toml:"timeout"` // per operation; default 5s
	PoolSize int           `toml:"-"`       // service-account connections kept open; default 4
}

var _ directory.Settings = (*Config)(nil)

// Secret is the bind password: sealed when stored.
func (c *Config) Secret() *string { return &c.BindPassword }

// Build is Open for the directory registry: the source gets env's ID.
func (c *Config) Build(env directory.Env) (directory.Source, error) {
	c.ID = env.ID
	src, err := c.Open()
	if err != nil {
		return nil, err
	}
	return src, nil
}

// Source is an LDAP directory source.
type Source struct {
	cfg  Config
	tls  *tls.Config
	pool chan *goldap.Conn
}

var _ directory.PasswordSource = (*Source)(nil)
var _ directory.Lister = (*Source)(nil)

// Open validates the configuration and returns the source. It does not
// connect: a directory that is down at start-up must not stop Keyport.
func (c Config) Open() (*Source, error) {
	var problems []directory.Problem
	bad := func(key, msg string) { problems = append(problems, directory.Problem{Key: key, Message: msg}) }
	u, err := url.Parse(c.URL)
	if c.ID == "" {
		bad("id", "must be set")
	}
	if err != nil || (u.Scheme != "ldap" && u.Scheme != "ldaps") || u.Host == "" {
		bad("url", "must be ldap://host[:port] or ldaps://host[:port]")
	}
	if c.StartTLS && u != nil && u.Scheme == "ldaps" {
		bad("start_tls", "not with ldaps://, which is TLS already")
	}
	if c.UserBaseDN == "" {
		bad("user_base_dn", "must be set")
	}
	if c.UserFilter != "" {
		if _, err := goldap.CompileFilter(c.UserFilter); err != nil {
			bad("user_filter", err.Error())
		}
	}
	if c.GroupFilter != "" {
		if _, err := goldap.CompileFilter(c.GroupFilter); err != nil {
			bad("group_filter", err.Error())
		}
	}
	if len(problems) > 0 {
		return nil, &directory.SettingsError{Type: "ldap", ID: c.ID, Problems: problems}
	}
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&c.Name, c.ID)
	def(&c.UserFilter, "(objectClass=inetOrgPerson)")
	def(&c.IDAttribute, "entryUUID")
	def(&c.UsernameAttribute, "uid")
	def(&c.EmailAttribute, "mail")
	def(&c.GivenNameAttribute, "givenName")
	def(&c.FamilyNameAttribute, "sn")
	def(&c.DisplayNameAttribute, "displayName")
	def(&c.PhoneAttribute, "mobile")
	def(&c.PictureAttribute, "jpegPhoto")
	def(&c.MemberAttribute, "member")
	def(&c.GroupNameAttr, "cn")
	if len(c.LoginAttributes) == 0 {
		c.LoginAttributes = []string{c.UsernameAttribute}
	}
	if c.Timeout <= 0 {
		c.Timeout = 5 * time.Second
	}
	if c.PoolSize <= 0 {
		c.PoolSize = 4
	}
	if c.PageSize <= 0 {
		c.PageSize = 500
	}
	s := &Source{cfg: c, pool: make(chan *goldap.Conn, c.PoolSize)}
	s.tls = &tls.Config{ServerName: u.Hostname(), InsecureSkipVerify: c.InsecureSkipVerify, MinVersion: tls.VersionTLS12} // #nosec G402 -- only when configured, for tests
	if c.CACertFile != "" {
		pem, err := os.ReadFile(c.CACertFile)
		if err != nil {
			return nil, fmt.Errorf("ldap source %q: ca_cert_file: %w", c.ID, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ldap source %q: ca_cert_file: no PEM certificate in %s", c.ID, c.CACertFile)
		}
		s.tls.RootCAs = pool
	}
	return s, nil
}

func (s *Source) ID() string   { return s.cfg.ID }
func (s *Source) Name() string { return s.cfg.Name }

// Capabilities: LDAP owns the identity fields it maps.
func (s *Source) Capabilities() directory.Capabilities {
	owned := []string{"given_name", "family_name", "name", "email", "phone_number", "picture"}
	return directory.Capabilities{Provider: "ldap", OwnedFields: owned, Groups: s.cfg.GroupBaseDN != "", SecondFactor: s.cfg.HandlesSecondFactor}
}

// stepError wraps a failure with the step that failed and the server's
// message, as "test connection" reports it.
func stepError(step string, err error) error {
	return fmt.Errorf("%w: %s: %v", directory.ErrUnavailable, step, err)
}

// dial opens a connection, with TLS as configured.
func (s *Source) dial(ctx context.Context) (*goldap.Conn, error) {
	d := &net.Dialer{Timeout: s.cfg.Timeout}
	conn, err := goldap.DialURL(s.cfg.URL, goldap.DialWithDialer(d), goldap.DialWithTLSConfig(s.tls))
	if err != nil {
		var le *goldap.Error
		if errors.As(err, &le) && strings.Contains(strings.ToLower(le.Error()), "tls") {
			return nil, stepError("TLS", err)
		}
		return nil, stepError("dial", err)
	}
	conn.SetTimeout(s.cfg.Timeout)
	if s.cfg.StartTLS {
		if err := conn.StartTLS(s.tls); err != nil {
			conn.Close()
			return nil, stepError("StartTLS", err)
		}
	}
	return conn, nil
}

// service returns a connection bound as the service account, from the pool
// when one is there, so a burst of sign-ins does not dial for each.
func (s *Source) service(ctx context.Context) (*goldap.Conn, error) {
	select {
	case c := <-s.pool:
		if !c.IsClosing() {
			return c, nil
		}
		c.Close()
	default:
	}
	return s.freshService(ctx)
}

// freshService dials and binds as the service account, never from the
// pool.
func (s *Source) freshService(ctx context.Context) (*goldap.Conn, error) {
	c, err := s.dial(ctx)
	if err != nil {
		return nil, err
	}
	if s.cfg.BindDN != "" {
		if err := c.Bind(s.cfg.BindDN, s.cfg.BindPassword); err != nil {
			c.Close()
			return nil, stepError("bind as the service account", err)
		}
	}
	return c, nil
}

// release returns a healthy service connection to the pool.
func (s *Source) release(c *goldap.Conn, healthy bool) {
	if !healthy || c.IsClosing() {
		c.Close()
		return
	}
	select {
	case s.pool <- c:
	default:
		c.Close()
	}
}

// Close closes the pooled connections.
func (s *Source) Close() {
	for {
		select {
		case c := <-s.pool:
			c.Close()
		default:
			return
		}
	}
}

func (s *Source) attributes() []string {
	a := []string{s.cfg.IDAttribute, s.cfg.UsernameAttribute, s.cfg.EmailAttribute, s.cfg.GivenNameAttribute, s.cfg.FamilyNameAttribute,
		s.cfg.DisplayNameAttribute, "cn", s.cfg.PhoneAttribute, s.cfg.PictureAttribute}
	return slices.Compact(a)
}

// userFilter builds the search for a login name. Every input is escaped
// (RFC 4515), so "*", ")(uid=*" or NUL bytes are matched literally.
func (s *Source) userFilter(login string) string {
	var alts strings.Builder
	for _, attr := range s.cfg.LoginAttributes {
		fmt.Fprintf(&alts, "(%s=%s)", attr, goldap.EscapeFilter(login))
	}
	if len(s.cfg.LoginAttributes) > 1 {
		return fmt.Sprintf("(&%s(|%s))", s.cfg.UserFilter, alts.String())
	}
	return fmt.Sprintf("(&%s%s)", s.cfg.UserFilter, alts.String())
}

func (s *Source) search(c *goldap.Conn, base, filter string, attrs []string, sizeLimit int) ([]*goldap.Entry, error) {
	req := goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, sizeLimit, int(s.cfg.Timeout.Seconds()), false, filter, attrs, nil)
	if sizeLimit == 0 {
		res, err := c.SearchWithPaging(req, uint32(s.cfg.PageSize))
		if err != nil {
			return nil, err
		}
		return res.Entries, nil
	}
	res, err := c.Search(req)
	if err != nil {
		return nil, err
	}
	return res.Entries, nil
}

// Login finds the user with the service account and checks the password by
// binding as them on a connection of their own. Hashes are never compared.
func (s *Source) Login(ctx context.Context, username, password string) (directory.Identity, error) {
	// An empty password would be an unauthenticated bind (RFC 4513 §5.1.2),
	// which many servers accept: refuse it before any bind.
	if password == "" || username == "" || len(username) > 256 || len(password) > 1024 {
		return directory.Identity{}, directory.ErrInvalidCredentials
	}
	entry, err := s.find(ctx, s.userFilter(username))
	if err != nil {
		return directory.Identity{}, err
	}
	uc, err := s.dial(ctx)
	if err != nil {
		return directory.Identity{}, err
	}
	defer uc.Close()
	if err := uc.Bind(entry.DN, password); err != nil {
		if goldap.IsErrorWithCode(err, goldap.LDAPResultInvalidCredentials) {
			return directory.Identity{}, directory.ErrInvalidCredentials
		}
		return directory.Identity{}, stepError("bind as the user", err)
	}
	_ = uc.Unbind()
	id := s.identity(entry)
	if disabled, err := s.isDisabled(ctx, entry.DN); err != nil {
		return directory.Identity{}, err
	} else if disabled {
		return directory.Identity{}, directory.ErrDisabled
	}
	if err := s.addGroups(ctx, &id, entry.DN); err != nil {
		return directory.Identity{}, err
	}
	return id, nil
}

// find returns the one entry a filter matches; none (or several, which
// would be ambiguous) is ErrInvalidCredentials.
func (s *Source) find(ctx context.Context, filter string) (*goldap.Entry, error) {
	c, err := s.service(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.search(c, s.cfg.UserBaseDN, filter, s.attributes(), 2)
	if err != nil && !goldap.IsErrorWithCode(err, goldap.LDAPResultSizeLimitExceeded) {
		s.release(c, false)
		return nil, stepError("search", err)
	}
	s.release(c, true)
	if len(entries) != 1 {
		return nil, directory.ErrInvalidCredentials
	}
	return entries[0], nil
}

func (s *Source) isDisabled(ctx context.Context, dn string) (bool, error) {
	if s.cfg.DisabledFilter == "" {
		return false, nil
	}
	c, err := s.service(ctx)
	if err != nil {
		return false, err
	}
	req := goldap.NewSearchRequest(dn, goldap.ScopeBaseObject, goldap.NeverDerefAliases, 1, int(s.cfg.Timeout.Seconds()), false, s.cfg.DisabledFilter, []string{"dn"}, nil)
	res, err := c.Search(req)
	if err != nil {
		s.release(c, false)
		return false, stepError("search", err)
	}
	s.release(c, true)
	return len(res.Entries) > 0, nil
}

func (s *Source) identity(e *goldap.Entry) directory.Identity {
	get := func(a string) string { return strings.TrimSpace(e.GetAttributeValue(a)) }
	id := directory.Identity{
		ID:          get(s.cfg.IDAttribute),
		Username:    get(s.cfg.UsernameAttribute),
		Email:       get(s.cfg.EmailAttribute),
		GivenName:   get(s.cfg.GivenNameAttribute),
		FamilyName:  get(s.cfg.FamilyNameAttribute),
		DisplayName: get(s.cfg.DisplayNameAttribute),
		PhoneNumber: get(s.cfg.PhoneAttribute),
		Picture:     e.GetRawAttributeValue(s.cfg.PictureAttribute),
	}
	if id.ID == "" {
		id.ID = e.DN // a directory without the ID attribute: the DN, which changes on rename
	}
	if id.DisplayName == "" {
		id.DisplayName = get("cn")
	}
	// The directory is the authority for its addresses.
	id.EmailVerified = id.Email != ""
	return id
}

func (s *Source) addGroups(ctx context.Context, id *directory.Identity, dn string) error {
	if s.cfg.GroupBaseDN == "" {
		return nil
	}
	member := dn
	if strings.EqualFold(s.cfg.MemberAttribute, "memberUid") {
		member = id.Username
	}
	filter := fmt.Sprintf("(%s=%s)", s.cfg.MemberAttribute, goldap.EscapeFilter(member))
	if s.cfg.GroupFilter != "" {
		filter = fmt.Sprintf("(&%s%s)", s.cfg.GroupFilter, filter)
	}
	c, err := s.service(ctx)
	if err != nil {
		return err
	}
	entries, err := s.search(c, s.cfg.GroupBaseDN, filter, []string{s.cfg.GroupNameAttr}, 0)
	if err != nil {
		s.release(c, false)
		return stepError("search groups", err)
	}
	s.release(c, true)
	for _, e := range entries {
		if n := e.GetAttributeValue(s.cfg.GroupNameAttr); n != "" {
			id.Groups = append(id.Groups, n)
		}
	}
	slices.Sort(id.Groups)
	return nil
}

// Users lists every user the filter finds, with groups (for sync).
func (s *Source) Users(ctx context.Context) ([]directory.Identity, error) {
	return s.users(ctx, s.service)
}

// users lists the directory's users over a service connection from
// connect.
func (s *Source) users(ctx context.Context, connect func(context.Context) (*goldap.Conn, error)) ([]directory.Identity, error) {
	c, err := connect(ctx)
	if err != nil {
		return nil, err
	}
	entries, err := s.search(c, s.cfg.UserBaseDN, s.cfg.UserFilter, s.attributes(), 0)
	if err != nil {
		s.release(c, false)
		return nil, stepError("search", err)
	}
	disabled := map[string]bool{}
	if s.cfg.DisabledFilter != "" {
		// One search for the disabled ones, not one per user.
		off, err := s.search(c, s.cfg.UserBaseDN, fmt.Sprintf("(&%s%s)", s.cfg.UserFilter, s.cfg.DisabledFilter), []string{"dn"}, 0)
		if err != nil {
			s.release(c, false)
			return nil, stepError("search disabled users", err)
		}
		for _, e := range off {
			disabled[e.DN] = true
		}
	}
	s.release(c, true)
	out := make([]directory.Identity, 0, len(entries))
	for _, e := range entries {
		id := s.identity(e)
		id.Disabled = disabled[e.DN]
		if err := s.addGroups(ctx, &id, e.DN); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, nil
}

// Lookup finds a user by the ID attribute.
func (s *Source) Lookup(ctx context.Context, id string) (directory.Identity, error) {
	entry, err := s.find(ctx, fmt.Sprintf("(&%s(%s=%s))", s.cfg.UserFilter, s.cfg.IDAttribute, goldap.EscapeFilter(id)))
	if err != nil {
		return directory.Identity{}, err
	}
	if disabled, err := s.isDisabled(ctx, entry.DN); err != nil {
		return directory.Identity{}, err
	} else if disabled {
		return directory.Identity{}, directory.ErrDisabled
	}
	ident := s.identity(entry)
	return ident, s.addGroups(ctx, &ident, entry.DN)
}

// Test checks dial, TLS and the service bind, counts the users the filter
// finds and maps a sample; the error names the failing step.
//
// It dials a connection of its own: a pooled one would skip the very
// steps it checks, and one the server dropped a moment ago (a restart)
// fails with a network error that names no step.
func (s *Source) Test(ctx context.Context) (directory.TestReport, error) {
	users, err := s.users(ctx, s.freshService)
	if err != nil {
		return directory.TestReport{}, err
	}
	rep := directory.TestReport{Users: len(users)}
	if len(users) > 0 {
		rep.Sample = &users[0]
	}
	return rep, nil
}
