package portal

import (
	"net/url"
	"strconv"
	"strings"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// userQuery reads a user search from a URL's query, for the API's list and
// the console's: q (text), source ("local" or a directory ID), blocked,
// admin, two_factor (true/false), group, sort (created, last_sign_in),
// cursor.
func userQuery(v url.Values) (storage.UserQuery, error) {
	q := storage.UserQuery{Search: strings.TrimSpace(v.Get("q")), Group: strings.TrimSpace(v.Get("group")), Sort: v.Get("sort"), Cursor: v.Get("cursor")}
	if src := v.Get("source"); src != "" {
		if src == "local" {
			src = ""
		}
		q.Source = &src
	}
	for name, dst := range map[string]**bool{"blocked": &q.Blocked, "admin": &q.Admin, "two_factor": &q.TwoFactor} {
		raw := v.Get(name)
		if raw == "" {
			continue
		}
		b, err := strconv.ParseBool(raw)
		if err != nil {
			return q, account.FieldErrorf(name, "%s must be true or false.", name)
		}
		*dst = &b
	}
	return q, nil
}

// userQueryParams documents userQuery in the OpenAPI document.
var userQueryParams = append([]apiParam{
	{"q", "string", "a part of the username, email, name or phone number (case ignored, Unicode-aware)"},
	{"source", "string", `"local" or a directory's ID`},
	{"blocked", "boolean", "only blocked (true) or unblocked (false) users"},
	{"admin", "boolean", "only administrators (true) or others (false)"},
	{"two_factor", "boolean", "with (true) or without (false) a second factor"},
	{"group", "string", "members of this group"},
	{"sort", "string", "created (newest first; the default) or last_sign_in"},
}, pageQuery...)
