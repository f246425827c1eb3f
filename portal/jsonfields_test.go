package portal

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// Test-only body shapes with every kind of embedding encoding/json treats
// its own way. Every leaf is a string, so the one a member fills is the
// one that is not empty after decoding.
type (
	JSONEmbedBody struct {
		ID     string `json:"id"`
		Shadow string `json:"shadow"` // hides JSONEmbedBase's shadow
		JSONEmbedBase
		*JSONEmbedPtr
		Tagged              JSONEmbedTagged `json:"-"`
		JSONEmbedTagged     `json:"tagged"`
		*JSONEmbedTaggedPtr `json:"tagged_ptr,omitempty"`
		jsonEmbedHidden
		JSONEmbedLabel
		//lint:ignore SA5008 a tag encoding/json does not take, on purpose
		Bad  string `json:"a\"b"` // not a tag encoding/json takes: "Bad"
		Opts string `json:",omitempty"`
		//lint:ignore U1000 an unexported field, which no member names
		ignore string
	}
	JSONEmbedBase struct {
		Shadow string `json:"shadow"`
		Name   string // untagged: "Name"
		Inner  string `json:"inner"`
		Tw     string `json:"Tw"` // tagged, beats JSONEmbedPtr's untagged Tw
		Dash   string `json:"-"`
	}
	JSONEmbedPtr struct {
		Tw    string
		Deep  string `json:"deep"`
		Title string `json:"name_title"`
		JSONEmbedDeeper
	}
	JSONEmbedDeeper struct {
		Deepest string `json:"deepest"`
		ID      string `json:"id"`   // hidden by JSONEmbedBody's id
		Name    string `json:"Name"` // tagged but deeper than Name: hidden
	}
	JSONEmbedTagged struct {
		P     string
		Under string `json:"under"` // not promoted: its struct is tagged
	}
	JSONEmbedTaggedPtr struct {
		P string
	}
	jsonEmbedHidden struct {
		Visible string `json:"visible"` // promoted from an unexported struct
		//lint:ignore U1000 an unexported field, which no member names
		hidden string
	}
	JSONEmbedLabel string // an embedded non-struct: "JSONEmbedLabel"

	// Fields that tie, put together by jsonEmbedTies: go vet refuses a
	// struct type written with two fields of one json name at one depth.
	JSONEmbedA struct {
		JSONEmbedTwice
		OnlyA string `json:"only_a"`
		Both  string `json:"both"`
		Same  string
	}
	JSONEmbedB struct {
		JSONEmbedTwice
		Both string `json:"both"`
		Same string
	}
	// JSONEmbedTwice is embedded twice at one depth: its fields tie.
	JSONEmbedTwice struct {
		Twice string `json:"twice"`
	}

	// JSONEmbedCycle embeds itself.
	JSONEmbedCycle struct {
		*JSONEmbedCycle
		Loop string `json:"loop"`
	}
)

// jsonEmbedTies embeds JSONEmbedA and JSONEmbedB: their both and Same tie,
// and JSONEmbedTwice's twice ties with itself.
var jsonEmbedTies = reflect.StructOf([]reflect.StructField{
	{Name: "JSONEmbedA", Type: reflect.TypeFor[JSONEmbedA](), Anonymous: true},
	{Name: "JSONEmbedB", Type: reflect.TypeFor[*JSONEmbedB](), Anonymous: true},
	{Name: "Own", Type: reflect.TypeFor[string](), Tag: `json:"own"`},
})

// TestJSONFieldsOfEmbedded compares jsonFieldsOf with what encoding/json
// decodes: for every name in the types (their Go names and tags, and
// others), a member of that name is taken by a field exactly when
// jsonFieldsOf has the name (or, matched in another case, one equal to it
// but for case), and it fills the field jsonFieldsOf gives.
func TestJSONFieldsOfEmbedded(t *testing.T) {
	for _, typ := range []reflect.Type{reflect.TypeFor[JSONEmbedBody](), reflect.TypeFor[JSONEmbedCycle](), jsonEmbedTies} {
		t.Run(cmp.Or(typ.Name(), "ties"), func(t *testing.T) {
			fields := jsonFieldsOf(typ)
			if again := jsonFieldsOf(typ); reflect.ValueOf(again).UnsafePointer() != reflect.ValueOf(fields).UnsafePointer() {
				t.Error("jsonFieldsOf built the map twice")
			}
			names := []string{"p", "NAME", "twice", "Twice", "ignore", "hidden", "Dash", "-", "Tagged", "TAGGED", "Under"}
			collectNames(typ, map[reflect.Type]bool{}, &names)
			slices.Sort(names)
			for _, name := range slices.Compact(names) {
				leaf, ok := decodedLeaf(t, typ, name)
				f, known := fields[name]
				switch {
				case known && !ok:
					t.Errorf("%q: jsonFieldsOf has it (%v), encoding/json does not take it", name, f.Index)
				case known && !isPrefix(f.Index, leaf):
					t.Errorf("%q: jsonFieldsOf gives field %v, encoding/json fills %v", name, f.Index, leaf)
				case !known && ok:
					// encoding/json matches in any case: then the name
					// must be another's in another case.
					folded := false
					for other, of := range fields {
						if strings.EqualFold(other, name) && isPrefix(of.Index, leaf) {
							folded = true
						}
					}
					if !folded {
						t.Errorf("%q: encoding/json fills %v, jsonFieldsOf does not have the name", name, leaf)
					}
				}
			}
		})
	}

	// What the rules give, spelled out, so that the comparison above
	// cannot pass by both sides agreeing on nothing.
	want := []string{"id", "shadow", "Name", "inner", "Tw", "deep", "name_title", "deepest", "tagged", "tagged_ptr", "visible", "JSONEmbedLabel", "Bad", "Opts"}
	got := make([]string, 0, len(want))
	for name := range jsonFieldsOf(reflect.TypeFor[JSONEmbedBody]()) {
		got = append(got, name)
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("jsonFieldsOf(JSONEmbedBody) names = %q, want %q", got, want)
	}
	got = got[:0]
	for name := range jsonFieldsOf(jsonEmbedTies) {
		got = append(got, name)
	}
	slices.Sort(got)
	if want := []string{"only_a", "own"}; !slices.Equal(got, want) {
		t.Errorf("jsonFieldsOf(ties) names = %q, want %q", got, want)
	}
	if f := jsonFieldsOf(reflect.TypeFor[JSONEmbedBody]())["tagged_ptr"]; f.Type != reflect.TypeFor[*JSONEmbedTaggedPtr]() {
		t.Errorf("tagged_ptr's type = %v, want the pointer", f.Type)
	}
}

// collectNames adds the Go names and json tag names of typ's fields, and
// of the structs under them, to names.
func collectNames(typ reflect.Type, seen map[reflect.Type]bool, names *[]string) {
	for typ.Kind() == reflect.Pointer {
		typ = typ.Elem()
	}
	if typ.Kind() != reflect.Struct || seen[typ] {
		return
	}
	seen[typ] = true
	for f := range typ.Fields() {
		*names = append(*names, f.Name)
		if tag, _, _ := strings.Cut(f.Tag.Get("json"), ","); tag != "" {
			*names = append(*names, tag)
		}
		collectNames(f.Type, seen, names)
	}
}

// decodedLeaf decodes {name: value} into a new typ, refusing unknown
// members as the API does, and returns the index of the one field it
// filled; ok is false if encoding/json took the member for no field.
func decodedLeaf(t *testing.T, typ reflect.Type, name string) ([]int, bool) {
	t.Helper()
	key, _ := json.Marshal(name)
	for _, value := range []string{`"v"`, `{"P":"v"}`} {
		v := reflect.New(typ)
		dec := json.NewDecoder(strings.NewReader(fmt.Sprintf(`{%s:%s}`, key, value)))
		dec.DisallowUnknownFields()
		err := dec.Decode(v.Interface())
		var typeErr *json.UnmarshalTypeError
		switch {
		case errors.As(err, &typeErr):
			continue // a struct: try an object
		case err != nil && strings.Contains(err.Error(), "unknown field"):
			return nil, false
		case err != nil:
			t.Fatalf("decoding %s into %v: %v", name, typ, err)
		}
		var leaves [][]int
		filledLeaves(v.Elem(), nil, &leaves)
		if len(leaves) != 1 {
			t.Fatalf("%q filled %d fields: %v", name, len(leaves), leaves)
		}
		return leaves[0], true
	}
	t.Fatalf("%q: no value decoded", name)
	return nil, false
}

func filledLeaves(v reflect.Value, index []int, leaves *[][]int) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			filledLeaves(v.Elem(), index, leaves)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			filledLeaves(v.Field(i), append(slices.Clip(index), i), leaves)
		}
	case reflect.String:
		if v.String() != "" {
			*leaves = append(*leaves, index)
		}
	}
}

func isPrefix(prefix, index []int) bool {
	return len(prefix) <= len(index) && slices.Equal(prefix, index[:len(prefix)])
}
