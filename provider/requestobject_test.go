package provider

import (
	"encoding/json"
	"net/url"
	"reflect"
	"testing"
)

// The claims of a request object become the form parameters the checks
// after it read: strings as they are, numbers and objects as JSON text,
// a repeatable parameter's array as its values; the JWT's own claims and
// nulls are left out, and the request's client_id is kept.
func TestRequestObjectParams(t *testing.T) {
	var claims map[string]json.RawMessage
	raw := `{"iss":"app","aud":"https://id.example","exp":1,"nbf":1,"iat":1,"jti":"j","sub":"app",
		"response_type":"code","scope":"openid email","max_age":300,"claims":{"id_token": {"email":null}},
		"resource":["https://a.example","https://b.example"],"login_hint":null,"prompt":["login"],"client_id":"app"}`
	if err := json.Unmarshal([]byte(raw), &claims); err != nil {
		t.Fatal(err)
	}
	form, err := requestObjectParams(claims, "app")
	if err != nil {
		t.Fatal(err)
	}
	want := url.Values{
		"client_id": {"app"}, "response_type": {"code"}, "scope": {"openid email"}, "max_age": {"300"},
		"claims": {`{"id_token":{"email":null}}`}, "resource": {"https://a.example", "https://b.example"}, "prompt": {`["login"]`},
	}
	if !reflect.DeepEqual(form, want) {
		t.Errorf("form %v, want %v", form, want)
	}
	for _, nested := range []string{"request", "request_uri"} {
		if _, err := requestObjectParams(map[string]json.RawMessage{nested: json.RawMessage(`"x"`)}, "app"); err == nil || err.ErrorType != errInvalidRequestObject {
			t.Errorf("%s inside a request object: %v", nested, err)
		}
	}
}

func TestRequestObjectType(t *testing.T) {
	for typ, ok := range map[string]bool{"": true, "JWT": true, "oauth-authz-req+jwt": true, "application/oauth-authz-req+jwt": true,
		"at+jwt": false, "dpop+jwt": false, "logout+jwt": false} {
		if requestObjectType(typ) != ok {
			t.Errorf("typ %q accepted: %v, want %v", typ, !ok, ok)
		}
	}
}
