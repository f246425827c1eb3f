package main

import (
	"bytes"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// apiSchemas checks answers of /api/v1 against the server's own OpenAPI
// document: every JSON body an API test receives must validate against the
// schema the document gives for its operation and status (or the error
// schema), so the document cannot drift from what the server sends.
type apiSchemas struct {
	doc      map[string]any
	compiler *jsonschema.Compiler
	ops      []apiDocOp
	mu       sync.Mutex
	compiled map[string]*jsonschema.Schema
}

type apiDocOp struct {
	method, template string
	re               *regexp.Regexp
}

var (
	schemasMu    sync.Mutex
	schemasByURL = map[string]*apiSchemas{}
)

// schemasOf fetches and compiles srv's OpenAPI document, once per server.
func schemasOf(t testing.TB, srv *testServer) *apiSchemas {
	t.Helper()
	schemasMu.Lock()
	defer schemasMu.Unlock()
	if s := schemasByURL[srv.URL]; s != nil {
		return s
	}
	resp, err := http.Get(srv.URL + "/api/v1/openapi.json")
	if err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("openapi.json: %s", resp.Status)
	}
	raw, err := jsonschema.UnmarshalJSON(resp.Body)
	if err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	if err := c.AddResource("mem://openapi.json", raw); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	s := &apiSchemas{doc: raw.(map[string]any), compiler: c, compiled: map[string]*jsonschema.Schema{}}
	paths, _ := s.doc["paths"].(map[string]any)
	for tmpl, methods := range paths {
		re := regexp.MustCompile("^" + regexp.MustCompile(`\\\{[a-zA-Z_]+\\\}`).ReplaceAllString(regexp.QuoteMeta(tmpl), `[^/]+`) + "$")
		for m := range methods.(map[string]any) {
			s.ops = append(s.ops, apiDocOp{method: strings.ToUpper(m), template: tmpl, re: re})
		}
	}
	// Literal segments before variables: /users/search before /users/{id},
	// and, among as many variables, a longer literal start first:
	// /users/by-login/{login} before /users/{id}/sessions.
	sort.Slice(s.ops, func(i, j int) bool {
		a, b := s.ops[i].template, s.ops[j].template
		if na, nb := strings.Count(a, "{"), strings.Count(b, "{"); na != nb {
			return na < nb
		}
		return strings.Index(a, "{") > strings.Index(b, "{")
	})
	schemasByURL[srv.URL] = s
	t.Cleanup(func() {
		schemasMu.Lock()
		delete(schemasByURL, srv.URL)
		schemasMu.Unlock()
	})
	return s
}

// pointer escapes a JSON Pointer token.
func pointer(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

func (s *apiSchemas) schema(t testing.TB, ptr string) *jsonschema.Schema {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if sch := s.compiled[ptr]; sch != nil {
		return sch
	}
	sch, err := s.compiler.Compile("mem://openapi.json#" + ptr)
	if err != nil {
		t.Fatalf("compile the schema at %s: %v", ptr, err)
	}
	s.compiled[ptr] = sch
	return sch
}

// check validates one answer of the API against the document.
func (s *apiSchemas) check(t testing.TB, method, path string, status int, body []byte) {
	t.Helper()
	path, _, _ = strings.Cut(path, "?")
	if method == http.MethodHead {
		return
	}
	var op *apiDocOp
	for i := range s.ops {
		if s.ops[i].method == method && s.ops[i].re.MatchString(path) {
			op = &s.ops[i]
			break
		}
	}
	errorSchema := "/components/schemas/apiErrorBody"
	var ptr string
	switch {
	case op == nil && status < 400:
		t.Errorf("%s %s answered %d but the OpenAPI document has no such operation", method, path, status)
		return
	case op == nil:
		ptr = errorSchema
	default:
		responses := s.doc["paths"].(map[string]any)[op.template].(map[string]any)[strings.ToLower(method)].(map[string]any)["responses"].(map[string]any)
		code := strconv.Itoa(status)
		resp, ok := responses[code].(map[string]any)
		if !ok {
			if status < 400 {
				t.Errorf("%s %s answered %d, which its operation does not document", method, path, status)
				return
			}
			code = "default"
			resp = responses[code].(map[string]any)
		}
		if _, hasBody := resp["content"]; !hasBody {
			if len(bytes.TrimSpace(body)) != 0 {
				t.Errorf("%s %s answered %d with a body, which the document does not have", method, path, status)
			}
			return
		}
		if _, isJSON := resp["content"].(map[string]any)["application/json"]; !isJSON {
			return // a stream (JSON Lines): its lines have no schema
		}
		ptr = "/paths/" + pointer(op.template) + "/" + strings.ToLower(method) + "/responses/" + code + "/content/application~1json/schema"
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
	if err != nil {
		t.Errorf("%s %s: the answer is not JSON: %v", method, path, err)
		return
	}
	if err := s.schema(t, ptr).Validate(v); err != nil {
		t.Errorf("%s %s (%d): the answer does not match the OpenAPI schema %s: %v\n%s", method, path, status, ptr, err, truncateBody(string(body)))
	}
}

// checkRequest validates a request body against its operation's schema:
// a request the server accepted (status < 400) must match it, so the
// document describes every body that works.
func (s *apiSchemas) checkRequest(t testing.TB, method, path string, status int, body []byte) {
	t.Helper()
	path, _, _ = strings.Cut(path, "?")
	for _, op := range s.ops {
		if op.method != method || !op.re.MatchString(path) {
			continue
		}
		o := s.doc["paths"].(map[string]any)[op.template].(map[string]any)[strings.ToLower(method)].(map[string]any)
		rb, ok := o["requestBody"].(map[string]any)
		if !ok {
			return
		}
		if _, isJSON := rb["content"].(map[string]any)["application/json"]; !isJSON {
			return // an upload (JSON Lines): its lines have no schema
		}
		v, err := jsonschema.UnmarshalJSON(bytes.NewReader(body))
		if err != nil {
			return // a test of bad JSON
		}
		ptr := "/paths/" + pointer(op.template) + "/" + strings.ToLower(method) + "/requestBody/content/application~1json/schema"
		if err := s.schema(t, ptr).Validate(v); err != nil && status < 400 {
			t.Errorf("%s %s accepted (%d) a body outside its OpenAPI schema: %v", method, path, status, err)
		}
		return
	}
}

// flattenAPIError checks the error shape, {"error": {"code", "message",
// "field"}}, and returns the body with code, message and field at the top
// (as "error", "message", "field"), which older tests read.
func flattenAPIError(t testing.TB, what string, out map[string]any) map[string]any {
	t.Helper()
	e, ok := out["error"].(map[string]any)
	if !ok {
		t.Errorf("%s: the error is not {\"error\": {…}}: %v", what, out)
		return out
	}
	code, _ := e["code"].(string)
	msg, _ := e["message"].(string)
	if code == "" || msg == "" {
		t.Errorf("%s: the error lacks a code or a message: %v", what, out)
	}
	flat := map[string]any{"error": code, "message": msg}
	if f, ok := e["field"]; ok {
		flat["field"] = f
	}
	return flat
}
