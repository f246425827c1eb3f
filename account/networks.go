package account

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/keyport/keyport/storage"
)

// maxNetworks bounds an allowlist; the message below says the same number.
const maxNetworks = 50

// BadNetworkFormat is the message for an entry that is neither an address
// nor a range. Pages translate it with the entry from BadNetworkError (an
// Error's message with the entry already in it cannot be looked up).
const BadNetworkFormat = "%q is not an IP address or CIDR range like 192.0.2.0/24."

// BadNetworkError is the cause of the Invalid error ParseNetworks returns
// for an entry it cannot read.
type BadNetworkError struct{ Entry string }

func (e *BadNetworkError) Error() string { return "bad network entry " + strconv.Quote(e.Entry) }

// ParseNetworks reads a list of IP addresses and CIDR ranges (IPv4 and IPv6)
// separated by commas, semicolons, spaces or new lines. A bare address
// becomes a /32 or /128; ranges are normalised ("10.1.2.3/8" is
// "10.0.0.0/8") and duplicates dropped. Errors are Invalid with the field
// "allowed_networks" and name the bad entry.
func ParseNetworks(s string) ([]string, error) {
	const field = "allowed_networks"
	parts := strings.FieldsFunc(s, func(r rune) bool {
		return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t'
	})
	if len(parts) > maxNetworks {
		return nil, FieldErrorf(field, "At most 50 addresses or ranges.")
	}
	var out []string
	for _, p := range parts {
		pfx, ok := parseNetwork(p)
		if !ok {
			return nil, &Error{Code: Invalid, Field: field, Message: fmt.Sprintf(BadNetworkFormat, p), Err: &BadNetworkError{Entry: p}}
		}
		if s := pfx.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// parseNetwork reads one entry. Zones ("fe80::1%eth0") are refused: they
// mean nothing to another machine.
func parseNetwork(p string) (netip.Prefix, bool) {
	if strings.Contains(p, "/") {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return netip.Prefix{}, false
		}
		return pfx.Masked(), true
	}
	addr, err := netip.ParseAddr(p)
	if err != nil || addr.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(addr, addr.BitLen()), true
}

// NetworkAllows tells whether ip is inside nets. An empty list allows any
// address; when a list exists, an address that cannot be read is refused.
// IPv4-mapped IPv6 addresses count as their IPv4 address.
func NetworkAllows(nets []string, ip string) bool {
	if len(nets) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap().WithZone("")
	for _, n := range nets {
		if p, err := netip.ParsePrefix(n); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// CheckNetwork applies the user's own IP allowlist: nil when the list is
// empty or holds ip, Forbidden otherwise. Every way of signing in calls it
// (password, passkey, app password, API token, forward-auth session).
func (s *Service) CheckNetwork(u storage.User, ip string) error {
	if !NetworkAllows(u.AllowedNetworks, ip) {
		return Errorf(Forbidden, "Sign-in from this network is not allowed for this account.")
	}
	return nil
}

// CheckNetworkAt is CheckNetwork for a sign-in that reuses what the person
// proved earlier (a browser session, signed in with amr, answering an app):
// a refusal is recorded in the user's history, as a refused sign-in is.
func (s *Service) CheckNetworkAt(ctx context.Context, u storage.User, ip, userAgent string, amr []string) error {
	err := s.CheckNetwork(u, ip)
	if err != nil {
		s.record(ctx, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: u.Username, Time: s.now(), IP: ip, UserAgent: userAgent,
			Method: methodOf(amr), Reason: "network not allowed (existing session)"})
		s.log.WarnContext(ctx, "session refused outside the account's IP allowlist", "user_id", u.ID, "ip", ip)
	}
	return err
}

// SetAllowedNetworks replaces the user's allowlist with the list in raw.
// When the new list leaves out currentIP and confirmed is false, nothing
// changes and warning is true, so the page can ask before the person locks
// themselves out.
func (s *Service) SetAllowedNetworks(ctx context.Context, u storage.User, raw, currentIP string, confirmed bool) (nets []string, warning bool, err error) {
	nets, err = ParseNetworks(raw)
	if err != nil {
		return nil, false, err
	}
	if !NetworkAllows(nets, currentIP) && !confirmed {
		return nets, true, nil
	}
	if _, err := s.store.UpdateUser(ctx, u.ID, func(u storage.User) (storage.User, error) {
		u.AllowedNetworks = nets
		return u, nil
	}); err != nil {
		return nil, false, &Error{Code: Internal, Message: ErrorMessage(nil), Err: fmt.Errorf("set allowlist of %q: %w", u.ID, err)}
	}
	s.log.InfoContext(ctx, "IP allowlist changed", "user_id", u.ID, "networks", len(nets))
	return nets, false, nil
}
