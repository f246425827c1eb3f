package bolt

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	jsonv1 "github.com/go-json-experiment/json/v1"

	"github.com/keyport/keyport/storage"
)

// TestRecordCodecMatchesEncodingJSON holds getJSON and putJSON's codec to
// encoding/json, which wrote every record on disk so far: for the records
// of the token paths and those they read, with every field set, every
// field empty, and empty but non-nil slices and maps, both encode to the
// same bytes, and each decodes the other's output to the same record.
func TestRecordCodecMatchesEncodingJSON(t *testing.T) {
	records := []any{
		&storage.RefreshToken{}, &storage.AccessToken{}, &family{}, &storage.Grant{},
		&storage.User{}, &storage.Client{}, &storage.Session{}, &storage.AuthRequest{},
	}
	for _, rec := range records {
		typ := reflect.TypeOf(rec).Elem()
		for _, variant := range []string{"full", "zero", "empty"} {
			v := reflect.New(typ)
			switch variant {
			case "full":
				fill(v.Elem(), 1)
			case "empty":
				fill(v.Elem(), 0)
			}
			std, err := json.Marshal(v.Interface())
			if err != nil {
				t.Fatalf("%s %s: encoding/json: %v", typ, variant, err)
			}
			exp, err := jsonv1.Marshal(v.Interface())
			if err != nil {
				t.Fatalf("%s %s: jsonv1: %v", typ, variant, err)
			}
			if !bytes.Equal(std, exp) {
				t.Errorf("%s %s: encodings differ:\nencoding/json %s\njsonv1        %s", typ, variant, std, exp)
			}
			a, b := reflect.New(typ), reflect.New(typ)
			if err := json.Unmarshal(std, a.Interface()); err != nil {
				t.Fatalf("%s %s: encoding/json decode: %v", typ, variant, err)
			}
			if err := jsonv1.Unmarshal(std, b.Interface()); err != nil {
				t.Fatalf("%s %s: jsonv1 decode: %v", typ, variant, err)
			}
			if !reflect.DeepEqual(a.Interface(), b.Interface()) {
				t.Errorf("%s %s: decoded records differ:\nencoding/json %+v\njsonv1        %+v", typ, variant, a.Elem(), b.Elem())
			}
			if variant == "full" && !reflect.DeepEqual(v.Interface(), b.Interface()) {
				t.Errorf("%s: a record does not survive jsonv1:\nwrote %+v\nread  %+v", typ, v.Elem(), b.Elem())
			}
		}
	}
}

// fill sets every exported field of v, recursively: to a non-zero value
// of its kind when seed is 1, and slices and maps to empty non-nil ones
// (other fields left zero) when seed is 0.
func fill(v reflect.Value, seed int) {
	switch v.Kind() {
	case reflect.Struct:
		if v.Type() == reflect.TypeOf(time.Time{}) {
			if seed != 0 {
				v.Set(reflect.ValueOf(time.Date(2026, 12, 7, 9, 30, 1, 123456789, time.UTC)))
			}
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				fill(v.Field(i), seed)
			}
		}
	case reflect.Pointer:
		if seed != 0 {
			v.Set(reflect.New(v.Type().Elem()))
			fill(v.Elem(), seed)
		}
	case reflect.Slice:
		if v.Type() == reflect.TypeOf(json.RawMessage(nil)) {
			if seed != 0 {
				v.SetBytes([]byte(`{"k":[1,"x"]}`))
			}
			return
		}
		if seed == 0 {
			v.Set(reflect.MakeSlice(v.Type(), 0, 0))
			return
		}
		v.Set(reflect.MakeSlice(v.Type(), 2, 2))
		fill(v.Index(0), seed)
		fill(v.Index(1), seed)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		if seed != 0 {
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k, seed)
			fill(e, seed)
			v.SetMapIndex(k, e)
		}
	case reflect.String:
		if seed != 0 {
			v.SetString("a<b>&\u2028é\"x")
		}
	case reflect.Bool:
		v.SetBool(seed != 0)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(int64(seed) * 42)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(uint64(seed) * 7)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(float64(seed) * 1.5)
	case reflect.Interface:
		if seed != 0 && v.NumMethod() == 0 {
			v.Set(reflect.ValueOf("any"))
		}
	}
}

// BenchmarkRecordCodec is one decode and one encode of the records a
// refresh reads and writes, with encoding/json and with the codec of
// getJSON and putJSON:
//
//	go test ./storage/bolt -run '^$' -bench RecordCodec -cpu 1 -benchmem
func BenchmarkRecordCodec(b *testing.B) {
	now := time.Date(2026, 12, 7, 9, 30, 1, 123456789, time.UTC)
	records := map[string]any{
		"refresh": &storage.RefreshToken{Hash: "8c1f0e5b6a2d4c3e9f7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60", ID: "01JEXAMPLEREFRESHID0000", FamilyID: "01JEXAMPLEFAMILYID00000",
			ClientID: "bench-ES256", UserID: "0f8fad5bd9cb469fa16570867728950e", Scopes: []string{"openid", "profile", "email", "offline_access"}, AMR: []string{"pwd"},
			AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(720 * time.Hour), IdleExpiresAt: now.Add(240 * time.Hour),
			SealedValue: make([]byte, 76), GraceUntil: now.Add(time.Minute), SID: "c2lkLWV4YW1wbGU", ACR: "urn:keyport:acr:pwd"},
		"access": &storage.AccessToken{ID: "01JEXAMPLEACCESSID00000", ClientID: "bench-ES256", UserID: "0f8fad5bd9cb469fa16570867728950e", Subject: "0f8fad5bd9cb469fa16570867728950e",
			Scopes: []string{"openid", "profile", "email", "offline_access"}, FamilyID: "01JEXAMPLEFAMILYID00000", CreatedAt: now, ExpiresAt: now.Add(time.Hour)},
		"family": &family{ID: "01JEXAMPLEFAMILYID00000", UserID: "0f8fad5bd9cb469fa16570867728950e", ClientID: "bench-ES256", Live: "8c1f0e5b6a2d4c3e9f7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60",
			Prev: "9d2f0e5b6a2d4c3e9f7a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f61", ExpiresAt: now.Add(720 * time.Hour), IdleExpiresAt: now.Add(240 * time.Hour)},
	}
	for _, name := range []string{"refresh", "access", "family"} {
		rec := records[name]
		raw, err := json.Marshal(rec)
		if err != nil {
			b.Fatal(err)
		}
		typ := reflect.TypeOf(rec).Elem()
		for _, codec := range []struct {
			name      string
			marshal   func(any) ([]byte, error)
			unmarshal func([]byte, any) error
		}{
			{"encoding-json", json.Marshal, json.Unmarshal},
			{"jsonv1", func(v any) ([]byte, error) { return jsonv1.Marshal(v) }, func(d []byte, v any) error { return jsonv1.Unmarshal(d, v) }},
		} {
			b.Run(name+"/decode/"+codec.name, func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b, processCPU())
				for b.Loop() {
					if err := codec.unmarshal(raw, reflect.New(typ).Interface()); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run(name+"/encode/"+codec.name, func(b *testing.B) {
				b.ReportAllocs()
				defer reportCPU(b, processCPU())
				for b.Loop() {
					if _, err := codec.marshal(rec); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
