package portal

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The console's app pages: the list, a new app, an app's edit form,
// rotating its secret and deleting it. Every change goes through
// account.ClientService, as the API's (apiapps.go) and the CLI's do.
func (s *Server) registerAdminAppPages(t *routeTable) {
	t.add(levelAdmin, "GET", "/admin/apps", s.adminApps)
	t.add(levelAdmin, "GET", "/admin/apps/new", s.adminNewAppPage) // before {id}
	t.add(levelAdmin, "POST", "/admin/apps/new", s.adminCreateApp)
	t.add(levelAdmin, "GET", "/admin/apps/{id}", s.adminAppPage)
	t.add(levelAdmin, "POST", "/admin/apps/{id}/edit", s.adminEditApp)
	t.add(levelAdmin, "POST", "/admin/apps/{id}/rotate-secret", s.adminRotateAppSecret)
	t.add(levelAdmin, "GET", "/admin/apps/{id}/delete", s.adminDeleteAppPage) // asks first
	t.add(levelAdmin, "POST", "/admin/apps/{id}/delete", s.adminDeleteApp)
	t.add(levelAdmin, "POST", "/admin/apps/{id}/approve", s.adminApproveApp) // apiregistration.go
}

// staticAppReason is why an app from config.toml cannot be edited here.
const staticAppReason = "This app is defined in the configuration file (config.toml). Change or remove it there; the console shows it read-only."

// appScopeChoices are the scopes the form offers: the provider's, then
// the management API's (for client_credentials apps only).
var appScopeChoices = append(slices.Clone(account.ClientScopes), account.ScopeAdmin, account.ScopeAdminRead)

// appGrantChoices are the grant types the form offers.
var appGrantChoices = []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials, account.GrantDeviceCode,
	account.GrantTokenExchange}

// appForm is the app form's fields as text.
type appForm struct {
	ETag                   string
	ID, Name               string
	RedirectURIs           string // one per line
	PostLogoutRedirectURIs string // one per line
	AllowedGroups          string // comma separated
	Public                 bool
	SkipConsent            bool
	AccessTokenJWT         bool
	Grants                 map[string]bool
	Scopes                 map[string]bool
	// Lifetimes as written: "10m", "2h", "30d"; empty: the server's default.
	AccessTokenLifetime, IDTokenLifetime, RefreshTokenLifetime string

	// Logout to the app: the URIs as written, and their session flags.
	FrontchannelLogoutURI, BackchannelLogoutURI                         string
	FrontchannelLogoutSessionRequired, BackchannelLogoutSessionRequired bool

	// IDTokenSignedResponseAlg: "" for the server's default;
	// UserinfoSignedResponseAlg: "" for plain JSON.
	IDTokenSignedResponseAlg, UserinfoSignedResponseAlg string

	// Client authentication: the method, the keys as written (a JWK Set
	// in JSON) and their URL.
	TokenEndpointAuthMethod, JWKS, JWKSURI string

	// TokenExchangeAudiences: comma separated.
	TokenExchangeAudiences string

	// DPoP (RFC 9449).
	DPoPBoundAccessTokens, RequireDPoPNonce bool

	// Authorization requests only pushed (RFC 9126 §6) or only as
	// signed request objects (RFC 9101 §10.5).
	RequirePushedAuthorizationRequests, RequireSignedRequestObject bool

	// CustomClaims: one mapping a line (adminappclaims.go).
	CustomClaims string

	// Resources (resource indicators, RFC 8707): one URI a line, as a
	// URI may hold a comma.
	Resources string

	// Pairwise subjects: "public" or "pairwise", and the sector URI.
	SubjectType, SectorIdentifierURI string
}

func appFormOf(c storage.Client, etag string) appForm {
	f := appForm{
		ETag: etag, ID: c.ID, Name: c.Name,
		RedirectURIs: strings.Join(c.RedirectURIs, "\n"), PostLogoutRedirectURIs: strings.Join(c.PostLogoutRedirectURIs, "\n"),
		AllowedGroups: strings.Join(c.AllowedGroups, ", "), Public: c.Public, SkipConsent: c.SkipConsent, AccessTokenJWT: c.AccessTokenJWT,
		Grants: map[string]bool{}, Scopes: map[string]bool{},
		AccessTokenLifetime: lifetimeText(c.AccessTokenLifetime), IDTokenLifetime: lifetimeText(c.IDTokenLifetime),
		RefreshTokenLifetime: lifetimeText(c.RefreshTokenLifetime),
	}
	f.FrontchannelLogoutURI, f.FrontchannelLogoutSessionRequired = c.FrontchannelLogoutURI, c.FrontchannelLogoutSessionRequired
	f.BackchannelLogoutURI, f.BackchannelLogoutSessionRequired = c.BackchannelLogoutURI, c.BackchannelLogoutSessionRequired
	f.IDTokenSignedResponseAlg, f.UserinfoSignedResponseAlg = c.IDTokenSignedResponseAlg, c.UserinfoSignedResponseAlg
	f.TokenEndpointAuthMethod, f.JWKS, f.JWKSURI = c.TokenEndpointAuthMethod, string(c.JWKS), c.JWKSURI
	f.TokenExchangeAudiences = strings.Join(c.TokenExchangeAudiences, ", ")
	f.DPoPBoundAccessTokens, f.RequireDPoPNonce = c.DPoPBoundAccessTokens, c.RequireDPoPNonce
	f.RequirePushedAuthorizationRequests, f.RequireSignedRequestObject = c.RequirePushedAuthorizationRequests, c.RequireSignedRequestObject
	f.CustomClaims = customClaimsText(c.CustomClaims)
	f.Resources = strings.Join(c.Resources, "\n")
	f.SubjectType, f.SectorIdentifierURI = c.SubjectType, c.SectorIdentifierURI
	for _, g := range c.GrantTypes {
		f.Grants[g] = true
	}
	for _, sc := range c.AllowedScopes {
		f.Scopes[sc] = true
	}
	return f
}

func postedAppForm(r *http.Request) appForm {
	v := r.PostFormValue
	f := appForm{
		ETag: v("etag"), ID: strings.TrimSpace(v("id")), Name: v("name"),
		RedirectURIs: v("redirect_uris"), PostLogoutRedirectURIs: v("post_logout_redirect_uris"), AllowedGroups: v("allowed_groups"),
		Public: v("type") == "public", SkipConsent: v("skip_consent") == "1", AccessTokenJWT: v("access_token_jwt") == "1",
		Grants: map[string]bool{}, Scopes: map[string]bool{},
		AccessTokenLifetime: v("access_token_lifetime"), IDTokenLifetime: v("id_token_lifetime"), RefreshTokenLifetime: v("refresh_token_lifetime"),
	}
	f.FrontchannelLogoutURI, f.FrontchannelLogoutSessionRequired = strings.TrimSpace(v("frontchannel_logout_uri")), v("frontchannel_logout_session_required") == "1"
	f.BackchannelLogoutURI, f.BackchannelLogoutSessionRequired = strings.TrimSpace(v("backchannel_logout_uri")), v("backchannel_logout_session_required") == "1"
	f.IDTokenSignedResponseAlg, f.UserinfoSignedResponseAlg = v("id_token_signed_response_alg"), v("userinfo_signed_response_alg")
	f.TokenEndpointAuthMethod, f.JWKS, f.JWKSURI = v("token_endpoint_auth_method"), strings.TrimSpace(v("jwks")), strings.TrimSpace(v("jwks_uri"))
	f.TokenExchangeAudiences = v("token_exchange_audiences")
	f.DPoPBoundAccessTokens, f.RequireDPoPNonce = v("dpop_bound_access_tokens") == "1", v("require_dpop_nonce") == "1"
	f.RequirePushedAuthorizationRequests = v("require_pushed_authorization_requests") == "1"
	f.RequireSignedRequestObject = v("require_signed_request_object") == "1"
	f.CustomClaims = v("custom_claims")
	f.Resources = v("resources")
	f.SubjectType, f.SectorIdentifierURI = v("subject_type"), strings.TrimSpace(v("sector_identifier_uri"))
	for _, g := range r.PostForm["grant_types"] {
		f.Grants[g] = true
	}
	for _, sc := range r.PostForm["allowed_scopes"] {
		f.Scopes[sc] = true
	}
	return f
}

// lines reads a one-per-line list, dropping empty lines.
func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// lifetimeText writes a lifetime as the form reads it: whole days as
// "30d", else Go's form without zero units ("10m", "1h30m").
func lifetimeText(d time.Duration) string {
	switch {
	case d == 0:
		return ""
	case d%(24*time.Hour) == 0:
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	s := d.String() // "1h30m0s", "10m0s", "1h0m0s"
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// parseLifetime reads a lifetime field: empty for the server's default,
// "30d" for days, or a Go duration ("10m", "1h30m").
func parseLifetime(field, s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, nil
	}
	bad := account.FieldErrorf(field, "Write the lifetime like 10m, 2h or 30d, or leave it empty for the server's default.")
	if n, ok := strings.CutSuffix(s, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil || days < 0 || days > 3650 {
			return 0, bad
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, bad
	}
	return d, nil
}

// chosen lists the keys of set that are among choices, in their order.
func chosen(set map[string]bool, choices []string) []string {
	out := []string{}
	for _, c := range choices {
		if set[c] {
			out = append(out, c)
		}
	}
	return out
}

// lists reads the form's grant and scope checkboxes; unknown grants or
// scopes posted (a crafted form) are kept, so the rules name them.
func (f appForm) lists() (grants, scopes []string) {
	grants, scopes = chosen(f.Grants, appGrantChoices), chosen(f.Scopes, appScopeChoices)
	for g := range f.Grants {
		if !slices.Contains(appGrantChoices, g) {
			grants = append(grants, g)
		}
	}
	for sc := range f.Scopes {
		if !slices.Contains(appScopeChoices, sc) {
			scopes = append(scopes, sc)
		}
	}
	return grants, scopes
}

func (f appForm) lifetimes() (access, id, refresh time.Duration, err error) {
	if access, err = parseLifetime("access_token_lifetime", f.AccessTokenLifetime); err != nil {
		return
	}
	if id, err = parseLifetime("id_token_lifetime", f.IDTokenLifetime); err != nil {
		return
	}
	refresh, err = parseLifetime("refresh_token_lifetime", f.RefreshTokenLifetime)
	return
}

func (f appForm) newClient() (account.NewClient, error) {
	grants, scopes := f.lists()
	if len(grants) == 0 {
		return account.NewClient{}, account.FieldErrorf("grant_types", "Choose at least one grant type.")
	}
	access, id, refresh, err := f.lifetimes()
	if err != nil {
		return account.NewClient{}, err
	}
	n := account.NewClient{
		ID: f.ID, Name: f.Name, RedirectURIs: lines(f.RedirectURIs), PostLogoutRedirectURIs: lines(f.PostLogoutRedirectURIs),
		GrantTypes: grants, Public: f.Public, AccessTokenJWT: f.AccessTokenJWT, SkipConsent: f.SkipConsent,
		AllowedGroups: splitList(f.AllowedGroups), AllowedScopes: scopes,
		AccessTokenLifetime: access, IDTokenLifetime: id, RefreshTokenLifetime: refresh,
	}
	n.FrontchannelLogoutURI, n.FrontchannelLogoutSessionRequired = f.FrontchannelLogoutURI, f.FrontchannelLogoutSessionRequired
	n.BackchannelLogoutURI, n.BackchannelLogoutSessionRequired = f.BackchannelLogoutURI, f.BackchannelLogoutSessionRequired
	n.IDTokenSignedResponseAlg, n.UserinfoSignedResponseAlg = f.IDTokenSignedResponseAlg, f.UserinfoSignedResponseAlg
	n.TokenEndpointAuthMethod, n.JWKS, n.JWKSURI = f.TokenEndpointAuthMethod, json.RawMessage(f.JWKS), f.JWKSURI
	n.TokenExchangeAudiences = splitList(f.TokenExchangeAudiences)
	n.DPoPBoundAccessTokens, n.RequireDPoPNonce = f.DPoPBoundAccessTokens, f.RequireDPoPNonce
	n.RequirePushedAuthorizationRequests, n.RequireSignedRequestObject = f.RequirePushedAuthorizationRequests, f.RequireSignedRequestObject
	if n.CustomClaims, err = parseCustomClaims(f.CustomClaims); err != nil {
		return account.NewClient{}, err
	}
	n.Resources = lines(f.Resources)
	n.SubjectType, n.SectorIdentifierURI = f.SubjectType, f.SectorIdentifierURI
	return n, nil
}

// patch turns the form into an edit of every field; ClientService changes
// only those that differ.
func (f appForm) patch() (account.ClientPatch, error) {
	grants, scopes := f.lists()
	access, id, refresh, err := f.lifetimes()
	if err != nil {
		return account.ClientPatch{}, err
	}
	redirects, postLogout, groups := lines(f.RedirectURIs), lines(f.PostLogoutRedirectURIs), splitList(f.AllowedGroups)
	p := account.ClientPatch{
		Name: &f.Name, RedirectURIs: &redirects, PostLogoutRedirectURIs: &postLogout, GrantTypes: &grants,
		Public: &f.Public, AllowedScopes: &scopes, SkipConsent: &f.SkipConsent, AccessTokenJWT: &f.AccessTokenJWT,
		AccessTokenLifetime: &access, IDTokenLifetime: &id, RefreshTokenLifetime: &refresh, AllowedGroups: &groups,
	}
	p.FrontchannelLogoutURI, p.FrontchannelLogoutSessionRequired = &f.FrontchannelLogoutURI, &f.FrontchannelLogoutSessionRequired
	p.BackchannelLogoutURI, p.BackchannelLogoutSessionRequired = &f.BackchannelLogoutURI, &f.BackchannelLogoutSessionRequired
	p.IDTokenSignedResponseAlg, p.UserinfoSignedResponseAlg = &f.IDTokenSignedResponseAlg, &f.UserinfoSignedResponseAlg
	jwks := json.RawMessage(f.JWKS)
	p.TokenEndpointAuthMethod, p.JWKS, p.JWKSURI = &f.TokenEndpointAuthMethod, &jwks, &f.JWKSURI
	audiences := splitList(f.TokenExchangeAudiences)
	p.TokenExchangeAudiences = &audiences
	p.DPoPBoundAccessTokens, p.RequireDPoPNonce = &f.DPoPBoundAccessTokens, &f.RequireDPoPNonce
	p.RequirePushedAuthorizationRequests, p.RequireSignedRequestObject = &f.RequirePushedAuthorizationRequests, &f.RequireSignedRequestObject
	claims, err := parseCustomClaims(f.CustomClaims)
	if err != nil {
		return account.ClientPatch{}, err
	}
	p.CustomClaims = &claims
	resources := lines(f.Resources)
	p.Resources = &resources
	p.SubjectType, p.SectorIdentifierURI = &f.SubjectType, &f.SectorIdentifierURI
	return p, nil
}

type adminAppsData struct {
	web.Base
	Apps   []storage.Client
	Notice string
}

func (s *Server) adminApps(w http.ResponseWriter, r *http.Request, m me) error {
	apps, err := s.acct.Clients.ListClients(r.Context())
	if err != nil {
		return err
	}
	d := &adminAppsData{Base: s.web.Base(r, &m.User, "Apps"), Apps: apps}
	d.Nav, d.AdminSection = "admin", "apps"
	if r.URL.Query().Get("done") == "deleted" {
		d.Notice = "The app was deleted. Its tokens no longer work."
	}
	s.web.Render(w, r, http.StatusOK, "admin_apps", d)
	return nil
}

type adminAppData struct {
	web.Base
	New    bool           // the form registers a new app
	App    storage.Client // the stored app (not for New)
	F      appForm
	Notice string
	Error  string
	Field  string // the field an error names
	// Secret is a secret just made, shown this once.
	Secret string
	// PreviousUntil is when the secret a rotation replaced stops working
	// ("" when none is in force).
	PreviousUntil string
	Static        string // why the app is read-only
	GrantChoices  []string
	ScopeChoices  []string
	// AlgorithmChoices are the signing algorithms an app may choose.
	AlgorithmChoices []string
	// AuthMethodChoices are the client authentication methods the form
	// offers; "" is the default (the secret, sent either way).
	AuthMethodChoices []string

	// Off are the form's controls whose [oauth] feature is off
	// (appControlsOff).
	Off map[string]*offControl
}

// offControl is a control of the app form whose [oauth] feature is off
// (account.FeaturesOff). It is offered only to an app that has its
// setting from before the feature was turned off (Kept): checked and
// enabled, so that saving the form unchanged sends the setting back (a
// disabled checkbox is not submitted, and the edit would drop it), and
// unchecking it drops it. To any other app it is shown disabled, with a
// note naming the [oauth] key; the app rules refuse it all the same.
type offControl struct {
	ID   string // the note's id, for aria-describedby
	Key  string // the [oauth] key in config.toml that turns the feature on
	Kept bool   // the stored app has the setting
}

// appControlsOff are the app form's controls whose [oauth] feature is
// off, by the control's name (a grant type for its checkbox); app is the
// stored app, nil for a new one.
func appControlsOff(off account.FeaturesOff, app *storage.Client) map[string]*offControl {
	var c storage.Client
	if app != nil {
		c = *app
	}
	out := map[string]*offControl{}
	add := func(isOff bool, control, id, key string, has bool) {
		if isOff {
			out[control] = &offControl{ID: "off-" + id, Key: key, Kept: has}
		}
	}
	add(off.DeviceFlow, account.GrantDeviceCode, "device_code", "device_flow", slices.Contains(c.GrantTypes, account.GrantDeviceCode))
	add(off.TokenExchange, account.GrantTokenExchange, "token_exchange", "token_exchange", slices.Contains(c.GrantTypes, account.GrantTokenExchange))
	add(off.DPoP, "dpop_bound_access_tokens", "dpop_bound_access_tokens", "dpop", c.DPoPBoundAccessTokens)
	add(off.DPoP, "require_dpop_nonce", "require_dpop_nonce", "dpop", c.RequireDPoPNonce)
	add(off.PushedRequests, "require_pushed_authorization_requests", "require_pushed_authorization_requests",
		"pushed_authorization_requests", c.RequirePushedAuthorizationRequests)
	add(off.RequestObjects, "require_signed_request_object", "require_signed_request_object", "request_objects", c.RequireSignedRequestObject)
	add(off.PairwiseSubjects, "subject_type", "subject_type", "pairwise_subjects", account.Pairwise(c))
	return out
}

// setOff fills d.Off for app (nil for a new one) and unsets in d.F what
// only a crafted or stale form sends: a setting the form does not offer
// (the app rules refused it, and the error above says why).
func (d *adminAppData) setOff(off account.FeaturesOff, app *storage.Client) {
	d.Off = appControlsOff(off, app)
	offered := func(control string) bool { c := d.Off[control]; return c == nil || c.Kept }
	for _, g := range []string{account.GrantDeviceCode, account.GrantTokenExchange} {
		if !offered(g) {
			delete(d.F.Grants, g)
		}
	}
	d.F.DPoPBoundAccessTokens = d.F.DPoPBoundAccessTokens && offered("dpop_bound_access_tokens")
	d.F.RequireDPoPNonce = d.F.RequireDPoPNonce && offered("require_dpop_nonce")
	d.F.RequirePushedAuthorizationRequests = d.F.RequirePushedAuthorizationRequests && offered("require_pushed_authorization_requests")
	d.F.RequireSignedRequestObject = d.F.RequireSignedRequestObject && offered("require_signed_request_object")
	if d.F.SubjectType == account.SubjectPairwise && !offered("subject_type") {
		d.F.SubjectType = account.SubjectPublic
	}
}

func (s *Server) appPageData(r *http.Request, m me, title string) *adminAppData {
	d := &adminAppData{Base: s.web.Base(r, &m.User, title), GrantChoices: appGrantChoices, ScopeChoices: appScopeChoices, AlgorithmChoices: account.SigningAlgorithms,
		AuthMethodChoices: append([]string{""}, account.TokenEndpointAuthMethods...)}
	d.Nav, d.AdminSection = "admin", "apps"
	return d
}

// showAdminApp renders app id's page; d.F stays as given when set (a form
// posted back with its error).
func (s *Server) showAdminApp(w http.ResponseWriter, r *http.Request, m me, id string, status int, d *adminAppData) error {
	c, etag, err := s.acct.Clients.GetClient(r.Context(), id)
	if err != nil {
		return err
	}
	base := s.appPageData(r, m, "App")
	d.Base, d.GrantChoices, d.ScopeChoices = base.Base, base.GrantChoices, base.ScopeChoices
	d.AlgorithmChoices = base.AlgorithmChoices
	d.AuthMethodChoices = base.AuthMethodChoices
	d.App = c
	if d.F.ETag == "" {
		d.F = appFormOf(c, etag)
	}
	d.ScopeChoices = withCustomScopes(d.ScopeChoices, d.F)
	d.setOff(s.acct.Clients.FeaturesOff(), &c)
	if c.Static {
		d.Static = staticAppReason
	}
	if c.PreviousSecretHash != "" && c.PreviousSecretUntil.After(s.now()) {
		d.PreviousUntil = c.PreviousSecretUntil.UTC().Format("2006-01-02 15:04 MST")
	}
	if d.Secret != "" {
		w.Header().Set("Cache-Control", "no-store")
	}
	s.web.Render(w, r, status, "admin_app", d)
	return nil
}

// appNotices are the messages a redirect after an action names.
var appNotices = map[string]string{
	"saved":    "The changes were saved.",
	"approved": "The app is approved: people can sign in to it now.",
}

func (s *Server) adminAppPage(w http.ResponseWriter, r *http.Request, m me) error {
	return s.showAdminApp(w, r, m, mux.Vars(r)["id"], http.StatusOK, &adminAppData{Notice: appNotices[r.URL.Query().Get("done")]})
}

// appRefused shows the app's page with a refusal the admin can act on
// (bad input, a stale form, a static app); other errors go up.
func (s *Server) appRefused(w http.ResponseWriter, r *http.Request, m me, err error, d *adminAppData) error {
	switch code := account.ErrorCode(err); code {
	case account.Invalid, account.Conflict, account.PreconditionFailed:
		d.Error, d.Field = errorText(web.PickLanguage(r, m.User.Locale), err), account.ErrorField(err)
		customClaimsError(web.PickLanguage(r, m.User.Locale), err, d)
		if code == account.PreconditionFailed {
			d.F = appForm{} // show what is stored now
		}
		return s.showAdminApp(w, r, m, mux.Vars(r)["id"], statusFor(code), d)
	}
	return err
}

func (s *Server) adminEditApp(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	f := postedAppForm(r)
	f.ID = id
	d := &adminAppData{F: f}
	if f.ETag == "" {
		// Every form carries its version: without one it would
		// overwrite whatever is stored.
		return s.appRefused(w, r, m, account.ErrClientChanged, d)
	}
	p, err := f.patch()
	if err == nil {
		_, _, err = s.acct.Clients.UpdateClient(r.Context(), consoleActor(r, m), id, f.ETag, p)
	}
	if err != nil {
		return s.appRefused(w, r, m, err, d)
	}
	http.Redirect(w, r, "/admin/apps/"+url.PathEscape(id)+"?done=saved", http.StatusSeeOther)
	return nil
}

// graceOf reads the rotation form's grace period: a whole number of
// hours or days.
func graceOf(r *http.Request) (time.Duration, error) {
	unit := time.Hour
	switch r.PostFormValue("grace_unit") {
	case "hours":
	case "days":
		unit = 24 * time.Hour
	default:
		return 0, account.FieldErrorf("grace", "Choose hours or days for the grace period.")
	}
	v := strings.TrimSpace(r.PostFormValue("grace"))
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > int(account.MaxSecretGrace/time.Hour) {
		return 0, account.FieldErrorf("grace", "The grace period must be a whole number of hours or days, at most 30 days.")
	}
	return time.Duration(n) * unit, nil
}

// adminRotateAppSecret gives the app a new secret and shows it once, on
// the app's page (the answer to the POST: never in an address).
func (s *Server) adminRotateAppSecret(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	grace, err := graceOf(r)
	revoke := r.PostFormValue("revoke_tokens") == "1"
	if err == nil && grace == 0 && !confirmed(r) {
		// Without a grace the old secret stops at once and the app's
		// servers fail until they have the new one: ask first.
		c, _, gerr := s.acct.Clients.GetClient(r.Context(), id)
		if gerr != nil {
			return gerr
		}
		if c.SecretHash != "" {
			path := "/admin/apps/" + url.PathEscape(c.ID)
			d := s.confirmPage(r, m, "admin", "Replace the secret now?", "New secret", path+"/rotate-secret", path)
			d.AdminSection = "apps"
			d.Detail = c.Name + " (" + c.ID + ")"
			d.Message = web.Translate(d.Lang, "The current secret stops working at once: the app fails until it has the new one. To switch without downtime, go back and keep the old secret working for a while.")
			d.Hidden = []hiddenField{{"grace", "0"}, {"grace_unit", "hours"}}
			if revoke {
				d.Hidden = append(d.Hidden, hiddenField{"revoke_tokens", "1"})
			}
			s.showConfirm(w, r, d, nil)
			return nil
		}
	}
	var secret string
	if err == nil {
		secret, err = s.acct.Clients.RotateSecret(r.Context(), consoleActor(r, m), id, grace, revoke)
	}
	if err != nil {
		return s.appRefused(w, r, m, err, &adminAppData{})
	}
	notice := "The app has a new secret. The previous one stopped working."
	switch {
	case grace > 0 && revoke:
		notice = "The app has a new secret. The previous one keeps working until the time below; every token issued to the app so far was revoked."
	case grace > 0:
		notice = "The app has a new secret. The previous one keeps working until the time below."
	case revoke:
		notice = "The app has a new secret. The previous one stopped working, and every token issued to the app so far was revoked."
	}
	return s.showAdminApp(w, r, m, id, http.StatusOK, &adminAppData{Secret: secret, Notice: notice})
}

func (s *Server) adminDeleteAppPage(w http.ResponseWriter, r *http.Request, m me) error {
	c, _, err := s.acct.Clients.GetClient(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	path := "/admin/apps/" + url.PathEscape(c.ID)
	d := s.confirmPage(r, m, "admin", "Delete this app?", "Delete app", path+"/delete", path)
	d.AdminSection = "apps"
	d.Detail = c.Name + " (" + c.ID + ")"
	d.Message = web.Translate(d.Lang, "People can no longer sign in to it, and every token it holds stops working. This cannot be undone.")
	s.showConfirm(w, r, d, nil)
	return nil
}

func (s *Server) adminDeleteApp(w http.ResponseWriter, r *http.Request, m me) error {
	if !confirmed(r) {
		return s.adminDeleteAppPage(w, r, m)
	}
	if err := s.acct.Clients.DeleteClient(r.Context(), consoleActor(r, m), mux.Vars(r)["id"]); err != nil {
		return s.appRefused(w, r, m, err, &adminAppData{})
	}
	http.Redirect(w, r, "/admin/apps?done=deleted", http.StatusSeeOther)
	return nil
}

func (s *Server) adminNewAppPage(w http.ResponseWriter, r *http.Request, m me) error {
	d := s.appPageData(r, m, "New app")
	d.New = true
	d.F = appForm{Grants: map[string]bool{account.GrantAuthorizationCode: true, account.GrantRefreshToken: true}, Scopes: map[string]bool{}}
	d.setOff(s.acct.Clients.FeaturesOff(), nil)
	s.web.Render(w, r, http.StatusOK, "admin_app", d)
	return nil
}

// adminCreateApp registers the app and shows its page with the secret,
// this once.
func (s *Server) adminCreateApp(w http.ResponseWriter, r *http.Request, m me) error {
	f := postedAppForm(r)
	n, err := f.newClient()
	var c storage.Client
	var secret string
	if err == nil {
		c, secret, err = s.acct.Clients.RegisterClient(r.Context(), consoleActor(r, m), n)
	}
	if err != nil {
		code := account.ErrorCode(err)
		if code != account.Invalid && code != account.Conflict {
			return err
		}
		d := s.appPageData(r, m, "New app")
		d.New, d.F = true, f
		d.Error, d.Field = errorText(web.PickLanguage(r, m.User.Locale), err), account.ErrorField(err)
		customClaimsError(web.PickLanguage(r, m.User.Locale), err, d)
		d.ScopeChoices = withCustomScopes(d.ScopeChoices, f)
		d.setOff(s.acct.Clients.FeaturesOff(), nil)
		s.web.Render(w, r, statusFor(code), "admin_app", d)
		return nil
	}
	d := &adminAppData{Notice: "The app was created.", Secret: secret}
	return s.showAdminApp(w, r, m, c.ID, http.StatusCreated, d)
}
