package account

import (
	"slices"

	"github.com/keyport/keyport/storage"
)

// The claims parameter (OIDC Core §5.5) asks for individual user claims
// rather than whole scopes. An app receives a claim asked for this way
// only when it may receive the claim's scope (storage.Client.AllowedScopes;
// empty allows all), and the person consents to that scope like to one the
// app asked for (ConsentScopes): the claims parameter narrows what a scope
// releases, it never reaches past what the app could ask for as a scope.

// ClaimScope is the scope that releases user claim name in the profile
// policy table (Attributes), "" for a claim the table does not release
// (sub, which every token carries, or one Keyport does not know).
func ClaimScope(name string) string {
	for _, a := range Attributes {
		if a.Claim == name && a.Claim != "sub" {
			return a.Scope
		}
	}
	return ""
}

// RequestableClaims keeps of names the claims app c may receive, each
// once, in their order.
func RequestableClaims(c storage.Client, names []string) []string {
	var out []string
	for _, n := range names {
		sc := ClaimScope(n)
		if sc == "" || slices.Contains(out, n) {
			continue
		}
		if len(c.AllowedScopes) > 0 && !slices.Contains(c.AllowedScopes, sc) {
			continue
		}
		out = append(out, n)
	}
	return out
}

// NamedClaims returns u's values of the claims names (those the profile
// policy table releases and u has a value for).
func NamedClaims(u storage.User, names []string, issuer string) map[string]any {
	out := make(map[string]any)
	for _, a := range Attributes {
		if a.Claim == "" || !slices.Contains(names, a.Claim) {
			continue
		}
		if v := a.ClaimValue(u, issuer); v != nil {
			out[a.Claim] = v
		}
	}
	return out
}

// ConsentScopes are the scopes a person allows the app of request a: those
// it asked for, and those of the individual claims it asked for with the
// claims parameter.
func ConsentScopes(a storage.AuthRequest) []string {
	out := slices.Clone(a.Scopes)
	for _, n := range slices.Concat(a.IDTokenClaims, a.UserinfoClaims) {
		if sc := ClaimScope(n); sc != "" && !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	for _, sc := range a.CustomClaimScopes { // customclaims.go
		if !slices.Contains(out, sc) {
			out = append(out, sc)
		}
	}
	return out
}
