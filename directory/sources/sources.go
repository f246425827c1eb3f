// Package sources is the registry of directory source types. Each type
// (ldap, oidc) is listed here once, with its settings type; directories
// from config.toml and directories added on the admin page are both
// decoded and built through it, so a new type needs no second copy of its
// fields anywhere.
//
// The registry is a plain list rather than self-registration in init, so
// what exists is visible in one place; it lives beside directory rather
// than in it because the source packages import directory.
package sources

import (
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/keyport/keyport/directory"
	"github.com/keyport/keyport/directory/ldap"
	"github.com/keyport/keyport/directory/oidc"
)

// Type is one kind of directory source.
type Type struct {
	// Name is the type's key: config.toml's type, a stored directory's
	// Type.
	Name string
	// SecretName names the settings' sealed field in errors.
	SecretName string
	// newSettings returns empty settings of the type, to decode into.
	newSettings func() directory.Settings
}

// types is every source type, in the order configured directories are put
// in force (password directories before upstream providers).
var types = []Type{
	{Name: "ldap", SecretName: "bind password", newSettings: func() directory.Settings { return &ldap.Config{} }},
	{Name: "oidc", SecretName: "client secret", newSettings: func() directory.Settings { return &oidc.Config{} }},
}

// Types lists the source types.
func Types() []Type { return append([]Type(nil), types...) }

// Lookup finds the type called name.
func Lookup(name string) (Type, error) {
	for _, t := range types {
		if t.Name == name {
			return t, nil
		}
	}
	return Type{}, fmt.Errorf("unknown type %q", name)
}

// FromJSON decodes settings as a stored directory keeps them.
func (t Type) FromJSON(raw []byte) (directory.Settings, error) {
	s := t.newSettings()
	if err := json.Unmarshal(raw, s); err != nil {
		return nil, err
	}
	return s, nil
}

// ToJSON encodes settings of the type for storing, without their secret
// (which is sealed apart); s itself keeps it.
func (t Type) ToJSON(s directory.Settings) ([]byte, error) {
	if want := reflect.TypeOf(t.newSettings()); reflect.TypeOf(s) != want {
		return nil, fmt.Errorf("%s settings: got %T, want %v", t.Name, s, want)
	}
	secret := s.Secret()
	kept := *secret
	*secret = ""
	defer func() { *secret = kept }()
	return json.Marshal(s)
}

var durationType = reflect.TypeFor[time.Duration]()

// FromTable decodes one [[directories]] table of config.toml, as a TOML
// decoder gives it (strings, booleans, int64, lists as []any, durations as
// Go duration strings), into the fields the settings tag with its keys.
// Keys the type does not have are left alone: config.Load refuses unknown
// keys and warns about the other types' keys.
func (t Type) FromTable(table map[string]any) (directory.Settings, error) {
	s := t.newSettings()
	v := reflect.ValueOf(s).Elem()
	for i := range v.NumField() {
		key := v.Type().Field(i).Tag.Get("toml")
		val, ok := table[key]
		if key == "" || key == "-" || !ok {
			continue
		}
		if err := setField(v.Field(i), val); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
	}
	return s, nil
}

func setField(f reflect.Value, val any) error {
	bad := func() error { return fmt.Errorf("%T is not a %v", val, f.Type()) }
	switch {
	case f.Type() == durationType:
		text, ok := val.(string)
		if !ok {
			return bad()
		}
		d, err := time.ParseDuration(text)
		if err != nil {
			return fmt.Errorf("invalid duration %q", text)
		}
		f.SetInt(int64(d))
	case f.Kind() == reflect.String:
		text, ok := val.(string)
		if !ok {
			return bad()
		}
		f.SetString(text)
	case f.Kind() == reflect.Bool:
		b, ok := val.(bool)
		if !ok {
			return bad()
		}
		f.SetBool(b)
	case f.Kind() == reflect.Int:
		n, ok := val.(int64)
		if !ok {
			return bad()
		}
		f.SetInt(n)
	case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
		items, ok := val.([]any)
		if !ok {
			return bad()
		}
		if len(items) == 0 {
			return nil // as an absent key: the source's default applies
		}
		list := make([]string, len(items))
		for i, item := range items {
			if list[i], ok = item.(string); !ok {
				return bad()
			}
		}
		f.Set(reflect.ValueOf(list))
	default:
		return fmt.Errorf("%v fields cannot come from config.toml", f.Type())
	}
	return nil
}
