package portal

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyport/keyport/account"
)

// The OpenAPI 3.1 document of /api/v1 is built from the route table: every
// API route is registered with its description (addAPI), and the schemas
// of its bodies are derived from the Go types the handler decodes and
// encodes. So a route cannot be added undocumented, the document cannot
// name a route that does not exist, and a schema cannot drift from the
// type that produces the JSON (the end-to-end tests validate real answers
// against it).

// apiOp describes one API operation.
type apiOp struct {
	Summary string
	// Query lists the query parameters.
	Query []apiParam
	// Body is a value of the request body's type; nil when there is none.
	Body any
	// Response is a value of the success answer's type; nil answers 204.
	Response any
	// Status is the success status; 0 means 200 (204 without Response).
	Status int
	// ETag: the answer carries an ETag, and the route honours If-Match.
	ETag bool
	// ContentType of a success answer that is not JSON (a stream); its
	// schema is then not described.
	ContentType string
	// BodyType is the Content-Type of a request body that is not JSON
	// (an upload; Body is then nil); its schema is not described.
	BodyType string
	// Unprocessable is a value of the type of a 422 answer that says
	// more than the error shape (an import's report of every bad line).
	Unprocessable any
}

type apiParam struct {
	Name, Type, Description string
}

// pageQuery is the query of every paged list.
var pageQuery = []apiParam{
	{"limit", "integer", "page size"},
	{"cursor", "string", "next_cursor of the previous page"},
}

// apiDocs holds one Server's API descriptions and its document, built
// on first use.
type apiDocs struct {
	ops map[routeKey]apiOp

	once sync.Once
	doc  []byte
	err  error
}

// addAPI registers an /api/v1 route (add, one method) with its
// description.
func (t *routeTable) addAPI(lvl level, method, path string, h any, op apiOp) {
	if strings.Contains(method, " ") {
		t.shared.errs = append(t.shared.errs, fmt.Errorf("API route %s %s: one method per description", method, path))
		return
	}
	if tmpl := t.register(lvl, method, path, h); tmpl != "" {
		t.shared.docs[routeKey{method, tmpl}] = op
	}
}

// document builds the OpenAPI document once.
func (d *apiDocs) document(issuer string) ([]byte, error) {
	d.once.Do(func() { d.doc, d.err = buildOpenAPI(issuer, d.ops) })
	return d.doc, d.err
}

var pathParam = regexp.MustCompile(`\{([a-zA-Z_]+)\}`)

func buildOpenAPI(issuer string, ops map[routeKey]apiOp) ([]byte, error) {
	g := &schemaGen{defs: map[string]any{}, names: map[reflect.Type]string{}}
	errorRef := g.of(reflect.TypeOf(apiErrorBody{}))
	paths := map[string]map[string]any{}
	keys := make([]routeKey, 0, len(ops))
	for k := range ops {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routeKey) int { return strings.Compare(a.Path+" "+a.Method, b.Path+" "+b.Method) })
	for _, k := range keys {
		op := ops[k]
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(k.Path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		for _, q := range op.Query {
			params = append(params, map[string]any{"name": q.Name, "in": "query", "description": q.Description, "schema": map[string]any{"type": q.Type}})
		}
		o := map[string]any{
			"operationId": operationID(k),
			"summary":     op.Summary,
		}
		if len(params) > 0 {
			o["parameters"] = params
		}
		if op.Body != nil {
			o["requestBody"] = map[string]any{
				"required": true,
				"content":  map[string]any{"application/json": map[string]any{"schema": g.of(reflect.TypeOf(op.Body))}},
			}
		}
		status := op.Status
		responses := map[string]any{
			"default": map[string]any{"description": "an error", "content": map[string]any{"application/json": map[string]any{"schema": errorRef}}},
		}
		if op.Body == nil && op.BodyType != "" {
			o["requestBody"] = map[string]any{"required": true, "content": map[string]any{op.BodyType: map[string]any{}}}
		}
		if op.Unprocessable != nil {
			responses["422"] = map[string]any{"description": http.StatusText(http.StatusUnprocessableEntity),
				"content": map[string]any{"application/json": map[string]any{"schema": g.of(reflect.TypeOf(op.Unprocessable))}}}
		}
		switch {
		case op.ContentType != "":
			if status == 0 {
				status = http.StatusOK
			}
			responses[strconv.Itoa(status)] = map[string]any{"description": http.StatusText(status), "content": map[string]any{op.ContentType: map[string]any{}}}
		case op.Response == nil:
			if status == 0 {
				status = http.StatusNoContent
			}
			responses[strconv.Itoa(status)] = map[string]any{"description": http.StatusText(status)}
		default:
			if status == 0 {
				status = http.StatusOK
			}
			resp := map[string]any{
				"description": http.StatusText(status),
				"content":     map[string]any{"application/json": map[string]any{"schema": g.of(reflect.TypeOf(op.Response))}},
			}
			if op.ETag {
				resp["headers"] = map[string]any{"ETag": map[string]any{"description": "the version, for If-Match", "schema": map[string]any{"type": "string"}}}
			}
			responses[strconv.Itoa(status)] = resp
		}
		o["responses"] = responses
		path := paths[k.Path]
		if path == nil {
			path = map[string]any{}
			paths[k.Path] = path
		}
		path[strings.ToLower(k.Method)] = o
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":   "Keyport management API",
			"version": "1",
			"description": "Authenticate with an administrator's API token (kp_…; a read-only token may only read) " +
				"or an app's client_credentials access token with the " + account.ScopeAdmin + " scope (" + account.ScopeAdminRead + ": read only). " +
				"Errors have one shape: {\"error\": {\"code\", \"message\", \"field\"}}.",
		},
		"servers":    []any{map[string]any{"url": strings.TrimSuffix(issuer, "/")}},
		"paths":      paths,
		"security":   []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{"schemas": g.defs, "securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}}},
	}
	return json.MarshalIndent(doc, "", "  ")
}

// operationID names an operation after its method and path:
// GET /api/v1/users/{id} → get_users_id.
func operationID(k routeKey) string {
	p := strings.TrimPrefix(k.Path, "/api/v1")
	p = strings.NewReplacer("{", "", "}", "", ".", "_", "-", "_").Replace(p)
	parts := []string{strings.ToLower(k.Method)}
	for _, s := range strings.Split(p, "/") {
		if s != "" {
			parts = append(parts, s)
		}
	}
	return strings.Join(parts, "_")
}

// schemaGen derives JSON Schemas (2020-12, as OpenAPI 3.1 uses) from Go
// types, following encoding/json's rules: json tags name the properties,
// omitempty makes one optional, every other property is required, and no
// other property is allowed.
type schemaGen struct {
	defs  map[string]any
	names map[reflect.Type]string
}

var timeType = reflect.TypeOf(time.Time{})

func (g *schemaGen) of(t reflect.Type) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		return g.of(t.Elem())
	}
	switch t.Kind() {
	case reflect.String:
		return map[string]any{"type": "string"}
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return map[string]any{"type": "integer"}
	case reflect.Float32, reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return map[string]any{"type": "string", "contentEncoding": "base64"}
		}
		// encoding/json writes a nil slice as null.
		return map[string]any{"type": []any{"array", "null"}, "items": g.of(t.Elem())}
	case reflect.Map:
		return map[string]any{"type": []any{"object", "null"}, "additionalProperties": g.of(t.Elem())}
	case reflect.Interface:
		return map[string]any{}
	case reflect.Struct:
		return g.ref(t)
	}
	panic(fmt.Sprintf("openapi: no schema for %s", t))
}

// ref puts a struct's schema in components and refers to it.
func (g *schemaGen) ref(t reflect.Type) map[string]any {
	name, ok := g.names[t]
	if !ok {
		name = schemaName(t)
		for _, taken := range g.names {
			if taken == name {
				name += strconv.Itoa(len(g.names))
			}
		}
		g.names[t] = name
		g.defs[name] = map[string]any{} // placeholder: a type may refer to itself
		g.defs[name] = g.object(t)
	}
	return map[string]any{"$ref": "#/components/schemas/" + name}
}

func (g *schemaGen) object(t reflect.Type) map[string]any {
	props := map[string]any{}
	var required []string
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct {
			// Embedded: its fields are the outer object's.
			inner := g.object(f.Type)
			for k, v := range inner["properties"].(map[string]any) {
				props[k] = v
			}
			if req, ok := inner["required"].([]string); ok {
				required = append(required, req...)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		props[name] = g.of(f.Type)
		if !slices.Contains(strings.Split(opts, ","), "omitempty") && !slices.Contains(strings.Split(opts, ","), "omitzero") {
			required = append(required, name)
			if f.Type.Kind() == reflect.Pointer {
				// encoding/json writes a nil pointer as null.
				props[name] = map[string]any{"anyOf": []any{props[name], map[string]any{"type": "null"}}}
			}
		}
	}
	sort.Strings(required)
	out := map[string]any{"type": "object", "properties": props, "additionalProperties": false}
	if len(required) > 0 {
		out["required"] = required
	}
	return out
}

// schemaName is a component name for a Go type: its name with generic
// arguments reduced to their own names (listJSON[portal.userJSON] →
// listJSON_userJSON).
func schemaName(t reflect.Type) string {
	n := t.Name()
	base, args, ok := strings.Cut(n, "[")
	if !ok {
		return n
	}
	args = strings.TrimSuffix(args, "]")
	var parts []string
	for _, a := range strings.Split(args, ",") {
		if i := strings.LastIndex(a, "."); i >= 0 {
			a = a[i+1:]
		}
		parts = append(parts, a)
	}
	return base + "_" + strings.Join(parts, "_")
}
