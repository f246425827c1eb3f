package portal

import (
	"net/http"
	"net/url"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The management API's side of dynamic client registration: the initial
// access tokens apps register with (account.RegistrationService), and the
// approval of apps registered held.
func (s *Server) registerAdminRegistrationAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "GET", "/registration-tokens", s.apiListInitialAccessTokens, apiOp{Summary: "List the live initial access tokens of dynamic client registration (never the tokens themselves)", Response: listJSON[initialAccessTokenJSON]{}})
	at.addAPI(levelAdminAPI, "POST", "/registration-tokens", s.apiCreateInitialAccessToken, apiOp{Summary: "Make an initial access token for dynamic client registration (RFC 7591 §3); the token is in this answer only", Body: newInitialAccessTokenJSON{}, Response: initialAccessTokenJSON{}, Status: http.StatusCreated})
	at.addAPI(levelAdminAPI, "DELETE", "/registration-tokens/{id}", s.apiRevokeInitialAccessToken, apiOp{Summary: "Revoke an initial access token; the apps it registered stay"})
	at.addAPI(levelAdminAPI, "POST", "/clients/{id}/approve", s.apiApproveClient, apiOp{Summary: "Approve an app that registered itself held for approval: from now on people sign in to it and it gets tokens", Response: clientJSON{}, ETag: true})
}

// initialAccessTokenJSON is an initial access token as administrators
// see it: never the token or its hash.
type initialAccessTokenJSON struct {
	ID              string     `json:"id"`
	Name            string     `json:"name"`
	ExpiresAt       time.Time  `json:"expires_at"`
	MaxUses         int        `json:"max_uses"` // 0: no bound but the expiry
	Uses            int        `json:"uses"`
	HoldForApproval bool       `json:"hold_for_approval"`
	CreatedAt       time.Time  `json:"created_at"`
	LastUsedAt      *time.Time `json:"last_used_at,omitempty"`
	// Token is the bearer token for the registration endpoint: in the
	// answer that made it only.
	Token string `json:"token,omitempty"`
}

func initialAccessTokenView(c storage.Credential) initialAccessTokenJSON {
	return initialAccessTokenJSON{ID: c.ID, Name: c.Name, ExpiresAt: c.ValidUntil, MaxUses: c.MaxUses, Uses: c.Uses,
		HoldForApproval: c.HoldForApproval, CreatedAt: c.CreatedAt, LastUsedAt: optionalTime(c.LastUsedAt)}
}

// newInitialAccessTokenJSON is POST /registration-tokens.
type newInitialAccessTokenJSON struct {
	Name string `json:"name"`
	// ExpiresIn is the token's lifetime in seconds (60 to a year).
	ExpiresIn       int64 `json:"expires_in"`
	MaxUses         int   `json:"max_uses"`
	HoldForApproval bool  `json:"hold_for_approval"`
}

func (s *Server) apiListInitialAccessTokens(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	cs, err := s.acct.Registration.ListInitialAccessTokens(r.Context())
	if err != nil {
		return err
	}
	items := make([]initialAccessTokenJSON, 0, len(cs))
	for _, c := range cs {
		items = append(items, initialAccessTokenView(c))
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
	return nil
}

func (s *Server) apiCreateInitialAccessToken(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	var b newInitialAccessTokenJSON
	if ok, err := s.apiDecode(w, r, &b); !ok {
		return err
	}
	if b.ExpiresIn <= 0 || b.ExpiresIn > int64(account.MaxInitialAccessTokenLifetime/time.Second) {
		return account.FieldErrorf("expires_in", "The token must expire after between a minute and a year.")
	}
	token, c, err := s.acct.Registration.CreateInitialAccessToken(r.Context(), a, account.NewInitialAccessToken{
		Name: b.Name, Lifetime: time.Duration(b.ExpiresIn) * time.Second, MaxUses: b.MaxUses, HoldForApproval: b.HoldForApproval,
	})
	if err != nil {
		return err
	}
	out := initialAccessTokenView(c)
	out.Token = token
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *Server) apiRevokeInitialAccessToken(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "initial access token")
	if err != nil {
		return err
	}
	if err := s.acct.Registration.RevokeInitialAccessToken(r.Context(), a, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiApproveClient(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "app")
	if err != nil {
		return err
	}
	match, err := ifMatch(r)
	if err != nil {
		return err
	}
	c, err := s.acct.Registration.ApproveClient(r.Context(), a, id, match)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, account.ClientETag(c), s.clientView(c))
	return nil
}

// adminApproveApp is the console's approval of a held app (the button on
// its page, admin_app.html), of the version that page showed.
func (s *Server) adminApproveApp(w http.ResponseWriter, r *http.Request, m me) error {
	id := mux.Vars(r)["id"]
	if _, err := s.acct.Registration.ApproveClient(r.Context(), consoleActor(r, m), id, r.PostFormValue("etag")); err != nil {
		return s.appRefused(w, r, m, err, &adminAppData{})
	}
	http.Redirect(w, r, "/admin/apps/"+url.PathEscape(id)+"?done=approved", http.StatusSeeOther)
	return nil
}
