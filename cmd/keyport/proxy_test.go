package main

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/internal/nginxtest"
)

// browserFrom is a browser whose connections come from a given loopback
// address, so a proxy in front of Keyport sees distinct clients.
func browserFrom(t *testing.T, ip string) *browser {
	b := newBrowser(t)
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}}
	b.client.Transport = &http.Transport{DialContext: d.DialContext}
	return b
}

// keyportBehindNginx runs Keyport behind a real nginx that adds the
// client's address to X-Forwarded-For, as the README's proxy setup does.
// Keyport trusts the proxy (127.0.0.1, where nginx connects from); the test's
// clients connect to nginx from other loopback addresses.
func keyportBehindNginx(t *testing.T, mutate func(*config.Config)) (*testServer, *nginxtest.Server) {
	t.Helper()
	srv := startServer(t, "", func(c *config.Config) {
		c.TrustedProxies = []string{"127.0.0.1"}
		if mutate != nil {
			mutate(c)
		}
	})
	proxy := nginxtest.Start(t, `
		location / {
			proxy_pass `+srv.URL+`;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
			proxy_set_header X-Forwarded-Proto $scheme;
		}`)
	return srv, proxy
}

// The repro from the hardening issue: behind the proxy, one client's wrong
// passwords must not throttle another client, and what Keyport records is the
// client's address, not the proxy's, whatever the client forges.
func TestClientAddressBehindNginx(t *testing.T) {
	srv, proxy := keyportBehindNginx(t, nil)
	srv.createUser("victim", false)
	bystander := srv.createUser("bystander", false)

	attacker := browserFrom(t, "127.0.0.5")
	for i := 0; i < 12; i++ {
		p := attacker.get(proxy.URL + "/login")
		attacker.submit(p, "/login", url.Values{"login": {"victim"}, "password": {"wrong password " + string(rune('a'+i))}})
	}

	// A different person, from another address, with a forged header that
	// names the attacker's address (the proxy appends the real one).
	b := browserFrom(t, "127.0.0.6")
	p := b.get(proxy.URL + "/login")
	form := formFields(p.Body)
	form.Set("login", "bystander")
	form.Set("password", testPassword)
	req, _ := http.NewRequest(http.MethodPost, proxy.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "127.0.0.5")
	p = b.do(req)
	if p.Status != http.StatusOK || isLoginPage(p) {
		t.Fatalf("bystander's sign-in through the proxy: %d %s\n%s", p.Status, truncateBody(p.Body), proxy.ErrorLog())
	}
	got := srv.user(bystander.ID)
	if got.LastIP != "127.0.0.6" {
		t.Errorf("bystander's last IP = %q, want the client's 127.0.0.6 (not the proxy's 127.0.0.1, not the forged 127.0.0.5)", got.LastIP)
	}
	attempts, err := srv.Main.Store.ListLoginAttempts(context.Background(), userIDOf(t, srv, "victim"), 20)
	if err != nil {
		t.Fatal(err)
	}
	if len(attempts) == 0 {
		t.Fatal("no sign-in attempts recorded for victim")
	}
	for _, a := range attempts {
		if a.IP != "127.0.0.5" {
			t.Errorf("victim's attempt recorded from %q, want the attacker's 127.0.0.5", a.IP)
			break
		}
	}
}

// Without trusted_proxies, the header is ignored: every client of the proxy
// looks like the proxy, and nobody can choose their address by sending it.
func TestForwardedHeaderIgnoredFromUntrustedPeers(t *testing.T) {
	srv := startServer(t, "", nil)
	u := srv.createUser("alice", false)
	b := newBrowser(t)
	p := b.get(srv.URL + "/login")
	form := formFields(p.Body)
	form.Set("login", "alice")
	form.Set("password", testPassword)
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Forwarded-For", "203.0.113.77")
	req.Header.Set("Forwarded", "for=203.0.113.78")
	if p := b.do(req); isLoginPage(p) {
		t.Fatalf("sign-in failed: %d", p.Status)
	}
	if got := srv.user(u.ID).LastIP; got != "127.0.0.1" {
		t.Errorf("last IP = %q, want the peer 127.0.0.1", got)
	}
}
