package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyport/keyport/account"
)

// Benchmarks of the hot endpoints through real HTTP against the same Main
// that `keyport serve` runs. Run them with
//
//	go test ./cmd/keyport -run '^$' -bench . -benchtime 3s
//
// The figures for the performance targets come from tools/loadtest against a
// server pinned to one core (scripts/bench.sh); these show regressions.

// benchParallelism is b.SetParallelism's factor: 8 × GOMAXPROCS goroutines,
// 16 on the 2-core reference machine.
const benchParallelism = 8

// benchServer is a running Keyport with a user and a confidential client.
type benchServer struct {
	URL          string
	Main         *Main
	ClientID     string
	ClientSecret string
	RedirectURI  string
	client       *http.Client
}

// newBenchClient is an HTTP client that keeps enough idle connections for
// every benchmark goroutine.
func newBenchClient() *http.Client {
	return &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConns:        256,
			MaxIdleConnsPerHost: 128,
			IdleConnTimeout:     time.Minute,
		},
	}
}

// startBenchServer starts the harness's server for a benchmark, with a
// user and a client; jwt makes the client's access tokens JWTs.
func startBenchServer(b *testing.B, jwt bool) *benchServer {
	b.Helper()
	srv := startServerWith(b, serverOptions{})
	m := srv.Main
	s := &benchServer{URL: srv.URL, Main: m, RedirectURI: "http://127.0.0.1:9/cb", client: newBenchClient()}
	b.Cleanup(s.client.CloseIdleConnections)

	bg := context.Background()
	if _, err := m.Accounts.Users.CreateUser(bg, account.NewUser{Username: "bench", Email: "bench@example.com", Name: "Bench User", Password: testPassword}); err != nil {
		b.Fatalf("create user: %v", err)
	}
	c, secret, err := m.Accounts.Clients.RegisterClient(bg, account.SystemActor, account.NewClient{
		ID: "bench", RedirectURIs: []string{s.RedirectURI}, SkipConsent: true, AccessTokenJWT: jwt,
		GrantTypes: []string{account.GrantAuthorizationCode, account.GrantRefreshToken, account.GrantClientCredentials},
	})
	if err != nil {
		b.Fatalf("register client: %v", err)
	}
	s.ClientID, s.ClientSecret = c.ID, secret
	return s
}

// tokenForm posts a form to the token endpoint with HTTP Basic client
// authentication and decodes the answer.
func (s *benchServer) tokenForm(form url.Values) (map[string]any, error) {
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/oauth/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(s.ClientID), url.QueryEscape(s.ClientSecret))
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("token endpoint: %d %s", resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("token endpoint: %v: %s", err, body)
	}
	return m, nil
}

// get fetches path and drains the body, failing on anything but 200.
func (s *benchServer) get(path, bearer string) error {
	req, _ := http.NewRequest(http.MethodGet, s.URL+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %d", path, resp.StatusCode)
	}
	return nil
}

// benchBrowser walks the code flow like a browser: a cookie jar, and it stops
// at the app's redirect URI.
type benchBrowser struct {
	s      *benchServer
	client *http.Client
}

func (s *benchServer) browser() *benchBrowser {
	jar, _ := cookiejar.New(nil)
	return &benchBrowser{s: s, client: &http.Client{
		Jar:       jar,
		Timeout:   30 * time.Second,
		Transport: s.client.Transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasPrefix(req.URL.String(), s.RedirectURI) || len(via) > 10 {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}}
}

func (br *benchBrowser) do(req *http.Request) (page, error) {
	return fetchFollowing(br.client, req, nil)
}

func (br *benchBrowser) submit(p page, action string, extra url.Values) (page, error) {
	form := formFields(p.Body)
	for k, v := range extra {
		form[k] = v
	}
	u, _ := p.URL.Parse(action)
	req, _ := http.NewRequest(http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return br.do(req)
}

// tokens runs a code flow (signing in when the browser has no session yet)
// and exchanges the code.
func (br *benchBrowser) tokens(scope string) (map[string]any, error) {
	s := br.s
	verifier, challenge := pkce()
	q := url.Values{
		"client_id": {s.ClientID}, "redirect_uri": {s.RedirectURI}, "response_type": {"code"}, "scope": {scope},
		"state": {"st"}, "nonce": {"n"}, "code_challenge": {challenge}, "code_challenge_method": {"S256"},
	}
	req, _ := http.NewRequest(http.MethodGet, s.URL+"/authorize?"+q.Encode(), nil)
	p, err := br.do(req)
	for i := 0; err == nil && i < 4; i++ {
		switch {
		case isLoginPage(p):
			p, err = br.submit(p, "/login", url.Values{"login": {"bench"}, "password": {testPassword}})
		case isConsentPage(p):
			p, err = br.submit(p, "/consent", url.Values{"decision": {"allow"}})
		default:
			i = 4
		}
	}
	if err != nil {
		return nil, err
	}
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, s.RedirectURI) {
		return nil, fmt.Errorf("code flow ended at %d %s: %.300s", p.Status, p.Location, p.Body)
	}
	loc, err := url.Parse(p.Location)
	if err != nil {
		return nil, err
	}
	code := loc.Query().Get("code")
	if code == "" {
		return nil, fmt.Errorf("no code in %s", p.Location)
	}
	return s.tokenForm(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {s.RedirectURI}, "code_verifier": {verifier}})
}

// sessionTokens signs in once and then gets n token sets through single sign-on.
func (s *benchServer) sessionTokens(b *testing.B, n int, scope string) []map[string]any {
	b.Helper()
	br := s.browser()
	out := make([]map[string]any, n)
	for i := range out {
		t, err := br.tokens(scope)
		if err != nil {
			b.Fatalf("code flow: %v", err)
		}
		out[i] = t
	}
	return out
}

func BenchmarkTokenClientCredentials(b *testing.B) {
	s := startBenchServer(b, false)
	form := url.Values{"grant_type": {"client_credentials"}, "scope": {"api"}}
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			t, err := s.tokenForm(form)
			if err != nil {
				b.Error(err)
				return
			}
			if t["access_token"] == nil {
				b.Errorf("no access token: %v", t)
				return
			}
		}
	})
}

func benchmarkRefresh(b *testing.B, jwt bool) {
	s := startBenchServer(b, jwt)
	chains := s.sessionTokens(b, runtime.GOMAXPROCS(0)*benchParallelism, "openid profile email offline_access")
	var next atomic.Int64
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		// Each goroutine keeps its own refresh-token chain and always
		// presents the token the previous answer rotated to.
		rt, _ := chains[int(next.Add(1)-1)%len(chains)]["refresh_token"].(string)
		for pb.Next() {
			t, err := s.tokenForm(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
			if err != nil {
				b.Error(err)
				return
			}
			nrt, _ := t["refresh_token"].(string)
			if nrt == "" || nrt == rt || t["id_token"] == nil {
				b.Errorf("refresh answer without a rotated refresh token or an ID token: %v", t)
				return
			}
			rt = nrt
		}
	})
}

// BenchmarkTokenRefresh: opaque access token and an RS256 ID token, one
// signature per request.
func BenchmarkTokenRefresh(b *testing.B) { benchmarkRefresh(b, false) }

// BenchmarkTokenRefreshJWT: JWT access token and ID token, two signatures.
func BenchmarkTokenRefreshJWT(b *testing.B) { benchmarkRefresh(b, true) }

func BenchmarkUserinfo(b *testing.B) {
	s := startBenchServer(b, false)
	at, _ := s.sessionTokens(b, 1, "openid profile email")[0]["access_token"].(string)
	if err := s.get("/userinfo", at); err != nil {
		b.Fatal(err)
	}
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.get("/userinfo", at); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func benchmarkGet(b *testing.B, path string) {
	s := startBenchServer(b, false)
	b.SetParallelism(benchParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.get(path, ""); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkDiscovery(b *testing.B) { benchmarkGet(b, "/.well-known/openid-configuration") }

func BenchmarkJWKS(b *testing.B) { benchmarkGet(b, "/keys") }
