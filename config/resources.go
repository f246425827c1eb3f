package config

import (
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Bounds of a client's resources; they match account.MaxClientResources
// and account.MaxClientResourceLength.
const (
	maxClientResources      = 32
	maxClientResourceLength = 512
)

// validateResources checks a client's resources (resource indicators,
// RFC 8707 §2): absolute URIs without a fragment, none repeated.
func validateResources(p *problems, key string, cl Client) {
	if len(cl.Resources) > maxClientResources {
		p.errorf(key+".resources", "must list at most %d resources", maxClientResources)
	}
	seen := make(map[string]bool, len(cl.Resources))
	for j, r := range cl.Resources {
		rk := fmt.Sprintf("%s.resources[%d]", key, j)
		switch {
		case seen[r]:
			p.errorf(rk, "duplicate %q", r)
		case !resourceURI(r):
			p.errorf(rk, "%q must be an absolute URI without a fragment, of at most %d characters", r, maxClientResourceLength)
		}
		seen[r] = true
	}
}

func resourceURI(r string) bool {
	if r == "" || len(r) > maxClientResourceLength || !utf8.ValidString(r) || strings.ContainsAny(r, "# \"<>\\^`{|}") {
		return false
	}
	for _, c := range r {
		if !unicode.IsPrint(c) {
			return false
		}
	}
	u, err := url.Parse(r)
	return err == nil && u.IsAbs()
}
