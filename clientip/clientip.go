// Package clientip finds the address of the person or program behind a
// request. Keyport usually runs behind a TLS-terminating reverse proxy, so
// the TCP peer is the proxy; the client's address then comes from the header
// the proxy adds, but only when the peer is one of the configured trusted
// proxies, and only as far to the left as the chain of trusted hops reaches:
// everything left of the first untrusted hop was written by someone who
// could write anything.
package clientip

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Header names the header a trusted proxy writes the chain of addresses to.
type Header int

const (
	// XForwardedFor is "X-Forwarded-For: client, proxy1, proxy2": nginx
	// ($proxy_add_x_forwarded_for), Traefik, Caddy and HAProxy
	// (option forwardfor) write it.
	XForwardedFor Header = iota
	// Forwarded is RFC 7239's "Forwarded: for=client, for=proxy1".
	Forwarded
)

// ParseHeader reads a header name as config.toml spells it.
func ParseHeader(name string) (Header, error) {
	switch strings.ToLower(name) {
	case "x-forwarded-for":
		return XForwardedFor, nil
	case "forwarded":
		return Forwarded, nil
	}
	return 0, fmt.Errorf("unknown client address header %q: use \"X-Forwarded-For\" or \"Forwarded\"", name)
}

// maxHops bounds how many addresses of a chain are looked at, so a request
// with a huge header costs no more than one with a short one.
const maxHops = 32

// Resolver finds client addresses. The zero value trusts no proxy and
// answers with the TCP peer.
type Resolver struct {
	trusted []netip.Prefix
	header  Header
}

// New returns a resolver that trusts peers inside the given networks
// (addresses or CIDR ranges) to report the client's address in header.
func New(trusted []string, header Header) (*Resolver, error) {
	r := &Resolver{header: header}
	for _, t := range trusted {
		p, err := ParsePrefix(t)
		if err != nil {
			return nil, err
		}
		r.trusted = append(r.trusted, p)
	}
	return r, nil
}

// ParsePrefix reads an address ("192.0.2.1", "::1") or a CIDR range
// ("10.0.0.0/8"); a bare address is a range of one.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q is not a CIDR range such as 10.0.0.0/8", s)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%q is not an IP address or CIDR range", s)
	}
	a = a.Unmap()
	return netip.PrefixFrom(a, a.BitLen()), nil
}

func (r *Resolver) isTrusted(a netip.Addr) bool {
	for _, p := range r.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Resolve returns the client address of req. It is the TCP peer unless the
// peer is a trusted proxy; then the proxy's header is walked from right to
// left, past every trusted hop, and the first address that is not trusted is
// the client. When every hop is trusted, the leftmost one is. A hop that is
// not an address ("unknown", an obfuscated name, garbage) ends the walk: the
// last trusted hop before it is the best that can be said.
func (r *Resolver) Resolve(req *http.Request) netip.Addr {
	peer := peerAddr(req.RemoteAddr)
	if !peer.IsValid() || r == nil || len(r.trusted) == 0 || !r.isTrusted(peer) {
		return peer
	}
	hops := r.chain(req.Header)
	client := peer
	for i := len(hops) - 1; i >= 0 && len(hops)-i <= maxHops; i-- {
		a := parseHop(hops[i])
		if !a.IsValid() {
			return client
		}
		client = a
		if !r.isTrusted(a) {
			return a
		}
	}
	return client
}

// chain returns the hops of the configured header, leftmost first, across
// all of its lines.
func (r *Resolver) chain(h http.Header) []string {
	var hops []string
	switch r.header {
	case Forwarded:
		for _, line := range h.Values("Forwarded") {
			for elem := range strings.SplitSeq(line, ",") {
				hops = append(hops, forwardedFor(elem))
			}
		}
	default:
		for _, line := range h.Values("X-Forwarded-For") {
			for hop := range strings.SplitSeq(line, ",") {
				hops = append(hops, hop)
			}
		}
	}
	return hops
}

// forwardedFor returns the for= value of one RFC 7239 forwarded-element
// ("for=192.0.2.60;proto=http;by=203.0.113.43"), or "" when it has none
// (which ends the walk like any hop that is not an address).
func forwardedFor(elem string) string {
	for pair := range strings.SplitSeq(elem, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if ok && strings.EqualFold(k, "for") {
			return v
		}
	}
	return ""
}

// parseHop reads one hop: "192.0.2.1", "192.0.2.1:4711", "2001:db8::1",
// "[2001:db8::1]:4711", and the same in RFC 7239's quoted form.
func parseHop(s string) netip.Addr {
	s = strings.Trim(strings.TrimSpace(s), `"`)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap()
	}
	if host, _, err := net.SplitHostPort(s); err == nil {
		if a, err := netip.ParseAddr(host); err == nil && a.Zone() == "" {
			return a.Unmap()
		}
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		if a, err := netip.ParseAddr(s[1 : len(s)-1]); err == nil && a.Zone() == "" {
			return a.Unmap()
		}
	}
	return netip.Addr{}
}

// peerAddr reads http.Request.RemoteAddr ("ip:port").
func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap().WithZone("")
	}
	if a, err := netip.ParseAddr(strings.Trim(remote, "[]")); err == nil {
		return a.Unmap().WithZone("")
	}
	return netip.Addr{}
}

type ctxKey struct{}

// Middleware resolves each request's client address once and keeps it in
// the request's context, where String finds it.
func (r *Resolver) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a := r.Resolve(req)
		next.ServeHTTP(w, req.WithContext(context.WithValue(req.Context(), ctxKey{}, a)))
	})
}

// Of returns the client address of req: the one Middleware resolved, or the
// TCP peer for a request that did not pass through it.
func Of(req *http.Request) netip.Addr {
	if a, ok := req.Context().Value(ctxKey{}).(netip.Addr); ok {
		return a
	}
	return peerAddr(req.RemoteAddr)
}

// String is Of as text ("" when the address is unknown).
func String(req *http.Request) string {
	a := Of(req)
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// FromContext returns the address Middleware stored in ctx, as text ("" when
// there is none): for code that has a context but not the request.
func FromContext(ctx context.Context) string {
	if a, ok := ctx.Value(ctxKey{}).(netip.Addr); ok && a.IsValid() {
		return a.String()
	}
	return ""
}
