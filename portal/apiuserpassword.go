package portal

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
)

// Users by login and an administrator's password for a user: what the
// command line needs to name users as people do (`--username alice`) and
// to keep `keyport user set-password` working while serve runs.
func (s *Server) registerAdminUserPasswordAPI(at *routeTable) {
	// The login goes in the query: a path segment cannot hold a "/" (an
	// email's local part may: "a/b@example.com"), since the router splits
	// on it even when the client sends %2F. Auth0 (users-by-email?email=)
	// and Keycloak (users?username=) ask the same way. The path form
	// stays for the logins it can carry.
	at.addAPI(levelAdminAPI, "GET", "/users/by-login", s.apiUserByLogin, apiOp{Summary: "The user whose username or email is login (case-insensitive), as GET /users/{id} shows them; any login, a / included", Query: []apiParam{{"login", "string", "the username or email address (required)"}}, Response: userDetailJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "GET", "/users/by-login/{login}", s.apiUserByLogin, apiOp{Summary: "The user whose username or email is login (case-insensitive), for logins without a /; GET /users/by-login?login= takes any", Response: userDetailJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "POST", "/users/{id}/password", s.apiSetUserPassword, apiOp{Summary: "Set a local user's password (the password policy applies); ends their sessions and revokes their tokens", Body: passwordJSON{}, Response: signedOutJSON{}})
}

type passwordJSON struct {
	Password string `json:"password"`
}

func (s *Server) apiUserByLogin(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	login, inPath := mux.Vars(r)["login"]
	if !inPath {
		login = r.URL.Query().Get("login")
		if login == "" {
			return account.FieldErrorf("login", "Say whose account: ?login= a username or email address.")
		}
	}
	d, err := s.acct.Admin.UserByLogin(r.Context(), a, login)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, d.ETag, userDetailView(d))
	return nil
}

func (s *Server) apiSetUserPassword(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	var p passwordJSON
	if ok, err := s.apiDecode(w, r, &p); !ok {
		return err
	}
	out, err := s.acct.Admin.SetPassword(r.Context(), a, id, p.Password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, signedOutJSON{SessionsEnded: out.Sessions, TokensRevoked: out.Tokens})
	return nil
}
