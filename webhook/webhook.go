// Package webhook sends signed webhook calls safely: two signatures of
// the same call with the same secret (Keyport-Signature: t=<unix>,v1=<hex
// HMAC-SHA256 of "t.body"> keyed with the secret as written; and the
// Standard Webhooks headers webhook-id, webhook-timestamp and
// webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body"> keyed
// with the bytes the "whsec_" secret encodes, so that receivers using a
// Standard Webhooks library verify it), and a guard against server-side
// request forgery. A webhook
// URL is chosen by whoever registers it, so Keyport must not become a way
// to reach what only it can reach: loopback, link-local (cloud metadata
// services), private and unspecified addresses are refused unless an
// admin allows a network, and the address is checked again when the
// connection is made (after DNS resolution, so a name that resolves to a
// refused address is refused too). Redirects are never followed.
package webhook

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Limits of a call.
const (
	// Timeout bounds one call, connection included.
	Timeout = 5 * time.Second
	// MaxResponseBytes is how much of an answer is read (then dropped).
	MaxResponseBytes = 64 << 10
	// MaxURLBytes bounds a webhook URL.
	MaxURLBytes = 2048
)

// ErrRefusedAddress is the error of a call to an address the guard
// refuses.
var ErrRefusedAddress = errors.New("refused address")

// Guard decides which addresses webhook calls may reach.
type Guard struct {
	allow []netip.Prefix
}

// NewGuard returns a guard that allows, besides public addresses, the
// networks in allow (CIDRs, such as "127.0.0.0/8").
func NewGuard(allow []string) (*Guard, error) {
	g := &Guard{}
	for _, s := range allow {
		p, err := netip.ParsePrefix(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("allowed network %q: %w", s, err)
		}
		g.allow = append(g.allow, p.Masked())
	}
	return g, nil
}

// allowed tells whether ip is in a network an admin allowed.
func (g *Guard) allowed(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range g.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// CheckAddr refuses an address that is not public (loopback, link-local,
// private, unique-local, unspecified, multicast, and the like) unless it
// is in an allowed network.
func (g *Guard) CheckAddr(ip netip.Addr) error {
	ip = ip.Unmap()
	if g.allowed(ip) {
		return nil
	}
	var class string
	switch {
	case !ip.IsValid():
		class = "invalid"
	case ip.IsLoopback():
		class = "loopback"
	case ip.IsLinkLocalUnicast(), ip.IsLinkLocalMulticast():
		class = "link-local"
	case ip.IsPrivate():
		class = "private"
	case ip.IsUnspecified():
		class = "unspecified"
	case ip.IsMulticast(), ip.IsInterfaceLocalMulticast():
		class = "multicast"
	case cgnat.Contains(ip):
		class = "shared (carrier-grade NAT)"
	case ip.Is4() && ip.As4()[0] == 0:
		class = "\"this network\""
	case ip == broadcast:
		class = "broadcast"
	case nat64Local.Contains(ip):
		class = "local-use NAT64"
	default:
		// A translator (NAT64, 6to4) takes an IPv6 address that embeds an
		// IPv4 one to that IPv4 address, which decides.
		if v4, ok := embeddedIPv4(ip); ok {
			if err := g.CheckAddr(v4); err != nil {
				return fmt.Errorf("%w: %s leads to %s, which is refused", ErrRefusedAddress, ip, v4)
			}
		}
		return nil
	}
	return fmt.Errorf("%w: %s is a %s address", ErrRefusedAddress, ip, class)
}

// embeddedIPv4 is the IPv4 address an IPv6 address of NAT64
// (64:ff9b::/96), 6to4 (2002::/16) or the old IPv4-compatible form
// (::/96) carries.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	if !ip.Is6() {
		return netip.Addr{}, false
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip), ipv4Compatible.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixToFour.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

var (
	cgnat          = netip.MustParsePrefix("100.64.0.0/10")
	broadcast      = netip.MustParseAddr("255.255.255.255")
	nat64          = netip.MustParsePrefix("64:ff9b::/96")
	nat64Local     = netip.MustParsePrefix("64:ff9b:1::/48")
	sixToFour      = netip.MustParsePrefix("2002::/16")
	ipv4Compatible = netip.MustParsePrefix("::/96")
)

// CheckURL validates a webhook URL at registration: absolute http(s), no
// user info or fragment, at most MaxURLBytes; https unless its host is an
// address in an allowed network; an address host must pass CheckAddr. A
// host name is checked when it is called (its address may change).
func (g *Guard) CheckURL(raw string) error {
	if len(raw) > MaxURLBytes {
		return fmt.Errorf("is longer than %d bytes", MaxURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return errors.New("must be an absolute http or https URL")
	}
	if u.User != nil {
		return errors.New("must not hold a user name or password")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return errors.New("must not have a fragment")
	}
	host := u.Hostname()
	addr, err := netip.ParseAddr(host)
	isAddr := err == nil
	switch u.Scheme {
	case "https":
	case "http":
		if !isAddr || !g.allowed(addr) {
			return errors.New("must use https (http only to an address in webhooks.allow_networks)")
		}
	default:
		return errors.New("must be an absolute http or https URL")
	}
	if isAddr {
		return g.CheckAddr(addr)
	}
	return nil
}

// control runs before each connection is made, on the address DNS gave.
func (g *Guard) control(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: %q", ErrRefusedAddress, address)
	}
	return g.CheckAddr(ap.Addr())
}

// Client returns an HTTP client for webhook calls: the guard checks every
// address it connects to, it ignores proxy settings (a proxy would hide
// the address), follows no redirect and gives up after Timeout.
func (g *Guard) Client() *http.Client {
	dialer := &net.Dialer{Timeout: Timeout, Control: g.control}
	return &http.Client{
		Timeout: Timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   Timeout,
			ResponseHeaderTimeout: Timeout,
			MaxIdleConnsPerHost:   2,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// Sign is the Keyport-Signature header of body sent at t.
func Sign(secret []byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret []byte, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, secret)
	h.Write([]byte(ts))
	h.Write([]byte("."))
	h.Write(body)
	return h.Sum(nil)
}

// SecretPrefix starts every signing secret, as Standard Webhooks writes
// them: "whsec_" and then the key, base64-encoded.
const SecretPrefix = "whsec_"

// StandardKey is the HMAC key of the webhook-signature header for secret,
// as a Standard Webhooks library derives it: the bytes the base64 after
// "whsec_" encodes. Secrets Keyport made before it sent that header are
// "whsec_" and unpadded URL-safe base64; their bytes are the key too (a
// receiver's library reads such a secret once rewritten to the standard
// alphabet). Anything else is its own key.
func StandardKey(secret string) []byte {
	enc, ok := strings.CutPrefix(secret, SecretPrefix)
	if !ok {
		return []byte(secret)
	}
	if key, err := base64.StdEncoding.DecodeString(enc); err == nil && len(key) > 0 {
		return key
	}
	if key, err := base64.RawURLEncoding.DecodeString(enc); err == nil && len(key) > 0 {
		return key
	}
	return []byte(secret)
}

// SignStandard is the webhook-signature header of a call with message id
// id and body sent at t, keyed with key (StandardKey of the secret).
func SignStandard(key []byte, id string, t time.Time, body []byte) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(id))
	h.Write([]byte("."))
	h.Write([]byte(strconv.FormatInt(t.Unix(), 10)))
	h.Write([]byte("."))
	h.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Verify checks a Keyport-Signature header against body, as a receiver
// does: the signature must match (in constant time) and t must be within
// tolerance of now.
func Verify(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts string
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("signature: no timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return errors.New("signature: timestamp out of tolerance")
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return errors.New("signature: no match")
}

// Call is one webhook call.
type Call struct {
	URL string
	// Secret is the hook's secret as its owner got it ("whsec_…"): as
	// written, it keys Keyport-Signature; StandardKey of it keys
	// webhook-signature.
	Secret string
	ID     string // the event's ID (webhook-id)
	Body   []byte
	At     time.Time // the signature's time
}

// Result is what a call got: the HTTP status (0 when there was no answer).
type Result struct {
	Status  int
	Latency time.Duration
}

// Post sends c with client and reads at most MaxResponseBytes of the
// answer. A non-2xx answer is an error, with its status in the result.
func Post(ctx context.Context, client *http.Client, c Call) (Result, error) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.URL, bytes.NewReader(c.Body))
	if err != nil {
		return Result{}, fmt.Errorf("webhook request: %w", err)
	}
	ts := strconv.FormatInt(c.At.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Keyport-Webhooks")
	req.Header.Set("Keyport-Signature", Sign([]byte(c.Secret), c.At, c.Body))
	req.Header.Set("Webhook-Id", c.ID)
	req.Header.Set("Webhook-Timestamp", ts)
	req.Header.Set("Webhook-Signature", SignStandard(StandardKey(c.Secret), c.ID, c.At, c.Body))
	resp, err := client.Do(req)
	res := Result{Latency: time.Since(start)}
	if err != nil {
		return res, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, MaxResponseBytes))
	res.Status = resp.StatusCode
	res.Latency = time.Since(start)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			return res, fmt.Errorf("HTTP %d: redirects are not followed", resp.StatusCode)
		}
		return res, fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return res, nil
}

// Retry tells whether a failed call may succeed later: not for a refused
// address, a redirect, or a client error other than 408 and 429.
func Retry(res Result, err error) bool {
	if errors.Is(err, ErrRefusedAddress) {
		return false
	}
	switch s := res.Status; {
	case s == 408 || s == 429:
		return true
	case s >= 300 && s < 500:
		return false
	}
	return true
}
