package account

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyport/keyport/storage"
)

// Trusted devices: "remember this device" after a second factor. The
// browser keeps a random secret in its own cookie; only its hash is stored,
// as a credential that expires after Policy.TrustedDeviceLifetime.

var errDevicesOff = Errorf(Invalid, "Remembering devices is turned off.")

// TrustDevice remembers the browser for the configured lifetime and returns
// the secret for its cookie.
func (s *CredentialService) TrustDevice(ctx context.Context, u storage.User, ip, userAgent string) (string, error) {
	if s.policy().TrustedDeviceLifetime <= 0 {
		return "", errDevicesOff
	}
	secret := NewSecret()
	now := s.now()
	if len(userAgent) > 512 {
		userAgent = userAgent[:512] // a header is not a place to store essays
	}
	err := s.store.CreateCredential(ctx, storage.Credential{
		ID: NewID(), UserID: u.ID, Kind: storage.KindTrustedDevice, Hash: HashSecret(secret),
		UserAgent: userAgent, IP: ip, CreatedAt: now, LastUsedAt: now, LastIP: ip,
		ExpiresAt: now.Add(s.policy().TrustedDeviceLifetime),
	})
	if err != nil {
		return "", fmt.Errorf("trust device of %q: %w", u.ID, err)
	}
	return secret, nil
}

// DeviceTrusted tells whether secret is a live trusted-device cookie of u,
// and notes that it was seen from ip.
func (s *CredentialService) DeviceTrusted(ctx context.Context, u storage.User, secret, ip string) bool {
	c, ok := s.trustedDevice(ctx, u, secret)
	if !ok {
		return false
	}
	now := s.now()
	if _, err := s.store.UpdateCredential(ctx, u.ID, c.ID, func(c storage.Credential) (storage.Credential, error) {
		c.LastUsedAt, c.LastIP = now, ip
		return c, nil
	}); err != nil {
		// Trust does not depend on the bookkeeping; the list shows stale data.
		s.log.WarnContext(ctx, "note trusted device use", "user_id", u.ID, "err", err)
	}
	return true
}

// trustedDevice finds the live remembered device of u whose cookie secret
// is secret; it writes nothing. The lookup is by hash, so comparing the
// secret itself never happens, and it reads whether or not u exists
// (u.ID ""), so a made-up login name costs the same at sign-in.
func (s *CredentialService) trustedDevice(ctx context.Context, u storage.User, secret string) (storage.Credential, bool) {
	if secret == "" || len(secret) > 256 || s.policy().TrustedDeviceLifetime <= 0 {
		return storage.Credential{}, false
	}
	c, err := s.store.GetCredentialByHash(ctx, HashSecret(secret))
	if err != nil || u.ID == "" || c.Kind != storage.KindTrustedDevice || c.UserID != u.ID {
		return storage.Credential{}, false
	}
	// The store drops expired records, but a backend that sweeps lazily
	// must not extend a device's trust.
	if !c.ExpiresAt.IsZero() && !s.now().Before(c.ExpiresAt) {
		return storage.Credential{}, false
	}
	return c, true
}

// ListTrustedDevices lists the user's remembered devices.
func (s *CredentialService) ListTrustedDevices(ctx context.Context, u storage.User) ([]storage.Credential, error) {
	cs, err := s.store.ListCredentials(ctx, u.ID, storage.KindTrustedDevice)
	if err != nil {
		return nil, fmt.Errorf("list trusted devices of %q: %w", u.ID, err)
	}
	return cs, nil
}

var errNoSuchDevice = Errorf(NotFound, "That device is not on your list.")

// ForgetDevice forgets one remembered device of u. An ID of another user's
// device, or of another kind of credential, is not found.
func (s *CredentialService) ForgetDevice(ctx context.Context, u storage.User, id string) error {
	if id == "" || len(id) > 64 {
		return errNoSuchDevice
	}
	c, err := s.store.GetCredential(ctx, u.ID, id)
	if err == nil && c.Kind != storage.KindTrustedDevice {
		err = storage.ErrNotFound
	}
	if err == nil {
		err = s.store.DeleteCredential(ctx, u.ID, id)
	}
	if errors.Is(err, storage.ErrNotFound) {
		return errNoSuchDevice
	}
	if err != nil {
		return fmt.Errorf("forget device %q of %q: %w", id, u.ID, err)
	}
	return nil
}

// ForgetAllDevices forgets every remembered device of u: the next sign-in
// anywhere asks for the second factor again.
func (s *CredentialService) ForgetAllDevices(ctx context.Context, u storage.User) (int, error) {
	n, err := s.store.DeleteCredentials(ctx, u.ID, storage.KindTrustedDevice)
	if err != nil {
		return 0, fmt.Errorf("forget devices of %q: %w", u.ID, err)
	}
	return n, nil
}

// DeviceParts names the browser and the operating system of a user agent,
// in English, for lists of devices and sessions (the portal puts them
// together in the page's language: "Firefox on Linux"); system is "" when
// the user agent does not say. It is a hint for people, never used for
// decisions.
func DeviceParts(ua string) (browser, system string) {
	browser = "Unknown browser"
	for _, b := range []struct{ token, name string }{
		{"Edg/", "Edge"}, {"OPR/", "Opera"}, {"Firefox/", "Firefox"}, {"Chromium/", "Chromium"},
		{"HeadlessChrome/", "Chrome (headless)"}, {"Chrome/", "Chrome"}, {"Safari/", "Safari"},
		{"curl/", "curl"}, {"Go-http-client/", "Go HTTP client"},
	} {
		if strings.Contains(ua, b.token) {
			browser = b.name
			break
		}
	}
	for _, o := range []struct{ token, name string }{
		{"Android", "Android"}, {"iPhone", "iOS"}, {"iPad", "iPadOS"}, {"Windows", "Windows"},
		{"Mac OS X", "macOS"}, {"CrOS", "ChromeOS"}, {"Linux", "Linux"},
	} {
		if strings.Contains(ua, o.token) {
			system = o.name
			break
		}
	}
	return browser, system
}
