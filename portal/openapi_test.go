package portal

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// The OpenAPI document and the router describe the same API: every /api/v1
// route but the document itself has an operation, every operation a route,
// and the management routes all have the admin-api level.
func TestOpenAPIMatchesRouter(t *testing.T) {
	s, err := New(Options{Web: testWeb(t), Issuer: "https://id.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/api/v1/openapi.json", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("openapi.json: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var doc struct {
		OpenAPI string                               `json:"openapi"`
		Paths   map[string]map[string]map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.OpenAPI != "3.1.0" {
		t.Errorf("openapi = %q", doc.OpenAPI)
	}
	documented := map[routeKey]bool{}
	for path, ops := range doc.Paths {
		for m := range ops {
			documented[routeKey{strings.ToUpper(m), path}] = true
		}
	}
	routes := 0
	for k, l := range s.levels {
		if !strings.HasPrefix(k.Path, "/api/v1/") || k.Method == http.MethodHead || k.Path == "/api/v1/openapi.json" {
			continue
		}
		routes++
		if !documented[k] {
			t.Errorf("%s %s is not in the OpenAPI document", k.Method, k.Path)
		}
		if k.Path != "/api/v1/me" && !strings.HasPrefix(k.Path, "/api/v1/me/") && l != levelAdminAPI {
			t.Errorf("%s %s: level %s, want admin-api", k.Method, k.Path, l)
		}
	}
	for k := range documented {
		if _, ok := s.levels[k]; !ok {
			t.Errorf("the document describes %s %s, which the router does not have", k.Method, k.Path)
		}
	}
	if routes != len(documented) || routes < 5 {
		t.Errorf("%d routes, %d documented operations", routes, len(documented))
	}

	// Every schema in it compiles as JSON Schema 2020-12 (OpenAPI 3.1's).
	raw, err := jsonschema.UnmarshalJSON(strings.NewReader(rec.Body.String()))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	if err := c.AddResource("mem://openapi.json", raw); err != nil {
		t.Fatal(err)
	}
	var schemas struct {
		Components struct {
			Schemas map[string]any `json:"schemas"`
		} `json:"components"`
	}
	_ = json.Unmarshal(rec.Body.Bytes(), &schemas)
	for name := range schemas.Components.Schemas {
		if _, err := c.Compile("mem://openapi.json#/components/schemas/" + name); err != nil {
			t.Errorf("schema %s: %v", name, err)
		}
	}
	if len(schemas.Components.Schemas) < 3 {
		t.Errorf("only %d component schemas", len(schemas.Components.Schemas))
	}
}

// The schema generator follows encoding/json: omitempty fields are
// optional, others required; nothing else is allowed.
func TestSchemaOfFollowsJSONTags(t *testing.T) {
	type inner struct {
		A string `json:"a"`
	}
	type sample struct {
		Name  string            `json:"name"`
		Maybe string            `json:"maybe,omitempty"`
		List  []inner           `json:"list"`
		Map   map[string]string `json:"map,omitempty"`
		Skip  string            `json:"-"`
		Ptr   *inner            `json:"ptr"`
	}
	g := &schemaGen{defs: map[string]any{}, names: map[reflect.Type]string{}}
	ref := g.of(reflect.TypeOf(sample{}))
	obj := g.defs["sample"].(map[string]any)
	if ref["$ref"] != "#/components/schemas/sample" || obj["additionalProperties"] != false {
		t.Fatalf("ref %v, object %v", ref, obj)
	}
	req := obj["required"].([]string)
	if strings.Join(req, ",") != "list,name,ptr" {
		t.Errorf("required = %v", req)
	}
	props := obj["properties"].(map[string]any)
	if _, ok := props["Skip"]; ok {
		t.Error(`a json:"-" field is in the schema`)
	}
	if len(props) != 5 {
		t.Errorf("properties: %v", props)
	}
}
