package account

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// Grant types a client may be registered for.
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
	// GrantDeviceCode is the device authorization grant (RFC 8628); it
	// works while [oauth] device_flow is on.
	GrantDeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
)

// GrantTokenExchange is OAuth 2.0 Token Exchange (RFC 8693): a confidential
// app trades a user's access token (or an app password limited to it) for
// an access token for another audience.
const GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"

// MaxTokenExchangeAudiences bounds an app's TokenExchangeAudiences.
const MaxTokenExchangeAudiences = 32

var clientIDPattern = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,128}$`)

// MinClientSecretLength is the shortest secret an admin may choose.
const MinClientSecretLength = 16

// ClientScopes are the scopes the provider supports, and so the ones an
// app may be limited to (storage.Client.AllowedScopes).
var ClientScopes = []string{"openid", "profile", "email", "phone", "offline_access", "groups"}

// Bounds of what an admin may set on an app. Access and ID tokens live at
// most MaxClientTokenLifetime: retired signing keys stay published that
// long, so every token they signed can still be verified.
const (
	MinClientTokenLifetime   = time.Minute
	MaxClientTokenLifetime   = 24 * time.Hour
	MinClientRefreshLifetime = 5 * time.Minute
	MaxClientRefreshLifetime = 365 * 24 * time.Hour
	// MaxSecretGrace is the longest the previous secret stays valid after
	// a rotation.
	MaxSecretGrace = 30 * 24 * time.Hour

	MaxClientNameLength  = 128
	MaxClientURIs        = 20 // redirect URIs, and post-logout URIs apart
	MaxClientURILength   = 2048
	MaxClientGroups      = 64
	MaxClientGroupLength = 128
)

// NewClient is what it takes to register an application.
type NewClient struct {
	ID                     string
	Name                   string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	GrantTypes             []string // default: authorization_code, refresh_token
	Public                 bool
	AccessTokenJWT         bool
	SkipConsent            bool
	Secret                 string // empty: generate one (confidential clients)

	AllowedGroups        []string // empty: every user may sign in
	AllowedScopes        []string // empty: every scope in ClientScopes
	AccessTokenLifetime  time.Duration
	IDTokenLifetime      time.Duration
	RefreshTokenLifetime time.Duration

	// Logout to the app (storage.Client's fields of the same names).
	FrontchannelLogoutURI             string
	FrontchannelLogoutSessionRequired bool
	BackchannelLogoutURI              string
	BackchannelLogoutSessionRequired  bool

	// Client authentication (storage.Client's fields of the same names).
	TokenEndpointAuthMethod string
	JWKS                    json.RawMessage
	JWKSURI                 string
	// RequirePushedAuthorizationRequests: see storage.Client.
	RequirePushedAuthorizationRequests bool
	// IDTokenSignedResponseAlg: "" for the server's [keys] algorithm.
	IDTokenSignedResponseAlg string
	// UserinfoSignedResponseAlg: "" for plain JSON at userinfo.
	UserinfoSignedResponseAlg string
	// TokenExchangeAudiences (storage.Client's field of the same name).
	TokenExchangeAudiences []string

	// RequireSignedRequestObject: see storage.Client.
	RequireSignedRequestObject bool

	// DPoP (RFC 9449): see storage.Client.
	DPoPBoundAccessTokens bool
	RequireDPoPNonce      bool

	// CustomClaims: see storage.Client (customclaims.go).
	CustomClaims []storage.ClaimMapping

	// Resource indicators (RFC 8707): storage.Client.Resources.
	Resources []string

	// Pairwise subjects (storage.Client's fields of the same names):
	// SubjectType "public" (or "") or "pairwise".
	SubjectType         string
	SectorIdentifierURI string
}

// BuildClient validates a client definition from the configuration file
// and returns the record with its secret hashed, plus the plain secret
// (generated when none was given) that must be shown to the admin exactly
// once. It stores nothing. Its redirect URIs get the shape checks only
// (absolute, no fragment, no scheme a browser runs itself): config.toml is
// the operator's own file, whose validation warns about http:// on other
// hosts rather than refusing it. RegisterClient applies the full rules.
func BuildClient(n NewClient) (storage.Client, string, error) {
	return buildClient(n, false)
}

func buildClient(n NewClient, managed bool) (storage.Client, string, error) {
	if !clientIDPattern.MatchString(n.ID) {
		return storage.Client{}, "", FieldErrorf("id", "Client ID must be 1 to 128 characters from A-Z a-z 0-9 . _ ~ -.")
	}
	// "." and ".." are path segments no address can name (routers clean
	// them away), so a managed app of that ID could never be read, edited
	// or deleted again.
	if managed && (n.ID == "." || n.ID == "..") {
		return storage.Client{}, "", FieldErrorf("id", "Client ID cannot be . or .. alone.")
	}
	// /admin/apps/new is the console's form for a new app, so an app
	// called "new" could not be opened there.
	if managed && n.ID == "new" {
		return storage.Client{}, "", FieldErrorf("id", "Client ID cannot be \"new\".")
	}
	if len(n.GrantTypes) == 0 {
		n.GrantTypes = []string{GrantAuthorizationCode, GrantRefreshToken}
	}
	c := storage.Client{
		ID:                     n.ID,
		Name:                   n.Name,
		RedirectURIs:           slices.Clone(n.RedirectURIs),
		PostLogoutRedirectURIs: slices.Clone(n.PostLogoutRedirectURIs),
		GrantTypes:             slices.Clone(n.GrantTypes),
		Public:                 n.Public,
		AccessTokenJWT:         n.AccessTokenJWT,
		SkipConsent:            n.SkipConsent,
		AllowedGroups:          slices.Clone(n.AllowedGroups),
		AllowedScopes:          slices.Clone(n.AllowedScopes),
		AccessTokenLifetime:    n.AccessTokenLifetime,
		IDTokenLifetime:        n.IDTokenLifetime,
		RefreshTokenLifetime:   n.RefreshTokenLifetime,
	}
	c.FrontchannelLogoutURI, c.FrontchannelLogoutSessionRequired = n.FrontchannelLogoutURI, n.FrontchannelLogoutSessionRequired
	c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired = n.BackchannelLogoutURI, n.BackchannelLogoutSessionRequired
	c.TokenEndpointAuthMethod, c.JWKS, c.JWKSURI = n.TokenEndpointAuthMethod, slices.Clone(n.JWKS), n.JWKSURI
	c.RequirePushedAuthorizationRequests = n.RequirePushedAuthorizationRequests
	c.IDTokenSignedResponseAlg, c.UserinfoSignedResponseAlg = n.IDTokenSignedResponseAlg, n.UserinfoSignedResponseAlg
	c.TokenExchangeAudiences = slices.Clone(n.TokenExchangeAudiences)
	c.RequireSignedRequestObject = n.RequireSignedRequestObject
	c.DPoPBoundAccessTokens, c.RequireDPoPNonce = n.DPoPBoundAccessTokens, n.RequireDPoPNonce
	c.CustomClaims = cloneMappings(n.CustomClaims)
	c.Resources = slices.Clone(n.Resources)
	c.SubjectType, c.SectorIdentifierURI = strings.TrimSpace(n.SubjectType), strings.TrimSpace(n.SectorIdentifierURI)
	if err := normalizeClient(&c, managed, nil); err != nil {
		return storage.Client{}, "", err
	}
	secret := n.Secret
	switch {
	case n.Public && secret != "":
		return storage.Client{}, "", FieldErrorf("secret", "A public client must not have a secret.")
	case !n.Public && secret == "":
		secret = NewSecret()
	case !n.Public && len(secret) < MinClientSecretLength:
		return storage.Client{}, "", FieldErrorf("secret", "Client secret must be at least %d characters.", MinClientSecretLength)
	case c.TokenEndpointAuthMethod == AuthClientSecretJWT && len(secret) < MinHMACSecretLength:
		return storage.Client{}, "", FieldErrorf("secret", "client_secret_jwt needs a secret of at least %d characters: it is the HS256 key (RFC 7518 §3.2).", MinHMACSecretLength)
	}
	if !n.Public {
		c.SecretHash = HashSecret(secret)
	}
	return c, secret, nil
}

// normalizeClient checks every field of c an admin sets and brings it to
// its stored form: the name trimmed (the ID when empty), grants sorted,
// scopes and groups without duplicates. managed applies the redirect-URI
// rules of apps managed in Keyport (ValidateRedirectURI) rather than the
// configuration file's, except to the URIs kept (the app before an edit,
// nil for none) has in the same list: those an edit leaves as they were,
// which an older version may have accepted (http:// on any host), so that
// such an app can still be edited, while every URI added meets the rules.
// A URI moved from one list to the other counts as added: the two lists
// do not have the same rules (application_type binds redirect URIs only).
// The error names the field at fault.
func normalizeClient(c *storage.Client, managed bool, kept *storage.Client) *Error {
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		c.Name = c.ID
	}
	if utf8.RuneCountInString(c.Name) > MaxClientNameLength || !controlFree(c.Name) {
		return FieldErrorf("name", "The name must be at most %d characters, without control characters.", MaxClientNameLength)
	}
	// A name stored before these characters were refused still saves
	// unchanged, so that the app's other fields can be edited; any new
	// or changed name must do without them.
	if strings.ContainsFunc(c.Name, spoofingFormat) && (kept == nil || c.Name != kept.Name) {
		return FieldErrorf("name", "The name may not hold invisible direction or spacing characters (such as a right-to-left override): they make it show differently from what it is.")
	}

	if len(c.GrantTypes) == 0 {
		return FieldErrorf("grant_types", "Choose at least one grant type (authorization_code, refresh_token, client_credentials, %s).", GrantTokenExchange)
	}
	for _, g := range c.GrantTypes {
		switch g {
		case GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials, GrantDeviceCode, GrantTokenExchange:
		default:
			return FieldErrorf("grant_types", "Unknown grant type %q (use authorization_code, refresh_token, client_credentials, urn:ietf:params:oauth:grant-type:device_code, %s).", g, GrantTokenExchange)
		}
	}
	c.GrantTypes = slices.Compact(slices.Sorted(slices.Values(c.GrantTypes)))
	if c.Public && slices.Contains(c.GrantTypes, GrantClientCredentials) {
		return FieldErrorf("grant_types", "A public client cannot use client_credentials: it has no secret.")
	}
	if slices.Contains(c.GrantTypes, GrantRefreshToken) && !slices.Contains(c.GrantTypes, GrantAuthorizationCode) && !slices.Contains(c.GrantTypes, GrantDeviceCode) {
		return FieldErrorf("grant_types", "The refresh_token grant needs authorization_code or the device code grant too: refresh tokens are only issued with them.")
	}
	if err := normalizeTokenExchange(c); err != nil {
		return err
	}
	if err := normalizeResources(c); err != nil { // resources.go
		return err
	}

	if err := knownApplicationType(*c); err != nil { // registration.go
		return err
	}
	if slices.Contains(c.GrantTypes, GrantAuthorizationCode) && len(c.RedirectURIs) == 0 {
		return FieldErrorf("redirect_uris", "A client using authorization_code needs at least one redirect URI.")
	}
	var keptRedirect, keptPostLogout []string
	if kept != nil {
		keptRedirect, keptPostLogout = kept.RedirectURIs, kept.PostLogoutRedirectURIs
	}
	for _, f := range []struct {
		field string
		list  *[]string
		kept  []string
	}{{"redirect_uris", &c.RedirectURIs, keptRedirect}, {"post_logout_redirect_uris", &c.PostLogoutRedirectURIs, keptPostLogout}} {
		if len(*f.list) > MaxClientURIs {
			return FieldErrorf(f.field, "At most %d URIs.", MaxClientURIs)
		}
		// A URI listed twice is kept once: matching is exact, and the
		// app's page and its registration read back each URI once.
		*f.list = withoutRepeats(*f.list)
		for _, u := range *f.list {
			var err *Error
			if managed && !slices.Contains(f.kept, u) {
				err = ValidateRedirectURI(u, c.Public)
				if err == nil && f.field == "redirect_uris" {
					err = checkApplicationType(*c, u) // registration.go
				}
			} else {
				err = checkURIShape(u)
			}
			if err != nil {
				err.Field = f.field
				return err
			}
		}
	}

	scopes := make([]string, 0, len(c.AllowedScopes))
	for _, sc := range c.AllowedScopes {
		admin := IsManagementScope(sc)
		if !slices.Contains(ClientScopes, sc) && !admin && !customScopeOf(c.CustomClaims, sc) {
			return FieldErrorf("allowed_scopes", "Unknown scope %q (use %s).", sc, strings.Join(ClientScopes, ", "))
		}
		// The management API's scopes go to an app acting on its own
		// behalf only: a person's token never carries them.
		if admin && !slices.Contains(c.GrantTypes, GrantClientCredentials) {
			return FieldErrorf("allowed_scopes", "%s is only for apps that use client_credentials.", sc)
		}
		if !slices.Contains(scopes, sc) {
			scopes = append(scopes, sc)
		}
	}
	c.AllowedScopes = nil
	if len(scopes) > 0 {
		c.AllowedScopes = scopes
	}

	if len(c.AllowedGroups) > MaxClientGroups {
		return FieldErrorf("allowed_groups", "At most %d groups.", MaxClientGroups)
	}
	groups := make([]string, 0, len(c.AllowedGroups))
	for _, g := range c.AllowedGroups {
		g = strings.TrimSpace(g)
		if g == "" || utf8.RuneCountInString(g) > MaxClientGroupLength || !controlFree(g) ||
			(strings.ContainsFunc(g, spoofingFormat) && (kept == nil || !slices.Contains(kept.AllowedGroups, g))) {
			return FieldErrorf("allowed_groups", "Group names must be 1 to %d characters, without control characters.", MaxClientGroupLength)
		}
		if !slices.ContainsFunc(groups, func(h string) bool { return strings.EqualFold(g, h) }) {
			groups = append(groups, g)
		}
	}
	c.AllowedGroups = nil
	if len(groups) > 0 {
		c.AllowedGroups = groups
	}

	for _, l := range []struct {
		field    string
		d        time.Duration
		min, max time.Duration
	}{
		{"access_token_lifetime", c.AccessTokenLifetime, MinClientTokenLifetime, MaxClientTokenLifetime},
		{"id_token_lifetime", c.IDTokenLifetime, MinClientTokenLifetime, MaxClientTokenLifetime},
		{"refresh_token_lifetime", c.RefreshTokenLifetime, MinClientRefreshLifetime, MaxClientRefreshLifetime},
	} {
		if l.d != 0 && (l.d < l.min || l.d > l.max) {
			return FieldErrorf(l.field, "Must be between %s and %s, or 0 for the server's default.", l.min, l.max)
		}
	}
	if err := checkLogoutURIs(c); err != nil {
		return err
	}
	if err := CheckSigningAlgorithm("id_token_signed_response_alg", c.IDTokenSignedResponseAlg); err != nil {
		return err
	}
	if err := CheckSigningAlgorithm("userinfo_signed_response_alg", c.UserinfoSignedResponseAlg); err != nil {
		return err
	}
	if err := checkClientAuth(c, kept); err != nil {
		return err
	}
	if err := normalizeCustomClaims(c); err != nil {
		return err
	}
	if err := checkSubject(c); err != nil {
		return err
	}
	return checkRequestObjectKeys(c)
}

// plainText reports whether s is UTF-8 without control characters and
// without the invisible characters that make a name people see read
// differently from its text (spoofingFormat).
func plainText(s string) bool {
	return controlFree(s) && !strings.ContainsFunc(s, spoofingFormat)
}

// controlFree reports whether s is UTF-8 without control characters.
func controlFree(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// spoofingFormat reports whether r is an invisible format character that
// lets a name shown to people (an app's on the consent, sign-in and device
// pages, which anyone with an initial access token may choose) look like
// something it is not:
//   - the bidirectional formatting characters (Unicode UAX #9: U+202A..U+202E
//     embeddings and overrides, U+2066..U+2069 isolates, U+200E, U+200F and
//     U+061C marks), which reorder what follows them, so that "elgooG" with
//     a right-to-left override reads "Google" or a suffix moves out of sight;
//   - U+200B zero width space, U+2060 word joiner, U+2061..U+2064 invisible
//     operators and U+FEFF zero width no-break space, which show nothing and
//     serve no name, but make a name that looks the same as another differ
//     from it, so it slips past a search or an admin comparing names.
//
// Not refused: U+200C zero width non-joiner and U+200D zero width joiner,
// which Persian, the Indic scripts and emoji ("👩‍💻") need, and U+00AD soft
// hyphen, a hyphenation hint in long (German) words that shows as at most a
// hyphen and neither reorders nor hides anything.
func spoofingFormat(r rune) bool {
	switch {
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069,
		r == 0x200e, r == 0x200f, r == 0x061c:
		return true
	case r == 0x200b, r >= 0x2060 && r <= 0x2064, r == 0xfeff:
		return true
	}
	return false
}

// ValidateRedirectURI checks a redirect (or post-logout) URI of an app
// managed in Keyport: absolute, without a fragment, https, or http on a
// loopback host (127.0.0.1, [::1], localhost; RFC 8252 §7.3), or, for a
// public client (a native app), a private-use scheme such as
// com.example.app:/callback (RFC 8252 §7.1). A confidential client runs
// on a server, which has no use for a custom scheme.
func ValidateRedirectURI(raw string, public bool) *Error {
	if err := checkURIShape(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopbackHost(u.Hostname()) {
			return nil
		}
		return Errorf(Invalid, "Redirect URI %q must use https:// (http:// only on 127.0.0.1, [::1] or localhost).", raw)
	}
	if !public {
		return Errorf(Invalid, "Redirect URI %q uses a custom scheme, which only public clients (native apps) may use.", raw)
	}
	return nil
}

// isLoopbackHost tells whether a URI's host is the machine itself.
func isLoopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || strings.EqualFold(host, "localhost")
}

// checkURIShape checks what every redirect URI must be, the configuration
// file's included: absolute, no fragment, a host for http(s), bounded, and
// no scheme a browser runs or reads itself.
func checkURIShape(raw string) *Error {
	if len(raw) > MaxClientURILength {
		return Errorf(Invalid, "Redirect URI must be at most %d characters.", MaxClientURILength)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Fragment != "" || strings.ContainsAny(raw, "# \t\r\n") {
		return Errorf(Invalid, "Redirect URI %q must be an absolute URL without a fragment.", raw)
	}
	if (u.Scheme == "http" || u.Scheme == "https") && u.Host == "" {
		return Errorf(Invalid, "Redirect URI %q has no host.", raw)
	}
	// Schemes a browser runs or reads locally instead of handing to an app
	// (url.Parse lowercases the scheme).
	switch u.Scheme {
	case "javascript", "vbscript", "data", "file", "blob", "about":
		return Errorf(Invalid, "Redirect URI %q uses a forbidden scheme.", raw)
	}
	return nil
}

// ClientETag is the strong validator of a client record for If-Match: the
// first 16 bytes of the SHA-256 of its stored JSON, base64url, quoted.
// Any change to the record, a secret rotation included, changes it.
func ClientETag(c storage.Client) string {
	raw, err := json.Marshal(c)
	if err != nil {
		panic(fmt.Sprintf("encode client %q: %v", c.ID, err)) // plain data: cannot fail
	}
	sum := sha256.Sum256(raw)
	return `"` + base64.RawURLEncoding.EncodeToString(sum[:16]) + `"`
}

// etagMatches applies an If-Match value (RFC 9110 §13.1.1) to the current
// ETag: "" asks nothing, "*" matches any record, otherwise one of the
// listed strong tags must be equal (a weak one never is).
func etagMatches(ifMatch, current string) bool {
	ifMatch = strings.TrimSpace(ifMatch)
	if ifMatch == "" || ifMatch == "*" {
		return true
	}
	for _, tag := range strings.Split(ifMatch, ",") {
		if strings.TrimSpace(tag) == current {
			return true
		}
	}
	return false
}

// ErrClientChanged refuses an update whose If-Match names an older version
// of the app.
var ErrClientChanged = Errorf(PreconditionFailed, "Someone else changed this app since you loaded it. Reload it and make your change again.")

// MayUseClient tells whether u may sign in to c: c lists no groups, or u
// is a member of one of them (names compared case-insensitively, as
// directories compare them). The refusal is Forbidden and names the app.
func MayUseClient(u storage.User, c storage.Client) error {
	if len(c.AllowedGroups) == 0 {
		return nil
	}
	for _, g := range u.Groups {
		if slices.ContainsFunc(c.AllowedGroups, func(a string) bool { return strings.EqualFold(a, g) }) {
			return nil
		}
	}
	// Errorf keeps the format, so that the device page says it in the
	// person's language (LocalMessage); ErrNotInAppGroups marks it for
	// callers that answer it apart (forward auth's 403).
	e := Errorf(Forbidden, NotAllowedMessage, c.Name)
	e.Err = ErrNotInAppGroups
	return e
}

// NotAllowedMessage is the refusal MayUseClient returns, with the app's
// name for %s; the portal translates it.
const NotAllowedMessage = "Your account is not allowed to use %s. Ask an administrator."

// ClientStore is the part of storage ClientService needs.
type ClientStore interface {
	storage.Clients
	// GetUser finds the person acting, who must be an administrator.
	GetUser(ctx context.Context, id string) (storage.User, error)
}

// ClientService registers, edits and removes the applications people sign
// in to. Every change is made by an Actor and written to the audit log.
type ClientService struct {
	*core
	store ClientStore
	// ensureKey makes a signing key of an algorithm (SetSigningKeys).
	ensureKey func(ctx context.Context, alg string) error
	// sectorCheck fetches and checks sector_identifier_uri (SetSectorCheck).
	sectorCheck SectorCheck

	// off: the [oauth] features that are off (SetFeaturesOff).
	off FeaturesOff
}

// Audit event types of the apps.
const (
	AuditClientCreated       = "client.created"
	AuditClientUpdated       = "client.updated"
	AuditClientSecretRotated = "client.secret_rotated"
	AuditClientDeleted       = "client.deleted"
)

// errStaticClient refuses to change an app defined in config.toml, which
// is read-only here; todo says what to do there.
func errStaticClient(id, todo string) *Error {
	return Errorf(Conflict, "Client %q is defined in the configuration file%s", id, phrase(todo))
}

const (
	staticCreate = "."
	staticChange = "; change it there."
	staticDelete = "; remove it there."
)

// RegisterClient validates and stores a client. It returns the plain secret
// (empty for public clients), to be shown once.
func (s *ClientService) RegisterClient(ctx context.Context, actor Actor, n NewClient) (storage.Client, string, error) {
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return storage.Client{}, "", err
	}
	c, secret, err := buildClient(n, true)
	if err != nil {
		return storage.Client{}, "", err
	}
	if err := s.checkFeatures(c, nil); err != nil {
		return storage.Client{}, "", err
	}
	if err := s.checkSectorDocument(ctx, c); err != nil {
		return storage.Client{}, "", err
	}
	c.CreatedAt = s.now()
	c.UpdatedAt = c.CreatedAt
	SealClientSecret(s.sealer, &c, secret)
	if err := s.store.CreateClient(ctx, c); err != nil {
		switch {
		case errors.Is(err, storage.ErrConflict):
			e := Errorf(Conflict, "A client with ID %q already exists.", c.ID)
			e.Field = "id"
			return storage.Client{}, "", e
		case errors.Is(err, storage.ErrReadOnly):
			return storage.Client{}, "", errStaticClient(c.ID, staticCreate)
		}
		return storage.Client{}, "", fmt.Errorf("create client %q: %w", c.ID, err)
	}
	s.audit(ctx, actor, storage.AuditEvent{Type: AuditClientCreated, ClientID: c.ID, Changes: clientChanges(storage.Client{}, c)})
	s.ensureSigningKey(ctx, c)
	if c.Public {
		secret = ""
	}
	return c, secret, nil
}

// ListClients returns every client, static ones included.
func (s *ClientService) ListClients(ctx context.Context) ([]storage.Client, error) {
	return s.store.ListClients(ctx)
}

// GetClient returns one client and its ETag, for an edit form or the API
// to send back in If-Match.
func (s *ClientService) GetClient(ctx context.Context, id string) (storage.Client, string, error) {
	c, err := s.store.GetClient(ctx, id)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.Client{}, "", Errorf(NotFound, "No client %q.", id)
	case err != nil:
		return storage.Client{}, "", fmt.Errorf("load client %q: %w", id, err)
	}
	return c, ClientETag(c), nil
}

// ClientPatch is an edit of an app: every field left nil stays as it is.
// The secret is not among them: RotateSecret replaces it.
type ClientPatch struct {
	Name                   *string
	RedirectURIs           *[]string
	PostLogoutRedirectURIs *[]string
	GrantTypes             *[]string
	// Public switches the app between public and confidential. A switch
	// to public drops its secrets; a switch to confidential leaves it
	// without one, so it authenticates with nothing until RotateSecret
	// gives it its first.
	Public               *bool
	AllowedScopes        *[]string
	SkipConsent          *bool
	AccessTokenJWT       *bool
	AccessTokenLifetime  *time.Duration
	IDTokenLifetime      *time.Duration
	RefreshTokenLifetime *time.Duration
	AllowedGroups        *[]string

	// Logout to the app; "" clears a URI.
	FrontchannelLogoutURI             *string
	FrontchannelLogoutSessionRequired *bool
	BackchannelLogoutURI              *string
	BackchannelLogoutSessionRequired  *bool

	// Client authentication; "" clears the method or the URI, an empty
	// or null JWKS clears the keys.
	TokenEndpointAuthMethod *string
	JWKS                    *json.RawMessage
	JWKSURI                 *string

	RequirePushedAuthorizationRequests *bool
	// IDTokenSignedResponseAlg: "" sets the server's default.
	IDTokenSignedResponseAlg *string
	// UserinfoSignedResponseAlg: "" goes back to plain JSON.
	UserinfoSignedResponseAlg *string

	TokenExchangeAudiences *[]string

	RequireSignedRequestObject *bool

	// DPoP (RFC 9449).
	DPoPBoundAccessTokens *bool
	RequireDPoPNonce      *bool

	// CustomClaims replaces the app's custom claims; an empty list
	// removes them.
	CustomClaims *[]storage.ClaimMapping

	// Resources replaces storage.Client.Resources (resource indicators).
	Resources *[]string

	// SubjectType: "public" (or "") or "pairwise"; SectorIdentifierURI:
	// "" clears it.
	SubjectType         *string
	SectorIdentifierURI *string
}

// apply returns c with p's fields set.
func (p ClientPatch) apply(c storage.Client) storage.Client {
	setList := func(dst *[]string, src *[]string) {
		if src != nil {
			*dst = slices.Clone(*src)
		}
	}
	if p.Name != nil {
		c.Name = *p.Name
	}
	setList(&c.RedirectURIs, p.RedirectURIs)
	setList(&c.PostLogoutRedirectURIs, p.PostLogoutRedirectURIs)
	setList(&c.GrantTypes, p.GrantTypes)
	setList(&c.AllowedScopes, p.AllowedScopes)
	setList(&c.AllowedGroups, p.AllowedGroups)
	if p.Public != nil && *p.Public != c.Public {
		c.Public = *p.Public
		// Either way no secret carries over: a public app has none, and
		// a confidential one must be given a new one, shown once.
		c.SecretHash, c.PreviousSecretHash, c.PreviousSecretUntil = "", "", time.Time{}
		c.SealedSecret = nil
		if p.TokenEndpointAuthMethod == nil {
			c.TokenEndpointAuthMethod = "" // the default of either kind
		}
	}
	if p.SkipConsent != nil {
		c.SkipConsent = *p.SkipConsent
	}
	if p.RequirePushedAuthorizationRequests != nil {
		c.RequirePushedAuthorizationRequests = *p.RequirePushedAuthorizationRequests
	}
	if p.AccessTokenJWT != nil {
		c.AccessTokenJWT = *p.AccessTokenJWT
	}
	if p.AccessTokenLifetime != nil {
		c.AccessTokenLifetime = *p.AccessTokenLifetime
	}
	if p.IDTokenLifetime != nil {
		c.IDTokenLifetime = *p.IDTokenLifetime
	}
	if p.RefreshTokenLifetime != nil {
		c.RefreshTokenLifetime = *p.RefreshTokenLifetime
	}
	p.applyLogout(&c)
	p.applySigning(&c)
	p.applyClientAuth(&c)
	setList(&c.TokenExchangeAudiences, p.TokenExchangeAudiences)
	if p.RequireSignedRequestObject != nil {
		c.RequireSignedRequestObject = *p.RequireSignedRequestObject
	}
	if p.DPoPBoundAccessTokens != nil {
		c.DPoPBoundAccessTokens = *p.DPoPBoundAccessTokens
	}
	if p.RequireDPoPNonce != nil {
		c.RequireDPoPNonce = *p.RequireDPoPNonce
	}
	if p.CustomClaims != nil {
		c.CustomClaims = cloneMappings(*p.CustomClaims)
	}
	setList(&c.Resources, p.Resources)
	if p.SubjectType != nil {
		c.SubjectType = strings.TrimSpace(*p.SubjectType)
	}
	if p.SectorIdentifierURI != nil {
		c.SectorIdentifierURI = strings.TrimSpace(*p.SectorIdentifierURI)
	}
	return c
}

// cloneMappings copies ms deeply, so a caller's slices never alias the
// stored record's.
func cloneMappings(ms []storage.ClaimMapping) []storage.ClaimMapping {
	if len(ms) == 0 {
		return nil
	}
	out := make([]storage.ClaimMapping, len(ms))
	for i, m := range ms {
		out[i] = m
		out[i].In = slices.Clone(m.In)
	}
	return out
}

// UpdateClient edits app id as p says, if ifMatch (an If-Match value: ""
// asks nothing) still names the stored version; otherwise it changes
// nothing and returns ErrClientChanged (PreconditionFailed). Bad input
// changes nothing either, and its error names the field. It returns the
// app as stored and its new ETag.
func (s *ClientService) UpdateClient(ctx context.Context, actor Actor, id, ifMatch string, p ClientPatch) (storage.Client, string, error) {
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return storage.Client{}, "", err
	}
	checked, err := s.checkSectorOfPatch(ctx, id, p)
	if err != nil {
		return storage.Client{}, "", err
	}
	var before storage.Client
	changed := false
	after, err := s.store.UpdateClient(ctx, id, func(c storage.Client) (storage.Client, error) {
		if c.Static {
			return c, errStaticClient(id, staticChange)
		}
		if !etagMatches(ifMatch, ClientETag(c)) {
			return c, ErrClientChanged
		}
		before = c
		next := p.apply(c)
		// A switch between public and confidential changes which
		// redirect URIs are allowed, so it checks all of them again.
		var kept *storage.Client
		if next.Public == c.Public {
			kept = &c
		}
		if err := normalizeClient(&next, true, kept); err != nil {
			if next.Public != c.Public && p.GrantTypes == nil && err.Field == "grant_types" {
				err.Field = "public" // the switch is what clashes
			}
			return c, err
		}
		if err := s.checkFeatures(next, &c); err != nil {
			return c, err
		}
		if changed = len(clientChanges(c, next)) > 0; !changed {
			return c, nil
		}
		if sectorCheckStale(checked, c, next) {
			// Changed since the document was fetched (outside this
			// transaction, which must not wait on the network).
			return c, ErrClientChanged
		}
		next.UpdatedAt = s.now()
		return next, nil
	})
	var ae *Error
	switch {
	case err == nil:
	case errors.As(err, &ae):
		return storage.Client{}, "", ae
	case errors.Is(err, storage.ErrNotFound):
		return storage.Client{}, "", Errorf(NotFound, "No client %q.", id)
	case errors.Is(err, storage.ErrReadOnly):
		return storage.Client{}, "", errStaticClient(id, staticChange)
	default:
		return storage.Client{}, "", fmt.Errorf("update client %q: %w", id, err)
	}
	if changed {
		s.audit(ctx, actor, storage.AuditEvent{Type: AuditClientUpdated, ClientID: id, Changes: clientChanges(before, after)})
		s.ensureSigningKey(ctx, after)
	}
	return after, ClientETag(after), nil
}

// RotateSecret gives confidential app id a new secret, returned to be
// shown once. The old one keeps working for grace (0 to MaxSecretGrace,
// the admin's choice), so the app's servers can move to the new one
// without an outage; 0 ends it at once. Only the secret just replaced is
// kept: a second rotation within the grace ends the first one's old
// secret, as Keycloak keeps one rotated secret.
//
// revokeTokens also revokes every access and refresh token issued to the
// app so far (client_credentials, codes, refreshes), in the same
// transaction as the new secret: for a secret that leaked, whose holder
// may have fetched tokens with it. Off by default, as in Keycloak and
// Auth0: a planned rotation leaves the app's signed-in users signed in.
// A JWT access token stays valid until it expires for a resource server
// that checks only its signature; introspection, userinfo and the
// management API refuse it at once: the stored record is gone, and a
// client_credentials JWT, which is not stored, was issued before the
// app's TokensRevokedAt.
func (s *ClientService) RotateSecret(ctx context.Context, actor Actor, id string, grace time.Duration, revokeTokens bool) (string, error) {
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return "", err
	}
	if grace < 0 || grace > MaxSecretGrace {
		return "", FieldErrorf("grace", "The grace period must be between 0 and %d days.", int(MaxSecretGrace/(24*time.Hour)))
	}
	// Revoking is for a leaked secret: a grace would let its holder fetch
	// new tokens right after the old ones were revoked.
	if revokeTokens && grace > 0 {
		return "", FieldErrorf("grace", "Revoking the app's tokens ends the old secret at once: set no grace period.")
	}
	secret := NewSecret()
	var until time.Time
	rotate := func(c storage.Client) (storage.Client, error) {
		if c.Static {
			return c, errStaticClient(id, staticChange)
		}
		if c.Public {
			return c, FieldErrorf("public", "A public client has no secret to rotate.")
		}
		now := s.now()
		c.PreviousSecretHash, c.PreviousSecretUntil = "", time.Time{}
		if grace > 0 && c.SecretHash != "" {
			until = now.Add(grace)
			c.PreviousSecretHash, c.PreviousSecretUntil = c.SecretHash, until
		}
		c.SecretHash = HashSecret(secret)
		SealClientSecret(s.sealer, &c, secret)
		c.UpdatedAt = now
		if revokeTokens {
			c.TokensRevokedAt = now // for the tokens never stored
		}
		return c, nil
	}
	var err error
	revoked := 0
	if revokeTokens {
		_, revoked, err = s.store.UpdateClientRevokingTokens(ctx, id, rotate)
	} else {
		_, err = s.store.UpdateClient(ctx, id, rotate)
	}
	var ae *Error
	switch {
	case err == nil:
	case errors.As(err, &ae):
		return "", ae
	case errors.Is(err, storage.ErrNotFound):
		return "", Errorf(NotFound, "No client %q.", id)
	case errors.Is(err, storage.ErrReadOnly):
		return "", errStaticClient(id, staticChange)
	default:
		return "", fmt.Errorf("rotate the secret of client %q: %w", id, err)
	}
	e := storage.AuditEvent{Type: AuditClientSecretRotated, ClientID: id, Reason: "the previous secret ended at once"}
	if !until.IsZero() {
		e.Reason = "the previous secret stays valid until " + until.UTC().Format(time.RFC3339)
	}
	if revokeTokens {
		e.Reason += fmt.Sprintf("; every token issued to the app was revoked (%d stored; its client-credentials JWTs, which are not stored, end by the app's revocation time)", revoked)
	}
	s.audit(ctx, actor, e)
	return secret, nil
}

// DeleteClient removes a client with everything issued to it or bound to
// it (storage.Clients.DeleteClient): its tokens, the consents users gave
// it, app passwords restricted to it and its pending sign-ins. An app
// registered again under the ID starts afresh: users are asked for their
// consent again and no old token or app password works for it.
func (s *ClientService) DeleteClient(ctx context.Context, actor Actor, id string) error {
	if err := actor.mayAdminister(ctx, s.store); err != nil {
		return err
	}
	err := s.store.DeleteClient(ctx, id)
	switch {
	case err == nil:
		s.audit(ctx, actor, storage.AuditEvent{Type: AuditClientDeleted, ClientID: id})
		return nil
	case errors.Is(err, storage.ErrNotFound):
		return Errorf(NotFound, "No client %q.", id)
	case errors.Is(err, storage.ErrReadOnly):
		return errStaticClient(id, staticDelete)
	}
	return fmt.Errorf("delete client %q: %w", id, err)
}

// maxAuditValue bounds one before or after value of an app's audit
// change, so an edit of long URI lists stays within the event's bound.
const maxAuditValue = 1024

// clientChanges lists the fields an admin edits that differ between a and
// b, as the audit log shows them. The secrets are never among them.
func clientChanges(a, b storage.Client) []storage.AuditChange {
	list := func(v []string) string { return strings.Join(v, " ") }
	life := func(d time.Duration) string {
		if d == 0 {
			return ""
		}
		return d.String()
	}
	flag := func(v bool) string {
		if v {
			return "true"
		}
		return "false"
	}
	fields := []struct{ name, a, b string }{
		{"name", a.Name, b.Name},
		{"redirect_uris", list(a.RedirectURIs), list(b.RedirectURIs)},
		{"post_logout_redirect_uris", list(a.PostLogoutRedirectURIs), list(b.PostLogoutRedirectURIs)},
		{"grant_types", list(a.GrantTypes), list(b.GrantTypes)},
		{"public", flag(a.Public), flag(b.Public)},
		{"allowed_scopes", list(a.AllowedScopes), list(b.AllowedScopes)},
		{"skip_consent", flag(a.SkipConsent), flag(b.SkipConsent)},
		{"access_token_jwt", flag(a.AccessTokenJWT), flag(b.AccessTokenJWT)},
		{"access_token_lifetime", life(a.AccessTokenLifetime), life(b.AccessTokenLifetime)},
		{"id_token_lifetime", life(a.IDTokenLifetime), life(b.IDTokenLifetime)},
		{"refresh_token_lifetime", life(a.RefreshTokenLifetime), life(b.RefreshTokenLifetime)},
		{"allowed_groups", list(a.AllowedGroups), list(b.AllowedGroups)},
		{"frontchannel_logout_uri", a.FrontchannelLogoutURI, b.FrontchannelLogoutURI},
		{"frontchannel_logout_session_required", flag(a.FrontchannelLogoutSessionRequired), flag(b.FrontchannelLogoutSessionRequired)},
		{"backchannel_logout_uri", a.BackchannelLogoutURI, b.BackchannelLogoutURI},
		{"backchannel_logout_session_required", flag(a.BackchannelLogoutSessionRequired), flag(b.BackchannelLogoutSessionRequired)},
		{"token_endpoint_auth_method", a.TokenEndpointAuthMethod, b.TokenEndpointAuthMethod},
		{"jwks", string(a.JWKS), string(b.JWKS)},
		{"jwks_uri", a.JWKSURI, b.JWKSURI},
		{"require_pushed_authorization_requests", flag(a.RequirePushedAuthorizationRequests), flag(b.RequirePushedAuthorizationRequests)},
		{"id_token_signed_response_alg", a.IDTokenSignedResponseAlg, b.IDTokenSignedResponseAlg},
		{"userinfo_signed_response_alg", a.UserinfoSignedResponseAlg, b.UserinfoSignedResponseAlg},

		{"token_exchange_audiences", list(a.TokenExchangeAudiences), list(b.TokenExchangeAudiences)},
		{"require_signed_request_object", flag(a.RequireSignedRequestObject), flag(b.RequireSignedRequestObject)},

		{"dpop_bound_access_tokens", flag(a.DPoPBoundAccessTokens), flag(b.DPoPBoundAccessTokens)},
		{"require_dpop_nonce", flag(a.RequireDPoPNonce), flag(b.RequireDPoPNonce)},
		{"custom_claims", customClaimsText(a.CustomClaims), customClaimsText(b.CustomClaims)},
		{"resources", list(a.Resources), list(b.Resources)},
		{"subject_type", a.SubjectType, b.SubjectType},
		{"sector_identifier_uri", a.SectorIdentifierURI, b.SectorIdentifierURI},
		{"application_type", a.ApplicationType, b.ApplicationType},
	}
	var out []storage.AuditChange
	for _, f := range fields {
		if f.a != f.b {
			out = append(out, storage.AuditChange{Field: f.name, Before: clip(f.a, maxAuditValue), After: clip(f.b, maxAuditValue)})
		}
	}
	return out
}

// clip cuts s to at most n bytes at a character boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// withoutRepeats is list with each value once, in the order of its first
// appearance.
func withoutRepeats(list []string) []string {
	out := list[:0:0]
	for _, v := range list {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	if len(out) == len(list) {
		return list
	}
	return out
}
