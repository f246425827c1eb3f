package account

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/keyport/keyport/storage"
)

const maxNetworks = 50

// ParseNetworks reads a list of IP addresses and CIDR ranges separated by
// commas, spaces or new lines. A bare address becomes a /32 or /128.
func ParseNetworks(raw, field string) ([]string, error) {
	parts := strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' || r == ';' })
	if len(parts) > maxNetworks {
		return nil, FieldErrorf(field, "At most %d addresses or ranges.", maxNetworks)
	}
	var out []string
	for _, p := range parts {
		var pfx netip.Prefix
		if strings.Contains(p, "/") {
			var err error
			if pfx, err = netip.ParsePrefix(p); err != nil {
				return nil, FieldErrorf(field, "%q is not an IP address or CIDR range like 192.0.2.0/24.", p)
			}
		} else {
			addr, err := netip.ParseAddr(p)
			if err != nil || addr.Zone() != "" {
				return nil, FieldErrorf(field, "%q is not an IP address or CIDR range like 192.0.2.0/24.", p)
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		pfx = pfx.Masked()
		if s := pfx.String(); !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// NetworkAllows tells whether ip is inside nets; an empty list allows any
// address, and an address that cannot be read is refused when a list exists.
func NetworkAllows(nets []string, ip string) bool {
	if len(nets) == 0 {
		return true
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return false
	}
	addr = addr.Unmap()
	for _, n := range nets {
		if p, err := netip.ParsePrefix(n); err == nil && p.Contains(addr) {
			return true
		}
	}
	return false
}

// CheckNetwork applies the user's own IP allowlist.
func (s *Service) CheckNetwork(u storage.User, ip string) error {
	if !NetworkAllows(u.AllowedNetworks, ip) {
		return Errorf(Forbidden, "Sign-in from this network is not allowed for this account.")
	}
	return nil
}

// SetAllowedNetworks replaces the user's allowlist. When the current address
// would be locked out and confirmed is false, nothing changes and warning is
// true, so the page can ask first.
func (s *Service) SetAllowedNetworks(ctx context.Context, u storage.User, raw, currentIP string, confirmed bool) (nets []string, warning bool, err error) {
	nets, err = ParseNetworks(raw, "allowed_networks")
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
	return nets, false, nil
}
