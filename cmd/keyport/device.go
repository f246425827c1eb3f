package main

import (
	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/portal"
	"github.com/keyport/keyport/provider"
)

// The device authorization grant (RFC 8628), on when [oauth] device_flow
// is: the provider's endpoint and grant, and the portal's /device page.

// deviceFlow is the portal's side of the device flow; nil when it is off.
func (m *Main) deviceFlow(cfg *config.Config) *account.DeviceFlow {
	if !cfg.OAuth.DeviceFlow {
		return nil
	}
	return account.NewDeviceFlow(m.Store, m.Accounts)
}

// deviceOptions is the provider's side of the device flow.
func deviceOptions(cfg *config.Config) provider.DeviceOptions {
	return provider.DeviceOptions{
		Enabled:          cfg.OAuth.DeviceFlow,
		Lifetime:         cfg.OAuth.DeviceCodeLifetime.Duration,
		Interval:         cfg.OAuth.DevicePollInterval.Duration,
		VerificationPath: portal.DevicePath,
		PerAddress:       cfg.Limits.MaxDeviceAuthorizationsPerAddress,
	}
}

// featuresOff are the [oauth] features o turns off, for the app rules and
// the provider.
func featuresOff(o config.OAuth) account.FeaturesOff {
	return account.FeaturesOff{
		DeviceFlow:       !o.DeviceFlow,
		TokenExchange:    !o.TokenExchange,
		PushedRequests:   !o.PushedAuthorizationRequests,
		RequestObjects:   !o.RequestObjects,
		DPoP:             !o.DPoP,
		PairwiseSubjects: !o.PairwiseSubjects,
	}
}
