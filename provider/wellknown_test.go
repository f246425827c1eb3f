package provider

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// RFC 8414 §3: OAuth 2.0 clients look for the server's metadata at
// /.well-known/oauth-authorization-server, after which an issuer's path
// goes. They get the discovery document, whose issuer is the same.
func TestAuthorizationServerMetadata(t *testing.T) {
	f := newLogoutFixture(t)
	get := func(p *Provider, target string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, target, nil))
		return rec
	}
	oidcDoc := get(f.p, logoutIssuer+"/.well-known/openid-configuration")
	oauthDoc := get(f.p, logoutIssuer+"/.well-known/oauth-authorization-server")
	if oauthDoc.Code != http.StatusOK || oauthDoc.Body.String() != oidcDoc.Body.String() || oauthDoc.Header().Get("ETag") != oidcDoc.Header().Get("ETag") {
		t.Fatalf("RFC 8414 metadata: %d %s, want the discovery document %s", oauthDoc.Code, oauthDoc.Body, oidcDoc.Body)
	}
	var doc map[string]any
	if err := json.Unmarshal(oauthDoc.Body.Bytes(), &doc); err != nil || doc["issuer"] != logoutIssuer || doc["token_endpoint"] != logoutIssuer+"/oauth/token" {
		t.Errorf("metadata %v (%v): want issuer %s and its token endpoint", doc, err, logoutIssuer)
	}
	if rec := get(f.p, logoutIssuer+"/.well-known/oauth-authorization-server/other"); rec.Code == http.StatusOK {
		t.Errorf("metadata under a path that is not the issuer's: %d %s", rec.Code, rec.Body)
	}

	// An issuer with a path: its metadata is under the well-known path
	// followed by the issuer's.
	const pathIssuer = logoutIssuer + "/sso"
	withPath, err := New(Options{Subjects: testSubjects(t), Issuer: pathIssuer, Store: f.store, Keys: f.keys, Logger: slog.New(slog.DiscardHandler),
		Web: logoutWeb(t), SignOut: logoutSignOut{f}, LoggedOutURL: pathIssuer + "/logged-out"})
	if err != nil {
		t.Fatal(err)
	}
	rec := get(withPath, "https://id.example.com/.well-known/oauth-authorization-server/sso")
	doc = nil
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); rec.Code != http.StatusOK || err != nil || doc["issuer"] != pathIssuer {
		t.Errorf("metadata of an issuer with a path: %d %s", rec.Code, rec.Body)
	}
}

// Every endpoint discovery advertises that the provider serves is in its
// route table with what it asks of its caller; the registration endpoint
// is the portal's, in its own table.
func TestDiscoveredEndpointsAreRoutes(t *testing.T) {
	f := newLogoutFixture(t)
	rec := httptest.NewRecorder()
	f.p.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, logoutIssuer+"/.well-known/openid-configuration", nil))
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	callers := map[string]string{DeviceAuthorizationPath: CallerClient}
	for _, r := range Routes {
		switch r.Caller {
		case CallerPublic, CallerBrowser, CallerClient, CallerBearer:
		default:
			t.Errorf("route %s: unknown caller %q", r.Path, r.Caller)
		}
		callers[r.Path] = r.Caller
	}
	checked := 0
	for k, v := range doc {
		u, ok := v.(string)
		if !ok || k == "issuer" || k == "registration_endpoint" || !strings.HasPrefix(u, logoutIssuer+"/") {
			continue
		}
		checked++
		if callers[strings.TrimPrefix(u, logoutIssuer)] == "" {
			t.Errorf("discovery's %s (%s) is not in provider.Routes", k, u)
		}
	}
	if checked < 7 {
		t.Fatalf("only %d endpoints in the discovery document: %v", checked, doc)
	}
}
