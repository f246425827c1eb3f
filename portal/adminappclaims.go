package portal

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/web"
)

// The console's app form shows an app's custom claims (account/
// customclaims.go) as text, one mapping a line: the claim, its source, its
// scope and, optionally, where it goes, separated by spaces:
//
//	department app_metadata.department org
//	app_roles roles org id_token,access_token
//
// The account rules check what the lines say, as for the API.

// maxClaimLines bounds the lines the form reads, so a crafted form costs
// bounded work; the rules then refuse more than account.MaxCustomClaims.
const maxClaimLines = 4 * account.MaxCustomClaims

// customClaimsText writes mappings as the form shows them.
func customClaimsText(ms []storage.ClaimMapping) string {
	var b strings.Builder
	for _, m := range ms {
		fmt.Fprintf(&b, "%s %s %s %s\n", m.Claim, m.Source, m.Scope, strings.Join(m.In, ","))
	}
	return b.String()
}

// errClaimLine refuses a line of the custom claims field that is not
// "claim source scope [places]".
var errClaimLine = "Write one custom claim per line: the claim, its source, its scope and, if you like, where it goes (id_token,userinfo,access_token), separated by spaces."

// parseCustomClaims reads the form's custom claims field. An error names
// the field with the line's index (custom_claims[N]), as the rules do.
func parseCustomClaims(text string) ([]storage.ClaimMapping, error) {
	out := []storage.ClaimMapping{}
	n := 0
	for line := range strings.Lines(text) {
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if n >= maxClaimLines {
			return nil, account.FieldErrorf("custom_claims", "At most 32 custom claims per app.")
		}
		if len(fields) < 3 || len(fields) > 4 {
			return nil, account.FieldErrorf(fmt.Sprintf("custom_claims[%d]", n), "%s", errClaimLine)
		}
		m := storage.ClaimMapping{Claim: fields[0], Source: fields[1], Scope: fields[2]}
		if len(fields) == 4 {
			m.In = strings.Split(fields[3], ",")
		}
		out = append(out, m)
		n++
	}
	return out, nil
}

var claimLinePattern = regexp.MustCompile(`^custom_claims\[(\d+)\]`)

// customClaimsError turns an error about custom claim N into the form's
// terms: the whole field is marked, and the message names the line of the
// posted text that mapping N is on.
func customClaimsError(lang string, err error, d *adminAppData) bool {
	m := claimLinePattern.FindStringSubmatch(account.ErrorField(err))
	if m == nil {
		return false
	}
	i, _ := strconv.Atoi(m[1])
	d.Field = "custom_claims"
	d.Error = web.Translate(lang, "Custom claims, line %d: %s", claimLineOf(d.F.CustomClaims, i), errorText(lang, err))
	return true
}

// claimLineOf is the line number in text of mapping i: the (i+1)th line
// that is not blank, as parseCustomClaims counts them.
func claimLineOf(text string, i int) int {
	line, n := 0, 0
	for l := range strings.Lines(text) {
		line++
		if strings.TrimSpace(l) == "" {
			continue
		}
		if n == i {
			return line
		}
		n++
	}
	return i + 1 // not in the text: the mapping's own number
}

// withCustomScopes adds to the form's scope choices the scopes it has
// checked or its mappings name that are not among the provider's, so an
// app's own scopes can be allowed and stay allowed.
func withCustomScopes(choices []string, f appForm) []string {
	var extra []string
	for sc, on := range f.Scopes {
		if on && !slices.Contains(choices, sc) && !slices.Contains(extra, sc) {
			extra = append(extra, sc)
		}
	}
	if ms, err := parseCustomClaims(f.CustomClaims); err == nil {
		for _, m := range ms {
			if !slices.Contains(choices, m.Scope) && !slices.Contains(extra, m.Scope) && m.Scope != "" {
				extra = append(extra, m.Scope)
			}
		}
	}
	if len(extra) == 0 {
		return choices
	}
	slices.Sort(extra)
	return slices.Concat(choices, extra)
}

// customScopeDescription is how the consent page describes a scope of an
// app's custom claims.
const customScopeDescription = "See further details about you that your administrator set up for this app"
