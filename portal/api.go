package portal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The JSON API for people's own scripts, authenticated with API tokens
// (Authorization: Bearer kp_…). Only the browser session can create tokens,
// so a token can never mint more of itself.
func (s *Server) registerAPIRoutes(t *routeTable) {
	api := t.router.PathPrefix("/api/v1").Subrouter()
	// gorilla/mux answers 404 instead of 405 once a route with a path
	// variable follows the ones whose method did not match, so the
	// not-found handler asks the router itself which methods the path has.
	api.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if allowed := s.allowedMethods(r); len(allowed) > 0 {
			w.Header().Set("Allow", strings.Join(allowed, ", "))
			writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "This endpoint does not accept that method.")
			return
		}
		writeJSONError(w, http.StatusNotFound, "not_found", "There is no such API endpoint.")
	})
	api.MethodNotAllowedHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", strings.Join(s.allowedMethods(r), ", "))
		writeJSONError(w, http.StatusMethodNotAllowed, "method_not_allowed", "This endpoint does not accept that method.")
	})
	at := t.within(api)
	at.add(levelPublic, "GET", "/openapi.json", s.openAPIDocument)
	at.addAPI(levelAPIToken, "GET", "/me", s.apiGetMe, apiOp{Summary: "Your own profile (any API token)", Response: meJSON{}})
	at.addAPI(levelAPIToken, "PATCH", "/me", s.apiPatchMe, apiOp{Summary: "Change your own profile (a read-write API token); the fields of the answer, as strings, and custom_data", Body: map[string]any{}, Response: meJSON{}})
	s.registerAdminAPIRoutes(at)
}

// allowedMethods lists the methods the router has a route for at r's path.
func (s *Server) allowedMethods(r *http.Request) []string {
	var out []string
	for _, m := range knownMethods {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			out = append(out, m)
		}
	}
	return out
}

// openAPIDocument serves the OpenAPI 3.1 description of /api/v1.
func (s *Server) openAPIDocument(w http.ResponseWriter, r *http.Request) error {
	doc, err := s.docs.document(s.opts.Issuer)
	if err != nil {
		return fmt.Errorf("build the OpenAPI document: %w", err)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(doc)
	return nil
}

type apiCaller struct {
	User  storage.User
	Token storage.Credential
}

type apiHandler func(w http.ResponseWriter, r *http.Request, c apiCaller) error

// withToken authenticates the bearer token, refuses writes to read-only
// tokens, and maps errors to JSON.
func (s *Server) withToken(h apiHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		auth := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(auth, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyport"`)
			writeJSONError(w, http.StatusUnauthorized, "unauthorized", "Send an API token: Authorization: Bearer kp_…")
			return
		}
		u, cred, err := s.acct.Credentials.AuthenticateAPIToken(r.Context(), strings.TrimSpace(token), clientIP(r), r.UserAgent())
		if err != nil {
			if account.ErrorCode(err) == account.Unauthorized {
				w.Header().Set("WWW-Authenticate", `Bearer realm="keyport", error="invalid_token"`)
			}
			s.apiError(w, r, err)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead && cred.Scope != account.ScopeReadWrite {
			w.Header().Set("WWW-Authenticate", `Bearer realm="keyport", error="insufficient_scope"`)
			writeJSONError(w, http.StatusForbidden, "insufficient_scope", "This API token is read-only.")
			return
		}
		if err := h(w, r, apiCaller{User: u, Token: cred}); err != nil {
			s.apiError(w, r, err)
		}
	})
}

func (s *Server) apiError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, errUnsupportedMedia) {
		writeAPIError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send a JSON object with Content-Type: application/json.", "")
		return
	}
	code := account.ErrorCode(err)
	status := statusFor(code)
	if code == account.Internal {
		ref := requestRef(r)
		s.log.ErrorContext(r.Context(), "API request failed", "path", r.URL.Path, "err", err, "ref", ref)
		writeJSON(w, status, apiErrorBody{Error: apiErrorDetail{Code: string(code), Message: account.ErrorMessage(nil), Ref: ref}})
		return
	}
	setRetryAfter(w, err) // 429 (throttled) and 503 (busy) say when
	writeAPIError(w, status, string(code), errorText("en", err), account.ErrorField(err))
}

func writeJSONError(w http.ResponseWriter, status int, code, msg string) {
	writeAPIError(w, status, code, msg, "")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// meJSON is the profile as the API shows it: never the password, block
// status, sign-in counters, second-factor data or admin metadata.
type meJSON struct {
	ID                  string            `json:"id"`
	Username            string            `json:"username"`
	GivenName           string            `json:"given_name"`
	FamilyName          string            `json:"family_name"`
	Name                string            `json:"name"`
	DisplayName         string            `json:"display_name"`
	Nickname            string            `json:"nickname"`
	Email               string            `json:"email"`
	EmailVerified       bool              `json:"email_verified"`
	RecoveryEmail       string            `json:"recovery_email"`
	PhoneNumber         string            `json:"phone_number"`
	PhoneNumberVerified bool              `json:"phone_number_verified"`
	Locale              string            `json:"locale"`
	Zoneinfo            string            `json:"zoneinfo"`
	Theme               string            `json:"theme"`
	Picture             string            `json:"picture"`
	Roles               []string          `json:"roles"`
	Groups              []string          `json:"groups"`
	CreatedAt           string            `json:"created_at"`
	CustomData          map[string]string `json:"custom_data"`
	Locked              map[string]string `json:"locked,omitempty"` // field → reason
}

func (s *Server) meView(u storage.User) meJSON {
	out := meJSON{
		ID: u.ID, Username: u.Username, GivenName: u.GivenName, FamilyName: u.FamilyName, Name: u.Name, DisplayName: account.DisplayName(u),
		Nickname: u.Nickname, Email: u.Email, EmailVerified: u.EmailVerified, RecoveryEmail: s.acct.Users.FieldValue(u, "recovery_email"),
		PhoneNumber: u.PhoneNumber, PhoneNumberVerified: u.PhoneVerified, Locale: u.Locale, Zoneinfo: u.Zoneinfo, Theme: u.Theme,
		Picture: strings.TrimSuffix(s.opts.Issuer, "/") + account.AvatarPath(u), Roles: nonNilStrings(u.Roles), Groups: nonNilStrings(u.Groups),
		CreatedAt: u.CreatedAt.UTC().Format("2006-01-02T15:04:05Z"), CustomData: u.CustomData, Locked: map[string]string{},
	}
	if out.CustomData == nil {
		out.CustomData = map[string]string{}
	}
	for _, a := range account.Attributes {
		if !a.Editable {
			continue
		}
		if locked, reason := s.acct.Users.FieldLock(u, a.Key); locked {
			out.Locked[a.Key] = reason
		}
	}
	return out
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func (s *Server) apiGetMe(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	writeJSON(w, http.StatusOK, s.meView(c.User))
	return nil
}

// apiPatchMe changes profile fields under the same rules as the form: the
// same locks, the same validation, nothing changes when anything is wrong.
func (s *Server) apiPatchMe(w http.ResponseWriter, r *http.Request, c apiCaller) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeJSONError(w, http.StatusUnsupportedMediaType, "unsupported_media_type", "Send a JSON object with Content-Type: application/json.")
		return nil
	}
	var body map[string]json.RawMessage
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return account.Errorf(account.Invalid, "The request body is too large.")
		}
		return account.Errorf(account.Invalid, "The body must be one JSON object.")
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		return account.Errorf(account.Invalid, "The body must be one JSON object.")
	}
	changes := map[string]string{}
	var custom map[string]string
	customSet := false
	for k, raw := range body {
		if k == "custom_data" {
			if err := json.Unmarshal(raw, &custom); err != nil {
				return account.FieldErrorf(k, "custom_data must be an object of strings.")
			}
			customSet = true
			continue
		}
		var v string
		if err := json.Unmarshal(raw, &v); err != nil {
			return account.FieldErrorf(k, "%s must be a string.", k)
		}
		changes[k] = v
	}
	// Check every profile field (locks included) before the custom data, so
	// a refused request changes nothing.
	u := c.User
	for k, v := range changes {
		if err := s.acct.Users.CheckChange(u, k, v); err != nil {
			return err
		}
	}
	if customSet {
		if err := account.ValidateCustomData(custom); err != nil {
			return err
		}
	}
	if customSet && s.acct.Policy().ProfilesLocked {
		return &account.Error{Code: account.Forbidden, Field: "custom_data", Message: account.ReasonAdminLock}
	}
	var err error
	if len(changes) > 0 {
		// With mail on, a new email waits for its confirmation link.
		if u, _, err = s.acct.Mail.UpdateProfile(r.Context(), u.ID, changes, u.Locale); err != nil {
			return err
		}
	}
	if customSet {
		if u, err = s.acct.Users.SetCustomData(r.Context(), u.ID, custom); err != nil {
			return err
		}
	}
	writeJSON(w, http.StatusOK, s.meView(u))
	return nil
}
