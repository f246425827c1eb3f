package account

import (
	"slices"

	"github.com/keyport/keyport/storage"
)

// FeaturesOff are the protocol features an administrator turned off in
// config.toml's [oauth] table. The zero value has every one on.
type FeaturesOff struct {
	DeviceFlow       bool // device_flow: the device code grant (RFC 8628)
	TokenExchange    bool // token_exchange: the token exchange grant (RFC 8693)
	PushedRequests   bool // pushed_authorization_requests (RFC 9126)
	RequestObjects   bool // request_objects: signed request objects (RFC 9101)
	DPoP             bool // dpop: tokens bound to DPoP keys (RFC 9449)
	PairwiseSubjects bool // pairwise_subjects (OpenID Connect Core 1.0 §8)
}

// SetFeaturesOff tells the app rules which [oauth] features are off. An
// app is not given a setting that needs one, as config.toml's [[clients]]
// are not: the setting could not work, and discovery does not offer it.
// An app that has the setting already (given while the feature was on)
// keeps it through its edits, so that turning a feature off never makes
// an unrelated edit fail; what it does meanwhile is the provider's
// concern (a pairwise app keeps its subjects, so its users stay who they
// were). Unset, every feature is on.
func (s *ClientService) SetFeaturesOff(off FeaturesOff) { s.off = off }

// FeaturesOff are the [oauth] features that are off, so that a form does
// not offer the settings that need them (checkFeatures refuses them all
// the same).
func (s *ClientService) FeaturesOff() FeaturesOff { return s.off }

// featureSetting is one app setting that needs an [oauth] feature.
type featureSetting struct {
	off   func(FeaturesOff) bool
	field string
	has   func(storage.Client) bool
	// message is shown to whoever asked for the setting.
	message string
}

var featureSettings = []featureSetting{
	{func(o FeaturesOff) bool { return o.DeviceFlow }, "grant_types",
		func(c storage.Client) bool { return slices.Contains(c.GrantTypes, GrantDeviceCode) },
		"The device code grant is off on this server ([oauth] device_flow in config.toml)."},
	{func(o FeaturesOff) bool { return o.TokenExchange }, "grant_types",
		func(c storage.Client) bool { return slices.Contains(c.GrantTypes, GrantTokenExchange) },
		"The token exchange grant is off on this server ([oauth] token_exchange in config.toml)."},
	{func(o FeaturesOff) bool { return o.PushedRequests }, "require_pushed_authorization_requests",
		func(c storage.Client) bool { return c.RequirePushedAuthorizationRequests },
		"Pushed authorization requests are off on this server ([oauth] pushed_authorization_requests in config.toml)."},
	{func(o FeaturesOff) bool { return o.RequestObjects }, "require_signed_request_object",
		func(c storage.Client) bool { return c.RequireSignedRequestObject },
		"Request objects are off on this server ([oauth] request_objects in config.toml)."},
	// Each DPoP setting on its own: an app that kept one is not given
	// the other, and a refusal names the field that was set.
	{func(o FeaturesOff) bool { return o.DPoP }, "dpop_bound_access_tokens",
		func(c storage.Client) bool { return c.DPoPBoundAccessTokens },
		"DPoP is off on this server ([oauth] dpop in config.toml)."},
	{func(o FeaturesOff) bool { return o.DPoP }, "require_dpop_nonce",
		func(c storage.Client) bool { return c.RequireDPoPNonce },
		"DPoP is off on this server ([oauth] dpop in config.toml)."},
	{func(o FeaturesOff) bool { return o.PairwiseSubjects }, "subject_type",
		func(c storage.Client) bool { return Pairwise(c) },
		"Pairwise subject identifiers are off on this server ([oauth] pairwise_subjects in config.toml)."},
}

// checkFeatures refuses a setting of c whose feature is off, unless kept
// (the app before an edit, nil for none) had it.
func (s *ClientService) checkFeatures(c storage.Client, kept *storage.Client) *Error {
	for _, f := range featureSettings {
		if f.off(s.off) && f.has(c) && (kept == nil || !f.has(*kept)) {
			return FieldErrorf(f.field, "%s", phrase(f.message))
		}
	}
	return nil
}
