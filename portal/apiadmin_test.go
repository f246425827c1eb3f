package portal

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"testing"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// accessTokensAnswering is an AccessTokens whose every token read ends
// with err.
type accessTokensAnswering struct{ err error }

func (a accessTokensAnswering) ReadAccessToken(context.Context, string) (storage.AccessToken, error) {
	return storage.AccessToken{}, a.err
}

// An app's access token the provider finds dead is 401 invalid_token at
// the management API; a store that could not tell is a server error with
// a reference to the log, not a token blamed on its holder.
func TestAdminAPIAccessTokenReadFailures(t *testing.T) {
	for _, c := range []struct {
		name   string
		err    error
		status int
		code   string
	}{
		{"dead token", fmt.Errorf("not a live access token: %w", storage.ErrNotFound), http.StatusUnauthorized, "invalid_token"},
		{"store failure", errors.New("database is closed"), http.StatusInternalServerError, "internal"},
	} {
		s, err := New(Options{Web: testWeb(t), Issuer: "https://id.example.com", AccessTokens: accessTokensAnswering{c.err}})
		if err != nil {
			t.Fatal(err)
		}
		req := httptest.NewRequest(http.MethodGet, "/api/v1/clients", nil)
		req.Header.Set("Authorization", "Bearer some.app.token")
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		var body apiErrorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("%s: %d %s", c.name, rec.Code, rec.Body)
		}
		if rec.Code != c.status || body.Error.Code != c.code {
			t.Errorf("%s: %d %+v, want %d %s", c.name, rec.Code, body.Error, c.status, c.code)
		}
		if c.status == http.StatusInternalServerError && body.Error.Ref == "" {
			t.Errorf("%s: no reference to the log: %+v", c.name, body.Error)
		}
	}
}

// null in any PATCH body, for a field a patch leaves out when nil, is
// refused with the field named, not answered 200 while nothing changes:
// an app's, a user's (app_metadata: null reads as RFC 7396's removal).
func TestPatchNullsRefused(t *testing.T) {
	for _, c := range []struct {
		body string
		typ  reflect.Type
		bad  string
	}{
		{`{"email":null}`, reflect.TypeOf(&account.UserPatch{}), "email"},
		{`{"name":"x","app_metadata":null}`, reflect.TypeOf(&account.UserPatch{}), "app_metadata"},
		{`{"email":"a@example.com"}`, reflect.TypeOf(&account.UserPatch{}), ""},
	} {
		err := patchNulls([]byte(c.body), c.typ)
		if got := account.ErrorField(err); got != c.bad {
			t.Errorf("%s: field %q (%v), want %q", c.body, got, err, c.bad)
		}
	}
}
