package webhook

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Every class of address a webhook must not reach is refused, unless an
// admin allowed its network; public addresses pass.
func TestGuardRefusesEachAddressClass(t *testing.T) {
	g, err := NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	refused := map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "::ffff:127.0.0.1": "loopback",
		"169.254.169.254": "link-local", "fe80::1": "link-local",
		"10.1.2.3": "private", "172.16.0.1": "private", "192.168.1.1": "private", "fd00::1": "private",
		"0.0.0.0": "unspecified", "::": "unspecified",
		"224.0.0.1": "link-local", "239.1.2.3": "multicast", "ff02::1": "link-local", "ff05::1": "multicast",
		"100.64.0.1": "carrier-grade", "0.1.2.3": "this network", "255.255.255.255": "broadcast",
	}
	for addr, class := range refused {
		err := g.CheckAddr(netip.MustParseAddr(addr))
		if !errors.Is(err, ErrRefusedAddress) || !strings.Contains(err.Error(), class) {
			t.Errorf("%s: got %v, want a refused %s address", addr, err, class)
		}
	}
	for _, addr := range []string{"93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"} {
		if err := g.CheckAddr(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("%s: %v, want allowed", addr, err)
		}
	}
	allowing, err := NewGuard([]string{"127.0.0.0/8", "10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"127.0.0.1", "::ffff:127.0.0.2", "10.9.9.9"} {
		if err := allowing.CheckAddr(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("allowed %s: %v", addr, err)
		}
	}
	if err := allowing.CheckAddr(netip.MustParseAddr("192.168.0.1")); err == nil {
		t.Error("192.168.0.1 passes a guard allowing 127/8 and 10/8")
	}
	if _, err := NewGuard([]string{"not a cidr"}); err == nil {
		t.Error("NewGuard accepts a bad CIDR")
	}
}

// IPv6 addresses that carry an IPv4 address to a translator (NAT64, 6to4,
// the old IPv4-compatible form) are judged by the IPv4 address they lead
// to: a NAT64 gateway turns 64:ff9b::a9fe:a9fe into 169.254.169.254.
func TestGuardJudgesEmbeddedIPv4(t *testing.T) {
	g, err := NewGuard(nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, addr := range []string{"64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "64:ff9b::a00:1", "2002:a9fe:a9fe::1", "2002:7f00:1::", "::7f00:1", "64:ff9b:1::a00:1"} {
		if err := g.CheckAddr(netip.MustParseAddr(addr)); !errors.Is(err, ErrRefusedAddress) {
			t.Errorf("%s: %v, want refused", addr, err)
		}
	}
	for _, addr := range []string{"64:ff9b::808:808", "2002:808:808::1"} {
		if err := g.CheckAddr(netip.MustParseAddr(addr)); err != nil {
			t.Errorf("%s (a public IPv4 address behind it): %v, want allowed", addr, err)
		}
	}
	allowing, err := NewGuard([]string{"10.0.0.0/8"})
	if err != nil {
		t.Fatal(err)
	}
	if err := allowing.CheckAddr(netip.MustParseAddr("64:ff9b::a00:1")); err != nil {
		t.Errorf("64:ff9b::a00:1 through a guard allowing 10/8: %v", err)
	}
}

func TestCheckURL(t *testing.T) {
	g, _ := NewGuard(nil)
	loop, _ := NewGuard([]string{"127.0.0.0/8"})
	cases := []struct {
		g    *Guard
		url  string
		want string // "" for accepted, else part of the error
	}{
		{g, "https://hooks.example.com/in", ""},
		{g, "https://93.184.216.34/in", ""},
		{g, "http://hooks.example.com/in", "https"},
		{g, "https://127.0.0.1/in", "loopback"},
		{g, "https://[::1]:8443/in", "loopback"},
		{g, "http://127.0.0.1/in", "https"},
		{g, "https://169.254.169.254/latest/meta-data", "link-local"},
		{g, "https://user:pw@hooks.example.com/", "user name"},
		{g, "https://hooks.example.com/#frag", "fragment"},
		{g, "/relative", "absolute"},
		{g, "ftp://hooks.example.com/", "absolute"},
		{g, "https://hooks.example.com/" + strings.Repeat("a", MaxURLBytes), "longer"},
		{loop, "http://127.0.0.1:8080/in", ""},
		{loop, "http://localhost:8080/in", "https"}, // a name is no allowed address
		{loop, "http://10.0.0.1/in", "https"},
	}
	for _, c := range cases {
		err := c.g.CheckURL(c.url)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%.60s: %v, want accepted", c.url, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%.60s: %v, want an error about %q", c.url, err, c.want)
		}
	}
}

// A name that resolves to a refused address is refused when the call
// connects, and the receiver never hears of it.
func TestClientRefusesResolvedLoopback(t *testing.T) {
	var hits atomic.Int32
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer recv.Close()
	u, _ := url.Parse(recv.URL)
	g, _ := NewGuard(nil)
	_, err := Post(t.Context(), g.Client(), Call{URL: "http://localhost:" + u.Port() + "/in", Secret: "s", ID: "e1", Body: []byte("{}"), At: time.Now()})
	if !errors.Is(err, ErrRefusedAddress) || Retry(Result{}, err) {
		t.Fatalf("call to localhost: %v, want a refused address, not retried", err)
	}
	if hits.Load() != 0 {
		t.Fatalf("the receiver got %d calls", hits.Load())
	}
	// Allowed, the same call goes through.
	allow, _ := NewGuard([]string{"127.0.0.0/8", "::1/128"})
	if _, err := Post(t.Context(), allow.Client(), Call{URL: "http://localhost:" + u.Port() + "/in", Secret: "s", ID: "e1", Body: []byte("{}"), At: time.Now()}); err != nil {
		t.Fatalf("allowed call: %v", err)
	}
	if hits.Load() != 1 {
		t.Fatalf("the receiver got %d calls, want 1", hits.Load())
	}
}

// A redirect is not followed: the call fails with the 3xx, for good.
func TestClientDoesNotFollowRedirects(t *testing.T) {
	var followed atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { followed.Add(1) }))
	defer target.Close()
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL, http.StatusTemporaryRedirect)
	}))
	defer recv.Close()
	g, _ := NewGuard([]string{"127.0.0.0/8"})
	res, err := Post(t.Context(), g.Client(), Call{URL: recv.URL, Secret: "s", ID: "e1", Body: []byte("{}"), At: time.Now()})
	if err == nil || res.Status != http.StatusTemporaryRedirect || Retry(res, err) {
		t.Fatalf("redirected call: %+v, %v; want a 307 failure, not retried", res, err)
	}
	if followed.Load() != 0 {
		t.Fatal("the redirect was followed")
	}
}

// What Post signs, Verify accepts; a changed body, another secret or an
// old timestamp is refused.
func TestSignatureRoundTrip(t *testing.T) {
	var got struct {
		sig, id, ts string
		body        []byte
	}
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.sig, got.id, got.ts = r.Header.Get("Keyport-Signature"), r.Header.Get("Webhook-Id"), r.Header.Get("Webhook-Timestamp")
		got.body, _ = io.ReadAll(r.Body)
	}))
	defer recv.Close()
	g, _ := NewGuard([]string{"127.0.0.0/8"})
	now := time.Now()
	body := []byte(`{"id":"e1","type":"user.created"}`)
	if _, err := Post(t.Context(), g.Client(), Call{URL: recv.URL, Secret: "secret", ID: "e1", Body: body, At: now}); err != nil {
		t.Fatal(err)
	}
	if got.id != "e1" || got.ts == "" || !strings.HasPrefix(got.sig, "t="+got.ts+",v1=") {
		t.Fatalf("headers: %+v", got)
	}
	if err := Verify([]byte("secret"), got.sig, got.body, now, time.Minute); err != nil {
		t.Fatalf("verify: %v", err)
	}
	for name, err := range map[string]error{
		"other body":   Verify([]byte("secret"), got.sig, append(got.body, ' '), now, time.Minute),
		"other secret": Verify([]byte("secreT"), got.sig, got.body, now, time.Minute),
		"too old":      Verify([]byte("secret"), got.sig, got.body, now.Add(10*time.Minute), time.Minute),
	} {
		if err == nil {
			t.Errorf("%s: verified", name)
		}
	}
}
