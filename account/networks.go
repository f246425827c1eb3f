package account

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

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
func (s *SignInService) CheckNetwork(u storage.User, ip string) error { return checkNetwork(u, ip) }

func checkNetwork(u storage.User, ip string) error {
	if !NetworkAllows(u.AllowedNetworks, ip) {
		return Errorf(Forbidden, "Sign-in from this network is not allowed for this account.")
	}
	return nil
}

// CheckNetworkAt is CheckNetwork for a sign-in that reuses what the person
// proved earlier (a browser session, signed in with amr, answering an app):
// a refusal is recorded in the user's history, as a refused sign-in is.
func (s *SignInService) CheckNetworkAt(ctx context.Context, u storage.User, ip, userAgent string, amr []string) error {
	err := checkNetwork(u, ip)
	if err != nil {
		s.record(ctx, storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: u.Username, Time: s.now(), IP: ip, UserAgent: userAgent,
			Method: methodOf(amr), Reason: "network not allowed (existing session)"})
		s.log.WarnContext(ctx, "session refused outside the account's IP allowlist", "user_id", u.ID, "ip", ip)
	}
	return err
}

// refreshWarnEvery is how often a refused refresh of one user at one app
// is logged at WARN: an app retries on its schedule, and one line says
// what the history page then lists in full.
const refreshWarnEvery = 5 * time.Minute

// CheckRefreshNetwork applies u's IP allowlist to a refresh-token grant by
// clientID from ip. Only a public client's refresh is checked: a native
// app, a single-page app or a command-line tool runs where the person is,
// so its address is theirs. A confidential client refreshes from its own
// server, whose address says nothing about where the person is; the
// person's browser was checked when the app got its code. A refusal is
// Forbidden, recorded in the user's history like a refused sign-in, and
// logged at WARN at most once per user and app every refreshWarnEvery; it
// revokes nothing, so the same token works again from inside the list.
// NotFound means the client no longer exists.
func (s *SignInService) CheckRefreshNetwork(ctx context.Context, u storage.User, clientID, ip string) error {
	// Inside the list, the kind of client does not matter: no read.
	if len(u.AllowedNetworks) == 0 || NetworkAllows(u.AllowedNetworks, ip) {
		return nil
	}
	c, err := s.store.GetClient(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return Errorf(NotFound, "The app of this refresh token no longer exists.")
	}
	if err != nil {
		return fmt.Errorf("load client %q: %w", clientID, err)
	}
	if !c.Public {
		return nil
	}
	now := s.now()
	s.record(withClient(ctx, clientID), storage.LoginAttempt{ID: NewID(), UserID: u.ID, Login: u.Username, Time: now, IP: ip,
		Method: MethodRefresh, Reason: "network not allowed (refresh)"})
	if s.refreshWarns.allow(u.ID+" "+clientID, now) {
		s.log.WarnContext(ctx, "refresh refused outside the user's IP allowlist", "user_id", u.ID, "client_id", clientID, "ip", ip,
			"next_warning_after", refreshWarnEvery.String())
	}
	return Errorf(Forbidden, "The user may not use this app from this network.")
}

// MethodRefresh is the method of a refresh-token grant in the sign-in
// history.
const MethodRefresh = "refresh_token"

// warnLimiter lets a log line through once per key and interval.
type warnLimiter struct {
	every time.Duration
	mu    sync.Mutex
	last  map[string]time.Time
}

// maxWarnKeys bounds the memory of a warnLimiter; past it, keys whose
// interval has passed are forgotten.
const maxWarnKeys = 10000

func (l *warnLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if last, ok := l.last[key]; ok && now.Sub(last) < l.every {
		return false
	}
	if l.last == nil {
		l.last = map[string]time.Time{}
	}
	if len(l.last) >= maxWarnKeys {
		for k, t := range l.last {
			if now.Sub(t) >= l.every {
				delete(l.last, k)
			}
		}
	}
	l.last[key] = now
	return true
}

// SetAllowedNetworks replaces the user's allowlist with the list in raw.
// When the new list leaves out currentIP and confirmed is false, nothing
// changes and warning is true, so the page can ask before the person locks
// themselves out.
func (s *SignInService) SetAllowedNetworks(ctx context.Context, u storage.User, raw, currentIP string, confirmed bool) (nets []string, warning bool, err error) {
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
		return nil, false, fmt.Errorf("set allowlist of %q: %w", u.ID, err)
	}
	s.log.InfoContext(ctx, "IP allowlist changed", "user_id", u.ID, "networks", len(nets))
	return nets, false, nil
}
