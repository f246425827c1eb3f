package config

import (
	"fmt"
	"net/url"
)

// maxTokenExchangeAudiences matches account.MaxTokenExchangeAudiences.
const maxTokenExchangeAudiences = 32

// validateTokenExchange checks a client's token exchange (RFC 8693)
// settings: only a confidential client may use the grant, and
// token_exchange_audiences lists other apps' IDs or absolute resource URIs.
func validateTokenExchange(p *problems, key string, cl Client, grants map[string]bool) {
	if cl.Public && grants[GrantTokenExchange] {
		p.errorf(key+".grant_types", "a public client may not use %q", GrantTokenExchange)
	}
	if len(cl.TokenExchangeAudiences) > 0 && !grants[GrantTokenExchange] {
		p.warnf(key+".token_exchange_audiences", "has no effect without %q in grant_types", GrantTokenExchange)
	}
	if len(cl.TokenExchangeAudiences) > maxTokenExchangeAudiences {
		p.errorf(key+".token_exchange_audiences", "must list at most %d audiences", maxTokenExchangeAudiences)
	}
	seen := make(map[string]bool, len(cl.TokenExchangeAudiences))
	for j, a := range cl.TokenExchangeAudiences {
		ak := fmt.Sprintf("%s.token_exchange_audiences[%d]", key, j)
		switch {
		case seen[a]:
			p.errorf(ak, "duplicate %q", a)
		case a == "" || len(a) > 128 && !absoluteURI(a) || !validClientID(a) && !absoluteURI(a):
			p.errorf(ak, "%q is neither a client id nor an absolute URI", a)
		}
		seen[a] = true
	}
}

func absoluteURI(s string) bool {
	u, err := url.Parse(s)
	return err == nil && u.IsAbs() && u.Host != "" && u.Fragment == "" && len(s) <= 2048
}
