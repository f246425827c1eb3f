package account

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/keyport/keyport/storage"
)

// Every RFC 7591 metadata field Keyport reads is stored and shown again:
// applyClientMetadata and ClientMetadataOf map each one, both ways. A
// field added to ClientMetadata must be set here, so that a mapping
// forgotten in either direction fails.
func TestClientMetadataRoundTrip(t *testing.T) {
	m := ClientMetadata{
		RedirectURIs:                       []string{"https://app.example/cb"},
		TokenEndpointAuthMethod:            AuthPrivateKeyJWT,
		GrantTypes:                         []string{GrantAuthorizationCode, GrantRefreshToken},
		ResponseTypes:                      []string{"code"},
		ClientName:                         "App",
		Scope:                              "openid profile",
		JWKS:                               json.RawMessage(`{"keys":[]}`),
		JWKSURI:                            "https://app.example/jwks",
		PostLogoutRedirectURIs:             []string{"https://app.example/bye"},
		IDTokenSignedResponseAlg:           "ES256",
		UserinfoSignedResponseAlg:          "EdDSA",
		FrontchannelLogoutURI:              "https://app.example/fc",
		FrontchannelLogoutSessionRequired:  true,
		BackchannelLogoutURI:               "https://app.example/bc",
		BackchannelLogoutSessionRequired:   true,
		RequirePushedAuthorizationRequests: true,
		RequireSignedRequestObject:         true,
		DPoPBoundAccessTokens:              true,
		SubjectType:                        SubjectPairwise,
		SectorIdentifierURI:                "https://app.example/sector.json",
		ApplicationType:                    AppTypeNative,
	}
	v := reflect.ValueOf(m)
	for i := range v.NumField() {
		if v.Field(i).IsZero() {
			t.Errorf("ClientMetadata.%s is not set in this test", v.Type().Field(i).Name)
		}
	}
	c := storage.Client{ID: "app"}
	if err := applyClientMetadata(&c, m); err != nil {
		t.Fatal(err)
	}
	if got := ClientMetadataOf(c); !reflect.DeepEqual(got, m) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, m)
	}
}

// What RFC 7591 §2 says when metadata is left out, and what no app may
// register for itself.
func TestClientMetadataDefaultsAndRefusals(t *testing.T) {
	var c storage.Client
	if err := applyClientMetadata(&c, ClientMetadata{RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	if c.Public || c.TokenEndpointAuthMethod != AuthClientSecretBasic || !reflect.DeepEqual(c.GrantTypes, []string{GrantAuthorizationCode}) || c.ApplicationType != AppTypeWeb {
		t.Errorf("defaults: %+v", c)
	}
	// OpenID Connect Dynamic Client Registration 1.0 §2: RS256 when
	// omitted, whatever the server's [keys] algorithm, and said so.
	if c.IDTokenSignedResponseAlg != "RS256" || ClientMetadataOf(c).IDTokenSignedResponseAlg != "RS256" {
		t.Errorf("id_token_signed_response_alg left out: stored %q, shown %q, want RS256", c.IDTokenSignedResponseAlg, ClientMetadataOf(c).IDTokenSignedResponseAlg)
	}
	// The default is an ID token's: an app with client_credentials alone
	// gets none, and keeps the server's algorithm.
	var machine storage.Client
	if err := applyClientMetadata(&machine, ClientMetadata{GrantTypes: []string{GrantClientCredentials}}); err != nil || machine.IDTokenSignedResponseAlg != "" {
		t.Errorf("client_credentials alone: id_token_signed_response_alg %q (%v), want the server's", machine.IDTokenSignedResponseAlg, err)
	}
	if err := applyClientMetadata(&c, ClientMetadata{TokenEndpointAuthMethod: AuthNone}); err != nil || !c.Public {
		t.Errorf("none: public %v, %v", c.Public, err)
	}
	for name, m := range map[string]ClientMetadata{
		"the management scope":      {GrantTypes: []string{GrantClientCredentials}, Scope: ScopeAdmin},
		"the read management scope": {GrantTypes: []string{GrantClientCredentials}, Scope: "openid " + ScopeAdminRead},
		"response type token":       {ResponseTypes: []string{"token"}},
		"code without its grant":    {GrantTypes: []string{GrantClientCredentials}, ResponseTypes: []string{"code"}},
	} {
		var c storage.Client
		if err := applyClientMetadata(&c, m); err == nil || err.Code != Invalid {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// An app held for approval exists for no one but administrators: people
// cannot make an app password limited to it (the list they choose from
// does not show it either, portal/access.go).
func TestHeldAppTakesNoAppPassword(t *testing.T) {
	svc, db := NewTestService(t, TestServiceOptions{})
	ctx := t.Context()
	u := storage.User{ID: "u1", Username: "una", Email: "una@example.com"}
	if err := db.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	held := storage.Client{ID: "held", Name: "Held", GrantTypes: []string{GrantClientCredentials}, RegistrationAccessTokenHash: HashSecret("kpr_x"), PendingApproval: true}
	if err := db.CreateClient(ctx, held); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Credentials.CreateAppPassword(ctx, u, "sync", "held"); err == nil || ErrorCode(err) != Invalid {
		t.Errorf("an app password for a held app: %v", err)
	}
	if _, err := db.UpdateClient(ctx, "held", func(c storage.Client) (storage.Client, error) { c.PendingApproval = false; return c, nil }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Credentials.CreateAppPassword(ctx, u, "sync", "held"); err != nil {
		t.Errorf("an app password for the approved app: %v", err)
	}
}

// An approved app that changes anything of its registration through RFC
// 7592, its name too, is held again until an administrator approves it
// again. Every metadata field Keyport reads is changed here, so a field
// added to ClientMetadata is held on too.
func TestUpdateHoldsApprovedAppAgain(t *testing.T) {
	svc, db := NewTestService(t, TestServiceOptions{})
	ctx := t.Context()
	base := ClientMetadata{
		RedirectURIs: []string{"https://app.example/cb"}, GrantTypes: []string{GrantAuthorizationCode, GrantRefreshToken},
		ResponseTypes: []string{"code"}, ClientName: "App", Scope: "openid profile email",
		PostLogoutRedirectURIs: []string{"https://app.example/bye"},
	}
	const token = RegistrationAccessTokenPrefix + "test-token"
	c := storage.Client{ID: "app"}
	if err := applyClientMetadata(&c, base); err != nil {
		t.Fatal(err)
	}
	if err := normalizeClient(&c, true, nil); err != nil {
		t.Fatal(err)
	}
	c.SecretHash, c.RegistrationAccessTokenHash, c.PendingApproval = HashSecret("secret"), HashSecret(token), true
	if err := db.CreateClient(ctx, c); err != nil {
		t.Fatal(err)
	}
	approved, err := svc.Registration.ApproveClient(ctx, SystemActor, "app", "")
	if err != nil || approved.PendingApproval || approved.ApprovedAt.IsZero() {
		t.Fatalf("approve: %+v, %v", approved, err)
	}
	jwks := json.RawMessage(`{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0","kid":"k1","use":"sig","alg":"ES256"}]}`)
	changes := map[string]func(m *ClientMetadata){
		"client_name":                  func(m *ClientMetadata) { m.ClientName = "Renamed" },
		"redirect_uris":                func(m *ClientMetadata) { m.RedirectURIs = []string{"https://app.example/other"} },
		"token_endpoint_auth_method":   func(m *ClientMetadata) { m.TokenEndpointAuthMethod = AuthClientSecretPost },
		"grant_types":                  func(m *ClientMetadata) { m.GrantTypes = []string{GrantAuthorizationCode} },
		"response_types":               nil, // only "code", which the grant types imply
		"scope":                        func(m *ClientMetadata) { m.Scope = "openid" },
		"jwks":                         func(m *ClientMetadata) { m.JWKS = jwks },
		"jwks_uri":                     func(m *ClientMetadata) { m.JWKSURI = "https://app.example/jwks" },
		"post_logout_redirect_uris":    func(m *ClientMetadata) { m.PostLogoutRedirectURIs = []string{"https://app.example/later"} },
		"id_token_signed_response_alg": func(m *ClientMetadata) { m.IDTokenSignedResponseAlg = "ES256" },
		"userinfo_signed_response_alg": func(m *ClientMetadata) { m.UserinfoSignedResponseAlg = "ES256" },
		"frontchannel_logout_uri":      func(m *ClientMetadata) { m.FrontchannelLogoutURI = "https://app.example/fc" },
		"frontchannel_logout_session_required": func(m *ClientMetadata) {
			m.FrontchannelLogoutURI, m.FrontchannelLogoutSessionRequired = "https://app.example/fc", true
		},
		"backchannel_logout_uri": func(m *ClientMetadata) { m.BackchannelLogoutURI = "https://app.example/bc" },
		"backchannel_logout_session_required": func(m *ClientMetadata) {
			m.BackchannelLogoutURI, m.BackchannelLogoutSessionRequired = "https://app.example/bc", true
		},
		"require_pushed_authorization_requests": func(m *ClientMetadata) { m.RequirePushedAuthorizationRequests = true },
		"require_signed_request_object":         func(m *ClientMetadata) { m.JWKS, m.RequireSignedRequestObject = jwks, true },
		"dpop_bound_access_tokens":              func(m *ClientMetadata) { m.DPoPBoundAccessTokens = true },
		"subject_type":                          func(m *ClientMetadata) { m.SubjectType = SubjectPairwise },
		"sector_identifier_uri":                 nil, // fetched from the network: the protocol tests change it
		"application_type": func(m *ClientMetadata) {
			m.ApplicationType, m.RedirectURIs, m.PostLogoutRedirectURIs = AppTypeNative, []string{"http://127.0.0.1:8400/cb"}, nil
		},
	}
	ty := reflect.TypeFor[ClientMetadata]()
	for i := range ty.NumField() {
		name, _, _ := strings.Cut(ty.Field(i).Tag.Get("json"), ",")
		if _, ok := changes[name]; !ok {
			t.Errorf("ClientMetadata's %s is not changed in this test", name)
		}
	}
	for name, change := range changes {
		if change == nil {
			continue
		}
		// Back to the approved registration, as stored.
		if _, err := db.UpdateClient(ctx, "app", func(storage.Client) (storage.Client, error) { return approved, nil }); err != nil {
			t.Fatal(err)
		}
		m := base
		change(&m)
		got, err := svc.Registration.UpdateRegisteredClient(ctx, "app", token, "192.0.2.1", "", m)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !got.PendingApproval { // even a new name: it is what the consent page shows as approved
			t.Errorf("%s changed: not held again", name)
		}
		if !got.ApprovedAt.Equal(approved.ApprovedAt) {
			t.Errorf("%s changed: approved at %v, was %v", name, got.ApprovedAt, approved.ApprovedAt)
		}
	}

	// An app registered before application_type was kept, and approved
	// then, is a web app: an update that names it so (or names no type)
	// keeps the approval.
	for _, typ := range []string{"", AppTypeWeb} {
		if _, err := db.UpdateClient(ctx, "app", func(storage.Client) (storage.Client, error) {
			c := approved
			c.ApplicationType = ""
			return c, nil
		}); err != nil {
			t.Fatal(err)
		}
		m := base
		m.ApplicationType = typ
		if got, err := svc.Registration.UpdateRegisteredClient(ctx, "app", token, "192.0.2.1", "", m); err != nil || got.PendingApproval || ClientMetadataOf(got).ApplicationType != AppTypeWeb {
			t.Errorf("an app of no stored type updated with application_type %q: held %v, type %q, %v", typ, got.PendingApproval, ClientMetadataOf(got).ApplicationType, err)
		}
	}

	// An app registered before the spec's default algorithm was stored
	// has none (the server's [keys] algorithm signs for it): an update
	// that names none keeps that, and the approval.
	if _, err := db.UpdateClient(ctx, "app", func(storage.Client) (storage.Client, error) {
		c := approved
		c.IDTokenSignedResponseAlg = ""
		return c, nil
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := svc.Registration.UpdateRegisteredClient(ctx, "app", token, "192.0.2.1", "", base); err != nil || got.PendingApproval || got.IDTokenSignedResponseAlg != "" {
		t.Errorf("an app of no stored signing algorithm updated without one: held %v, algorithm %q, %v", got.PendingApproval, got.IDTokenSignedResponseAlg, err)
	}

	// An app no administrator approved (registered without a hold) is
	// not held by any change.
	const openToken = RegistrationAccessTokenPrefix + "open-token"
	open := storage.Client{ID: "open"}
	if err := applyClientMetadata(&open, base); err != nil {
		t.Fatal(err)
	}
	if err := normalizeClient(&open, true, nil); err != nil {
		t.Fatal(err)
	}
	open.SecretHash, open.RegistrationAccessTokenHash = HashSecret("secret"), HashSecret(openToken)
	if err := db.CreateClient(ctx, open); err != nil {
		t.Fatal(err)
	}
	m := base
	m.RedirectURIs = []string{"https://app.example/unreviewed"}
	if got, err := svc.Registration.UpdateRegisteredClient(ctx, "open", openToken, "192.0.2.1", "", m); err != nil || got.PendingApproval {
		t.Errorf("an app never approved: held %v, %v", got.PendingApproval, err)
	}
}

// The redirect URIs an application type allows (OpenID Connect Dynamic
// Client Registration 1.0 §2), on top of ValidateRedirectURI's: a native
// app's are a custom scheme or http on loopback, a web app's are never a
// custom scheme; an app without a type (the administrator's) keeps the
// usual rules. post_logout_redirect_uris are not bound by it.
func TestApplicationTypeRedirectURIs(t *testing.T) {
	for _, tc := range []struct {
		appType string
		public  bool
		uri     string
		ok      bool
	}{
		{AppTypeNative, true, "com.example.app:/callback", true},
		{AppTypeNative, true, "http://127.0.0.1:8400/cb", true},
		{AppTypeNative, true, "http://[::1]/cb", true},
		{AppTypeNative, true, "http://localhost:8400/cb", true},
		{AppTypeNative, true, "https://app.example/cb", false},
		{AppTypeNative, true, "http://app.example/cb", false},
		{AppTypeNative, false, "http://127.0.0.1:8400/cb", true},
		{AppTypeNative, false, "com.example.app:/callback", false}, // ValidateRedirectURI: public only
		{AppTypeWeb, false, "https://app.example/cb", true},
		{AppTypeWeb, false, "http://127.0.0.1:8400/cb", true},
		{AppTypeWeb, true, "https://app.example/cb", true},
		{AppTypeWeb, true, "com.example.app:/callback", false},
		{AppTypeWeb, false, "http://app.example/cb", false},
		{"", true, "com.example.app:/callback", true},
		{"", true, "https://app.example/cb", true},
	} {
		c := storage.Client{ID: "app", GrantTypes: []string{GrantAuthorizationCode}, Public: tc.public, ApplicationType: tc.appType, RedirectURIs: []string{tc.uri}}
		if tc.public {
			c.TokenEndpointAuthMethod = AuthNone
		}
		err := normalizeClient(&c, true, nil)
		if tc.ok != (err == nil) || err != nil && (err.Code != Invalid || err.Field != "redirect_uris") {
			t.Errorf("%q app (public %v) with redirect URI %s: %v, want ok %v", tc.appType, tc.public, tc.uri, err, tc.ok)
		}
	}
	// post_logout_redirect_uris are not bound by the type: a native app's may be https.
	c := storage.Client{ID: "app", GrantTypes: []string{GrantAuthorizationCode}, Public: true, TokenEndpointAuthMethod: AuthNone, ApplicationType: AppTypeNative,
		RedirectURIs: []string{"com.example.app:/callback"}, PostLogoutRedirectURIs: []string{"https://app.example/bye"}}
	if err := normalizeClient(&c, true, nil); err != nil {
		t.Errorf("a native app's https post-logout URI: %v", err)
	}
	c.ApplicationType = "desktop"
	if err := normalizeClient(&c, true, nil); err == nil || err.Field != "application_type" {
		t.Errorf("an unknown application type: %v, want refused for application_type", err)
	}
}
