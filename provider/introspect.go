package provider

import (
	"encoding/json"
	"net/http"
	"net/url"
	"time"

	"github.com/zitadel/oidc/v3/pkg/oidc"

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
	rawID, rawSecret, ok := r.BasicAuth()
	if !ok {
		return false
	}
	clientID, err1 := url.QueryUnescape(rawID)
	secret, err2 := url.QueryUnescape(rawSecret)
	if err1 != nil || err2 != nil || p.storage.AuthorizeClientIDSecret(r.Context(), clientID, secret) != nil {
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
			resp.Expiration = oidc.FromTime(earliest(rt.ExpiresAt, rt.IdleExpiresAt))
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

// refreshShaped tells whether a presented token could be one of our refresh
// tokens (see newRefreshToken), or one from before the time prefix.
func refreshShaped(token string) bool {
	if len(token) != refreshPrefixLen+account.SecretLen && len(token) != account.SecretLen {
		return false
	}
	for _, c := range []byte(token) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// earliest is the earlier of two deadlines, a zero one meaning none.
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}
