package main

import (
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/templates"
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

// copyTemplates writes the built-in templates to a directory (for
// templates_dir) and returns it.
func copyTemplates(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.CopyFS(dir, templates.FS); err != nil {
		t.Fatal(err)
	}
	return dir
}

// /static/ serves files with their cache headers and never lists a folder;
// /favicon.ico is served, and every page links an icon.
func TestStaticFilesAndFavicon(t *testing.T) {
	dir := copyTemplates(t)
	if err := os.MkdirAll(filepath.Join(dir, "static", "extra"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "static", "extra", "theme.css"), []byte("body{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "", func(c *config.Config) { c.TemplatesDir = dir })
	fetch := func(method, path string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}

	// Unclean paths are first redirected to their clean form, which ends the
	// same way.
	for _, p := range []string{"/static/", "/static", "/static/extra/", "/static/extra", "/static/./", "/static/extra/..", "/static//", "/static/%2e/", "/static/nope.css"} {
		for _, method := range []string{http.MethodGet, http.MethodHead} {
			resp, body := fetch(method, p)
			if resp.StatusCode != http.StatusNotFound || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("%s %s: %d %s at %s, want the 404 page", method, p, resp.StatusCode, resp.Header.Get("Content-Type"), resp.Request.URL.Path)
			}
			if strings.Contains(body, `href="style.css"`) || strings.Contains(body, `href="extra/"`) || strings.Contains(body, `href="theme.css"`) {
				t.Errorf("%s %s lists the folder:\n%s", method, p, truncateBody(body))
			}
			if cc := resp.Header.Get("Cache-Control"); method == http.MethodGet && cc != "no-store" {
				t.Errorf("%s %s: the 404 page has Cache-Control %q", method, p, cc)
			}
		}
	}

	files := []struct{ path, ctype, prefix string }{
		{"/static/style.css", "text/css", ""},
		{"/static/extra/theme.css", "text/css", "body{}"},
		{"/static/favicon.svg", "image/svg+xml", "<svg"},
		{"/favicon.ico", "image/x-icon", "\x00\x00\x01\x00"}, // the ICO header: reserved 0, type 1 (icon)
	}
	for _, f := range files {
		resp, body := fetch(http.MethodGet, f.path)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), f.ctype) || !strings.HasPrefix(body, f.prefix) {
			t.Errorf("GET %s: %d %q %q", f.path, resp.StatusCode, resp.Header.Get("Content-Type"), truncateBody(body))
		}
		if cc := resp.Header.Get("Cache-Control"); cc != "public, max-age=86400" {
			t.Errorf("GET %s: Cache-Control %q", f.path, cc)
		}
	}

	// Every page links the icons, and the links lead to them.
	_, login := fetch(http.MethodGet, "/login")
	for _, link := range []string{`<link rel="icon" href="/favicon.ico"`, `<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">`} {
		if !strings.Contains(login, link) {
			t.Errorf("the sign-in page lacks %s", link)
		}
	}
}
