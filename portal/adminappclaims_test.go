package portal

import (
	"reflect"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The app form writes an app's custom claims the way it reads them back,
// so saving an unchanged form changes nothing; a line it cannot read
// names its index.
func TestCustomClaimsTextRoundTrip(t *testing.T) {
	ms := []storage.ClaimMapping{
		{Claim: "department", Source: "app_metadata.department", Scope: "org", In: []string{"id_token", "userinfo"}},
		{Claim: "https://example.com/roles", Source: "roles", Scope: "org", In: []string{"access_token"}},
	}
	got, err := parseCustomClaims(customClaimsText(ms))
	if err != nil || !reflect.DeepEqual(got, ms) {
		t.Fatalf("round trip: %+v %v", got, err)
	}
	if got, err := parseCustomClaims("\n  \r\n"); err != nil || len(got) != 0 {
		t.Errorf("blank text: %+v %v", got, err)
	}
	for _, bad := range []struct{ text, field string }{
		{"a b c\nonly two\n", "custom_claims[1]"},
		{"a b c d e\n", "custom_claims[0]"},
	} {
		if _, err := parseCustomClaims(bad.text); account.ErrorField(err) != bad.field {
			t.Errorf("%q: %v (field %q), want %q", bad.text, err, account.ErrorField(err), bad.field)
		}
	}
	many := ""
	for range maxClaimLines + 1 {
		many += "a b c\n"
	}
	if _, err := parseCustomClaims(many); account.ErrorField(err) != "custom_claims" {
		t.Errorf("%d lines: %v", maxClaimLines+1, err)
	}
}

// A refusal names the line of the text area the mapping is on, counting
// the blank lines the form skips, in the rules' terms and the form's.
func TestCustomClaimsErrorNamesTheLine(t *testing.T) {
	text := "team app_metadata.team crm\r\n\r\n\r\nsub username crm\r\n"
	ms, err := parseCustomClaims(text)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = account.BuildClient(account.NewClient{ID: "crm", RedirectURIs: []string{"https://crm.example/cb"}, CustomClaims: ms})
	d := &adminAppData{F: appForm{CustomClaims: text}}
	if !customClaimsError("en", err, d) || !strings.HasPrefix(d.Error, "Custom claims, line 4: ") || d.Field != "custom_claims" {
		t.Errorf("a protected claim on line 4: %q (field %q)", d.Error, d.Field)
	}
	text = "\nteam app_metadata.team crm\n\nonly two\n"
	_, err = parseCustomClaims(text)
	d = &adminAppData{F: appForm{CustomClaims: text}}
	if !customClaimsError("de", err, d) || !strings.HasPrefix(d.Error, "Eigene Claims, Zeile 4: ") {
		t.Errorf("a short line 4: %q", d.Error)
	}
}
