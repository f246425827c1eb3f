package storage

import (
	"maps"
	"slices"
)

// Clone returns a copy of c that shares no memory with it. A store that
// keeps decoded clients (bolt's, read on nearly every protocol request)
// hands out clones, so no caller can change what another one reads.
// TestCloneSharesNothing fails for a field of a new kind added here
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

// Clone returns a copy of u that shares no memory with it (see Client.Clone:
// bolt keeps decoded users too). TestCloneSharesNothing covers it.
func (u User) Clone() User {
	u.Groups = slices.Clone(u.Groups)
	u.Roles = slices.Clone(u.Roles)
	u.CustomData = maps.Clone(u.CustomData)
	u.Identities = slices.Clone(u.Identities)
	u.AppMetadata = maps.Clone(u.AppMetadata)
	u.TOTPSecret = slices.Clone(u.TOTPSecret)
	u.TOTPPending = slices.Clone(u.TOTPPending)
	u.RecoveryCodes = slices.Clone(u.RecoveryCodes)
	u.AllowedNetworks = slices.Clone(u.AllowedNetworks)
	u.VerifiedEmails = slices.Clone(u.VerifiedEmails)
	return u
}

// Clone returns a copy of r that shares no memory with it (see
// Client.Clone: bolt keeps decoded refresh tokens too).
// TestCloneSharesNothing covers it.
func (r RefreshToken) Clone() RefreshToken {
	r.Scopes = slices.Clone(r.Scopes)
	r.Audience = slices.Clone(r.Audience)
	r.AMR = slices.Clone(r.AMR)
	r.SealedValue = slices.Clone(r.SealedValue)
	r.IDTokenClaims = slices.Clone(r.IDTokenClaims)
	r.UserinfoClaims = slices.Clone(r.UserinfoClaims)
	r.Resources = slices.Clone(r.Resources)
	return r
}
