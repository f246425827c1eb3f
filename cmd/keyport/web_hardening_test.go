package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/config"
)

// hardeningRequests are requests of every kind the server answers: portal
// pages, static files, errors, and the provider's documents, JSON errors and
// browser-facing error pages.
func hardeningRequests(base string) []*http.Request {
	get := func(path string) *http.Request {
		r, _ := http.NewRequest(http.MethodGet, base+path, nil)
		return r
	}
	token, _ := http.NewRequest(http.MethodPost, base+"/oauth/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
	token.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	token.SetBasicAuth("nobody", "wrong-secret")
	return []*http.Request{
		get("/"), get("/login"), get("/logged-out"), get("/healthz"), get("/static/style.css"), get("/no/such/page"),
		get("/.well-known/openid-configuration"), get("/keys"), get("/userinfo"), token,
		get("/authorize?client_id=nobody&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&response_type=code&scope=openid"),
	}
}

// With an https issuer every response, the provider's as well as the
// portal's, carries Strict-Transport-Security with the configured max-age;
// "0" and an http issuer send none.
func TestStrictTransportSecurity(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(*config.Config)
		want   string
	}{
		{"https issuer, default max-age", func(c *config.Config) { c.Issuer = "https://id.keyport.test" }, "max-age=31536000"},
		{"https issuer, a week, subdomains", func(c *config.Config) {
			c.Issuer = "https://id.keyport.test"
			c.HTTP.HSTSMaxAge = config.Duration{Duration: 168 * time.Hour}
			c.HTTP.HSTSIncludeSubdomains = true
		}, "max-age=604800; includeSubDomains"},
		{"https issuer, off", func(c *config.Config) {
			c.Issuer = "https://id.keyport.test"
			c.HTTP.HSTSMaxAge = config.Duration{}
		}, ""},
		{"http issuer", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			srv := startServer(t, "", c.mutate)
			for _, req := range hardeningRequests(srv.URL) {
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
				}
				resp.Body.Close()
				got := resp.Header.Values("Strict-Transport-Security")
				if c.want == "" && len(got) != 0 || c.want != "" && (len(got) != 1 || got[0] != c.want) {
					t.Errorf("%s %s (%d): Strict-Transport-Security %q, want %q", req.Method, req.URL.Path, resp.StatusCode, got, c.want)
				}
			}
		})
	}
}
