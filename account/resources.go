package account

import (
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyport/keyport/storage"
)

// Bounds of an app's resources (resource indicators, RFC 8707). A
// request may ask for at most 512 bytes of resources together (the
// provider's bound, which keeps a stored sign-in within its size), so no
// single longer one could ever be asked for.
const (
	MaxClientResources      = 32
	MaxClientResourceLength = 512
)

// normalizeResources checks app c's Resources: at most MaxClientResources
// absolute URIs without a fragment (RFC 8707 §2), each at most
// MaxClientResourceLength bytes, kept without duplicates.
func normalizeResources(c *storage.Client) *Error {
	if len(c.Resources) > MaxClientResources {
		return FieldErrorf("resources", "At most %d resources.", MaxClientResources)
	}
	kept := make([]string, 0, len(c.Resources))
	for _, r := range c.Resources {
		r = strings.TrimSpace(r)
		if !ResourceURI(r) {
			return FieldErrorf("resources", "%q is not an absolute URI without a fragment of at most %d characters.", clip(r, 64), MaxClientResourceLength)
		}
		if !slices.Contains(kept, r) {
			kept = append(kept, r)
		}
	}
	c.Resources = nil
	if len(kept) > 0 {
		c.Resources = kept
	}
	return nil
}

// ResourceURI tells whether r may name a resource (RFC 8707 §2): an
// absolute URI without a fragment, of the characters a URI may hold, at
// most MaxClientResourceLength bytes.
func ResourceURI(r string) bool {
	if r == "" || len(r) > MaxClientResourceLength || !utf8.ValidString(r) || strings.ContainsAny(r, "# \"<>\\^`{|}") {
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
