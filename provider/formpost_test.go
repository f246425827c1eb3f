package provider

import (
	"strings"
	"testing"
)

func TestFormPostBody(t *testing.T) {
	for _, c := range []struct {
		name, redirectURI, location string
		ok                          bool
		want, wantNot               []string
	}{
		{"code and iss", "https://app.example/cb", "https://app.example/cb?code=c1&state=s%22&iss=https%3A%2F%2Fid.example",
			true, []string{`action="https://app.example/cb"`, `name="code" value="c1"`, `name="state" value="s&#34;"`, `name="iss" value="https://id.example"`}, nil},
		{"error", "https://app.example/cb", "https://app.example/cb?error=access_denied&error_description=no&state=s",
			true, []string{`name="error" value="access_denied"`, `name="error_description" value="no"`}, []string{`name="code"`}},
		// Native apps register private-use schemes (RFC 8252 §7.1); the
		// form must still post there.
		{"custom scheme", "com.example.app:/cb", "com.example.app:/cb?code=c2&state=s",
			true, []string{`action="com.example.app:/cb"`, `name="code" value="c2"`}, []string{"ZgotmplZ"}},
		{"redirect URI's own query stays in the action", "https://app.example/cb?tenant=7", "https://app.example/cb?code=c3&state=s&tenant=7",
			true, []string{`action="https://app.example/cb?tenant=7"`}, []string{`name="tenant"`}},
		{"only response parameters", "https://app.example/cb", "https://app.example/cb?code=c4&extra=x",
			true, nil, []string{`name="extra"`}},
		{"elsewhere", "https://app.example/cb", "https://evil.example/cb?code=c5", false, nil, nil},
		{"other path", "https://app.example/cb", "https://app.example/other?code=c6", false, nil, nil},
		{"into the sign-in page", "https://app.example/cb", "/login?authRequestID=x", false, nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			body, ok := formPostBody(c.redirectURI, c.location)
			if ok != c.ok {
				t.Fatalf("ok = %v, want %v", ok, c.ok)
			}
			for _, s := range c.want {
				if !strings.Contains(string(body), s) {
					t.Errorf("page lacks %s:\n%s", s, body)
				}
			}
			for _, s := range c.wantNot {
				if strings.Contains(string(body), s) {
					t.Errorf("page has %s:\n%s", s, body)
				}
			}
		})
	}
}

func TestFormPostCSPNamesOnlyTheRedirectOrigin(t *testing.T) {
	for _, c := range []struct{ redirectURI, want string }{
		{"https://app.example/cb?tenant=7", "form-action https://app.example;"},
		{"https://App.Example:8443/cb", "form-action https://app.example:8443;"},
		{"http://127.0.0.1:49152/callback", "form-action http://127.0.0.1:49152;"},
		{"com.example.app:/oauth2redirect", "form-action com.example.app:;"},
		{"https://user:pw@app.example/cb", "form-action https://app.example;"},
		// An internationalised name as the browser resolves it (punycode).
		{"https://bücher.example/cb", "form-action https://xn--bcher-kva.example;"},
		{"https://BÜCHER.example:8443/cb", "form-action https://xn--bcher-kva.example:8443;"},
		// A host-source has no IPv6 literals (CSP3 §2.3.1): a loopback
		// redirect URI of a native app (RFC 8252 §7.3) on [::1] gets the
		// narrowest expression that matches it, its scheme.
		{"http://[::1]:8080/cb", "form-action http:;"},
		{"https://[2001:db8::1]/cb", "form-action https:;"},
		// Hosts a host-source cannot spell get their scheme too, never
		// 'none', which would stop the browser from posting at all.
		{"http://my_app.internal:8080/cb", "form-action http:;"},
		{"https://app.example./cb", "form-action https:;"},
		// Nothing that could be read as more policy, or as a wildcard.
		{"https://app.example;script-src/", "form-action https:;"},
		{"https://app.example 'unsafe-inline'/", "form-action https:;"},
		{"https://*.example/cb", "form-action https:;"},
		{"https:///cb", "form-action https:;"},
		{"/relative", "form-action 'none';"},
		{"'self' https:", "form-action 'none';"},
	} {
		got := formPostCSP(c.redirectURI)
		if !strings.Contains(got, "; "+c.want) || strings.Contains(got, "'self'") || strings.Count(got, "form-action") != 1 || strings.Count(got, ";") != 4 {
			t.Errorf("formPostCSP(%q) = %q, want %q", c.redirectURI, got, c.want)
		}
	}
}
