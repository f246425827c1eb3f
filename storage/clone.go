package storage

import "slices"

// Clone returns a copy of c that shares no memory with it. A store that
// keeps decoded clients (bolt's, read on nearly every protocol request)
// hands out clones, so no caller can change what another one reads.
// TestClientCloneSharesNothing fails for a field of a new kind added here
// without being copied.
func (c Client) Clone() Client {
	c.RedirectURIs = slices.Clone(c.RedirectURIs)
	c.PostLogoutRedirectURIs = slices.Clone(c.PostLogoutRedirectURIs)
	c.GrantTypes = slices.Clone(c.GrantTypes)
	c.AllowedGroups = slices.Clone(c.AllowedGroups)
	c.AllowedScopes = slices.Clone(c.AllowedScopes)
	c.JWKS = slices.Clone(c.JWKS)
	c.SealedSecret = slices.Clone(c.SealedSecret)
	c.TokenExchangeAudiences = slices.Clone(c.TokenExchangeAudiences)
	c.Resources = slices.Clone(c.Resources)
	if c.CustomClaims != nil {
		c.CustomClaims = slices.Clone(c.CustomClaims)
		for i := range c.CustomClaims {
			c.CustomClaims[i].In = slices.Clone(c.CustomClaims[i].In)
		}
	}
	return c
}
