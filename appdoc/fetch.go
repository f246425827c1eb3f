// Package appdoc fetches the documents apps publish for the provider to
// read (a jwks_uri, a sector_identifier_uri) through the webhooks' SSRF
// guard, with a timeout and a size limit, and keeps JWK sets for as long
// as their Cache-Control allows (JWKSCache).
package appdoc

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/keyport/keyport/webhook"
)

// Fetch GETs a document an app publishes (its jwks_uri, its
// sector_identifier_uri) through guard's client: an address the SSRF guard
// allows, within webhook.Timeout, at most limit bytes, a 200 only. It
// returns the body and the answer's header.
func Fetch(ctx context.Context, guard *webhook.Guard, client *http.Client, uri, accept string, limit int) ([]byte, http.Header, error) {
	if err := guard.CheckURL(uri); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", uri, err)
	}
	ctx, cancel := context.WithTimeout(ctx, webhook.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, uri, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", uri, err)
	}
	req.Header.Set("Accept", accept)
	resp, err := client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("fetch %s: %w", uri, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("fetch %s: the server answered %d", uri, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, int64(limit)+1))
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", uri, err)
	}
	if len(body) > limit {
		return nil, nil, fmt.Errorf("%s: the document is larger than %d bytes", uri, limit)
	}
	return body, resp.Header, nil
}
