package portal

import (
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/storage"
)

// The management API's local groups: every route calls account.AdminService,
// the rules the console and the command line use too.
func (s *Server) registerAdminGroupAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "GET", "/groups", s.apiListGroups, apiOp{Summary: "List the local groups, ordered by name", Response: listJSON[groupJSON]{}})
	at.addAPI(levelAdminAPI, "POST", "/groups", s.apiCreateGroup, apiOp{Summary: "Create a local group; its name is unique without regard to case", Body: newGroupJSON{}, Response: groupJSON{}, Status: http.StatusCreated, ETag: true})
	at.addAPI(levelAdminAPI, "GET", "/groups/{id}", s.apiGetGroup, apiOp{Summary: "One local group", Response: groupJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "PATCH", "/groups/{id}", s.apiPatchGroup, apiOp{Summary: "Rename a group (its members' groups claim carries the new name) or change its description; send If-Match with the ETag you read, or get 412 if someone changed it since", Body: account.GroupPatch{}, Response: groupJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "DELETE", "/groups/{id}", s.apiDeleteGroup, apiOp{Summary: "Delete a group and take it out of every member's groups"})
	at.addAPI(levelAdminAPI, "GET", "/groups/{id}/members", s.apiGroupMembers, apiOp{Summary: "A group's members (local users and directory users whose directory sends the group), ordered by user ID", Query: pageQuery, Response: listJSON[memberJSON]{}})
	at.addAPI(levelAdminAPI, "POST", "/groups/{id}/members", s.apiAddMemberByLogin, apiOp{Summary: "Make the user with this username or email a member (as the console's form does)", Body: memberLoginJSON{}, Response: memberJSON{}})
	at.addAPI(levelAdminAPI, "PUT", "/groups/{id}/members/{user_id}", s.apiAddMember, apiOp{Summary: "Make a user a member (refused for users whose groups their directory sets)"})
	at.addAPI(levelAdminAPI, "DELETE", "/groups/{id}/members/{user_id}", s.apiRemoveMember, apiOp{Summary: "Take a user out of a group (refused for users whose groups their directory sets)"})
}

type groupJSON struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	CreatedAt   time.Time `json:"created_at"`
	UpdatedAt   time.Time `json:"updated_at"`
}

type newGroupJSON struct {
	Name        string `json:"name"`
	Description string `json:"description,omitempty"`
}

// memberJSON is a group's member: who they are, not everything about them
// (GET /users/{id} has that).
type memberJSON struct {
	ID       string `json:"id"`
	Username string `json:"username"`
	Email    string `json:"email"`
	Name     string `json:"name"`
	Source   string `json:"source"` // "" for a local account, else the directory's ID
}

type memberLoginJSON struct {
	Login string `json:"login"` // a username or an email address
}

func memberView(u storage.User) memberJSON {
	return memberJSON{ID: u.ID, Username: u.Username, Email: u.Email, Name: u.Name, Source: u.Source}
}

func groupView(g storage.Group) groupJSON {
	return groupJSON{ID: g.ID, Name: g.Name, Description: g.Description, CreatedAt: g.CreatedAt.UTC(), UpdatedAt: g.UpdatedAt.UTC()}
}

func (s *Server) apiListGroups(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	groups, err := s.acct.Admin.ListGroups(r.Context(), a)
	if err != nil {
		return err
	}
	items := make([]groupJSON, 0, len(groups))
	for _, g := range groups {
		items = append(items, groupView(g))
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
	return nil
}

func (s *Server) apiCreateGroup(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	var n newGroupJSON
	if ok, err := s.apiDecode(w, r, &n); !ok {
		return err
	}
	g, err := s.acct.Admin.CreateGroup(r.Context(), a, n.Name, n.Description)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/groups/"+g.ID)
	writeWithETag(w, http.StatusCreated, account.GroupETag(g), groupView(g))
	return nil
}

func (s *Server) apiGetGroup(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	g, err := s.acct.Admin.Group(r.Context(), a, id)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, account.GroupETag(g), groupView(g))
	return nil
}

func (s *Server) apiPatchGroup(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	match, err := ifMatch(r)
	if err != nil {
		return err
	}
	var p account.GroupPatch
	if ok, err := s.apiDecode(w, r, &p); !ok {
		return err
	}
	g, err := s.acct.Admin.UpdateGroup(r.Context(), a, id, match, p)
	if err != nil {
		return err
	}
	writeWithETag(w, http.StatusOK, account.GroupETag(g), groupView(g))
	return nil
}

func (s *Server) apiDeleteGroup(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	if err := s.acct.Admin.DeleteGroup(r.Context(), a, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiGroupMembers(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	id, err := pathID(r, "group")
	if err != nil {
		return err
	}
	limit, cursor, err := pageParams(r, storage.MaxUserLimit)
	if err != nil {
		return err
	}
	page, err := s.acct.Admin.GroupMembers(r.Context(), a, id, cursor, limit)
	if err != nil {
		return err
	}
	items := make([]memberJSON, 0, len(page.Users))
	for _, u := range page.Users {
		items = append(items, memberView(u))
	}
	writeJSON(w, http.StatusOK, newList(items, page.Next))
	return nil
}

// memberPath reads the group and the user of a membership route.
func memberPath(r *http.Request) (groupID, userID string, err error) {
	if groupID, err = pathID(r, "group"); err != nil {
		return "", "", err
	}
	userID = mux.Vars(r)["user_id"]
	if userID == "" || len(userID) > 256 {
		return "", "", account.Errorf(account.NotFound, "There is no such user.")
	}
	return groupID, userID, nil
}

func (s *Server) apiAddMember(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	groupID, userID, err := memberPath(r)
	if err != nil {
		return err
	}
	if err := s.acct.Admin.AddMember(r.Context(), a, groupID, userID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiRemoveMember(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	groupID, userID, err := memberPath(r)
	if err != nil {
		return err
	}
	if err := s.acct.Admin.RemoveMember(r.Context(), a, groupID, userID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiAddMemberByLogin(w http.ResponseWriter, r *http.Request, a account.Actor) error {
	groupID, err := pathID(r, "group")
	if err != nil {
		return err
	}
	var body memberLoginJSON
	if ok, err := s.apiDecode(w, r, &body); !ok {
		return err
	}
	u, err := s.acct.Admin.MemberByLogin(r.Context(), a, body.Login)
	if err != nil {
		return fieldRenamed(err, "username", "login")
	}
	if err := s.acct.Admin.AddMember(r.Context(), a, groupID, u.ID); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, memberView(u))
	return nil
}

// fieldRenamed is err naming the request's field when the rules call it
// another name.
func fieldRenamed(err error, from, to string) error {
	var ae *account.Error
	if errors.As(err, &ae) && ae.Field == from {
		c := *ae
		c.Field = to
		return &c
	}
	return err
}
