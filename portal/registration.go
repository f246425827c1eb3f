package portal

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
	"github.com/keyport/keyport/throttle"
)

// Dynamic client registration (RFC 7591) and its management protocol
// (RFC 7592): apps register themselves here with an initial access token
// an administrator made, and manage their registration with the
// registration access token they got. The rules are the account
// package's (account.RegistrationService); this file speaks the protocol.

// RegistrationPath is the client registration endpoint (RFC 7591 §3);
// each app's client configuration endpoint (RFC 7592 §2) is below it.
const RegistrationPath = "/oauth/register"

// registrationBodyLimit bounds a registration request: the metadata of an
// app at the account rules' bounds (URIs, a key set) fits with room.
const registrationBodyLimit = 64 << 10

// isRegistrationPath tells the registration endpoints' paths: machine
// endpoints, which never set cookies.
func isRegistrationPath(p string) bool {
	return p == RegistrationPath || strings.HasPrefix(p, RegistrationPath+"/")
}

// registrationHandler answers a registration request with the bearer
// token it carries (withRegistration).
type registrationHandler func(w http.ResponseWriter, r *http.Request, token string)

func (s *Server) registerRegistrationRoutes(t *routeTable) {
	if !s.opts.DynamicRegistration {
		// Off: no routes, so every method on every path is not found; a
		// route would answer other methods 405, which tells it is there.
		return
	}
	t.add(levelRegistration, "POST", RegistrationPath, registrationHandler(s.registerClient))
	t.add(levelRegistration, "GET PUT DELETE", RegistrationPath+"/{client_id}", registrationHandler(s.manageRegisteredClient))
}

// withRegistration is levelRegistration: not found while dynamic
// registration is off; otherwise the request must carry a bearer token
// (RFC 6750 §2.1) for the handler to check, and its body is bounded.
func (s *Server) withRegistration(h registrationHandler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.opts.DynamicRegistration {
			s.notFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "no-store")
		r.Body = http.MaxBytesReader(w, r.Body, registrationBodyLimit)
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		token = strings.TrimSpace(token)
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			// RFC 6750 §3.1: a request without a token gets no error code.
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+s.opts.Issuer+`"`)
			writeRegistrationError(w, http.StatusUnauthorized, "invalid_token", "a bearer token is required")
			return
		}
		h(w, r, token)
	})
}

// registrationError is the error body of RFC 7591 §3.2.2.
type registrationError struct {
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description,omitempty"`
}

func writeRegistrationError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, registrationError{Error: code, ErrorDescription: description})
}

// failRegistration answers an error of the account rules as the RFCs say:
// a bad token 401 invalid_token (RFC 6750 §3.1, RFC 7592 §2), a bad
// redirect URI invalid_redirect_uri and other bad metadata
// invalid_client_metadata (RFC 7591 §3.2.2), too many failures 429.
func (s *Server) failRegistration(w http.ResponseWriter, r *http.Request, err error) {
	var ae *account.Error
	if !errors.As(err, &ae) {
		s.log.ErrorContext(r.Context(), "dynamic client registration", "err", err)
		writeRegistrationError(w, http.StatusInternalServerError, "server_error", "")
		return
	}
	switch ae.Code {
	case account.Unauthorized:
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+s.opts.Issuer+`", error="invalid_token"`)
		writeRegistrationError(w, http.StatusUnauthorized, "invalid_token", ae.Message)
	case account.RateLimited:
		w.Header().Set("Retry-After", strconv.Itoa(throttle.RetryAfterSeconds(ae.RetryAfter)))
		writeRegistrationError(w, http.StatusTooManyRequests, "temporarily_unavailable", ae.Message)
	case account.Invalid:
		code := "invalid_client_metadata"
		if ae.Field == "redirect_uris" || ae.Field == "post_logout_redirect_uris" {
			code = "invalid_redirect_uri"
		}
		field := ae.Field
		if field == "name" {
			field = "client_name" // the rules' name for it is not the metadata's (RFC 7591 §2)
		}
		desc := ae.Message
		if field != "" && !strings.Contains(desc, field) {
			desc = field + ": " + desc
		}
		writeRegistrationError(w, http.StatusBadRequest, code, desc)
	default:
		writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", ae.Message)
	}
}

// registrationRequest is a registration (RFC 7591 §3.1) or an update
// (RFC 7592 §2.2, which adds client_id and may add client_secret). Any
// other member, the response's own fields included, is ignored.
type registrationRequest struct {
	account.ClientMetadata
	ClientID     string `json:"client_id,omitempty"`
	ClientSecret string `json:"client_secret,omitempty"`
}

// decodeRegistration reads a registration body: one JSON object of
// Content-Type application/json within registrationBodyLimit.
func decodeRegistration(w http.ResponseWriter, r *http.Request) (registrationRequest, bool) {
	var req registrationRequest
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", "the body must be application/json")
		return req, false
	}
	body, err := io.ReadAll(r.Body)
	if err == nil {
		err = decodeExactMembers(body, &req)
	}
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeRegistrationError(w, http.StatusRequestEntityTooLarge, "invalid_client_metadata", "the body is too large")
		return req, false
	case err != nil:
		writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", "the body is not valid client metadata: "+jsonProblem(err))
		return req, false
	}
	return req, true
}

// jsonProblem says what is wrong with a body, without echoing it.
func jsonProblem(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return typeErr.Field + " has the wrong type"
	}
	return "malformed JSON"
}

// registrationResponse is the client information response (RFC 7591
// §3.2.1, RFC 7592 §3): the credentials, then the metadata as stored.
type registrationResponse struct {
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret,omitempty"`
	// ClientSecretExpiresAt is 0, never expiring, whenever the app has a
	// secret (REQUIRED then).
	ClientSecretExpiresAt   *int64 `json:"client_secret_expires_at,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	account.ClientMetadata
}

func (s *Server) registrationResponse(c storage.Client, secret, regToken string) registrationResponse {
	out := registrationResponse{
		ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: c.CreatedAt.Unix(),
		RegistrationAccessToken: regToken,
		RegistrationClientURI:   strings.TrimSuffix(s.opts.Issuer, "/") + RegistrationPath + "/" + c.ID,
		ClientMetadata:          account.ClientMetadataOf(c),
	}
	if c.SecretHash != "" {
		var never int64
		out.ClientSecretExpiresAt = &never
	}
	return out
}

// registerClient is the client registration endpoint (RFC 7591 §3).
func (s *Server) registerClient(w http.ResponseWriter, r *http.Request, token string) {
	req, ok := decodeRegistration(w, r)
	if !ok {
		return
	}
	reg, err := s.acct.Registration.RegisterClient(r.Context(), token, clientIP(r), req.ClientMetadata)
	if err != nil {
		s.failRegistration(w, r, err)
		return
	}
	resp := s.registrationResponse(reg.Client, reg.Secret, reg.RegistrationAccessToken)
	w.Header().Set("Location", resp.RegistrationClientURI)
	writeJSON(w, http.StatusCreated, resp)
}

// manageRegisteredClient is the client configuration endpoint (RFC 7592
// §2): read, replace or delete the registration.
func (s *Server) manageRegisteredClient(w http.ResponseWriter, r *http.Request, token string) {
	id := mux.Vars(r)["client_id"]
	ctx, ip := r.Context(), clientIP(r)
	switch r.Method {
	case http.MethodGet:
		c, err := s.acct.Registration.ReadRegisteredClient(ctx, id, token, ip)
		if err != nil {
			s.failRegistration(w, r, err)
			return
		}
		// RFC 7592 §3 requires the registration access token in every
		// answer; only its hash is kept, so it is the one presented.
		writeJSON(w, http.StatusOK, s.registrationResponse(c, "", token))
	case http.MethodPut:
		req, ok := decodeRegistration(w, r)
		if !ok {
			return
		}
		if req.ClientID != id {
			// The token is checked first, so this tells nothing to
			// someone without it.
			if _, err := s.acct.Registration.ReadRegisteredClient(ctx, id, token, ip); err != nil {
				s.failRegistration(w, r, err)
				return
			}
			writeRegistrationError(w, http.StatusBadRequest, "invalid_client_metadata", "client_id must be the client's ID (RFC 7592 §2.2)")
			return
		}
		c, err := s.acct.Registration.UpdateRegisteredClient(ctx, id, token, ip, req.ClientSecret, req.ClientMetadata)
		if err != nil {
			s.failRegistration(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, s.registrationResponse(c, "", token))
	case http.MethodDelete:
		if err := s.acct.Registration.DeleteRegisteredClient(ctx, id, token, ip); err != nil {
			s.failRegistration(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

// decodeExactMembers decodes body, one JSON object, into the struct v
// from the members named exactly as v's fields. The others are metadata
// Keyport does not know, ignored (RFC 7591 §2), though some differ from a
// name it knows in case only ("Token_Endpoint_Auth_Method"), which
// encoding/json alone, matching names in any case, would take for it.
func decodeExactMembers(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	var members map[string]json.RawMessage
	if err := dec.Decode(&members); err != nil {
		return err
	}
	if dec.Decode(&struct{}{}) != io.EOF {
		return errors.New("the body must be one JSON object")
	}
	known := jsonFieldsOf(reflect.TypeOf(v).Elem())
	dropped := false
	for name := range members {
		if _, ok := known[name]; !ok {
			delete(members, name)
			dropped = true
		}
	}
	if !dropped {
		return json.Unmarshal(body, v)
	}
	exact, _ := json.Marshal(members) // raw members decoded already: cannot fail
	return json.Unmarshal(exact, v)
}
