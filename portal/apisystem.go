package portal

import (
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The API tokens of system accounts (account/adminsystem.go): nobody signs
// in as one, so an administrator issues its tokens here.
func (s *Server) registerAdminSystemAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "POST", "/users/{id}/api-tokens", s.apiCreateSystemToken, apiOp{Summary: "Issue an API token for a system account (shown once in this answer; an expiry at most 400 days ahead is required)", Body: newAPITokenJSON{}, Response: createdAPITokenJSON{}, Status: http.StatusCreated})
	at.addAPI(levelAdminAPI, "DELETE", "/users/{id}/api-tokens/{token_id}", s.apiRevokeUserToken, apiOp{Summary: "Revoke one API token of a user (a system account's, or a person's that leaked)"})
}

// newAPITokenJSON is a token an administrator asks for.
type newAPITokenJSON struct {
	Name  string `json:"name"`
	Scope string `json:"scope"` // "read-only" or "read-write"
	// ExpiresAt is required for a system account (RFC 3339).
	ExpiresAt time.Time `json:"expires_at"`
	// AllowedNetworks: IPs or CIDRs, separated by commas or spaces; empty
	// allows any address.
	AllowedNetworks string `json:"allowed_networks,omitempty"`
}

type createdAPITokenJSON struct {
	Token      string         `json:"token"` // shown in this answer only
	Credential credentialJSON `json:"credential"`
}

func (s *Server) apiCreateSystemToken(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	var n newAPITokenJSON
	if ok, err := s.apiDecode(w, r, &n); !ok {
		return err
	}
	token, c, err := s.acct.Admin.CreateAPIToken(r.Context(), a, id, account.NewAPIToken{
		Name: n.Name, Scope: n.Scope, ExpiresAt: n.ExpiresAt, AllowedNetworks: n.AllowedNetworks})
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusCreated, createdAPITokenJSON{Token: token, Credential: credentialViews([]storage.Credential{c})[0]})
	return nil
}

func (s *Server) apiRevokeUserToken(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	tokenID := mux.Vars(r)["token_id"]
	if tokenID == "" || len(tokenID) > 256 {
		return account.Errorf(account.NotFound, "There is no such API token.")
	}
	if err := s.acct.Admin.RevokeAPIToken(r.Context(), a, id, tokenID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
