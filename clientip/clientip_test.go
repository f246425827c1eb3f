package clientip

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestResolve(t *testing.T) {
	cases := []struct {
		name    string
		trusted []string
		header  Header
		peer    string
		xff     []string
		fwd     []string
		want    string
	}{
		{name: "no proxies trusted: the peer, whatever the header says",
			peer: "198.51.100.7:5000", xff: []string{"203.0.113.77"}, want: "198.51.100.7"},
		{name: "untrusted peer: its header is ignored",
			trusted: []string{"127.0.0.1"}, peer: "198.51.100.7:5000", xff: []string{"203.0.113.77"}, want: "198.51.100.7"},
		{name: "trusted peer: the address it reports",
			trusted: []string{"127.0.0.1"}, peer: "127.0.0.1:5000", xff: []string{"203.0.113.77"}, want: "203.0.113.77"},
		{name: "a client's own forged entries left of the proxy's are skipped",
			trusted: []string{"127.0.0.1"}, peer: "127.0.0.1:5000", xff: []string{"1.2.3.4, 203.0.113.77"}, want: "203.0.113.77"},
		{name: "walks past several trusted hops, across header lines",
			trusted: []string{"10.0.0.0/8", "127.0.0.1"}, peer: "127.0.0.1:1", xff: []string{"6.6.6.6, 203.0.113.77", "10.1.2.3, 10.9.9.9"}, want: "203.0.113.77"},
		{name: "every hop trusted: the leftmost",
			trusted: []string{"10.0.0.0/8", "127.0.0.1"}, peer: "127.0.0.1:1", xff: []string{"10.0.0.5, 10.0.0.6"}, want: "10.0.0.5"},
		{name: "trusted peer without a header: the peer",
			trusted: []string{"127.0.0.1"}, peer: "127.0.0.1:1", want: "127.0.0.1"},
		{name: "garbage ends the walk at the last trusted hop",
			trusted: []string{"10.0.0.0/8", "127.0.0.1"}, peer: "127.0.0.1:1", xff: []string{"203.0.113.77, unknown, 10.0.0.9"}, want: "10.0.0.9"},
		{name: "an address with a port",
			trusted: []string{"127.0.0.1"}, peer: "127.0.0.1:1", xff: []string{"203.0.113.77:4711"}, want: "203.0.113.77"},
		{name: "IPv6 peer and client, IPv4-mapped peer",
			trusted: []string{"::1", "127.0.0.1"}, peer: "[::ffff:127.0.0.1]:1", xff: []string{"2001:db8::7"}, want: "2001:db8::7"},
		{name: "Forwarded (RFC 7239), quoted IPv6 with port",
			trusted: []string{"127.0.0.1"}, header: Forwarded, peer: "127.0.0.1:1",
			fwd: []string{`for=1.2.3.4, for="[2001:db8:cafe::17]:4711";proto=https`}, want: "2001:db8:cafe::17"},
		{name: "Forwarded configured: X-Forwarded-For is not read",
			trusted: []string{"127.0.0.1"}, header: Forwarded, peer: "127.0.0.1:1",
			xff: []string{"1.2.3.4"}, fwd: []string{"for=203.0.113.77;proto=https"}, want: "203.0.113.77"},
		{name: "X-Forwarded-For configured: Forwarded is not read",
			trusted: []string{"127.0.0.1"}, peer: "127.0.0.1:1",
			xff: []string{"203.0.113.77"}, fwd: []string{"for=1.2.3.4"}, want: "203.0.113.77"},
		{name: "Forwarded element without for= ends the walk",
			trusted: []string{"127.0.0.1"}, header: Forwarded, peer: "127.0.0.1:1",
			fwd: []string{"for=203.0.113.77, proto=https"}, want: "127.0.0.1"},
		{name: "obfuscated Forwarded name ends the walk",
			trusted: []string{"127.0.0.1"}, header: Forwarded, peer: "127.0.0.1:1",
			fwd: []string{"for=_hidden"}, want: "127.0.0.1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := New(c.trusted, c.header)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodGet, "/", nil)
			req.RemoteAddr = c.peer
			for _, v := range c.xff {
				req.Header.Add("X-Forwarded-For", v)
			}
			for _, v := range c.fwd {
				req.Header.Add("Forwarded", v)
			}
			if got := r.Resolve(req).String(); got != c.want {
				t.Errorf("Resolve = %s, want %s", got, c.want)
			}
		})
	}
}

// A chain longer than maxHops of trusted addresses is not walked to its end:
// the work per request is bounded whatever the header holds.
func TestResolveBoundsTheWalk(t *testing.T) {
	r, err := New([]string{"10.0.0.0/8", "127.0.0.1"}, XForwardedFor)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:1"
	req.Header.Add("X-Forwarded-For", "203.0.113.77")
	for range maxHops + 5 {
		req.Header.Add("X-Forwarded-For", "10.0.0.1")
	}
	if got := r.Resolve(req).String(); got != "10.0.0.1" {
		t.Errorf("Resolve = %s, want the last hop looked at (10.0.0.1)", got)
	}
}

func TestNewRefusesBadNetworks(t *testing.T) {
	for _, bad := range []string{"10.0.0.0/33", "not-an-ip", "fe80::1%eth0", ""} {
		if _, err := New([]string{bad}, XForwardedFor); err == nil {
			t.Errorf("New(%q) accepted", bad)
		}
	}
	if _, err := ParseHeader("X-Real-IP"); err == nil {
		t.Error("ParseHeader accepted X-Real-IP")
	}
	for _, ok := range []string{"x-forwarded-for", "X-Forwarded-For", "Forwarded"} {
		if _, err := ParseHeader(ok); err != nil {
			t.Errorf("ParseHeader(%q): %v", ok, err)
		}
	}
}

func TestMiddlewareStoresTheAddress(t *testing.T) {
	r, err := New([]string{"127.0.0.1"}, XForwardedFor)
	if err != nil {
		t.Fatal(err)
	}
	var got, fromCtx string
	h := r.Middleware(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		got, fromCtx = String(req), FromContext(req.Context())
	}))
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "127.0.0.1:9"
	req.Header.Set("X-Forwarded-For", "203.0.113.77")
	h.ServeHTTP(httptest.NewRecorder(), req)
	if got != "203.0.113.77" || fromCtx != "203.0.113.77" {
		t.Errorf("String = %q, FromContext = %q; want 203.0.113.77", got, fromCtx)
	}
	// Without the middleware: the peer.
	req = httptest.NewRequest(http.MethodGet, "/", nil)
	req.RemoteAddr = "[2001:db8::1]:9"
	req.Header.Set("X-Forwarded-For", "203.0.113.77")
	if got := String(req); got != "2001:db8::1" {
		t.Errorf("String without middleware = %q, want the peer", got)
	}
}
