package portal

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyport/keyport/account"
	"github.com/keyport/keyport/directory/sources"
)

// The management API's directories: the same account methods as the
// console's directory pages (admin.go), so the same rules apply.
func (s *Server) registerAdminDirectoryAPI(at *routeTable) {
	at.addAPI(levelAdminAPI, "GET", "/directories", s.apiListDirectories, apiOp{Summary: "List the directories (LDAP, upstream OIDC) with their state and last sync", Response: listJSON[directoryJSON]{}})
	at.addAPI(levelAdminAPI, "POST", "/directories", s.apiCreateDirectory, apiOp{Summary: "Add an LDAP directory or an upstream OIDC provider, as the console does: the settings are checked (a bad one is named in field), the secret is sealed and never shown again. " + directorySettingsDoc(), Body: newDirectoryJSON{}, Response: directoryJSON{}, Status: http.StatusCreated, ETag: true})
	at.addAPI(levelAdminAPI, "GET", "/directories/{id}", s.apiGetDirectory, apiOp{Summary: "One directory's state, last sync and (when added through the console or the API) settings, never its secret", Response: directoryJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "PATCH", "/directories/{id}", s.apiPatchDirectory, apiOp{Summary: "Turn a directory off or on, or edit the settings of one added through the console or the API (a JSON merge patch: a setting set to null returns to its default; the secret left out is kept); one from config.toml answers 409 to a settings change. Send If-Match with the ETag you read, or get 412 if someone changed it since", Body: directoryPatch{}, Response: directoryJSON{}, ETag: true})
	at.addAPI(levelAdminAPI, "DELETE", "/directories/{id}", s.apiDeleteDirectory, apiOp{Summary: "Remove a directory added through the console or the API (its users keep their accounts); one from config.toml answers 409"})
	at.addAPI(levelAdminAPI, "POST", "/directories/{id}/test", s.apiTestDirectory, apiOp{Summary: "Connect, bind and search once; report the user count and a sample", Response: directoryTestJSON{}})
	at.addAPI(levelAdminAPI, "POST", "/directories/{id}/sync", s.apiSyncDirectory, apiOp{Summary: "Import or refresh every user the directory lists now", Response: syncReportJSON{}})
}

// directorySettingsDoc lists the settings each provider takes, from the
// source registry (the console's form keys), so the document cannot drift
// from what is accepted.
func directorySettingsDoc() string {
	var parts []string
	for _, t := range sources.Types() {
		keys := t.FormKeys()
		for i, k := range keys {
			if k == t.SecretKey() {
				keys[i] = k + " (write-only)"
			}
		}
		parts = append(parts, t.Name+": "+strings.Join(keys, ", "))
	}
	return "Settings by provider, with config.toml's keys and meanings: " + strings.Join(parts, "; ") + "."
}

type directoryJSON struct {
	ID       string          `json:"id"`
	Name     string          `json:"name"`
	Provider string          `json:"provider"`
	Disabled bool            `json:"disabled"`
	Stored   bool            `json:"stored"` // added through the console or API, so editable; false: config.toml
	CanSync  bool            `json:"can_sync"`
	CanTest  bool            `json:"can_test"`
	LastSync *syncReportJSON `json:"last_sync"`
	// Settings of a directory added through the console or the API, by
	// config.toml key; never the secret (see has_secret). Only in the
	// answers about one directory.
	Settings  map[string]any `json:"settings,omitempty"`
	HasSecret bool           `json:"has_secret,omitempty"`
}

// newDirectoryJSON is POST /directories: config.toml's [[directories]]
// table, its type as provider and its other keys under settings.
type newDirectoryJSON struct {
	ID       string         `json:"id"`
	Provider string         `json:"provider"` // "ldap" or "oidc"
	Settings map[string]any `json:"settings"`
}

type syncReportJSON struct {
	Directory string    `json:"directory"`
	Started   time.Time `json:"started"`
	Finished  time.Time `json:"finished"`
	Created   int       `json:"created"`
	Updated   int       `json:"updated"`
	Blocked   int       `json:"blocked"`
	Failed    int       `json:"failed"`
	Errors    []string  `json:"errors"`
}

// directoryPatch is PATCH /directories/{id}: a JSON merge patch of the
// directory as GET shows it; of that, disabled and settings can change.
type directoryPatch struct {
	Disabled *bool          `json:"disabled,omitempty"`
	Settings map[string]any `json:"settings,omitempty"`
}

type directoryTestJSON struct {
	Users  int                `json:"users"`
	Sample *directoryUserJSON `json:"sample"`
}

type directoryUserJSON struct {
	Username    string `json:"username"`
	Email       string `json:"email"`
	DisplayName string `json:"display_name"`
}

func syncReportView(r account.SyncReport) syncReportJSON {
	errs := r.Errors
	if errs == nil {
		errs = []string{}
	}
	return syncReportJSON{Directory: r.Source, Started: r.Started.UTC(), Finished: r.Finished.UTC(), Created: r.Created, Updated: r.Updated, Blocked: r.Blocked, Failed: r.Failed, Errors: errs}
}

func directoryView(d account.DirectoryStatus) directoryJSON {
	out := directoryJSON{ID: d.ID, Name: d.Name, Provider: d.Provider, Disabled: d.Disabled, Stored: d.Stored, CanSync: d.CanSync, CanTest: d.CanTest}
	if d.LastSync != nil {
		rep := syncReportView(*d.LastSync)
		out.LastSync = &rep
	}
	return out
}

func (s *Server) apiListDirectories(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	var items []directoryJSON
	for _, d := range s.acct.Directories.DirectoryStatuses(r.Context()) {
		items = append(items, directoryView(d))
	}
	writeJSON(w, http.StatusOK, newList(items, ""))
	return nil
}

// directoryStatus finds one directory's state, or NotFound.
func (s *Server) directoryStatus(r *http.Request) (account.DirectoryStatus, error) {
	id, err := pathID(r, "directory")
	if err != nil {
		return account.DirectoryStatus{}, err
	}
	for _, d := range s.acct.Directories.DirectoryStatuses(r.Context()) {
		if d.ID == id {
			return d, nil
		}
	}
	return account.DirectoryStatus{}, account.Errorf(account.NotFound, "There is no directory %q.", id)
}

func (s *Server) apiGetDirectory(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	id, err := pathID(r, "directory")
	if err != nil {
		return err
	}
	return s.writeDirectory(w, r, http.StatusOK, id)
}

// writeDirectory answers directory id in full, with its ETag.
func (s *Server) writeDirectory(w http.ResponseWriter, r *http.Request, status int, id string) error {
	d, err := s.acct.Directories.DirectoryDetail(r.Context(), id)
	if err != nil {
		return err
	}
	out := directoryView(d.DirectoryStatus)
	out.Settings, out.HasSecret = d.Settings, d.HasSecret
	writeWithETag(w, status, d.ETag, out)
	return nil
}

func (s *Server) apiCreateDirectory(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	var nd newDirectoryJSON
	if ok, err := s.apiDecode(w, r, &nd); !ok {
		return err
	}
	if err := s.acct.Directories.CreateDirectory(r.Context(), nd.Provider, nd.ID, nd.Settings); err != nil {
		return err
	}
	w.Header().Set("Location", "/api/v1/directories/"+url.PathEscape(nd.ID))
	return s.writeDirectory(w, r, http.StatusCreated, nd.ID)
}

func (s *Server) apiPatchDirectory(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	id, err := pathID(r, "directory")
	if err != nil {
		return err
	}
	match, err := ifMatch(r)
	if err != nil {
		return err
	}
	var p directoryPatch
	if ok, err := s.apiDecode(w, r, &p); !ok {
		return err
	}
	if err := s.acct.Directories.PatchDirectory(r.Context(), id, match, account.DirectoryPatch{Disabled: p.Disabled, Settings: p.Settings}); err != nil {
		return err
	}
	return s.writeDirectory(w, r, http.StatusOK, id)
}

func (s *Server) apiDeleteDirectory(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	d, err := s.directoryStatus(r)
	if err != nil {
		return err
	}
	if err := s.acct.Directories.DeleteDirectory(r.Context(), d.ID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) apiTestDirectory(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	d, err := s.directoryStatus(r)
	if err != nil {
		return err
	}
	rep, err := s.acct.Directories.TestDirectory(r.Context(), d.ID)
	if err != nil {
		if account.ErrorCode(err) == account.NotFound {
			return err
		}
		// The directory, not Keyport, failed: say which step, as the
		// console does.
		writeAPIError(w, http.StatusBadGateway, "directory_failed", "The test failed: "+account.ErrorMessage(err), "")
		return nil
	}
	out := directoryTestJSON{Users: rep.Users}
	if rep.Sample != nil {
		out.Sample = &directoryUserJSON{Username: rep.Sample.Username, Email: rep.Sample.Email, DisplayName: rep.Sample.DisplayName}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) apiSyncDirectory(w http.ResponseWriter, r *http.Request, _ account.Actor) error {
	d, err := s.directoryStatus(r)
	if err != nil {
		return err
	}
	rep, err := s.acct.Directories.SyncDirectory(r.Context(), d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, syncReportView(rep))
	return nil
}
