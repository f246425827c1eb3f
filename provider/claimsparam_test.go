package provider

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/zitadel/oidc/v3/pkg/oidc"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

func TestParseClaimsParam(t *testing.T) {
	cr, err := parseClaimsParam(`{"id_token":{"email":{"essential":true},"acr":{"essential":true,"values":["` + account.ACRPasskey + `","x"]}},` +
		`"userinfo":{"name":null,"acr":null},"other":[1,2]}`)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(cr.userinfo)
	if !slices.Equal(cr.idToken, []string{"email"}) || !slices.Equal(cr.userinfo, []string{"acr", "name"}) ||
		!slices.Equal(cr.acr, []string{account.ACRPasskey, "x"}) || !cr.acrEssential {
		t.Errorf("parsed %+v", cr)
	}
	if cr, err := parseClaimsParam(`{"id_token":{"acr":{"value":"` + account.ACRSecondFactor + `"}}}`); err != nil || cr.acrEssential || !slices.Equal(cr.acr, []string{account.ACRSecondFactor}) {
		t.Errorf("voluntary acr value: %+v %v", cr, err)
	}
	// essential without values asks only that acr be returned.
	if cr, err := parseClaimsParam(`{"id_token":{"acr":{"essential":true}}}`); err != nil || cr.acrEssential || cr.acrAsked {
		t.Errorf("essential acr without values: %+v %v", cr, err)
	}
	if cr, err := parseClaimsParam(`{"id_token":{"sub":{"value":"u-1"}},"userinfo":{"sub":{"value":"ignored"}}}`); err != nil || cr.subject != "u-1" || len(cr.idToken) != 0 {
		t.Errorf("sub with a value: %+v %v", cr, err)
	}
	if cr, err := parseClaimsParam(""); err != nil || cr.acrAsked || cr.idToken != nil {
		t.Errorf("no claims parameter: %+v %v", cr, err)
	}
	var names []string
	for i := range maxClaimsPerMember + 1 {
		names = append(names, `"c`+strconv.Itoa(i)+`":null`)
	}
	many := `{"userinfo":{` + strings.Join(names, ",") + `}}`
	for _, bad := range []string{`{`, `null`, `[]`, `"x"`, `1`, `{"id_token":[]}`, `{"userinfo":"x"}`, `{"id_token":{"email":1}}`,
		`{"id_token":{"acr":{"values":"x"}}}`, `{"id_token":{"sub":{"value":1}}}`, `{"id_token":{"sub":{"value":""}}}`, `{"id_token":{"acr":{"value":["x"]}}}`, `{"id_token":{"acr":{"values":[1]}}}`,
		`{"id_token":{}}` + strings.Repeat(" ", maxClaimsParam), many} {
		if _, err := parseClaimsParam(bad); err == nil || err.ErrorType != oidc.InvalidRequest {
			t.Errorf("parseClaimsParam(%.60q) = %v, want invalid_request", bad, err)
		}
	}
}

func TestApplyClaimsRequest(t *testing.T) {
	c := storage.Client{AllowedScopes: []string{"openid", "email"}}
	a := storage.AuthRequest{ACRValues: []string{"urn:example:x", account.ACRSecondFactor}}
	if err := applyClaimsRequest(&a, c, claimsRequest{idToken: []string{"email", "name"}, userinfo: []string{"email_verified"}}, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.IDTokenClaims, []string{"email"}) || !slices.Equal(a.UserinfoClaims, []string{"email_verified"}) ||
		!slices.Equal(a.ACRValues, []string{account.ACRSecondFactor}) || a.ACREssential {
		t.Errorf("stored %+v", a)
	}
	// The claims parameter's acr takes the place of acr_values.
	a = storage.AuthRequest{ACRValues: []string{account.ACRPassword}}
	if err := applyClaimsRequest(&a, c, claimsRequest{acr: []string{account.ACRPasskey}, acrAsked: true, acrEssential: true}, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(a.ACRValues, []string{account.ACRPasskey}) || !a.ACREssential {
		t.Errorf("stored %+v", a)
	}
	a = storage.AuthRequest{}
	if err := applyClaimsRequest(&a, c, claimsRequest{acr: []string{"urn:example:x"}, acrAsked: true, acrEssential: true}, nil); err == nil || err.ErrorType != "unmet_authentication_requirements" {
		t.Errorf("an essential class Keyport does not offer: %v", err)
	}
}

// BenchmarkParseClaimsParam parses a claims parameter of nearly
// maxClaimsParam bytes: two members of claims asked for as essential.
func BenchmarkParseClaimsParam(b *testing.B) {
	var names []string
	for i := range 60 {
		names = append(names, `"claim_`+strconv.Itoa(i)+`":{"essential":true}`)
	}
	member := `{` + strings.Join(names, ",") + `}`
	raw := `{"id_token":` + member + `,"userinfo":` + member + `}`
	if _, err := parseClaimsParam(raw); err != nil || len(raw) < maxClaimsParam*3/4 {
		b.Fatalf("%d bytes: %v", len(raw), err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		_, _ = parseClaimsParam(raw)
	}
}
