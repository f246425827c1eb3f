package account_test

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

func TestCustomClaimsRefusedWithTheFieldAtFault(t *testing.T) {
	tooMany := make([]storage.ClaimMapping, account.MaxCustomClaims+1)
	for i := range tooMany {
		tooMany[i] = storage.ClaimMapping{Claim: fmt.Sprintf("c%d", i), Source: "roles", Scope: "org"}
	}
	ok := storage.ClaimMapping{Claim: "department", Source: "app_metadata.department", Scope: "org"}
	cases := []struct {
		name     string
		mappings []storage.ClaimMapping
		allowed  []string
		field    string
	}{
		{"protected sub", []storage.ClaimMapping{{Claim: "sub", Source: "username", Scope: "org"}}, nil, "custom_claims[0].claim"},
		{"protected email_verified", []storage.ClaimMapping{ok, {Claim: "email_verified", Source: "app_metadata.x", Scope: "org"}}, nil, "custom_claims[1].claim"},
		{"protected cnf", []storage.ClaimMapping{{Claim: "cnf", Source: "roles", Scope: "org"}}, nil, "custom_claims[0].claim"},
		{"protected groups", []storage.ClaimMapping{{Claim: "groups", Source: "roles", Scope: "org"}}, nil, "custom_claims[0].claim"},
		// Go's encoding/json (go-oidc, zitadel's relying party) and other
		// decoders match keys regardless of case: Email in a token without
		// the email scope reads as email there.
		{"protected Email", []storage.ClaimMapping{{Claim: "Email", Source: "nickname", Scope: "org"}}, nil, "custom_claims[0].claim"},
		{"protected PREFERRED_USERNAME", []storage.ClaimMapping{{Claim: "PREFERRED_USERNAME", Source: "app_metadata.x", Scope: "org"}}, nil, "custom_claims[0].claim"},
		{"protected Cnf", []storage.ClaimMapping{{Claim: "Cnf", Source: "app_metadata.x", Scope: "org"}}, nil, "custom_claims[0].claim"},
		{"duplicate but for case", []storage.ClaimMapping{ok, {Claim: "Department", Source: "roles", Scope: "org"}}, nil, "custom_claims[1].claim"},
		{"bad claim name", []storage.ClaimMapping{{Claim: "a b", Source: "roles", Scope: "org"}}, nil, "custom_claims[0].claim"},
		{"long claim name", []storage.ClaimMapping{{Claim: "a" + strings.Repeat("b", account.MaxCustomClaimLength), Source: "roles", Scope: "org"}}, nil, "custom_claims[0].claim"},
		{"duplicate", []storage.ClaimMapping{ok, ok}, nil, "custom_claims[1].claim"},
		{"unknown source", []storage.ClaimMapping{{Claim: "x", Source: "password_hash", Scope: "org"}}, nil, "custom_claims[0].source"},
		{"secret source", []storage.ClaimMapping{{Claim: "x", Source: "totp_secret", Scope: "org"}}, nil, "custom_claims[0].source"},
		{"no-claim field", []storage.ClaimMapping{{Claim: "x", Source: "recovery_email", Scope: "org"}}, nil, "custom_claims[0].source"},
		{"sub as source", []storage.ClaimMapping{{Claim: "x", Source: "id", Scope: "org"}}, nil, "custom_claims[0].source"},
		{"bad metadata key", []storage.ClaimMapping{{Claim: "x", Source: "app_metadata.", Scope: "org"}}, nil, "custom_claims[0].source"},
		{"no scope", []storage.ClaimMapping{{Claim: "x", Source: "roles"}}, nil, "custom_claims[0].scope"},
		{"offline_access", []storage.ClaimMapping{{Claim: "x", Source: "roles", Scope: "offline_access"}}, nil, "custom_claims[0].scope"},
		{"keyport scope", []storage.ClaimMapping{{Claim: "x", Source: "roles", Scope: "keyport:admin"}}, nil, "custom_claims[0].scope"},
		{"scope not allowed", []storage.ClaimMapping{{Claim: "x", Source: "roles", Scope: "org"}}, []string{"openid", "profile"}, "custom_claims[0].scope"},
		{"bad place", []storage.ClaimMapping{{Claim: "x", Source: "roles", Scope: "org", In: []string{"logout_token"}}}, nil, "custom_claims[0].in"},
		{"too many", tooMany, nil, "custom_claims"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := account.BuildClient(account.NewClient{ID: "app", RedirectURIs: []string{"https://app.example/cb"},
				AllowedScopes: tc.allowed, CustomClaims: tc.mappings})
			if err == nil {
				t.Fatal("accepted")
			}
			if account.ErrorCode(err) != account.Invalid || account.ErrorField(err) != tc.field {
				t.Fatalf("error %v (field %q), want Invalid on %q", err, account.ErrorField(err), tc.field)
			}
		})
	}
}

func TestCustomClaimsStoredFormAndValues(t *testing.T) {
	c, _, err := account.BuildClient(account.NewClient{ID: "app", RedirectURIs: []string{"https://app.example/cb"},
		AllowedScopes: []string{"openid", "org", "profile"},
		CustomClaims: []storage.ClaimMapping{
			{Claim: "department", Source: "app_metadata.department", Scope: "org"},
			{Claim: "app_roles", Source: "roles", Scope: "org", In: []string{"access_token", "id_token", "access_token"}},
			{Claim: "https://example.com/login", Source: "username", Scope: "profile", In: []string{"userinfo"}},
			{Claim: "cost_center", Source: "app_metadata.cost_center", Scope: "org"},
		}})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.CustomClaims[0].In; !reflect.DeepEqual(got, []string{"id_token", "userinfo"}) {
		t.Errorf("default places %v", got)
	}
	if got := c.CustomClaims[1].In; !reflect.DeepEqual(got, []string{"id_token", "access_token"}) {
		t.Errorf("places %v, want in the fixed order without duplicates", got)
	}
	if got := account.CustomScopes(c); !reflect.DeepEqual(got, []string{"org"}) {
		t.Errorf("custom scopes %v", got)
	}
	u := storage.User{ID: "u1", Username: "alice", AppMetadata: map[string]string{"department": "R&D"}}
	id := account.CustomClaims(c, u, []string{"openid", "org"}, nil, account.ClaimInIDToken, "https://id.example")
	want := map[string]any{"department": "R&D", "app_roles": []string{}}
	if !reflect.DeepEqual(id, want) {
		t.Errorf("ID token claims %#v, want %#v (roles always an array, a missing app_metadata key left out)", id, want)
	}
	if got := account.CustomClaims(c, u, []string{"openid", "profile"}, nil, account.ClaimInUserinfo, "https://id.example"); !reflect.DeepEqual(got, map[string]any{"https://example.com/login": "alice"}) {
		t.Errorf("userinfo claims with profile only: %#v", got)
	}
	if got := account.CustomClaims(c, u, []string{"openid"}, nil, account.ClaimInIDToken, ""); got != nil {
		t.Errorf("claims without their scope: %#v", got)
	}
	if got := account.CustomClaims(c, u, []string{"openid"}, []string{"department"}, account.ClaimInIDToken, ""); !reflect.DeepEqual(got, map[string]any{"department": "R&D"}) {
		t.Errorf("claim asked for by name: %#v", got)
	}
	u.Roles = []string{"editor"}
	if got := account.CustomClaims(c, u, []string{"org"}, nil, account.ClaimInAccessToken, ""); !reflect.DeepEqual(got, map[string]any{"app_roles": []string{"editor"}}) {
		t.Errorf("access token claims %#v", got)
	}
	plain := storage.Client{ID: "plain"}
	if got := account.CustomClaims(plain, u, []string{"org"}, nil, account.ClaimInIDToken, ""); got != nil {
		t.Errorf("an app without mappings got %#v", got)
	}
}

func TestCustomClaimsEditAudited(t *testing.T) {
	f := newClientFixture(t)
	_, etag := f.stored(t)
	ms := []storage.ClaimMapping{{Claim: "department", Source: "app_metadata.department", Scope: "org"}}
	bad := []storage.ClaimMapping{{Claim: "iss", Source: "roles", Scope: "org"}}
	if _, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, f.app.ID, etag, account.ClientPatch{CustomClaims: &bad}); account.ErrorField(err) != "custom_claims[0].claim" {
		t.Fatalf("protected claim: %v", err)
	}
	if c, _ := f.stored(t); len(c.CustomClaims) != 0 {
		t.Fatal("a refused edit changed the app")
	}
	c, _, err := f.svc.Clients.UpdateClient(t.Context(), adminActor, f.app.ID, etag, account.ClientPatch{CustomClaims: &ms})
	if err != nil {
		t.Fatal(err)
	}
	if len(c.CustomClaims) != 1 || c.CustomClaims[0].Claim != "department" {
		t.Fatalf("stored %+v", c.CustomClaims)
	}
	evs := f.events(t, account.AuditClientUpdated)
	if len(evs) != 1 || len(evs[0].Changes) != 1 || evs[0].Changes[0].Field != "custom_claims" ||
		evs[0].Changes[0].After != "department=app_metadata.department@org[id_token,userinfo]" {
		t.Fatalf("audit %+v", evs)
	}
}
