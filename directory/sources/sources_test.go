package sources_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/ldap"
	"github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/directory/sources"
)

func TestLookupRefusesAnUnknownType(t *testing.T) {
	for _, name := range []string{"ad", "", "LDAP", "oidc "} {
		_, err := sources.Lookup(name)
		if err == nil || err.Error() != `unknown type "`+name+`"` {
			t.Errorf("Lookup(%q) = %v, want unknown type %q", name, err, name)
		}
	}
	var names []string
	for _, typ := range sources.Types() {
		got, err := sources.Lookup(typ.Name)
		if err != nil || got.Name != typ.Name {
			t.Errorf("Lookup(%q) = %v, %v", typ.Name, got.Name, err)
		}
		names = append(names, typ.Name)
	}
	if want := []string{"ldap", "oidc"}; !reflect.DeepEqual(names, want) {
		t.Errorf("types %v, want %v (LDAP directories are put in force first)", names, want)
	}
}

// fullLDAP and fullOIDC set every field a directory stores.
func fullLDAP() *ldap.Config {
	return &ldap.Config{ID: "corp", Name: "Corp", URL: "ldaps://ldap.example.org", StartTLS: true, CACertFile: "/etc/ca.pem",
		InsecureSkipVerify: true, BindDN: "cn=svc,dc=example,dc=org", BindPassword: "bind-secret",
		UserBaseDN: "ou=people,dc=example,dc=org", UserFilter: "(objectClass=person)", LoginAttributes: []string{"uid", "mail"},
		DisabledFilter: "(locked=TRUE)", IDAttribute: "uuid", UsernameAttribute: "login", EmailAttribute: "email",
		GivenNameAttribute: "gn", FamilyNameAttribute: "surname", DisplayNameAttribute: "cn", PhoneAttribute: "tel",
		PictureAttribute: "photo", GroupBaseDN: "ou=groups,dc=example,dc=org", GroupFilter: "(objectClass=group)",
		MemberAttribute: "uniqueMember", GroupNameAttr: "name", HandlesSecondFactor: true, PageSize: 50,
		Timeout: 7 * time.Second, PoolSize: 2}
}

func fullOIDC() *oidc.Config {
	return &oidc.Config{ID: "partner", Name: "Partner", Issuer: "https://sso.example.com", ClientID: "keyport",
		ClientSecret: "client-secret", Scopes: []string{"openid", "email"}, RedirectURL: "https://id.example.org/login/upstream/callback",
		UsernameClaim: "login", EmailClaim: "mail", GivenNameClaim: "gn", FamilyNameClaim: "sn", NameClaim: "full",
		GroupsClaim: "roles", ButtonLabel: "Partner SSO", LinkByVerifiedEmail: true, CreateUsers: true, HandlesSecondFactor: true}
}

// The stored JSON is what the admin page has always written (the settings
// marshalled as they are, Go field names as keys, the secret empty), and
// it decodes back to the same settings.
func TestStoredJSONRoundTrips(t *testing.T) {
	for _, tc := range []struct {
		typ      string
		settings directory.Settings
	}{{"ldap", fullLDAP()}, {"oidc", fullOIDC()}} {
		t.Run(tc.typ, func(t *testing.T) {
			typ, err := sources.Lookup(tc.typ)
			if err != nil {
				t.Fatal(err)
			}
			secret := *tc.settings.Secret()
			raw, err := typ.ToJSON(tc.settings)
			if err != nil {
				t.Fatal(err)
			}
			if *tc.settings.Secret() != secret {
				t.Fatalf("ToJSON changed the caller's secret to %q", *tc.settings.Secret())
			}
			if strings.Contains(string(raw), secret) {
				t.Fatalf("stored JSON holds the secret: %s", raw)
			}
			// Today's shape: the plain value with the secret cleared.
			clean := reflect.ValueOf(tc.settings).Elem().Interface()
			cleanPtr := reflect.New(reflect.TypeOf(clean))
			cleanPtr.Elem().Set(reflect.ValueOf(clean))
			*cleanPtr.Interface().(directory.Settings).Secret() = ""
			want, _ := json.Marshal(cleanPtr.Elem().Interface())
			if string(raw) != string(want) {
				t.Fatalf("stored JSON\n%s\nwant\n%s", raw, want)
			}
			back, err := typ.FromJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			*back.Secret() = secret
			if !reflect.DeepEqual(back, tc.settings) {
				t.Fatalf("round trip\n%+v\nwant\n%+v", back, tc.settings)
			}
		})
	}
}

func TestToJSONRefusesAnotherTypesSettings(t *testing.T) {
	typ, _ := sources.Lookup("ldap")
	if _, err := typ.ToJSON(fullOIDC()); err == nil || !strings.Contains(err.Error(), "ldap settings: got *oidc.Config") {
		t.Fatalf("ToJSON(oidc settings) as ldap = %v", err)
	}
}

func TestFromJSONRefusesBadSettings(t *testing.T) {
	typ, _ := sources.Lookup("oidc")
	if _, err := typ.FromJSON([]byte(`{"Scopes": "openid"}`)); err == nil {
		t.Fatal("a string for a list was accepted")
	}
}

// A config.toml table decodes into the fields tagged with its keys.
func TestFromTable(t *testing.T) {
	typ, _ := sources.Lookup("ldap")
	got, err := typ.FromTable(map[string]any{
		"id": "corp", "url": "ldap://127.0.0.1", "start_tls": true, "login_attributes": []any{"uid", "mail"},
		"group_name_attribute": "cn", "page_size": int64(20), "timeout": "3s", "scopes": []any{"ignored"},
		"disabled_filter": "", "bind_password": "pw", "member_attribute": "member",
	})
	if err != nil {
		t.Fatal(err)
	}
	want := &ldap.Config{ID: "corp", URL: "ldap://127.0.0.1", StartTLS: true, LoginAttributes: []string{"uid", "mail"},
		GroupNameAttr: "cn", PageSize: 20, Timeout: 3 * time.Second, BindPassword: "pw", MemberAttribute: "member"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("FromTable\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []struct {
		key string
		val any
	}{{"url", int64(1)}, {"start_tls", "yes"}, {"page_size", "20"}, {"timeout", "soon"}, {"timeout", int64(5)}, {"login_attributes", "uid"}, {"login_attributes", []any{int64(1)}}} {
		if _, err := typ.FromTable(map[string]any{bad.key: bad.val}); err == nil || !strings.HasPrefix(err.Error(), bad.key+": ") {
			t.Errorf("%s = %#v: err %v, want one naming the key", bad.key, bad.val, err)
		}
	}
}

// Build gives each type what Keyport supplies.
func TestBuildAppliesTheEnvironment(t *testing.T) {
	env := directory.Env{ID: "from-env", CallbackURL: "https://id.example.org/login/upstream/callback"}
	o := fullOIDC()
	o.ID, o.RedirectURL = "", ""
	src, err := o.Build(env)
	if err != nil || src.ID() != "from-env" || o.RedirectURL != env.CallbackURL {
		t.Fatalf("oidc Build: %v, %v, redirect %q", src, err, o.RedirectURL)
	}
	l := fullLDAP()
	l.CACertFile, l.StartTLS = "", false
	src, err = l.Build(env)
	if err != nil || src.ID() != "from-env" {
		t.Fatalf("ldap Build: %v, %v", src, err)
	}
	if _, err := (&oidc.Config{}).Build(directory.Env{ID: "x"}); err == nil || !strings.Contains(err.Error(), "redirect URL: must be set") {
		t.Fatalf("oidc Build without a callback: %v", err)
	}
}

// The admin page's forms go through the registry: a submitted form reads
// only the type's inputs (trimmed, the secret as typed), and what the form
// shows again is what was submitted, without the secret.
func TestForms(t *testing.T) {
	for _, tc := range []struct {
		typ     string
		submit  map[string]string
		want    map[string]any
		secret  string
		newForm map[string]any
	}{{
		typ: "ldap",
		submit: map[string]string{"name": " Corp ", "url": "ldap://127.0.0.1:389", "start_tls": "1", "bind_dn": "cn=svc",
			"bind_password": " pw ", "user_base_dn": "dc=example,dc=org", "login_attributes": "uid,mail  cn",
			"ca_cert_file": "/etc/shadow", "id_attribute": "x", "handles_second_factor": "0"},
		want: map[string]any{"ID": "corp", "Name": "Corp", "URL": "ldap://127.0.0.1:389", "StartTLS": true, "InsecureSkipVerify": false,
			"BindDN": "cn=svc", "UserBaseDN": "dc=example,dc=org", "UserFilter": "", "LoginAttributes": "uid, mail, cn", "DisabledFilter": "",
			"GroupBaseDN": "", "GroupFilter": "", "MemberAttribute": "", "HandlesSecondFactor": false},
		secret: " pw ",
		newForm: map[string]any{"ID": "", "Name": "", "URL": "", "StartTLS": false, "InsecureSkipVerify": false, "BindDN": "",
			"UserBaseDN": "", "UserFilter": "(objectClass=inetOrgPerson)", "LoginAttributes": "uid", "DisabledFilter": "",
			"GroupBaseDN": "", "GroupFilter": "", "MemberAttribute": "member", "HandlesSecondFactor": false},
	}, {
		typ: "oidc",
		submit: map[string]string{"name": "Partner", "issuer": " https://sso.example.com ", "client_id": "keyport", "client_secret": "s3",
			"scopes": "openid  email", "create_users": "1", "name_claim": "x", "redirect_url": "https://evil.example"},
		want: map[string]any{"ID": "partner", "Name": "Partner", "Issuer": "https://sso.example.com", "ClientID": "keyport",
			"Scopes": "openid email", "UsernameClaim": "", "EmailClaim": "", "GroupsClaim": "", "ButtonLabel": "",
			"LinkByVerifiedEmail": false, "CreateUsers": true, "HandlesSecondFactor": false},
		secret: "s3",
		newForm: map[string]any{"ID": "", "Name": "", "Issuer": "", "ClientID": "", "Scopes": "openid profile email", "UsernameClaim": "",
			"EmailClaim": "", "GroupsClaim": "", "ButtonLabel": "", "LinkByVerifiedEmail": false, "CreateUsers": false, "HandlesSecondFactor": false},
	}} {
		t.Run(tc.typ, func(t *testing.T) {
			typ, _ := sources.Lookup(tc.typ)
			settings, err := typ.FromForm(tc.want["ID"].(string), func(key string) string { return tc.submit[key] })
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(settings)
			for _, outside := range []string{"/etc/shadow", `"IDAttribute":"x"`, "evil", `"NameClaim":"x"`} {
				if strings.Contains(string(raw), outside) {
					t.Errorf("an input outside the form was read: %s", raw)
				}
			}
			if *settings.Secret() != tc.secret {
				t.Errorf("secret %q, want %q", *settings.Secret(), tc.secret)
			}
			if got := typ.FormValues(tc.want["ID"].(string), settings); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("form shows\n%v\nwant\n%v", got, tc.want)
			}
			if got := typ.NewForm(); !reflect.DeepEqual(got, tc.newForm) {
				t.Errorf("new form\n%v\nwant\n%v", got, tc.newForm)
			}
		})
	}
}

// The management API shows the form's settings by config.toml key and
// never the secret.
func TestValuesShowTheFormWithoutTheSecret(t *testing.T) {
	for _, tc := range []struct {
		typ      string
		settings directory.Settings
		secret   string
	}{{"ldap", fullLDAP(), "bind_password"}, {"oidc", fullOIDC(), "client_secret"}} {
		typ, _ := sources.Lookup(tc.typ)
		vals := typ.Values(tc.settings)
		if _, ok := vals[tc.secret]; ok {
			t.Errorf("%s: Values shows the secret: %v", tc.typ, vals)
		}
		raw, _ := json.Marshal(vals)
		if strings.Contains(string(raw), *tc.settings.Secret()) {
			t.Errorf("%s: Values holds the secret's text: %s", tc.typ, raw)
		}
		if len(vals) != len(typ.FormKeys())-1 {
			t.Errorf("%s: Values has %d keys, want the %d form keys but the secret", tc.typ, len(vals), len(typ.FormKeys())-1)
		}
	}
	typ, _ := sources.Lookup("ldap")
	vals := typ.Values(fullLDAP())
	if vals["url"] != "ldaps://ldap.example.org" || vals["start_tls"] != true || !reflect.DeepEqual(vals["login_attributes"], []string{"uid", "mail"}) {
		t.Errorf("ldap values: %v", vals)
	}
}

func TestPatchMergesByKey(t *testing.T) {
	typ, _ := sources.Lookup("ldap")
	s := fullLDAP()
	var patch map[string]any
	if err := json.Unmarshal([]byte(`{"url":" ldap://other:389 ","bind_password":"","login_attributes":["uid"," mail ",""],"start_tls":null,"disabled_filter":null}`), &patch); err != nil {
		t.Fatal(err)
	}
	if err := typ.Patch(s, patch); err != nil {
		t.Fatal(err)
	}
	want := fullLDAP()
	want.URL, want.LoginAttributes, want.StartTLS, want.DisabledFilter = "ldap://other:389", []string{"uid", "mail"}, false, ""
	want.BindPassword = "" // empty: SaveStoredDirectory keeps the stored one
	if !reflect.DeepEqual(s, want) {
		t.Errorf("patched\n%+v\nwant\n%+v", s, want)
	}
	s = fullLDAP()
	s.BindPassword = "kept"
	if err := typ.Patch(s, map[string]any{"bind_password": " new secret "}); err != nil || s.BindPassword != " new secret " {
		t.Errorf("the secret is set as sent, untrimmed: %q %v", s.BindPassword, err)
	}
}

// Every problem names its key, and settings with a problem are left as
// they were.
func TestPatchNamesTheKeyAndChangesNothing(t *testing.T) {
	typ, _ := sources.Lookup("ldap")
	for body, key := range map[string]string{
		`{"url":5}`:                      "url",
		`{"start_tls":"yes"}`:            "start_tls",
		`{"login_attributes":"uid"}`:     "login_attributes",
		`{"login_attributes":["uid",1]}`: "login_attributes",
		`{"id":"other"}`:                 "id",
		`{"page_size":10}`:               "page_size", // not on the form
		`{"issuer":"https://x"}`:         "issuer",    // the other type's
		`{"bind_password":null}`:         "bind_password",
		`{"name":"ok","user_filter":{}}`: "user_filter",
	} {
		var patch map[string]any
		if err := json.Unmarshal([]byte(body), &patch); err != nil {
			t.Fatal(err)
		}
		s := fullLDAP()
		err := typ.Patch(s, patch)
		var se *directory.SettingsError
		if !errors.As(err, &se) || se.Key() != key || se.ID != "corp" {
			t.Errorf("%s: %v, want a problem with %q", body, err, key)
		}
		if !reflect.DeepEqual(s, fullLDAP()) {
			t.Errorf("%s: refused, yet changed the settings to %+v", body, s)
		}
	}
}
