package config

import (
	"strings"
	"testing"
)

func TestValidateResources(t *testing.T) {
	t.Run("valid", func(t *testing.T) {
		c := validConfig()
		c.Clients[0].Resources = []string{"https://api.example.com/orders", "urn:example:reports"}
		warnings, err := c.Validate()
		if err != nil || len(warnings) > 0 {
			t.Fatalf("Validate: warnings %v, err %v", warnings, err)
		}
	})
	for _, tt := range []struct {
		name      string
		resources []string
		want      string
	}{
		{"relative", []string{"/orders"}, `clients[0].resources[0]: "/orders" must be an absolute URI without a fragment`},
		{"fragment", []string{"https://api.example.com/#x"}, `clients[0].resources[0]: "https://api.example.com/#x" must be`},
		{"empty fragment", []string{"https://api.example.com/#"}, `clients[0].resources[0]:`},
		{"empty", []string{""}, `clients[0].resources[0]: "" must be`},
		{"space", []string{"https://api.example.com/a b"}, `clients[0].resources[0]:`},
		{"too long", []string{"https://api.example.com/" + strings.Repeat("a", 500)}, `clients[0].resources[0]:`},
		{"duplicate", []string{"https://a.example/", "https://a.example/"}, `clients[0].resources[1]: duplicate "https://a.example/"`},
		{"too many", func() []string {
			var l []string
			for i := range 33 {
				l = append(l, "https://api.example.com/"+strings.Repeat("x", i))
			}
			return l
		}(), "clients[0].resources: must list at most 32"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := validConfig()
			c.Clients[0].Resources = tt.resources
			_, err := c.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate: %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
