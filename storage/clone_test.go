package storage

import (
	"reflect"
	"testing"
	"time"
)

// TestCloneSharesNothing fills every field of each record a store keeps
// decoded (Client, User, RefreshToken), at any depth, and checks that
// Clone copies it equal and shares no slice, map or pointer with the
// original: a field added later that Clone does not copy fails here.
func TestCloneSharesNothing(t *testing.T) {
	check := func(name string, orig, clone any) {
		t.Helper()
		if !reflect.DeepEqual(orig, clone) {
			t.Fatalf("%s: the clone differs:\n%+v\n%+v", name, orig, clone)
		}
		sharesNothing(t, name, reflect.ValueOf(orig), reflect.ValueOf(clone))
	}
	var c Client
	fill(reflect.ValueOf(&c).Elem())
	check("Client", c, c.Clone())
	var u User
	fill(reflect.ValueOf(&u).Elem())
	check("User", u, u.Clone())
	var r RefreshToken
	fill(reflect.ValueOf(&r).Elem())
	check("RefreshToken", r, r.Clone())

	// nil stays nil: an absent list is not an empty one to the stores.
	if empty := (Client{ID: "x"}).Clone(); !reflect.DeepEqual(empty, Client{ID: "x"}) {
		t.Errorf("a clone of a client without lists: %+v", empty)
	}
	if empty := (User{ID: "x"}).Clone(); !reflect.DeepEqual(empty, User{ID: "x"}) {
		t.Errorf("a clone of a user without lists: %+v", empty)
	}
	if empty := (RefreshToken{ID: "x"}).Clone(); !reflect.DeepEqual(empty, RefreshToken{ID: "x"}) {
		t.Errorf("a clone of a refresh token without lists: %+v", empty)
	}
}

// fill sets every settable field of v to something not zero.
func fill(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			v.Set(reflect.ValueOf(time.Unix(1700000000, 5)))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i))
			}
		}
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 2, 2)
		for i := range 2 {
			fill(s.Index(i))
		}
		v.Set(s)
	case reflect.Map:
		m := reflect.MakeMap(v.Type())
		k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
		fill(k)
		fill(e)
		m.SetMapIndex(k, e)
		v.Set(m)
	case reflect.Pointer:
		p := reflect.New(v.Type().Elem())
		fill(p.Elem())
		v.Set(p)
	case reflect.String:
		v.SetString("s")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(7)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(7)
	}
}

// sharesNothing fails for every slice, map or pointer of a that b shares.
func sharesNothing(t *testing.T, path string, a, b reflect.Value) {
	t.Helper()
	switch a.Kind() {
	case reflect.Struct:
		for i := range a.NumField() {
			if a.Type().Field(i).IsExported() {
				sharesNothing(t, path+"."+a.Type().Field(i).Name, a.Field(i), b.Field(i))
			}
		}
	case reflect.Slice:
		if a.Len() > 0 && a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the original's slice", path)
		}
		for i := range min(a.Len(), b.Len()) {
			sharesNothing(t, path+"[]", a.Index(i), b.Index(i))
		}
	case reflect.Map, reflect.Pointer:
		if !a.IsNil() && a.Pointer() == b.Pointer() {
			t.Errorf("%s: the clone shares the original's %s", path, a.Kind())
		}
	}
}
