package provider

import (
	"context"
	"encoding/json"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// maxClaimsParam bounds the claims parameter (OIDC Core §5.5), in bytes.
// A request for every claim Keyport releases, each with essential and a
// value, takes about 1 KiB; 4 KiB still fits nginx's 8 KiB request line
// next to the other parameters. What is stored is the names Keyport knows
// (account.RequestableClaims, account.KnownACRs), not the text.
const maxClaimsParam = 4096

// maxClaimsPerMember bounds the claims one member may name, so a request
// costs bounded work whatever it holds.
const maxClaimsPerMember = 64

// claimsRequest is a parsed claims parameter: the claims asked for in the
// ID token and in userinfo, and what it asks of acr.
type claimsRequest struct {
	idToken, userinfo []string
	// acr: the ID token's acr member had values (value or values);
	// acrEssential says whether it is essential.
	acr          []string
	acrAsked     bool
	acrEssential bool
	// subject is the value the ID token's sub is asked for with, "" for
	// none.
	subject string
}

// claimSpec is one claim's request (OIDC Core §5.5.1): null, or an object
// with essential, value or values; other members are ignored.
type claimSpec struct {
	Essential bool            `json:"essential"`
	Value     json.RawMessage `json:"value"`
	Values    json.RawMessage `json:"values"`
}

// parseClaimsParam parses the claims parameter raw ("" for none). Anything
// but a JSON object whose userinfo and id_token members (when present) are
// objects of claim requests is invalid_request. Members it does not know
// are ignored, as §5.5 asks.
func parseClaimsParam(raw string) (claimsRequest, *oidc.Error) {
	var cr claimsRequest
	if raw == "" {
		return cr, nil
	}
	if len(raw) > maxClaimsParam {
		return cr, oidc.ErrInvalidRequest().WithDescription("claims is longer than %d bytes", maxClaimsParam)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &top); err != nil || top == nil {
		return cr, oidc.ErrInvalidRequest().WithDescription("claims must be a JSON object")
	}
	for _, member := range []string{"id_token", "userinfo"} {
		body, ok := top[member]
		if !ok || string(body) == "null" {
			continue
		}
		var specs map[string]*claimSpec
		if err := json.Unmarshal(body, &specs); err != nil {
			return cr, oidc.ErrInvalidRequest().WithDescription("claims.%s must be an object of claim requests", member)
		}
		if len(specs) > maxClaimsPerMember {
			return cr, oidc.ErrInvalidRequest().WithDescription("claims.%s names more than %d claims", member, maxClaimsPerMember)
		}
		for name, spec := range specs {
			if name == "acr" && member == "id_token" {
				if err := cr.setACR(spec); err != nil {
					return cr, err
				}
				continue
			}
			if name == "sub" && member == "id_token" {
				if err := cr.setSubject(spec); err != nil {
					return cr, err
				}
				continue
			}
			if member == "id_token" {
				cr.idToken = append(cr.idToken, name)
			} else {
				cr.userinfo = append(cr.userinfo, name)
			}
		}
	}
	return cr, nil
}

// setACR takes the ID token's acr request: the classes asked for, from
// value (one) or values (several, in order of preference).
func (cr *claimsRequest) setACR(spec *claimSpec) *oidc.Error {
	if spec == nil {
		return nil
	}
	if len(spec.Value) > 0 && string(spec.Value) != "null" {
		var v string
		if err := json.Unmarshal(spec.Value, &v); err != nil {
			return oidc.ErrInvalidRequest().WithDescription("claims.id_token.acr.value must be a string")
		}
		cr.acr = append(cr.acr, v)
	}
	if len(spec.Values) > 0 && string(spec.Values) != "null" {
		var vs []string
		if err := json.Unmarshal(spec.Values, &vs); err != nil {
			return oidc.ErrInvalidRequest().WithDescription("claims.id_token.acr.values must be an array of strings")
		}
		cr.acr = append(cr.acr, vs...)
	}
	cr.acrAsked = len(cr.acr) > 0
	cr.acrEssential = spec.Essential && cr.acrAsked
	return nil
}

// maxSubject bounds the sub a claims parameter asks for: OpenID Connect
// Core 1.0 §2 caps a sub at 255 ASCII characters (Keyport's user IDs are
// 22, a pairwise sub of one is 67).
const maxSubject = 255

// setSubject takes the ID token's sub request: with a value, only that
// user may finish the request (§5.5.1).
func (cr *claimsRequest) setSubject(spec *claimSpec) *oidc.Error {
	if spec == nil || len(spec.Value) == 0 || string(spec.Value) == "null" {
		return nil
	}
	var v string
	if err := json.Unmarshal(spec.Value, &v); err != nil || v == "" || len(v) > maxSubject || !printableText(v) {
		return oidc.ErrInvalidRequest().WithDescription("claims.id_token.sub.value must be a user's subject")
	}
	cr.subject = v
	return nil
}

type claimsRequestKey struct{}

// withClaimsRequest carries the parsed claims parameter of an /authorize
// request to CreateAuthRequest, which zitadel calls without it (its
// oidc.AuthRequest has no claims field).
func withClaimsRequest(ctx context.Context, cr claimsRequest) context.Context {
	return context.WithValue(ctx, claimsRequestKey{}, cr)
}

func claimsRequestFrom(ctx context.Context) claimsRequest {
	cr, _ := ctx.Value(claimsRequestKey{}).(claimsRequest)
	return cr
}

// errUnmetACR answers a request whose essential acr names no class
// Keyport offers (OpenID Connect Core Error Code
// unmet_authentication_requirements 1.0).
func errUnmetACR() *oidc.Error {
	return &oidc.Error{ErrorType: "unmet_authentication_requirements", Description: "none of the requested authentication context classes can be met"}
}

// applyClaimsRequest stores on request a what its claims parameter cr and
// its acr_values ask for that Keyport can honour for app c: the claims c
// may receive, and the classes Keyport knows. An acr in the claims
// parameter with values takes the place of acr_values (it says more: it
// may be essential). An essential acr naming no class Keyport offers
// fails at once. A sub with a value is the one app c knows the person by,
// kept as the user ID the sign-in compares; one c was never given fails
// at once, as no one could answer it (§5.5.1).
func applyClaimsRequest(a *storage.AuthRequest, c storage.Client, cr claimsRequest, subjects *account.Subjects) *oidc.Error {
	a.IDTokenClaims = account.RequestableClaims(c, cr.idToken)
	a.UserinfoClaims = account.RequestableClaims(c, cr.userinfo)
	// The app's custom claims, where its mappings let them go
	// (customclaims.go).
	if len(c.CustomClaims) > 0 {
		id, ui, scopes := boundCustomClaims(c, account.RequestableCustomClaims(c, cr.idToken, account.ClaimInIDToken),
			account.RequestableCustomClaims(c, cr.userinfo, account.ClaimInUserinfo))
		a.IDTokenClaims, a.UserinfoClaims = append(a.IDTokenClaims, id...), append(a.UserinfoClaims, ui...)
		a.CustomClaimScopes = scopes
	}
	if cr.subject != "" {
		userID, ok := subjects.UserOf(c, cr.subject)
		if !ok {
			return oidc.ErrAccessDenied().WithDescription("claims.id_token.sub.value names no user of this app")
		}
		a.Subject = userID
	}
	if cr.acrAsked {
		a.ACRValues, a.ACREssential = account.KnownACRs(cr.acr), cr.acrEssential
	} else {
		a.ACRValues = account.KnownACRs(a.ACRValues)
	}
	if a.ACREssential && len(a.ACRValues) == 0 {
		return errUnmetACR()
	}
	return nil
}

// idTokenClaimsOf are the individual claims the ID token of req carries.
func idTokenClaimsOf(req op.IDTokenRequest) []string {
	switch r := req.(type) {
	case *authRequest:
		return r.a.IDTokenClaims
	case *refreshRequest:
		return r.rt.IDTokenClaims
	}
	return nil
}
