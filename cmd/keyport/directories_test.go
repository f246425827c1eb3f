package main

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/keyport/keyport/config"
	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/ldap"
	oidcsource "github.com/keyport/keyport/directory/oidc"
	"github.com/keyport/keyport/directory/sources"
)

// fullDirectory is a [[directories]] table of type typ with every key set
// to a value of its own: strings are their key, lists hold their key.
func fullDirectory(typ string) config.Directory {
	var d config.Directory
	v := reflect.ValueOf(&d).Elem()
	for i := range v.NumField() {
		f, key := v.Field(i), v.Type().Field(i).Tag.Get("toml")
		switch {
		case f.Type() == reflect.TypeFor[config.Duration]():
			f.Set(reflect.ValueOf(config.Duration{Duration: time.Duration(i+1) * time.Second}))
		case f.Kind() == reflect.String:
			f.SetString(key)
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Int:
			f.SetInt(int64(i + 1))
		case f.Kind() == reflect.Slice:
			f.Set(reflect.ValueOf([]string{key, key + "-2"}))
		}
	}
	d.Type = typ
	return d
}

// Every key of a type's settings comes from the config.toml key of the
// same name, with its value, so nothing is lost between config.toml and a
// source (a hand copy once lost fields this way).
func TestConfigFileSettingsTakeEveryKey(t *testing.T) {
	for _, typ := range sources.Types() {
		t.Run(typ.Name, func(t *testing.T) {
			d := fullDirectory(typ.Name)
			table, err := tableOf(d)
			if err != nil {
				t.Fatal(err)
			}
			settings, err := typ.FromTable(table)
			if err != nil {
				t.Fatal(err)
			}
			cfgFields := map[string]reflect.Value{}
			cv := reflect.ValueOf(d)
			for i := range cv.NumField() {
				cfgFields[cv.Type().Field(i).Tag.Get("toml")] = cv.Field(i)
			}
			sv := reflect.ValueOf(settings).Elem()
			for i := range sv.NumField() {
				key := sv.Type().Field(i).Tag.Get("toml")
				if key == "-" {
					continue
				}
				from, ok := cfgFields[key]
				if !ok {
					t.Errorf("%T.%s: toml key %q is not a config.toml key", settings, sv.Type().Field(i).Name, key)
					continue
				}
				want := from.Interface()
				if dur, ok := want.(config.Duration); ok {
					want = dur.Duration
				}
				if got := sv.Field(i).Interface(); !reflect.DeepEqual(got, want) {
					t.Errorf("%s: got %#v, want %#v", key, got, want)
				}
			}
		})
	}
}

// The same settings built from config.toml and from the admin page's
// store are equal, secret included.
func TestConfigFileAndStoredPathsBuildEqualSettings(t *testing.T) {
	env := directory.Env{CallbackURL: "https://id.example.org/login/upstream/callback"}
	for _, d := range []config.Directory{
		{ID: "corp", Name: "Corp", Type: "ldap", URL: "ldap://127.0.0.1:389", BindDN: "cn=svc", BindPassword: "bind-secret",
			UserBaseDN: "dc=example,dc=org", UserFilter: "(objectClass=person)", LoginAttributes: []string{"uid", "mail"},
			GroupNameAttribute: "cn", MemberAttribute: "member", PageSize: 100, Timeout: config.Duration{Duration: 4 * time.Second},
			HandlesSecondFactor: true, Issuer: "https://not.for.ldap", SyncInterval: config.Duration{Duration: time.Hour}},
		{ID: "partner", Type: "oidc", Issuer: "https://sso.example.com", ClientID: "keyport", ClientSecret: "client-secret",
			Scopes: []string{"openid", "email"}, UsernameClaim: "login", ButtonLabel: "Partner", CreateUsers: true,
			URL: "ldap://not.for.oidc"},
	} {
		t.Run(d.Type, func(t *testing.T) {
			typ, err := sources.Lookup(d.Type)
			if err != nil {
				t.Fatal(err)
			}
			table, err := tableOf(d)
			if err != nil {
				t.Fatal(err)
			}
			fromFile, err := typ.FromTable(table)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := typ.ToJSON(fromFile)
			if err != nil {
				t.Fatal(err)
			}
			stored, err := typ.FromJSON(raw)
			if err != nil {
				t.Fatal(err)
			}
			*stored.Secret() = *fromFile.Secret() // sealed apart
			env.ID = d.ID
			for _, s := range []directory.Settings{fromFile, stored} {
				if _, err := s.Build(env); err != nil {
					t.Fatal(err)
				}
			}
			if !reflect.DeepEqual(fromFile, stored) {
				t.Fatalf("config file\n%+v\nstored\n%+v", fromFile, stored)
			}
			if *fromFile.Secret() == "" {
				t.Fatal("the secret was lost")
			}
		})
	}
}

// openDirectories puts LDAP directories in force before upstream
// providers, whatever the order in config.toml, and names a bad table by
// its index.
func TestOpenDirectories(t *testing.T) {
	env := directoryEnv("https://id.example.org", nil, nil)
	dirs := []config.Directory{
		{ID: "partner", Type: "oidc", Issuer: "https://sso.example.com", ClientID: "keyport"},
		{ID: "corp", Type: "ldap", URL: "ldap://127.0.0.1:389", UserBaseDN: "dc=example,dc=org"},
	}
	srcs, err := openDirectories(dirs, env)
	if err != nil {
		t.Fatal(err)
	}
	defer closeSources(srcs)
	if len(srcs) != 2 {
		t.Fatalf("%d sources", len(srcs))
	}
	if _, ok := srcs[0].(*ldap.Source); !ok || srcs[0].ID() != "corp" {
		t.Errorf("first source %T %s, want the LDAP directory", srcs[0], srcs[0].ID())
	}
	if _, ok := srcs[1].(*oidcsource.Source); !ok || srcs[1].ID() != "partner" {
		t.Errorf("second source %T %s, want the upstream provider", srcs[1], srcs[1].ID())
	}
	dirs[0].ClientID = ""
	if _, err := openDirectories(dirs, env); err == nil || !strings.HasPrefix(err.Error(), `directories[0]: oidc source "partner": client_id: must be set`) {
		t.Fatalf("bad upstream: %v", err)
	}
}
