package config

import (
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// configKey is one key of Config's schema, found by reflection: the tags
// from the root down, and which of them are arrays of tables.
type configKey struct {
	tags   []string
	arrays []bool
	field  reflect.StructField
}

// configKeys lists every key of typ at every depth: the keys of tables and
// of arrays of tables, and those tables' own keys.
func configKeys(typ reflect.Type, tags []string, arrays []bool) []configKey {
	var keys []configKey
	for f := range typ.Fields() {
		tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if tag == "" || tag == "-" {
			continue
		}
		k := configKey{tags: append(tags[:len(tags):len(tags)], tag), field: f}
		isArray := f.Type.Kind() == reflect.Slice && isTOMLTable(f.Type.Elem())
		k.arrays = append(arrays[:len(arrays):len(arrays)], isArray)
		keys = append(keys, k)
		switch {
		case isTOMLTable(f.Type):
			keys = append(keys, configKeys(f.Type, k.tags, k.arrays)...)
		case isArray:
			keys = append(keys, configKeys(f.Type.Elem(), k.tags, k.arrays)...)
		}
	}
	return keys
}

// isTable reports whether the key is written as a table or an array of
// tables rather than key = value.
func (k configKey) isTable() bool {
	return isTOMLTable(k.field.Type) || k.arrays[len(k.arrays)-1]
}

// document writes a TOML document that sets k to value (or, for a table,
// opens it), with the key as the last of tags, which may differ from k's
// own. Every table above it is opened by a header, an array of tables with
// [[...]].
func (k configKey) document(last, value string) string {
	tags := append(k.tags[:len(k.tags)-1:len(k.tags)-1], last)
	var b strings.Builder
	header := func(n int) {
		if k.arrays[n-1] {
			fmt.Fprintf(&b, "[[%s]]\n", strings.Join(tags[:n], "."))
		} else {
			fmt.Fprintf(&b, "[%s]\n", strings.Join(tags[:n], "."))
		}
	}
	for n := 1; n < len(tags); n++ {
		header(n)
	}
	if k.isTable() {
		header(len(tags))
	} else {
		fmt.Fprintf(&b, "%s = %s\n", last, value)
	}
	return b.String()
}

// path names k as Load's messages do, with the last tag as given: an index
// after each array of tables above it.
func (k configKey) path(last string) string {
	var b strings.Builder
	for i, tag := range k.tags[:len(k.tags)-1] {
		b.WriteString(tag)
		if k.arrays[i] {
			b.WriteString("[0]")
		}
		b.WriteString(".")
	}
	b.WriteString(last)
	return b.String()
}

// sampleValue is a TOML value that decodes into a field of type t.
func sampleValue(t *testing.T, typ reflect.Type) string {
	t.Helper()
	switch {
	case typ == reflect.TypeFor[Duration]():
		return `"1s"`
	case typ.Kind() == reflect.String:
		return `"x"`
	case typ.Kind() == reflect.Bool:
		return "true"
	case typ.Kind() == reflect.Int || typ.Kind() == reflect.Int64:
		return "1"
	case typ.Kind() == reflect.Slice && typ.Elem().Kind() == reflect.String:
		return `["x"]`
	}
	t.Fatalf("no sample TOML value for %v: add one", typ)
	return ""
}

// TestUnquotedDurationEverywhere: an unquoted duration is reported with its
// key wherever its field is, in a table or in an array of tables (go-toml
// names neither the key nor the line). [[directories]] timeout = 5 was
// reported as a bare `invalid duration "5"`.
func TestUnquotedDurationEverywhere(t *testing.T) {
	inArray := 0
	for _, k := range configKeys(reflect.TypeFor[Config](), nil, nil) {
		if k.field.Type != reflect.TypeFor[Duration]() {
			continue
		}
		if slices.Contains(k.arrays[:len(k.arrays)-1], true) {
			inArray++
		}
		for _, value := range []string{"5", "5.5"} {
			file := k.document(k.tags[len(k.tags)-1], value)
			t.Run(strings.Join(k.tags, ".")+"="+value, func(t *testing.T) {
				_, _, err := Load(writeFile(t, "keyport.toml", file), nil)
				want := k.path(k.tags[len(k.tags)-1]) + `: durations are quoted strings with a unit, such as "15m" or "720h"`
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Errorf("Load of\n%s\nerror = %v, want one containing %q", file, err, want)
				}
			})
		}
	}
	if inArray == 0 {
		t.Error("no Duration field in an array of tables: the test no longer covers them")
	}
}

// TestKeyInAnotherCaseEverywhere: every key, at every depth (top level,
// tables, arrays of tables, tables in arrays of tables), written in upper
// case is refused with the key it should be.
func TestKeyInAnotherCaseEverywhere(t *testing.T) {
	n := 0
	for _, k := range configKeys(reflect.TypeFor[Config](), nil, nil) {
		tag := k.tags[len(k.tags)-1]
		upper := strings.ToUpper(tag)
		if upper == tag {
			continue
		}
		value := ""
		if !k.isTable() {
			value = sampleValue(t, k.field.Type)
		}
		file := k.document(upper, value)
		n++
		t.Run(k.path(tag), func(t *testing.T) {
			_, _, err := Load(writeFile(t, "keyport.toml", file), nil)
			want := fmt.Sprintf("unknown key %q (keys are case-sensitive: %q)", k.path(upper), tag)
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Load of\n%s\nerror = %v, want one containing %s", file, err, want)
			}
		})
	}
	if n < 100 {
		t.Errorf("only %d keys tried", n)
	}
}

// TestTOMLWalkInlineAndNested: inline tables and arrays of inline tables
// are walked as their [table] and [[array]] forms are, every key of every
// element is seen, and a key in another case is reported together with
// what is under it.
func TestTOMLWalkInlineAndNested(t *testing.T) {
	tests := []struct {
		name string
		file string
		want []string
	}{
		{
			name: "unquoted durations in several arrays of tables and tables",
			file: "[[directories]]\nid = \"a\"\ntimeout = 5\n[[directories]]\nid = \"b\"\nsync_interval = 60\n[session]\nlifetime = 720\n",
			want: []string{"directories[0].timeout: durations", "directories[1].sync_interval: durations", "session.lifetime: durations"},
		},
		{
			name: "unquoted durations in inline tables",
			file: "session = { lifetime = 720 }\ndirectories = [{ id = \"a\" }, { id = \"b\", timeout = 5 }]\n",
			want: []string{"session.lifetime: durations", "directories[1].timeout: durations"},
		},
		{
			name: "unquoted duration under a table in another case",
			file: "[[Directories]]\nid = \"a\"\ntimeout = 5\n",
			want: []string{"Directories[0].timeout: durations"},
		},
		{
			name: "keys in another case in inline tables",
			file: "session = { Lifetime = \"1h\" }\nclients = [{ id = \"a\", Public = true, custom_claims = [{ claim = \"c\", Source = \"s\" }] }]\n",
			want: []string{`"session.Lifetime" (keys are case-sensitive: "lifetime")`, `"clients[0].Public" (keys are case-sensitive: "public")`, `"clients[0].custom_claims[0].Source" (keys are case-sensitive: "source")`},
		},
		{
			name: "keys in another case under a key in another case",
			file: "[[Clients]]\nid = \"a\"\nPublic = true\n[[Clients]]\nid = \"b\"\nSkip_Consent = true\n",
			want: []string{`"Clients" (keys are case-sensitive: "clients")`, `"Clients[0].Public"`, `"Clients[1].Skip_Consent" (keys are case-sensitive: "skip_consent")`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Load(writeFile(t, "keyport.toml", tt.file), nil)
			if err == nil {
				t.Fatal("Load succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}
