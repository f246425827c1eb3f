package provider

import (
	"encoding/json"
	"net/http"

	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
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
		if u, err := p.storage.activeUser(r.Context(), rt.UserID); err == nil {
			resp.Active = true
			resp.Scope = rt.Scopes
			resp.ClientID = rt.ClientID
			resp.Subject = rt.UserID
			resp.Username = u.Username
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
