package portal

import (
	"context"
	"net/http"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The management API's users: every route calls account.AdminService, the
// rules the console and the command line use too.
func (s *Server) registerAdminUserAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "GET", "/users", s.apiListUsers, apiOp{Summary: "Search users: text, filters, sort, a page at a time", Query: userQueryParams, Response: listJSON[adminUserJSON]{}})
	at.addAPI(levelAdminAPI, "POST", "/users", s.apiCreateUser, apiOp{Summary: "Create a local user with a password, with an invitation link (shown once in the answer), or a system account (system: true; neither)", Body: account.AdminNewUser{}, Response: createdUserJSON{}, Status: http.StatusCreated, ETag: true})
	at.addAPI(levelAdminAPI, "GET", "/users/{id}", s.apiGetUser, apiOp{Summary: "A user with everything an administrator sees (never a secret)", Response: userDetailJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "PATCH", "/users/{id}", s.apiPatchUser, apiOp{Summary: "Edit a user; send If-Match with the ETag you read, or get 412 if someone changed the user since", Body: account.UserPatch{}, Response: adminUserJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "DELETE", "/users/{id}", userAction(s.apiDeleteUser), apiOp{Summary: "Delete a user and everything of theirs; the username and email stay unavailable for 30 days"})
	at.addAPI(levelAdminAPI, "POST", "/users/{id}/block", userAction(s.apiBlockUser), apiOp{Summary: "Block a user: ends their sessions and revokes their tokens at once", Response: signedOutJSON{}})
	at.addAPI(levelAdminAPI, "POST", "/users/{id}/unblock", userAction(s.apiUnblockUser), apiOp{Summary: "Unblock a user"})
	at.addAPI(levelAdminAPI, "POST", "/users/{id}/reset-2fa", userAction(s.apiResetSecondFactors), apiOp{Summary: "Remove a user's authenticator app, passkeys, recovery codes and trusted devices", Response: factorsRemovedJSON{}})
	at.addAPI(levelAdminAPI, "POST", "/users/{id}/password-reset-link", s.apiPasswordResetLink, apiOp{Summary: "A one-time link to set a new password (shown once; local accounts only)", Response: linkJSON{}, Status: http.StatusCreated})
	at.addAPI(levelAdminAPI, "GET", "/users/{id}/sessions", s.apiUserSessions, apiOp{Summary: "A user's browser sessions", Response: listJSON[sessionJSON]{}})
	at.addAPI(levelAdminAPI, "DELETE", "/users/{id}/sessions", userAction(s.apiEndUserSessions), apiOp{Summary: "End all of a user's sessions and revoke their tokens", Response: signedOutJSON{}})
}

// adminUserJSON is a user as administrators see them: every field but the
// secrets (password hash, TOTP secret, recovery codes).
type adminUserJSON struct {
	ID                string            `json:"id"`
	Username          string            `json:"username"`
	Email             string            `json:"email"`
	EmailVerified     bool              `json:"email_verified"`
	Name              string            `json:"name"`
	GivenName         string            `json:"given_name"`
	FamilyName        string            `json:"family_name"`
	Nickname          string            `json:"nickname"`
	Locale            string            `json:"locale"`
	Zoneinfo          string            `json:"zoneinfo"`
	PhoneNumber       string            `json:"phone_number"`
	PhoneVerified     bool              `json:"phone_verified"`
	Groups            []string          `json:"groups"`
	Roles             []string          `json:"roles"`
	Admin             bool              `json:"admin"`
	Blocked           bool              `json:"blocked"`
	System            bool              `json:"system"` // an account for programs: no sign-in, API tokens only
	Source            string            `json:"source"` // "" for a local account, else the directory's ID
	Identities        []identityJSON    `json:"identities"`
	AppMetadata       map[string]string `json:"app_metadata"`
	CustomData        map[string]string `json:"custom_data"`
	CreatedAt         time.Time         `json:"created_at"`
	UpdatedAt         time.Time         `json:"updated_at"`
	LastSignIn        *time.Time        `json:"last_sign_in,omitempty"`
	LastIP            string            `json:"last_ip"`
	SignInCount       int               `json:"sign_in_count"`
	PasswordChangedAt *time.Time        `json:"password_changed_at,omitempty"`
}

type identityJSON struct {
	Connection string `json:"connection"`
	Provider   string `json:"provider"`
	UserID     string `json:"user_id"`
}

func optionalTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func emptyIfNil[K comparable, V any](m map[K]V) map[K]V {
	if m == nil {
		return map[K]V{}
	}
	return m
}

func adminUserView(u storage.User) adminUserJSON {
	out := adminUserJSON{
		ID: u.ID, Username: u.Username, Email: u.Email, EmailVerified: u.EmailVerified,
		Name: u.Name, GivenName: u.GivenName, FamilyName: u.FamilyName, Nickname: u.Nickname,
		Locale: u.Locale, Zoneinfo: u.Zoneinfo, PhoneNumber: u.PhoneNumber, PhoneVerified: u.PhoneVerified,
		Groups: nonNilStrings(u.Groups), Roles: nonNilStrings(u.Roles), Admin: u.Admin, Blocked: u.Blocked, System: u.System,
		Source: u.Source, Identities: []identityJSON{}, AppMetadata: emptyIfNil(u.AppMetadata), CustomData: emptyIfNil(u.CustomData),
		CreatedAt: u.CreatedAt.UTC(), UpdatedAt: u.UpdatedAt.UTC(), LastSignIn: optionalTime(u.LastLogin), LastIP: u.LastIP,
		SignInCount: u.LoginsCount, PasswordChangedAt: optionalTime(u.PasswordChangedAt),
	}
	for _, id := range u.Identities {
		out.Identities = append(out.Identities, identityJSON{Connection: id.Connection, Provider: id.Provider, UserID: id.UserID})
	}
	return out
}

// userDetailJSON is GET /users/{id}: the user and what hangs off them,
// credentials as metadata only.
type userDetailJSON struct {
	User        adminUserJSON     `json:"user"`
	HasPassword bool              `json:"has_password"`
	SourceName  string            `json:"source_name"`
	Locked      map[string]string `json:"locked"` // field → why an administrator may not edit it
	Factors     factorsJSON       `json:"factors"`
	SignIns     []signInJSON      `json:"sign_ins"`
	Sessions    []sessionJSON     `json:"sessions"`
	Consents    []consentJSON     `json:"consents"`
	APITokens   []credentialJSON  `json:"api_tokens"`
	AppPassword []credentialJSON  `json:"app_passwords"`
	Passkeys    []credentialJSON  `json:"passkeys"`
	Devices     []credentialJSON  `json:"trusted_devices"`
}

type factorsJSON struct {
	TOTP              bool `json:"totp"`
	TOTPPending       bool `json:"totp_pending"`
	Passkeys          int  `json:"passkeys"`
	RecoveryCodesLeft int  `json:"recovery_codes_left"`
	TrustedDevices    int  `json:"trusted_devices"`
}

type signInJSON struct {
	Time      time.Time `json:"time"`
	Method    string    `json:"method"`
	Success   bool      `json:"success"`
	Reason    string    `json:"reason"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
}

type sessionJSON struct {
	ID        string    `json:"id"`
	SignedIn  time.Time `json:"signed_in"`
	Methods   []string  `json:"methods"`
	IP        string    `json:"ip"`
	UserAgent string    `json:"user_agent"`
	ExpiresAt time.Time `json:"expires_at"`
}

type consentJSON struct {
	App       string    `json:"app"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
}

// credentialJSON is a credential's metadata; never its hash or key.
type credentialJSON struct {
	ID         string     `json:"id"`
	Name       string     `json:"name"`
	App        string     `json:"app,omitempty"`   // an app password's one app
	Scope      string     `json:"scope,omitempty"` // an API token's
	CreatedAt  time.Time  `json:"created_at"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
	LastIP     string     `json:"last_ip,omitempty"`
}

func credentialViews(cs []storage.Credential) []credentialJSON {
	out := []credentialJSON{}
	for _, c := range cs {
		exp := c.ValidUntil
		if exp.IsZero() {
			exp = c.ExpiresAt
		}
		out = append(out, credentialJSON{ID: c.ID, Name: c.Name, App: c.ClientID, Scope: c.Scope, CreatedAt: c.CreatedAt.UTC(),
			ExpiresAt: optionalTime(exp), LastUsedAt: optionalTime(c.LastUsedAt), LastIP: c.LastIP})
	}
	return out
}

func sessionViews(ss []storage.Session) []sessionJSON {
	out := []sessionJSON{}
	for _, x := range ss {
		out = append(out, sessionJSON{ID: x.ID, SignedIn: x.AuthTime.UTC(), Methods: nonNilStrings(x.AMR), IP: x.IP, UserAgent: x.UserAgent, ExpiresAt: x.ExpiresAt.UTC()})
	}
	return out
}

func userDetailView(d account.UserDetail) userDetailJSON {
	out := userDetailJSON{
		User: adminUserView(d.User), HasPassword: d.HasPassword, SourceName: d.SourceName, Locked: emptyIfNil(d.Locked),
		Factors: factorsJSON{TOTP: d.Factors.TOTP, TOTPPending: d.Factors.TOTPPending, Passkeys: d.Factors.Passkeys,
			RecoveryCodesLeft: d.Factors.RecoveryCodesLeft, TrustedDevices: d.Factors.TrustedDevices},
		SignIns: []signInJSON{}, Sessions: sessionViews(d.Sessions), Consents: []consentJSON{},
		APITokens: credentialViews(d.APITokens), AppPassword: credentialViews(d.AppPasswords),
		Passkeys: credentialViews(d.Passkeys), Devices: credentialViews(d.TrustedDevices),
	}
	for _, a := range d.History {
		out.SignIns = append(out.SignIns, signInJSON{Time: a.Time.UTC(), Method: a.Method, Success: a.Success, Reason: a.Reason, IP: a.IP, UserAgent: a.UserAgent})
	}
	for _, g := range d.Consents {
		out.Consents = append(out.Consents, consentJSON{App: g.ClientID, Scopes: nonNilStrings(g.Scopes), GrantedAt: g.CreatedAt.UTC()})
	}
	return out
}

type createdUserJSON struct {
	User adminUserJSON `json:"user"`
	// Invitation is the one-time link for an invited user, shown only here.
	Invitation *linkJSON `json:"invitation,omitempty"`
}

type linkJSON struct {
	URL       string    `json:"url"`
	ExpiresAt time.Time `json:"expires_at"`
	// MailedTo is where the link was also mailed (mail configured).
	MailedTo string `json:"mailed_to,omitempty"`
}

type signedOutJSON struct {
	SessionsEnded int `json:"sessions_ended"`
	TokensRevoked int `json:"tokens_revoked"`
}

type factorsRemovedJSON struct {
	TOTP           bool `json:"totp"`
	Passkeys       int  `json:"passkeys"`
	RecoveryCodes  int  `json:"recovery_codes"`
	TrustedDevices int  `json:"trusted_devices"`
}

func (s *Server) apiListUsers(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	q, err := userQuery(r.URL.Query())
	if err != nil {
		return err
	}
	if q.Limit, _, err = pageParams(r, storage.MaxUserLimit); err != nil {
		return err
	}
	page, err := s.acct.Admin.SearchUsers(r.Context(), a, q)
	if err != nil {
		return err
	}
	items := make([]adminUserJSON, 0, len(page.Users))
	for _, u := range page.Users {
		items = append(items, adminUserView(u))
	}
	writeJSON(w, http.StatusOK, newList(items, page.Next))
	return nil
}

func (s *Server) apiCreateUser(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	var n account.AdminNewUser
	if ok, err := s.apiDecode(w, r, &n); !ok {
		return err
	}
	u, link, err := s.acct.Admin.CreateUser(r.Context(), a, n)
	if err != nil {
		return err
	}
	out := createdUserJSON{User: adminUserView(u)}
	if link.URL != "" {
		out.Invitation = &linkJSON{URL: link.URL, ExpiresAt: link.ExpiresAt.UTC(), MailedTo: link.MailedTo}
	}
	w.Header().Set("Location", "/api/v1/users/"+u.ID)
	writeWithETag(w, http.StatusCreated, account.UserETag(u), out)
	return nil
}

func (s *Server) apiGetUser(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	d, err := s.acct.Admin.User(r.Context(), a, id)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, d.ETag, userDetailView(d))
	return nil
}

func (s *Server) apiPatchUser(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	match, err := ifMatch(r)
	if err != nil {
		return err
	}
	var p account.UserPatch
	if ok, err := s.apiDecode(w, r, &p); !ok {
		return err
	}
	u, etag, err := s.acct.Admin.UpdateUser(r.Context(), a, id, match, p)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, etag, adminUserView(u))
	return nil
}

// userAction is a route that runs one AdminService action on the user of
// its {id} and answers with what do returns: 200 with it, or 204 when it
// returns nil.
func userAction(do func(ctx context.Context, a account.Actor, id string) (any, error)) func(http.ResponseWriter, *http.Request, account.Actor) error {
	return func(w http.ResponseWriter, r *http.Request, a account.Actor) error {
		id, err := pathID(r, "user")
		if err != nil {
			return err
		}
		out, err := do(r.Context(), a, id)
		if err != nil {
			return err
		}
		if out == nil {
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

func signedOutView(o account.SignedOut) signedOutJSON {
	return signedOutJSON{SessionsEnded: o.Sessions, TokensRevoked: o.Tokens}
}

func (s *Server) apiDeleteUser(ctx context.Context, a account.Actor, id string) (any, error) {
	return nil, s.acct.Admin.DeleteUser(ctx, a, id)
}

func (s *Server) apiBlockUser(ctx context.Context, a account.Actor, id string) (any, error) {
	out, err := s.acct.Admin.BlockUser(ctx, a, id)
	return signedOutView(out), err
}

func (s *Server) apiUnblockUser(ctx context.Context, a account.Actor, id string) (any, error) {
	return nil, s.acct.Admin.UnblockUser(ctx, a, id)
}

func (s *Server) apiResetSecondFactors(ctx context.Context, a account.Actor, id string) (any, error) {
	out, err := s.acct.Admin.ResetSecondFactors(ctx, a, id)
	return factorsRemovedJSON{TOTP: out.TOTP, Passkeys: out.Passkeys, RecoveryCodes: out.RecoveryCodes, TrustedDevices: out.TrustedDevices}, err
}

func (s *Server) apiEndUserSessions(ctx context.Context, a account.Actor, id string) (any, error) {
	out, err := s.acct.Admin.EndSessions(ctx, a, id)
	return signedOutView(out), err
}

func (s *Server) apiPasswordResetLink(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	link, err := s.acct.Admin.PasswordResetLink(r.Context(), a, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, linkJSON{URL: link.URL, ExpiresAt: link.ExpiresAt.UTC()})
	return nil
}

func (s *Server) apiUserSessions(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "user")
	if err != nil {
		return err
	}
	sessions, err := s.acct.Admin.UserSessions(r.Context(), a, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, newList(sessionViews(sessions), ""))
	return nil
}
