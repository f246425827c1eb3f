package provider

import (
	"context"
	"maps"
	"slices"
	"strings"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// Custom claims per app (account/customclaims.go) reach the tokens here:
// the ID token (SetUserinfoFromRequest), userinfo (SetUserinfoFromToken),
// JWT access tokens (GetPrivateClaimsFromRequest) and introspection. Each
// place reads the app from the request's memo, which the request has read
// already (to authenticate it, for its grant, or to sign userinfo), and an
// app without mappings costs a length check: no read, no allocation. The
// user is read only for an app with mappings, and then from the memo too.

var _ op.CanGetPrivateClaimsFromRequest = (*opStorage)(nil)

// mappedClient is app clientID when it has custom claims.
func (s *opStorage) mappedClient(ctx context.Context, clientID string) (storage.Client, bool) {
	if clientID == "" {
		return storage.Client{}, false
	}
	c, err := s.getClient(ctx, clientID)
	return c, err == nil && len(c.CustomClaims) > 0
}

// customClaims are the custom claims of app clientID for user userID at
// place, released by scopes or asked for by name; nil for an app without
// mappings, or when the user cannot be read (the caller has refused an
// inactive user already).
func (s *opStorage) customClaims(ctx context.Context, clientID, userID, subject string, scopes, names []string, place string) map[string]any {
	if userID == "" {
		return nil
	}
	c, ok := s.mappedClient(ctx, clientID)
	if !ok {
		return nil
	}
	u, err := s.getUser(ctx, userID)
	if err != nil {
		return nil
	}
	return s.pairwiseClaims(u, subject, account.CustomClaims(c, u, scopes, names, place, s.issuer))
}

// customClaimsOf is customClaims for a user the caller has read already
// (with its token, at userinfo and introspection).
func (s *opStorage) customClaimsOf(ctx context.Context, clientID string, u storage.User, subject string, scopes, names []string, place string) map[string]any {
	c, ok := s.mappedClient(ctx, clientID)
	if !ok || u.ID == "" {
		return nil
	}
	return s.pairwiseClaims(u, subject, account.CustomClaims(c, u, scopes, names, place, s.issuer))
}

// appendCustomClaims adds the custom claims of the token request req to
// an ID token's claims.
func (s *opStorage) appendCustomClaims(ctx context.Context, info *oidc.UserInfo, req op.IDTokenRequest, scopes []string) {
	tr, ok := req.(op.TokenRequest)
	if !ok {
		return
	}
	for k, v := range s.customClaims(ctx, req.GetClientID(), userIDOf(tr), req.GetSubject(), scopes, idTokenClaimsOf(req), account.ClaimInIDToken) {
		info.AppendClaims(k, v)
	}
}

// GetPrivateClaimsFromRequest gives a JWT access token the custom claims
// its app puts in access tokens. zitadel hands it the scopes without
// profile, email, phone and address; the request's own scopes decide
// here, as they do for the ID token. An exchanged token (RFC 8693) is its
// requesting app's, with the scopes it kept, as introspection reports it.
func (s *opStorage) GetPrivateClaimsFromRequest(ctx context.Context, req op.TokenRequest, _ []string) (map[string]any, error) {
	clientID := ""
	switch r := req.(type) {
	case *authRequest:
		clientID = r.a.ClientID
	case *refreshRequest:
		clientID = r.rt.ClientID
	case *deviceRequest:
		clientID = r.a.ClientID
	}
	var claims map[string]any
	if clientID != "" {
		claims = s.customClaims(ctx, clientID, userIDOf(req), req.GetSubject(), req.GetScopes(), nil, account.ClaimInAccessToken)
	}
	if r, ok := req.(exchangeRequest); ok && len(r.app.CustomClaims) > 0 && r.t.UserID != "" {
		// The requesting app came with the request: an app without
		// mappings costs no read here either.
		if u, err := s.getUser(ctx, r.t.UserID); err == nil {
			claims = s.pairwiseClaims(u, r.t.Subject, account.CustomClaims(r.app, u, r.t.Scopes, nil, account.ClaimInAccessToken, s.issuer))
		}
	}
	// cnf of a DPoP-bound token (dpop.go), for every grant: zitadel asks
	// this method instead of GetPrivateClaimsFromScopes once it exists.
	if cnf := dpopClaimsFor(ctx); cnf != nil {
		if claims == nil {
			claims = map[string]any{}
		}
		maps.Copy(claims, cnf)
	}
	// The token's scopes (RFC 9068 §2.2.3), which zitadel's JWT leaves
	// out: a resource server decides by them, and a stateless token
	// (accesstokens.go) is read back from them.
	if scopes := req.GetScopes(); len(scopes) > 0 {
		if claims == nil {
			claims = map[string]any{}
		}
		claims["scope"] = strings.Join(scopes, " ")
	}
	return claims, nil
}

// Discovery lists no app's custom scopes or claims: they are that app's
// alone (IsScopeAllowed refuses them to every other app), and their names
// are configuration of one app, nothing for every unauthenticated caller
// to read. OpenID Connect Discovery 1.0 §3 lets a provider leave
// supported scopes out of scopes_supported; Keycloak does not list a
// client's dedicated mappers either. The app's administrator tells it
// which scopes to ask for.

// maxCustomClaimBytes bounds what custom claims asked for by name add to a
// stored authorization request: their names in both members and their
// scopes, each counted as stored in JSON (quotes and a comma). An app may
// name 32 claims of 128 characters, which would not fit beside the
// largest request otherwise (TestWorstCaseAuthRequestSize); claims beyond
// the bound are not released, as OIDC Core §5.5 lets a provider decline.
const maxCustomClaimBytes = 512

// boundCustomClaims keeps of the custom claims id and ui (asked for in the
// ID token and at userinfo) those that fit in maxCustomClaimBytes with
// their scopes, and returns those scopes, each once.
func boundCustomClaims(c storage.Client, id, ui []string) (idKept, uiKept, scopes []string) {
	used := 0
	take := func(names []string) []string {
		var out []string
		for _, n := range names {
			cost := len(n) + 3
			var fresh []string
			for _, sc := range account.CustomClaimScopes(c, []string{n}) {
				if !slices.Contains(scopes, sc) {
					fresh = append(fresh, sc)
					cost += len(sc) + 3
				}
			}
			if used+cost > maxCustomClaimBytes {
				continue
			}
			used += cost
			out = append(out, n)
			scopes = append(scopes, fresh...)
		}
		return out
	}
	return take(id), take(ui), scopes
}

// requestableScopes keeps of scopes those app c may ask for, as
// /authorize does (zitadel's ValidateAuthReqScopes with IsScopeAllowed):
// the standard scopes, groups and c's own custom scopes, then those its
// allowed scopes name. The grants that take scopes from the app outside
// /authorize (the device flow, an app-password exchange) use it, so no
// app gets another app's custom scope there either.
func requestableScopes(c storage.Client, scopes []string) []string {
	own := &client{c: c}
	kept := slices.DeleteFunc(slices.Clone(scopes), func(sc string) bool {
		switch sc {
		case oidc.ScopeOpenID, oidc.ScopeProfile, oidc.ScopeEmail, oidc.ScopePhone, oidc.ScopeAddress, oidc.ScopeOfflineAccess:
			return false
		}
		return !own.IsScopeAllowed(sc)
	})
	return allowedScopes(c, kept)
}
