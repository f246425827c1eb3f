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
	"maps"
	"reflect"
	"slices"
	"strings"
	"time"
	"unicode"

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
	// form lists the config.toml keys the admin page's form edits (its
	// input names); formDefaults fills a new form; listSep joins lists.
	form         []string
	formDefaults map[string]string
	listSep      string
	// runKeys are config.toml keys of the type that Keyport reads itself
	// rather than the source (sync_interval: cmd schedules the syncs).
	runKeys []string
	// secretRoute are the config.toml keys that say where the secret is
	// sent and how it is protected on the way (SecretRouteChange).
	secretRoute []string
}

// types is every source type, in the order configured directories are put
// in force (password directories before upstream providers).
var types = []Type{{
	Name: "ldap", SecretName: "bind password", newSettings: func() directory.Settings { return &ldap.Config{} },
	form: []string{"name", "url", "start_tls", "insecure_skip_verify", "bind_dn", "bind_password", "user_base_dn", "user_filter",
		"login_attributes", "disabled_filter", "group_base_dn", "group_filter", "member_attribute", "handles_second_factor"},
	formDefaults: map[string]string{"user_filter": "(objectClass=inetOrgPerson)", "login_attributes": "uid", "member_attribute": "member"},
	listSep:      ", ",
	runKeys:      []string{"sync_interval"},
	secretRoute:  []string{"url", "start_tls", "insecure_skip_verify"},
}, {
	Name: "oidc", SecretName: "client secret", newSettings: func() directory.Settings { return &oidc.Config{} },
	form: []string{"name", "issuer", "client_id", "client_secret", "scopes", "username_claim", "email_claim", "groups_claim",
		"button_label", "link_by_verified_email", "create_users", "handles_second_factor"},
	formDefaults: map[string]string{"scopes": "openid profile email"},
	listSep:      " ",
	secretRoute:  []string{"issuer"},
}}

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

// Keys lists the config.toml keys a [[directories]] table of the type
// takes: its settings' keys, the secret's _file twin (config.Load reads
// the secret from that file) and the keys Keyport reads for the type.
func (t Type) Keys() []string {
	s := t.newSettings()
	v := reflect.ValueOf(s).Elem()
	secret := reflect.ValueOf(s.Secret()).Pointer()
	var keys []string
	for i := range v.NumField() {
		key := v.Type().Field(i).Tag.Get("toml")
		if key == "" || key == "-" {
			continue
		}
		keys = append(keys, key)
		if v.Field(i).Addr().Pointer() == secret {
			keys = append(keys, key+"_file")
		}
	}
	return append(keys, t.runKeys...)
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

// field finds the settings' field tagged with the config.toml key.
func field(v reflect.Value, key string) (reflect.Value, bool) {
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("toml") == key {
			return v.Field(i), true
		}
	}
	return reflect.Value{}, false
}

// FromForm reads the admin page's form of the type for directory id:
// value gives a submitted input by name (the config.toml key). Text is
// trimmed except the secret; a checkbox is on when its value is "1"; lists
// are split at commas and spaces. Keys outside the type's form are not
// read, so a request cannot set what the page does not show.
func (t Type) FromForm(id string, value func(key string) string) (directory.Settings, error) {
	s := t.newSettings()
	v := reflect.ValueOf(s).Elem()
	secret := reflect.ValueOf(s.Secret()).Pointer()
	for _, key := range append([]string{"id"}, t.form...) {
		f, ok := field(v, key)
		if !ok {
			return nil, fmt.Errorf("%s form: no field %q", t.Name, key)
		}
		raw := value(key)
		if key == "id" {
			raw = id
		}
		switch {
		case f.Kind() == reflect.String && f.Addr().Pointer() == secret:
			f.SetString(raw)
		case f.Kind() == reflect.String:
			f.SetString(strings.TrimSpace(raw))
		case f.Kind() == reflect.Bool:
			f.SetBool(strings.TrimSpace(raw) == "1")
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf(strings.FieldsFunc(raw, func(r rune) bool { return r == ',' || unicode.IsSpace(r) })))
		default:
			return nil, fmt.Errorf("%s form: %v field %q", t.Name, f.Type(), key)
		}
	}
	return s, nil
}

// FormValues is what the type's form shows of settings s of directory id:
// the form's fields and the ID by Go field name (as the page's template
// names them), lists joined, the secret never.
func (t Type) FormValues(id string, s directory.Settings) map[string]any {
	v := reflect.ValueOf(s).Elem()
	secret := reflect.ValueOf(s.Secret()).Pointer()
	out := map[string]any{}
	for i := range v.NumField() {
		f, sf := v.Field(i), v.Type().Field(i)
		if !slices.Contains(t.form, sf.Tag.Get("toml")) || f.Addr().Pointer() == secret {
			continue
		}
		if list, ok := f.Interface().([]string); ok {
			out[sf.Name] = strings.Join(list, t.listSep)
		} else {
			out[sf.Name] = f.Interface()
		}
	}
	out["ID"] = id
	return out
}

// NewForm is what the type's form shows for a new directory.
func (t Type) NewForm() map[string]any {
	s, err := t.FromForm("", func(key string) string { return t.formDefaults[key] })
	if err != nil {
		panic(err) // the registry lists a form key its settings lack; TestForms catches it
	}
	return t.FormValues("", s)
}

// FormKeys lists the config.toml keys the admin page's form of the type
// edits, and so the settings the management API may set: one list, so
// the two cannot allow different things.
func (t Type) FormKeys() []string { return append([]string(nil), t.form...) }

// NewSettings are the settings of new directory id of the type: empty,
// but for the defaults the admin page's new form shows.
func (t Type) NewSettings(id string) directory.Settings {
	s, err := t.FromForm(id, func(key string) string { return t.formDefaults[key] })
	if err != nil {
		panic(err) // the registry lists a form key its settings lack; TestForms catches it
	}
	return s
}

// Values is what the management API shows of settings s: the form's
// settings by config.toml key (strings, booleans, lists of strings), the
// secret never.
func (t Type) Values(s directory.Settings) map[string]any {
	v := reflect.ValueOf(s).Elem()
	secret := reflect.ValueOf(s.Secret()).Pointer()
	out := map[string]any{}
	for _, key := range t.form {
		f, ok := field(v, key)
		if !ok || f.Addr().Pointer() == secret {
			continue
		}
		val := f.Interface()
		if list, ok := val.([]string); ok && list == nil {
			val = []string{}
		}
		out[key] = val
	}
	return out
}

// Patch applies a JSON merge patch (RFC 7396) of the management API to
// settings s: patch maps config.toml keys of the type's form to values as
// encoding/json decodes them (string, bool, []any of strings), or to nil,
// which empties the setting so the source's default applies. Text is
// trimmed except the secret; an empty secret keeps the stored one, as on
// the admin page, and the secret cannot be removed. Every problem names its
// key (a *directory.SettingsError); s is changed only when there is none.
func (t Type) Patch(s directory.Settings, patch map[string]any) error {
	next := reflect.New(reflect.TypeOf(s).Elem())
	next.Elem().Set(reflect.ValueOf(s).Elem())
	v := next.Elem()
	secret := reflect.ValueOf(next.Interface().(directory.Settings).Secret()).Pointer()
	var problems []directory.Problem
	bad := func(key, msg string) { problems = append(problems, directory.Problem{Key: key, Message: msg}) }
	for _, key := range slices.Sorted(maps.Keys(patch)) {
		val := patch[key]
		f, ok := field(v, key)
		if !ok || !slices.Contains(t.form, key) {
			bad(key, fmt.Sprintf("not a setting of a %s directory", t.Name))
			continue
		}
		isSecret := f.Addr().Pointer() == secret
		if val == nil {
			if isSecret {
				bad(key, "cannot be removed; leave it out to keep the stored one")
				continue
			}
			f.Set(reflect.Zero(f.Type()))
			continue
		}
		switch {
		case f.Kind() == reflect.String:
			text, ok := val.(string)
			if !ok {
				bad(key, "must be a string")
				continue
			}
			if !isSecret {
				text = strings.TrimSpace(text)
			}
			f.SetString(text)
		case f.Kind() == reflect.Bool:
			b, ok := val.(bool)
			if !ok {
				bad(key, "must be true or false")
				continue
			}
			f.SetBool(b)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			items, ok := val.([]any)
			list := make([]string, 0, len(items))
			for _, item := range items {
				text, isText := item.(string)
				if !isText {
					ok = false
					break
				}
				if text = strings.TrimSpace(text); text != "" {
					list = append(list, text)
				}
			}
			if !ok {
				bad(key, "must be a list of strings")
				continue
			}
			f.Set(reflect.ValueOf(list))
		default:
			bad(key, fmt.Sprintf("%v settings cannot be set here", f.Type()))
		}
	}
	if len(problems) > 0 {
		id := ""
		if f, ok := field(reflect.ValueOf(s).Elem(), "id"); ok {
			id = f.String()
		}
		return &directory.SettingsError{Type: t.Name, ID: id, Problems: problems}
	}
	reflect.ValueOf(s).Elem().Set(v)
	return nil
}

// SecretKey is the config.toml key of the type's sealed setting.
func (t Type) SecretKey() string {
	s := t.newSettings()
	v := reflect.ValueOf(s).Elem()
	secret := reflect.ValueOf(s.Secret()).Pointer()
	for i := range v.NumField() {
		if v.Field(i).Addr().Pointer() == secret {
			return v.Type().Field(i).Tag.Get("toml")
		}
	}
	return ""
}

// SecretRouteChange names the first setting that says where the secret
// goes or how it is protected on the way (an LDAP server's URL and TLS,
// an upstream's issuer) and differs between old and next settings of the
// type, or "" when none does. A stored secret is write-only: sent
// somewhere new without being entered again, it would reach whoever runs
// the new endpoint.
func (t Type) SecretRouteChange(old, next directory.Settings) string {
	ov, nv := reflect.ValueOf(old).Elem(), reflect.ValueOf(next).Elem()
	for _, key := range t.secretRoute {
		of, ok1 := field(ov, key)
		nf, ok2 := field(nv, key)
		if ok1 && ok2 && !reflect.DeepEqual(of.Interface(), nf.Interface()) {
			return key
		}
	}
	return ""
}
