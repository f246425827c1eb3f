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
	var err *Error
	c.Resources, err = normalizeList(c.Resources, func(r string) *Error {
		if !ResourceURI(r) {
			return FieldErrorf("resources", "%q is not an absolute URI without a fragment of at most %d characters.", clip(r, 64), MaxClientResourceLength)
		}
		return nil
	})
	return err
}

// normalizeList is list trimmed, without repeats, nil when empty, or the
// refusal of its first entry that refusal refuses.
func normalizeList(list []string, refusal func(string) *Error) ([]string, *Error) {
	kept := make([]string, 0, len(list))
	for _, v := range list {
		v = strings.TrimSpace(v)
		if err := refusal(v); err != nil {
			return nil, err
		}
		if !slices.Contains(kept, v) {
			kept = append(kept, v)
		}
	}
	if len(kept) == 0 {
		return nil, nil
	}
	return kept, nil
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
