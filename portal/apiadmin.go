package portal

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The management API: /api/v1 routes at levelAdminAPI. Three kinds of
// caller reach them, and each becomes an account.Actor, so the rules and the
// audit log see who acted:
//   - an administrator's API token (kp_…); a read-only token may only read;
//   - an app's client_credentials access token carrying ScopeAdmin (or
//     account.ScopeAdminRead, which may only read), granted to the app by an admin;
//   - the local command line, through the control socket (LocalAPI).
//
// Every answer is JSON; every error has one shape,
// {"error": {"code", "message", "field"}}.

// AccessTokens reads the provider's access tokens (opaque or JWT), so the
// management API can accept an app's client_credentials token. The
// provider implements it; cmd/keyport passes it in.
type AccessTokens interface {
	// ReadAccessToken returns the stored, live token raw stands for; an
	// error wrapping storage.ErrNotFound when it is not one of ours,
	// expired or revoked, another when the store could not tell.
	ReadAccessToken(ctx context.Context, raw string) (storage.AccessToken, error)
}

// adminHandler serves a management API route for an authenticated actor.
type adminHandler func(w http.ResponseWriter, r *http.Request, a account.Actor) error

// localCaller marks a request that came through the control socket.
type localCaller struct{}

// LocalAPI serves the management API to the local command line: the
// control socket (mode 0600, in the 0700 data directory) hands it its
// requests, so whoever reaches it is the server's own user or root and
// acts as account.ActorCLI without a token. Only /api/v1 is served.
func (s *Server) LocalAPI() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v1" && !strings.HasPrefix(r.URL.Path, "/api/v1/") {
			writeAPIError(w, http.StatusNotFound, "not_found", "The control socket serves only /api/v1.", "")
			return
		}
		s.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), localCaller{}, true)))
	})
}

func isLocal(ctx context.Context) bool {
	v, _ := ctx.Value(localCaller{}).(bool)
	return v
}

// withAdminAPI authenticates the caller as an actor, refuses writes to
// read-only credentials, and maps errors to the API's one error shape.
func (s *Server) withAdminAPI(h adminHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		a, ok := s.adminActor(w, r)
		if !ok {
			return
		}
		if a.ReadOnly && !isRead(r.Method) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyport", error="insufficient_scope"`)
			writeAPIError(w, http.StatusForbidden, "insufficient_scope", "This credential may only read.", "")
			return
		}
		// Account methods that take no actor (the directory ones) find
		// it in the context, as the audit log's author.
		r = r.WithContext(account.WithActor(r.Context(), a))
		if err := h(w, r, a); err != nil {
			s.apiError(w, r, err)
		}
	})
}

func isRead(method string) bool { return method == http.MethodGet || method == http.MethodHead }

// adminActor finds who calls, or answers 401/403 and returns false.
func (s *Server) adminActor(w http.ResponseWriter, r *http.Request) (account.Actor, bool) {
	ip, ua := clientIP(r), r.UserAgent()
	if isLocal(r.Context()) {
		return account.Actor{Kind: account.ActorCLI, IP: "local", UserAgent: ua}, true
	}
	token, ok := bearerToken(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyport"`)
		writeAPIError(w, http.StatusUnauthorized, "unauthorized", "Send an administrator's API token or an app's access token: Authorization: Bearer …", "")
		return account.Actor{}, false
	}
	if strings.HasPrefix(token, account.APITokenPrefix) {
		u, cred, err := s.acct.Credentials.AuthenticateAPIToken(r.Context(), token, ip, ua)
		if err != nil {
			if account.ErrorCode(err) == account.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="keyport", error="invalid_token"`)
			}
			s.apiError(w, r, err)
			return account.Actor{}, false
		}
		if !u.Admin {
			writeAPIError(w, http.StatusForbidden, "forbidden", "Only administrators may use the management API.", "")
			return account.Actor{}, false
		}
		return account.Actor{Kind: account.ActorUser, UserID: u.ID, IP: ip, UserAgent: ua, ReadOnly: cred.Scope != account.ScopeReadWrite}, true
	}
	var t storage.AccessToken
	var err error
	if s.opts.AccessTokens != nil && len(token) <= maxBearerToken {
		t, err = s.opts.AccessTokens.ReadAccessToken(r.Context(), token)
	} else {
		err = storage.ErrNotFound
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		// The store could not tell: not the caller's fault, and logged.
		s.apiError(w, r, fmt.Errorf("management API: read an access token: %w", err))
		return account.Actor{}, false
	}
	if err != nil || t.UserID != "" {
		// A user's access token never reaches the management API: an app
		// acting for a person must not gain the person's admin rights.
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyport", error="invalid_token"`)
		writeAPIError(w, http.StatusUnauthorized, "invalid_token", "The token is not a valid API token or app access token.", "")
		return account.Actor{}, false
	}
	switch {
	case slices.Contains(t.Scopes, account.ScopeAdmin):
		return account.Actor{Kind: account.ActorClient, ClientID: t.ClientID, IP: ip, UserAgent: ua}, true
	case slices.Contains(t.Scopes, account.ScopeAdminRead):
		return account.Actor{Kind: account.ActorClient, ClientID: t.ClientID, IP: ip, UserAgent: ua, ReadOnly: true}, true
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="keyport", error="insufficient_scope", scope="`+account.ScopeAdmin+`"`)
	writeAPIError(w, http.StatusForbidden, "insufficient_scope", "The app's token lacks the "+account.ScopeAdmin+" scope.", "")
	return account.Actor{}, false
}

// maxBearerToken bounds the token an unauthenticated caller makes us parse.
const maxBearerToken = 8 << 10

func bearerToken(r *http.Request) (string, bool) {
	scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return "", false
	}
	return token, true
}

// apiErrorBody is the one error shape of /api/v1.
type apiErrorBody struct {
	Error apiErrorDetail `json:"error"`
}

type apiErrorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the request field at fault, when there is one.
	Field string `json:"field,omitempty"`
	// Ref finds an internal error in the server's log.
	Ref string `json:"ref,omitempty"`
}

func writeAPIError(w http.ResponseWriter, status int, code, msg, field string) {
	writeJSON(w, status, apiErrorBody{Error: apiErrorDetail{Code: code, Message: msg, Field: field}})
}

// decodeAPIBody reads the request body into v: one JSON object of
// Content-Type application/json, no unknown fields, within the body limit.
// Its errors name the field at fault.
func decodeAPIBody(r *http.Request, v any) error {
	// application/merge-patch+json is RFC 7396's name for the PATCH bodies.
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || (mt != "application/json" && mt != "application/merge-patch+json") {
		return errUnsupportedMedia
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return jsonError(err)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		return account.Errorf(account.Invalid, "The body must be one JSON object.")
	}
	if err := exactFieldNames(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	if r.Method == http.MethodPatch {
		return patchNulls(body, reflect.TypeOf(v))
	}
	return nil
}

// patchNulls refuses, in a PATCH body, null for a member whose field is a
// pointer: there nil means the field is left out, so null, which RFC 7396
// (a media type the API takes) reads as removal, would be answered 200
// while nothing changed ({"jwks": null} for a key that leaked). A field
// of any or a map keeps null, whose meaning it decides itself.
func patchNulls(data []byte, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	var members map[string]json.RawMessage
	_ = json.Unmarshal(data, &members) // decoded already: one object
	fields := jsonFieldsOf(t)
	for _, k := range slices.Sorted(maps.Keys(members)) {
		if f, ok := fields[k]; ok && f.Type.Kind() == reflect.Pointer && string(members[k]) == "null" {
			return account.FieldErrorf(k, "%s cannot be null: send the value it should have (\"\", [], false or 0; {\"keys\": []} clears jwks).", k)
		}
	}
	return nil
}

// exactFieldNames refuses a member whose name is one of t's fields in
// another case ("Public", "ID"): encoding/json matches names regardless of
// case, so without this {"id":"a","ID":"b"} would create b, and a name the
// API does not have would pass for one it has. data has decoded into t, so
// it is well-formed; only the names are checked, in nested objects too.
func exactFieldNames(data []byte, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(reflect.TypeFor[json.Unmarshaler]()) {
		return nil // reads its value its own way
	}
	switch t.Kind() {
	case reflect.Struct:
		var members map[string]json.RawMessage
		if json.Unmarshal(data, &members) != nil {
			return nil // null
		}
		for name, raw := range members {
			f, ok := jsonField(t, name)
			if !ok {
				return account.FieldErrorf(name, "There is no field %q here.", name)
			}
			if err := exactFieldNames(raw, f.Type); err != nil {
				return err
			}
		}
	case reflect.Slice, reflect.Array:
		var items []json.RawMessage
		if json.Unmarshal(data, &items) != nil {
			return nil // null
		}
		for _, raw := range items {
			if err := exactFieldNames(raw, t.Elem()); err != nil {
				return err
			}
		}
	}
	return nil
}

// jsonField is the field of struct t that encoding/json fills from a member
// named exactly name.
func jsonField(t reflect.Type, name string) (reflect.StructField, bool) {
	f, ok := jsonFieldsOf(t)[name]
	return f, ok
}

// jsonFields holds, per struct type, its fields by the exact member name
// encoding/json fills each from, built once: a body's every member is
// looked up, and a registration body comes before its caller is known.
var jsonFields sync.Map // reflect.Type → map[string]reflect.StructField

// jsonFieldsOf gives the fields of struct t by the exact member names
// encoding/json decodes into them, by its rules (typeFields in its
// source): an untagged embedded struct, or pointer to one, has its fields
// promoted; a tagged one is a member of the tag's name; among fields of
// one name the shallowest wins, then the one whose name is its tag, and
// two that tie are both dropped, as are fields of a struct embedded twice
// at one depth. A promoted field's Index is its path from t.
func jsonFieldsOf(t reflect.Type) map[string]reflect.StructField {
	if m, ok := jsonFields.Load(t); ok {
		return m.(map[string]reflect.StructField)
	}
	type candidate struct {
		field  reflect.StructField
		tagged bool
	}
	byName := map[string][]candidate{}
	type embedded struct {
		typ   reflect.Type
		index []int
	}
	// Breadth first, one depth at a time, as encoding/json goes: the
	// structs to scan at this depth, those found for the next, and how
	// many times each of these was found.
	var current, next []embedded
	next = []embedded{{typ: t}}
	var count, nextCount map[reflect.Type]int
	visited := map[reflect.Type]bool{}
	for len(next) > 0 {
		current, next = next, nil
		count, nextCount = nextCount, map[reflect.Type]int{}
		for _, e := range current {
			if visited[e.typ] {
				continue
			}
			visited[e.typ] = true
			for i := range e.typ.NumField() {
				sf := e.typ.Field(i)
				ft := sf.Type
				if ft.Kind() == reflect.Pointer {
					ft = ft.Elem()
				}
				if sf.Anonymous {
					// An unexported struct may have exported fields.
					if !sf.IsExported() && ft.Kind() != reflect.Struct {
						continue
					}
				} else if !sf.IsExported() {
					continue
				}
				tag := sf.Tag.Get("json")
				if tag == "-" {
					continue
				}
				name, _, _ := strings.Cut(tag, ",")
				if !validJSONTag(name) {
					name = ""
				}
				sf.Index = append(slices.Clip(e.index), i)
				if name == "" && sf.Anonymous && ft.Kind() == reflect.Struct {
					nextCount[ft]++
					if nextCount[ft] == 1 {
						next = append(next, embedded{ft, sf.Index})
					}
					continue
				}
				c := candidate{sf, name != ""}
				name = cmp.Or(name, sf.Name)
				byName[name] = append(byName[name], c)
				if count[e.typ] > 1 {
					// The struct is embedded more than once at this
					// depth: its fields tie with themselves.
					byName[name] = append(byName[name], c)
				}
			}
		}
	}
	m := make(map[string]reflect.StructField, len(byName))
	for name, cs := range byName {
		slices.SortFunc(cs, func(a, b candidate) int {
			if c := cmp.Compare(len(a.field.Index), len(b.field.Index)); c != 0 {
				return c
			}
			if a.tagged != b.tagged {
				if a.tagged {
					return -1
				}
				return +1
			}
			return slices.Compare(a.field.Index, b.field.Index)
		})
		if len(cs) > 1 && len(cs[0].field.Index) == len(cs[1].field.Index) && cs[0].tagged == cs[1].tagged {
			continue // neither dominates: encoding/json drops the name
		}
		m[name] = cs[0].field
	}
	jsonFields.Store(t, m)
	return m
}

// validJSONTag is encoding/json's isValidTag: a tag name it does not take
// leaves the field its Go name.
func validJSONTag(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		switch {
		case strings.ContainsRune("!#$%&()*+-./:;<=>?@[]^_{|}~ ", c):
		case !unicode.IsLetter(c) && !unicode.IsDigit(c):
			return false
		}
	}
	return true
}

var errUnsupportedMedia = errors.New("unsupported media type")

// jsonError turns a decoding error into an account error naming the field.
func jsonError(err error) error {
	var tooBig *http.MaxBytesError
	var typeErr *json.UnmarshalTypeError
	var syntax *json.SyntaxError
	switch {
	case errors.As(err, &tooBig):
		return account.Errorf(account.Invalid, "The request body is too large.")
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			return account.Errorf(account.Invalid, "The body must be one JSON object.")
		}
		return account.FieldErrorf(field, "%s must be %s.", field, jsonKind(typeErr.Type.Kind().String()))
	case errors.As(err, &syntax), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return account.Errorf(account.Invalid, "The body is not valid JSON.")
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		name, _ = strconv.Unquote(name)
		return account.FieldErrorf(name, "There is no field %q here.", name)
	}
	return account.Errorf(account.Invalid, "The body must be one JSON object.")
}

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "slice":
		return "a list"
	case "map", "struct":
		return "an object"
	}
	if strings.HasPrefix(k, "int") || strings.HasPrefix(k, "uint") || strings.HasPrefix(k, "float") {
		return "a number"
	}
	return "of another type"
}

// listJSON is one page of a list: the items and the cursor of the next
// page ("" when this is the last).
type listJSON[T any] struct {
	Items      []T    `json:"items"`
	NextCursor string `json:"next_cursor"`
}

func newList[T any](items []T, next string) listJSON[T] {
	if items == nil {
		items = []T{}
	}
	return listJSON[T]{Items: items, NextCursor: next}
}

// maxCursor bounds a cursor: it comes back from the caller.
const maxCursor = 512

// pageParams reads ?limit= and ?cursor=; a limit out of 1..max is refused
// rather than clamped, so a script learns the bound.
func pageParams(r *http.Request, max int) (limit int, cursor string, err error) {
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		n, convErr := strconv.Atoi(v)
		if convErr != nil || n < 1 || n > max {
			return 0, "", account.FieldErrorf("limit", "limit must be a whole number from 1 to %d.", max)
		}
		limit = n
	}
	cursor = q.Get("cursor")
	if len(cursor) > maxCursor {
		return 0, "", account.FieldErrorf("cursor", "The cursor is not one this API gave.")
	}
	return limit, cursor, nil
}

// ifMatch is the request's If-Match validator: "" when absent (no
// check). A list of validators is refused: one record, one version.
func ifMatch(r *http.Request) (string, error) {
	v := strings.TrimSpace(r.Header.Get("If-Match"))
	if v == "*" {
		return "", nil
	}
	if strings.Contains(v, ",") {
		return "", account.FieldErrorf("If-Match", "Send one ETag in If-Match.")
	}
	return v, nil
}

// writeWithETag answers v with its version in ETag.
func writeWithETag(w http.ResponseWriter, status int, etag string, v any) {
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	writeJSON(w, status, v)
}

// apiDecode is decodeAPIBody with the unsupported-media answer mapped.
func (s *Server) apiDecode(w http.ResponseWriter, r *http.Request, v any) (bool, error) {
	if err := decodeAPIBody(r, v); err != nil {
		if errors.Is(err, errUnsupportedMedia) {
			writeAPIError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send a JSON object with Content-Type: application/json.", "")
			return false, nil
		}
		return false, err
	}
	return true, nil
}

// pathID reads the {id} of a route about one record (what names its
// kind, for the error); IDs are short, so a long one names nothing.
func pathID(r *http.Request, what string) (string, error) {
	v := mux.Vars(r)["id"]
	if v == "" || len(v) > 256 {
		return "", account.Errorf(account.NotFound, "There is no such %s.", what)
	}
	return v, nil
}

// registerAdminAPIRoutes registers the management API, area by area.
func (s *Server) registerAdminAPIRoutes(at *routeTable) {
	s.registerAdminDirectoryAPI(at)
	s.registerAdminAuditAPI(at)
	// Before the users' /users/{id} routes, so /users/export and
	// /users/by-login/sessions are not taken for a user's ID.
	s.registerAdminUserPasswordAPI(at)
	s.registerAdminTransferAPI(at)
	s.registerAdminUserAPI(at)
	s.registerAdminSystemAPI(at)
	s.registerAdminClientAPI(at)
	s.registerAdminGroupAPI(at)
	s.registerAdminSettingsAPI(at)
	s.registerWebhookAPI(at)
	s.registerAdminOutboxAPI(at)
	s.registerAdminRegistrationAPI(at) // initial access tokens, approving held apps
	at.addAPI(levelAdminAPI, "POST", "/keys/rotate", s.apiRotateKeys, apiOp{Summary: "Start signing with a new key of every algorithm in use; the previous ones stay in JWKS until their tokens expire", Response: keyRotationJSON{}})
}

type keyRotationJSON struct {
	SigningKeyID string `json:"signing_key_id"` // the default algorithm's
	// SigningKeys are the new keys of every algorithm in use, by
	// algorithm: a rotation replaces each.
	SigningKeys map[string]string `json:"signing_keys"`
}

func (s *Server) apiRotateKeys(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	if s.opts.Keys == nil {
		return account.Errorf(account.Unavailable, "Key rotation is not available here.")
	}
	if err := s.opts.Keys.Rotate(r.Context()); err != nil {
		return fmt.Errorf("rotate signing keys: %w", err)
	}
	writeJSON(w, http.StatusOK, keyRotationJSON{SigningKeyID: s.opts.Keys.SigningKeyID(), SigningKeys: s.opts.Keys.SigningKeyIDs()})
	return nil
}
