package provider

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/appdoc"
	"github.com/keyport/keyport/webhook"
)

// maxSectorDocumentBytes bounds a sector_identifier_uri document: a JSON
// array of at most an app's redirect URIs and those of its sector's other
// apps, which this holds many times over.
const maxSectorDocumentBytes = 64 << 10

// SectorChecker fetches the document at a pairwise app's
// sector_identifier_uri and checks it lists every redirect URI of the app
// (OpenID Connect Core 1.0 §8.1, Dynamic Client Registration 1.0 §5). The
// fetch goes through the SSRF guard of jwks_uri fetches
// ([client_auth] jwks_allow_networks: public addresses only unless a
// network is allowed, checked after DNS resolution, no redirect, no
// proxy), with its timeout, reads at most maxSectorDocumentBytes, and
// takes https only.
type SectorChecker struct {
	guard  *webhook.Guard
	client *http.Client
}

// NewSectorChecker checks sector documents through guard; roots, when not
// nil, replaces the system's certificate authorities (tests serve their
// documents from a loopback https server).
func NewSectorChecker(guard *webhook.Guard, roots *x509.CertPool) *SectorChecker {
	client := guard.Client()
	if roots != nil {
		if tr, ok := client.Transport.(*http.Transport); ok {
			tr.TLSClientConfig = &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12}
		}
	}
	return &SectorChecker{guard: guard, client: client}
}

// Check fetches uri and checks that it is a JSON array of strings holding
// every one of redirectURIs (an account.SectorCheck); the error says what
// is wrong.
func (s *SectorChecker) Check(ctx context.Context, uri string, redirectURIs []string) error {
	u, err := url.Parse(uri)
	if err != nil || u.Scheme != "https" {
		return errors.New("it must be an https URL")
	}
	body, _, err := appdoc.Fetch(ctx, s.guard, s.client, uri, "application/json", maxSectorDocumentBytes)
	if err != nil {
		return err
	}
	// What the document says is wrong is an *account.SectorDocumentError,
	// which even an app registering itself is told; a fetch's error only
	// an administrator is (account's checkRegisteredSectorDocument).
	var listed []string
	if err := json.Unmarshal(body, &listed); err != nil {
		return &account.SectorDocumentError{URI: uri}
	}
	for _, r := range redirectURIs {
		if !slices.Contains(listed, r) {
			return &account.SectorDocumentError{URI: uri, Missing: r}
		}
	}
	return nil
}
