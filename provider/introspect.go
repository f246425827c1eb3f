package provider

import (
	"encoding/json"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"

	"github.com/keyport/keyport/account"
)

// introspectRefreshToken answers the introspection of a refresh token, which
// RFC 7662 §2.1 allows; zitadel's handler knows only access tokens. Only
// the client the token was issued to learns that it is active (§2.2 lets the
// answer depend on the caller), and looking does not count as using: a
// rotated token is inactive and its family stays as it was.
//
// It reports false, having written nothing, for what it leaves to zitadel:
// tokens of another shape, and callers that zitadel refuses in its usual way
// (no or wrong credentials).
func (p *Provider) introspectRefreshToken(w http.ResponseWriter, r *http.Request) bool {
	token := r.PostForm.Get("token")
	if !refreshShaped(token) {
		return false
	}
	clientID, err := op.ClientBasicAuth(r, p.storage)
	if err != nil {
		return false
	}
	resp := oidc.IntrospectionResponse{}
	rt, err := p.opts.Store.PeekRefreshToken(r.Context(), refreshKey(token))
	if err == nil && rt.ClientID == clientID {
		// Active means a refresh would succeed: the user may still sign
		// in, and to this app (its allowed groups), for the scopes the
		// app may still receive.
		c, cerr := p.storage.getClient(r.Context(), rt.ClientID)
		if u, err := p.storage.activeUser(r.Context(), rt.UserID); err == nil && cerr == nil && account.MayUseClient(u, c) == nil {
			resp.Active = true
			resp.Issuer = p.opts.Issuer
			resp.Scope = allowedScopes(c, rt.Scopes)
			resp.ClientID = rt.ClientID
			resp.Subject = p.opts.Subjects.Subject(c, rt.UserID)
			resp.Username = introspectedUsername(u, resp.Subject, resp.Scope)
			resp.Audience = []string{rt.ClientID}
			resp.IssuedAt = oidc.FromTime(rt.CreatedAt)
			resp.Expiration = oidc.FromTime(rt.End())
		}
	}
	body, err := json.Marshal(&resp)
	if err != nil {
		return false
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
	_, _ = w.Write(body)
	return true
}
