package config

import (
	"strings"
	"testing"
)

func TestValidateTokenExchange(t *testing.T) {
	const urn = "urn:ietf:params:oauth:grant-type:token-exchange"
	t.Run("valid", func(t *testing.T) {
		c := validConfig()
		c.Clients[0].GrantTypes = []string{"authorization_code", "refresh_token", urn}
		c.Clients[0].TokenExchangeAudiences = []string{"spa", "https://api.example.com/orders"}
		warnings, err := c.Validate()
		if err != nil || len(warnings) > 0 {
			t.Fatalf("Validate: warnings %v, err %v", warnings, err)
		}
	})
	for _, tt := range []struct {
		name   string
		modify func(c *Config)
		want   string
	}{
		{"public", func(c *Config) { c.Clients[1].GrantTypes = []string{"authorization_code", urn} },
			`clients[1].grant_types: a public client may not use "` + urn + `"`},
		{"bad audience", func(c *Config) {
			c.Clients[0].GrantTypes = []string{"authorization_code", urn}
			c.Clients[0].TokenExchangeAudiences = []string{"not an id"}
		}, `clients[0].token_exchange_audiences[0]: "not an id" is neither a client id nor an absolute URI`},
		{"empty audience", func(c *Config) {
			c.Clients[0].GrantTypes = []string{"authorization_code", urn}
			c.Clients[0].TokenExchangeAudiences = []string{""}
		}, `clients[0].token_exchange_audiences[0]: "" is neither`},
		{"duplicate audience", func(c *Config) {
			c.Clients[0].GrantTypes = []string{"authorization_code", urn}
			c.Clients[0].TokenExchangeAudiences = []string{"spa", "spa"}
		}, `clients[0].token_exchange_audiences[1]: duplicate "spa"`},
		{"too many", func(c *Config) {
			c.Clients[0].GrantTypes = []string{"authorization_code", urn}
			for i := 0; i < 33; i++ {
				c.Clients[0].TokenExchangeAudiences = append(c.Clients[0].TokenExchangeAudiences, "app"+strings.Repeat("x", i))
			}
		}, "clients[0].token_exchange_audiences: must list at most 32"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			tt.modify(c)
			_, err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("audiences without the grant warn", func(t *testing.T) {
		c := validConfig()
		c.Clients[0].TokenExchangeAudiences = []string{"spa"}
		warnings, err := c.Validate()
		if err != nil || len(warnings) != 1 || !strings.Contains(warnings[0], "clients[0].token_exchange_audiences: has no effect") {
			t.Fatalf("Validate: warnings %v, err %v", warnings, err)
		}
	})
}
