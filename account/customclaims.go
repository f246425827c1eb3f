package account

import (
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/keyport/keyport/storage"
)

// Custom claims per app (storage.Client.CustomClaims): an admin maps user
// data to claims of the app's own naming, each released by a scope, as
// Keycloak's protocol mappers do. The rules here are the only ones: the
// configuration file, the management API and the console all go through
// normalizeCustomClaims, and the provider asks CustomClaims for values.

// Where a custom claim may go.
const (
	ClaimInIDToken     = "id_token"
	ClaimInUserinfo    = "userinfo"
	ClaimInAccessToken = "access_token"
)

// ClaimPlaces are the tokens a custom claim may be put in, in the order
// they are stored.
var ClaimPlaces = []string{ClaimInIDToken, ClaimInUserinfo, ClaimInAccessToken}

// DefaultClaimPlaces are where a mapping that names none puts its claim:
// where Keyport puts the standard claims of a scope (the ID token and
// userinfo; access tokens carry no profile claims).
var DefaultClaimPlaces = []string{ClaimInIDToken, ClaimInUserinfo}

// Bounds of an app's custom claims.
const (
	MaxCustomClaims        = 32
	MaxCustomClaimLength   = 128
	MaxCustomScopeLength   = 64
	AppMetadataSource      = "app_metadata."
	customScopeReservedPfx = "keyport:"
)

var (
	customClaimPattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.:/-]*$`)
	customScopePattern = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
)

// protectedClaims are the names no mapping may take: the registered claims
// of JWT (RFC 7519), ID tokens, logout tokens, JWT access tokens (RFC
// 9068), introspection (RFC 7662), token exchange (RFC 8693) and DPoP (RFC
// 9449), and every claim Keyport itself fills from the profile (OIDC Core
// §5.1 and groups and roles), so an app can trust email, sub or groups to
// mean what Keyport says they mean.
var protectedClaims = func() map[string]bool {
	m := map[string]bool{}
	for _, n := range []string{
		"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "typ", "cty",
		"azp", "nonce", "acr", "amr", "auth_time", "sid", "at_hash", "c_hash", "s_hash",
		"cnf", "client_id", "scope", "scp", "act", "may_act", "events", "txn",
		"active", "token_type", "username", "_claim_names", "_claim_sources",
		"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username",
		"profile", "picture", "website", "email", "email_verified", "gender", "birthdate",
		"zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at",
		"groups", "roles",
	} {
		m[n] = true
	}
	for _, a := range Attributes {
		if a.Claim != "" {
			m[a.Claim] = true
		}
	}
	return m
}()

// ProtectedClaim tells whether name is a claim no mapping may take, in
// any case: Go's encoding/json (go-oidc, zitadel's relying party) and
// other decoders match a token's keys regardless of case, so Email in a
// token without the email scope would be read as email.
func ProtectedClaim(name string) bool { return protectedClaims[strings.ToLower(name)] }

// claimSource is the profile policy table's row a source names: every row
// whose value reaches tokens (Attribute.Claim), sub aside. Rows without a
// claim (recovery email, theme, sign-in times) and what is not in the table
// at all (password and second-factor data, blocked, last IP) can never be
// a source.
func claimSource(source string) (Attribute, bool) {
	a, ok := AttributeByKey(source)
	if !ok || a.Claim == "" || a.Claim == "sub" {
		return Attribute{}, false
	}
	return a, true
}

// ClaimSources are the sources besides app_metadata.<key>, for help texts.
func ClaimSources() []string {
	var out []string
	for _, a := range Attributes {
		if _, ok := claimSource(a.Key); ok {
			out = append(out, a.Key)
		}
	}
	return out
}

// validSource tells whether source names something a claim may carry.
func validSource(source string) bool {
	if key, ok := strings.CutPrefix(source, AppMetadataSource); ok {
		return appMetadataKeyPattern.MatchString(key)
	}
	_, ok := claimSource(source)
	return ok
}

// customScopeAllowed tells whether a mapping may be released by scope sc:
// any scope but offline_access (it asks for a refresh token, not for
// data) and the management API's (and every keyport: one).
func customScopeAllowed(sc string) bool {
	return sc != "" && len(sc) <= MaxCustomScopeLength && customScopePattern.MatchString(sc) &&
		sc != "offline_access" && !strings.HasPrefix(sc, customScopeReservedPfx)
}

// normalizeCustomClaims checks c's custom claims and brings them to their
// stored form: places in a fixed order, the defaults filled in. It runs
// after the allowed scopes are normalized, since a mapping's scope must be
// one the app may receive. Each error names the mapping's field, as
// custom_claims[2].claim.
func normalizeCustomClaims(c *storage.Client) *Error {
	if len(c.CustomClaims) == 0 {
		c.CustomClaims = nil
		return nil
	}
	if len(c.CustomClaims) > MaxCustomClaims {
		return FieldErrorf("custom_claims", "At most 32 custom claims per app.")
	}
	out := make([]storage.ClaimMapping, 0, len(c.CustomClaims))
	for i, m := range c.CustomClaims {
		key := fmt.Sprintf("custom_claims[%d]", i)
		switch {
		case m.Claim == "" || len(m.Claim) > MaxCustomClaimLength || !customClaimPattern.MatchString(m.Claim):
			return FieldErrorf(key+".claim", "A claim name is 1 to 128 characters from A-Z a-z 0-9 _ . : / -, starting with a letter.")
		case ProtectedClaim(m.Claim):
			return FieldErrorf(key+".claim", "This claim is registered or filled by Keyport itself (such as sub, iss, aud, exp, email, email_verified or groups); choose another name.")
		case slices.ContainsFunc(out, func(o storage.ClaimMapping) bool { return strings.EqualFold(o.Claim, m.Claim) }):
			return FieldErrorf(key+".claim", "Each claim may be mapped only once per app (names that differ only in case count as one).")
		case !validSource(m.Source):
			return FieldErrorf(key+".source", "Unknown source: use app_metadata.<key>, roles, groups or a profile field such as username, email or name.")
		case m.Scope == "":
			return FieldErrorf(key+".scope", "Name the scope that releases the claim.")
		case !customScopeAllowed(m.Scope):
			return FieldErrorf(key+".scope", "A scope is 1 to 64 characters from A-Z a-z 0-9 _ . : -; offline_access and the keyport: scopes cannot release claims.")
		case m.Scope != "openid" && len(c.AllowedScopes) > 0 && !slices.Contains(c.AllowedScopes, m.Scope):
			return FieldErrorf(key+".scope", "The app's allowed scopes do not include this scope: add it there, or allow every scope.")
		}
		places := DefaultClaimPlaces
		if len(m.In) > 0 {
			for _, p := range m.In {
				if !slices.Contains(ClaimPlaces, p) {
					return FieldErrorf(key+".in", "A custom claim goes in id_token, userinfo or access_token.")
				}
			}
			places = slices.DeleteFunc(slices.Clone(ClaimPlaces), func(p string) bool { return !slices.Contains(m.In, p) })
		}
		out = append(out, storage.ClaimMapping{Claim: m.Claim, Source: m.Source, Scope: m.Scope, In: slices.Clone(places)})
	}
	c.CustomClaims = out
	return nil
}

// customScopeOf tells whether sc is a scope one of mappings is released
// by that the provider does not offer to every app (ClientScopes).
func customScopeOf(mappings []storage.ClaimMapping, sc string) bool {
	if slices.Contains(ClientScopes, sc) {
		return false
	}
	return slices.ContainsFunc(mappings, func(m storage.ClaimMapping) bool { return m.Scope == sc })
}

// CustomScopes are the scopes of c's custom claims that are not among the
// provider's own (ClientScopes), each once: scopes c, and no other app,
// may ask for at /authorize. Discovery does not list them.
func CustomScopes(c storage.Client) []string {
	var out []string
	for _, m := range c.CustomClaims {
		if !slices.Contains(ClientScopes, m.Scope) && !slices.Contains(out, m.Scope) {
			out = append(out, m.Scope)
		}
	}
	return out
}

// IsCustomScope tells whether sc is one of c's custom scopes.
func IsCustomScope(c storage.Client, sc string) bool { return customScopeOf(c.CustomClaims, sc) }

// CustomClaims returns u's custom claims of app c for one place
// (ClaimInIDToken, ClaimInUserinfo, ClaimInAccessToken) that scopes
// release, plus those named in names (claims the claims parameter asked
// for individually, OIDC Core §5.5), which need no scope there. A source
// without a value (an app_metadata key the user lacks, an empty field)
// leaves its claim out; roles and groups are always arrays. nil when c
// maps nothing: apps without mappings pay one length check.
func CustomClaims(c storage.Client, u storage.User, scopes, names []string, place, issuer string) map[string]any {
	if len(c.CustomClaims) == 0 {
		return nil
	}
	var out map[string]any
	for _, m := range c.CustomClaims {
		if !slices.Contains(m.In, place) || (!slices.Contains(scopes, m.Scope) && !slices.Contains(names, m.Claim)) {
			continue
		}
		v := customClaimValue(m.Source, u, issuer)
		if v == nil {
			continue
		}
		if out == nil {
			out = make(map[string]any)
		}
		out[m.Claim] = v
	}
	return out
}

// customClaimValue is u's value of source, nil for none.
func customClaimValue(source string, u storage.User, issuer string) any {
	if key, ok := strings.CutPrefix(source, AppMetadataSource); ok {
		v, found := u.AppMetadata[key]
		if !found {
			return nil
		}
		return v
	}
	a, ok := claimSource(source)
	if !ok {
		return nil // validated when stored; nothing unknown leaves
	}
	return a.ClaimValue(u, issuer)
}

// RequestableCustomClaims keeps of names (a claims parameter's) the custom
// claims of c that may go in place and whose scope c may receive, each
// once.
func RequestableCustomClaims(c storage.Client, names []string, place string) []string {
	var out []string
	for _, n := range names {
		i := slices.IndexFunc(c.CustomClaims, func(m storage.ClaimMapping) bool { return m.Claim == n })
		if i < 0 || slices.Contains(out, n) || !slices.Contains(c.CustomClaims[i].In, place) {
			continue
		}
		if sc := c.CustomClaims[i].Scope; sc != "openid" && len(c.AllowedScopes) > 0 && !slices.Contains(c.AllowedScopes, sc) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// CustomClaimScopes are the scopes of c's custom claims named in names,
// each once: what a person consents to for claims asked for individually.
func CustomClaimScopes(c storage.Client, names []string) []string {
	var out []string
	for _, m := range c.CustomClaims {
		if slices.Contains(names, m.Claim) && !slices.Contains(out, m.Scope) {
			out = append(out, m.Scope)
		}
	}
	return out
}

// customClaimsText is an app's mappings as the audit log shows them: one
// "claim=source@scope[places]" per mapping.
func customClaimsText(ms []storage.ClaimMapping) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		parts = append(parts, fmt.Sprintf("%s=%s@%s[%s]", m.Claim, m.Source, m.Scope, strings.Join(m.In, ",")))
	}
	return strings.Join(parts, " ")
}
