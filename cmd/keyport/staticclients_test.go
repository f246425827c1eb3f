package main

import (
	"strings"
	"testing"

	"github.com/keyport/keyport/config"
)

// An app of config.toml is checked by the account rules the console and
// the API use, and a refusal names the TOML key at fault: the subject type
// and sector (a pairwise app's sector as account.Sector decides it, so
// loopback redirect URIs are the app's own) and the resources (RFC 8707
// §2: absolute URIs without a fragment, bounded).
func TestStaticClientsNameTheKeyAtFault(t *testing.T) {
	base := func() config.Client {
		return config.Client{ID: "rp", Secret: strings.Repeat("s", 32), RedirectURIs: []string{"https://rp.example/cb"},
			GrantTypes: []string{"authorization_code"}}
	}
	tooMany := make([]string, 33)
	for i := range tooMany {
		tooMany[i] = "https://api.example.com/" + strings.Repeat("x", i)
	}
	for _, tt := range []struct {
		name string
		edit func(*config.Client)
		want string // "" for accepted
	}{
		{"public", func(*config.Client) {}, ""},
		{"subject_type unknown", func(c *config.Client) { c.SubjectType = "private" }, "clients[0].subject_type: "},
		{"sector_identifier_uri on a public app", func(c *config.Client) { c.SectorIdentifierURI = "https://rp.example/sector.json" },
			"clients[0].sector_identifier_uri: "},
		{"sector_identifier_uri over http", func(c *config.Client) {
			c.SubjectType, c.SectorIdentifierURI = "pairwise", "http://rp.example/sector.json"
		}, "clients[0].sector_identifier_uri: "},
		{"pairwise with several redirect hosts", func(c *config.Client) {
			c.SubjectType, c.RedirectURIs = "pairwise", []string{"https://a.example/cb", "https://b.example/cb"}
		}, "clients[0].sector_identifier_uri: "},
		{"pairwise with loopback redirect URIs", func(c *config.Client) {
			c.SubjectType, c.RedirectURIs = "pairwise", []string{"http://127.0.0.1/cb", "http://[::1]:8080/cb", "http://localhost/cb"}
		}, ""},
		{"pairwise with loopback and another host", func(c *config.Client) {
			c.SubjectType, c.RedirectURIs = "pairwise", []string{"http://127.0.0.1/cb", "https://app.example/cb"}
		}, "clients[0].sector_identifier_uri: "},
		{"resources", func(c *config.Client) {
			c.Resources = []string{"https://api.example.com/orders", "urn:example:reports"}
		}, ""},
		{"resource relative", func(c *config.Client) { c.Resources = []string{"/orders"} }, "clients[0].resources: "},
		{"resource with a fragment", func(c *config.Client) { c.Resources = []string{"https://api.example.com/#x"} }, "clients[0].resources: "},
		{"resource with an empty fragment", func(c *config.Client) { c.Resources = []string{"https://api.example.com/#"} }, "clients[0].resources: "},
		{"resource empty", func(c *config.Client) { c.Resources = []string{""} }, "clients[0].resources: "},
		{"resource with a space", func(c *config.Client) { c.Resources = []string{"https://api.example.com/a b"} }, "clients[0].resources: "},
		{"resource too long", func(c *config.Client) { c.Resources = []string{"https://api.example.com/" + strings.Repeat("a", 500)} }, "clients[0].resources: "},
		{"too many resources", func(c *config.Client) { c.Resources = tooMany }, "clients[0].resources: "},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := base()
			tt.edit(&c)
			_, err := staticClients([]config.Client{c})
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.HasPrefix(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error starting %q", err, tt.want)
			}
		})
	}
}
